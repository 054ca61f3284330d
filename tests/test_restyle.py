"""The restyled content descriptor: conv5_1's maps given the mean statistics of photographs before the descriptor
layers run on them (a branch of the same pass), the shipped statistics, and old catalogs keeping their descriptor."""

import numpy as np
import pytest
import torch

from artspace.backbone import VGG19
from artspace.content import fit_photo_statistics, photo_statistics, projection_for
from artspace.discriminant import fisher
from artspace.errors import ArtspaceError, InvalidOption
from artspace.features import Extractor, content_descriptor, restyle
from artspace.spec import DEFAULT_DESCRIPTOR_NORM, FeatureSpec


def test_the_default_restyles_conv5_1_with_the_original_weights_only():
    assert FeatureSpec().descriptor_norm == DEFAULT_DESCRIPTOR_NORM == "conv5_1"
    assert FeatureSpec(weights="torchvision").descriptor_norm is None
    assert FeatureSpec(descriptor_norm=None).descriptor_norm is None
    # a catalog from before it keeps its plain descriptor, and a new spec round-trips
    old = FeatureSpec().to_dict()
    del old["descriptor_norm"]
    assert FeatureSpec.from_dict(old).descriptor_norm is None
    assert FeatureSpec.from_dict(FeatureSpec().to_dict()) == FeatureSpec()
    assert FeatureSpec.from_dict(old) != FeatureSpec()  # so `index` never mixes the two in one catalog
    # and an older catalog's spec writes (and so digests its stored arrays) exactly as before
    assert FeatureSpec.from_dict(old).to_dict() == old


@pytest.mark.parametrize("norm, message", [("relu5_1", "must be a convolution"), ("conv5_3", "must come before"),
                                           ("conv9_9", "conv9_9")])
def test_a_restyled_layer_that_cannot_serve_is_refused(norm, message):
    with pytest.raises(ArtspaceError, match=message):
        FeatureSpec(descriptor_norm=norm)


def test_other_weights_cannot_use_the_photographs_statistics():
    with pytest.raises(InvalidOption, match="original weights only"):
        FeatureSpec(weights="torchvision", descriptor_norm="conv5_1")


def test_restyled_maps_have_the_photographs_channel_statistics_and_keep_each_channels_pattern():
    mean, std = photo_statistics("conv5_1")
    assert mean.shape == std.shape == (512,) and bool((std > 0).all())
    f = 3 * torch.rand(2, 512, 5, 6) + torch.arange(512).view(1, -1, 1, 1) / 100
    g = restyle(f, "conv5_1")
    torch.testing.assert_close(g.mean((2, 3)), mean.expand(2, -1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(g.std((2, 3)), std.expand(2, -1), atol=1e-3, rtol=1e-3)
    # an affine change of a channel (another medium's level and contrast) gives the same restyled maps
    torch.testing.assert_close(restyle(5 * f + 2, "conv5_1"), g, atol=1e-2, rtol=1e-3)  # float32 rounding
    with pytest.raises(InvalidOption, match="no photograph statistics for layer 'relu5_1'"):
        photo_statistics("relu5_1")


def test_resume_continues_the_forward_pass_from_a_layers_maps():
    torch.manual_seed(0)
    net = VGG19(last_layer="relu5_4")
    x = torch.rand(2, 3, 48, 48)
    full = net(x, ["conv5_1", "relu5_2", "relu5_4"])
    kept = full["conv5_1"].clone()
    on = net.resume(full["conv5_1"], "conv5_1", ["relu5_2", "relu5_4"])
    torch.testing.assert_close(on["relu5_4"], full["relu5_4"])
    torch.testing.assert_close(on["relu5_2"], full["relu5_2"])
    torch.testing.assert_close(full["conv5_1"], kept)  # the maps handed in are not overwritten by the relu
    with pytest.raises(InvalidOption, match="come before"):
        net.resume(full["conv5_1"], "conv5_1", ["relu4_1"])


def test_the_extractor_computes_the_descriptor_on_the_restyled_branch_and_everything_else_as_before():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 64, 64)
    new = Extractor(FeatureSpec(size=64), device="cpu").encode(x)
    old = Extractor(FeatureSpec(size=64, descriptor_norm=None), device="cpu").encode(x)
    for key in ("style", "signature", "moments"):
        torch.testing.assert_close(new[key], old[key])
    net = VGG19(last_layer="relu5_4")
    out = net(x, ["conv5_1", "relu5_4"])
    deep = net.resume(restyle(out["conv5_1"], "conv5_1"), "conv5_1", ("relu5_2", "relu5_3", "relu5_4"))
    expected = content_descriptor([deep[n] for n in ("relu5_2", "relu5_3", "relu5_4")])
    torch.testing.assert_close(new["descriptor"], expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(new["descriptor"], old["descriptor"], atol=1e-3)


def test_a_projection_fitted_on_the_other_descriptor_is_not_used(tmp_path):
    p = fisher(np.random.default_rng(0).random((20, 1536)), np.arange(20) // 4)
    p.info.update({"descriptor_layers": list(FeatureSpec().descriptor_layers), "weights": "original"})
    p.save(tmp_path / "plain.npz")  # fitted before restyling: its file says no descriptor_norm
    with pytest.raises(InvalidOption, match="fit one on this descriptor"):
        projection_for(FeatureSpec(), tmp_path / "plain.npz")
    assert projection_for(FeatureSpec(descriptor_norm=None), tmp_path / "plain.npz") is not None


def test_fit_photo_statistics_measures_each_convolution_and_writes_atomically(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    out = tmp_path / "stats.npz"
    stats = fit_photo_statistics(photos, out, size=32, device="cpu")
    assert int(stats["photographs"]) == 3 and stats["conv5_1/mean"].shape == (512,)
    with np.load(out) as z:
        np.testing.assert_array_equal(z["conv1_1/std"], stats["conv1_1/std"])
    # by the definition: the mean over photographs of each channel's mean over positions
    net = VGG19(last_layer="conv2_1")
    from artspace.features import prepare_image
    from artspace.images import open_image

    x = torch.stack([prepare_image(open_image(p), 32) for p in sorted(photos.iterdir())])
    with torch.inference_mode():
        f = net(x, ["conv2_1"])["conv2_1"]
    np.testing.assert_allclose(stats["conv2_1/mean"], f.mean((2, 3)).mean(0).numpy(), rtol=1e-4, atol=1e-4)
    assert not list(tmp_path.glob("*.tmp*"))


def test_the_content_formula_a_catalog_prints_names_the_restyled_maps_only_where_it_restyles():
    from artspace.spaces import formula, space

    assert "conv5_1 maps restyled to photographs' channel statistics" in formula("content", FeatureSpec())
    assert formula("content", FeatureSpec(descriptor_norm=None)) == space("content").formula
    assert formula("style", FeatureSpec()) == space("style").formula
