"""A small filter language for ``--where``: parsed and checked, never evaluated.

Why it exists: ``pandas.DataFrame.query`` (what ``--where`` used to be passed to) evaluates Python. It resolves
``@`` names in the caller's scope and allows attribute access and calls, so
``--where "@pd.io.common.os.system('id > PWNED') == 0"`` runs a shell command. A filter typed on a command line,
read from a saved query or pasted from a colleague must not be able to run code. This module reads the text with a
hand-written tokenizer and recursive-descent parser into a tree of comparisons joined by ``and``, ``or`` and
``not``, and evaluates that tree against the works table with numpy; no text ever reaches ``eval``, ``compile``,
``DataFrame.query``/``eval`` or numexpr. The only constructs are the ones in the grammar below: there is no
attribute access, call, subscript, arithmetic or name binding.

:func:`parse_filter` reads a text into a :class:`Filter`; :meth:`Filter.mask` selects rows of a works table;
:func:`apply_filter` does both and returns the rows.

Notes
-----
The grammar::

    expr       := or_expr
    or_expr    := and_expr ('or' and_expr)*                  'or'  may be written '|'
    and_expr   := not_expr ('and' not_expr)*                 'and' may be written '&'
    not_expr   := 'not' not_expr | atom                      'not' may be written '~'
    atom       := '(' expr ')'
                | comparison
                | 'isnull' '(' column ')' | 'notnull' '(' column ')'
    comparison := column op literal
                | literal op column
                | column ['not'] 'in' '[' literal (',' literal)* ']'    (or '(' ... ')' around the list)
    op         := '==' | '!=' | '<' | '<=' | '>' | '>='                 ('=' is read as '==')
    column     := identifier | `backquoted name, spaces allowed`
    literal    := number | 'single' or "double" quoted string | true | false

Keywords (``and or not in isnull notnull true false``) are case-insensitive; column names are case-sensitive (a
column named like a keyword is written in backquotes). Numbers are integers or decimals with an optional sign and
exponent (``1700``, ``-3``, ``0.5``, ``1.5e3``); strings allow the escapes ``\\\\``, ``\\'`` and ``\\"``.

What a filter means:

* A comparison of a column with a value, never of two columns. A number column compares with numbers (an integer
  equals the same value in an integer or a float column), a text column with strings (``<`` and ``>`` compare
  text lexicographically, which orders ISO dates ``'1650-03-01'``), a true/false column with ``true`` and
  ``false`` (``==`` and ``!=`` only), a date-time column with a date in quotes. Any other pairing is an error
  that names the column's kind, not an empty result.
* Missing values (NaN, None, ``pd.NA``, NaT) match no comparison, ``!=`` and ``not in`` included, nor its
  negation (SQL's three-valued logic: ``not (year < 1700)`` means ``year >= 1700``). Only ``isnull(column)`` and
  ``notnull(column)`` test for them.
* Text longer than 10,000 characters, and nesting (parentheses and ``not``) deeper than 100, are refused.

Every mistake raises :class:`artspace.errors.InvalidFilter` with a one-line message that quotes the filter, says at
which character what was expected, and shows a valid example.

Examples
--------
>>> import pandas as pd
>>> works = pd.DataFrame({"style": ["Baroque", "Rococo", None], "year": [1650, 1750, float("nan")]})
>>> f = parse_filter("style == 'Baroque' AND year<1700 | isnull(year)")
>>> str(f)
"style == 'Baroque' and year < 1700 or isnull(year)"
>>> sorted(f.columns)
['style', 'year']
>>> f.mask(works).tolist()
[True, False, True]
>>> apply_filter(works, "not year in [1650, 1700.5]")
     style    year
1  Rococo  1750.0
>>> parse_filter("year < 1700 and @os.system('ls')")
Traceback (most recent call last):
...
artspace.errors.InvalidFilter: --where "year < 1700 and @os.system('ls')" at character 17: '@' (a Python variable) \
is not part of the filter language; e.g. --where "style == 'Baroque' and year < 1700"
>>> parse_filter("styel == 'Baroque'").mask(works)
Traceback (most recent call last):
...
artspace.errors.InvalidFilter: --where "styel == 'Baroque'" at character 1: the works table has no column 'styel'; \
did you mean 'style'? Its columns: style, year
"""

