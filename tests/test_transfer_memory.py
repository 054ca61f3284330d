"""The memory model: a size that does not fit is refused before any pixel is allocated, with advice that works."""

from __future__ import annotations

import pytest

from artspace.errors import OutOfMemoryAdvice
from artspace.transfer import estimate_memory, synthesise, transfer

FAST = dict(style_layers=["relu1_1", "relu2_1", "relu3_1"], content_layers=["relu2_2"], tolerance=0)


@pytest.fixture
def images(transfer_images):
    """The tiny pastiche inputs of conftest.py, under a short name."""
    return transfer_images


def test_size_that_does_not_fit_gets_advice(images):
    with pytest.raises(OutOfMemoryAdvice) as e:
        transfer(images / "content.png", images / "style.png", size=512, max_memory=300_000_000)
    assert "--size" in str(e.value) and "--tile" in str(e.value)
    # 60,000 px on this machine's memory, checked before any pixel is allocated
    with pytest.raises(OutOfMemoryAdvice):
        transfer(images / "content.png", images / "style.png", size=60_000)
    # with tiles, the same limit is fine (memory is bounded by one tile)
    r = synthesise(images / "content.png", images / "style.png", size=72, tile=48, iterations=1,
                   max_memory=estimate_memory(48, 48) + 1, seed=0, **FAST)
    assert r.image.size == (72, 48)

