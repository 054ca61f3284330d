r"""The style-free content embedding: the collection's style-group means removed from the descriptors, a projection
learnt from pastiches blended in (:class:`ContentModel`), and the standardisation a content search ranks by
(:class:`ContentStats`).

Split from :mod:`artspace.search`, which searches the embeddings this module makes; ``artspace.search`` still
exports :class:`ContentModel`, :class:`ContentStats` and :func:`ward_groups`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .atomic import atomic_savez
from .discriminant import LinearProjection, principal_axes

__all__ = ["ContentModel", "ContentStats", "choose_groups", "ward_groups", "split_by_medium", "group_means"]


def choose_groups(style: np.ndarray, *, max_groups: int = 32, sample: int = 4000, seed: int = 0) -> int:
    """Number of style groups with the best silhouette score (k-means, k = 2 … max_groups, at least 4 works each).

    The works' Euclidean distances are computed once for every k's silhouette (128 MB at the 4,000 works sampled):
    the scores of computing them afresh each time (to rounding), and the sweep 1.4-2.7 times faster."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import pairwise_distances, silhouette_score

    n = len(style)
    hi = min(max_groups, n // 4)
    if hi < 2:
        return 1
    rng = np.random.default_rng(seed)
    x = style[rng.choice(n, size=min(n, sample), replace=False)].astype(np.float64)
    distances = pairwise_distances(x)
    best, best_k = -2.0, 2
    for k in range(2, hi + 1):
        labels = KMeans(n_clusters=k, n_init=2, random_state=seed).fit_predict(x)
        score = silhouette_score(distances, labels, metric="precomputed")
        if score > best:
            best, best_k = score, k
    return best_k


def nearest_centroids(style: np.ndarray, centroids: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """Each row's nearest centroid (squared distance as |c|² − 2 s·c, one matrix product per block of rows, in
    float64: a million works are never copied whole)."""
    c = np.asarray(centroids, np.float64)
    norms = (c ** 2).sum(1)
    return np.concatenate([(norms - 2.0 * np.asarray(style[s:s + batch], np.float64) @ c.T).argmin(1)
                           for s in range(0, len(style), batch)]) if len(style) else np.zeros(0, np.int64)


def nearest_rows(x: np.ndarray, ref: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Each row of *x*'s nearest row of *ref* (squared Euclidean distance, float32, one matrix product per block of
    rows of at most *batch* × len(*ref*) numbers): a work's nearest sampled work."""
    r = np.asarray(ref, np.float32)
    norms = (r ** 2).sum(1)
    return np.concatenate([(norms - 2.0 * np.asarray(x[s:s + batch], np.float32) @ r.T).argmin(1)
                           for s in range(0, len(x), batch)]) if len(x) else np.zeros(0, np.int64)


def ward_groups(sample: np.ndarray, g: int, nearest: np.ndarray, minimum: int) -> np.ndarray:
    """Style groups of the rows *sample*: Ward's agglomerative clustering into *g* groups, then, while a group holds
    fewer than *minimum* works of the collection (each work counted in the group of its nearest sampled row,
    *nearest*), the smallest group's rows join the group of their nearest row outside it. Labels 0 … g′ − 1.

    Ward's linkage merges the two groups whose union adds least to the within-group sum of squares, from single works
    up; unlike k-means it does not prefer groups of equal extent, so a tight medium (drawings, all alike) and a wide
    one (paintings of every school) each stay whole. On pacs-dev's l_style embeddings with k = 3 its groups are
    cartoons, drawings, and photographs with paintings (NMI 0.77 with the medium, against 0.58 for k-means, which
    split the cartoons); docs/benchmarks.md."""
    from sklearn.cluster import AgglomerativeClustering  # imported here: scikit-learn takes a second to import

    labels = AgglomerativeClustering(n_clusters=g, linkage="ward").fit_predict(np.asarray(sample, np.float64))
    while True:
        present = np.unique(labels)
        counts = np.bincount(labels[nearest], minlength=int(labels.max()) + 1)[present]
        if len(present) == 1 or counts.min() >= minimum:
            break
        inside = labels == present[counts.argmin()]
        outside = np.flatnonzero(~inside)
        labels[inside] = labels[outside[nearest_rows(sample[inside], sample[outside])]]
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def split_by_medium(groups: np.ndarray, photographic: np.ndarray, minimum: int, share: float) -> np.ndarray:
    """The table (g, 2) that splits style groups by medium: row j gives group j's other works (column 0) and its
    photographs (column 1) new labels 0 … g′ − 1, two labels where each part holds at least *minimum* works and
    *share* of the group, one label (the group kept whole) otherwise. *groups*: each work's group (0 … g − 1),
    *photographic*: whether each work is a photograph."""
    g = int(groups.max(initial=0)) + 1
    photos = np.bincount(groups[photographic], minlength=g)
    sizes = np.bincount(groups, minlength=g)
    table, label = np.zeros((g, 2), np.int64), 0
    for j in range(g):
        smaller = min(photos[j], sizes[j] - photos[j])
        apart = smaller >= minimum and smaller >= share * sizes[j]
        table[j] = (label, label + 1) if apart else (label, label)
        label += 2 if apart else 1
    return table


def group_means(x: np.ndarray, labels: np.ndarray, g: int, *, transform: Callable | None = None,
                batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """The mean row of *x* (each block of rows passed through *transform* first, if given) in each of the *g* groups
    *labels*, summed in float64 in blocks of rows: ``(means (g, d) float32, counts (g,))``."""
    sums, counts = None, np.bincount(labels, minlength=g)
    for s in range(0, len(labels), batch):
        rows = x[s:s + batch] if transform is None else transform(x[s:s + batch])
        rows = np.asarray(rows, np.float64)
        if sums is None:
            sums = np.zeros((g, rows.shape[1]))
        np.add.at(sums, labels[s:s + batch], rows)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32), counts


@dataclass
class ContentModel:
    r"""Content embeddings that follow what is depicted rather than the hand: the collection's style-group means
    removed from the descriptors, and a projection learnt from pastiches blended in.

    A painter's hand or a medium adds the same texture to every subject, and ImageNet features pooled over space
    respond to texture first (Geirhos et al., 2019): a sketch of a dog lies nearer to a sketch of a house than to a
    photograph of a dog. Two remedies, combined:

    * **Style groups** (fitted on the collection). The works are grouped by style (Ward's agglomerative clustering
      of up to :attr:`GROUP_SAMPLE` works' style embeddings, :func:`ward_groups`; the number of groups, 2 to 32, is
      the one whose k-means has the best silhouette, :func:`choose_groups`) and each descriptor has its group's mean
      subtracted; what remains is how this work differs from others in the same hand — its subject. Every work,
      and an image from outside the collection, is in the group of its nearest sampled work. Where a photograph
      model applies (:mod:`artspace.medium`, shipped with artspace), each group is then split into the works it
      calls photographs and the others, where both parts hold at least :attr:`SPLIT_SHARE` of the group and
      :attr:`MIN_GROUP` works: photographs and realistic paintings lie close in every style embedding.
    * **A projection learnt from pastiches** (:mod:`artspace.content`, shipped with artspace): Fisher's
      discriminant of photographs and their AdaIN pastiches, the directions along which a change of hand moves a
      descriptor least compared with a change of photograph. Its coordinates, less their style-group means, form a
      second part of the embedding.

    With :math:`a` the descriptor (reduced by the collection's PCA to :attr:`REDUCE_TO` dimensions when longer than
    :attr:`REDUCE_ABOVE`) and :math:`b = W^\top(x-\mu)` the learnt projection, each less its group's mean and scaled to
    unit length, the embedding is :math:`[\sqrt{1/(1+w)}\,a, \sqrt{w/(1+w)}\,b]` with :math:`w` = :attr:`LEARNT_WEIGHT`,
    so that :math:`1-\cos = 1 - (\cos_a + w\cos_b)/(1+w)`. Without a learnt projection (catalogs whose descriptor the
    shipped projection does not fit) it is :math:`a` alone.
    """

    centroids: np.ndarray  # (g, style_dim)
    means: np.ndarray  # (g, a dims + b dims): each group's mean before the parts are normalised
    #: how many works the style groups were fitted on (0: unknown)
    fitted_on: int = 0
    #: the collection's PCA of descriptors longer than REDUCE_TO (None: the descriptor itself)
    reduce: LinearProjection | None = None
    #: the projection learnt from pastiches (None: not used)
    learnt: LinearProjection | None = None
    #: the sampled works' style embeddings (s, style_dim) whose groups every work takes (its nearest), and those
    #: groups (s,); None in a model of one group, and in models saved before the groups were Ward's, whose works
    #: are in the group of their nearest centroid
    sample: np.ndarray | None = None
    sample_groups: np.ndarray | None = None
    #: the photograph model (:mod:`artspace.medium`) the style groups were checked with (None: not checked), and
    #: the split as a table (groups before the split, 2): row j, column 1 for a photograph, gives the group (None:
    #: no group was split)
    medium: LinearProjection | None = None
    split: np.ndarray | None = None

    #: :meth:`update` keeps the groups while the collection has changed by at most this fraction since the fit
    REFIT_AFTER = 0.1
    #: descriptors longer than REDUCE_ABOVE are reduced to REDUCE_TO numbers by the collection's PCA (with the
    #: learnt projection's 128 directions the embedding has 512 numbers, as relu5_4 alone had: a million works'
    #: content index stays the size it was)
    REDUCE_ABOVE, REDUCE_TO = 512, 384
    #: :math:`w`, the learnt part's weight in the cosine
    LEARNT_WEIGHT = 0.5
    #: the style groups are fitted on at most this many works (Ward's clustering keeps their s²/2 distances: 64 MB)
    GROUP_SAMPLE = 4000
    #: a style group needs at least this many works: the works of a smaller cluster join the nearest larger
    #: group (a work alone in its group, less its own mean, had nothing left), and a collection of fewer works is
    #: not centred at all (two works less their mean point in opposite directions, whatever they depict)
    MIN_GROUP = 4
    #: a style group is split into photographs and other works only where each part holds at least this share of
    #: it: the shipped photograph model calls 1.4 % of the paintings it was fitted on photographs (5-fold) but 11 %
    #: of wikiart-dev's paintings (docs/benchmarks.md), so a smaller part of a group of paintings may be its mistakes
    SPLIT_SHARE = 0.2

    @classmethod
    def fit(cls, style: np.ndarray, descriptors: np.ndarray, *, groups: int | None = None,
            sample: int = 50_000, seed: int = 0, learnt: LinearProjection | None = None,
            medium: LinearProjection | None = None, photographic: np.ndarray | None = None) -> "ContentModel":
        """Fit style groups (:func:`ward_groups` on at most :attr:`GROUP_SAMPLE` works, then every work in the group
        of its nearest sampled work, then each group split by *photographic*, see the class), the PCA of long
        descriptors (on at most *sample* works), and each group's mean; *learnt* is the pastiche projection to blend
        in, *medium* the photograph model whose calls (*photographic*, one bool a work) split the groups."""
        n, given = len(style), style
        style, descriptors = np.asarray(style), np.asarray(descriptors)
        rng = np.random.default_rng(seed)
        fit_rows = np.sort(rng.choice(n, size=min(n, sample), replace=False)) if n > sample else np.arange(n)
        reduce = (principal_axes(descriptors[fit_rows], cls.REDUCE_TO) if descriptors.shape[1] > cls.REDUCE_ABOVE
                  else None)
        learnt = _applicable(learnt, descriptors.shape[1])
        g = groups if groups is not None else choose_groups(style, sample=cls.GROUP_SAMPLE, seed=seed)
        g = max(1, min(g, n))
        centroids, sampled, labels, nearest = style.mean(0, keepdims=True).astype(np.float32), None, None, None
        if g > 1:
            rows = (np.sort(rng.choice(n, size=cls.GROUP_SAMPLE, replace=False)) if n > cls.GROUP_SAMPLE
                    else np.arange(n))
            sampled = np.asarray(style[rows], np.float32)
            nearest = nearest_rows(style, sampled)
            labels = ward_groups(sampled, g, nearest, cls.MIN_GROUP)
        else:
            labels, nearest = np.zeros(min(n, 1), np.int64), np.zeros(n, np.int64)
            sampled = style[:1].astype(np.float32)
        split, calls = None, None
        if medium is not None:
            calls = np.asarray(photographic, bool)  # computed once here (artspace.medium.PhotographCalls)
            split = split_by_medium(labels[nearest], calls, cls.MIN_GROUP, cls.SPLIT_SHARE)
            if split.max() == labels.max(initial=0):
                split = None  # no group has enough photographs and enough other works
        work_groups = labels[nearest] if split is None else split[labels[nearest], calls.astype(np.int64)]
        several = work_groups.max(initial=0) > 0
        if several:
            centroids = group_means(style, work_groups, int(work_groups.max()) + 1)[0]
        model = cls(centroids=centroids, means=np.zeros((len(centroids), 0), np.float32), fitted_on=n,
                    reduce=reduce, learnt=learnt, sample=sampled if several else None,
                    sample_groups=labels if several else None, medium=medium, split=split)
        photo = photographic if split is not None else None
        if several:
            model._last_groups = (style, photo, work_groups)  # the groups just counted: not looked up again
        model = model.with_means(style, descriptors, photo)
        # remembered for the array as given too (a memory map is another object once np.asarray has viewed it): the
        # publication asks for these groups again, and at a million works each look-up costs about a minute
        model._last_groups = (given, photo, model._last_groups[2])
        return model

    def parts(self, descriptors: np.ndarray) -> np.ndarray:
        """The descriptors in the model's space before the group means: ``[a, b]`` (float32)."""
        d = np.asarray(descriptors, np.float32)
        a = self.reduce.transform(d) if self.reduce is not None else d
        return np.hstack([a, self.learnt.transform(d)]) if self.learnt is not None else a

    def with_means(self, style: np.ndarray, descriptors: np.ndarray, photographic: np.ndarray | None = None,
                   batch: int = 65_536) -> "ContentModel":
        """The same style groups and projections, with each group's mean taken over the works given."""
        labels = self.groups(style, photographic)
        means, counts = group_means(descriptors, labels, len(self.centroids), transform=self.parts, batch=batch)
        means[counts < self.MIN_GROUP] = 0.0  # too few works to say what their hand shares
        model = ContentModel(centroids=self.centroids, means=means, fitted_on=self.fitted_on, reduce=self.reduce,
                             learnt=self.learnt, sample=self.sample, sample_groups=self.sample_groups,
                             medium=self.medium, split=self.split)
        model._last_groups = (style, photographic, labels)  # the same centroids: the same groups
        return model

    @classmethod
    def update(cls, previous: "ContentModel | None", style: np.ndarray, descriptors: np.ndarray, *,
               learnt: LinearProjection | None = None, medium: LinearProjection | None = None,
               photographic: np.ndarray | None = None) -> tuple["ContentModel", bool]:
        """The model for a collection that changed since *previous* was fitted: *previous* itself, style groups,
        projections and means unchanged, while the collection grew or shrank by at most :attr:`REFIT_AFTER` since
        the fit and the learnt projection and the photograph model are the same (so that adding 2 works to 500 costs
        no clustering and changes no other work's content embedding), a new fit otherwise. A previous model fitted
        with *medium* whose groups needed no split is kept too. Returns the model and whether it was refitted."""
        n = len(style)
        learnt = _applicable(learnt, descriptors.shape[1])
        if (previous is not None and previous.fitted_on and previous.centroids.shape[1] == style.shape[1]
                and previous.input_dim == descriptors.shape[1] and _same(previous.learnt, learnt)
                and previous.medium_fingerprint == _fingerprint(medium)
                and abs(n - previous.fitted_on) <= cls.REFIT_AFTER * previous.fitted_on
                and not previous.nearest_centroid_groups
                and not previous.centres_small_groups(style, photographic if previous.split is not None else None)):
            return previous, False
        return cls.fit(style, descriptors, learnt=learnt, medium=medium, photographic=photographic), True

    @property
    def nearest_centroid_groups(self) -> bool:
        """Whether this is a model of several style groups fitted before the groups were Ward's, whose works are in
        the group of their nearest k-means centroid rather than their nearest sampled work's Ward group:
        :meth:`update` fits it again."""
        return self.sample is None and len(self.centroids) > 1

    def centres_small_groups(self, style: np.ndarray, photographic: np.ndarray | None = None) -> bool:
        """Whether the model subtracts the mean of a style group that holds fewer than :attr:`MIN_GROUP` of the works
        *style* (a model fitted before that rule, or one whose groups shrank): such a model is fitted again."""
        counts = np.bincount(self.groups(style, photographic), minlength=len(self.centroids))
        return bool(((counts < self.MIN_GROUP) & np.any(self.means != 0, axis=1)).any())

    @property
    def input_dim(self) -> int:
        """The length of the descriptors the model takes."""
        if self.reduce is not None:
            return int(self.reduce.mean.shape[0])
        return int(self.means.shape[1] - (self.learnt.dim if self.learnt is not None else 0))

    @property
    def dim(self) -> int:
        """The length of the content embedding."""
        return int(self.means.shape[1])

    @property
    def medium_fingerprint(self) -> str | None:
        """What identifies the photograph model the groups were checked with (None: none)."""
        return _fingerprint(self.medium)

    def is_photograph(self, moments) -> np.ndarray | None:
        """Whether the photograph model calls each row of *moments* (relu4_1's channel means and deviations, n ×
        1024) a photograph; None for a model whose groups are not split."""
        if self.split is None:
            return None
        from .medium import is_photograph

        return is_photograph(self.medium, moments)

    def assign(self, style: np.ndarray, photographic: np.ndarray | None = None) -> np.ndarray:
        """The style group of each row of *style*: that of its nearest sampled work (:func:`nearest_rows`), or in a
        model without a sample its nearest centroid (:func:`nearest_centroids`); in a model whose groups are split
        by medium, the photographs' or the other works' part of it (*photographic*, one bool a row, is then
        needed: :meth:`is_photograph`)."""
        if self.sample is None:
            return nearest_centroids(style, self.centroids)
        labels = self.sample_groups[nearest_rows(style, self.sample)]
        if self.split is None:
            return labels
        if photographic is None or len(photographic) != len(labels):
            raise ValueError("this content model splits its style groups by medium: give each work's photograph "
                             "call (ContentModel.is_photograph of its relu4_1 moments)")
        return self.split[labels, np.asarray(photographic, bool).astype(np.int64)]  # all rows' calls, once

    def groups(self, style: np.ndarray, photographic: np.ndarray | None = None) -> np.ndarray:
        """Each work's style group (:meth:`assign`). The answer for the last arrays asked about is remembered: a
        publication asks about the same million works up to three times (is a group too small, each group's mean,
        the content statistics), seconds each."""
        last = getattr(self, "_last_groups", None)
        if (last is not None and last[0] is style and (self.split is None or last[1] is photographic)
                and len(last[2]) == len(style)):
            return last[2]
        labels = self.assign(style, photographic)
        self._last_groups = (style, photographic, labels)
        return labels

    def transform(self, style: np.ndarray, descriptors: np.ndarray, photographic: np.ndarray | None = None,
                  batch: int = 65_536) -> np.ndarray:
        """Unit content embeddings (in blocks of rows, so that a million works need no copies of the whole
        array): each part less its style group's mean, scaled to unit length, and weighted (see the class)."""
        groups = self.groups(style, photographic)
        out = np.empty((len(descriptors), self.dim), np.float32)
        split = self.dim - (self.learnt.dim if self.learnt is not None else 0)
        w = self.LEARNT_WEIGHT
        scale = (np.sqrt(1.0 / (1.0 + w)), np.sqrt(w / (1.0 + w))) if self.learnt is not None else (1.0, 0.0)
        for s in range(0, len(descriptors), batch):
            e = self.parts(descriptors[s:s + batch]) - self.means[groups[s:s + batch]]
            for part, k in ((slice(0, split), scale[0]), (slice(split, None), scale[1])):
                if e[:, part].shape[1]:
                    p = e[:, part]
                    e[:, part] = k * p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
            out[s:s + batch] = e
        return out

    def arrays(self) -> dict:
        """Every array the embeddings depend on, by name (what :meth:`save` writes and digests hash)."""
        out = {"centroids": self.centroids, "means": self.means, "fitted_on": np.int64(self.fitted_on)}
        if self.sample is not None:
            out["sample"], out["sample_groups"] = self.sample, np.asarray(self.sample_groups, np.int64)
        if self.split is not None:
            out["split"] = np.asarray(self.split, np.int64)
        for name, p in (("reduce", self.reduce), ("learnt", self.learnt), ("medium", self.medium)):
            if p is not None:
                out[f"{name}_mean"] = np.asarray(p.mean, np.float32)
                out[f"{name}_components"] = np.asarray(p.components, np.float32)
        return out

    def save(self, path: str | os.PathLike) -> None:
        info = json.dumps(self.learnt.info if self.learnt is not None else {}, sort_keys=True)
        medium = json.dumps(self.medium.info if self.medium is not None else {}, sort_keys=True)
        atomic_savez(path, **self.arrays(), learnt_info=np.array(info), medium_info=np.array(medium))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ContentModel":
        with np.load(path, allow_pickle=False) as z:
            parts = {}
            for name in ("reduce", "learnt", "medium"):  # reduce has no info
                if f"{name}_mean" in z.files:
                    info = json.loads(str(z[f"{name}_info"])) if f"{name}_info" in z.files else {}
                    parts[name] = LinearProjection(mean=z[f"{name}_mean"].astype(np.float64),
                                                   components=z[f"{name}_components"].astype(np.float64), info=info)
            sampled = {"sample": z["sample"], "sample_groups": z["sample_groups"]} if "sample" in z.files else {}
            if "split" in z.files:
                sampled["split"] = z["split"]
            return cls(centroids=z["centroids"], means=z["means"],
                       fitted_on=int(z["fitted_on"]) if "fitted_on" in z.files else 0, **parts, **sampled)


def _fingerprint(medium: LinearProjection | None) -> str | None:
    """A digest of a photograph model's numbers (None for none): the same model, saved and read back, agrees."""
    if medium is None:
        return None
    h = hashlib.sha256(np.asarray(medium.mean, np.float32).tobytes())
    h.update(np.asarray(medium.components, np.float32).tobytes())
    return h.hexdigest()


def _applicable(learnt: LinearProjection | None, dim: int) -> LinearProjection | None:
    """*learnt* if it takes descriptors of length *dim*; None if it was fitted on another descriptor."""
    return learnt if learnt is not None and learnt.mean.shape[0] == dim else None


def _same(a: LinearProjection | None, b: LinearProjection | None) -> bool:
    """Whether two optional projections are the same map."""
    if a is None or b is None:
        return a is None and b is None
    return a.components.shape == b.components.shape and np.allclose(a.mean, b.mean, atol=1e-6) and np.allclose(
        a.components, b.components, atol=1e-6)


@dataclass
class ContentStats:
    r"""How the collection's content similarities are spread, so that a content ranking can say how unusually near
    a work is rather than how near (:meth:`Catalog.similar <artspace.catalog.Catalog.similar>`, ``standardise``).

    A cosine of 0.6 means different things from a sketch to the other sketches, which are all alike, and from a
    photograph to the paintings: the medium left in the content embedding shows as a raised level of similarity
    between works of one style group, and a work alike to many others (a hub) is near every query. For a unit query
    :math:`q` and a work :math:`y` in style group :math:`g`, with :math:`c = q\cdot y`, the standardised similarity
    averages three z-scores of :math:`c`,

    .. math::

        s = \tfrac13\Big(\frac{c - q\cdot m}{\sqrt{q^\top\Sigma q}} + \frac{c - q\cdot m_g}{\sqrt{q^\top\Sigma_g q}}
        + \frac{c - y\cdot m}{\sqrt{y^\top\Sigma y}}\Big),

    :math:`m, \Sigma` the mean and covariance of the collection's content embeddings and :math:`m_g, \Sigma_g`
    those of group :math:`g`: :math:`c` against the query's similarities to every work, to the works of
    :math:`y`'s group, and against :math:`y`'s similarities to every work. The first ranks as :math:`c` itself; the
    second compares works within one hand (per-domain score normalisation); the third discounts hubs (mutual
    proximity, Schnitzer et al. 2012; the CSLS of Conneau et al. 2018). The means and variances are exact for the
    works they were computed on (a cosine is linear in each vector), so only :math:`g+1` mean vectors and
    covariance matrices are stored, from up to :attr:`SAMPLE` works, with each work's own mean and variance
    (:math:`y\cdot m`, :math:`y^\top\Sigma y`), as the style space stores each work's neighbourhood scale. They
    are kept, like the content model's groups, while the collection changes by at most :attr:`REFIT_AFTER`.
    """

    mean: np.ndarray  # (g + 1, d): the collection's mean embedding, then each style group's
    cov: np.ndarray  # (g + 1, d, d) the same covariances (population, float32)
    counts: np.ndarray  # (g + 1,): the works each row was computed on
    groups: np.ndarray  # (n,) each work's style group, in the row order of the catalog's ids
    work_mean: np.ndarray  # (n,) y·m, each work's mean cosine to the collection (float32)
    work_var: np.ndarray  # (n,) yᵀΣy, the variance of its cosines (float32): its z-score needs no product by Σ
    fitted_on: int = 0  # the works of the collection when the means and covariances were computed

    #: the statistics are computed on at most this many works (seeded sample)
    SAMPLE = 50_000
    #: a group of fewer works uses the whole collection's statistics
    MIN_WORKS = 2
    #: :meth:`update` keeps the means and covariances while the collection has changed by at most this fraction
    #: since they were computed (as :class:`ContentModel` keeps its groups): a publication after adding 1,000 works
    #: to a million then computes only the new works' groups and terms
    REFIT_AFTER = 0.1

    @classmethod
    def fit(cls, content, groups: np.ndarray, n_groups: int, *, sample: int | None = None, seed: int = 0,
            batch: int = 16_384) -> "ContentStats":
        """The statistics of the unit embeddings *content* (n, d; any array read by rows) and their style *groups*
        (0 … *n_groups* − 1), from a seeded sample of at most *sample* (:attr:`SAMPLE`) works."""
        n, d = len(content), content.shape[1]
        groups = np.asarray(groups, np.int16)
        size = cls.SAMPLE if sample is None else int(sample)
        rows = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False)) if n > size else np.arange(n)
        sums = np.zeros((n_groups + 1, d))
        outer = np.zeros((n_groups + 1, d, d))
        counts = np.zeros(n_groups + 1, np.int64)
        for s in range(0, len(rows), batch):
            r = rows[s:s + batch]
            x, gr = np.asarray(content[r], np.float64), groups[r]
            for j, sel in [(0, slice(None))] + [(int(v) + 1, gr == v) for v in np.unique(gr)]:
                xs = x[sel]
                sums[j] += xs.sum(0)
                outer[j] += xs.T @ xs
                counts[j] += len(xs)
        safe = np.maximum(counts, 1)[:, None]
        mean = sums / safe
        cov = outer / safe[..., None] - mean[:, :, None] * mean[:, None, :]
        small = counts < cls.MIN_WORKS
        mean[small], cov[small] = mean[0], cov[0]  # too few works to say how a group is spread
        stats = cls(mean=mean.astype(np.float32), cov=cov.astype(np.float32), counts=counts, groups=groups,
                    work_mean=np.zeros(0, np.float32), work_var=np.zeros(0, np.float32), fitted_on=n)
        stats.work_mean, stats.work_var = stats._all_work_terms(content)
        return stats

    @classmethod
    def update(cls, previous: "ContentStats | None", content, carried: np.ndarray | None, groups_of,
               n_groups: int) -> tuple["ContentStats", bool]:
        """The statistics of a collection that changed since *previous*: *previous*'s means and covariances, while
        the collection has changed by at most :attr:`REFIT_AFTER` since they were computed and has as many groups,
        with the carried rows' groups and terms (*carried*: for each row of *content*, its row in *previous*, or
        −1 for a work whose embedding is new) and *groups_of(rows)* for the others; else :meth:`fit` with
        *groups_of(None)*, every work's group. Returns the statistics and whether they were computed afresh."""
        n = len(content)
        if (previous is None or carried is None or len(previous.mean) != n_groups + 1
                or previous.mean.shape[1] != content.shape[1]
                or abs(n - previous.fitted_on) > cls.REFIT_AFTER * max(previous.fitted_on, 1)):
            return cls.fit(content, groups_of(None), n_groups), True
        new = np.flatnonzero(carried < 0)
        old = carried >= 0
        groups = np.empty(n, np.int16)
        work_mean, work_var = np.empty(n, np.float32), np.empty(n, np.float32)
        groups[old], work_mean[old], work_var[old] = (previous.groups[carried[old]],
                                                     previous.work_mean[carried[old]],
                                                     previous.work_var[carried[old]])
        stats = cls(mean=previous.mean, cov=previous.cov, counts=previous.counts, groups=groups,
                    work_mean=work_mean, work_var=work_var, fitted_on=previous.fitted_on)
        if len(new):
            groups[new] = groups_of(new)
            m, v = stats.work_terms(np.asarray(content[new], np.float32))
            work_mean[new], work_var[new] = m, v
        return stats, False

    def _all_work_terms(self, content, batch: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
        terms = [self.work_terms(np.asarray(content[s:s + batch], np.float32)) for s in range(0, len(content), batch)]
        if not terms:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        return (np.concatenate([t[0] for t in terms]).astype(np.float32),
                np.concatenate([t[1] for t in terms]).astype(np.float32))

    def query_terms(self, q: np.ndarray, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """``(q·m_j, qᵀΣ_j q)`` of unit queries *q* (…, d) for every row *j* of the statistics (the collection,
        then each group): two (…, g + 1) arrays; with *rows*, the variances of those rows only (NaN elsewhere: a
        query's shortlist seldom spans every group, and each variance reads a d × d matrix)."""
        q = np.asarray(q, np.float64)
        flat = q.reshape(-1, q.shape[-1])
        var = np.full((len(flat), len(self.cov)), np.nan)
        q32 = flat.astype(np.float32)  # the covariances are stored in float32: read as they are, not copied
        for j in range(len(self.cov)) if rows is None else rows:
            var[:, j] = ((q32 @ self.cov[j]).astype(np.float64) * flat).sum(-1)
        return q @ self.mean.T.astype(np.float64), var.reshape(*q.shape[:-1], -1)

    def work_terms(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(y·m, yᵀΣy)`` of unit embeddings *y* (…, d) against the whole collection."""
        y = np.asarray(y, np.float64)
        flat = y.reshape(-1, y.shape[-1])
        var = ((flat.astype(np.float32) @ self.cov[0]).astype(np.float64) * flat).sum(-1)
        return y @ self.mean[0].astype(np.float64), var.reshape(y.shape[:-1])

    def score(self, q: np.ndarray, y: np.ndarray, groups: np.ndarray, work_terms=None) -> np.ndarray:
        """The standardised similarity :math:`s` of the unit query *q* (d,) to the works *y* (m, d) of style
        *groups* (m,); or of queries *q* (b, d) to their works *y* (b, m, d), *groups* (b, m). *work_terms*: the
        works' :meth:`work_terms`, if already known."""
        q, y = np.asarray(q, np.float64), np.asarray(y, np.float64)
        c = (y @ q[..., None])[..., 0]
        g = np.asarray(groups, np.int64) + 1
        q_mean, q_var = self.query_terms(q, rows=np.union1d([0], g))
        y_mean, y_var = self.work_terms(y) if work_terms is None else work_terms
        z_all = _z(c, q_mean[..., :1], q_var[..., :1])
        z_group = _z(c, np.take_along_axis(q_mean, g, -1), np.take_along_axis(q_var, g, -1))
        return (z_all + z_group + _z(c, y_mean, y_var)) / 3.0

    def arrays(self) -> dict:
        return {"mean": self.mean, "cov": self.cov, "counts": self.counts, "groups": self.groups,
                "work_mean": self.work_mean, "work_var": self.work_var, "fitted_on": np.int64(self.fitted_on)}

    def save(self, path: str | os.PathLike) -> None:
        atomic_savez(path, **self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ContentStats":
        with np.load(path, allow_pickle=False) as z:
            return cls(mean=z["mean"], cov=z["cov"], counts=z["counts"], groups=z["groups"],
                       work_mean=z["work_mean"], work_var=z["work_var"], fitted_on=int(z["fitted_on"]))


def _z(x: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``(x − mean) / sqrt(var)``, 0 where the spread of the cosines is nil (below 10⁻⁶: every work alike, up to
    the rounding of the stored covariances)."""
    sd = np.sqrt(np.maximum(var, 0.0))
    return np.where(sd > 1e-6, (x - mean) / np.where(sd > 1e-6, sd, 1.0), 0.0)
