"""Taught spaces in a generation: how one is stored, published, carried over and found stale.

A taught space ``taught:NAME`` (made by :meth:`Catalog.teach <artspace.catalog.Catalog.teach>`) is four files of
the generation that holds it, beside the manifest's ``taught`` entry::

    taught-NAME.npz          the projection of the style embedding (artspace.discriminant.LinearProjection, or
                             artspace.contrastive.MLPProjection; its info
                             holds the label centroids, the calibration temperature and the cross-validated figures)
    taught-NAME.npy          every work's taught embedding (n × d float32, id order)
    taught-NAME.faiss        its index (squared L2)
    taught-NAME-pairs.npy    the sorted distances of a random sample of pairs (what percentiles are read from)

The manifest entry records what the space was taught from: the label column, a digest of the labels (work id and
label of every labelled work), the works digest and the style embedding's basis. A space is *stale* as soon as any of
them differs in the generation read: the labels were edited, works were added, removed or changed, or the style
embedding was refitted (``index --rebuild``). A stale space is refused by every query, with the command that refits
it: a projection fitted on other labels would answer silently with a scholar's old judgement. ``index`` and stored
analysis columns carry the files and the entry over unchanged, so that the refusal can name the column and the
command.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import InvalidOption, StaleSpace
from ..spaces import TAUGHT, space

__all__ = ["files_of", "labels_digest", "style_basis", "stale_reason", "check_taught", "publish_taught",
           "carry_taught"]


def files_of(name: str) -> dict[str, str]:
    """The generation's files of the taught space *name* (without the ``taught:`` prefix), by role."""
    stem = f"taught-{name}"
    return {"projection": f"{stem}.npz", "embedding": f"{stem}.npy", "index": f"{stem}.faiss",
            "pairs": f"{stem}-pairs.npy"}


def labels_digest(works: pd.DataFrame, column: str) -> str | None:
    """A digest of the labels in *column*: the id and label of every work that has one (None: no such column)."""
    if column not in works.columns:
        return None
    s = works[column]
    keep = s.notna().to_numpy()
    ids = works["id"].to_numpy(np.int64)[keep]
    labels = s[keep].astype(str).to_numpy()
    order = np.argsort(ids, kind="stable")
    h = hashlib.sha256(np.ascontiguousarray(ids[order]).tobytes())
    h.update("\0".join(labels[order].tolist()).encode("utf-8", "backslashreplace"))
    return h.hexdigest()


def style_basis(manifest: dict) -> str:
    """What every row of the style embedding was computed from besides the work (the spec, precision and fitted
    projection, as :func:`artspace.catalog.chunks.basis_digests` hashes them)."""
    basis = ((manifest.get("chunks") or {}).get("basis") or {}).get("style")
    if basis:
        return basis
    style = manifest.get("spaces", {}).get("style", {})
    return hashlib.sha256(repr((manifest.get("spec"), manifest.get("precision"), style.get("sketch_seed"),
                                style.get("fitted_on"), style.get("variance_kept"))).encode()).hexdigest()


def refit_hint(name: str, entry: dict, where: Path | None = None, columns=None, *,
               catalog_arg: str | None = None) -> str:
    """The command that refits the taught space *name*, naming the collection of the catalog *where* (or with the
    ready-made *catalog_arg*, such as ``-c paintings``), and, when its label column is not among the works table's
    *columns*, how to bring it back or remove the space."""
    import shlex

    from .store import CATALOG_DIRNAME

    catalog = f" {catalog_arg}" if catalog_arg else ""
    if where is not None and not catalog_arg:
        root = Path(where).parent if Path(where).name == CATALOG_DIRNAME else Path(where)
        catalog = f" --catalog {shlex.quote(str(root))}"
    column = entry.get("label_column")
    teach = f"`artspace teach --label-column {shlex.quote(str(column))} --name {shlex.quote(name)}{catalog}`"
    if columns is not None and column not in columns:
        return (f"restore the column {column!r} to the metadata file and run artspace index, after which {teach} "
                f"refits it; or `artspace unteach {shlex.quote(name)}{catalog}` removes the space")
    return f"{teach} refits it"


def stale_reason(manifest: dict, works: pd.DataFrame, name: str) -> str | None:
    """Why the taught space *name* of this generation no longer matches it, or None when it does."""
    from .generation import same_works  # generation imports this module
    entry = (manifest.get("taught") or {}).get(name) or {}
    column = entry.get("label_column")
    since = f"since it was fitted on the works of generation {entry.get('generation')}"
    if column not in works.columns:
        return f"its label column {column!r} is no longer in the works table"
    if not same_works(entry, manifest):
        return f"works were added, removed or changed {since}"
    if entry.get("style_basis") != style_basis(manifest):
        return f"the style embedding was fitted again {since}"
    if entry.get("labels_digest") != labels_digest(works, column):
        return f"the labels in column {column!r} changed {since}"
    return None


