r"""Analyses of a catalogued collection, one module per concern.

* :mod:`.source` — the one source adapter (a Catalog or a ``(works, X)`` pair, read once per analysis), and what an
  embedding distance is in each space;
* :mod:`.neighbours` — the one neighbour search: ``Catalog.neighbours``, so every list equals ``similar``'s;
* :mod:`.files` — default output folders (never inside the collection unless asked), CSV and figure writers;
* :mod:`.clustering` — :func:`cluster`, :func:`agreement` (``artspace cluster``);
* :mod:`.maps` — :func:`layout`, :func:`map_figure`, :func:`map_html`, :func:`map_collection` (``artspace map``;
  the page's template is :mod:`.map_page`);
* :mod:`.style_content` — :func:`plane`, the style/content plane after Gatys et al. 2016 (``artspace plane``);
* :mod:`.groups` — :func:`compare`: mean distances within and between groups, PERMANOVA (Anderson 2001)
  (``artspace compare``);
* :mod:`.unit_patches` — :func:`units`, :func:`characteristic_units`: top-activating patches after Erhan et al.
  2009 and Zeiler & Fergus 2014 (``artspace units``);
* :mod:`.teaching` — :func:`teach`, :func:`attribute`: a style space taught by a scholar's labels (Fisher 1936 with
  shrinkage, or NCA, Goldberger et al. 2004) and attributions of the unlabelled works (``artspace teach``,
  ``artspace attribute``);
* :mod:`.content_fit` — :func:`fit_content`: a content projection fitted on pastiche groups (Fisher 1936 with
  shrinkage) for the content space (``artspace fit-content``);
* :mod:`.exporting` — :func:`export` (``artspace export``).

Every analysis takes ``by``, a space of :mod:`artspace.spaces` with the meaning it has in ``artspace similar``:
``style`` (default), ``l_style`` or ``content``. Neighbour lists (export, the map's panel) are exactly ``similar``'s,
for ``style`` ranked by the relative signature distance. Clusters, maps and group comparisons need the squared
Euclidean distance of an embedding, so they use the space's stored embedding: for ``style`` the raw signature
distance :math:`d_{sig}`, since the relative distance divides each pair by its own factor and no embedding, mean or
centroid represents it (:mod:`.source`). The plane plots the distances ``similar`` prints.

Names load their module on first use, and torch, scikit-learn, UMAP and matplotlib are imported only when a
computation needs them, so that ``import artspace.analysis`` stays light.
"""

from __future__ import annotations

from ..lazy import exports

_WHERE = {
    "source": ["BOOKKEEPING", "MEASURE", "Source", "distance_scale", "read_source"],
    "neighbours": ["nearest"],
    "files": ["default_out", "save_figure", "write_csv"],
    "clustering": ["CLUSTER_METHODS", "ClusterResult", "agreement", "cluster"],
    "maps": ["LAYOUT_METHODS", "MapResult", "layout", "map_collection", "map_figure", "map_html", "stored_layout"],
    "style_content": ["QUADRANTS", "PlaneResult", "plane"],
    "groups": ["CompareResult", "compare", "holm"],
    "teaching": ["METHODS", "MIN_WORKS", "TeachResult", "attribute", "calibration_table", "fit_projection",
                 "reliability_figure", "teach"],
    "unit_patches": ["UnitsResult", "characteristic_units", "receptive_field", "unit_responses", "units"],
    "content_fit": ["descriptors", "fit_content"],
    "exporting": ["export"],
}
__all__, __getattr__, __dir__ = exports(__name__, _WHERE)
