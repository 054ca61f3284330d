"""artspace: measure, search, map and synthesise paintings by style and by content.

The public API, used the same way by notebooks and by the ``artspace`` command:

>>> import artspace
>>> artspace.VGG19  # doctest: +ELLIPSIS
<class 'artspace.backbone.VGG19'>
"""

from __future__ import annotations

__version__ = "0.1.0"

from .backbone import LAYERS, VGG19
from .errors import (
    ArtspaceError,
    CatalogLocked,
    CatalogNotFound,
    IncompatibleCatalog,
    OutOfMemoryAdvice,
    UnknownLayer,
    UnreadableImage,
    WeightsUnavailable,
    WorkNotFound,
)
from .images import open_image
