"""The course's figures, one module per stage; every function returns a matplotlib Figure.

Import from here (``from sessrec_course import plots; plots.session_length_histogram(...)``). Figures are
plain ``matplotlib.figure.Figure`` objects (no pyplot state): a notebook shows one by returning it from a
cell or passing it to ``display()``; importing this package inside a Jupyter kernel registers the PNG
format for that, so no ``%matplotlib`` magic is needed.
"""

from __future__ import annotations

from importlib import import_module

_MODULES = ("course", "data", "evaluation", "training")


def enable_notebook_figures() -> bool:
    """Make Jupyter render Figure objects as PNG; return False outside a Jupyter kernel."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False
    select_figure_formats(shell, {"png"}, bbox_inches="tight")
    return True


enable_notebook_figures()


def __getattr__(name: str):
    for module_name in _MODULES:
        module = import_module(f"{__name__}.{module_name}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"sessrec_course.plots has no figure function {name!r}")
