"""Every Examples section in the package runs and prints what it shows (the docs' examples are tested code)."""

import doctest
import importlib
import pkgutil

import pytest

import artspace

# walk_packages, not iter_modules: the modules inside artspace.transfer and artspace.catalog have examples too
MODULES = sorted(m.name for m in pkgutil.walk_packages(artspace.__path__, "artspace.")
                 if not m.name.endswith(".__main__"))  # running those would start the command


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
