r"""Reference axes: what another labelled collection teaches about style, for teaching this one.

A scholar who teaches a style space (:mod:`artspace.analysis.teaching`) labels a few dozen works per movement or hand;
a discriminant estimated from so few is noisy. Reference axes carry what a larger labelled collection already shows:
Fisher's discriminant (:func:`artspace.discriminant.fisher`) of the style signature's CountSketch
(:mod:`artspace.projection`; the same seeded sketch in every catalog), fitted on the principal components of the
reference works,

.. math::

    r(s) = (s - \mu_r)\,W_r, \qquad W_r \in \mathbb R^{m \times (c - 1)},

one unit of each axis one within-label standard deviation of the reference collection. Because the sketch is the
same everywhere and every catalog stores the coordinates :math:`e` of a work's sketch on its own principal axes
(:math:`s \approx \mu + e\,C`), the axes reach any catalog's stored embeddings as the small matrix :math:`C\,W_r` —
no image is read again. :func:`artspace.analysis.teaching.teach` offers them to its learners as extra coordinates
and keeps them only where its cross-validation on the scholar's own labels says they help.

artspace ships one set (``artspace/data/movement_axes.npz``): the six axes that best separate seven WikiArt movements
(Art Nouveau, Baroque, Expressionism, Impressionism, Post-Impressionism, Romanticism, Symbolism) in 2,100 paintings
that no evaluation set contains; docs/benchmarks.md gives the command that fits it, :func:`fit_reference` the method.
``artspace fit-reference`` (:func:`fit_reference_from`) fits axes from the labelled works of any catalog — a
museum's attributed collection, say — for ``artspace teach --reference FILE``.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_savez
from .discriminant import LinearProjection
from .errors import ArtspaceError, InvalidOption

__all__ = ["ReferenceAxes", "fit_reference", "fit_reference_from", "sketch_images", "sketch_info", "shipped_axes",
           "axes_for",
           "PCA_DIMS", "SHRINKAGES", "MAX_WORKS"]

#: Principal components of the reference sketches tried by :func:`fit_reference` ...
PCA_DIMS = (128, 256, 512, 1024)
#: ... and shrinkages of the within-label covariance.
SHRINKAGES = (0.05, 0.1, 0.2, 0.3)
#: :func:`fit_reference_from` reads at most this many labelled works (drawn per label in proportion): each sketch is
#: 32,768 numbers, and the principal components of 3,000 of them take about 2 GB.
MAX_WORKS = 3000


@dataclass
class ReferenceAxes(LinearProjection):
    """Discriminant axes of the style-signature sketch: ``(sketch - mean) @ components`` (a
    :class:`~artspace.discriminant.LinearProjection` of the sketch); ``info`` says what they were fitted on (the
    signature layers, weights and sketch seed they need, the labels, the cross-validated precision)."""

    def on_embedding(self, projection) -> np.ndarray:
        """The axes as a (k, d) matrix of a catalog's style embedding, whose
        :class:`~artspace.projection.StyleProjection` is *projection*: :math:`C W_r`. Coordinates computed with it
        differ from :math:`r(\\mu + eC)` by one constant vector, which no distance sees."""
        return np.asarray(projection.components, np.float64) @ np.asarray(self.components, np.float64)

    def matches(self, manifest: dict) -> str | None:
        """None when the axes apply to the catalog of *manifest*; else why not, in words."""
        spec, style = manifest.get("spec") or {}, (manifest.get("spaces") or {}).get("style") or {}
        want = {"signature layers": list(self.info.get("signature_layers", [])),
                "weights": self.info.get("weights"), "sketch seed": self.info.get("sketch_seed")}
        got = {"signature layers": list(spec.get("signature_layers") or []), "weights": spec.get("weights"),
               "sketch seed": style.get("sketch_seed")}
        diff = [f"{k} {got[k]} (the axes need {want[k]})" for k in want if got[k] != want[k]]
        return None if not diff else "the catalog's " + ", ".join(diff)

    def save(self, path: str | os.PathLike) -> None:
        """Write the axes atomically, in float16 (the six shipped axes of 32,768 numbers take 0.43 MB)."""
        atomic_savez(path, compressed=True, kind=np.array("reference_axes"), mean=self.mean.astype(np.float16),
                     components=self.components.astype(np.float16),
                     info=np.array(json.dumps(self.info, sort_keys=True)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ReferenceAxes":
        """Read axes written by :meth:`save`; :class:`~artspace.errors.ArtspaceError` naming the file otherwise."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if "kind" not in z.files or str(z["kind"]) != "reference_axes":
                    raise ArtspaceError(f"{path} is not a file of reference axes; fit one with "
                                        f"`artspace fit-reference`")
                return cls(mean=z["mean"].astype(np.float64), components=z["components"].astype(np.float64),
                           info=json.loads(str(z["info"])))
        except ArtspaceError:
            raise
        except (OSError, KeyError, ValueError, EOFError) as e:
            raise ArtspaceError(f"cannot read the reference axes {path} ({e}); fit them again with "
                                f"`artspace fit-reference`") from None


