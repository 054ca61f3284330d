"""The metadata CSV: read and checked before any image is touched, then joined onto a works table.

Every CSV is written in tmp_path and every works table built here: no image is needed.
"""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest

from artspace.errors import InvalidMetadata
from artspace.catalog.metadata import WORK_COLUMNS, join_metadata, read_metadata


def works_table(*paths: str) -> pd.DataFrame:
    """A works table as the catalog builds it (its dtypes included), one work per path."""
    n = len(paths)
    works = pd.DataFrame({
        "id": np.arange(n, dtype=np.int64),
        "path": list(paths),
        "size": np.full(n, 1000, np.int64),
        "mtime_ns": np.arange(n, dtype=np.int64),
        "checksum": [f"c{i}" for i in range(n)],
        "width": np.full(n, 64, np.int32),
        "height": np.full(n, 48, np.int32),
    })
    works["path"] = works["path"].astype(str)
    works["checksum"] = works["checksum"].astype(str)
    return works


def write(path, text: str, encoding: str = "utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def is_text(series: pd.Series) -> bool:
    """pandas 3's 'str' dtype (object on pandas 2) holding only strings and missing values."""
    text_dtype = isinstance(series.dtype, pd.StringDtype) or series.dtype == object
    return text_dtype and all(isinstance(v, str) for v in series.dropna())


# ---- reading: delimiters and encodings -----------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_delimiter_is_sniffed(tmp_path, sep):
    csv = write(tmp_path / "works.csv", sep.join(["path", "title", "year"]) + "\n"
                + sep.join(["dots/star_0.png", "Star", "1650"]) + "\n"
                + sep.join(["waves/star_0.png", "Wave star", "1702"]) + "\n")
    md = read_metadata(csv, tmp_path)
    assert md.delimiter == sep
    assert md.columns == ["title", "year"]
    assert md.table.loc["waves/star_0.png", "title"] == "Wave star"
    assert md.table["year"].tolist() == [1650, 1702]


def test_semicolon_file_with_commas_in_text_is_not_read_as_one_column(tmp_path):
    csv = write(tmp_path / "works.csv", "path;title\na.png;Still life, with lemons\nb.png;Landscape, evening\n")
    md = read_metadata(csv, tmp_path)
    assert md.delimiter == ";"
    assert md.table.loc["a.png", "title"] == "Still life, with lemons"


def test_header_decides_when_text_cells_are_full_of_another_delimiter(tmp_path):
    rows = "".join(f'w{i}.png,"a; b; c; d; e"\n' for i in range(20))
    md = read_metadata(write(tmp_path / "works.csv", "path,notes\n" + rows), tmp_path)
    assert md.delimiter == ","
    assert md.table.loc["w3.png", "notes"] == "a; b; c; d; e"


def test_single_column_file_falls_back_to_comma(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "path\na.png\nb.png\n"), tmp_path)
    assert md.delimiter == ","
    assert md.columns == []
    assert list(md.table.index) == ["a.png", "b.png"]


def test_utf8_bom_is_not_part_of_the_key_column_name(tmp_path):
    csv = tmp_path / "works.csv"
    csv.write_bytes(b"\xef\xbb\xbfpath;title\r\na.png;Caf\xc3\xa9\r\n")
    md = read_metadata(csv, tmp_path)
    assert md.key == "path"
    assert md.table.loc["a.png", "title"] == "Café"
    assert md.notes == []


def test_cp1252_falls_back_with_a_note(tmp_path):
    csv = write(tmp_path / "works.csv", "path;title\na.png;Café – étude\n", encoding="cp1252")
    md = read_metadata(csv, tmp_path)
    assert md.table.loc["a.png", "title"] == "Café – étude"
    assert md.encoding == "Windows-1252"
    assert len(md.notes) == 1 and "not UTF-8" in md.notes[0] and "line 2" in md.notes[0]


def test_utf16_export_with_bom_is_read(tmp_path):
    csv = write(tmp_path / "works.txt", "path\ttitle\na.png\tÉtude\n", encoding="utf-16")
    md = read_metadata(csv, tmp_path)
    assert md.delimiter == "\t"
    assert md.table.loc["a.png", "title"] == "Étude"


