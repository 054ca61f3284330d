r"""The content projection learnt from pastiches: what stays fixed when only the hand changes.

A photograph painted in many styles by AdaIN (Huang & Belongie 2017; :func:`artspace.pastiches.pastiche_set`)
keeps its subject and composition and changes everything else. Fisher's discriminant
(:func:`artspace.discriminant.fisher`) with each photograph and its pastiches as one group finds the directions of
the content descriptor along which a change of hand moves a work least compared with a change of subject. The
catalog blends those coordinates into its content embedding (:class:`artspace.search.ContentModel`).

artspace ships one projection (``artspace/data/content_projection.npz``) for the default descriptor, fitted on
pastiches that share no photograph and no painting with the sets it is measured on (docs/benchmarks.md,
"Content that follows the subject"). ``artspace fit-content`` fits another from any catalog of pastiche groups;
``artspace index --content-projection FILE`` uses it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from .discriminant import LinearProjection, fisher
from .errors import ArtspaceError, InvalidOption

__all__ = ["DIM", "SHRINKAGE", "shipped_projection", "projection_for", "descriptors", "fit_content", "load_projection"]

#: Directions kept (the top ones): with the collection's 384 PCA axes the content embedding has 512 numbers, as it
#: had before the projection; all 243 found the subject no more often on the development sets.
DIM = 128

#: The shrinkage of the shipped projection: the within-photograph covariance pulled 90 % towards a multiple of the
#: identity (lower values fitted the pastiches better and found the subject less often across real media).
SHRINKAGE = 0.9


def _shipped_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("artspace") / "data" / "content_projection.npz"))


@functools.lru_cache(maxsize=1)
def shipped_projection() -> LinearProjection | None:
    """The content projection shipped with artspace (None in a source tree where it has not been fitted yet)."""
    path = _shipped_path()
    return LinearProjection.load(path) if path.is_file() else None


def load_projection(path: str | os.PathLike) -> LinearProjection:
    """A content projection written by :func:`fit_content` (``.save``); a clear error if it is not one."""
    p = LinearProjection.load(path)
    if "descriptor_layers" not in p.info:
        raise ArtspaceError(f"{path} is not a content projection (it does not say which descriptor it was fitted "
                            f"on); make one with `artspace fit-content`")
    return p


def projection_for(spec, path: str | os.PathLike | None = None) -> LinearProjection | None:
    """The learnt projection a catalog with feature *spec* uses: the file *path* (refused if it was fitted on
    another descriptor), else the shipped one where it was fitted on the same descriptor, else None (the catalog's
    content embedding is then the style-group-centred descriptor alone)."""
    # the input size is not compared: maxima of a layer over space mean the same at any size
    want = {"descriptor_layers": list(spec.descriptor_layers), "weights": str(spec.weights)}
    if path is not None:
        p = load_projection(path)
        got = {k: p.info.get(k) for k in want}
        if got != want:
            raise InvalidOption(f"the content projection {path} was fitted on the descriptor {got}, this catalog's "
                                f"is {want}; fit one on this descriptor with `artspace fit-content`")
        return p
    p = shipped_projection()
    return p if p is not None and {k: p.info.get(k) for k in want} == want else None


def descriptors(catalog) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, descriptors)``: every work's raw content descriptor (:func:`artspace.features.content_descriptor`),
    in id order, read from the catalog's extraction log."""
    from .catalog.shards import read_npz, shard_number

    ids = np.asarray(catalog.embeddings("content")[0], np.int64)
    wanted = dict(zip(catalog.works["path"].astype(str), catalog.works["id"].astype(int)))
    where: dict[int, tuple[Path, int]] = {}
    shards = sorted((catalog.dir / "log" / "shards").glob("part-*.npz"), key=shard_number)
    for shard in shards:  # later records of a path replace earlier ones, as in the indexer
        z = read_npz(shard)
        for j, (rel, wid) in enumerate(zip(z["path"].tolist(), z["id"].tolist())):
            if wanted.get(str(rel)) == int(wid):
                where[int(wid)] = (shard, j)
    missing = [int(i) for i in ids if int(i) not in where]
    if missing:
        raise ArtspaceError(f"the extraction log of {catalog.dir} lacks the descriptors of {len(missing)} works "
                            f"(first id {missing[0]}); run `artspace index` on it again")
    out = None
    by_shard: dict[Path, list] = {}
    for row, wid in enumerate(ids):
        shard, j = where[int(wid)]
        by_shard.setdefault(shard, []).append((row, j))
    for shard, pairs in by_shard.items():
        d = read_npz(shard)["descriptor"]
        if out is None:
            out = np.empty((len(ids), d.shape[1]), np.float32)
        rows, js = np.array(pairs).T
        out[rows] = d[js]
    return ids, out if out is not None else np.zeros((0, catalog.spec.descriptor_dim), np.float32)


def fit_content(catalog, group_column: str = "photo", *, shrinkage: float = SHRINKAGE,
                dim: int | None = DIM) -> LinearProjection:
    """Fit a content projection on a catalog of pastiche groups: works sharing a value of *group_column* (a
    photograph and its pastiches) are one group; works without a value are left out. Returns the projection
    (save it with ``.save(path)``); its ``info`` records the descriptor, the catalog and the groups."""
    works = catalog.works
    if group_column not in works.columns:
        cols = [c for c in works.columns if c not in ("id", "path", "size", "mtime_ns", "checksum", "width",
                                                      "height")]
        raise InvalidOption(f"the catalog {catalog.dir} has no column {group_column!r} (its metadata columns: "
                            f"{', '.join(cols) or 'none'}); name the column that groups a photograph with its "
                            f"pastiches with --group-column")
    ids, desc = descriptors(catalog)
    groups = works.set_index("id").loc[ids, group_column].to_numpy(object)
    keep = np.array([g is not None and g == g and str(g) != "" for g in groups])
    if keep.sum() < 4:
        raise InvalidOption(f"only {int(keep.sum())} works of {catalog.dir} have a {group_column!r}; a content "
                            f"projection needs groups of a photograph and its pastiches")
    p = fisher(desc[keep], groups[keep], dim=dim, shrinkage=shrinkage)
    spec = catalog.spec
    p.info.update({"descriptor_layers": list(spec.descriptor_layers), "size": int(spec.size),
                   "weights": str(spec.weights), "precision": catalog.manifest.get("precision"),
                   "catalog": str(catalog.dir.resolve()), "group_column": group_column,
                   "works": int(keep.sum())})
    return p
