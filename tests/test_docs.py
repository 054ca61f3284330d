"""The reference docs say what the code says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import artspace

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_api_reference_is_current():
    out = subprocess.run([sys.executable, str(DOCS / "api_reference.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_every_public_name_is_in_the_api_reference():
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    missing = [name for name in artspace.__all__ if name != "__version__" and f"### `{name}`" not in text]
    assert not missing, f"docs/api.md lacks {missing}"


def test_docs_and_help_texts_cite_papers_not_course_documents():
    package = DOCS.parent / "artspace"
    for page in [*DOCS.glob("*.md"), DOCS.parent / "README.md", *package.rglob("*.py")]:
        text = page.read_text(encoding="utf-8").lower()
        for phrase in ("the seeds", "seeds'", "lecture notes", "course slides", "thesis §", "thesis fig"):
            assert phrase not in text, f"{page.name} cites {phrase!r}; cite the paper instead"


def test_docs_show_only_pictures_that_exist_and_no_unfilled_figures():
    import re

    for page in [*DOCS.glob("*.md"), DOCS.parent / "README.md"]:
        text = page.read_text(encoding="utf-8")
        assert "{{" not in text, f"{page.name} has an unfilled figure"
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
            assert (page.parent / target).is_file(), f"{page.name} shows {target}, which does not exist"


def test_the_shipped_decoder_is_in_the_package_and_loads():
    from artspace.feedforward import load_model
    from artspace.feedforward.inference import default_decoder

    path = default_decoder()
    assert path.is_file(), "artspace/feedforward/data/adain_decoder.pt is missing"
    m = load_model(path, kind="adain-decoder")
    assert m.header["training"]["weights_stored_as"] == "float16"
    assert path.stat().st_size < 8 * 2**20