def test_utf16_without_bom_is_rejected_not_misread(tmp_path):
    csv = tmp_path / "works.csv"
    csv.write_bytes("path,title\na.png,A\n".encode("utf-16-le"))
    assert "NUL character" in rejected(csv, tmp_path)


def test_checksum_is_the_files_sha256(tmp_path):
    csv = write(tmp_path / "works.csv", "path,title\na.png,A\n")
    first = read_metadata(csv, tmp_path).checksum
    assert first == hashlib.sha256(csv.read_bytes()).hexdigest()
    write(csv, "path,title\na.png,B\n")
    assert read_metadata(csv, tmp_path).checksum != first


# ---- reading: columns ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["path", "Path", "FILE", "filename", "Image", " path "])
def test_key_column_variants(tmp_path, name):
    md = read_metadata(write(tmp_path / "works.csv", f"title,{name}\nStar,dots/star_0.png\n"), tmp_path)
    assert md.key == name.strip()
    assert md.columns == ["title"]
    assert list(md.table.index) == ["dots/star_0.png"]


def test_path_is_preferred_and_other_key_names_stay_columns(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "image,path\nphoto.jpg,dots/star_0.png\n"), tmp_path)
    assert md.key == "path"
    assert md.columns == ["image"]
    assert md.table.loc["dots/star_0.png", "image"] == "photo.jpg"


def test_reserved_columns_get_a_prefix_and_do_not_touch_the_works_own(tmp_path):
    csv = write(tmp_path / "works.csv", "path,width,id,title\na.png,73.5,INV-1,Star\n")
    md = read_metadata(csv, tmp_path)
    assert md.columns == ["meta_width", "meta_id", "title"]
    joined, _ = join_metadata(works_table("a.png", "b.png"), md)
    assert joined["width"].tolist() == [64, 64]
    assert joined.loc[0, "meta_width"] == 73.5
    assert joined.loc[0, "meta_id"] == "INV-1"


def test_reserved_rename_onto_an_existing_column_is_rejected(tmp_path):
    csv = write(tmp_path / "works.csv", "path,width,meta_width\na.png,1,2\n")
    with pytest.raises(InvalidMetadata, match=r"works\.csv: column 'width' becomes 'meta_width'.*rename"):
        read_metadata(csv, tmp_path)


def test_numeric_columns_become_numbers_and_identifiers_stay_text(tmp_path):
    csv = write(tmp_path / "works.csv",
                "path,year,height_cm,inventory,barcode,mixed,empty\n"
                "a.png,1650,73.5,0042,1234567890123456789,12,\n"
                "b.png,1702,,0043,1234567890123456780,about 1700,\n"
                "c.png,-5,1e2,0044,1234567890123456781,13,\n")
    t = read_metadata(csv, tmp_path).table
    assert t["year"].dtype == np.int64 and t["year"].tolist() == [1650, 1702, -5]
    assert t["height_cm"].dtype == np.float64 and np.isnan(t.loc["b.png", "height_cm"])
    assert t.loc["c.png", "height_cm"] == 100.0
    assert is_text(t["inventory"]) and t.loc["a.png", "inventory"] == "0042"
    assert is_text(t["barcode"]) and t.loc["a.png", "barcode"] == "1234567890123456789"
    assert is_text(t["mixed"]) and t.loc["a.png", "mixed"] == "12"
    assert t["empty"].isna().all()


def test_decimal_commas_in_semicolon_files_are_numbers(tmp_path):
    csv = write(tmp_path / "works.csv", "path;depth;dims\na.png;73,5;1.234,5\nb.png;80;2\n")
    t = read_metadata(csv, tmp_path).table
    assert t["depth"].tolist() == [73.5, 80.0]
    assert is_text(t["dims"])  # a thousands separator is not guessed at


def test_decimal_commas_in_comma_files_are_not_guessed(tmp_path):
    csv = write(tmp_path / "works.csv", 'path,price\na.png,"1,500"\n')
    assert read_metadata(csv, tmp_path).table.loc["a.png", "price"] == "1,500"


