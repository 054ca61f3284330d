r"""A style space taught by a scholar's labels, and attributions of the works that have none.

Gram statistics (Gatys et al. 2016) measure texture and brushwork; movements, workshops and hands only partly follow
them. A scholar usually holds labels for part of a collection. :func:`teach` learns from them a linear projection of
the stored style embedding (the compact relu4_1 + relu5_1 signature of :mod:`artspace.spaces`) under which works of
one label lie close, and stores it in the catalog as the space ``taught:NAME``: searched, mapped, clustered and
exported like the others. :func:`attribute` then gives every unlabelled work its likeliest labels and, as evidence a
scholar can look at, the labelled works nearest to it in that space.

The learners (the first two a linear map, so that one matrix carries the whole space):

* ``lda``: principal components of the labelled works (``pca`` of them), then Fisher's discriminant (Fisher 1936)
  with the within-label covariance shrunk towards a multiple of the identity (Friedman 1989; Ledoit & Wolf 2004;
  :func:`artspace.discriminant.fisher`): squared distances are Mahalanobis distances under the pooled within-label
  covariance, along the labels − 1 directions that separate the labels most;
* ``nca``: principal components, then neighbourhood components analysis (Goldberger et al. 2004), which learns the
  map that maximises the expected leave-one-out accuracy of a stochastic nearest-neighbour rule (fitted on at most
  :data:`NCA_SAMPLE` labelled works: its cost grows with the square of their number);
* ``mlp``: not linear, a two-layer perceptron to 32 unit dimensions trained with a supervised contrastive loss
  (Khosla et al. 2020; :mod:`artspace.contrastive`), 100 or 200 steps.

Fifteen works per label teach a noisy space. Where the catalog's features allow, the learners are also offered
*reference axes* (:mod:`artspace.reference`): the directions of the style signature that separate the labels of a
larger collection — by default the six axes of seven WikiArt movements in 2,100 paintings, shipped with artspace.
The settings of :data:`REFERENCE_SETTINGS` see each work's embedding extended by its reference coordinates (weighted
by *a*); an ``mlp`` head among them also keeps those coordinates beside its output. They compete with the others in
the same cross-validation, so they are kept only where the scholar's own labels agree with them.

Every candidate setting is scored by cross-validation grouped by work (or by *group_column*, say the artist, so that a
hand never helps score itself): each held-out work's ten nearest other labelled works are searched in the space
fitted without it, and the setting with the highest mean same-label precision@10 is fitted again on every labelled
work. Labels are predicted from the distances to each label's mean in the taught space (the posterior of a Gaussian
model with the shared, whitened covariance), their probabilities calibrated on the out-of-fold predictions by one
temperature (Guo et al. 2017) and kept off 0 and 1 by Laplace's rule of succession. The report gives, per label,
the cross-validated precision@10 and accuracy with bootstrap 95 % intervals (Efron & Tibshirani 1993), the
confusion matrix, the calibration curve, and the same figures in the raw style space (ranked as ``similar --by
style`` ranks, accuracy by a 10-nearest-neighbour vote), so the scholar sees what teaching bought.
"""

from __future__ import annotations

import datetime as _dt
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..discriminant import LinearProjection, fisher, principal_axes
from ..errors import InvalidOption
from ..spaces import TAUGHT, space
from .files import check_out, csv_target, figure_target, save_figure, save_picture, write_csv

__all__ = ["MIN_WORKS", "METHODS", "STEPS", "TeachResult", "teach", "attribute", "calibration_table", "fit_projection",
           "reliability_figure"]

#: Labels with fewer works than this are left out (named in a warning): too few to learn from or to score.
MIN_WORKS = 5
#: The learners :func:`teach` chooses among.
METHODS = ("lda", "nca", "mlp")
#: Settings tried for each learner: principal components kept (None: every one the labelled works allow) ...
PCA_DIMS = (16, 32, 64, None)
#: ... and, for ``lda``, the shrinkage of the within-label covariance; for ``mlp``, the training steps.
SHRINKAGES = (0.1, 0.3, 0.5, 0.7, 0.9)
STEPS = (100, 200)
#: Settings tried beside reference axes (:mod:`artspace.reference`): the weight of the reference coordinates in the
#: learner's input (measured on wikiart-dev and pacs-dev, docs/benchmarks.md; ``lda`` keeps every principal component).
REFERENCE_SETTINGS = ({"method": "lda", "shrinkage": 0.3, "reference": 0.2},
                      {"method": "mlp", "steps": 100, "reference": 0.3},
                      {"method": "mlp", "steps": 200, "reference": 0.3})
#: NCA is fitted on at most this many labelled works (drawn per label in proportion): its cost grows with their
#: square (46 s for five folds of 2,000 works at 10,000 labels, 6 s at 1,000, on two cores).
NCA_SAMPLE = 1000
#: Candidate settings are compared on the held-out precision of at most this many labelled works (drawn per label in
#: proportion; each still searched among all the labelled works); the one kept is then measured on every one.
SCORE_SAMPLE = 2000
#: Neighbours scored by precision@k.
K = 10
BOOTSTRAP = 1000