from __future__ import annotations

import abc
import difflib
import math
import numbers
import operator
import re
from dataclasses import dataclass, field
from typing import Iterator, Union

import numpy as np
import pandas as pd

from .errors import InvalidFilter, NoMatch

__all__ = ["Filter", "parse_filter", "apply_filter", "MAX_LENGTH", "MAX_DEPTH", "EXAMPLE"]

#: Longest filter text accepted, in characters.
MAX_LENGTH = 10_000
#: Deepest nesting of parentheses and ``not`` accepted.
MAX_DEPTH = 100
#: The valid example every syntax error ends with.
EXAMPLE = "--where \"style == 'Baroque' and year < 1700\""

_KEYWORDS = frozenset({"and", "or", "not", "in", "isnull", "notnull", "true", "false"})
_SYMBOL_KEYWORDS = {"&": "and", "|": "or", "~": "not"}
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "=")  # longest first
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_FUNCS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
          ">=": operator.ge}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_NUMBER_CHARS = 100  # also keeps int() below Python's limit on digits
_VALUE = "a value (a number, a 'quoted string', true or false)"
_COMPARISON = "a comparison (column == value), isnull(column), notnull(column), 'not' or '('"

_Value = Union[bool, int, float, str]


# ---- messages ------------------------------------------------------------------------------------------------------

def _quote(text: str) -> str:
    """``--where "text"`` on one line, shortened to 80 characters."""
    if len(text) > 80:
        text = text[:77] + "..."
    if '"' not in text and text.isprintable():
        return f'--where "{text}"'
    return f"--where {text!r}"


def _at(pos: int | None) -> str:
    return "" if pos is None or pos < 0 else f" at character {pos + 1}"


def _syntax_error(text: str, message: str, pos: int | None) -> InvalidFilter:
    return InvalidFilter(f"{_quote(text)}{_at(pos)}: {message}; e.g. {EXAMPLE}")


def _literal_text(value: _Value) -> str:
    """The literal as the parser reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)  # int, or a finite float: repr reads back to the same float


def _is_name_start(c: str) -> bool:
    return c.isalpha() or c == "_"


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _column_text(name: str) -> str:
    """The column as the parser reads it back: bare where it reads as one identifier and no keyword, else
    backquoted."""
    if (name and _is_name_start(name[0]) and all(_is_name_char(c) for c in name)
            and name.lower() not in _KEYWORDS):
        return name
    return f"`{name}`"


def _literal_kind(value: _Value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "text"
    return "numeric"


# ---- tokens --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # "name" (identifier or backquoted), "keyword", "op", "number", "string", "punct", "end"
    value: object
    pos: int  # 0-based offset of its first character
    source: str  # the characters it was read from

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the filter"
        if self.kind == "name":
            return f"column name {self.source}"
        if self.kind == "number":
            return f"the number {self.source}"
        if self.kind == "string":
            return f"the string {self.source}"
        return f"'{self.source}'"


def _tokenize(text: str) -> Iterator[_Token]:
    """The tokens of *text*, read one at a time so that the first mistake in reading order is the one reported."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c in "()[],":
            yield _Token("punct", c, i, c)
            i += 1
        elif c in _SYMBOL_KEYWORDS:
            yield _Token("keyword", _SYMBOL_KEYWORDS[c], i, c)
            i += 1
        elif c in "=!<>":
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None:  # a lone '!'
                raise _syntax_error(text, "'!' is not an operator (write != or not)", i)
            yield _Token("op", "==" if op == "=" else op, i, op)
            i += len(op)
        elif c in "'\"":
            value, i = _read_string(text, i)
            yield _Token("string", value, start, text[start:i])
        elif c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise _syntax_error(text, "a backquoted column name is not closed (expected '`')", i)
            if end == i + 1:
                raise _syntax_error(text, "an empty backquoted column name", i)
            yield _Token("name", text[i + 1:end], i, text[i:end + 1])
            i = end + 1
        elif _is_name_start(c):
            while i < n and _is_name_char(text[i]):
                i += 1
            word = text[start:i]
            if word.lower() in _KEYWORDS:
                yield _Token("keyword", word.lower(), start, word)
            else:
                yield _Token("name", word, start, word)
        elif (m := _NUMBER.match(text, i)) is not None:
            i = m.end()
            if i < n and (text[i].isalnum() or text[i] in "_.'\"`"):
                raise _syntax_error(text, f"a number cannot run into {text[i]!r} (after {m.group()})", i)
            yield _Token("number", _read_number(text, m.group(), start), start, m.group())
        else:
            raise _syntax_error(text, _unexpected_character(c), i)
    yield _Token("end", None, n, "")