def test_empty_cells_are_missing_and_na_words_are_text(tmp_path):
    csv = write(tmp_path / "works.csv", "path,title,note\na.png,,NA\nb.png,  ,None\n")
    t = read_metadata(csv, tmp_path).table
    assert t["title"].isna().all()
    assert t["note"].tolist() == ["NA", "None"]


def test_formula_looking_values_stay_plain_text(tmp_path):
    formula = "=cmd|' /C calc'!A0"
    csv = write(tmp_path / "works.csv", f'path,title,other\na.png,"{formula}",+1+1\nb.png,@SUM(A1),-2\n')
    md = read_metadata(csv, tmp_path)
    assert md.table.loc["a.png", "title"] == formula
    assert md.table.loc["b.png", "title"] == "@SUM(A1)"
    assert md.table["other"].tolist() == ["+1+1", "-2"]


def test_quoted_line_breaks_stay_in_their_cell(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", 'path,notes\na.png,"two\nlines"\nb.png,one\n'), tmp_path)
    assert md.table.loc["a.png", "notes"] == "two\nlines"
    assert md.origin.loc["b.png", "row"] == 3  # as a spreadsheet numbers it: one row per record


def test_blank_rows_and_trailing_separators_are_ignored(tmp_path):
    csv = write(tmp_path / "works.csv", "path;title;;\na.png;A;;\n;;;\n\nb.png;B;;\n;;;\n")
    md = read_metadata(csv, tmp_path)
    assert md.columns == ["title"]
    assert md.table["title"].to_dict() == {"a.png": "A", "b.png": "B"}
    assert md.origin.loc["b.png", "row"] == 5


def test_header_only_file_has_no_rows_and_a_note(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "path,title,year\n"), tmp_path)
    assert md.columns == ["title", "year"] and len(md.table) == 0
    assert any("no rows" in n for n in md.notes)
    joined, report = join_metadata(works_table("a.png", "b.png"), md)
    assert joined[["title", "year"]].isna().all().all()
    assert len(report.works_without_row) == 2


def test_describe_names_rows_key_and_column_kinds(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "File;year;title\na.png;1650;Star\n"), tmp_path)
    text = md.describe()
    assert text == ("works.csv: 1 rows keyed by 'File', semicolon-separated, UTF-8; "
                    "columns: year (number), title (text)")


# ---- reading: rejected files (one line naming the file, the row and the fix) ---------------------------------------


def rejected(csv, root) -> str:
    with pytest.raises(InvalidMetadata) as info:
        read_metadata(csv, root)
    message = str(info.value)
    assert "\n" not in message and str(csv) in message
    return message


def test_missing_file_is_rejected(tmp_path):
    assert "does not exist" in rejected(tmp_path / "nope.csv", tmp_path)


def test_directory_is_rejected(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    assert "is a folder" in rejected(tmp_path / "folder.csv", tmp_path)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf", b"  \r\n", b",,\n", b'""\n'])
def test_empty_file_is_rejected(tmp_path, content):
    csv = tmp_path / "works.csv"
    csv.write_bytes(content)
    assert "is empty" in rejected(csv, tmp_path)


def test_no_key_column_lists_the_columns(tmp_path):
    message = rejected(write(tmp_path / "works.csv", "title;year\nStar;1650\n"), tmp_path)
    assert "path or file or filename or image" in message and "the columns are: 'title', 'year'" in message


def test_empty_key_cell_names_the_spreadsheet_row(tmp_path):
    csv = write(tmp_path / "works.csv", "path,title\na.png,A\n\n,Orphan\n")
    message = rejected(csv, tmp_path)
    assert "row 4" in message and "empty 'path' cell" in message and "delete the row" in message


def test_duplicate_column_names_are_rejected(tmp_path):
    message = rejected(write(tmp_path / "works.csv", "path,year,title,year\na.png,1,A,2\n"), tmp_path)
    assert "columns B and D are both named 'year'" in message


def test_unnamed_column_with_values_is_rejected(tmp_path):
    message = rejected(write(tmp_path / "works.csv", "path,,title\na.png,,A\nb.png,x,B\n"), tmp_path)
    assert "column B holds values (row 3)" in message


def test_row_longer_than_the_header_is_rejected(tmp_path):
    message = rejected(write(tmp_path / "works.csv", "path,title\na.png,A\nb.png,Still life, lemons\n"), tmp_path)
    assert "row 3 has 3 cells" in message and "quote" in message


def test_unclosed_quote_is_rejected_instead_of_swallowing_the_rows_after_it(tmp_path):
    message = rejected(write(tmp_path / "works.csv", 'path,title\na.png,A\nb.png,"Untitled\nc.png,C\n'), tmp_path)
    assert "row 3 cannot be read as CSV" in message and "quote" in message


def test_leading_blank_lines_before_the_header(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "\n\npath;title\na.png;A, B\n"), tmp_path)
    assert md.delimiter == ";" and md.table.loc["a.png", "title"] == "A, B"


