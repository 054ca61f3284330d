"""The catalog: works, their embeddings and faiss indexes, stored beside the images in generations.

* :mod:`.store` — the catalog on disk: generations published by one rename, the writer lock, readers' leases;
* :mod:`.metadata` — the metadata CSV, read and checked before any image, joined to the works;
* :mod:`.shards` — the extraction log that makes indexing resumable;
* :mod:`.indexer` — ``artspace index``: plan, extract, publish;
* :mod:`.generation` — what a generation holds and how one is built (also for analyses that store results);
* :mod:`.queries` — :class:`Catalog`, the object queries and analyses read.
"""

from .indexer import IndexReport, index
from .queries import SEARCH_SPACES, SPACES, Catalog
from .store import CATALOG_DIRNAME, FORMAT_VERSION, find_catalog

__all__ = ["Catalog", "IndexReport", "index", "find_catalog", "FORMAT_VERSION", "CATALOG_DIRNAME", "SPACES",
           "SEARCH_SPACES"]
