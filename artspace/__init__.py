"""artspace: measure, search, map and synthesise paintings by style and by content.

The public API (:data:`__all__`), used the same way by notebooks and by the ``artspace`` command:

>>> import artspace
>>> report = artspace.index("data/demo", metadata="data/demo/metadata.csv")   # doctest: +SKIP
>>> artspace.Catalog.open("data/demo").similar("dots/star_0.png", by="content")  # doctest: +SKIP
>>> artspace.synthesise("photo.jpg", "starry_night.jpg", output="out.png")   # doctest: +SKIP

Names load their module on first use (PEP 562), so that ``artspace similar`` imports neither torch nor scikit-learn
and ``artspace transfer`` no analysis; ``from artspace import Catalog`` works as usual. The subpackages
:mod:`artspace.catalog`, :mod:`artspace.analysis` and :mod:`artspace.transfer` hold the rest (docs/api.md).
"""

__version__ = "0.1.0"

#: Where each public name lives.
_WHERE = {
    "spaces": ["SPACES", "Space"],
    "spec": ["LAYERS", "FeatureSpec"],
    "backbone": ["VGG19"],
    "errors": ["ArtspaceError", "CatalogLocked", "CatalogNotFound", "CorruptCatalog", "IncompatibleCatalog",
               "InvalidFilter", "InvalidModel", "InvalidMetadata", "InvalidOption", "NoMatch", "OutOfMemoryAdvice", "OutputConflict",
               "StaleSpace", "UnknownLayer", "UnreadableImage", "WeightsUnavailable", "WorkNotFound"],
    "images": ["open_image", "save_image"],
    "features": ["Extractor"],
    "catalog": ["Catalog", "IndexReport", "index"],
    "demo": ["make_demo"],
    "analysis.clustering": ["cluster"],
    "analysis.groups": ["compare"],
    "analysis.exporting": ["export"],
    "analysis.style_content": ["plane"],
    "analysis.maps": ["layout", "map_collection", "map_html"],
    "analysis.unit_patches": ["characteristic_units", "units"],
    "analysis.teaching": ["attribute", "teach"],
    "transfer": ["TransferOptions", "TransferResult", "reconstruct", "reconstruct_layers", "synthesise"],
    "feedforward": ["train_style", "train_decoder", "stylise", "adain_transfer", "load_model"],
}
#: Subpackages and modules reachable as attributes (``artspace.transfer.transfer(...)``) without importing them first.
_SUBMODULES = ("analysis", "backbone", "catalog", "demo", "errors", "features", "feedforward", "filters", "images", "losses",
               "outputs", "precision", "projection", "search", "spaces", "spec", "transfer", "winograd")

from .lazy import exports as _exports  # noqa: E402 - after the tables it reads

__all__, __getattr__, __dir__ = _exports(__name__, _WHERE, _SUBMODULES)
__all__ = ["__version__", *__all__]