def _shipped_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("artspace") / "data" / "movement_axes.npz"))


@functools.lru_cache(maxsize=1)
def shipped_axes() -> ReferenceAxes | None:
    """The movement axes shipped with artspace (None in a source tree where they have not been fitted)."""
    path = _shipped_path()
    return ReferenceAxes.load(path) if path.is_file() else None


def axes_for(manifest: dict, reference: bool | str | os.PathLike = True) -> tuple[ReferenceAxes | None, str]:
    """The reference axes a catalog of *manifest* may teach with, and a note saying which (or why none).

    *reference*: True for the shipped axes where they apply (silently none where they do not), False for none, or
    the path of a file written by :meth:`ReferenceAxes.save` — refused with the reason if it does not apply."""
    if reference is False or reference is None:
        return None, "no reference axes (turned off)"
    if reference is True:
        axes = shipped_axes()
        if axes is None:
            return None, "no reference axes (none shipped in this installation)"
        why = axes.matches(manifest)
        return (None, f"no reference axes ({why})") if why else (axes, f"reference axes: {axes.info.get('name')}")
    axes = ReferenceAxes.load(reference)
    why = axes.matches(manifest)
    if why:
        raise InvalidOption(f"the reference axes {reference} do not apply to this catalog: {why}; fit axes with "
                            f"this catalog's settings or teach without them")
    return axes, f"reference axes: {axes.info.get('name') or reference}"


def _precision10(z: np.ndarray, y: np.ndarray, queries: np.ndarray | None = None) -> float:
    """Mean same-label precision@10 of the rows *queries* (default: every row) among all the other rows (squared
    L2)."""
    from .analysis.teaching import _neighbours  # the search teach scores with

    q = np.arange(len(z)) if queries is None else np.asarray(queries)
    return float((y[_neighbours(z, q, 10)] == y[q][:, None]).mean())


def fit_reference(sketches: np.ndarray, labels, *, name: str, info: dict | None = None, folds: int = 5,
                  seed: int = 0, notify=None) -> ReferenceAxes:
    """Fit reference axes on the signature sketches (n, m) of a labelled collection.

    The number of principal components (:data:`PCA_DIMS`) and the shrinkage (:data:`SHRINKAGES`) are chosen by
    stratified *folds*-fold cross-validation: each held-out fold's works are searched among themselves (a collection
    the axes never saw) in the space fitted on the other folds, and the setting with the highest mean same-label
    precision@10 is fitted again on every work. Where a held-out fold has fewer than 11 works of some label (a small
    collection: there, precision@10 among themselves would measure the fold's size, not the axes), each held-out
    work is searched among all the other works instead. The file says which (``cv_search``) and the chance level
    (``cv_chance``: the mean share of a work's label among the others). *info* (the signature layers, weights and
    sketch seed the sketches were made with, where they came from) is kept in the file."""
    from sklearn.model_selection import StratifiedKFold

    from .discriminant import fisher
    from .projection import StyleProjection

    names, y = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    if len(names) < 2:
        raise InvalidOption("reference axes need at least 2 labels")
    x = np.asarray(sketches, np.float32)
    say = notify or (lambda m: None)

    def basis(rows):
        p = StyleProjection.fit(x[rows], k=max(PCA_DIMS))
        return p.mean.astype(np.float64), p.components.T.astype(np.float64)

    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y))
    among_themselves = min(np.bincount(y[test], minlength=len(names)).min() for _, test in splits) >= 11
    # principal components every fitting fold has (its works less one)
    dims = sorted({min(p, min(len(train) for train, _ in splits) - 1) for p in PCA_DIMS})
    scores = {}
    for j, (train, test) in enumerate(splits):
        mu, axes = basis(train)
        z_train, z_all = (x[train] - mu) @ axes, (x - mu) @ axes
        for p in dims:
            for s in SHRINKAGES:
                f = fisher(z_train[:, :p], y[train], shrinkage=s)
                z = (z_all[:, :p] - f.mean) @ f.components
                scores.setdefault((p, s), []).append(_precision10(z[test], y[test]) if among_themselves
                                                     else _precision10(z, y, queries=test))
        say(f"fold {j + 1}/{folds} scored")
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    p, s = max(mean, key=mean.get)
    mu, axes = basis(np.arange(len(x)))
    f = fisher((x - mu) @ axes[:, :p], y, shrinkage=s)
    comp = axes[:, :p] @ f.components
    return ReferenceAxes(mean=mu + axes[:, :p] @ f.mean, components=comp,
                         info={**(info or {}), "name": name, "labels": names.tolist(), "works": int(len(y)),
                               "pca": int(p), "shrinkage": float(s), "folds": int(folds),
                               "cv_precision_at_10": round(mean[(p, s)], 4),
                               "cv_search": "held-out works among themselves" if among_themselves
                               else "held-out works among all the others",
                               "cv_chance": round(float(((np.bincount(y)[y] - 1) / (len(y) - 1)).mean()), 4),
                               "cv_grid": {f"{a}/{b}": round(v, 4) for (a, b), v in sorted(mean.items())}})