def _unexpected_character(c: str) -> str:
    if c == "@":
        return "'@' (a Python variable) is not part of the filter language"
    if c == ".":
        return ("'.' (attribute access) is not part of the filter language (for missing values write "
                "isnull(column), not column.isnull())")
    if c in "+-":
        return (f"{c!r} must touch the number it signs (-5); arithmetic is not part of the filter language, and a "
                f"column name with {c!r} in it is written in backquotes (`a{c}b`)")
    if c in "*/%^":
        return f"{c!r}: arithmetic is not part of the filter language"
    return f"unexpected character {c!r}"


def _read_string(text: str, i: int) -> tuple[str, int]:
    """The string literal starting with the quote at *i*, and the offset after its closing quote."""
    quote, start, out = text[i], i, []
    i += 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt not in ("\\", "'", '"'):
                raise _syntax_error(text, "unknown escape in a string (only \\\\, \\' and \\\" are allowed)", i)
            out.append(nxt)
            i += 2
            continue
        out.append(c)
        i += 1
    raise _syntax_error(text, f"the string that starts here is not closed (expected {quote})", start)


def _read_number(text: str, digits: str, pos: int) -> int | float:
    if len(digits) > _MAX_NUMBER_CHARS:
        raise _syntax_error(text, f"a number longer than {_MAX_NUMBER_CHARS} characters", pos)
    if any(ch in digits for ch in ".eE"):
        value = float(digits)
        if not math.isfinite(value):
            raise _syntax_error(text, f"the number {digits} is out of range", pos)
        return value
    return int(digits)


# ---- the tree ------------------------------------------------------------------------------------------------------
# Each node evaluates to two boolean arrays over the rows: where it is true and where it is false; rows in neither
# are unknown (a missing value was compared), which 'not' keeps unknown and the final mask does not select.

class _Node(abc.ABC):
    """A node of the parsed filter: every kind says which columns it names and evaluates itself on a table."""

    @abc.abstractmethod
    def columns(self) -> list[tuple[str, int]]:
        """The columns this node names, with the position in the text where each is named."""

    @abc.abstractmethod
    def evaluate(self, table: "_Table") -> tuple[np.ndarray, np.ndarray]:
        """Where this node is true and where it is false, over the table's rows."""


@dataclass(frozen=True)
class _Compare(_Node):
    column: str
    op: str
    value: _Value
    pos: int = field(default=-1, compare=False)  # of the column name
    value_pos: int = field(default=-1, compare=False)

    def __str__(self):
        return f"{_column_text(self.column)} {self.op} {_literal_text(self.value)}"

    def columns(self):
        return [(self.column, self.pos)]

    def evaluate(self, table):
        return table.column(self.column).compare(self.op, self.value, self.value_pos)


@dataclass(frozen=True)
class _In(_Node):
    column: str
    values: tuple
    negated: bool = False
    pos: int = field(default=-1, compare=False)
    value_pos: tuple = field(default=(), compare=False)

    def __str__(self):
        values = ", ".join(_literal_text(v) for v in self.values)
        return f"{_column_text(self.column)} {'not in' if self.negated else 'in'} [{values}]"

    def columns(self):
        return [(self.column, self.pos)]

    def evaluate(self, table):
        col = table.column(self.column)
        hit = col.isin(self.values, self.value_pos)
        false = col.known & ~hit  # equality is never unknown on a present value
        return (false, hit) if self.negated else (hit, false)


@dataclass(frozen=True)
class _IsNull(_Node):
    column: str
    negated: bool = False  # notnull
    pos: int = field(default=-1, compare=False)

    def __str__(self):
        return f"{'notnull' if self.negated else 'isnull'}({_column_text(self.column)})"

    def columns(self):
        return [(self.column, self.pos)]

    def evaluate(self, table):
        known = table.column(self.column).known
        return (known.copy(), ~known) if self.negated else (~known, known.copy())


