r"""The one source adapter: what every analysis reads, read once.

An analysis reads a *source*: a :class:`~artspace.catalog.Catalog`, or a pair ``(works, X)`` of a works table (one
row per work; an ``id`` column is added when missing) and its embeddings, one matrix or a dict ``{space: matrix}``.
The pair form runs the same code on embeddings made elsewhere, or on synthetic ones at scale, without images.
:func:`read_source` turns either into a :class:`Source`, which every analysis also accepts: a command that runs
several analyses (``artspace map``) reads the works table and the embeddings once and hands the same object on.

What an embedding distance is
-----------------------------
Clusters, maps and group comparisons need a distance that is the squared Euclidean distance of an embedding (k-means,
Ward, UMAP and the closed-form group means all rest on it). Each space of :mod:`artspace.spaces` stores one:

* ``style``: squared L2 of the compact signature embeddings ≈ the style signature distance :math:`d_{sig}` (mean
  squared Hellinger distance between Gram matrices, 0 to 1), *not* divided by the two works' neighbourhood scales;
* ``l_style``: squared L2 of the compact :math:`L_{style}` embeddings ≈ Gatys et al.'s (2016) :math:`L_{style}`;
* ``content``: :math:`\tfrac12\lVert c_a-c_b\rVert^2 = 1-\cos` of the unit content embeddings.

``similar --by style`` ranks by :math:`d_{sig}/\sqrt{\rho_a\rho_b}` instead, relative to both works'
neighbourhoods. That relative distance is not the squared distance of any embedding (each pair is divided by its own
factor, so no vector mean or centroid represents it), which is why neighbour *lists* (export, the map's panel) use
the relative ranking through :meth:`Catalog.neighbours <artspace.catalog.Catalog.neighbours>` while clusters, maps and
group comparisons use the raw signature distance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ArtspaceError, CorruptCatalog, InvalidOption
from ..spaces import DEFAULT_SPACE, SPACES, space

__all__ = ["BOOKKEEPING", "MEASURE", "Source", "distance_scale", "is_catalog", "metadata_columns", "read_source",
           "work_thumbnail"]

#: Columns of the works table that are bookkeeping, not metadata worth showing or colouring by.
BOOKKEEPING = ("size", "mtime_ns", "checksum")

class _Measures(dict):
    def __missing__(self, by):  # a taught space: named by its label
        return f"squared distance in {space(by).label}"


#: What the distance between two stored embeddings of each space is, in words (axes, captions, summaries); a taught
#: space ``taught:NAME`` reads "squared distance in taught:NAME (taught by labels)".
MEASURE = _Measures({"style": "style signature distance d_sig", "l_style": "L_style",
                     "content": "content distance 1 − cos"})


def check_seed(seed, *, none: bool = False) -> int | None:
    """*seed* if it is a whole number from 0 to 2³²−1 (what NumPy, scikit-learn and UMAP all take), or None where
    *none* allows it; :class:`~artspace.errors.InvalidOption` otherwise, before any work.

    >>> check_seed(7)
    7
    """
    if seed is None and none:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= 2 ** 32 - 1:
        raise InvalidOption(f"seed (--seed) must be a whole number from 0 to 4294967295, not {seed!r}")
    return int(seed)


def distance_scale(by: str) -> float:
    """Factor turning the squared L2 between two stored embeddings of space *by* into its distance: ½ for the unit
    content embeddings (½‖a − b‖² = 1 − cos), 1 otherwise.

    Examples
    --------
    >>> distance_scale("content"), distance_scale("style")
    (0.5, 1.0)
    """
    return 0.5 if space(by).metric == "ip" else 1.0


def is_catalog(obj) -> bool:
    """Whether *obj* is a :class:`~artspace.catalog.Catalog` (imported here only, to keep this module light)."""
    from ..catalog import Catalog

    return isinstance(obj, Catalog)


@dataclass
class Source:
    """A works table and its embeddings, row-aligned, as every analysis reads them.

    Attributes
    ----------
    works : DataFrame
        One row per work, index ``0..n-1``, with an ``id`` column (and ``path`` for a catalog).
    catalog : Catalog or None
        The catalog read, or None for a ``(works, X)`` pair.
    """

    works: pd.DataFrame
    catalog: object = None
    # space -> (n, d) float32; "*" holds a pair's single matrix, which serves every space
    matrices: dict = field(default_factory=dict, repr=False)

    @property
    def ids(self) -> np.ndarray:
        """The works' ids, in row order."""
        return self.works["id"].to_numpy(np.int64)

    @property
    def root(self) -> Path | None:
        """The collection folder (catalog sources only)."""
        return None if self.catalog is None else Path(self.catalog.root)

    @property
    def stored(self) -> list[str]:
        """Columns that analyses stored in the catalog (cluster labels under any ``--column`` name, map coordinates,
        attributions), as opposed to the scholar's metadata."""
        return [] if self.catalog is None else list(self.catalog.manifest.get("analyses", {}))

    @property
    def stale(self) -> dict[str, str]:
        """Stored analysis columns computed before the works last changed: ``{column: what made it}``."""
        return {} if self.catalog is None else self.catalog.stale_columns()

    def vectors(self, by: str) -> np.ndarray:
        """The (n, d) float32 embeddings of space *by*, rows aligned with :attr:`works` (read on first use)."""
        space(by)
        if by not in self.matrices:
            if self.catalog is not None:
                ids, X = self.catalog.embeddings(by)
                if not np.array_equal(ids, self.ids):
                    raise CorruptCatalog(f"the catalog {self.catalog.dir} holds {by} embeddings of other works than "
                                         f"its works table; rebuild it with `artspace index --rebuild`")
                self.matrices[by] = np.ascontiguousarray(X, np.float32)
            elif "*" in self.matrices:
                return self.matrices["*"]
            else:
                raise InvalidOption(f"no {by!r} embeddings in the source (it has {', '.join(self.matrices)}); "
                                    f"pass them as {{{by!r}: matrix}}")
        return self.matrices[by]

    @property
    def spaces(self) -> list[str]:
        """The spaces this source has embeddings of: all for a catalog, a pair's keys (its one matrix serves as
        ``style``)."""
        if self.catalog is not None:
            return list(SPACES)
        return [s for s in SPACES if s in self.matrices] or [DEFAULT_SPACE]

    def column(self, name: str) -> pd.Series:
        """The works-table column *name*; :class:`~artspace.errors.ArtspaceError` listing the columns otherwise."""
        if name not in self.works.columns:
            raise ArtspaceError(f"no column {name!r} in the works table; columns: "
                                f"{', '.join(metadata_columns(self.works))}")
        return self.works[name]


