"""The few named exceptions artspace raises.

The library raises these; only :mod:`artspace.cli` turns them into ``Error: ...`` lines and exit codes.
Every message names the file or value at fault and says what to do instead.
"""

from __future__ import annotations

__all__ = [
    "ArtspaceError",
    "InvalidModel",
    "StaleSpace",
    "UnreadableImage",
    "UnknownLayer",
    "WeightsUnavailable",
    "CatalogNotFound",
    "CatalogLocked",
    "IncompatibleCatalog",
    "WorkNotFound",
    "OutOfMemoryAdvice",
    "InvalidOption",
    "InvalidFilter",
    "NoMatch",
    "InvalidMetadata",
    "CorruptCatalog",
    "OutputConflict",
]


class ArtspaceError(Exception):
    """Base class of every error artspace raises on purpose."""


class UnreadableImage(ArtspaceError):
    """An image file that cannot be decoded (zero bytes, truncated, not an image, too large...)."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnknownLayer(ArtspaceError, ValueError):
    """A VGG-19 layer name that does not exist."""

    def __init__(self, name: str, valid):
        self.name = name
        super().__init__(f"unknown layer {name!r}; valid layers are: {', '.join(valid)}")


class WeightsUnavailable(ArtspaceError):
    """Backbone weights that cannot be found or downloaded."""


class CatalogNotFound(ArtspaceError):
    """No catalog where one was expected."""


class CatalogLocked(ArtspaceError):
    """Another process is writing to the catalog."""


class IncompatibleCatalog(ArtspaceError):
    """A catalog written by an incompatible version or with other settings."""


class WorkNotFound(ArtspaceError, KeyError):
    """A query that names neither an image file nor a catalogued work."""

    def __str__(self):  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class OutOfMemoryAdvice(ArtspaceError, MemoryError):
    """A computation that does not fit in memory, with advice on what to change."""


class InvalidOption(ArtspaceError, ValueError):
    """An argument out of its allowed range or set; the message quotes the bad value and the allowed ones."""


class InvalidFilter(InvalidOption):
    """A ``where`` filter that does not parse, or names a column the works table does not have."""


class NoMatch(ArtspaceError):
    """A filter or selection that matches no work (so there is nothing to answer with)."""


class InvalidMetadata(ArtspaceError, ValueError):
    """A metadata CSV that cannot be read or joined (named with the row or column at fault)."""


class CorruptCatalog(ArtspaceError):
    """A catalog file that is damaged or unreadable; the message names the file and the command that repairs it."""


class OutputConflict(ArtspaceError):
    """An output path that would overwrite one of the command's inputs or a file of the catalog."""


class InvalidModel(ArtspaceError):
    """A model file that is not an artspace network, is damaged, or was written by another model format."""


class StaleSpace(ArtspaceError):
    """A taught space whose labels, works or style embedding changed since it was taught; the message names the
    command that refits it."""