@dataclass(frozen=True)
class _Not(_Node):
    child: _Node

    def __str__(self):
        inner = str(self.child)
        return f"not ({inner})" if isinstance(self.child, (_And, _Or)) else f"not {inner}"

    def columns(self):
        return self.child.columns()

    def evaluate(self, table):
        true, false = self.child.evaluate(table)
        return false, true


@dataclass(frozen=True)
class _And(_Node):
    children: tuple

    def __str__(self):
        return " and ".join(f"({c})" if isinstance(c, _Or) else str(c) for c in self.children)

    def columns(self):
        return [ref for c in self.children for ref in c.columns()]

    def evaluate(self, table):
        true, false = np.ones(table.n, dtype=bool), np.zeros(table.n, dtype=bool)
        for c in self.children:
            t, f = c.evaluate(table)
            true &= t
            false |= f
        return true, false


@dataclass(frozen=True)
class _Or(_Node):
    children: tuple

    def __str__(self):
        return " or ".join(str(c) for c in self.children)

    def columns(self):
        return [ref for c in self.children for ref in c.columns()]

    def evaluate(self, table):
        true, false = np.zeros(table.n, dtype=bool), np.ones(table.n, dtype=bool)
        for c in self.children:
            t, f = c.evaluate(table)
            true |= t
            false &= f
        return true, false


def _join(cls, parts: list[_Node]) -> _Node:
    """*parts* joined by and/or, flattening nested ones of the same kind (``(a and b) and c`` is ``a and b and c``)."""
    if len(parts) == 1:
        return parts[0]
    flat: list[_Node] = []
    for p in parts:
        flat.extend(p.children if isinstance(p, cls) else (p,))
    return cls(tuple(flat))


# ---- the parser ----------------------------------------------------------------------------------------------------