# ---- the learners ---------------------------------------------------------------------------------------------------


def _pca(x: np.ndarray, dims: int | None):
    """Mean and the leading principal axes (D, p) of the rows of *x*."""
    axes = principal_axes(x, dims)
    return axes.mean, axes.components


def fit_projection(x: np.ndarray, y: np.ndarray, *, method: str = "lda", pca: int | None = None,
                   shrinkage: float = 0.5, steps: int = 200, seed: int = 0, basis=None, reference: float = 0.0,
                   axes: np.ndarray | None = None):
    """One learner fitted on the rows of *x* (n, D) with integer labels *y*: a :class:`LinearProjection` of the
    style embedding (principal components and the learnt map folded into one matrix). *basis*: the rows' mean and
    every principal axis, when already computed (the settings tried on one fold share them). ``method="mlp"``
    returns a :class:`~artspace.contrastive.MLPProjection` trained for *steps* on the whole embedding instead.

    With reference *axes* (D, d) (:meth:`artspace.reference.ReferenceAxes.on_embedding`) and a *reference* weight
    a > 0, the learner sees each row extended by its reference coordinates, :math:`[x,\\ a\\,xA]`; what it learns is
    folded back into a map of *x* alone (exactly, up to one constant vector that no distance sees), and an ``mlp``
    head passes the reference coordinates :math:`xA` through beside its unit output, each part scaled so that its
    median squared distance between the rows is 1."""
    if reference and axes is not None:
        return _fit_with_reference(np.asarray(x, np.float64), y, method, pca, shrinkage, steps, seed, float(reference),
                                   np.asarray(axes, np.float64))
    if method == "mlp":
        from ..contrastive import train_head

        return train_head(np.asarray(x, np.float64), y, steps=steps, seed=seed)
    from threadpoolctl import threadpool_limits

    # the matrices are small (D ≤ a few hundred): one BLAS thread is a hundred times faster than several that wait
    # for each other on a busy machine
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(np.asarray(x, np.float64), y, method, pca, shrinkage, seed, basis)


def _median_sq_distance(z: np.ndarray, seed: int, cap: int = 2000) -> float:
    """The median squared Euclidean distance between two different rows of *z* (of at most *cap* rows drawn)."""
    rows = np.random.default_rng(seed).permutation(len(z))[:cap]
    q = z[rows]
    sq = (q ** 2).sum(1)
    d = sq[:, None] + sq[None] - 2.0 * q @ q.T
    return float(np.median(d[np.triu_indices(len(q), 1)])) or 1.0


def _fit_with_reference(x, y, method, pca, shrinkage, steps, seed, weight, axes):
    from threadpoolctl import threadpool_limits

    lift = np.c_[np.eye(x.shape[1]), weight * axes]  # x -> [x, a xA]
    wide = x @ lift
    if method == "lda":
        with threadpool_limits(limits=1, user_api="blas"):
            p = _fit(wide, y, method, pca, shrinkage, seed, None)
        return LinearProjection(mean=p.mean[:x.shape[1]], components=lift @ p.components,
                                info={**p.info, "reference": weight})
    if method != "mlp":
        raise InvalidOption(f"reference axes are offered to lda and mlp, not {method!r}")
    from ..contrastive import train_head

    head = train_head(wide, y, steps=steps, seed=seed)
    w1 = head.w1 / head.scale[:, None]
    head.b1 = head.b1 - (head.mean / head.scale) @ head.w1
    head.w1 = lift @ w1
    head.mean, head.scale = np.zeros(x.shape[1]), np.ones(x.shape[1])
    ref = x @ axes
    head.skip = axes / np.sqrt(_median_sq_distance(ref, seed))
    head.head_weight = 1.0 / np.sqrt(_median_sq_distance(head.transform(x)[:, axes.shape[1]:].astype(np.float64),
                                                         seed))
    head.info = {**head.info, "reference": weight}
    return head


def _fit(x, y, method, pca, shrinkage, seed, basis) -> LinearProjection:
    if basis is None:
        mu, axes = _pca(x, pca)
    else:
        mu, axes = basis[0], basis[1][:, :pca]
    z = (x - mu) @ axes
    if method == "lda":
        inner = fisher(z, y, shrinkage=shrinkage)
        mu = mu + axes @ inner.mean  # the discriminant's own centring, folded into the mean
        comp = axes @ inner.components
    elif method == "nca":
        from sklearn.neighbors import NeighborhoodComponentsAnalysis

        scale = float(np.sqrt(z.var(0).sum() / z.shape[1])) or 1.0
        rows = _sample(y, NCA_SAMPLE, seed)
        dim = min(z.shape[1], max(len(np.unique(y)) - 1, 2))
        nca = NeighborhoodComponentsAnalysis(n_components=dim, init="lda" if dim < len(np.unique(y)) else "pca",
                                             max_iter=40, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notices: the cross-validation judges the result
            nca.fit(z[rows] / scale, y[rows])
        comp = axes @ nca.components_.T / scale
    else:
        raise InvalidOption(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    return LinearProjection(mean=mu, components=comp, info={"method": method, "pca": int(axes.shape[1]),
                                                            **({"shrinkage": float(shrinkage)} if method == "lda"
                                                               else {})})


def _sample(y: np.ndarray, cap: int, seed: int) -> np.ndarray:
    if len(y) <= cap:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:max(2, int(cap * (y == c).mean()))]
                                   for c in np.unique(y)]))


