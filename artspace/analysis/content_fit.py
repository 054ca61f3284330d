"""Fitting a content projection on a catalog of pastiche groups (``artspace fit-content``).

The projection itself, and how a catalog uses it, are :mod:`artspace.content`; this module reads a catalog's raw
content descriptors from its extraction log and fits Fisher's discriminant on them
(:func:`artspace.discriminant.fisher`), each photograph and its pastiches one group.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..catalog.metadata import WORK_COLUMNS
from ..content import DIM, SHRINKAGE
from ..discriminant import LinearProjection, fisher
from ..errors import ArtspaceError, InvalidOption

__all__ = ["descriptors", "fit_content"]


def descriptors(catalog) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, descriptors)``: every work's raw content descriptor (:func:`artspace.features.content_descriptor`),
    in id order, read from the catalog's extraction log."""
    from ..catalog.shards import read_npz, shard_number

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
        cols = [c for c in works.columns if c not in WORK_COLUMNS]
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
    p.info.update({"descriptor_layers": list(spec.descriptor_layers), "descriptor_norm": spec.descriptor_norm,
                   "size": int(spec.size),
                   "weights": str(spec.weights), "precision": catalog.manifest.get("precision"),
                   "catalog": str(catalog.dir.resolve()), "group_column": group_column,
                   "works": int(keep.sum())})
    return p
