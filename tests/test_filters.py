"""The --where filter language (artspace.filters): every construct, missing values, precedence, error messages, and
the proof that hostile text is refused without being run."""

from __future__ import annotations

import ast
import builtins
import decimal
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import artspace.filters
from artspace.errors import ArtspaceError, InvalidFilter, NoMatch
from artspace.filters import EXAMPLE, MAX_DEPTH, MAX_LENGTH, Filter, apply_filter, parse_filter

PANDAS_3 = int(pd.__version__.split(".")[0]) >= 3


@pytest.fixture
def works() -> pd.DataFrame:
    """Six works with every kind of column a works table has, missing values in most."""
    return pd.DataFrame({
        "id": [0, 1, 2, 3, 4, 5],
        "style": ["Baroque", "Rococo", "Baroque", None, "Impressionism", "rococo"],  # pandas 3: dtype str
        "year": [1650, 1750, 1690, np.nan, 1872, 1760],  # float64 with NaN
        "width": [640, 800, 1024, 512, 800, 300],  # int64
        "rating": pd.array([5, None, 3, 4, None, 2], dtype="Int64"),
        "framed": [True, False, True, False, True, False],  # numpy bool
        "signed": pd.array([True, None, False, True, False, None], dtype="boolean"),
        "date": ["1650-03-01", "1750-12-24", "1690-01-01", None, "1872-11-13", "1760-06-30"],
        "painter name": ["Rubens", "Boucher", "Rembrandt", "Anon", "Monet", None],
        "title": ["The 'Descent'", 'Say "cheese"', "back\\slash", "plain", "x", "y"],
        "notes": pd.Series([1, "x", None, 2.5, True, "y"], dtype=object),  # several kinds in one column
    })


def ids(works: pd.DataFrame, text: str) -> list[int]:
    mask = parse_filter(text).mask(works)
    assert isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == (len(works),)
    return works.loc[mask, "id"].tolist()


def test_the_table_has_the_dtypes_the_tests_are_about(works):
    assert isinstance(works["style"].dtype, pd.StringDtype) == PANDAS_3  # pandas 3's default string dtype
    assert works["year"].dtype == np.float64 and works["width"].dtype == np.int64
    assert str(works["rating"].dtype) == "Int64" and str(works["signed"].dtype) == "boolean"
    assert works["framed"].dtype == bool and works["notes"].dtype == object


