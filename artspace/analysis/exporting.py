"""The works table for a spreadsheet or pandas (``artspace export``): metadata, stored analysis columns, and each
work's nearest works in every space, exactly as ``artspace similar`` lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..atomic import atomic_write
from ..catalog.metadata import make_room
from ..errors import InvalidOption
from ..outputs import check_output, marker, replaceable
from ..spaces import formula, space
from .files import metadata_file, write_csv
from .neighbours import nearest
from .source import read_source

__all__ = ["export"]


def export(source, path, *, neighbors: int = 5, by: Sequence[str] | str | None = None) -> pd.DataFrame:
    """Write the works table, with stored cluster labels and map coordinates and each work's nearest works.

    A CSV is safe to open in a spreadsheet: a text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return (a title such as ``=HYPERLINK(...)`` in the collection's metadata) is written with a leading
    ``'``, so that Excel, LibreOffice or Google Sheets shows it as text instead of running it as a formula
    (:func:`artspace.outputs.neutralise_formulas`); numbers are written as they are. Parquet keeps the raw values.

    Parameters
    ----------
    source : Catalog, (works, {space: X}) or Source
    path : path
        ``.csv`` or ``.parquet`` (written atomically); neither inside the catalog folder nor over the metadata CSV
        the catalog joins, and an existing file only when it is an earlier export (a CSV with the same header line,
        a Parquet file whose metadata names artspace); :class:`~artspace.errors.OutputConflict` otherwise.
    neighbors : int
        Neighbours per work and per space (0: none).
    by : sequence of {"style", "l_style", "content", "taught:NAME"}, optional
        Spaces whose neighbours are listed (default: every space the source has; for a catalog the three and each
        of its taught spaces that is current): columns ``<space>_neighbors`` (ids, nearest first)
        and ``<space>_neighbor_distances``, for a catalog exactly the ids and distances
        ``Catalog.similar(id, by=space, k=neighbors)`` gives each work (for ``style``, ranked by the relative
        signature distance; see :mod:`artspace.analysis.neighbours`). Lists in Parquet, ``;``-separated in CSV.

    Returns
    -------
    DataFrame
        The table written. ``table.attrs["stale_columns"]`` lists stored analysis columns computed before the works
        last changed (``{column: command}``): run those commands again to update them.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        what = "a folder" if path.is_dir() else repr(path.suffix) if path.suffix else "a file without suffix"
        raise InvalidOption(f"{path}: export writes one .csv or .parquet file, not {what}; give a file name such as "
                            f"{path / 'works.csv' if path.is_dir() else path.with_suffix('.csv')}")
    if isinstance(neighbors, bool) or not isinstance(neighbors, (int, np.integer)) or neighbors < 0:
        raise InvalidOption(f"neighbors must be 0 (none) or more, not {neighbors}")
    spaces = [by] if isinstance(by, str) else None if by is None else list(by)
    for b in spaces or []:
        space(b)
    src = read_source(source)
    if spaces is None:  # every space: the three, and each taught space that is current (a stale one would refuse)
        taught = src.catalog.taught_spaces if src.catalog is not None else {}
        spaces = src.spaces + [b for b, stale in taught.items() if stale is None]
    check_output(path, inputs=[metadata_file(src)], protected_dirs=[src.catalog.dir] if src.catalog else [])
    if suffix == ".parquet":  # a CSV is checked against its header when written (write_csv)
        replaceable(path, _parquet_made_here)
    # a metadata column named like one export computes ('file', 'style_neighbors') is kept as 'meta_...'
    computed = ["file"] + [f"{space(b).key}_{what}" for b in (spaces if neighbors > 0 else [])
                           for what in ("neighbors", "neighbor_distances")]
    table = make_room(src.works.copy(), computed)
    if src.root is not None:
        table.insert(2, "file", [src.catalog.location(p) for p in table["path"]])
    for b in spaces if neighbors > 0 else []:
        ids, dist = nearest(src, by=b, k=neighbors)
        key = space(b).key  # taught:movement -> taught_movement_neighbors
        if suffix == ".csv":
            table[f"{key}_neighbors"] = [";".join(str(i) for i in r if i >= 0) for r in ids]
            table[f"{key}_neighbor_distances"] = [";".join(f"{v:.6g}" for v, i in zip(d, r) if i >= 0)
                                                  for r, d in zip(ids, dist)]
        else:
            table[f"{key}_neighbors"] = [r[r >= 0] for r in ids]
            table[f"{key}_neighbor_distances"] = [d[r >= 0].astype(np.float64) for r, d in zip(ids, dist)]
    if suffix == ".csv":
        write_csv(table, path)
    else:
        about = _provenance(src, spaces if neighbors > 0 else [], neighbors)
        atomic_write(path, lambda tmp: _write_parquet(table, tmp, about))
    table.attrs["stale_columns"] = src.stale
    return table


def _provenance(src, spaces: list, neighbors: int) -> dict:
    """What the exported figures are and where they come from (the Parquet file's ``artspace_provenance``): the
    catalog and generation, its feature spec, and for each neighbour list the space's label and formula."""
    import torch

    from .. import __version__

    cat = src.catalog
    return {"artspace_version": __version__, "torch_version": torch.__version__,
            "catalog": str(Path(cat.dir).resolve()) if cat is not None else None,
            "generation": cat.generation if cat is not None else None,
            "spec": cat.spec.to_dict() if cat is not None else None,
            "neighbors": neighbors,
            "spaces": {space(b).key: {"label": space(b).label,
                                      "formula": formula(b, cat.spec if cat is not None else None)} for b in spaces},
            "stale_columns": dict(src.stale or {})}


def _write_parquet(table: pd.DataFrame, path: Path, about: dict | None = None) -> None:
    """*table* as Parquet, its schema metadata saying that artspace wrote it (so that a later export may replace
    it, and nothing else) and, under ``artspace_provenance``, what its figures are (:func:`_provenance`)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(table, preserve_index=False)
    meta = {**(t.schema.metadata or {}), b"artspace": marker().encode()}
    if about is not None:
        meta[b"artspace_provenance"] = json.dumps(about, default=str).encode()
    pq.write_table(t.replace_schema_metadata(meta), path)


def _parquet_made_here(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        return b"artspace" in (pq.read_schema(path).metadata or {})
    except Exception:  # noqa: BLE001 - not a Parquet file (or unreadable): not ours
        return False