#: The settings a candidate may have, the columns of ``teach-NAME-candidates.csv`` (empty where one does not apply).
CANDIDATE_SETTINGS = ("pca", "shrinkage", "steps", "reference")


def _candidates(methods, n_fit: int, dim: int, labels: int, reference: bool = False) -> list[dict]:
    """Every setting worth trying: the distinct numbers of principal components the fitting folds allow; with
    *reference* axes, also :data:`REFERENCE_SETTINGS`."""
    cap = min(dim, max(n_fit - labels, 2))
    dims = sorted({min(p or cap, cap) for p in PCA_DIMS})
    out = []
    for m in methods:
        if m == "lda":
            out += [{"method": "lda", "pca": p, "shrinkage": s} for p in dims for s in SHRINKAGES]
        elif m == "nca":
            out += [{"method": "nca", "pca": p} for p in dims if p <= 64]
        elif m == "mlp":
            out += [{"method": "mlp", "steps": s} for s in STEPS]
        else:
            raise InvalidOption(f"method must be one of {', '.join(METHODS)}, not {m!r}")
    if reference:
        out += [{**c, **({"pca": cap} if c["method"] == "lda" else {})} for c in REFERENCE_SETTINGS
                if c["method"] in methods]
    return out


# ---- measuring a space ----------------------------------------------------------------------------------------------


def _neighbours(z: np.ndarray, queries: np.ndarray, k: int, scales: np.ndarray | None = None,
                block: int = 1024) -> np.ndarray:
    """Rows of the *k* nearest other rows of *z* to each row in *queries* (squared L2, divided by
    :math:`\\sqrt{\\rho_q\\rho_y}` when *scales* are given: the relative ranking of ``similar --by style``)."""
    z = np.asarray(z, np.float64)
    sq = (z ** 2).sum(1)
    k = min(k, len(z) - 1)
    out = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), block):
        q = queries[s:s + block]
        d = np.maximum(sq[q][:, None] + sq[None] - 2.0 * z[q] @ z.T, 0.0)
        if scales is not None:
            d /= np.sqrt(scales[q][:, None] * scales[None])
        d[np.arange(len(q)), q] = np.inf
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
        out[s:s + block] = np.take_along_axis(part, order, 1)
    return out


def _logits(z: np.ndarray, centroids: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
    """Log-posteriors (up to a constant) of a Gaussian model with the whitened shared covariance of the taught
    space: −½‖z − μ_c‖² + log π_c."""
    d = (z ** 2).sum(1)[:, None] + (centroids ** 2).sum(1)[None] - 2.0 * z @ centroids.T
    return -0.5 * d + log_prior[None]


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    a = logits / temperature
    a = a - a.max(1, keepdims=True)
    e = np.exp(a)
    return e / e.sum(1, keepdims=True)


def _probabilities(logits: np.ndarray, temperature: float, smoothing: float) -> np.ndarray:
    """Calibrated probabilities: the tempered softmax mixed with the uniform by *smoothing* = 1 / (n + labels), n
    the cross-validated predictions (Laplace's rule of succession): n predictions, all right, cannot show that a
    label is certain, so no probability is 0 or 1."""
    return (1.0 - smoothing) * _softmax(logits, temperature) + smoothing / logits.shape[1]


def _temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the out-of-fold predictions (Guo et al.
    2017)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t):
        p = _softmax(logits, np.exp(log_t))
        return -np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-300)))

    return float(np.exp(minimize_scalar(nll, bounds=(-6.0, 6.0), method="bounded").x))


def _interval(values: np.ndarray, rng, n: int = BOOTSTRAP) -> tuple[float, float, float]:
    """The mean of *values* and its bootstrap 95 % interval (percentiles of *n* resampled means)."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(lo), float(hi)


def _folds(y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Test rows of each fold: stratified by label, a group never split across folds."""
    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = int(min(folds, np.bincount(y).min(), len(np.unique(groups))))
    if n_splits < 2:
        raise InvalidOption(f"cross-validation needs at least 2 folds; the labels or groups allow {n_splits}")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(np.zeros(len(y)), y, groups)]


def _cross_validate(x, y, folds, setting: dict, seed: int, k: int, *, predict: bool = False, bases=None,
                    scored: np.ndarray | None = None, axes: np.ndarray | None = None):
    """Out-of-fold precision@k per row (NaN for rows outside *scored*, a boolean mask; default all) and, with
    *predict*, out-of-fold logits: each fold's works are searched and predicted in the space fitted on the other
    folds (*bases*: each fold's principal axes, computed once)."""
    n, labels = len(y), int(y.max()) + 1
    precision = np.full(n, np.nan)
    logits = np.empty((n, labels)) if predict else None
    for j, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        proj = fit_projection(x[train], y[train], seed=seed, basis=None if bases is None else bases[j], axes=axes,
                              **setting)
        z = proj.transform(x).astype(np.float64)
        q = test if scored is None else test[scored[test]]
        nbr = _neighbours(z, q, k)
        precision[q] = (y[nbr] == y[q][:, None]).mean(1)
        if predict:
            counts = np.bincount(y[train], minlength=labels).astype(np.float64)
            centroids = np.zeros((labels, z.shape[1]))
            np.add.at(centroids, y[train], z[train])
            centroids /= np.maximum(counts, 1)[:, None]
            logits[test] = _logits(z[test], centroids, np.log(np.maximum(counts, 1) / counts.sum()))
    return precision, logits