# ---- every construct -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    # text columns
    ("style == 'Baroque'", [0, 2]),
    ('style = "Baroque"', [0, 2]),
    ("style != 'Baroque'", [1, 4, 5]),  # the missing style matches neither == nor !=
    ("'Baroque' == style", [0, 2]),
    ("style < 'Impressionism'", [0, 2]),  # lexicographic
    ("date >= '1700'", [1, 4, 5]),
    ("date < '1690-01-02'", [0, 2]),
    ("`painter name` == 'Monet'", [4]),
    ("title == 'The \\'Descent\\''", [0]),
    ('title == "Say \\"cheese\\""', [1]),
    ("title == 'back\\\\slash'", [2]),
    ('title == "The \'Descent\'"', [0]),
    # float column with NaN, integer column, nullable Int64
    ("year < 1700", [0, 2]),
    ("year <= 1690", [0, 2]),
    ("year > 1750", [4, 5]),
    ("year >= 1750", [1, 4, 5]),
    ("1700 > year", [0, 2]),
    ("1750 <= year", [1, 4, 5]),
    ("year == 1650", [0]),  # an integer literal equals the same value in a float column...
    ("width == 800", [1, 4]),  # ... and in an integer column
    ("width == 800.0", [1, 4]),
    ("width > 6.4e2", [1, 2, 4]),
    ("year > -1e3", [0, 1, 2, 4, 5]),
    ("year < +1.7E3", [0, 2]),
    ("width > .5e3", [0, 1, 2, 3, 4]),
    ("width != 800", [0, 2, 3, 5]),
    ("rating >= 3", [0, 2, 3]),
    ("rating != 5", [2, 3, 5]),
    ("width < 99999999999999999999999", [0, 1, 2, 3, 4, 5]),  # beyond int64: compared exactly, no overflow
    ("width == -99999999999999999999", []),
    # booleans, numpy and nullable
    ("framed == true", [0, 2, 4]),
    ("framed == FALSE", [1, 3, 5]),
    ("framed != True", [1, 3, 5]),
    ("signed == true", [0, 3]),
    ("signed != true", [2, 4]),
    ("false == signed", [2, 4]),
    # in / not in, with brackets or parentheses
    ("style in ['Baroque', 'Rococo']", [0, 1, 2]),
    ("style in ('Baroque')", [0, 2]),
    ("style not in ['Baroque']", [1, 4, 5]),
    ("style NOT IN ['Baroque', 'rococo']", [1, 4]),
    ("year in [1650, 1872.0]", [0, 4]),
    ("rating in [2, 5]", [0, 5]),
    ("width in [800, 99999999999999999999, 3e2]", [1, 4, 5]),
    ("width not in [800.5, 512]", [0, 1, 2, 4, 5]),
    ("signed in [false]", [2, 4]),
    # isnull / notnull
    ("isnull(style)", [3]),
    ("notnull(year)", [0, 1, 2, 4, 5]),
    ("isnull(rating)", [1, 4]),
    ("isnull(signed)", [1, 5]),
    ("ISNULL(`painter name`)", [5]),
    ("NotNull ( notes )", [0, 1, 3, 4, 5]),
    # not, and, or and their symbols
    ("not style == 'Baroque'", [1, 4, 5]),
    ("~(year < 1700)", [1, 4, 5]),
    ("not isnull(year)", [0, 1, 2, 4, 5]),
    ("not not framed == true", [0, 2, 4]),
    ("style == 'Baroque' and year < 1680", [0]),
    ("style == 'Baroque' & year < 1680", [0]),
    ("style == 'Rococo' or style == 'rococo'", [1, 5]),
    ("style == 'Rococo' | style == 'rococo'", [1, 5]),
    ("(year < 1700) & (framed == true)", [0, 2]),
    ("not (year < 1700 or style == 'Rococo')", [4, 5]),
    ("style == 'Baroque' AnD (rating == 5 Or rating == 3)", [0, 2]),
    # a column of several kinds: a value compares only with values of its own kind (1 is not True here)
    ("notes == 1", [0]),
    ("notes == true", [4]),
    ("notes == 'x'", [1]),
    ("notes != 'x'", [0, 3, 4, 5]),
    ("notes < 3", [0, 3]),
    ("notes in [2.5, 'y']", [3, 5]),
])
def test_constructs(works, text, expected):
    assert ids(works, text) == expected


def test_keywords_are_case_insensitive_and_column_names_are_not(works):
    assert ids(works, "NOT year < 1700 AND Framed == TRUE".replace("Framed", "framed")) == [4]
    with pytest.raises(InvalidFilter, match="no column 'Year'.*did you mean 'year'"):
        parse_filter("Year < 1700").mask(works)


def test_columns_named_like_keywords_are_backquoted():
    table = pd.DataFrame({"and": [1, 2], "in": ["a", "b"], "true": [True, False]})
    f = parse_filter("`and` == 2 or `in` in ['a'] or `true` == false")
    assert f.mask(table).tolist() == [True, True]
    assert str(f) == "`and` == 2 or `in` in ['a'] or `true` == false"
    assert f.columns == frozenset({"and", "in", "true"})


def test_columns_lists_every_name_once():
    f = parse_filter("style == 'x' and (year < 1 or isnull(`painter name`) or style in ['y'])")
    assert isinstance(f.columns, frozenset)
    assert f.columns == frozenset({"style", "year", "painter name"})


def test_mask_is_positional_whatever_the_index(works):
    shuffled = works.set_index(pd.Index(["a", "b", "a", "c", "d", "e"]))  # not unique, not integers
    assert parse_filter("year < 1700").mask(shuffled).tolist() == [True, False, True, False, False, False]
    assert parse_filter("year < 1700").mask(works.iloc[:0]).tolist() == []


# ---- missing values: SQL's three-valued logic ----------------------------------------------------------------------

