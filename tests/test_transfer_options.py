"""The option table: documented defaults, every bad value refused with the value and the allowed range, values parsed
as the command line gives them, and the CLI reading its defaults and help texts from it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import typer.main
from PIL import Image

from artspace.cli import app
from artspace.errors import InvalidOption, UnknownLayer
from artspace.transfer import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, TransferOptions, synthesise
from artspace.transfer.options import RECONSTRUCT_INIT, RECONSTRUCT_ONLY, parse_counts, parse_names, parse_numbers

#: The defaults as docs/transfer.md and the --help texts state them; one row per option, so a new option must be
#: documented here too.
DOCUMENTED = {
    "size": None, "style_scale": 1.0, "content_layers": ("relu4_2",),
    "style_layers": ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), "content_layer_weights": None,
    "style_layer_weights": None, "style_blend": None, "content_weight": 1.0, "style_weight": 100.0, "tv_weight": 0.0,
    "loss": "l2", "optimizer": "lbfgs", "lr": None, "iterations": 500, "tolerance": 1e-4, "init": "content",
    "seed": None, "preserve_colors": False, "match_histogram": False, "scales": 1, "tile": None,
    "tile_overlap": None, "weights": "original", "pooling": "max", "device": "auto", "precision": "auto",
    "save_every": 0,
    "max_memory": None,
}


class _Device:  # what TransferOptions.resolved reads of a torch.device
    def __init__(self, type_: str):
        self.type = type_

    def __str__(self):
        return self.type


def test_defaults_are_the_documented_ones():
    assert TransferOptions.names() == list(DOCUMENTED)
    assert {n: TransferOptions.default(n) for n in DOCUMENTED} == DOCUMENTED
    assert dataclasses.asdict(TransferOptions()) == DOCUMENTED


def test_defaults_chosen_at_run_time():
    cpu = TransferOptions().resolved(_Device("cpu"))
    assert (cpu.size, cpu.lr, cpu.iterations, cpu.tile_overlap, cpu.device) == (256, 1.0, (500,), None, "cpu")
    assert cpu.content_layer_weights == (1.0,) and cpu.style_layer_weights == (0.2,) * 5
    assert isinstance(cpu.seed, int)
    assert TransferOptions().resolved(_Device("cuda")).size == 512
    adam = TransferOptions(optimizer="adam", tile=64, scales=2).resolved(_Device("cpu"))
    assert (adam.lr, adam.tile_overlap, adam.iterations) == (0.02, 16, (500, 500))
    assert TransferOptions(seed=3).resolved(_Device("cpu")).seed == 3


def test_gatys_layers_are_defined_once():
    from artspace.features import DEFAULT_STYLE_LAYERS as feature_layers

    assert DEFAULT_STYLE_LAYERS == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert DEFAULT_CONTENT_LAYERS == ("relu4_2",)
    assert feature_layers is DEFAULT_STYLE_LAYERS
    assert math.isclose(sum([1 / 5] * 5), 1.0)


BAD = [
    ("size", 8), ("size", 15), ("size", 2.5), ("size", "big"), ("size", True),
    ("style_scale", 0), ("style_scale", 17), ("style_scale", float("nan")), ("style_scale", -1.0),
    ("content_weight", -1), ("content_weight", float("inf")), ("content_weight", "a"),
    ("style_weight", -1e2), ("style_weight", float("nan")), ("tv_weight", -0.1),
    ("loss", "l3"), ("optimizer", "sgd"), ("pooling", "min"),
    ("lr", 0), ("lr", -1.0), ("lr", float("nan")),
    ("iterations", 0), ("iterations", "0"), ("iterations", "200,x"), ("iterations", [1, 0]), ("iterations", 2.5),
    ("tolerance", 1), ("tolerance", -0.1), ("tolerance", 2.0),
    ("init", "zeros"), ("init", "missing.png"),
    ("seed", 1.5), ("seed", "x"), ("seed", -1), ("seed", 10 ** 20),
    ("preserve_colors", "yes"), ("preserve_colors", 2), ("match_histogram", 2),
    ("scales", 0), ("scales", 1.5),
    ("tile", 31), ("tile", 8), ("tile_overlap", 0),
    ("weights", "imagenet"), ("device", "tpu"),
    ("save_every", -1), ("max_memory", 0),
    ("style_blend", "1,x"), ("style_blend", [-1, 1]), ("style_blend", "nan"),
    ("content_layer_weights", "a"), ("style_layer_weights", [-1.0]),
]


@pytest.mark.parametrize("name,value", BAD)
def test_every_bad_value_names_itself_and_the_allowed_range(name, value):
    with pytest.raises(InvalidOption) as e:
        TransferOptions(**{name: value})
    message = str(e.value)
    assert name in message and repr(value) in message and TransferOptions.allowed(name) in message
    assert "\n" not in message


def test_allowed_ranges_read_as_documented():
    assert TransferOptions.allowed("tolerance") == "in [0, 1)"
    assert TransferOptions.allowed("style_scale") == "in (0, 16]"
    assert TransferOptions.allowed("tile") == "at least 32 px"
    assert TransferOptions.allowed("size") == "at least 16 px"
    assert TransferOptions.allowed("content_weight") == "a finite number >= 0"
    assert TransferOptions.allowed("lr") == "a finite number > 0"
    assert TransferOptions.allowed("loss") == "one of 'l2', 'l1'"
    assert TransferOptions.allowed("optimizer") == "one of 'lbfgs', 'adam'"


def test_unknown_layers_are_named_with_the_valid_ones():
    with pytest.raises(UnknownLayer, match="relu9_1.*valid layers are: conv1_1"):
        TransferOptions(style_layers=["relu1_1", "relu9_1"])


@pytest.mark.parametrize("options,needle", [
    (dict(content_layers=[], style_layers=[]), "no content layers and no style layers"),
    (dict(style_layers="relu1_1,relu1_1"), "relu1_1 listed twice"),
    (dict(style_layer_weights=[1, 2]), "style_layer_weights has 2 values [1.0, 2.0] for 5 layers"),
    (dict(content_layer_weights="1,2"), "content_layer_weights has 2 values"),
    (dict(iterations="200,100", scales=3), "iterations gives 2 counts for 3 pyramid levels; give one or 3"),
    (dict(tile=40, tile_overlap=30), "tile_overlap must be between 1 and tile/2 = 20, not 30"),
    (dict(size=32, scales=3), "scales=3 is too many for size 32"),
    (dict(style_blend="0,0"), "sum to 0"),
    (dict(style_blend=""), "style_blend (--style-blend) is empty"),
    (dict(tile_overlap=10), "tile_overlap 10 needs tile"),
])
def test_options_that_do_not_fit_together(options, needle):
    with pytest.raises(InvalidOption) as e:
        TransferOptions(**options)
    assert needle in str(e.value)


def test_blend_weights_are_one_per_style_image():
    assert TransferOptions(style_blend="0.7,0.3").blend_for(2) == pytest.approx([0.7, 0.3])
    assert TransferOptions().blend_for(3) == pytest.approx([1 / 3] * 3)
    with pytest.raises(InvalidOption, match="style_blend has 2 weights .* for 1 style image"):
        TransferOptions(style_blend="0.5,0.5").blend_for(1)


def test_values_are_parsed_as_the_command_line_gives_them():
    o = TransferOptions(iterations="200,100", scales=2, style_blend="0.7, 0.3", style_layers=["relu1_1,relu2_1"],
                        content_layers="relu2_2", size="64", tolerance="0", seed=np.int64(4), preserve_colors=1)
    assert o.iterations == (200, 100) and o.style_blend == (0.7, 0.3) and o.style_layers == ("relu1_1", "relu2_1")
    assert o.content_layers == ("relu2_2",) and o.size == 64 and o.tolerance == 0.0 and o.seed == 4
    assert o.preserve_colors is True and TransferOptions(iterations=500.0).iterations == 500
    assert parse_counts("500") == 500 and parse_counts([4, 3]) == (4, 3)
    assert parse_names(["relu1_1, relu2_1", "relu3_1"]) == ["relu1_1", "relu2_1", "relu3_1"]
    assert parse_names(None) is None
    assert parse_numbers("1 0.5") == [1.0, 0.5]


def test_options_are_frozen_and_a_changed_copy_is_checked_again():
    o = TransferOptions(size=64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.size = 32
    assert dataclasses.replace(o, size=48).size == 48
    with pytest.raises(InvalidOption, match="size must be at least 16 px, not 4"):
        dataclasses.replace(o, size=4)


def test_synthesise_takes_an_options_object_and_keywords_override_it():
    c = Image.new("RGB", (32, 24), (200, 120, 40))
    s = Image.effect_noise((32, 32), 60).convert("RGB")
    options = TransferOptions(size=32, iterations=2, seed=0, style_layers=["relu1_1"], content_layers=["relu1_2"])
    r = synthesise(c, s, options=options, iterations=3)
    assert r.evaluations == 3 and r.settings["size"] == 32 and r.settings["style_layers"] == ["relu1_1"]
    with pytest.raises(TypeError, match="unknown option sise"):
        synthesise(c, s, sise=32)


def test_reconstruct_defaults_live_with_the_options():
    assert RECONSTRUCT_ONLY == ("content", "style") and RECONSTRUCT_INIT == "noise"


# ---- the command line reads the table ----------------------------------------------------------------------------

NO_DOCUMENTS = ("the seeds", "thesis", "lecture notes", "the notes")


def _params(command: str) -> dict:
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params}


@pytest.mark.parametrize("command", ["transfer", "reconstruct"])
def test_cli_options_default_to_the_library_and_take_its_help(command):
    params = _params(command)
    shared = [n for n in params if n in TransferOptions.names()]
    if command == "transfer":  # every option but the memory cap (a library-only guard) is on the command line
        assert set(TransferOptions.names()) - set(shared) == {"max_memory"}
    else:
        assert len(shared) == 12
    for name in shared:
        if command == "reconstruct" and name == "init":
            assert RECONSTRUCT_INIT in params[name].help  # reconstructions start from noise
            continue
        assert params[name].default is None, f"--{name} restates a default"
        assert params[name].help.startswith(TransferOptions.help(name).split(" Default:")[0])
        assert "Default:" in params[name].help
    for p in params.values():
        assert not any(doc in (p.help or "").lower() for doc in NO_DOCUMENTS), f"--{p.name} cites {p.help!r}"


def test_help_texts_cite_papers_not_documents():
    helps = [TransferOptions.help(n) for n in TransferOptions.names()]
    assert not [h for h in helps if any(doc in h.lower() for doc in NO_DOCUMENTS)]
    assert any("Gatys et al. 2016" in h for h in helps) and any("Gatys et al. 2017" in h for h in helps)
    assert any("Mahendran & Vedaldi 2015" in h for h in helps)


def test_blend_weights_are_scaled_to_sum_one_without_overflowing():
    from artspace.feedforward.inference import blend_weights

    assert TransferOptions(style_blend="1e308,1e308").blend_for(2) == [0.5, 0.5]  # an even blend, not a zero one
    assert TransferOptions(style_blend="3,1").blend_for(2) == [0.75, 0.25]
    assert TransferOptions().blend_for(4) == [0.25] * 4
    assert TransferOptions(style_blend="7,3").blend_for(2) == pytest.approx([0.7, 0.3])
    assert blend_weights("2,2", 2) == [0.5, 0.5] and blend_weights(None, 1) == [1.0]
    assert blend_weights([1e308, 1e308, 0], 3) == [0.5, 0.5, 0.0]
