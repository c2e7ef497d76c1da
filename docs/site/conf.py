"""Sphinx configuration of the course website (``make site``): MyST-NB renders the executed notebooks as they are."""

project = "sessrec-course"
author = "the sessrec-course authors"
copyright = "the sessrec-course authors"  # noqa: A001  (Sphinx reads this name)

extensions = ["myst_nb"]
# the notebooks were executed by `make course`: render their stored outputs, never run them again
nb_execution_mode = "off"
# no require.js / widget manager from a CDN: widget outputs fall back to their plain-text form offline
nb_ipywidgets_js = {}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
exclude_patterns = ["_build", "sources/**", "**.ipynb_checkpoints"]
# MathJax would load from a CDN; the lessons' formulas are plain text, so no math renderer is wanted
suppress_warnings = ["myst.header"]

html_theme = "pydata_sphinx_theme"
html_title = "Session-based recommendation, end to end"
html_show_sourcelink = False  # each lesson links its .ipynb source itself (a download, not a .txt copy)
html_copy_source = False
html_theme_options = {
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "icon_links": [],
    "show_toc_level": 2,
    "header_links_before_dropdown": 3,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
# an explicit mode: with none, the theme logs "Got invalid theme mode" on a first visit (fresh browser storage)
html_context = {"default_mode": "auto"}