def test_missing_values_match_no_comparison_and_not_its_negation(works):
    assert 3 not in ids(works, "year != 1650")
    assert 3 not in ids(works, "not year == 1650")
    assert 3 not in ids(works, "year < 1700 or not year < 1700")  # unknown or unknown is unknown
    assert 3 not in ids(works, "style not in ['Cubism']")
    assert ids(works, "not (year < 1700)") == ids(works, "year >= 1700")
    assert 3 in ids(works, "isnull(year) or year < 1700")
    assert ids(works, "not (isnull(year) and framed == false)") == [0, 1, 2, 4, 5]
    # false and unknown is false, so its negation is true
    assert 3 in ids(works, "not (framed == true and year < 1700)")


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, pd.NaT])
def test_every_kind_of_missing_value_is_missing(missing):
    table = pd.DataFrame({"c": pd.Series(["a", missing, "b"], dtype=object)})
    assert parse_filter("c != 'z'").mask(table).tolist() == [True, False, True]
    assert parse_filter("isnull(c)").mask(table).tolist() == [False, True, False]


# ---- pandas 2 and pandas 3 representations give the same answers ---------------------------------------------------

TEXT_DTYPES = [object, "string[python]", "string[pyarrow]", "str"]
NUMBER_DTYPES = ["float64", "Float64", "Int64", "int64[pyarrow]", object]
BOOL_DTYPES = ["boolean", "bool[pyarrow]", object]


@pytest.mark.parametrize("dtype", TEXT_DTYPES, ids=str)
def test_text_columns_in_every_representation(dtype):
    table = pd.DataFrame({"style": pd.Series(["Baroque", None, "Rococo", "baroque"], dtype=dtype)})
    for text, expected in [("style == 'Baroque'", [True, False, False, False]),
                           ("style != 'Baroque'", [False, False, True, True]),
                           ("style > 'Baroque'", [False, False, True, True]),
                           ("style not in ['Rococo']", [True, False, False, True]),
                           ("isnull(style)", [False, True, False, False])]:
        assert parse_filter(text).mask(table).tolist() == expected, (dtype, text)
    with pytest.raises(InvalidFilter, match="holds text"):
        parse_filter("style == 1").mask(table)


@pytest.mark.parametrize("dtype", NUMBER_DTYPES, ids=str)
def test_number_columns_in_every_representation(dtype):
    table = pd.DataFrame({"year": pd.Series([1650, None, 1750, 1700], dtype=dtype)})
    for text, expected in [("year < 1700", [True, False, False, False]),
                           ("year != 1700", [True, False, True, False]),
                           ("year == 1700.0", [False, False, False, True]),
                           ("year in [1650, 1750]", [True, False, True, False]),
                           ("notnull(year)", [True, False, True, True])]:
        assert parse_filter(text).mask(table).tolist() == expected, (dtype, text)
    with pytest.raises(InvalidFilter, match="holds numbers"):
        parse_filter("year == '1700'").mask(table)


@pytest.mark.parametrize("dtype", BOOL_DTYPES, ids=str)
def test_boolean_columns_in_every_representation(dtype):
    table = pd.DataFrame({"framed": pd.Series([True, None, False], dtype=dtype)})
    assert parse_filter("framed == true").mask(table).tolist() == [True, False, False]
    assert parse_filter("framed != true").mask(table).tolist() == [False, False, True]
    with pytest.raises(InvalidFilter, match="true/false"):
        parse_filter("framed == 1").mask(table)


def test_categorical_and_datetime_columns():
    table = pd.DataFrame({
        "style": pd.Categorical(["Baroque", None, "Rococo"]),
        "when": pd.to_datetime(["1690-03-01", None, "1750-12-24"]),  # within pandas 2's nanosecond range
        "when_utc": pd.to_datetime(["1690-03-01", None, "1750-12-24"]).tz_localize("UTC"),
    })
    assert parse_filter("style == 'Rococo'").mask(table).tolist() == [False, False, True]
    assert parse_filter("when >= '1700-01-01'").mask(table).tolist() == [False, False, True]
    assert parse_filter("when != '1690-03-01'").mask(table).tolist() == [False, False, True]
    assert parse_filter("when in ['1690-03-01', '1800']").mask(table).tolist() == [True, False, False]
    assert parse_filter("when_utc < '1700'").mask(table).tolist() == [True, False, False]
    assert parse_filter("when_utc < '1700-01-01T00:30+01:00'").mask(table).tolist() == [True, False, False]
    with pytest.raises(InvalidFilter, match="'last spring' is not a date"):
        parse_filter("when < 'last spring'").mask(table)
    with pytest.raises(InvalidFilter, match="holds dates and times"):
        parse_filter("when < 1700").mask(table)


