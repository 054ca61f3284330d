"""Colour control (Gatys et al. 2017): the content's colours kept after the transfer, the style's histogram matched to
the content's before it."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from artspace.images import to_tensor
from artspace.transfer import synthesise
from artspace.transfer.colour import match_histograms, preserve_colors, rgb_to_yiq

FAST = dict(style_layers=["relu1_1", "relu2_1", "relu3_1"], content_layers=["relu2_2"], tolerance=0)


@pytest.fixture
def images(transfer_images):
    """The tiny pastiche inputs of conftest.py, under a short name."""
    return transfer_images


def test_preserve_colors_keeps_content_chrominance(images):
    r = synthesise(images / "content.png", images / "style.png", size=40, iterations=4, preserve_colors=True,
                   seed=0, **FAST)
    c = to_tensor(Image.open(images / "content.png").resize(r.image.size, Image.LANCZOS))
    iq_out, iq_c = rgb_to_yiq(to_tensor(r.image))[1:], rgb_to_yiq(c)[1:]
    assert (iq_out - iq_c).abs().mean() < 0.03
    assert r.settings["preserve_colors"] is True


def test_colour_helpers():
    p, c = torch.rand(3, 10, 10) * 0.3 + 0.35, torch.rand(3, 10, 10) * 0.3 + 0.35  # no clipping
    out = preserve_colors(p, c)
    assert torch.allclose(rgb_to_yiq(out)[0], rgb_to_yiq(p)[0], atol=0.05)
    src, ref = torch.rand(3, 20, 20) ** 3, torch.rand(3, 9, 13) * 0.5 + 0.25
    m = match_histograms(src, ref)
    for ch in range(3):
        q = torch.linspace(0, 1, 11)
        assert torch.allclose(torch.quantile(m[ch].flatten(), q), torch.quantile(ref[ch].flatten(), q), atol=0.03)
        # monotone: the order of the source's values is kept
        assert torch.equal(m[ch].flatten().argsort(stable=True), src[ch].flatten().argsort(stable=True))


def test_match_histogram_option_recolours_the_style(images):
    r = synthesise(images / "content.png", images / "style2.jpg", size=32, iterations=1, match_histogram=True,
                   seed=0, **FAST)
    r0 = synthesise(images / "content.png", images / "style2.jpg", size=32, iterations=1, seed=0, **FAST)
    assert r.settings["match_histogram"] is True
    assert r.history[0] != r0.history[0]  # other style targets (an orange-on-black style matched to a blue sky)

