"""The ``artspace`` command: a thin layer over the Python API.

Each command parses its options, calls one library function with the same argument names, and prints:

* :mod:`.common` — the app, the one error handler (``Error: ...``, exit code 1), option groups declared once;
* :mod:`.collection` — ``demo``, ``index``, ``pastiche-set``, ``fit-content``, ``fit-medium``;
* :mod:`.queries` — ``similar``, ``distance``;
* :mod:`.pastiches` — ``transfer``, ``reconstruct``;
* :mod:`.networks` — ``train-style``, ``train-decoder``, ``stylise``;
* :mod:`.analyses` — ``cluster``, ``map``, ``plane``, ``compare``, ``units``, ``export``;
* :mod:`.teaching` — ``teach``, ``attribute``, ``unteach``, ``fit-reference``.

Importing it loads neither torch nor scikit-learn: a query about catalogued works answers without them.
"""

import typer

from .. import __version__
from . import analyses, collection, networks, pastiches, queries, teaching  # noqa: F401 - each registers its commands
from .common import app

__all__ = ["app", "main"]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"artspace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                       help="Print artspace's version and exit.")):
    """Measure, search, map and synthesise paintings by style and by content (Gatys et al. 2016)."""


def main():  # console-script entry point
    app()
