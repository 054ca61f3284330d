"""Write docs/api.md, the reference of artspace's Python API, from the code's own signatures and docstrings.

    python docs/api_reference.py          # rewrites docs/api.md
    python docs/api_reference.py --check  # exits 1 if docs/api.md is not what the code says (run by the tests)

Each entry gives the signature and the first paragraph of the docstring; the full docstrings are one
``help(artspace.NAME)`` away in a notebook.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

#: (section title, module, names or None for the module's __all__, what the section is for)
SECTIONS = [
    ("The package", "artspace", None, "Everything below is also importable from its own module; `import artspace` "
     "loads each name on first use."),
    ("Search spaces", "artspace.spaces", None, "The one table of spaces every command, function and file uses."),
    ("Catalog", "artspace.catalog", ["Catalog", "IndexReport", "index", "find_catalog", "locate_catalog"],
     "Building a catalog and asking it questions."),
    ("Catalog methods", "artspace.catalog.queries:Catalog", None, "What a notebook asks an open catalog."),
    ("Filters", "artspace.filters", ["parse_filter", "apply_filter", "Filter"], "The `--where` language."),
    ("Metadata", "artspace.catalog.metadata", ["read_metadata", "join_metadata", "Metadata", "JoinReport"],
     "Reading and joining a metadata CSV."),
    ("Analyses", "artspace.analysis", None, "Clusters, maps, the style/content plane, group comparisons, filter units, "
     "taught spaces, content projections, export."),
    ("Content space", "artspace.content", None, "The content projection learnt from pastiches that the catalog blends "
     "into the content space (fitted by `artspace.analysis.fit_content`)."),
    ("Photographs apart", "artspace.medium", None, "The photograph model (logistic regression on relu4_1's channel "
     "statistics) that splits the content space's style groups into photographs and other works."),
    ("Discriminants", "artspace.discriminant", None, "Fisher's discriminant with shrinkage, shared by the content "
     "projection and taught spaces."),
    ("Pastiche sets", "artspace.pastiches", None, "Photographs painted in many paintings by AdaIN: the groups a "
     "content projection is fitted on and measured with."),
    ("Taught spaces", "artspace.contrastive", None, "The non-linear head a taught space may use (a supervised "
     "contrastive loss, Khosla et al. 2020), stored as plain arrays."),
    ("Reference axes", "artspace.reference", None, "What a larger labelled collection teaches about style (by "
     "default seven WikiArt movements), offered to the learners of a taught space."),
    ("Pastiches", "artspace.transfer", None, "Gatys et al.'s optimisation, one table of options."),
    ("One-pass pastiches", "artspace.feedforward", None, "Johnson et al.'s network per style and AdaIN's decoder "
     "(Huang & Belongie 2017): training, model files, stylising."),
    ("Precision", "artspace.precision", None, "float32 or bfloat16 for the network passes; stored numbers float32."),
    ("Images", "artspace.images", ["open_image", "save_image", "made_by_artspace", "walk_images", "MAX_PIXELS"],
     "Reading the files museums hold, safely."),
    ("Outputs", "artspace.outputs", None, "Outputs that never overwrite inputs; CSVs safe to open in a spreadsheet."),
    ("Errors", "artspace.errors", None, "Every error artspace raises on purpose; the CLI prints each as one line."),
]


def _first_paragraph(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _signature(name: str, obj) -> str:
    try:
        return f"{name}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return name


def _entries(target: str, names):
    if ":" in target:  # the public methods and properties of a class
        module, cls = target.split(":")
        klass = getattr(importlib.import_module(module), cls)
        for name, member in inspect.getmembers(klass):
            if name.startswith("_"):
                continue
            if isinstance(inspect.getattr_static(klass, name), property):
                yield f"{cls}.{name}", f"{cls}.{name}", member
            elif callable(member):
                yield f"{cls}.{name}", _signature(f"{cls}.{name}", member), member
        return
    module = importlib.import_module(target)
    for name in names or [n for n in module.__all__ if not n.startswith("_")]:
        obj = getattr(module, name)
        shown = _signature(name, obj) if callable(obj) and not isinstance(obj, type) else name
        if isinstance(obj, type):
            shown = _signature(name, obj)
        yield name, shown, obj


def render() -> str:
    out = ["# Python API reference", "",
           "Generated from the code by `python docs/api_reference.py` (a test checks it is current). The command",
           "line calls these same functions with the same argument names; [index.md](index.md) explains the",
           "distances and [numbers.md](numbers.md) what each figure means.", ""]
    for title, target, names, purpose in SECTIONS:
        out += [f"## {title}", "", f"`{target.replace(':', '.')}` — {purpose}", ""]
        for name, shown, obj in _entries(target, names):
            text = _first_paragraph(obj) if (inspect.isroutine(obj) or isinstance(obj, type) or
                                             isinstance(obj, property)) else ""
            if not text and not callable(obj):
                text = f"Constant: `{obj!r}`." if len(repr(obj)) < 80 else "Constant."
            out += [f"### `{name}`", "", "```python", shown, "```", "", text, ""]
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    target = HERE / "api.md"
    text = render()
    if "--check" in sys.argv:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            print(f"{target} is out of date: run python docs/api_reference.py", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
