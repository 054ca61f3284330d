"""The catalog: works, their embeddings and faiss indexes, stored beside the images in generations.

* :mod:`.store` — the catalog on disk: generations published by one rename, the writer lock, readers' leases;
* :mod:`.metadata` — the metadata CSV, read and checked before any image, joined to the works;
* :mod:`.shards` — the extraction log that makes indexing resumable;
* :mod:`.indexer` — ``artspace index``: plan, extract, publish;
* :mod:`.generation` — what a generation holds and how one is built (also for analyses that store results);
* :mod:`.queries` — :class:`Catalog`, the object queries and analyses read.
"""

from ..spaces import SPACES
from .queries import Catalog
from .store import CATALOG_DIRNAME, FORMAT_VERSION, find_catalog, locate_catalog

__all__ = ["Catalog", "IndexReport", "index", "find_catalog", "locate_catalog", "FORMAT_VERSION", "CATALOG_DIRNAME",
           "SPACES"]


def __getattr__(name: str):
    # The indexer needs torch; a query on catalogued works does not, so it is loaded only when asked for.
    if name in ("index", "IndexReport"):
        from . import indexer

        return getattr(indexer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