def test_values_a_filter_cannot_compare_are_refused_but_can_be_tested_for_missing():
    table = pd.DataFrame({"sizes": pd.Series([(1, 2), None, decimal.Decimal(3)], dtype=object)})
    with pytest.raises(InvalidFilter, match="column 'sizes' holds values of type tuple, which a filter cannot"):
        parse_filter("sizes == 1").mask(table)
    assert parse_filter("isnull(sizes)").mask(table).tolist() == [False, True, False]


# ---- precedence ----------------------------------------------------------------------------------------------------

def test_not_binds_tighter_than_and_which_binds_tighter_than_or():
    combos = [(a, b, c) for a in (False, True) for b in (False, True) for c in (False, True)]
    table = pd.DataFrame(combos, columns=["a", "b", "c"])
    expected = [(not a) or (b and c) for a, b, c in combos]
    for text in ("not a == true or b == true and c == true", "~a == true | b == true & c == true",
                 "(not a == true) or (b == true and c == true)"):
        assert parse_filter(text).mask(table).tolist() == expected, text
    # the other readings differ on this table, so the test tells them apart
    assert expected != [not (a or (b and c)) for a, b, c in combos]
    assert expected != [((not a) or b) and c for a, b, c in combos]
    assert parse_filter("(not a == true or b == true) and c == true").mask(table).tolist() == \
        [((not a) or b) and c for a, b, c in combos]
    assert str(parse_filter("not a == true or b == true and c == true")) == "not a == true or b == true and c == true"
    assert str(parse_filter("(a == true or b == true) and c == true")) == "(a == true or b == true) and c == true"


# ---- hostile text: refused, and provably not run -------------------------------------------------------------------

HOSTILE = [
    "@pd.io.common.os.system('id > PWNED') == 0",
    "__import__('os').system('touch PWNED')",
    "style.__class__",
    "style == 'x' or @x",
    "`a`.b",
    "style == 'x' or open('PWNED', 'w')",
    "style == 'x' and year.__class__.__init__.__globals__['os'].system('touch PWNED') == 0",
    "style[0] == 'B'",
    "lambda: 1",
    "year + 1 > 1700",
    "x := 1",
    "style == 'x'; import os",
    "(" * 1000 + "style == 'x'" + ")" * 1000,
    "style == '" + "x" * (1 << 20) + "'",  # a 1 MB string
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: t[:40])
def test_hostile_text_is_refused_and_not_run(text, works, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidFilter):
        parse_filter(text)
    with pytest.raises(InvalidFilter):
        apply_filter(works, text)
    assert not (tmp_path / "PWNED").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="the payload is a POSIX shell command")
def test_the_payload_is_live_under_dataframe_query(works, tmp_path, monkeypatch):
    """The control for the test above: the same text given to DataFrame.query (what --where used) runs the shell
    command, so the absence of PWNED there means the filter did not run it."""
    monkeypatch.chdir(tmp_path)
    try:
        works.query("@pd.io.common.os.system('id > PWNED') == 0")
    except Exception:  # the comparison's result is no valid row selection; the command has run by then
        pass
    if not (tmp_path / "PWNED").exists():
        pytest.skip(f"pandas {pd.__version__} no longer evaluates @-names with calls")
    assert (tmp_path / "PWNED").read_text().startswith("uid=")