def metadata_columns(works: pd.DataFrame) -> list[str]:
    """The columns of *works* worth showing: all but ``id`` and the bookkeeping ones."""
    return [c for c in works.columns if c not in ("id",) + BOOKKEEPING]


def read_source(source, *, by: str | None = None) -> Source:
    """The :class:`Source` of a catalog, a ``(works, X)`` pair, or a Source (returned as it is).

    Parameters
    ----------
    source : Catalog, (DataFrame, ndarray or dict) or Source
        A catalog, or a works table with one row per work and its embeddings: one matrix (used for every space) or
        ``{"style": Xs, "content": Xc, ...}`` keyed by the names of :mod:`artspace.spaces`.
    by : {"style", "l_style", "content"}, optional
        A space whose embeddings are checked (and read) now, so that a missing one fails before any work.

    Examples
    --------
    >>> src = read_source((pd.DataFrame({"g": ["a", "b"]}), np.eye(2)), by="content")
    >>> src.ids.tolist(), src.vectors("content").dtype
    ([0, 1], dtype('float32'))
    """
    if by is not None:
        space(by)
    if isinstance(source, Source):
        src = source
    elif is_catalog(source):
        src = _from_catalog(source, by or DEFAULT_SPACE)
    elif isinstance(source, tuple) and len(source) == 2:
        src = _from_pair(*source)
    else:
        raise TypeError("source must be a Catalog or a (works DataFrame, embedding matrix) pair, not "
                        f"{type(source).__name__}")
    if by is not None:
        src.vectors(by)
    return src


def _from_catalog(cat, by: str) -> Source:
    """The works table in the order of the catalog's embeddings (every space stores the same ids), and the
    embeddings of *by*."""
    ids, X = cat.embeddings(by)
    works = cat.works
    pos = pd.Index(works["id"].to_numpy(np.int64)).get_indexer(ids)
    if (pos < 0).any():
        raise CorruptCatalog(f"the catalog {cat.dir} holds embeddings of works missing from its works table; "
                             f"rebuild it with `artspace index --rebuild`")
    return Source(works=works.iloc[pos].reset_index(drop=True), catalog=cat,
                  matrices={by: np.ascontiguousarray(X, np.float32)})


def _from_pair(works, X) -> Source:
    if not isinstance(works, pd.DataFrame):
        raise TypeError(f"the works table must be a pandas DataFrame, not {type(works).__name__}")
    matrices = dict(X) if isinstance(X, dict) else {"*": X}
    for name, M in matrices.items():
        if name != "*" and name not in SPACES:
            raise InvalidOption(f"embeddings are keyed by space ({', '.join(SPACES)}), not {name!r}")
        M = np.ascontiguousarray(np.asarray(M, np.float32))
        if M.ndim != 2:
            raise InvalidOption(f"embeddings must be a 2-d matrix (works x dimensions), not shape {M.shape}")
        if len(M) != len(works):
            raise InvalidOption(f"{len(works)} works but {len(M)} embedding rows; they must match row by row")
        matrices[name] = M
    works = works.reset_index(drop=True)
    if "id" not in works.columns:
        works = works.assign(id=np.arange(len(works), dtype=np.int64))
    return Source(works=works, matrices=matrices)


def work_thumbnail(src: Source, row: int, px: int):
    """A thumbnail (RGB, long side *px*) of the work in row *row*; a grey square when it cannot be read."""
    from ..sheets import thumbnail

    rel = src.works.at[row, "path"]
    return thumbnail(src.catalog._work_file(rel) if src.catalog is not None else src.root / rel, px)