# ---- the result -----------------------------------------------------------------------------------------------------


@dataclass
class TeachResult:
    """What :func:`teach` fitted, chose and measured.

    ``figures`` has one row per label and one for all works: the number of labelled works, then for the taught and
    the raw style space the cross-validated precision@10 and accuracy, each with its bootstrap 95 % interval
    (``_lo``, ``_hi``). ``confusion`` counts true labels (rows) against out-of-fold predictions (columns);
    ``calibration`` bins the out-of-fold predictions by confidence (mean confidence, accuracy, works);
    ``candidates`` lists every setting tried with its cross-validated precision@10.
    """

    name: str
    label_column: str
    method: str
    settings: dict
    labels: list
    figures: pd.DataFrame
    confusion: pd.DataFrame
    calibration: pd.DataFrame
    candidates: pd.DataFrame
    temperature: float
    left_out: dict = field(default_factory=dict)
    generation: int | None = None
    folds: int = 0
    files: list = field(default_factory=list)
    seconds: float = 0.0
    #: which reference axes the learners were offered (or why none), in words
    reference: str = ""
    #: neighbours in the raw style space's vote (``raw_accuracy``): 10, or one fewer than the smallest label's works
    vote_k: int = K
    #: the generation whose works and labels the space was fitted on (:attr:`generation` is the one that stores it)
    fitted_on: int | None = None

    @property
    def space(self) -> str:
        """The space's name in every command: ``taught:NAME``."""
        return f"{TAUGHT}{self.name}"

    def summary(self) -> str:
        a = self.figures.iloc[-1]
        s = ", ".join(f"{k}={v}" for k, v in self.settings.items())
        lines = [f"taught {self.space} from column {self.label_column!r}: {int(a['works'])} labelled works in "
                 f"{len(self.labels)} labels; {self.method} ({s}) chosen by {self.folds}-fold cross-validation "
                 f"among {len(self.candidates)} settings ({self.reference}); fitted on the works of generation "
                 f"{self.fitted_on}, stored in generation {self.generation}",
                 f"same-label precision@10, cross-validated: taught {a['taught_precision']:.3f} "
                 f"[{a['taught_precision_lo']:.3f}, {a['taught_precision_hi']:.3f}], raw style "
                 f"{a['raw_precision']:.3f} [{a['raw_precision_lo']:.3f}, {a['raw_precision_hi']:.3f}]",
                 f"accuracy, cross-validated: taught {a['taught_accuracy']:.3f} [{a['taught_accuracy_lo']:.3f}, "
                 f"{a['taught_accuracy_hi']:.3f}] (probabilities calibrated, temperature {self.temperature:.3g}), "
                 f"raw style {self.vote_k}-NN vote {a['raw_accuracy']:.3f} [{a['raw_accuracy_lo']:.3f}, "
                 f"{a['raw_accuracy_hi']:.3f}]"]
        lines += [f"warning: {w}" for w in _left_out_warnings(self.label_column, self.left_out)]
        return "\n".join(lines)

    def confusion_figure(self):
        """The confusion matrix as a heat map (rows: true labels, columns: predicted)."""
        import matplotlib.pyplot as plt

        m = self.confusion.to_numpy()
        n = len(m)
        fig, ax = plt.subplots(figsize=(2.5 + 0.55 * n, 2 + 0.5 * n))
        share = m / np.maximum(m.sum(1, keepdims=True), 1)
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.6 else "black")
        ax.set_xticks(range(n), self.confusion.columns, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), self.confusion.index, fontsize=8)
        ax.set_xlabel("predicted (cross-validated)")
        ax.set_ylabel(f"{self.label_column} (true)")
        ax.set_title(f"{self.space}: confusion of the labelled works", fontsize=9)
        fig.colorbar(im, ax=ax, label="share of the row")
        fig.tight_layout()
        return fig

    def calibration_figure(self):
        """The reliability diagram of the calibrated out-of-fold predictions."""
        return reliability_figure(self.calibration, title=f"{self.space}: calibration of the top label")