def test_nothing_is_evaluated(works, monkeypatch):
    """Parsing and masking work with every evaluator in Python and pandas made to fail."""
    def refuse(*args, **kwargs):
        raise AssertionError("a filter was evaluated as code")

    for name in ("eval", "exec", "compile"):
        monkeypatch.setattr(builtins, name, refuse)
    monkeypatch.setattr(pd.DataFrame, "query", refuse)
    monkeypatch.setattr(pd.DataFrame, "eval", refuse)
    monkeypatch.setattr(pd, "eval", refuse)
    f = parse_filter("style in ['Baroque', 'Rococo'] and not year > 1700 or isnull(`painter name`) or "
                     "notes == true | rating >= 5")
    mask = f.mask(works)
    monkeypatch.undo()
    assert works.loc[mask, "id"].tolist() == [0, 2, 4, 5]


def test_the_module_imports_only_stdlib_numpy_pandas_and_errors():
    source = Path(artspace.filters.__file__).read_text()
    tree = ast.parse(source)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    third_party = {m for m in imported if not m.startswith(".") and m not in sys.stdlib_module_names}
    assert third_party == {"numpy", "pandas"}
    assert {m for m in imported if m.startswith(".")} == {".errors"}
    calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert not {f.id for f in calls if isinstance(f, ast.Name)} & {"eval", "exec", "compile", "__import__"}
    assert not {f.attr for f in calls if isinstance(f, ast.Attribute)} & {"query", "eval", "evaluate_expr"}


# ---- limits --------------------------------------------------------------------------------------------------------

def test_text_longer_than_the_limit_is_refused_before_reading():
    text = "year < 1700 or " * (MAX_LENGTH // 15) + "year < 1700"
    assert len(text) > MAX_LENGTH
    with pytest.raises(InvalidFilter, match=f"longer than the {MAX_LENGTH:,} allowed") as e:
        parse_filter(text)
    assert len(str(e.value)) < 300  # the message quotes the start of the text, not all of it


def test_nesting_up_to_the_limit_is_read_and_beyond_it_refused(works):
    deepest = "(" * MAX_DEPTH + "year < 1700" + ")" * MAX_DEPTH
    assert parse_filter(deepest).mask(works).tolist() == parse_filter("year < 1700").mask(works).tolist()
    for text in ("(" * (MAX_DEPTH + 1) + "year < 1700" + ")" * (MAX_DEPTH + 1),
                 "not " * (MAX_DEPTH + 1) + "year < 1700",
                 "(not " * 60 + "year < 1700" + ")" * 60,
                 "(" * 1000 + "year < 1700" + ")" * 1000):
        with pytest.raises(InvalidFilter, match=f"deeper than {MAX_DEPTH}") as e:
            parse_filter(text)
        assert "at character" in str(e.value)


def test_a_long_flat_filter_is_not_limited_by_nesting(works):
    text = " or ".join(f"width == {i}" for i in range(600)) + " or width == 800"
    assert len(text) < MAX_LENGTH
    assert ids(works, text) == [1, 3, 4, 5]


# ---- error messages ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, position, says", [
    ("year <", 7, "expected a value"),
    ("style == 'Baroque' and", 23, "the end of the filter"),
    ("(year < 5", 10, "expected ')' to close the '(' at character 1"),
    ("year < 5)", 9, "closing parenthesis without an opening one"),
    ("style == Baroque", 10, "quote it: 'Baroque'"),
    ("style == period", 10, "comparing two columns is not supported"),
    ("style = = 'x'", 9, "expected a value"),
    ("'Baroque' == 'Rococo'", 14, "one side of a comparison must be a column"),
    ("style == 'Baroque", 10, "not closed"),
    ("style == 'a\\nb'", 12, "unknown escape"),
    ("year < 17x", 10, "cannot run into 'x'"),
    ("year ! 5", 6, "'!' is not an operator"),
    ("year between 1 and 2", 6, "expected an operator"),
    ("painter name == 'Monet'", 9, "written in backquotes: `painter name`"),
    ("painter-name == 'Monet'", 8, "written in backquotes (`a-b`)"),
    ("isnull year", 8, "'(' after isnull"),
    ("isnull('year')", 8, "expected a column name"),
    ("style in 'Baroque'", 10, "'[' to open the list"),
    ("style in ['a' 'b']", 15, "',' or ']'"),
    ("style in []", 11, "expected a value"),
    ("style == ['a', 'b']", 10, "style in [value, ...]"),
    ("style.isnull()", 6, "attribute access"),
    ("isna(style)", 5, "calls such as isna(...)"),
    ("@x == 1", 1, "'@' (a Python variable)"),
    ("year - 1 > 5", 6, "arithmetic"),
    ("year < 1e999", 8, "out of range"),
    ("`painter name == 'x'", 1, "backquoted column name is not closed"),
    ("`` == 'x'", 1, "empty backquoted"),
    ("year && 1", 6, "expected an operator"),
    ("and year < 1", 1, "expected a comparison"),
    ("style == 'x' not", 14, "expected 'and', 'or' or the end"),
])
def test_syntax_errors_say_where_and_what(text, position, says):
    with pytest.raises(InvalidFilter) as e:
        parse_filter(text)
    message = str(e.value)
    assert f"at character {position}:" in message
    assert says in message
    assert message.startswith(f'--where "{text}"') or message.startswith(f"--where {text!r}")
    assert message.endswith(f"e.g. {EXAMPLE}")
    assert "\n" not in message


