"""Packages whose public names load their module on first use (PEP 562).

``artspace similar`` should not import torch, nor ``artspace transfer`` scikit-learn; a notebook should still write
``from artspace.analysis import cluster``. Each package declares where its names live and gets its ``__all__``,
``__getattr__`` and ``__dir__`` from :func:`exports`.
"""

from __future__ import annotations

import importlib
from typing import Callable, Iterable

__all__ = ["exports"]


def exports(package: str, where: dict[str, list[str]], submodules: Iterable[str] = ()) \
        -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for *package*, whose names in ``where[module]`` live in ``package.module``;
    the *submodules* are reachable as attributes without being imported first."""
    module_of = {name: module for module, names in where.items() for name in names}
    submodules = tuple(submodules)
    public = list(module_of)

    def __getattr__(name: str):
        if name in module_of:
            mod = importlib.import_module(f".{module_of[name]}", package)
            value = getattr(mod, name)
            setattr(importlib.import_module(package), name, value)  # found directly from now on
            return value
        if name in submodules:
            return importlib.import_module(f".{name}", package)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(public) | set(submodules))

    return public, __getattr__, __dir__
