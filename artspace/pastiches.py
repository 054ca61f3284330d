r"""Pastiche sets: the same photograph painted in many hands, made with artspace's own AdaIN.

A photograph and its pastiches (Huang & Belongie 2017, one pass each) share their subject and composition and
nothing of the hand; pastiches of different photographs in one painting share the hand and nothing of the subject.
Such groups teach the content space what to ignore (:mod:`artspace.content`) and measure whether it does
(``benchmarks/bench_content.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_write
from .errors import ArtspaceError, InvalidOption

__all__ = ["COLUMNS", "pastiche_set"]


def pastiche_set(photos: str | os.PathLike, paintings: str | os.PathLike, out: str | os.PathLike, *,
                 photos_n: int = 300, per_photo: int = 6, size: int = 224, skip_photos: int = 0,
                 painting_share: tuple[int, int] = (0, 1), paintings_n: int | None = None, seed: int = 0,
                 progress=None) -> pd.DataFrame:
    """Paint *photos_n* photographs of the folder *photos* (seeded choice, after leaving out the first
    *skip_photos* of that order) each in *per_photo* paintings of *paintings* (seeded, without repeats for a
    photograph) with AdaIN, at *size* px; write them with each photograph (resized) under *out*, and
    ``out/metadata.csv``: path, photo (the group), subject (the photograph's label where the folder's
    metadata.csv has a ``class`` column), painting, movement (its ``style`` column likewise), and kind (``photo`` / ``pastiche``). *painting_share* ``(j, m)`` takes only every m-th painting from the
    j-th (disjoint sets of paintings for fitting and for measuring); *paintings_n* then keeps a seeded choice of that
    many (so that each painting styles several photographs)."""
    from .feedforward import adain_transfer
    from .images import open_image, resize_long_side, save_image, walk_images

    photos, paintings, out = Path(photos), Path(paintings), Path(out)
    for name, value in (("photos_n", photos_n), ("per_photo", per_photo)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidOption(f"{name} must be a whole number of at least 1, not {value!r}")
    _check_own(out / "metadata.csv")
    photo_files = sorted(walk_images(photos))
    painting_files = sorted(walk_images(paintings))[painting_share[0]::painting_share[1]]
    if not photo_files or not painting_files:
        raise ArtspaceError(f"{photos if not photo_files else paintings} holds no images")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(photo_files))[skip_photos:skip_photos + photos_n]
    if paintings_n is not None and paintings_n < len(painting_files):
        painting_files = [painting_files[i] for i in sorted(rng.choice(len(painting_files), paintings_n,
                                                                       replace=False))]
    if per_photo > len(painting_files):
        raise InvalidOption(f"per_photo={per_photo} paintings for each photograph, but {len(painting_files)} "
                            f"paintings are taken from {paintings}; ask for at most {len(painting_files)}")
    labels, movements = _labels(photos, "class"), _labels(paintings, "style")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for j, i in enumerate(order):
        photo = photo_files[i]
        rel = photo.relative_to(photos).as_posix()
        stem = f"p{j:04d}"
        im = resize_long_side(open_image(photo, max_side=2 * size), size)
        target = out / "images" / f"{stem}_photo.png"
        if not target.exists():
            save_image(im, target)
        rows.append({"path": f"images/{target.name}", "photo": rel, "subject": labels.get(rel), "painting": None,
                     "movement": None, "kind": "photo"})
        for p in rng.choice(len(painting_files), size=min(per_photo, len(painting_files)), replace=False):
            painting = painting_files[p]
            target = out / "images" / f"{stem}_s{p:04d}.png"
            if not target.exists():
                result = adain_transfer(im, [painting], size=size)
                save_image(result.image, target)
            name = painting.relative_to(paintings).as_posix()
            rows.append({"path": f"images/{target.name}", "photo": rel, "subject": labels.get(rel),
                         "painting": name, "movement": movements.get(name), "kind": "pastiche"})
        if progress is not None:
            progress(j + 1, len(order))
    table = pd.DataFrame(rows, columns=COLUMNS)
    atomic_write(out / "metadata.csv", lambda p: table.to_csv(p, index=False))
    return table


COLUMNS = ["path", "photo", "subject", "painting", "movement", "kind"]


def _check_own(csv: Path) -> None:
    """Refuse to write into a folder whose metadata.csv is not a pastiche set's (it would be replaced)."""
    if csv.exists():
        try:
            ours = list(pd.read_csv(csv, nrows=0).columns) == COLUMNS
        except (OSError, ValueError, pd.errors.ParserError):
            ours = False
        if not ours:
            raise ArtspaceError(f"{csv} exists and is not a pastiche set's metadata; artspace never overwrites "
                                f"it: choose another output folder")


def _labels(folder: Path, column: str) -> dict:
    """``{relative path: label}`` from a folder's metadata.csv, where it has one with the *column*."""
    csv = folder / "metadata.csv"
    if not csv.is_file():
        return {}
    table = pd.read_csv(csv)
    if column not in table.columns or "path" not in table.columns:
        return {}
    return dict(zip(table["path"].astype(str), table[column].astype(str)))
