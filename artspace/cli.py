"""The ``artspace`` command: a thin layer over the Python API.

Each command parses its options, calls one library function with the same argument names, and prints. Library
errors (:class:`artspace.errors.ArtspaceError`) become ``Error: ...`` and exit code 1 here and nowhere else.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import ArtspaceError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Measure, search, map and synthesise paintings by style and by content.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _fail(message: str, code: int = 1):
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(fn):
    """Turn artspace's own exceptions into ``Error: ...`` and exit code 1 (the CLI alone formats errors)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ArtspaceError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper


# ---- index / similar / distance (issue: index and search) -------------------------------------------------------

# ---- transfer / reconstruct (issue: pastiches) ------------------------------------------------------------------

# ---- analyses: cluster / map / plane / compare / units / export (issue: analyses) -------------------------------


def main():  # console-script entry point
    app()


if __name__ == "__main__":
    main()