def check_taught(manifest: dict, works: pd.DataFrame, by: str, where: Path) -> dict:
    """The manifest entry of the taught space *by* (``taught:NAME``), or an error saying how to make or refit it."""
    name = space(by).name[len(TAUGHT):]
    taught = manifest.get("taught") or {}
    if name not in taught:
        have = ", ".join(f"{TAUGHT}{t}" for t in sorted(taught)) or "none yet"
        raise InvalidOption(f"the catalog {where} holds no taught space {name!r} (taught spaces: {have}); make it with "
                            f"`artspace teach --label-column COLUMN --name {name}`")
    why = stale_reason(manifest, works, name)
    if why is not None:
        raise StaleSpace(f"the taught space {by} is stale: {why}; {refit_hint(name, taught[name], where, works.columns)}")
    return taught[name]


def _pair_sample(ids: np.ndarray, x: np.ndarray, by: str) -> np.ndarray:
    from .generation import pair_sample

    return pair_sample(ids, {by: x}, np.ones(len(ids)), spaces=[by])[by]


def publish_taught(cdir: Path, name: str, projection, entry: dict, *,
                   notify: Callable[[str], None] | None = None) -> int:
    """Publish a generation that holds the taught space *name* (*projection*: a fitted
    :class:`~artspace.discriminant.LinearProjection` or :class:`~artspace.contrastive.MLPProjection` of the style
    embedding; *entry*: the manifest entry, which must
    say what it was taught from). Waits for a running writer; the embeddings and index are computed from the
    generation current under the lock, so a work added meanwhile gets its place (and the space is then stale, as the
    works changed since it was taught). Returns the new generation's number."""
    from ..search import VectorIndex
    from .chunks import open_array
    from .generation import amend, load

    by = f"{TAUGHT}{name}"
    files = files_of(name)

    def prepare(n, folder, manifest):
        ids = load(folder, "ids.npy", lambda p: np.load(p, allow_pickle=False), cdir)
        style = open_array(manifest, "style",
                           lambda f: load(folder, f, lambda p: np.load(p, mmap_mode="r", allow_pickle=False), cdir))
        x = projection.transform(style)

        def write(builder):
            projection.save(builder.path(files["projection"]))
            np.save(builder.path(files["embedding"]), x, allow_pickle=False)
            VectorIndex.build(ids, x, metric="l2").save(builder.path(files["index"]))
            np.save(builder.path(files["pairs"]), _pair_sample(ids, x, by), allow_pickle=False)
            taught = dict(manifest.get("taught") or {})
            taught[name] = {**entry, "dim": int(x.shape[1]), "files": files}
            return {"taught": taught}

        return set(files.values()), write

    return amend(cdir, prepare, reason=f"teach --label-column {entry.get('label_column')} --name {name}",
                 notify=notify)


def remove_taught(cdir: Path, name: str, *, notify: Callable[[str], None] | None = None) -> int:
    """Publish a generation without the taught space *name* (its projection, embedding, index and pair sample are
    not carried into it; earlier generations keep them until they are collected). :class:`InvalidOption`, naming the
    spaces there are, if the current generation holds no such space. Returns the new generation's number."""
    from .generation import amend

    def prepare(n, folder, manifest):
        taught = dict(manifest.get("taught") or {})
        if name not in taught:
            there = ", ".join(f"taught:{t}" for t in sorted(taught)) or "none"
            raise InvalidOption(f"the catalog holds no taught space taught:{name} (taught spaces: {there})")
        entry = taught.pop(name)
        gone = set((entry.get("files") or files_of(name)).values())
        return gone, lambda builder: {"taught": taught}

    return amend(cdir, prepare, reason=f"unteach {name}", notify=notify)


def carry_taught(builder, previous_folder: Path | None, previous_manifest: dict) -> dict:
    """Link the previous generation's taught spaces into *builder*'s generation and return their manifest entries
    (unchanged: whether they still fit the new generation is judged when they are read, by :func:`stale_reason`)."""
    taught = dict(previous_manifest.get("taught") or {})
    if previous_folder is None:
        return {}
    kept = {}
    for name, entry in taught.items():
        files = entry.get("files") or files_of(name)
        if all((previous_folder / f).is_file() for f in files.values()):
            for f in files.values():
                builder.link(previous_folder / f, f)
            kept[name] = entry
    return kept