def test_duplicate_rows_keep_the_last_and_are_reported(tmp_path):
    csv = write(tmp_path / "works.csv", "path,title\na.png,First\nb.png,B\n./a.png,Second\n")
    md = read_metadata(csv, tmp_path)
    assert md.duplicates == ["a.png"]
    assert md.table.loc["a.png", "title"] == "Second"
    assert md.origin.loc["a.png", "row"] == 4
    assert md.notes == ["1 image is listed more than once in works.csv (first: 'a.png', rows 2 and 4); "
                        "the last row of each is used"]


# ---- keys: where the paths are relative to -------------------------------------------------------------------------


def test_paths_relative_to_the_csvs_folder(tmp_path):
    root = tmp_path / "collection"
    csv = write(root / "meta" / "works.csv", "path,title\n../dots/star_0.png,A\n")
    assert list(read_metadata(csv, root).table.index) == ["dots/star_0.png"]


def test_csv_outside_the_collection_with_paths_relative_to_its_folder(tmp_path):
    root = tmp_path / "collection"
    csv = write(tmp_path / "works.csv", "path,title\ncollection/dots/star_0.png,A\n")
    assert list(read_metadata(csv, root).table.index) == ["dots/star_0.png"]


def test_csv_outside_the_collection_with_paths_relative_to_the_collection(tmp_path):
    root = tmp_path / "collection"
    csv = write(tmp_path / "elsewhere" / "works.csv", "path,title\ndots/star_0.png,A\n")
    md = read_metadata(csv, root)
    joined, report = join_metadata(works_table("dots/star_0.png", "waves/star_0.png"), md)
    assert joined["title"].tolist()[0] == "A" and report.unmatched_rows == []


def test_csv_in_a_subfolder_with_paths_relative_to_the_collection(tmp_path):
    root = tmp_path / "collection"
    csv = write(root / "meta" / "works.csv", "path,title\ndots/star_0.png,A\nwaves/star_0.png,B\n")
    md = read_metadata(csv, root)
    joined, report = join_metadata(works_table("dots/star_0.png", "waves/star_0.png"), md)
    assert joined["title"].tolist() == ["A", "B"]
    assert report.notes() == []


def test_absolute_paths_inside_and_outside_the_collection(tmp_path):
    root = tmp_path / "collection"
    inside = root / "dots" / "star_0.png"
    outside = tmp_path / "other" / "star_9.png"
    md = read_metadata(write(tmp_path / "works.csv", f"path,title\n{inside},In\n{outside},Out\n"), root)
    assert list(md.table.index) == ["dots/star_0.png", outside.as_posix()]


def test_collection_reached_through_a_symbolic_link(tmp_path):
    real = tmp_path / "real"
    (real / "dots").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(real)
    md = read_metadata(write(tmp_path / "works.csv", f"path,title\n{real / 'dots' / 'a.png'},A\n"), link)
    assert list(md.table.index) == ["dots/a.png"]


def test_windows_separators_are_read_as_folders(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "path;title\ndots\\star_0.png;A\n"), tmp_path)
    assert list(md.table.index) == ["dots/star_0.png"]


