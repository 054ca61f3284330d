"""artspace: measure, search, map and synthesise paintings by style and by content.

The public API, used the same way by notebooks and by the ``artspace`` command:

>>> import artspace
>>> report = artspace.index("data/demo", metadata="data/demo/metadata.csv")   # doctest: +SKIP
>>> artspace.Catalog.open("data/demo").similar("dots/star_0.png", by="content")  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "__version__", "LAYERS", "VGG19", "Extractor", "FeatureSpec", "Catalog", "IndexReport", "index", "make_demo",
    "open_image", "cluster", "compare", "export", "plane", "layout", "map_collection", "map_html",
    "characteristic_units", "units", "TransferResult", "reconstruct", "reconstruct_layers", "synthesise", "transfer",
    "ArtspaceError", "CatalogLocked", "CatalogNotFound", "IncompatibleCatalog", "OutOfMemoryAdvice", "UnknownLayer",
    "UnreadableImage", "WeightsUnavailable", "WorkNotFound",
]

from .backbone import LAYERS, VGG19
from .errors import (
    ArtspaceError,
    CatalogLocked,
    CatalogNotFound,
    IncompatibleCatalog,
    OutOfMemoryAdvice,
    UnknownLayer,
    UnreadableImage,
    WeightsUnavailable,
    WorkNotFound,
)
from .images import open_image
from .features import Extractor, FeatureSpec
from .catalog import Catalog, IndexReport, index
from .demo import make_demo
from .analysis import cluster, compare, export, plane
from .mapping import layout, map_collection, map_html
from .units import characteristic_units, units
from .transfer import TransferResult, reconstruct, reconstruct_layers, synthesise, transfer
