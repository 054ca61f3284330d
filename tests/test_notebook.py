"""The worked example in notebooks/ runs top to bottom (so it never rots)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the test extras (pip install -e .[test])")
nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the test extras (pip install -e .[test])")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "walkthrough.ipynb"


def _run(name: str, tmp_path) -> tuple[list, str]:
    """Execute notebooks/*name* in *tmp_path*; its outputs (none an error) and its printed text."""
    nb = nbformat.read(NOTEBOOK.with_name(name), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    return outputs, "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")


@pytest.mark.slow
def test_walkthrough_executes(tmp_path):
    outputs, text = _run("walkthrough.ipynb", tmp_path)
    assert "chosen automatically" in text and "permutations" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 6  # cluster sheet, map, plane, heat map, dendrogram, units sheet, pastiche


@pytest.mark.slow
def test_teaching_notebook_executes(tmp_path):
    outputs, text = _run("teaching.ipynb", tmp_path)
    assert "cross-validated" in text and "refused: the taught space taught:texture is stale" in text
    assert "{'taught:texture': None}" in text
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) >= 2  # confusion matrix, contact sheet