def reliability_figure(calibration: pd.DataFrame, *, title: str = "calibration of the top label"):
    """A reliability diagram: accuracy against mean confidence per bin of a ``calibration`` table (DeGroot &
    Fienberg 1983); the diagonal is perfect calibration."""
    import matplotlib.pyplot as plt

    c = calibration[calibration["works"] > 0]
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfectly calibrated")
    ax.plot(c["confidence"], c["accuracy"], marker="o", label="top label")
    for _, r in c.iterrows():
        ax.annotate(str(int(r["works"])), (r["confidence"], r["accuracy"]), fontsize=7, xytext=(3, -9),
                    textcoords="offset points")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted probability of the top label")
    ax.set_ylabel("share correct")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def calibration_table(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per bin of the top label's probability: its mean probability, the share correct, the number of works."""
    conf = probs.max(1)
    right = probs.argmax(1) == y
    at = np.minimum((conf * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        m = at == b
        rows.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "confidence": float(conf[m].mean()) if m.any()
                     else np.nan, "accuracy": float(right[m].mean()) if m.any() else np.nan, "works": int(m.sum())})
    return pd.DataFrame(rows)


def _left_out_warnings(column: str, left_out: dict) -> list[str]:
    if not left_out:
        return []
    named = ", ".join(f"{label!r} ({n})" for label, n in left_out.items())
    return [f"label(s) of column {column!r} with fewer than {MIN_WORKS} works were left out (too few to learn "
            f"from): {named}; label more works of them and teach again"]


def _alike_labels(column: str, labels) -> list[str]:
    """A warning for labels that differ only in case or surrounding spaces ("Baroque " and "baroque"): they are
    taught as different labels, which is seldom what a cataloguer meant."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(" ".join(str(label).split()).casefold(), []).append(str(label))
    alike = [sorted(g) for g in groups.values() if len(g) > 1]
    if not alike:
        return []
    named = "; ".join(" / ".join(map(repr, g)) for g in alike)
    return [f"labels of column {column!r} that differ only in case or spaces are taught as different labels: "
            f"{named}; make them the same in the metadata if they name one thing"]


# ---- teach ----------------------------------------------------------------------------------------------------------


def _labelled(cat, label_column: str, min_works: int):
    """Rows (in embedding order) of the works that carry a label the space can learn, their label codes and names,
    and the labels left out for having too few works."""
    works = cat.works
    if label_column not in works.columns:
        from .source import metadata_columns

        raise InvalidOption(f"no column {label_column!r} in the works table of {cat.dir}; columns: "
                            f"{', '.join(metadata_columns(works))}")
    ids = cat._embeddings()["ids"]
    col = works.set_index("id")[label_column].reindex(ids)
    present = col.notna().to_numpy()
    text = col[present].astype(str)
    counts = text.value_counts()
    kept = counts[counts >= min_works]
    left_out = {str(k): int(v) for k, v in counts[counts < min_works].items()}
    if len(kept) < 2:
        raise InvalidOption(
            f"column {label_column!r} has {len(kept)} label(s) with at least {min_works} works "
            f"({', '.join(f'{k}: {v}' for k, v in counts.head(8).items()) or 'no labelled work'}"
            f"{f', … {len(counts) - 8} more' if len(counts) > 8 else ''}); teaching needs "
            f"at least 2 labels of at least {min_works} works each: label more works")
    names = sorted(kept.index.tolist())
    keep = text.isin(names).to_numpy()
    rows = np.flatnonzero(present)[keep]
    y = pd.Categorical(text[keep], categories=names).codes.astype(np.int64)
    return rows, y, names, left_out


def _reference(catalog, reference):
    """(the axes as a (D, d) matrix of the catalog's style embedding, their name, note) for the reference axes of
    *reference* (:func:`artspace.reference.axes_for`), or (None, None, note saying why none)."""
    from ..catalog.generation import PROJECTIONS
    from ..projection import StyleProjection
    from ..reference import axes_for

    axes, note = axes_for(catalog.manifest, reference)
    if axes is None:
        return None, None, note
    matrix = axes.on_embedding(catalog._load(PROJECTIONS["style"], StyleProjection.load))
    return matrix, str(axes.info.get("name") or reference), note


def teach(catalog, label_column: str, *, name: str | None = None, methods=METHODS, folds: int = 5,
          min_works: int = MIN_WORKS, group_column: str | None = None, seed: int = 0, out=None,
          reference: bool | str | Path = True) -> TeachResult:
    """Teach a style space from the labels in *label_column* and store it in the catalog as ``taught:NAME``.

    Parameters
    ----------
    catalog : Catalog
    label_column : str
        The works-table column holding the labels (movement, workshop, hand...); works without one are not used,
        and are the ones :func:`attribute` attributes.
    name : str, optional
        The space's name (default: *label_column*): ``similar --by taught:NAME``. Teaching the same name again
        replaces it in the next generation (earlier generations keep theirs).
    methods : sequence of {"lda", "nca", "mlp"}
        The learners to choose among (module docstring); each is tried with the settings of :data:`PCA_DIMS`,
        :data:`SHRINKAGES` and :data:`STEPS`, and the one with the best cross-validated precision@10 is kept.
    folds : int
        Cross-validation folds (at most the number of works of the smallest label).
    min_works : int
        Labels with fewer works are left out, with a warning naming them (at least 2).
    group_column : str, optional
        Works sharing a value of this column (an artist, a workshop) are always held out together.
    seed : int
        Seed of the folds, of the bootstrap and of NCA.
    reference : bool or path
        Reference axes offered to the learners (:mod:`artspace.reference`; the settings of
        :data:`REFERENCE_SETTINGS`, kept only if the cross-validation prefers them): True for the movement axes shipped
        with artspace where the catalog's features allow them, False for none, or the path of another file of axes.
    out : path, optional
        Folder for the report: ``teach-NAME-figures.csv``, ``-candidates.csv``, ``-confusion.csv``,
        ``-confusion.png`` and ``-calibration.png``.

    Returns
    -------
    TeachResult

    Examples
    --------
    >>> result = catalog.teach("movement", out="report")             # doctest: +SKIP
    >>> catalog.similar("some/work.jpg", by="taught:movement")       # doctest: +SKIP
    """
    t0 = time.perf_counter()
    try:
        space(f"{TAUGHT}{label_column if name is None else name}")  # the name is checked before any work
    except InvalidOption as e:
        if name is not None:
            raise
        raise InvalidOption(f"{e}; the space is named after the label column {label_column!r} unless you name it: "
                            f"give --name (name=...), e.g. --name labels") from None
    name = label_column if name is None else name
    if isinstance(min_works, bool) or not isinstance(min_works, (int, np.integer)) or min_works < 2:
        raise InvalidOption(f"min_works must be a whole number of at least 2, not {min_works!r}")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise InvalidOption(f"folds must be a whole number of at least 2, not {folds!r}")
    from .source import check_seed

    check_seed(seed)
    methods = [methods] if isinstance(methods, str) else list(methods)
    if not methods or any(m not in METHODS for m in methods):
        raise InvalidOption(f"methods must be among {', '.join(METHODS)}, not {methods!r}")
    out = check_out(catalog, out) if out is not None else None
    rows, y, labels, left_out = _labelled(catalog, label_column, min_works)
    for w in _left_out_warnings(label_column, left_out) + _alike_labels(label_column, [*labels, *left_out]):
        warnings.warn(w, stacklevel=2)
    ids_all = catalog._embeddings()["ids"]
    if group_column is not None:
        if group_column not in catalog.works.columns:
            raise InvalidOption(f"no column {group_column!r} in the works table of {catalog.dir} (--group-column)")
        g = catalog.works.set_index("id")[group_column].reindex(ids_all[rows])
        groups = np.where(g.isna(), ids_all[rows].astype(str), g.astype(str))
    else:
        groups = ids_all[rows]
    x = np.asarray(catalog._embeddings()["style"][rows], np.float64)
    axes, ref_name, ref_note = _reference(catalog, reference)
    test_folds = _folds(y, groups, folds, seed)
    n_fit = len(y) - max(len(t) for t in test_folds)
    candidates = _candidates(methods, n_fit, x.shape[1], len(labels), reference=axes is not None)
    if axes is not None and not any(c.get("reference") for c in candidates):
        ref_note = "no reference axes (they are offered to lda and mlp only)"
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        bases = [_pca(x[np.setdiff1d(np.arange(len(y)), t)], None) for t in test_folds]
    scored = np.zeros(len(y), bool)
    scored[_sample(y, SCORE_SAMPLE, seed)] = True
    scores = [float(np.nanmean(_cross_validate(x, y, test_folds, c, seed, K, bases=bases, scored=scored,
                                               axes=axes)[0]))
              for c in candidates]
    best = candidates[int(np.argmax(scores))]
    precision, logits = _cross_validate(x, y, test_folds, best, seed, K, predict=True, bases=bases, axes=axes)
    temperature = _temperature(logits, y)
    smoothing = 1.0 / (len(y) + len(labels))
    probs = _probabilities(logits, temperature, smoothing)
    predicted = probs.argmax(1)

    scales = np.asarray(catalog._embeddings()["style_scale"], np.float64)[rows]
    raw_nbr = _neighbours(x, np.arange(len(y)), K, scales=scales)
    raw_precision = (y[raw_nbr] == y[:, None]).mean(1)
    vote_k = _vote_size(y)
    raw_vote = _vote(y[raw_nbr[:, :vote_k]], len(labels))
    figures = _figures(labels, y, precision, predicted == y, raw_precision, raw_vote == y, seed)
    confusion = pd.DataFrame(np.bincount(y * len(labels) + predicted, minlength=len(labels) ** 2)
                             .reshape(len(labels), -1), index=pd.Index(labels, name=label_column),
                             columns=pd.Index(labels, name="predicted"))

    final = fit_projection(x, y, seed=seed, axes=axes, **best)
    z = final.transform(x).astype(np.float64)
    counts = np.bincount(y, minlength=len(labels)).astype(np.float64)
    centroids = np.zeros((len(labels), z.shape[1]))
    np.add.at(centroids, y, z)
    centroids /= counts[:, None]
    overall = figures.iloc[-1]
    summary = {k: round(float(overall[k]), 6) for k in figures.columns if k not in ("label", "works")}
    final.info = {**final.info, "labels": labels, "centroids": centroids.round(8).tolist(),
                  "log_prior": np.log(counts / counts.sum()).round(8).tolist(), "temperature": temperature,
                  "smoothing": smoothing,
                  "label_column": label_column,
                  **({"reference_axes": ref_name} if best.get("reference") else {})}
    from ..catalog.taught import labels_digest, publish_taught, style_basis

    entry = {"label_column": label_column, "labels_digest": labels_digest(catalog.works, label_column),
             "works_digest": catalog.manifest.get("works_digest"),
             "content_digest": catalog.manifest.get("content_digest"), "style_basis": style_basis(catalog.manifest),
             "generation": catalog.generation, "method": best["method"],
             "settings": {k: v for k, v in best.items() if k != "method"}, "labels": labels,
             "counts": {lab: int(c) for lab, c in zip(labels, counts)}, "left_out": left_out,
             "folds": len(test_folds), "group_column": group_column, "temperature": temperature,
             "reference": ref_note,
             "cross_validated": summary,
             "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    import sys

    # one set of columns whatever the methods tried, so that a report folder takes the next run's report too
    table = pd.DataFrame([{**c, "precision_at_10": s} for c, s in zip(candidates, scores)])
    table = table.reindex(columns=list(dict.fromkeys(["method", *CANDIDATE_SETTINGS, *table.columns])))
    table = table.astype({"pca": "Int64", "steps": "Int64"})  # whole numbers, empty where a method has none
    result = TeachResult(name=name, label_column=label_column, method=best["method"],
                         settings={k: v for k, v in best.items() if k != "method"}, labels=labels, figures=figures,
                         confusion=confusion, calibration=calibration_table(probs, y), candidates=table,
                         temperature=temperature, left_out=left_out, generation=0, folds=len(test_folds),
                         reference=ref_note, vote_k=vote_k, fitted_on=catalog.generation)
    if out is not None:  # the report first: a file that may not be replaced stops the run before the catalog changes
        result.files = _write_report(result, out)
    result.generation = publish_taught(catalog.dir, name, final, entry, notify=lambda m: print(m, file=sys.stderr))
    catalog.refresh()
    result.seconds = time.perf_counter() - t0
    return result


def _vote_size(y: np.ndarray) -> int:
    """Neighbours in the raw space's vote: :data:`K`, but fewer than the smallest label's works, so that its works
    can outvote the others (a label of 4 works has 3 other works: among 10 neighbours they never make a majority).

    >>> _vote_size(np.array([0] * 30 + [1] * 4))
    3
    """
    return int(max(1, min(K, np.bincount(y).min() - 1)))


def _vote(neighbour_labels: np.ndarray, labels: int) -> np.ndarray:
    """The label most of the neighbours carry (ties: the one of the nearest neighbour among them)."""
    votes = np.zeros((len(neighbour_labels), labels))
    k = neighbour_labels.shape[1]
    for j in range(k):
        votes[np.arange(len(votes)), neighbour_labels[:, j]] += 1.0 + (k - j) * 1e-6
    return votes.argmax(1)


def _figures(labels, y, precision, right, raw_precision, raw_right, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for code, lab in [*enumerate(labels), (None, "all")]:
        m = np.ones(len(y), bool) if code is None else y == code
        row = {"label": lab, "works": int(m.sum())}
        for prefix, values in (("taught_precision", precision), ("taught_accuracy", right),
                               ("raw_precision", raw_precision), ("raw_accuracy", raw_right)):
            row[prefix], row[f"{prefix}_lo"], row[f"{prefix}_hi"] = _interval(values[m].astype(np.float64), rng)
        rows.append(row)
    return pd.DataFrame(rows)


def _write_report(result: TeachResult, out: Path) -> list[Path]:
    stem = f"teach-{result.name}"
    tables = [(result.figures, out / f"{stem}-figures.csv"), (result.candidates, out / f"{stem}-candidates.csv"),
              (result.confusion.reset_index(), out / f"{stem}-confusion.csv"),
              (result.calibration, out / f"{stem}-calibration.csv")]
    for table, path in tables:  # every file checked before any is written
        csv_target(table, path)
    for kind in ("confusion", "calibration"):
        figure_target(out / f"{stem}-{kind}.png")
    out.mkdir(parents=True, exist_ok=True)
    files = [write_csv(table, path) for table, path in tables]
    import matplotlib.pyplot as plt

    for kind, fig in (("confusion", result.confusion_figure()), ("calibration", result.calibration_figure())):
        files.append(save_figure(fig, out / f"{stem}-{kind}.png"))
        plt.close(fig)
    return files


# ---- attribute ------------------------------------------------------------------------------------------------------


def attribute(catalog, label_column: str | None = None, *, name: str | None = None, top: int = 3,
              evidence: int = 5, sheet=None) -> pd.DataFrame:
    """For every work without a label, its *top* likeliest labels in the taught space and the labelled works nearest
    to it (the evidence a scholar can look at).

    Parameters
    ----------
    catalog : Catalog
    label_column : str, optional
        The column the space was taught from (checked against it); default: the one of space *name*.
    name : str, optional
        The taught space (default: *label_column*). It must be current: a stale space is refused with the command
        that refits it (:class:`~artspace.errors.StaleSpace`).
    top : int
        Labels per work, likeliest first, with probabilities calibrated by cross-validation.
    evidence : int
        Labelled works listed per work, nearest first in the taught space.
    sheet : path, optional
        Folder for one contact sheet per work: the work, then its evidence with their labels and distances
        (``attribute-<id>.png``).

    Returns
    -------
    DataFrame with ``id``, ``path``, then ``label_1``, ``p_1`` … ``label_<top>``, ``p_<top>``, then ``evidence``
    (ids), ``evidence_labels`` and ``evidence_distances`` (lists, nearest first). ``attrs["left_out"]`` names the
    labels the space was not taught (too few works), to which no work is attributed.
    """
    if name is None and label_column is None:
        raise InvalidOption("give the label column or the name of the taught space to attribute with")
    name = label_column if name is None else name
    by = space(f"{TAUGHT}{name}").name
    entry = catalog.taught_space(by)
    if label_column is not None and label_column != entry["label_column"]:
        raise InvalidOption(f"the taught space {by} was taught from column {entry['label_column']!r}, not "
                            f"{label_column!r}; give --label-column {entry['label_column']} or teach a space from "
                            f"{label_column!r}")
    for n, v in (("top", top), ("evidence", evidence)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise InvalidOption(f"{n} must be a whole number of at least 1, not {v!r}")
    sheet = check_out(catalog, sheet, folder=False) if sheet is not None else None
    column = entry["label_column"]
    info = catalog._taught_projection(by).info
    labels = list(info["labels"])
    for w in _left_out_warnings(column, entry.get("left_out") or {}):
        warnings.warn(w + " (no work is attributed to them)", stacklevel=2)
    ids, z = catalog.embeddings(by)
    z = np.asarray(z, np.float64)
    col = catalog.works.set_index("id")[column].reindex(ids)
    known = col.notna().to_numpy() & col.astype(str).isin(labels).to_numpy()
    unknown = np.flatnonzero(col.isna().to_numpy())
    if not len(unknown):
        warnings.warn(f"every work has a label in column {column!r}: nothing to attribute (the table is empty)",
                      stacklevel=2)
    logits = _logits(z[unknown], np.asarray(info["centroids"]), np.asarray(info["log_prior"]))
    probs = _probabilities(logits, float(info["temperature"]), float(info.get("smoothing", 0.0)))
    t = min(top, len(labels))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :t]
    pool = np.flatnonzero(known)
    ev = _nearest_in(z, unknown, pool, evidence)
    paths = catalog.works.set_index("id")["path"].reindex(ids).to_numpy()
    table = pd.DataFrame({"id": ids[unknown], "path": paths[unknown]})
    for j in range(t):
        table[f"label_{j + 1}"] = [labels[c] for c in order[:, j]]
        table[f"p_{j + 1}"] = probs[np.arange(len(unknown)), order[:, j]]
    lab = col.astype(object).to_numpy()
    table["evidence"] = [ids[r].tolist() for r in ev]
    table["evidence_labels"] = [[str(lab[i]) for i in r] for r in ev]
    table["evidence_distances"] = [((z[r] - z[q]) ** 2).sum(1).round(6).tolist() for q, r in zip(unknown, ev)]
    table.attrs["left_out"] = dict(entry.get("left_out") or {})
    table.attrs["space"] = by
    if sheet is not None:
        table.attrs["files"] = _attribution_sheets(catalog, table, by, sheet)
    return table


def _nearest_in(z: np.ndarray, queries: np.ndarray, pool: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Rows of *pool* nearest to each row of *queries* (squared L2), nearest first."""
    k = min(k, len(pool))
    out = np.empty((len(queries), k), np.int64)
    zp = z[pool]
    sp = (zp ** 2).sum(1)
    for s in range(0, len(queries), block):
        q = z[queries[s:s + block]]
        d = (q ** 2).sum(1)[:, None] + sp[None] - 2.0 * q @ zp.T
        part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(pool) else np.tile(np.arange(len(pool)),
                                                                                     (len(q), 1))
        order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
        out[s:s + block] = pool[np.take_along_axis(part, order, 1)]
    return out


def _attribution_sheets(catalog, table: pd.DataFrame, by: str, folder: Path) -> list[Path]:
    from ..sheets import contact_sheet, thumbnail

    folder.mkdir(parents=True, exist_ok=True)
    files = []
    t = sum(c.startswith("label_") for c in table.columns)
    paths = catalog.works.set_index("id")["path"]
    for row in table.to_dict("records"):
        guess = "\n".join(f"{row[f'label_{j}']} {row[f'p_{j}']:.0%}" for j in range(1, t + 1))
        items = [(thumbnail(catalog._work_file(row["path"]), 320),
                  f"{Path(row['path']).name} (id {row['id']})\n{guess}")]
        for wid, lab, d in zip(row["evidence"], row["evidence_labels"], row["evidence_distances"]):
            rel = paths.at[wid]
            items.append((thumbnail(catalog._work_file(rel), 320),
                          f"{Path(rel).name} (id {wid})\n{lab} · d = {d:.3g}"))
        title = f"attribution by {by}: the work, then its nearest labelled works"
        files.append(save_picture(contact_sheet(items, columns=min(6, len(items)), title=title),
                                  folder / f"attribute-{row['id']}.png"))
    return files