class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.tok = next(self.tokens)  # the one token of lookahead the grammar needs
        self.depth = 0

    def advance(self) -> _Token:
        tok = self.tok
        if tok.kind != "end":
            self.tok = next(self.tokens)
        return tok

    def is_keyword(self, *words: str) -> bool:
        return self.tok.kind == "keyword" and self.tok.value in words

    def is_punct(self, *chars: str) -> bool:
        return self.tok.kind == "punct" and self.tok.value in chars

    def fail(self, expected: str, tok: _Token | None = None, hint: str = ""):
        tok = tok or self.tok
        raise _syntax_error(self.text, f"expected {expected}, found {tok.describe()}{hint}", tok.pos)

    def nest(self, tok: _Token):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _syntax_error(self.text, f"nesting (parentheses and 'not') deeper than {MAX_DEPTH}", tok.pos)

    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise _syntax_error(self.text, "the filter is empty", None)
        node = self.or_expr()
        if self.tok.kind != "end":
            hint = " (a closing parenthesis without an opening one)" if self.is_punct(")") else ""
            self.fail("'and', 'or' or the end of the filter", hint=hint)
        return node

    def or_expr(self) -> _Node:
        parts = [self.and_expr()]
        while self.is_keyword("or"):
            self.advance()
            parts.append(self.and_expr())
        return _join(_Or, parts)

    def and_expr(self) -> _Node:
        parts = [self.not_expr()]
        while self.is_keyword("and"):
            self.advance()
            parts.append(self.not_expr())
        return _join(_And, parts)

    def not_expr(self) -> _Node:
        if self.is_keyword("not"):
            self.nest(self.advance())
            node = _Not(self.not_expr())
            self.depth -= 1
            return node
        return self.atom()

    def atom(self) -> _Node:
        tok = self.tok
        if self.is_punct("("):
            self.nest(self.advance())
            node = self.or_expr()
            if not self.is_punct(")"):
                self.fail(f"')' to close the '(' at character {tok.pos + 1}")
            self.advance()
            self.depth -= 1
            return node
        if self.is_keyword("isnull", "notnull"):
            self.advance()
            if not self.is_punct("("):
                self.fail(f"'(' after {tok.value} (write {tok.value}(column))")
            self.advance()
            name = self.column(f"a column name inside {tok.value}(...)")
            if not self.is_punct(")"):
                self.fail(f"')' to close {tok.value}(")
            self.advance()
            return _IsNull(name.value, negated=tok.value == "notnull", pos=name.pos)
        if tok.kind == "name":
            return self.comparison_from_column()
        if self.is_literal():
            return self.comparison_from_literal()
        self.fail(_COMPARISON)

    def is_literal(self) -> bool:
        return self.tok.kind in ("number", "string") or self.is_keyword("true", "false")

    def literal(self, expected: str = _VALUE) -> tuple[_Value, int]:
        tok = self.tok
        if not self.is_literal():
            hint = ""
            if tok.kind == "name":
                hint = (f" (comparing two columns is not supported; if {tok.source} is text, quote it: "
                        f"'{tok.value}')")
            self.fail(expected, hint=hint)
        self.advance()
        if tok.kind == "keyword":
            return tok.value == "true", tok.pos
        return tok.value, tok.pos

    def column(self, expected: str) -> _Token:
        if self.tok.kind != "name":
            hint = " (one side of a comparison must be a column)" if self.is_literal() else ""
            self.fail(expected, hint=hint)
        return self.advance()

    def comparison_from_column(self) -> _Node:
        name = self.advance()
        if self.is_punct("(") and not name.source.startswith("`"):
            raise _syntax_error(self.text, f"calls such as {name.source}(...) are not part of the filter language "
                                           "(the only functions are isnull(column) and notnull(column))",
                                self.tok.pos)
        if self.tok.kind == "op":
            op = self.advance().value
            if self.is_punct("["):
                self.fail(_VALUE, hint=f" (to compare with several values write {_column_text(name.value)} "
                                       "in [value, ...])")
            value, value_pos = self.literal()
            return _Compare(name.value, op, value, pos=name.pos, value_pos=value_pos)
        negated = False
        if self.is_keyword("not"):
            self.advance()
            negated = True
            if not self.is_keyword("in"):
                self.fail(f"'in' after {name.source} not")
        if self.is_keyword("in"):
            self.advance()
            values, positions = self.value_list()
            return _In(name.value, tuple(values), negated=negated, pos=name.pos, value_pos=tuple(positions))
        hint = ""
        if self.tok.kind == "name" and not name.source.startswith("`") and not self.tok.source.startswith("`"):
            hint = f" (a column name with spaces is written in backquotes: `{name.source} {self.tok.source}`)"
        self.fail(f"an operator (==, !=, <, <=, >, >=, in or not in) after column {name.source}", hint=hint)

    def comparison_from_literal(self) -> _Node:
        value, value_pos = self.literal()
        if self.tok.kind != "op":
            self.fail("an operator (==, !=, <, <=, >, >=) after a value")
        op = self.advance().value
        name = self.column("a column name")
        return _Compare(name.value, _FLIPPED[op], value, pos=name.pos, value_pos=value_pos)

    def value_list(self) -> tuple[list, list]:
        opening = self.tok
        if not self.is_punct("[", "("):
            self.fail("'[' to open the list of values after 'in'")
        self.advance()
        closing = "]" if opening.value == "[" else ")"
        values, positions = [], []
        while True:
            value, pos = self.literal(f"{_VALUE} in the list")
            values.append(value)
            positions.append(pos)
            if self.is_punct(","):
                self.advance()
                continue
            if self.is_punct(closing):
                self.advance()
                return values, positions
            self.fail(f"',' or '{closing}' to close the list opened at character {opening.pos + 1}")


# ---- evaluation ----------------------------------------------------------------------------------------------------

def _value_kind(x) -> str:
    """The kind of one present value of an object column."""
    if isinstance(x, (bool, np.bool_)):
        return "boolean"
    if isinstance(x, str):
        return "text"
    if isinstance(x, numbers.Real):
        return "numeric"
    return "other"


def _numpy_dtype(dtype) -> np.dtype:
    """The numpy dtype that holds the present values of a column of *dtype* (object where there is none)."""
    npd = dtype if isinstance(dtype, np.dtype) else getattr(dtype, "numpy_dtype", None)
    return npd if isinstance(npd, np.dtype) else np.dtype(object)


_KIND_WORDS = {"numeric": "numbers", "text": "text", "boolean": "true/false values", "datetime": "dates and times"}