def test_messages_stay_on_one_line():
    with pytest.raises(InvalidFilter) as e:
        parse_filter("year <\n\n")
    assert "\n" not in str(e.value) and "at character 9" in str(e.value)
    for text in ("", "   "):
        with pytest.raises(InvalidFilter, match="the filter is empty"):
            parse_filter(text)
    with pytest.raises(InvalidFilter, match="text, not NoneType"):
        parse_filter(None)


def test_invalid_filter_is_an_artspace_error_and_a_value_error():
    with pytest.raises(ValueError):
        parse_filter("year <")
    with pytest.raises(ArtspaceError):
        parse_filter("year <")


def test_unknown_columns_are_named_with_the_closest_and_the_table_columns(works):
    with pytest.raises(InvalidFilter) as e:
        parse_filter("styel == 'Baroque'").mask(works)
    message = str(e.value)
    assert "no column 'styel'" in message and "did you mean 'style'?" in message
    assert "at character 1:" in message
    assert "Its columns: id, style, year, width, rating, framed, signed, date, painter name, title, notes" in message
    with pytest.raises(InvalidFilter, match="at character 18: the works table has no column 'yaer'; did you mean "
                                            "'year'"):
        parse_filter("style == 'x' and yaer > 1").mask(works)
    with pytest.raises(InvalidFilter) as e:
        parse_filter("zzz == 1").mask(works)
    assert "did you mean" not in str(e.value) and "Its columns: id, style" in str(e.value)
    with pytest.raises(InvalidFilter, match="did you mean 'painter name'"):
        parse_filter("`painter_name` == 'Monet'").mask(works)


def test_a_column_named_twice_in_the_table_is_an_error_not_a_crash():
    table = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidFilter, match="2 columns named 'a'"):
        parse_filter("a == 1").mask(table)


@pytest.mark.parametrize("text, says", [
    ("year == '1700'", "at character 9: column 'year' holds numbers, so '1700' cannot be compared with it; "
                       "e.g. --where \"year == 1700\""),
    ("width > 'wide'", "column 'width' holds numbers"),
    ("rating == 'x'", "column 'rating' holds numbers"),
    ("year == true", "column 'year' holds numbers, so true cannot"),
    ("style > 5", "at character 9: column 'style' holds text, so 5 cannot be compared with it; "
                  "e.g. --where \"style > '5'\""),
    ("5 < style", "at character 1: column 'style' holds text"),
    ("style == false", "column 'style' holds text"),
    ("framed == 1", "column 'framed' holds true/false values"),
    ("signed == 'yes'", "column 'signed' holds true/false values"),
    ("framed < true", "at character 10: true and false can only be compared with == or !="),
    ("framed < 1", "column 'framed' holds true/false values"),
    ("width in [1, 'x']", "at character 14: column 'width' holds numbers"),
    ("notes < true", "at character 9: true and false can only be compared with == or !="),
])
def test_type_mismatches_say_the_columns_kind(works, text, says):
    f = parse_filter(text)  # the text is well formed; the table decides
    with pytest.raises(InvalidFilter) as e:
        f.mask(works)
    assert says in str(e.value)