def test_bare_names_join_where_unique(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "file,title\ncircle_0.png,Circle\ncross_0.png,Cross\n"),
                       tmp_path / "collection")
    joined, report = join_metadata(works_table("dots/circle_0.png", "waves/cross_0.png", "dots/star_0.png"), md)
    assert joined["title"].tolist()[:2] == ["Circle", "Cross"] and pd.isna(joined.loc[2, "title"])
    assert report.matched == 2 and report.works_without_row == ["dots/star_0.png"]


def test_misspelt_folder_still_joins_by_a_unique_name(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "path,title\ndotz/circle_0.png,Circle\n"), tmp_path)
    joined, report = join_metadata(works_table("dots/circle_0.png"), md)
    assert joined.loc[0, "title"] == "Circle" and report.unmatched_rows == []


# ---- joining -------------------------------------------------------------------------------------------------------


DEMO_WORKS = ("dots/star_0.png", "waves/star_0.png", "dots/circle_0.png", "waves/circle_0.png", "dots/cross_0.png")


def test_repeated_bare_names_plus_an_unlisted_work_join_without_error(tmp_path):
    # The pandas-3 regression: every bare name of the CSV repeats (once bare, once with its folder), the works
    # hold each name twice, and one work is listed nowhere. The old join wrote a float NaN array into a 'str'
    # column and raised "TypeError: Invalid value for dtype 'str'", on every later run.
    csv = write(tmp_path / "works.csv", "path,shape,year,note\n"
                                        "star_0.png,star,1650,\n"
                                        "waves/star_0.png,star,1651,x\n"
                                        "circle_0.png,circle,1700,\n"
                                        "waves/circle_0.png,circle,1701,\n")
    joined, report = join_metadata(works_table(*DEMO_WORKS), read_metadata(csv, tmp_path))
    assert joined["path"].tolist() == list(DEMO_WORKS)
    assert joined.loc[[1, 3], "shape"].tolist() == ["star", "circle"]
    assert joined.loc[[1, 3], "year"].tolist() == [1651, 1701]
    # Neither 'star_0.png' nor 'circle_0.png' may be guessed: each names two works.
    assert joined.loc[[0, 2, 4], ["shape", "year", "note"]].isna().all().all()
    assert report.ambiguous_names == ["star_0.png", "circle_0.png"]
    assert report.unmatched_rows == []
    assert report.works_without_row == ["dots/star_0.png", "dots/circle_0.png", "dots/cross_0.png"]
    assert is_text(joined["shape"]) and joined["year"].dtype == np.float64 and is_text(joined["note"])
    assert report.notes()[0].startswith("2 file names in works.csv fit several images or rows (first: 'star_0.png')")


def test_bare_names_listed_twice_in_the_csv_are_not_guessed(tmp_path):
    csv = write(tmp_path / "works.csv", "path,title\ndots/star_0.png,A\nold/circle_0.png,B\nnew/circle_0.png,C\n")
    joined, report = join_metadata(works_table("dots/star_0.png", "waves/circle_0.png"), read_metadata(csv, tmp_path))
    assert pd.isna(joined.loc[1, "title"])
    assert report.ambiguous_names == ["circle_0.png"] and report.unmatched_rows == []


def test_unmatched_rows_are_reported_as_written(tmp_path):
    csv = write(tmp_path / "works.csv", "path,title\ndots/sta_0.png,A\ndots/star_0.png,B\nghost/none.png,C\n"
                                        "zzz/nope.png,D\n")
    _, report = join_metadata(works_table("dots/star_0.png", "dots/circle_0.png"), read_metadata(csv, tmp_path))
    assert report.unmatched_rows == ["dots/sta_0.png", "ghost/none.png", "zzz/nope.png"]
    assert report.notes() == [
        "3 rows of works.csv match no image (first: 'dots/sta_0.png'); check the path column",
        "1 work has no row in works.csv (e.g. 'dots/circle_0.png'); add rows to give them metadata",
    ]


