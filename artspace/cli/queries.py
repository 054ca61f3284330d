"""Commands that ask the catalog: ``similar`` and ``distance``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import app, by_option, catalog_option, echo_err, fail, handle_errors, open_catalog, print_table


@app.command()
@handle_errors
def similar(
    query: str = typer.Argument(..., help="An image file (inside the collection or not), a work id, a work's "
                                "relative path, or a file name one work has."),
    by: str = by_option(),
    k: int = typer.Option(10, "-k", help="Number of works to return."),
    catalog: Optional[Path] = catalog_option(query=True),
    where: Optional[str] = typer.Option(None, help="Filter on the works table: comparisons, in [...], and/or/not, "
                                        "isnull(col); e.g. \"style == 'Baroque' and year < 1700\"."),
    ignore_subject: float = typer.Option(0.0, "--ignore-subject", help="gamma >= 0, for a style space: move down "
                                         "works that depict what the query depicts. The 6k (at least 60) nearest "
                                         "are scored z(-distance) - gamma z(content cosine), standardised over "
                                         "them; 0.5 is a good start (docs/benchmarks.md). Default: 0 (off)."),
    expand: Optional[int] = typer.Option(None, "--expand", help="For --by content: rank by the query averaged with "
                                         "its N nearest works, each weighted by its cosine to the query (query "
                                         "expansion, Chum et al. 2007); the 'expanded' column is 1 - cos to that "
                                         "average, 'distance' the pair's own. 0: the query alone. Default: 2."),
    standardise: Optional[bool] = typer.Option(None, "--standardise/--no-standardise", help="For --by content "
                                               "(on by default): rank the 6k (at least 60) nearest by the 'score' "
                                               "column, the cosine as a z-score against the query's similarities "
                                               "to the collection and to the work's style group and against the "
                                               "work's own, averaged (docs/index.md); --no-standardise ranks by "
                                               "the cosine."),
    format: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    sheet: Optional[Path] = typer.Option(None, help="Also write a contact sheet of the query and its neighbours."),
    caption: Optional[List[str]] = typer.Option(None, "--caption", help="Works-table column shown under each "
                                                "thumbnail of --sheet (repeatable)."),
):
    """The works nearest to QUERY in one space, with each distance and its percentile among the collection's pairs.

    --by style ranks by the style signature: the mean squared Hellinger distance d_sig between the two works'
    Gram matrices on relu4_1 and relu5_1 (0 = same statistics, 1 = nothing in common), divided by
    sqrt(rho_query rho_work), rho being a work's mean d_sig to its 10 nearest works (Jegou et al. 2010; 1 = as
    far apart as their nearest neighbours usually are); it also lists d_sig itself (signature) and L_style.
    --by l_style ranks by L_style (Gatys et al. 2016); --by content by 1 - cos of the style-free content
    embeddings, the query expanded with its 2 nearest works (--expand), each cosine standardised against the
    collection's (--standardise). percentile = the share of the collection's pairs that are nearer (0.8: closer
    than 99.2 %).
    --ignore-subject 0.5 asks for works painted like QUERY whatever they depict.

    Example: artspace similar dots/star_0.png --by content -k 5 --catalog data/demo
    """
    if format not in ("table", "json", "csv"):
        fail(f"--format must be table, json or csv, not {format!r}")
    cat = open_catalog(catalog, near=[query])
    if sheet is not None:  # checked before the search: a suffix save_image writes, and no one else's file
        from ..errors import OutputConflict
        from ..images import image_output
        from ..outputs import check_output

        try:
            check_output(sheet, inputs=[cat.image_path(query)], protected_dirs=[cat.dir])
            image_output(sheet)
        except OutputConflict as e:  # the option to change here is --sheet
            message = str(e).replace("choose another output (-o)", "choose another file (--sheet)")
            raise OutputConflict(message) from None
    missing = [c for c in caption or () if c not in cat.works.columns]
    if missing:
        fail(f"--caption {missing[0]!r} is not a column of the works table; choose from "
             f"{', '.join(map(str, cat.works.columns))}")
    result = cat.similar(query, by=by, k=k, where=where, ignore_subject=ignore_subject,
                         expand=expand, standardise=standardise)
    _note_outside(cat, [query], by)
    echo_err(_provenance(cat, by, "; ranked by the standardised similarity (score)" if "score" in result
                         and by == "content" else None))
    print_table(result, format)
    if sheet is not None:
        from ..images import save_image

        save_image(cat.sheet(query, result, by=by, captions=caption or ()), sheet)
        typer.echo(f"wrote {sheet}", err=True)


@app.command()
@handle_errors
def distance(
    a: str = typer.Argument(..., help="First image (a file, or a catalogued work's id, path or file name)."),
    b: str = typer.Argument(..., help="Second image."),
    catalog: Optional[Path] = typer.Option(None, "--catalog", "-c", help="Use this catalog's settings, ids and "
                                           "spaces (default: the nearest catalog, if there is one)."),
    format: str = typer.Option("table", "--format", "-f", help="table or json."),
    precision: str = typer.Option("float32", "--precision", help="Precision of the exact figures: float32 (the "
                                  "default, whatever the catalog was built in), bfloat16, float16 or auto."),
):
    """Every distance of two images: what each space ranks by (the figure `similar` prints), and the exact ones.

    In a catalog: style, l_style and content as `similar --by ...` prints them, each with its percentile among the
    collection's pairs. Always, from the full feature maps: L_style = sum_l w_l E_l, E_l = sum (G - A)^2 /
    (4 N^2 M^2) on relu1_1 ... relu5_1 (Gatys et al. 2016), each layer's share; the signature distance = mean over
    relu4_1, relu5_1 of H^2 = 1 - sum sqrt(P Q); the content loss 1/2 sum (F - P)^2 on relu4_2; all at the
    catalog's input size (default 224 x 224).

    Example: artspace distance a.jpg b.jpg --format json
    """
    import json as _json

    from ..errors import CatalogNotFound

    if format not in ("table", "json"):
        fail(f"--format must be table or json, not {format!r}")
    try:
        cat = open_catalog(catalog, near=[a, b])
    except CatalogNotFound:
        if catalog is not None:
            raise
        cat = None
    if cat is not None:
        result, spec = cat.distance(a, b, precision=precision), cat.spec
        _note_outside(cat, [a, b], "style")
    else:
        from ..features import Extractor, FeatureSpec

        spec = FeatureSpec()
        result = {"exact": Extractor(spec, precision=precision).distance(a, b)}
    if format == "json":
        typer.echo(_json.dumps(result, indent=2))
        return
    _print_distance(result, spec)


def _provenance(cat, by: str, ranked: str | None = None) -> str:
    """What a figure of *cat* in space *by* is, how the rows were *ranked* when not by it, and where it comes from,
    for a citation (on standard error, so that the table or JSON on standard output stays machine-readable)."""
    from .. import __version__
    from ..spaces import formula, space

    sp = space(by)
    return (f"by {sp.label}: {formula(by, cat.spec)}{ranked or ''}; catalog {cat.dir}, generation {cat.generation}, "
            f"artspace {__version__}")


def _note_outside(cat, queries, by: str) -> None:
    """The catalog's :meth:`~artspace.Catalog.outside_note`, when one of *queries* is an image from outside it and
    *by* a style space."""
    from ..catalog.generation import OFF_AXES

    if by in OFF_AXES and any(cat.lookup(q) is None for q in queries):
        note = cat.outside_note()
        if note:
            typer.echo(f"note: {note}", err=True)


def _print_distance(result: dict, spec) -> None:
    from ..spaces import SPACES, is_taught, space

    for by, sp in [*SPACES.items(), *((b, space(b)) for b in result if is_taught(b))]:
        if by in result:
            r = result[by]
            typer.echo(f"{sp.label:40s} {r['distance']:.6g}   closer than {100 - r['percentile']:.3g} % of the "
                       f"collection's pairs")
            if "scale_a" in r:
                typer.echo(f"  = d / sqrt(rho_a rho_b): d = {r['signature']:.6g} (compact signatures); rho = mean d "
                           f"to the 10 nearest works: {r['scale_a']:.6g}, {r['scale_b']:.6g}")
    e = result["exact"]
    typer.echo(f"exact, from the full feature maps at {e['size']}x{e['size']} in {e['precision']} (weights: "
               f"{e['weights']}):")
    typer.echo(f"  L_style = sum_l w_l E_l = {e['style']:.6g}")
    for name, v in e["style_layers"].items():
        share = v / e["style"] if e["style"] else 0.0
        typer.echo(f"    {name:8s} w_l E_l = {v:.6g}  ({share:6.1%} of L_style)")
    typer.echo(f"  signature distance = mean_l H^2_l = {e['signature']:.6g}  (0: same Gram statistics, 1: nothing in "
               f"common)")
    total = sum(e["signature_layers"].values())
    for name, v in e["signature_layers"].items():
        typer.echo(f"    {name:8s} H^2 = 1 - sum sqrt(P Q) = {v:.6g}  ({v / total if total else 0:6.1%})")
    typer.echo(f"  content loss 1/2 sum (F - P)^2 at {spec.content_layer} = {e['content']:.6g}")
