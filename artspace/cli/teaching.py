"""Commands that learn from a scholar's labels: ``teach`` and ``attribute``."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ArtspaceError, InvalidOption
from .common import (app, catalog_option, default_out, echo_err, fail, given, handle_errors, library_defaults,
                     open_catalog, out_option, print_table, wrote)

_TEACH = library_defaults("artspace.analysis.teaching", "teach")
_ATTRIBUTE = library_defaults("artspace.analysis.teaching", "attribute")


@app.command("teach")
@handle_errors
def teach_cmd(
    label_column: str = typer.Option(..., "--label-column", help="Works-table column holding the labels "
                                     "(movement, workshop, hand...); works without one are not used."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the space (default: the label column): "
                                       "searched as --by taught:NAME."),
    method: Optional[List[str]] = typer.Option(None, "--method", help="Learner to choose among, repeatable: lda "
                                               "(PCA + Fisher's discriminant with shrinkage), nca (neighbourhood "
                                               "components analysis) or mlp (a small head trained with a supervised "
                                               "contrastive loss); default all three, the best by cross-validation "
                                               "is kept."),
    folds: int = typer.Option(_TEACH["folds"], "--folds", help="Cross-validation folds."),
    min_works: Optional[int] = typer.Option(None, "--min-works", help="Labels with fewer works are left out, with a "
                                            "warning naming them (default 5)."),
    group_column: Optional[str] = typer.Option(None, "--group-column", help="Works sharing a value of this column "
                                               "(an artist, say) are always held out together."),
    seed: int = typer.Option(_TEACH["seed"], help="Seed of the folds, the bootstrap and NCA."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="A file of reference axes to offer the "
                                             "learners instead of the movement axes shipped with artspace (made "
                                             "by `artspace fit-reference`)."),
    no_reference: bool = typer.Option(False, "--no-reference", help="Offer the learners no reference axes."),
    out: Optional[Path] = out_option("the report (figures, confusion matrix and calibration, CSV and PNG)",
                                     "teach-NAME"),
    catalog: Optional[Path] = catalog_option(),
):
    """Teach a style space from the labels of a column; store it in the catalog as taught:NAME.

    The stored style embedding (relu4_1 + relu5_1 Gram signature, Gatys et al. 2016) is projected by principal
    components and Fisher's discriminant with a shrunk within-label covariance (Fisher 1936; Friedman 1989; Ledoit &
    Wolf 2004), by neighbourhood components analysis (Goldberger et al. 2004), or by a small head trained with a
    supervised contrastive loss (Khosla et al. 2020); the learner and its settings are
    chosen by cross-validation grouped by work, so no work helps score itself. The learners are also offered
    reference axes, the style directions that separate seven WikiArt movements in 2,100 other paintings, kept only
    if the cross-validation on your labels prefers them (--no-reference: never). Prints, and writes to --out, the
    cross-validated precision@10 and accuracy per label with bootstrap 95 % intervals beside the raw style space's,
    the confusion matrix and the calibration curve. The space is then searched, mapped, clustered and exported with
    --by taught:NAME; it is refused (with this command to refit it) once the labels or the works change.

    Example: artspace teach --label-column style --name movement --catalog paintings
    """
    from ..analysis.teaching import METHODS, teach

    if reference is not None and no_reference:
        raise InvalidOption("give --reference FILE or --no-reference, not both")
    cat = open_catalog(catalog)
    space_name = name or label_column
    echo_err(f"teach: {len(cat)} works, labels from column {label_column!r}...")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")  # the summary names the labels left out
        result = teach(cat, label_column, name=name, methods=method or METHODS, folds=folds,
                       group_column=group_column, seed=seed, out=default_out(cat, out, f"teach-{space_name}"),
                       reference=False if no_reference else (reference if reference is not None else True),
                       **given({"min_works": min_works}, ["min_works"]))
    typer.echo(result.summary())
    typer.echo("")
    typer.echo(result.figures.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"\nsearch it with: artspace similar WORK --by {result.space}", err=True)
    wrote(result.files)


@app.command("fit-reference")
@handle_errors
def fit_reference_cmd(
    label_column: str = typer.Option(..., "--label-column", help="Works-table column holding the labels the axes "
                                     "separate (movement, workshop, hand...)."),
    output: Path = typer.Option(..., "--output", "-o", help="The file of axes to write (.npz); never overwritten."),
    name: Optional[str] = typer.Option(None, "--name", help="What the axes separate, in words (default: the "
                                       "column)."),
    min_works: int = typer.Option(5, "--min-works", help="Labels with fewer works are left out."),
    catalog: Optional[Path] = catalog_option(),
):
    """Fit reference axes on a catalog's labelled works, for `artspace teach --reference FILE` on other catalogs.

    The labelled works' images are read again and their style signatures sketched as the catalog sketched them;
    Fisher's discriminant of the labels (Fisher 1936) is fitted on the sketches' principal components, with the
    within-label covariance shrunk (Friedman 1989), the components and shrinkage chosen by 5-fold cross-validation.
    A larger attributed collection so lends what it shows to a smaller one that shares its labels. artspace ships
    such axes for seven WikiArt movements, used by `teach` by default.

    Example: artspace fit-reference --label-column workshop -c attributed -o workshops.npz
             artspace teach --label-column workshop -c new_acquisitions --reference workshops.npz
    """
    from ..reference import fit_reference_from

    if output.exists():
        raise ArtspaceError(f"{output} exists; artspace never overwrites a file: choose another --output")
    cat = open_catalog(catalog)
    axes = fit_reference_from(cat, label_column, name=name, min_works=min_works, notify=echo_err)
    axes.save(output)
    typer.echo(f"wrote {output}: {axes.dim} axes separating {len(axes.info['labels'])} labels of column "
               f"{label_column!r} ({axes.info['works']} works; {axes.info['pca']} principal components, shrinkage "
               f"{axes.info['shrinkage']}; cross-validated precision@10 {axes.info['cv_precision_at_10']:.3f}, "
               f"{axes.info['cv_search']}, chance {axes.info['cv_chance']:.3f})")


@app.command("unteach")
@handle_errors
def unteach_cmd(
    name: str = typer.Argument(..., help="The taught space to remove: NAME or taught:NAME."),
    catalog: Optional[Path] = catalog_option(),
):
    """Remove a taught space from the catalog (a new generation without it; the works, their columns and the other
    spaces are kept). Teach it again with `artspace teach`.

    Example: artspace unteach movement --catalog paintings
    """
    cat = open_catalog(catalog)
    n = cat.unteach(name)
    typer.echo(f"removed taught:{name.split(':', 1)[-1]}: generation {n} holds "
               + (", ".join(sorted(cat.taught_spaces)) or "no taught space"))


def _flat(table):
    """Lists as ``;``-separated text, for a table or CSV."""
    out = table.copy()
    for c in ("evidence", "evidence_labels", "evidence_distances"):
        out[c] = [";".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r) for r in out[c]]
    return out


@app.command("attribute")
@handle_errors
def attribute_cmd(
    label_column: Optional[str] = typer.Option(None, "--label-column", help="The column the space was taught "
                                               "from (default: the taught space's)."),
    name: Optional[str] = typer.Option(None, "--name", help="The taught space (default: the label column)."),
    top: int = typer.Option(_ATTRIBUTE["top"], "--top", help="Likeliest labels per work."),
    evidence: int = typer.Option(_ATTRIBUTE["evidence"], "--evidence", help="Nearest labelled works per work."),
    sheet: Optional[Path] = typer.Option(None, "--sheet", help="Folder for one contact sheet per work: the work and "
                                         "its nearest labelled works, with their labels."),
    format: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    catalog: Optional[Path] = catalog_option(),
):
    """The likeliest labels of every work without one, with the labelled works nearest to it as evidence.

    Probabilities come from the taught space (the distances to each label's mean) and are calibrated by the
    cross-validation of `artspace teach` (one temperature, Guo et al. 2017). Labels the space was not taught (too
    few works) are named in a warning.

    Example: artspace attribute --label-column style --name movement --sheet attributions --catalog paintings
    """
    if format not in ("table", "json", "csv"):
        fail(f"--format must be table, json or csv, not {format!r}")
    from ..analysis.teaching import attribute

    if label_column is None and name is None:
        fail("give --label-column (the column the space was taught from) or --name (the taught space)")
    cat = open_catalog(catalog)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = attribute(cat, label_column, name=name, top=top, evidence=evidence, sheet=sheet)
    for w in caught:
        echo_err(f"{'note' if not len(table) else 'warning'}: {w.message}")
    if not len(table):
        return
    print_table(table if format == "json" else _flat(table), format)
    wrote(table.attrs.get("files", []))
