"""What every command shares: the app, the one error handler, the option groups declared once, and output helpers.

Library errors (:class:`artspace.errors.ArtspaceError`) become ``Error: ...`` and exit code 1 here and nowhere else;
the commands check nothing the library checks, and their defaults are the library's (:func:`library_defaults`).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import shlex
from pathlib import Path
from typing import Optional

import typer

from ..errors import ArtspaceError

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,  # help texts are plain: "[default: 224]" and "artspace[ray]" must print as written
    no_args_is_help=True,
    help="Measure, search, map and synthesise paintings by style and by content (Gatys et al. 2016).",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str, code: int = 1):
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(fn):
    """Turn artspace's own exceptions into ``Error: ...`` and exit code 1 (the CLI alone formats errors)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ArtspaceError as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted; everything finished so far is saved (run the same command again to continue)", 130)

    return wrapper


@functools.lru_cache(maxsize=None)
def library_defaults(module: str, function: str) -> dict:
    """The literal defaults of *function*'s parameters in *module*, read from its source without importing it (the
    indexer and the analyses import torch or scikit-learn; `artspace similar` should not pay for that)."""
    source = Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and node.name == function:
            a = node.args
            pairs = list(zip(a.args[len(a.args) - len(a.defaults):], a.defaults))
            pairs += [(arg, d) for arg, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            out = {}
            for arg, default in pairs:
                try:
                    out[arg.arg] = ast.literal_eval(default)
                except ValueError:
                    continue  # a named constant: the command names it itself
            return out
    raise LookupError(f"{module} has no function {function}")


def given(params: dict, names) -> dict:
    """The parameters among *names* that were given on the command line (None: the library's default)."""
    return {name: value for name, value in params.items() if name in names and value is not None}


# ---- option groups -------------------------------------------------------------------------------------------------


def catalog_option(help: str | None = None, *, query: bool = False):
    """``--catalog``; *query*: the command takes an image, above whose file the catalog is looked for too."""
    return typer.Option(None, "--catalog", "-c", help=help or (
        "Catalog directory, or the collection folder holding .artspace (default: the nearest .artspace in the working "
        "folder or above it" + (", else above the query's file)." if query else ").")))


def by_option(help: str | None = None):
    from ..spaces import DEFAULT_SPACE

    return typer.Option(DEFAULT_SPACE, "--by", help=help or (
        "The space, the same in every command: style = the style signature relative to both works' neighbourhoods "
        "(default), l_style = Gatys et al.'s L_style, content = 1 - cos of style-free content embeddings, "
        "taught:NAME = a space taught by labels (`artspace teach`)."))


def quiet_option(help: str = "No progress bar or log lines."):
    return typer.Option(False, "--quiet", "-q", help=help)


def out_option(what: str, name: str):
    return typer.Option(None, "--out", "-o", help=f"Folder for {what} (default: ./{name}, or COLLECTION-artspace/"
                                                  f"{name} beside the collection when run inside it).")


# ---- output -------------------------------------------------------------------------------------------------------


def echo_err(message: str) -> None:
    typer.echo(message, err=True)


def wrote(files) -> None:
    for f in files:
        typer.echo(f"wrote {f}", err=True)


def print_table(df, fmt: str) -> None:
    import json

    if fmt == "json":
        typer.echo(json.dumps(json.loads(df.to_json(orient="records")), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        from ..outputs import neutralise_formulas

        typer.echo(neutralise_formulas(df).to_csv(index=False), nl=False)
    else:
        typer.echo(df.to_string(index=False, float_format=lambda v: f"{v:.6g}"))


def open_catalog(catalog: Optional[Path], near=()):
    """The catalog every command uses (one rule: --catalog, else the nearest .artspace), with a note on stored
    analysis columns that predate the last change of the works or of their embedding."""
    from ..catalog import Catalog

    cat = Catalog.locate(catalog, near=near)
    if isinstance(cat.root, Path) and not cat.root.is_dir():  # an outside catalog whose collection moved
        echo_err(f"note: the collection this catalog describes is no longer at {cat.root}; its works' images "
                 f"cannot be read, and a file of the moved collection counts as an image from outside. "
                 f"`artspace index NEW_PLACE --catalog {shlex.quote(str(cat.dir))}` records where it went "
                 f"(no image is read again)")
    where = _catalog_argument(cat)
    by_source: dict[str, list[str]] = {}
    for column, source in cat.stale_columns().items():  # one note per command that made them
        by_source.setdefault(source, []).append(column)
    for source, columns in by_source.items():
        names = ", ".join(map(repr, columns))
        command = f"`artspace {source} {where}`" if source.split(" ")[0] in app_commands() else f"{source!r}"
        many = len(columns) > 1
        echo_err(f"note: column{'s' if many else ''} {names} predate{'' if many else 's'} the last change of the "
                 f"works or of the embedding {'they were' if many else 'it was'} computed on; {command} updates "
                 f"{'them' if many else 'it'}")
    from ..catalog.taught import refit_hint

    for by, stale in cat.taught_spaces.items():
        if stale is not None:
            name = by.split(":", 1)[1]
            fix = refit_hint(name, cat.manifest["taught"][name], columns=cat.works.columns, catalog_arg=where)
            echo_err(f"note: the taught space {by} is stale ({stale}); {fix}")
    return cat


def app_commands() -> set[str]:
    """The names of artspace's commands."""
    return {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}


def _catalog_argument(cat) -> str:
    """``-c FOLDER`` naming *cat*'s collection as a shell would need it from the working folder."""
    root = Path(cat.root).resolve()
    rel = os.path.relpath(root, Path.cwd().resolve())
    return f"-c {shlex.quote(rel if not rel.startswith('..') else str(root))}"


def default_out(cat, out: Optional[Path], name: str) -> Path:
    """*out* if given; else the default folder, which stays out of the collection (said when it moves)."""
    from ..analysis.files import default_out as library_default_out, folder_owner

    if out is not None:
        return out
    folder = library_default_out(cat, name)
    if folder.is_absolute():
        owner = folder_owner(Path(name))
        why = (f"./{name} holds the analyses of another catalog ({owner})"
               if owner is not None and owner != Path(cat.root).resolve()
               else f"the working folder is inside the collection {cat.root}")
        echo_err(f"note: {why}; writing to {folder} (-o to choose)")
    return folder
