"""The metadata CSV: read, sniffed and checked before any image is touched, then joined onto the works table.

A collection's metadata comes from a spreadsheet export, so this module expects what spreadsheets write: ``,``,
``;`` (European Excel) or tab separators, UTF-8 with or without a byte-order mark, UTF-16 with one (Excel's
"Unicode text"), or Windows-1252 from older Excel; blank trailing rows; empty cells for missing values. It rejects what cannot be joined safely (no key column,
an empty key cell, two columns with one name) with one line naming the file, the row as the spreadsheet shows it
and the fix.

The caller's order of calls::

    md = read_metadata(csv_path, root)          # before extracting any image: a bad CSV fails fast
    ...                                         # extract features, build the works table
    works = works.drop(columns=previous_columns, errors="ignore")   # the last CSV's columns (from the manifest)
    works, report = join_metadata(works, md)
    notes += md.notes + report.notes()
    manifest["metadata_columns"] = md.columns   # so that the next run can drop them
    manifest["metadata_checksum"] = md.checksum # so that the next run knows whether the CSV changed

Dropping the previous CSV's columns is the caller's job because only the catalog's manifest knows which columns of
an existing works table came from a CSV and which from analyses (cluster labels, map coordinates). The catalog
imports :data:`WORK_COLUMNS` from here, so that this module never imports the catalog.

Examples
--------
>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "works.csv").write_text("path;year\\ndots/star_0.png;1650\\n", encoding="utf-8")
>>> md = read_metadata(root / "works.csv", root)
>>> md.columns, int(md.table.loc["dots/star_0.png", "year"])
(['year'], 1650)
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import InvalidMetadata

__all__ = ["WORK_COLUMNS", "KEY_COLUMNS", "Metadata", "JoinReport", "read_metadata", "join_metadata", "make_room"]

#: Columns artspace itself writes in the works table; metadata columns with these names get a ``meta_`` prefix.
WORK_COLUMNS = ("id", "path", "size", "mtime_ns", "checksum", "width", "height")
#: The columns ``similar`` computes beside the works' own.
SIMILAR_COLUMNS = ("rank", "distance", "percentile", "expanded", "content_cosine", "score", "signature", "l_style")
#: The columns ``plane`` computes for each work.
PLANE_COLUMNS = tuple(f"{axis}_{what}" for axis in ("style", "content") for what in ("distance", "percentile", "rank")
                      ) + ("quadrant",)
#: The columns ``export`` computes (the neighbour lists of every space, taught ones included, by :func:`make_room`).
EXPORT_COLUMNS = ("file",) + tuple(f"{b}_{w}" for b in ("style", "l_style", "content")
                                   for w in ("neighbors", "neighbor_distances"))
#: Metadata columns with these names get a ``meta_`` prefix too, so that a result shows, and ``--where`` filters on,
#: one name for each; a result still makes room (:func:`make_room`) for catalogs indexed before, and for columns an
#: analysis stored under such a name.
RESULT_NAMES = SIMILAR_COLUMNS + PLANE_COLUMNS + EXPORT_COLUMNS

#: Names of the column that says which image a row describes, in order of preference (matched case-insensitively).
KEY_COLUMNS = ("path", "file", "filename", "image")

_DELIMITERS = ",;\t"
_SNIFF_CHARS = 64 * 1024
_EXAMPLES = 3
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
# More significant digits than a float64 holds exactly: such a column is a run of identifiers (barcodes, inventory
# numbers), and converting it would silently change them.
_MAX_DIGITS = 15


@dataclass
class Metadata:
    """A metadata CSV as read and checked by :func:`read_metadata`.

    Attributes
    ----------
    path : Path
        The CSV file.
    key : str
        The key column's name as written in the header (``path``, ``File``, ...).
    columns : list of str
        The metadata columns, in CSV order, after reserved names got their ``meta_`` prefix; the key column is not
        among them (the works table has its own ``path``). The catalog records this list to drop these columns
        before it joins another CSV.
    table : DataFrame
        One row per key, indexed by the normalised key (index name ``path``): a collection-relative POSIX path where
        the key named a file inside the collection, else the key as written (a bare file name, say).
    duplicates : list of str
        Normalised keys listed more than once; the last row of each was kept.
    checksum : str
        SHA-256 of the file's bytes, to tell whether the CSV changed since the last run.
    notes : list of str
        One-line remarks for the user (encoding fallback, duplicates, no rows).
    delimiter, encoding : str
        What the file was read with.
    origin : DataFrame
        Indexed like *table*: ``written`` (the key cell as written, stripped) and ``row`` (its row number as a
        spreadsheet shows it, the header being row 1); reports quote these so that the user finds the row.
    """

    path: Path
    key: str
    columns: list[str]
    table: pd.DataFrame
    duplicates: list[str] = field(default_factory=list)
    checksum: str = ""
    notes: list[str] = field(default_factory=list)
    delimiter: str = ","
    encoding: str = "utf-8"
    origin: pd.DataFrame | None = None

    def keep_apart(self, stored: Iterable[str]) -> dict[str, str]:
        """Rename, in place, the columns named like a column an analysis stored in the catalog (``cluster_style``,
        a ``--column`` of the scholar's): ``meta_<name>``, as for the names the works table reserves, so that a CSV
        never replaces what ``cluster`` or ``teach`` computed. Returns ``{old: new}`` (empty when none clashed)."""
        stored = set(map(str, stored))
        renames = _meta_names([c for c in self.columns if c in stored], set(self.columns) | stored)
        if not renames:
            return {}
        self.columns = [renames.get(c, c) for c in self.columns]
        self.table = self.table.rename(columns=renames)
        return renames

    def describe(self) -> str:
        """One line saying what was read: rows, key, separator, encoding and each column's kind.

        Returns
        -------
        str
        """
        sep = {",": "comma", ";": "semicolon", "\t": "tab"}.get(self.delimiter, repr(self.delimiter))
        kinds = ", ".join(f"{c} ({'number' if pd.api.types.is_numeric_dtype(self.table[c]) else 'text'})"
                          for c in self.columns)
        dup = f"; {len(self.duplicates)} listed more than once" if self.duplicates else ""
        return (f"{self.path.name}: {len(self.table)} rows keyed by {self.key!r}, {sep}-separated, {self.encoding}"
                f"{dup}; columns: {kinds or 'none'}")


@dataclass
class JoinReport:
    """How a :class:`Metadata` table met the works table in :func:`join_metadata`.

    Attributes
    ----------
    source : str
        The CSV's file name, for the notes.
    key : str
        The CSV's key column, for the notes' advice.
    matched : int
        Works that received a row.
    unmatched_rows : list of str
        Keys, as written in the CSV, that match no work (misspelt paths, deleted images); ambiguous names are not
        repeated here.
    works_without_row : list of str
        Paths of the works that no row describes.
    ambiguous_names : list of str
        Bare file names that fit several works (or several unmatched rows) and were therefore left unjoined.
    replaced_columns : list of str
        Columns the works table already had and the CSV's replaced (the caller should have dropped them).
    excluded_rows : list of str
        Keys, as written in the CSV, of rows that describe files the index run left out on purpose (``--exclude``):
        not joined, and not reported as matching no image.
    """

    source: str
    key: str
    matched: int = 0
    unmatched_rows: list[str] = field(default_factory=list)
    works_without_row: list[str] = field(default_factory=list)
    ambiguous_names: list[str] = field(default_factory=list)
    replaced_columns: list[str] = field(default_factory=list)
    excluded_rows: list[str] = field(default_factory=list)

    def notes(self) -> list[str]:
        """One-line remarks for the CLI to print, empty when every row met exactly one work and vice versa.

        Returns
        -------
        list of str
        """
        out = []
        rows, names, works = self.unmatched_rows, self.ambiguous_names, self.works_without_row
        if rows:
            out.append(f"{_count(rows, 'row')} of {self.source} {_verb(rows, 'matches', 'match')} no image "
                       f"(first: {rows[0]!r}); check the {self.key} column")
        if self.excluded_rows:
            ex = self.excluded_rows
            out.append(f"{_count(ex, 'row')} of {self.source} {_verb(ex, 'describes', 'describe')} files left out by "
                       f"--exclude (first: {ex[0]!r}) and {_verb(ex, 'was', 'were')} not joined")
        if names:
            out.append(f"{_count(names, 'file name')} in {self.source} {_verb(names, 'fits', 'fit')} several images "
                       f"or rows (first: {names[0]!r}) and {_verb(names, 'was', 'were')} not joined; write the "
                       f"folder too, as a path relative to the collection")
        if works:
            examples = ", ".join(repr(p) for p in works[:_EXAMPLES])
            out.append(f"{_count(works, 'work')} {_verb(works, 'has', 'have')} no row in {self.source} "
                       f"(e.g. {examples}); add rows to give them metadata")
        if self.replaced_columns:
            out.append(f"{self.source} replaced the works table's column(s) {', '.join(self.replaced_columns)}; "
                       f"drop the previous CSV's columns before joining")
        return out


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _verb(items: list, one: str, many: str) -> str:
    return one if len(items) == 1 else many


# ---- reading -------------------------------------------------------------------------------------------------------


def read_metadata(path: str | os.PathLike, root: str | os.PathLike) -> Metadata:
    """Read and check a metadata CSV before any image of the collection is processed.

    Parameters
    ----------
    path : path
        The CSV file: ``,``, ``;`` or tab separated (sniffed), UTF-8 with or without BOM (or UTF-16 with BOM;
        Windows-1252 or Latin-1 as a fallback, with a note). The first row is the header.
    root : path
        The collection folder. Keys that are absolute paths, or paths relative to the CSV's folder, that land inside
        it become collection-relative POSIX paths; other keys are kept as written (bare file names, say).

    Returns
    -------
    Metadata

    Raises
    ------
    InvalidMetadata
        The file is missing, not a regular file, unreadable or empty; it has no key column, an unnamed column
        holding values, two columns with one name, a row longer than the header or a row with an empty key cell.

    Notes
    -----
    Every cell is read as text; empty (or blank) cells are missing. A column whose values are all plain numbers
    becomes numeric (``int64``, or ``float64`` where some are missing) so that ``year < 1700`` filters work; one
    with a leading zero (``0042``) or more than 15 digits stays text, since such values are identifiers. In a
    ``;``-separated file, decimal commas (``73,5``) count as numbers, as European Excel writes them. Text that looks
    like a spreadsheet formula (``=A1``) stays plain text: escaping it is an exporter's job. Rows whose cells are
    all empty (spreadsheets export trailing ones) are skipped; a key listed twice keeps its last row, with a note.
    """
    path = Path(path).expanduser()
    data = _read_bytes(path)
    text, encoding, notes = _decode(data, path)
    delimiter = _sniff(text)
    header, rows = _split(_parse(text, delimiter, path), path)
    names, keep = _header(header, rows, path)
    key_at = _find_key(names, path)
    keys, cells, numbers = _rows(rows, len(header), keep, key_at, names[key_at], path)
    if not keys:
        notes.append(f"{path.name} has a header but no rows; no metadata is joined")
    normalise = _normaliser(path, root)
    normalised = [normalise(k) for k in keys]
    kept, duplicates, dup_note = _deduplicate(normalised, numbers, path)
    if dup_note:
        notes.append(dup_note)
    columns = _rename_reserved([n for i, n in enumerate(names) if i != key_at], path)
    renamed = [c for c in columns if c.startswith("meta_") and c[5:] in WORK_COLUMNS + RESULT_NAMES
               and c[5:] in names]
    if renamed:
        notes.append(f"{path.name}: column{'s' if len(renamed) > 1 else ''} "
                     f"{', '.join(repr(c[5:]) for c in renamed)} kept as {', '.join(repr(c) for c in renamed)}: "
                     f"{', '.join(repr(c[5:]) for c in renamed)} {'are' if len(renamed) > 1 else 'is'} artspace's "
                     f"own ({_reserved_meaning(renamed)}); filter on yours with --where \"{renamed[0]} ...\"")
    index = pd.Index([normalised[i] for i in kept], name="path", dtype=None if kept else object)
    table = _table(columns, [cells[i] for i in kept], index, decimal_comma=delimiter == ";")
    rows = np.array([numbers[i] for i in kept], dtype=np.int64)
    origin = pd.DataFrame({"written": [keys[i] for i in kept], "row": rows}, index=index)
    return Metadata(path=path, key=names[key_at], columns=columns, table=table, duplicates=duplicates,
                    checksum=hashlib.sha256(data).hexdigest(), notes=notes, delimiter=delimiter, encoding=encoding,
                    origin=origin)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, after checking that it is an existing regular file."""
    if not path.exists():
        raise InvalidMetadata(f"metadata file {path} does not exist; pass the CSV's path with --metadata PATH.csv")
    if path.is_dir():
        raise InvalidMetadata(f"metadata file {path} is a folder; pass the CSV file inside it with --metadata")
    if not path.is_file():
        raise InvalidMetadata(f"metadata file {path} is not a regular file; save the spreadsheet as a CSV file and "
                              f"pass that")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidMetadata(f"cannot read metadata file {path} ({e.strerror or e}); check its permissions") from None


def _decode(data: bytes, path: Path) -> tuple[str, str, list[str]]:
    """Text, encoding name and notes: UTF-8 (BOM or not), UTF-16 with BOM, else Windows-1252 or Latin-1."""
    text, encoding, notes = _decode_text(data, path)
    if "\x00" in text:
        # No spreadsheet writes NUL into a CSV: this is UTF-16 without its BOM, or not a CSV at all.
        line = text[:text.index("\x00")].count("\n") + 1
        raise InvalidMetadata(f"{path}: line {line} holds a NUL character, so this is not a text CSV; save the "
                              f"spreadsheet as 'CSV UTF-8'")
    return text, encoding, notes


def _decode_text(data: bytes, path: Path) -> tuple[str, str, list[str]]:
    # Excel's "Unicode text" export is UTF-16 with a BOM; without this check it would decode as Latin-1 garbage
    # and fail later with a baffling "no key column".
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "UTF-16", []
        except UnicodeDecodeError:
            raise InvalidMetadata(f"{path} starts like UTF-16 but does not decode; save it as 'CSV UTF-8'") from None
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        return body.decode("utf-8"), "UTF-8", []
    except UnicodeDecodeError as e:
        line = body[:e.start].count(b"\n") + 1
        bad = e.start
    # cp1252 is what Excel wrote before 'CSV UTF-8'; it leaves five bytes undefined, which Latin-1 then takes.
    for encoding, label in (("cp1252", "Windows-1252"), ("latin-1", "Latin-1")):
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            continue
        note = (f"{path.name} is not UTF-8 (byte {bad} on line {line}); read it as {label}: check accented "
                f"characters, or save it as 'CSV UTF-8' to be sure")
        return text, label, [note]
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _sniff(text: str) -> str:
    """The delimiter among ``,`` ``;`` and tab: csv.Sniffer on the first 64 KB, checked against the header line."""
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[:sample.rindex("\n") + 1]  # a cut line would look like a row with fewer fields
    first = next((line for line in sample.splitlines() if line.strip()), "")
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        delimiter = None
    # A header always holds the delimiter unless the file has one column; the sniffer, which weighs every line,
    # can be swayed by text cells full of ';' and must not override a header that plainly uses another one.
    if delimiter is not None and (delimiter in first or not any(d in first for d in _DELIMITERS)):
        return delimiter
    counts = {d: first.count(d) for d in _DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _parse(text: str, delimiter: str, path: Path) -> list[list[str]]:
    """Every record of the file (quoted line breaks stay inside their cell), header first."""
    records: list[list[str]] = []
    # strict: a lenient reader lets an unclosed quote swallow every later row into one cell, silently.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for record in reader:
            records.append(record)
    except csv.Error as e:
        raise InvalidMetadata(f"{path}: row {len(records) + 1} cannot be read as CSV ({e}); a cell that starts "
                              f"with a quote must end with one, and quotes inside it must be doubled") from None
    return records


def _split(records: list[list[str]], path: Path) -> tuple[list[str], list[list[str]]]:
    """Header (the first non-blank record) and the data records after it, blank ones kept for row numbering."""
    start = next((i for i, r in enumerate(records) if "".join(r).strip()), None)
    if start is None:
        raise InvalidMetadata(f"{path} is empty; export the spreadsheet again with a header row naming "
                              f"{' or '.join(KEY_COLUMNS)} and the metadata columns")
    return records[start], records[start + 1:]


def _header(header: list[str], rows: list[list[str]], path: Path) -> tuple[list[str], list[int]]:
    """Column names (stripped) and their positions, without unnamed empty columns; rejects duplicates."""
    names, keep, seen = [], [], {}
    for i, raw in enumerate(header):
        name = raw.strip()
        if not name:
            # Spreadsheets export trailing separators as unnamed, empty columns: harmless, so dropped. An unnamed
            # column that holds values is a header the user forgot, and joining it under a made-up name would hide
            # that.
            row = next((n for n, r in enumerate(rows, start=2) if i < len(r) and r[i].strip()), None)
            if row is not None:
                raise InvalidMetadata(f"{path}: column {_letter(i)} holds values (row {row}) but has no name in the "
                                      f"header row; give it a name")
            continue
        if name in seen:
            raise InvalidMetadata(f"{path}: columns {_letter(seen[name])} and {_letter(i)} are both named {name!r}; "
                                  f"rename one of them")
        seen[name] = i
        names.append(name)
        keep.append(i)
    return names, keep


def _letter(i: int) -> str:
    """The spreadsheet's name for column *i* (0 → A, 26 → AA), so that the user finds it."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(ord("A") + r) + out
    return out


def _find_key(names: list[str], path: Path) -> int:
    """Position (in *names*) of the column naming each image: the first of KEY_COLUMNS, case-insensitively."""
    lowered = [n.lower() for n in names]
    for candidate in KEY_COLUMNS:
        if candidate in lowered:
            return lowered.index(candidate)
    raise InvalidMetadata(f"{path}: no column names the images; rename the one that does to "
                          f"{' or '.join(KEY_COLUMNS)} (the columns are: {', '.join(map(repr, names)) or 'none'})")


def _rows(rows: list[list[str]], width: int, keep: list[int], key_at: int, key: str,
          path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Keys (stripped), the other kept cells, and spreadsheet row numbers of the non-blank records."""
    keys, cells, numbers = [], [], []
    for number, record in enumerate(rows, start=2):  # the header is the spreadsheet's row 1
        if not "".join(record).strip():  # spreadsheets export trailing empty rows
            continue
        if len(record) > width and any(c.strip() for c in record[width:]):
            raise InvalidMetadata(f"{path}: row {number} has {len(record)} cells but the header names {width} "
                                  f"columns; quote the values that contain the separator, or name the extra column")
        record = record + [""] * (width - len(record))
        row = [record[i] for i in keep]
        written = row[key_at].strip()
        if not written:
            raise InvalidMetadata(f"{path}: row {number} has an empty {key!r} cell; write the image's path there "
                                  f"or delete the row")
        keys.append(written)
        cells.append(row[:key_at] + row[key_at + 1:])
        numbers.append(number)
    return keys, cells, numbers


def _normaliser(csv_path: Path, root: str | os.PathLike):
    """A function from a key as written to a collection-relative POSIX path, or to the key tidied.

    Absolute keys are taken as they are and relative ones from the CSV's folder; a key that lands outside the
    collection is kept (tidied) as written, since it may be relative to the collection itself or a bare name.
    """
    root_abs = os.path.abspath(root)
    # Symbolic links (a collection reached through a link, macOS's /tmp) make one folder have two names; a key
    # may use either. Prefix tests on precomputed names keep this cheap for a CSV of a million rows.
    prefixes = {base.rstrip("/") + "/" for base in (root_abs, os.path.realpath(root_abs))}
    csv_dir = os.path.realpath(csv_path.parent)

    def inside(full: str) -> str | None:
        return next((full[len(p):] for p in prefixes if full.startswith(p) and len(full) > len(p)), None)

    def normalise(written: str) -> str:
        # Windows users write 'dots\star_0.png'; a backslash inside a POSIX file name is rare enough to give up.
        key = written.replace("\\", "/")
        if posixpath.isabs(key):
            rel = inside(posixpath.normpath(key)) or inside(os.path.realpath(key))
        else:
            rel = inside(posixpath.normpath(posixpath.join(csv_dir, key)))
        return rel if rel is not None else _tidy(key)

    return normalise


def _tidy(key: str) -> str:
    """*key* with ``./`` and doubled slashes removed, as the works table writes paths."""
    return posixpath.normpath(key) if key else key


def _deduplicate(keys: list[str], numbers: list[int], path: Path) -> tuple[list[int], list[str], str | None]:
    """Positions to keep (the last row of each key, in CSV order), the repeated keys, and a note about them."""
    last: dict[str, int] = {}
    rows_of: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        last[k] = i
        rows_of.setdefault(k, []).append(numbers[i])
    duplicates = [k for k, rows in rows_of.items() if len(rows) > 1]
    note = None
    if duplicates:
        first = duplicates[0]
        rows = " and ".join(map(str, rows_of[first]))
        note = (f"{_count(duplicates, 'image')} {_verb(duplicates, 'is', 'are')} listed more than once in "
                f"{path.name} (first: {first!r}, rows {rows}); the last row of each is used")
    return sorted(last.values()), duplicates, note


def make_room(table: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """*table* with each metadata column that one of *names* would take renamed ``meta_NAME`` (``meta_meta_NAME``
    if that is taken too), as the works table does with the names it reserves: a result adds its computed column
    beside the scholar's own, never over it. Returns *table* itself when no name clashes.

    >>> make_room(pd.DataFrame({"rank": [3], "year": [1650]}), ["rank", "distance"]).columns.tolist()
    ['meta_rank', 'year']
    """
    clash = [c for c in dict.fromkeys(names) if c in table.columns]
    if not clash:
        return table
    return table.rename(columns=_meta_names(clash, set(map(str, table.columns)) | set(names)))


def _meta_names(clash: list[str], taken: set[str]) -> dict[str, str]:
    """``{name: meta_name}`` for each of *clash*: ``meta_`` before it, again while that is in *taken* too."""
    renames = {}
    for c in clash:
        new = f"meta_{c}"
        while new in taken:
            new = f"meta_{new}"
        renames[c] = new
        taken.add(new)
    return renames


def _reserved_meaning(renamed: list[str]) -> str:
    """What artspace's own columns of these names hold, each said once.

    >>> _reserved_meaning(["meta_width", "meta_rank", "meta_distance"])
    'width: image width in pixels; rank, distance: columns that results compute'
    """
    meaning = {"id": "the work id", "path": "the file", "size": "file size in bytes", "mtime_ns": "file time",
               "checksum": "the file's SHA-256", "width": "image width in pixels", "height": "image height in pixels"}
    names = [c[5:] for c in renamed]
    computed = [n for n in names if n not in meaning]
    parts = [f"{n}: {meaning[n]}" for n in names if n in meaning]
    if computed:
        parts.append(f"{', '.join(computed)}: column{'s' if len(computed) > 1 else ''} that results compute")
    return "; ".join(parts)


def _rename_reserved(columns: list[str], path: Path) -> list[str]:
    """Metadata column names with ``meta_`` before those the works table reserves (``width``, ``id``...)."""
    renamed = [f"meta_{c}" if c in WORK_COLUMNS + RESULT_NAMES else c for c in columns]
    clash = next((c for c in renamed if renamed.count(c) > 1), None)
    if clash is not None:
        raise InvalidMetadata(f"{path}: column {clash[5:]!r} becomes {clash!r}, which the file already has; "
                              f"rename one of them")
    return renamed


def _table(columns: list[str], cells: list[list[str]], index: pd.Index, decimal_comma: bool) -> pd.DataFrame:
    """The metadata table from its rows of cells (key cell excluded), one typed column at a time."""
    table = pd.DataFrame({c: _column([row[j] for row in cells], decimal_comma) for j, c in enumerate(columns)},
                         index=range(len(cells)))
    table.index = index
    return table


def _column(values: list[str], decimal_comma: bool) -> pd.Series:
    """A column from its cells: missing where blank, numeric where every value is a plain number, else text."""
    # Inference gives pandas 3's 'str' (object on pandas 2) for text and float64 for an all-missing column, the
    # dtypes pd.read_csv would give; no value is ever parsed by guesswork.
    series = pd.Series([v if v.strip() else np.nan for v in values], dtype=None if values else object)
    if len(series) == 0 or series.isna().all():
        return series.astype("float64")
    numbers = _as_numbers(series, decimal_comma)
    return series if numbers is None else numbers


def _as_numbers(series: pd.Series, decimal_comma: bool) -> pd.Series | None:
    """*series* as numbers if every present value is a plain number (not an identifier), else None."""
    present = series.dropna().astype(str).str.strip()
    if decimal_comma and not present.str.contains(".", regex=False).any():
        present = present.str.replace(",", ".", regex=False)
    if not present.str.fullmatch(_NUMBER).all():
        return None
    if present.str.match(r"[+-]?0\d").any() or (present.str.count(r"\d") > _MAX_DIGITS).any():
        return None
    return pd.to_numeric(present).reindex(series.index)


# ---- joining -------------------------------------------------------------------------------------------------------


def join_metadata(works: pd.DataFrame, md: Metadata, *,
                  excluded: Callable[[str], bool] | None = None) -> tuple[pd.DataFrame, JoinReport]:
    """Left-join the metadata columns onto the works table and say what did not meet.

    Each work takes the row whose normalised key is its ``path``; then, for the works and rows still unpaired,
    the row whose key read from the collection root (a CSV kept in a subfolder but written relative to the
    collection) is its path; then the row whose bare file name is its file name, where that name belongs to one
    work only and to one unpaired row only. Two works called ``star_0.png`` are never guessed between.

    Parameters
    ----------
    works : DataFrame
        The works table, with a ``path`` column of collection-relative POSIX paths. The caller drops the previous
        CSV's columns first (``works.drop(columns=previous, errors="ignore")``).
    md : Metadata
        From :func:`read_metadata`.
    excluded : callable, optional
        ``excluded(path)`` is true for a collection-relative path the run left out on purpose (its ``--exclude``
        patterns); an unpaired row whose key is such a path is reported as excluded, not as matching no image.

    Returns
    -------
    joined : DataFrame
        *works* (same index, row order and dtypes) followed by ``md.columns``; unjoined works have NaN there.
        A works column with a metadata column's name is replaced by it (and reported).
    report : JoinReport
    """
    paths = [str(p) for p in works["path"]]
    report = JoinReport(source=md.path.name, key=md.key)
    match = _match(paths, md, report, excluded)
    meta = md.table[md.columns].reindex(np.array(match, dtype=object))
    meta.index = works.index
    report.replaced_columns = [c for c in md.columns if c in works.columns]
    joined = pd.concat([works.drop(columns=report.replaced_columns), meta], axis=1)
    report.matched = sum(m is not None for m in match)
    report.works_without_row = [p for p, m in zip(paths, match) if m is None]
    return joined, report


def _match(paths: list[str], md: Metadata, report: JoinReport,
           excluded: Callable[[str], bool] | None = None) -> list[str | None]:
    """For each work, the table key of its row or None; fills the report's unmatched, excluded and ambiguous."""
    keys = set(md.table.index)
    match: list[str | None] = [p if p in keys else None for p in paths]
    free = keys - {m for m in match if m is not None}
    written = md.origin["written"].to_dict() if md.origin is not None else {}
    _by_written(paths, match, written, free)
    _by_name(paths, match, md.table.index, free, report)
    ambiguous = set(report.ambiguous_names)
    unpaired = [k for k in md.table.index if k in free]
    left_out = {k for k in unpaired if excluded is not None and excluded(k)}
    report.excluded_rows = [written.get(k, k) for k in unpaired if k in left_out]
    report.unmatched_rows = [written.get(k, k) for k in unpaired if k not in left_out and _name(k) not in ambiguous]
    return match


def _by_written(paths: list[str], match: list, written: dict, free: set) -> None:
    """Pair works with free rows whose key, as written, is a collection-relative path (CSV in a subfolder)."""
    alternatives = Counter()
    alt_of = {}
    for k in free:
        alt = _tidy(written.get(k, k).replace("\\", "/"))
        if alt != k:
            alt_of[alt] = k
            alternatives[alt] += 1
    for i, p in enumerate(paths):
        if match[i] is None and alternatives.get(p) == 1 and alt_of[p] in free:
            match[i] = alt_of[p]
            free.discard(alt_of[p])


def _by_name(paths: list[str], match: list, keys: pd.Index, free: set, report: JoinReport) -> None:
    """Pair works with free rows by bare file name where the name is unique among works and among free rows."""
    work_names = Counter(_name(p) for p in paths)
    free_by_name: dict[str, list[str]] = {}
    for k in keys:  # table order, so that reports follow the CSV
        if k in free:
            free_by_name.setdefault(_name(k), []).append(k)
    ambiguous = []
    for name, ks in free_by_name.items():
        if work_names[name] > 1 or (work_names[name] == 1 and len(ks) > 1):
            ambiguous.append(name)
    report.ambiguous_names = ambiguous
    for i, p in enumerate(paths):
        name = _name(p)
        ks = free_by_name.get(name)
        if match[i] is None and work_names[name] == 1 and ks is not None and len(ks) == 1:
            match[i] = ks[0]
            free.discard(ks[0])


def _name(key: str) -> str:
    """The bare file name of a key or path."""
    return key.rsplit("/", 1)[-1]