def sketch_images(images, extractor, sketch, *, batch_size: int = 8, notify=None) -> np.ndarray:
    """The style-signature sketches (n, 32,768) of *images* (paths or PIL images), computed by *extractor* (an
    :class:`~artspace.features.Extractor`) and *sketch* (its :class:`~artspace.projection.CountSketch`), in
    float32."""
    import torch

    from .images import open_image
    from .projection import SKETCH_DIM

    images = list(images)
    rows = []
    with torch.inference_mode():
        for s in range(0, len(images), batch_size):
            batch = [im if not isinstance(im, (str, os.PathLike)) else open_image(im)
                     for im in images[s:s + batch_size]]
            rows.append(sketch(extractor.encode(extractor.batch(batch))["signature"]).numpy())
            if notify and (s // batch_size) % 25 == 0:
                notify(f"sketched {min(s + batch_size, len(images))} of {len(images)} images")
    return np.concatenate(rows) if rows else np.zeros((0, SKETCH_DIM), np.float32)


def sketch_info(extractor, sketch) -> dict:
    """What axes fitted on sketches made by :func:`sketch_images` need of a catalog (checked by
    :meth:`ReferenceAxes.matches`) and how they were made, for their ``info``."""
    spec = extractor.spec
    return {"signature_layers": list(spec.signature_layers), "weights": str(spec.weights),
            "sketch_seed": int(sketch.seed), "size": int(spec.size), "precision": str(extractor.precision)}


def fit_reference_from(catalog, label_column: str, *, name: str | None = None, min_works: int = 5, folds: int = 5,
                       seed: int = 0, batch_size: int = 8, notify=None) -> ReferenceAxes:
    """Reference axes from the labelled works of *catalog*: their images are read again (the catalog keeps only the
    compact embeddings), sketched as the catalog sketched them, and :func:`fit_reference` fits the axes of the labels
    in *label_column* that have at least *min_works* works (at most :data:`MAX_WORKS` works, drawn per label).
    Save the result with ``.save(path)`` and teach with it: ``Catalog.teach(..., reference=path)``."""
    works = catalog.works
    if label_column not in works.columns:
        raise InvalidOption(f"no column {label_column!r} in the works table of {catalog.dir} (--label-column)")
    col = works.set_index("id")[label_column].dropna().astype(str)
    counts = col.value_counts()
    kept = counts[counts >= max(min_works, folds)]
    if len(kept) < 2:
        raise InvalidOption(f"column {label_column!r} of {catalog.dir} has {len(kept)} label(s) with at least "
                            f"{max(min_works, folds)} works; reference axes need at least 2: label more works")
    col = col[col.isin(kept.index)]
    if len(col) > MAX_WORKS:
        rng = np.random.default_rng(seed)
        take = [rng.permutation(np.flatnonzero(col.to_numpy() == lab))[:max(folds, int(MAX_WORKS * n / len(col)))]
                for lab, n in kept.items()]
        col = col.iloc[np.sort(np.concatenate(take))]
    from .projection import CountSketch

    style = (catalog.manifest.get("spaces") or {}).get("style") or {}
    ex = catalog.extractor
    sketch = CountSketch(sum(ex.spec.signature_dims), **({"seed": int(style["sketch_seed"])}
                                                        if "sketch_seed" in style else {}))
    x = sketch_images([catalog.image_path(int(i)) for i in col.index], ex, sketch, batch_size=batch_size,
                      notify=notify)
    return fit_reference(x, col.to_numpy(), name=name or label_column, folds=folds, seed=seed, notify=notify,
                         info={**sketch_info(ex, sketch), "column": label_column,
                               "fitted_on": f"{len(col)} labelled works of the catalog {catalog.dir}"})
