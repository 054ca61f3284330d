"""artspace: measure, search, map and synthesise paintings by style and by content.

The public API, used the same way by notebooks and by the ``artspace`` command:

>>> import artspace
>>> report = artspace.index("data/demo", metadata="data/demo/metadata.csv")   # doctest: +SKIP
>>> artspace.Catalog.open("data/demo").similar("dots/star_0.png", by="content")  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types

__version__ = "0.1.0"

__all__ = [
    "__version__", "LAYERS", "VGG19", "Extractor", "FeatureSpec", "Catalog", "IndexReport", "index", "make_demo",
    "open_image", "cluster", "compare", "export", "plane", "layout", "map_collection", "map_html",
    "characteristic_units", "units", "TransferResult", "reconstruct", "reconstruct_layers", "synthesise", "transfer",
    "ArtspaceError", "CatalogLocked", "CatalogNotFound", "IncompatibleCatalog", "OutOfMemoryAdvice", "UnknownLayer",
    "UnreadableImage", "WeightsUnavailable", "WorkNotFound",
]

# Names load their module on first use (PEP 562): `artspace transfer` need not import pandas and scikit-learn,
# nor `artspace similar` the optimiser; `from artspace import Catalog` works as before.
_WHERE = {
    "backbone": ["LAYERS", "VGG19"],
    "errors": ["ArtspaceError", "CatalogLocked", "CatalogNotFound", "IncompatibleCatalog", "OutOfMemoryAdvice",
               "UnknownLayer", "UnreadableImage", "WeightsUnavailable", "WorkNotFound"],
    "images": ["open_image"],
    "features": ["Extractor", "FeatureSpec"],
    "catalog": ["Catalog", "IndexReport", "index"],
    "demo": ["make_demo"],
    "analysis.clustering": ["cluster"],
    "analysis.groups": ["compare"],
    "analysis.exporting": ["export"],
    "analysis.style_content": ["plane"],
    "analysis.maps": ["layout", "map_collection", "map_html"],
    "analysis.unit_patches": ["characteristic_units", "units"],
    "transfer": ["TransferResult", "reconstruct", "reconstruct_layers", "synthesise", "transfer"],
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'artspace' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """Keeps ``artspace.index``, ``artspace.transfer`` and ``artspace.units`` the API's functions.

    Three submodules share a name with a function of the API. Loading a submodule binds it as an attribute of the
    package, which would shadow the function once anything imported the module (``from artspace.search import
    VectorIndex``); the binding is declined here, so those names always resolve through ``__getattr__``. The modules
    stay importable by their dotted names (``import artspace.units``; ``from artspace.units import units``).
    """

    def __setattr__(self, name: str, value) -> None:
        if name in _MODULE_OF and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
