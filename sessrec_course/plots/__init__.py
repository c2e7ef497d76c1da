"""The course's figures, one module per stage; every function returns a matplotlib Figure.

Import from here (``from sessrec_course import plots; plots.session_length_histogram(...)``).
"""

from __future__ import annotations

from importlib import import_module

_MODULES = ("course", "data", "evaluation", "training", "serving")


def __getattr__(name: str):
    for module_name in _MODULES:
        module = import_module(f"{__name__}.{module_name}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"sessrec_course.plots has no figure function {name!r}")