class _Column:
    """One column of the works table, ready to compare: which rows hold a value, and those values."""

    def __init__(self, table: "_Table", name: str, series: pd.Series):
        self.table, self.name = table, name
        dtype = series.dtype
        self.known = np.asarray(series.notna(), dtype=bool)
        present = series[self.known]
        self.kinds = None  # per-value kinds, for a column of mixed kinds
        if isinstance(dtype, pd.CategoricalDtype):
            self.kind, self.values = self.from_objects(present)
        elif pd.api.types.is_bool_dtype(dtype):
            self.kind, self.values = "boolean", present.to_numpy(dtype=bool)
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            self.kind, self.values = "datetime", present
        elif pd.api.types.is_numeric_dtype(dtype) and _numpy_dtype(dtype).kind in "iuf":
            self.kind, self.values = "numeric", present.to_numpy(dtype=_numpy_dtype(dtype))
        elif isinstance(dtype, pd.StringDtype):
            self.kind, self.values = "text", present.to_numpy(dtype=object)
        else:  # object (pandas 2 strings, or anything), pyarrow-backed and other extension dtypes
            self.kind, self.values = self.from_objects(present)

    def from_objects(self, present: pd.Series) -> tuple[str, np.ndarray]:
        values = present.to_numpy(dtype=object)
        kinds = np.array([_value_kind(x) for x in values], dtype=object)
        found = set(kinds.tolist())
        if not found:
            return "empty", values
        if len(found) == 1:
            return found.pop(), values
        self.kinds = kinds
        return "mixed", values

    def describe(self) -> str:
        if self.kind == "other":
            return f"values of type {type(self.values[0]).__name__}"
        return _KIND_WORDS[self.kind]

    def mismatch(self, op: str, value: _Value, value_pos: int) -> InvalidFilter:
        name = _column_text(self.name)
        if self.kind == "numeric":
            example = f"{name} {op} {value if isinstance(value, str) and _NUMBER.fullmatch(value) else 1700}"
        elif self.kind == "text":
            example = f"{name} {op} {_literal_text(str(value).lower() if isinstance(value, bool) else str(value))}"
        elif self.kind == "boolean":
            example = f"{name} == true"
        elif self.kind == "datetime":
            example = f"{name} {op} '1700-01-31'"
        else:
            return InvalidFilter(f"{_quote(self.table.text)}{_at(value_pos)}: column {self.name!r} holds "
                                 f"{self.describe()}, which a filter cannot compare; only isnull({name}) and "
                                 f"notnull({name}) apply to it")
        return InvalidFilter(f"{_quote(self.table.text)}{_at(value_pos)}: column {self.name!r} holds "
                             f"{self.describe()}, so {_literal_text(value)} cannot be compared with it; e.g. "
                             f"--where \"{example}\"")

    def check(self, op: str, value: _Value, value_pos: int = -1):
        """Raise :class:`InvalidFilter` where ``column op value`` compares things of different kinds."""
        kind = _literal_kind(value)
        if self.kind == "empty":
            return
        if kind == "boolean" and op not in ("==", "!=") and self.kind in ("boolean", "mixed"):
            raise InvalidFilter(f"{_quote(self.table.text)}{_at(value_pos)}: true and false can only be compared "
                                f"with == or != (column {self.name!r}); e.g. --where "
                                f"\"{_column_text(self.name)} == true\"")
        if self.kind == "datetime":
            self.timestamp(op, value, value_pos)
        elif self.kind != "mixed" and self.kind != kind:
            raise self.mismatch(op, value, value_pos)

    def compare(self, op: str, value: _Value, value_pos: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """Where ``column op value`` is true and where it is false (missing values are neither)."""
        self.check(op, value, value_pos)
        if self.kind == "empty":
            return self.spread(np.zeros(0, dtype=bool))
        if self.kind == "mixed":
            # Only values of the literal's kind compare: the others are unequal to it, and not comparable (unknown)
            # for <, <=, >, >=.
            same = self.kinds == _literal_kind(value)
            result = np.full(len(self.values), op == "!=")
            result[same] = [bool(_FUNCS[op](x, value)) for x in self.values[same]]
            return self.spread(result, None if op in ("==", "!=") else same)
        if self.kind == "datetime":
            return self.spread(np.asarray(_FUNCS[op](self.values, self.timestamp(op, value, value_pos)), dtype=bool))
        return self.spread(np.asarray(_FUNCS[op](self.numbers_for(value), value), dtype=bool))

    def isin(self, values: tuple, positions: tuple) -> np.ndarray:
        """Where the column holds one of *values* (one pass over the column where it can)."""
        for value, pos in zip(values, positions or (-1,) * len(values)):
            self.check("==", value, pos)
        present = self.values
        if self.kind == "text":
            wanted = set(values)
            hit = np.fromiter((x in wanted for x in present), dtype=bool, count=len(present))
        elif (self.kind == "numeric" and present.dtype.kind in "iu"
              and all(type(v) is int and np.iinfo(present.dtype).min <= v <= np.iinfo(present.dtype).max
                      for v in values)):
            hit = np.isin(present, np.array(values, dtype=present.dtype))
        elif self.kind == "numeric" and present.dtype.kind == "f":
            hit = np.isin(present, np.array(values, dtype=np.float64))
        else:
            hit = np.zeros(self.table.n, dtype=bool)
            for value in values:
                hit |= self.compare("==", value)[0]
            return hit
        return self.spread(hit)[0]

    def spread(self, result: np.ndarray, decided: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(true, false) over all rows from *result* over the present values, of which only *decided* ones count."""
        true = np.zeros(self.table.n, dtype=bool)
        false = np.zeros(self.table.n, dtype=bool)
        where = np.flatnonzero(self.known)
        if decided is None:
            true[where[result]] = True
            false[where[~result]] = True
        else:
            true[where[decided & result]] = True
            false[where[decided & ~result]] = True
        return true, false

    def numbers_for(self, value: _Value) -> np.ndarray:
        """The values, as Python integers where *value* is an integer beyond the range of the column's dtype."""
        if (isinstance(value, int) and not isinstance(value, bool) and self.values.dtype.kind in "iu"
                and not np.iinfo(self.values.dtype).min <= value <= np.iinfo(self.values.dtype).max):
            return self.values.astype(object)  # numpy 1.x would overflow; Python integers compare exactly
        return self.values

    def timestamp(self, op: str, value: _Value, value_pos: int):
        if not isinstance(value, str):
            raise self.mismatch(op, value, value_pos)
        try:
            stamp = pd.Timestamp(value)
            if stamp is pd.NaT:
                raise ValueError(value)
            tz = getattr(self.values.dtype, "tz", None)
            if tz is not None:
                stamp = stamp.tz_localize(tz) if stamp.tzinfo is None else stamp.tz_convert(tz)
            elif stamp.tzinfo is not None:
                stamp = stamp.tz_convert("UTC").tz_localize(None)
            return stamp
        except pd.errors.OutOfBoundsDatetime:
            raise InvalidFilter(f"{_quote(self.table.text)}{_at(value_pos)}: {_literal_text(value)} is outside the "
                                f"dates column {self.name!r} can hold") from None
        except (ValueError, TypeError, OverflowError):
            raise InvalidFilter(f"{_quote(self.table.text)}{_at(value_pos)}: {_literal_text(value)} is not a date "
                                f"or time, which column {self.name!r} holds; e.g. --where "
                                f"\"{_column_text(self.name)} {op} '1700-01-31'\"") from None


class _Table:
    """The works table a filter is evaluated against, with its columns prepared on first use."""

    def __init__(self, df: pd.DataFrame, text: str):
        self.df, self.text, self.n = df, text, len(df)
        self.prepared: dict[str, _Column] = {}

    def check(self, refs: list[tuple[str, int]]):
        labels = list(self.df.columns)
        for name, pos in refs:
            count = sum(1 for c in labels if isinstance(c, str) and c == name)
            if count == 1:
                continue
            if count > 1:
                raise InvalidFilter(f"{_quote(self.text)}{_at(pos)}: the works table has {count} columns named "
                                    f"{name!r}; rename them so that each is named once")
            names = [str(c) for c in labels]
            raise InvalidFilter(f"{_quote(self.text)}{_at(pos)}: the works table has no column {name!r}"
                                f"{_suggestion(name, names)} Its columns: {_listing(names)}")

    def column(self, name: str) -> _Column:
        if name not in self.prepared:
            self.prepared[name] = _Column(self, name, self.df[name])
        return self.prepared[name]


def _suggestion(name: str, names: list[str]) -> str:
    lower = [n for n in names if n.lower() == name.lower()]
    close = lower or difflib.get_close_matches(name, names, n=1)
    return f"; did you mean {close[0]!r}?" if close else "."


def _listing(names: list[str], most: int = 40) -> str:
    if len(names) <= most:
        return ", ".join(names) if names else "(none)"
    return ", ".join(names[:most]) + f" and {len(names) - most} more"


# ---- the public API ------------------------------------------------------------------------------------------------

class Filter:
    """A parsed ``--where`` filter: which columns it names, which rows of a works table it selects, and its
    normalised text. Made by :func:`parse_filter`; two filters are equal when their normalised texts are."""

    __slots__ = ("_root", "text", "_normal")

    def __init__(self, root: _Node, text: str):
        self._root = root
        #: The text it was parsed from.
        self.text = text
        self._normal = str(root)

    @property
    def columns(self) -> frozenset[str]:
        """The names of the columns it compares or tests."""
        return frozenset(name for name, _ in self._root.columns())

    def mask(self, df: pd.DataFrame) -> np.ndarray:
        """A boolean array, one entry per row of *df* in order: True where the row matches.

        Raises :class:`artspace.errors.InvalidFilter` where *df* lacks a column the filter names or where a value
        cannot be compared with a column (a string with a number column, say).
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"Filter.mask takes a pandas DataFrame, not {type(df).__name__}")
        table = _Table(df, self.text)
        table.check(self._root.columns())
        true, _ = self._root.evaluate(table)
        return np.asarray(true, dtype=bool)

    def __str__(self) -> str:
        return self._normal

    def __repr__(self) -> str:
        return f"parse_filter({self._normal!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Filter) and self._normal == other._normal

    def __hash__(self) -> int:
        return hash(self._normal)


def parse_filter(text: str) -> Filter:
    """Parse *text* (the grammar at the top of :mod:`artspace.filters`) into a :class:`Filter`.

    Nothing is evaluated: this reads the text and checks its syntax; :meth:`Filter.mask` checks the columns.

    Raises
    ------
    artspace.errors.InvalidFilter
        Text that is not a filter, longer than :data:`MAX_LENGTH` characters or nested deeper than
        :data:`MAX_DEPTH`; the message quotes the text and says at which character what was expected.
    """
    if not isinstance(text, str):
        raise InvalidFilter(f"a --where filter is text, not {type(text).__name__}; e.g. {EXAMPLE}")
    if len(text) > MAX_LENGTH:
        raise InvalidFilter(f"{_quote(text)}: a filter of {len(text):,} characters is longer than the "
                            f"{MAX_LENGTH:,} allowed; e.g. {EXAMPLE}")
    return Filter(_Parser(text).parse(), text)


def apply_filter(df: pd.DataFrame, text: str | Filter, *, allow_empty: bool = False) -> pd.DataFrame:
    """The rows of *df* that the filter *text* (or a parsed :class:`Filter`) selects, in their order.

    Raises :class:`artspace.errors.InvalidFilter` as :func:`parse_filter` and :meth:`Filter.mask` do, and
    :class:`artspace.errors.NoMatch` where no row matches, unless *allow_empty*.
    """
    f = text if isinstance(text, Filter) else parse_filter(text)
    mask = f.mask(df)
    if not allow_empty and not mask.any():
        raise NoMatch(f"{_quote(f.text)} matches none of the {len(df):,} works searched"
                      f"{_absent_value_hint(df, f._root)}")
    return df.loc[mask]


def _absent_value_hint(df: pd.DataFrame, root: _Node) -> str:
    """Where the filter asks for text equal to a value its column never holds, the closest value it does hold."""
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, (_And, _Or)):
            stack.extend(reversed(node.children))
            continue
        if isinstance(node, _Compare) and node.op == "==":
            wanted = [node.value]
        elif isinstance(node, _In) and not node.negated:
            wanted = list(node.values)
        else:
            continue
        held = {x for x in df[node.column].dropna().tolist() if isinstance(x, str)}
        for value in wanted:
            if isinstance(value, str) and held and value not in held:
                close = difflib.get_close_matches(value, sorted(held), n=1)
                if close:
                    return (f" (no work has {node.column} {_literal_text(value)}; did you mean "
                            f"{_literal_text(close[0])}?)")
    return ""
