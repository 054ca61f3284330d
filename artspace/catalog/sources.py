"""Collections kept in an object store: ``s3://``, ``gs://`` and the other URIs pyarrow's filesystems read.

``artspace index s3://bucket/paintings --catalog ./paintings.artspace`` lists the objects below the prefix, reads
each image's bytes where it is decoded (the indexing process, or the Ray tasks of ``--engine ray``) and keeps the
catalog on a local disk. A work's path is its key relative to the prefix, its size and modification time those the
store reports, its checksum the SHA-256 of its bytes: the resume and skip rules are those of a folder. Credentials
come from the environment as pyarrow reads them (``AWS_ACCESS_KEY_ID``…, ``GOOGLE_APPLICATION_CREDENTIALS``); the
URI's query may set what pyarrow accepts there (``region``, ``endpoint_override``, ``scheme``). A secret pasted
into it (``access_key``, ``secret_key``, ``session_token``) is never written to the catalog or printed. Commands
that need a work's image (contact sheets, pastiches, thumbnails) fetch it once into the catalog's
``cache/sources/``.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from pathlib import Path, PurePosixPath

from ..errors import ArtspaceError
from ..images import IMAGE_EXTENSIONS

__all__ = ["is_uri", "public_uri", "mirror", "RemoteSource"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Query parameters of a URI that are secrets: used to connect, never stored.
SECRET_PARAMS = ("access_key", "secret_key", "session_token")


def is_uri(root) -> bool:
    """Whether *root* names an object-store location (``scheme://…``) rather than a local folder."""
    return isinstance(root, str) and bool(_SCHEME.match(root))


def public_uri(uri: str) -> str:
    """*uri* without the credentials its query may carry: what the catalog records and messages print."""
    parts = urllib.parse.urlsplit(uri)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if not any(k in SECRET_PARAMS for k, _ in pairs):
        return uri
    query = [(k, v) for k, v in pairs if k not in SECRET_PARAMS]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, safe=":/")))


def mirror(cache: Path, uri: str) -> Path:
    """The folder under a catalog's *cache* that the images of the collection at *uri* are fetched to."""
    return cache / "sources" / hashlib.sha256(public_uri(uri).encode()).hexdigest()[:16]


class RemoteSource:
    """The images below an object-store URI: :meth:`list` them, :meth:`read` one. Picklable (Ray ships it to its
    tasks as its URI)."""

    def __init__(self, uri: str):
        import pyarrow as pa
        import pyarrow.fs as pafs

        self.uri = uri
        self.public = public_uri(uri)
        try:
            self.fs, base = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise ArtspaceError(f"cannot open the collection {self.public}: {e}; check the URI (s3://bucket/prefix, "
                                f"gs://bucket/prefix) and the credentials in the environment") from None
        self.base = base.rstrip("/")

    def __reduce__(self):
        return (RemoteSource, (self.uri,))

    def __str__(self) -> str:
        return self.public

    def list(self, exclude: tuple[str, ...] = ()) -> tuple[list, list]:
        """``([(rel, size, mtime_ns)], [(rel, reason)])``: the image objects below the prefix in key order (hidden
        names and folders named in *exclude* passed over, as in a local folder), and the keys that cannot be a
        relative path, with the reason."""
        import pyarrow as pa
        import pyarrow.fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.base, recursive=True))
        except (pa.ArrowException, OSError) as e:
            raise ArtspaceError(f"cannot list the collection {self.public}: {e}; check that the prefix exists and "
                                f"the credentials allow listing it") from None
        files, skips = [], []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            rel = PurePosixPath(info.path).relative_to(self.base).as_posix()
            parts = rel.split("/")
            if any(p.startswith(".") or p in exclude for p in parts):
                continue
            if os.path.splitext(parts[-1])[1].lower() not in IMAGE_EXTENSIONS:
                continue
            if any(p in ("", "..") for p in parts):
                skips.append((rel, "an object key with an empty or '..' part, which no folder can hold; rename it"))
                continue
            files.append((rel, int(info.size or 0), int(info.mtime_ns or 0)))
        files.sort()
        return files, skips

    def read(self, rel: str) -> bytes:
        """The bytes of the object *rel* (relative to the prefix)."""
        with self.fs.open_input_stream(f"{self.base}/{rel}") as f:
            return f.read()

    def fetch(self, rel: str, folder: Path, size: int | None = None) -> Path:
        """A local copy of *rel* in *folder* (its :func:`mirror`), fetched once; again when its size differs from
        *size*."""
        target = folder / rel
        if target.is_file() and (size is None or target.stat().st_size == size):
            return target
        from ..atomic import atomic_write

        target.parent.mkdir(parents=True, exist_ok=True)
        data = self.read(rel)
        atomic_write(target, lambda p: Path(p).write_bytes(data))
        return target