# ---- apply_filter --------------------------------------------------------------------------------------------------

def test_apply_filter_returns_the_matching_rows(works):
    rows = apply_filter(works, "style == 'Baroque'")
    assert isinstance(rows, pd.DataFrame) and list(rows.columns) == list(works.columns)
    assert rows["id"].tolist() == [0, 2]
    assert apply_filter(works, parse_filter("year > 1800"))["id"].tolist() == [4]


def test_apply_filter_raises_no_match_naming_the_filter_and_the_works_searched(works):
    with pytest.raises(NoMatch) as e:
        apply_filter(works, "style == 'Cubism'")
    message = str(e.value)
    assert message == "--where \"style == 'Cubism'\" matches none of the 6 works searched"
    with pytest.raises(NoMatch, match="did you mean 'Baroque'"):
        apply_filter(works, "style == 'baroque ' and year < 1700")
    empty = apply_filter(works, "style == 'Cubism'", allow_empty=True)
    assert empty.empty and list(empty.columns) == list(works.columns)
    with pytest.raises(NoMatch, match="none of the 0 works"):
        apply_filter(works.iloc[:0], "year < 1700")


def test_apply_filter_checks_before_it_searches(works):
    with pytest.raises(InvalidFilter):
        apply_filter(works, "styel == 'x'", allow_empty=True)


# ---- the normalised text -------------------------------------------------------------------------------------------

ROUND_TRIPS = [
    "style == 'Baroque'",
    "style='Baroque'&year<1700",
    "1700 > year | ~(framed == TRUE)",
    "not (year < 1700 or style == 'Rococo') and isnull(rating)",
    "((style == 'Baroque')) and (((year < 1700)))",
    "(year < 1 and width > 2) and (rating == 3 and framed == false)",
    "style in ('Baroque', \"Rococo\") or width not in [800, 1.5e3, -2]",
    "`painter name` == \"O'Keeffe \\\\ \\\"x\\\"\" or title == 'The \\'Descent\\''",
    "year > -0.0 or year < 1e-05 or year != 1E+100",
    "not not not framed == true",
    "notes == 1 or notes == 1.0 or notes == true or notes == '1'",
    "date >= '1700-01-01' and date < \"1800\"",
    "notnull(year) AND (isnull(style) OR style != 'x')",
]


@pytest.mark.parametrize("text", ROUND_TRIPS)
def test_the_normalised_text_reads_back_to_the_same_filter(works, text):
    f = parse_filter(text)
    g = parse_filter(str(f))
    assert str(g) == str(f) and g == f and hash(g) == hash(f)
    assert np.array_equal(f.mask(works), g.mask(works))
    assert f.columns == g.columns
    assert f.text == text and isinstance(f, Filter)


@pytest.mark.parametrize("text, normal", [
    ("style='Baroque'&year<1700", "style == 'Baroque' and year < 1700"),
    ("1700 > year | ~(framed == TRUE)", "year < 1700 or not framed == true"),
    ("((a == 1 and b == 2)) and c == 3", "a == 1 and b == 2 and c == 3"),
    ("(a == 1 or b == 2) and not (c == 3 or d == 4)", "(a == 1 or b == 2) and not (c == 3 or d == 4)"),
    ("a == 1 or (b == 2 and c == 3)", "a == 1 or b == 2 and c == 3"),
    ("x IN ( 'a' )", "x in ['a']"),
    ("x == \"it's\"", "x == 'it\\'s'"),
    ("`my col` <= 1.50", "`my col` <= 1.5"),
    ("NOTNULL(x)", "notnull(x)"),
])
def test_the_normalised_text(text, normal):
    assert str(parse_filter(text)) == normal
    assert repr(parse_filter(text)) == f"parse_filter({normal!r})"


def test_literal_kinds_stay_distinct():
    assert parse_filter("x == 1") != parse_filter("x == 1.0")
    assert parse_filter("x == 1") != parse_filter("x == true")
    assert parse_filter("x == 1") != parse_filter("x == '1'")
    assert parse_filter("x == 1") == parse_filter("1 == x")