def test_join_keeps_the_works_order_index_and_dtypes(tmp_path):
    csv = write(tmp_path / "works.csv", "path,year,title\nc.png,1800,C\na.png,1650,A\n")
    works = works_table("a.png", "b.png", "c.png").iloc[::-1]
    works.index = [30, 20, 10]
    joined, report = join_metadata(works, read_metadata(csv, tmp_path))
    assert list(joined.index) == [30, 20, 10]
    assert joined["path"].tolist() == ["c.png", "b.png", "a.png"]
    assert (joined[works.columns].dtypes == works.dtypes).all()
    assert list(joined.columns) == list(works.columns) + ["year", "title"]
    assert joined["title"].tolist()[0] == "C" and pd.isna(joined.loc[20, "title"])
    assert report.matched == 2


def test_numeric_column_filters_after_the_join(tmp_path):
    csv = write(tmp_path / "works.csv", "path;year\na.png;1650\nb.png;1750\n")
    joined, _ = join_metadata(works_table("a.png", "b.png", "c.png"), read_metadata(csv, tmp_path))
    assert joined.query("year < 1700")["path"].tolist() == ["a.png"]


def test_a_works_column_with_a_metadata_name_is_replaced_and_reported(tmp_path):
    works = works_table("a.png")
    works["title"] = ["old"]
    joined, report = join_metadata(works, read_metadata(write(tmp_path / "w.csv", "path,title\na.png,new\n"),
                                                        tmp_path))
    assert joined["title"].tolist() == ["new"] and list(joined.columns).count("title") == 1
    assert report.replaced_columns == ["title"] and "replaced" in report.notes()[-1]


def test_switching_csv_after_dropping_the_previous_columns_leaves_none_behind(tmp_path):
    works = works_table("a.png", "b.png")
    old = read_metadata(write(tmp_path / "old.csv", "path,title,width\na.png,A,1\n"), tmp_path)
    works, _ = join_metadata(works, old)
    new = read_metadata(write(tmp_path / "new.csv", "path,year\nb.png,1700\n"), tmp_path)
    works, report = join_metadata(works.drop(columns=old.columns, errors="ignore"), new)
    assert list(works.columns) == list(WORK_COLUMNS) + ["year"]
    assert report.replaced_columns == []


def test_join_onto_an_empty_works_table(tmp_path):
    md = read_metadata(write(tmp_path / "works.csv", "path,title,year\na.png,A,1\n"), tmp_path)
    joined, report = join_metadata(works_table(), md)
    assert list(joined.columns) == list(WORK_COLUMNS) + ["title", "year"] and len(joined) == 0
    assert report.unmatched_rows == ["a.png"]


def test_rows_of_excluded_files_are_named_as_such_not_as_matching_no_image(tmp_path):
    root = tmp_path / "collection"
    csv = write(root / "works.csv", "path,title\ndots/star_0.png,A\nwaves/star_0.png,B\nwaves/typo.png,C\n")
    md = read_metadata(csv, root)
    joined, report = join_metadata(works_table("dots/star_0.png"), md, excluded=lambda p: p.startswith("waves/"))
    assert joined["title"].tolist() == ["A"]
    assert report.excluded_rows == ["waves/star_0.png", "waves/typo.png"] and report.unmatched_rows == []
    assert report.notes() == ["2 rows of works.csv describe files left out by --exclude (first: 'waves/star_0.png') "
                              "and were not joined"]


def test_index_with_exclude_reports_the_csv_rows_it_left_out(demo_catalog, tmp_path):
    from artspace.catalog import index
    from artspace.spec import FeatureSpec

    root = tmp_path / "demo"
    shutil.copytree(demo_catalog.root, root, ignore=shutil.ignore_patterns(".artspace"))
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    csv = write(tmp_path / "works.csv", "path,n\n" + "".join(f"{p},{i}\n" for i, p in enumerate(paths)))
    rep = index(root, metadata=csv, spec=FeatureSpec(size=64), quiet=True, exclude=["dots"])
    dots = sum(p.startswith("dots/") for p in paths)
    assert rep.works == len(paths) - dots
    assert any(n.startswith(f"{dots} rows of works.csv describe files left out by --exclude") for n in rep.notes)
    assert not any("match no image" in n for n in rep.notes)
