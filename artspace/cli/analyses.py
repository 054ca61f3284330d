"""Commands that analyse a whole catalog: ``cluster``, ``map``, ``plane``, ``compare``, ``units``, ``export``.

Every analysis speaks the spaces of :mod:`artspace.spaces`; clusters, maps and comparisons use the raw signature
distance for style, neighbour lists its relative ranking, exactly as ``similar``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..spaces import space
from .common import (app, by_option, catalog_option, default_out, echo_err, fail, given, handle_errors,
                     library_defaults, open_catalog, out_option, print_table, wrote)



_BY_HELP = ("The space, as in `similar`: style = the style signature (default), l_style = Gatys et al.'s L_style, "
            "content = 1 - cos of style-free content embeddings, taught:NAME = a space taught by labels (`artspace "
            "teach`). Clusters, maps and comparisons use the raw "
            "signature distance for style; neighbour lists its relative ranking, as `similar`.")
_CLUSTER = library_defaults("artspace.analysis.clustering", "cluster")
_MAP = library_defaults("artspace.analysis.maps", "map_collection")
_PLANE = library_defaults("artspace.analysis.style_content", "plane")
_COMPARE = library_defaults("artspace.analysis.groups", "compare")
_UNITS = library_defaults("artspace.analysis.unit_patches", "units")
_CHARACTERISTIC = library_defaults("artspace.analysis.unit_patches", "characteristic_units")
_EXPORT = library_defaults("artspace.analysis.exporting", "export")


@app.command("cluster")
@handle_errors
def cluster_cmd(
    by: str = by_option(_BY_HELP),
    k: Optional[int] = typer.Option(None, "-k", "--k", help="Number of clusters (default: chosen by silhouette)."),
    method: str = typer.Option(_CLUSTER["method"], "--method", help="kmeans, hdbscan or agglomerative (Ward)."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Metadata column to score the "
                                               "clusters against (purity, NMI, ARI, and the cluster x label table)."),
    out: Optional[Path] = out_option("the CSV and one contact sheet per cluster", "clusters-BY"),
    column: Optional[str] = typer.Option(None, "--column", help="Works-table column to write (default cluster_BY)."),
    min_cluster_size: Optional[int] = typer.Option(None, "--min-cluster-size", help="hdbscan only: the fewest works "
                                                   "a cluster may have (default: 3, or 1/50 of the works, at most "
                                                   "50)."),
    seed: int = typer.Option(_CLUSTER["seed"], help="Random seed."),
    catalog: Optional[Path] = catalog_option(),
):
    """Cluster the works in one space; write the labels to the works table, a CSV and contact sheets.

    With --label-column, prints purity, NMI, ARI and the table of works per cluster and label.

    Example: artspace cluster --by style -k 7 --label-column style --catalog paintings
    """
    from ..analysis.clustering import cluster

    cat = open_catalog(catalog)
    how = "" if k or method == "hdbscan" else ", choosing k by silhouette"
    echo_err(f"cluster: {len(cat)} works by {by} ({method}{how})...")
    result = cluster(cat, by=by, k=k, method=method, label_column=label_column, column=column, seed=seed,
                     min_cluster_size=min_cluster_size, out=default_out(cat, out, f"clusters-{space(by).key}"))
    typer.echo(result.summary())
    if result.table is not None:
        typer.echo(f"\nworks per cluster (rows) and {label_column} (columns):")
        typer.echo(result.table.to_string())
    typer.echo(f"labels in column {result.column!r} of the works table ({result.source})", err=True)
    wrote(result.files)


@app.command("map")
@handle_errors
def map_cmd(
    by: str = by_option(_BY_HELP),
    out: Optional[Path] = out_option("map-BY.png, map-BY.html and map-BY.csv", "map"),
    color: Optional[str] = typer.Option(None, "--color", help="Metadata column to colour by (the page can switch)."),
    recompute: bool = typer.Option(False, help="Compute the layout again even if the catalog has one."),
    method: str = typer.Option(_MAP["method"], "--method", help="umap or pca."),
    neighbors_k: int = typer.Option(_MAP["neighbors_k"], "--neighbors", help="Nearest works listed when a work is "
                                    "clicked (as `similar --by BY` lists them)."),
    thumbs: str = typer.Option(_MAP["thumbs"], help="auto, embed (inside the HTML), beside (a folder next to it) or "
                               "none."),
    seed: int = typer.Option(_MAP["seed"], help="Random seed of the layout."),
    catalog: Optional[Path] = catalog_option(),
):
    """Map the collection: a UMAP layout saved in the catalog, a PNG with thumbnails, an offline HTML map.

    Clicking a work in the HTML map lists its nearest works as `similar --by BY` does and links to its image file.

    Example: artspace map --by style --color style -o map --catalog paintings
    """
    from ..analysis.maps import map_collection

    cat = open_catalog(catalog)
    echo_err(f"map: {len(cat)} works by {by} ({method} layout unless one is stored, then the pictures)...")
    result = map_collection(cat, default_out(cat, out, "map"), by=by, color=color, recompute=recompute, method=method,
                            neighbors_k=neighbors_k, thumbs=thumbs, seed=seed)
    how = "computed and saved in the catalog" if result.computed else "reused from the catalog (--recompute to redo)"
    typer.echo(f"{len(result.coords)} works mapped by {by}; layout {how}")
    wrote(result.files)


@app.command("plane")
@handle_errors
def plane_cmd(
    query: str = typer.Argument(..., help="An image file, a work id, or a work's relative path."),
    by: str = by_option("The space of the style axis: style (the relative signature distance `similar` prints, "
                        "default) or l_style (Gatys et al.'s L_style)."),
    out: Optional[Path] = out_option("plane-BY.png and plane-BY.csv", "plane"),
    split: float = typer.Option(_PLANE["split"], help="Share of the works counted near on each axis (0.5: the "
                                "nearer half)."),
    top: int = typer.Option(_PLANE["top"], help="Works listed per named quadrant."),
    color: Optional[str] = typer.Option(None, "--color", help="Metadata column to colour the points by."),
    catalog: Optional[Path] = catalog_option(query=True),
):
    """The style/content plane around QUERY, after Gatys et al. 2016: content distance x, style distance y.

    Each axis shows the rank of a work's distance from QUERY (the share of other works nearer) with the distance at
    each tick; plane-BY.csv holds the distances `similar` prints, their ranks and their percentiles among the
    collection's pairs. Names the quadrants "same style, other subject" and "same subject, other style".

    Example: artspace plane dots/star_0.png -o plane --color texture --catalog data/demo
    """
    from ..analysis.style_content import plane

    cat = open_catalog(catalog, near=[query])
    result = plane(cat, query, by=by, split=split, top=top, color=color, out=default_out(cat, out, "plane"))
    typer.echo(result.summary(top))
    for name in ("same style, other subject", "same subject, other style"):
        t = result.top[name]
        if len(t):
            typer.echo(f"\n{name}:")
            print_table(t[["id", "path", "style_distance", "style_percentile", "content_distance",
                            "content_percentile"]], "table")
    wrote(result.files)


@app.command("compare")
@handle_errors
def compare_cmd(
    group_by: str = typer.Option(..., "--group-by", "--label-column", help="Metadata column defining the groups "
                                 "(artist, decade...)."),
    by: str = by_option(_BY_HELP),
    permutations: int = typer.Option(_COMPARE["permutations"], help="Random relabellings for the p-values (0: no "
                                     "test)."),
    pairwise: Optional[bool] = typer.Option(None, "--pairwise/--no-pairwise", help="Also test every pair of groups "
                                            "(Holm-adjusted); default: with at most 20 groups."),
    min_size: int = typer.Option(_COMPARE["min_size"], help="Leave out groups with fewer works."),
    out: Optional[Path] = out_option("CSVs, heat map and dendrogram", "compare"),
    seed: int = typer.Option(_COMPARE["seed"], help="Random seed of the permutations."),
    catalog: Optional[Path] = catalog_option(),
):
    """Mean distances within and between groups, a heat map, a dendrogram, and a PERMANOVA (Anderson 2001).

    Example: artspace compare --group-by style --by style -o compare --catalog paintings
    """
    from ..analysis.groups import compare

    cat = open_catalog(catalog)
    echo_err(f"compare: groups of {group_by!r} by {by}, {permutations} permutations...")
    result = compare(cat, group_by=group_by, by=by, permutations=permutations, pairwise=pairwise,
                     min_size=min_size, seed=seed, out=default_out(cat, out, "compare"))
    typer.echo(result.summary())
    typer.echo("")
    print_table(result.groups, "table")
    wrote(result.files)


@app.command("units")
@handle_errors
def units_cmd(
    layer: str = typer.Option(_UNITS["layer"], "--layer", help="VGG-19 layer (relu1_1 ... relu5_4)."),
    unit: Optional[int] = typer.Option(None, "--unit", help="Filter index: show the patches that excite it most."),
    group: Optional[str] = typer.Option(None, "--group", help="With --column: list the units most characteristic "
                                        "of the works where COLUMN == GROUP."),
    column: Optional[str] = typer.Option(None, "--column", help="Metadata column (for --group; captions otherwise)."),
    top: Optional[int] = typer.Option(None, help=f"Patches shown [default: {_UNITS['top']}] or units listed "
                                      f"[default: {_CHARACTERISTIC['top']}]."),
    out: Optional[Path] = out_option("the contact sheet and CSV", "units"),
    catalog: Optional[Path] = catalog_option(),
):
    """The nine catalog patches that excite one filter most (after Erhan et al. 2009; Zeiler & Fergus 2014), or a
    group's characteristic units. Responses are computed once per layer (with a progress bar) and cached.

    Example: artspace units --layer relu3_1 --unit 42 ; artspace units --layer relu4_1 --group Baroque --column style
    """
    from ..analysis.files import check_out, write_csv
    from ..analysis.unit_patches import characteristic_units, units

    cat = open_catalog(catalog)
    if group is not None:
        if column is None:
            fail("--group needs --column (the metadata column the group is a value of)")
        out = check_out(cat, default_out(cat, out, "units"))  # the CSV below is written here, not by the library
        df = characteristic_units(cat, layer=layer, column=column, group=group, progress=True,
                                  **given({"top": top}, ("top",)))
        typer.echo(f"units of {layer} most characteristic of {column} == {group!r} (Cohen's d of mean response):")
        print_table(df, "table")
        import re

        safe = re.sub(r"[^\w.-]+", "_", f"{column}-{group}")
        wrote([write_csv(df, out / f"units-{layer}-{safe}.csv")])
        return
    if unit is None:
        fail("give --unit N (show its top patches) or --group VALUE --column COL (list characteristic units)")
    result = units(cat, layer=layer, unit=unit, column=column, out=default_out(cat, out, "units"), progress=True,
                   **given({"top": top}, ("top",)))
    print_table(result.patches, "table")
    wrote(result.files)


@app.command("export")
@handle_errors
def export_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="works.csv or works.parquet."),
    neighbors: int = typer.Option(_EXPORT["neighbors"], "--neighbors", help="Nearest works listed per work and "
                                  "space (0: none), exactly as `similar --by SPACE -k N` lists them."),
    by: Optional[List[str]] = typer.Option(None, "--by", help="Spaces whose neighbours are listed (repeatable): "
                                           "style, l_style, content or taught:NAME. Default: the three and every "
                                           "taught space that is current."),
    catalog: Optional[Path] = catalog_option(),
):
    """Export the works table with cluster labels, map coordinates and each work's nearest works in each space.

    Example: artspace export -o works.parquet --catalog paintings
    """
    from ..analysis.exporting import export

    cat = open_catalog(catalog)
    echo_err(f"export: {len(cat)} works, {neighbors} nearest in {', '.join(by) if by else 'every space'}...")
    table = export(cat, out, neighbors=neighbors, by=by or None)
    typer.echo(f"wrote {len(table)} works x {len(table.columns)} columns to {out}")
