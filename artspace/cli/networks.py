"""Commands of the feed-forward networks: ``train-style``, ``train-decoder`` and ``stylise``.

Every option defaults to None, "the library's default" (shown in the help from the function's own signature), and
is passed on only when given: the checks and defaults live in artspace.feedforward.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import app, echo_err, given, handle_errors, library_defaults, quiet_option

_TRAINING = "artspace.feedforward.training"


def _default(function: str, name: str) -> str:
    value = library_defaults(_TRAINING, function).get(name)
    return "" if value is None else f" Default: {value}."


def _opt(function: str, name: str, help: str, *aliases: str):
    return typer.Option(None, "--" + name.replace("_", "-"), *aliases, help=help + _default(function, name))


def _common(function: str) -> dict:
    return {
        "steps": _opt(function, "steps", "Adam steps."),
        "size": _opt(function, "size", "Side of the square training crops, in pixels."),
        "batch_size": _opt(function, "batch_size", "Crops per step."),
        "lr": _opt(function, "lr", "Adam's learning rate."),
        "lr_schedule": _opt(function, "lr_schedule", "constant, or cosine: the rate decays to 0 along a half cosine "
                            "over --steps, or over --max-minutes where that ends the run first."),
        "seed": _opt(function, "seed", "Seeds the network and the crops: a CPU run is repeatable bit for bit."),
        "checkpoint_every": _opt(function, "checkpoint_every", "Write a checkpoint (OUTPUT.checkpoint) every N "
                                 "steps; the same command resumes from it."),
        "validate_every": _opt(function, "validate_every", "Write a validation pastiche to OUTPUT-validation/ "
                               "every N steps (0: none)."),
        "max_minutes": _opt(function, "max_minutes", "A time budget: stop after this many minutes of training "
                            "steps (resumed runs included) and write the model, even before --steps."),
        "weights": _opt(function, "weights", "VGG-19 weights: original, torchvision or a state-dict file."),
        "device": _opt(function, "device", "auto, cpu, cuda, cuda:N or mps."),
        "precision": _opt(function, "precision", "auto (bfloat16 where the hardware runs it natively), float32, "
                          "bfloat16 or float16, for the network passes; losses stay float32."),
        "workers": _opt(function, "workers", "Threads that decode and crop the next batches while a step runs "
                        "(0: in the loop). The crops drawn do not depend on it. Default: 8 on a GPU (at most one "
                        "per CPU core), 0 on a CPU."),
    }


def _done(result) -> None:
    def steps(n: int) -> str:
        return f"{n} step{'s' if n != 1 else ''}"

    typer.echo(f"wrote {result.path}: {steps(result.steps)} in {result.elapsed_s / 60:.1f} min; mean losses of the "
               f"last {steps(result.losses_steps)}: " + ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items()))
    if result.curve is not None:
        typer.echo(f"wrote {result.curve}: the loss terms, averaged over blocks of steps")


_S = _common("train_style")


@app.command("train-style")
@handle_errors
def train_style_cmd(
    style: List[Path] = typer.Argument(..., help="One or more style images (several: their Gram matrices blended)."),
    content: Path = typer.Option(..., "--content", help="Folder of content photographs to train on."),
    output: Path = typer.Option(..., "--output", "-o", help="The model file to write (.pt); never overwritten."),
    steps: Optional[int] = _S["steps"], size: Optional[int] = _S["size"],
    batch_size: Optional[int] = _S["batch_size"],
    norm: Optional[str] = _opt("train_style", "norm", "instance (Ulyanov et al. 2016) or batch (Johnson et al. "
                               "2016)."),
    content_loss: Optional[str] = _opt("train_style", "content_loss", "l2 (squared errors) or l1."),
    style_loss: Optional[str] = _opt("train_style", "style_loss", "l2 (squared errors) or l1."),
    content_weight: Optional[float] = typer.Option(None, "--content-weight", help="alpha. Default: 1."),
    style_weight: Optional[float] = typer.Option(None, "--style-weight", help="beta; beta/alpha is the style/content "
                                                 "ratio. Default: 100, as artspace transfer."),
    tv_weight: Optional[float] = typer.Option(None, "--tv-weight", help="lambda, the total variation weight. "
                                              "Default: 1e4 (10,000)."),
    style_blend: Optional[str] = typer.Option(None, "--style-blend", help="One weight per style image, such as "
                                              "0.7,0.3. Default: equal."),
    style_size: Optional[int] = typer.Option(None, "--style-size", help="Long side at which the styles are "
                                             "measured. Default: --size."),
    lr: Optional[float] = _S["lr"], lr_schedule: Optional[str] = _S["lr_schedule"], seed: Optional[int] = _S["seed"],
    checkpoint_every: Optional[int] = _S["checkpoint_every"], validate_every: Optional[int] = _S["validate_every"],
    max_minutes: Optional[float] = _S["max_minutes"],
    validation_image: Optional[Path] = typer.Option(None, "--validation-image", help="Content of the validation "
                                                    "pastiches. Default: the first content image."),
    weights: Optional[str] = _S["weights"], device: Optional[str] = _S["device"],
    precision: Optional[str] = _S["precision"],
    workers: Optional[int] = _S["workers"],
    quiet: bool = quiet_option(),
):
    """Train a network that paints any photograph in STYLE in one pass (Johnson et al. 2016, Perceptual losses for
    real-time style transfer; instance norm: Ulyanov et al. 2016).

    Example: artspace train-style starry_night.jpg --content photos/ -o starry.pt --steps 2000 --size 256
    """
    options = given(locals(), library_defaults(_TRAINING, "train_style").keys() | {
        "content_weight", "style_weight", "tv_weight", "style_size", "validation_image", "style_blend"})
    from ..feedforward import train_style

    _done(train_style(style, content, output, progress=not quiet, log=None if quiet else echo_err, **options))


_D = _common("train_decoder")


@app.command("train-decoder")
@handle_errors
def train_decoder_cmd(
    content: Path = typer.Option(..., "--content", help="Folder of content photographs."),
    styles: Path = typer.Option(..., "--styles", help="Folder of style paintings."),
    output: Path = typer.Option(..., "--output", "-o", help="The decoder file to write (.pt); never overwritten."),
    steps: Optional[int] = _D["steps"], size: Optional[int] = _D["size"],
    batch_size: Optional[int] = _D["batch_size"],
    style_weight: Optional[float] = typer.Option(None, "--style-weight", help="lambda of Huang & Belongie 2017. "
                                                 "Default: 10."),
    lr: Optional[float] = _D["lr"], lr_schedule: Optional[str] = _D["lr_schedule"], seed: Optional[int] = _D["seed"],
    checkpoint_every: Optional[int] = _D["checkpoint_every"], validate_every: Optional[int] = _D["validate_every"],
    max_minutes: Optional[float] = _D["max_minutes"],
    half: bool = typer.Option(False, "--half", help="Store the weights as float16 (half the file)."),
    weights: Optional[str] = _D["weights"], device: Optional[str] = _D["device"],
    precision: Optional[str] = _D["precision"],
    workers: Optional[int] = _D["workers"],
    quiet: bool = quiet_option(),
):
    """Train the decoder of AdaIN, which paints a content image in any style in one pass (Huang & Belongie 2017,
    Arbitrary style transfer in real-time with adaptive instance normalization).

    Example: artspace train-decoder --content photos/ --styles paintings/ -o decoder.pt --steps 4000
    """
    options = given(locals(), library_defaults(_TRAINING, "train_decoder").keys() | {"style_weight"})
    options["half"] = half
    from ..feedforward import train_decoder

    _done(train_decoder(content, styles, output, progress=not quiet, log=None if quiet else echo_err, **options))


@app.command("stylise")
@handle_errors
def stylise_cmd(
    model: Path = typer.Argument(..., help="A style network (.pt) from `artspace train-style`."),
    images: List[Path] = typer.Argument(..., help="Images and folders of images (searched recursively)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image for one image; else a folder, in which "
                                "each pastiche keeps its path relative to the folder given."),
    size: Optional[int] = typer.Option(None, "--size", help="Long side of the pastiches. Default: each image's own."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Images of equal size run together. "
                                             "Default: 4."),
    tile: Optional[int] = typer.Option(None, "--tile", help="Stylise images with a longer side in overlapping tiles "
                                       "of this many pixels. Default: 2048 on a CPU, 4096 on a GPU."),
    preserve_colors: bool = typer.Option(False, "--preserve-colors", help="Keep each image's colours: only the "
                                         "luminance comes from the network (Gatys et al. 2017)."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps. Default: auto."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto, float32, bfloat16 or float16. "
                                            "Default: auto."),
    quiet: bool = quiet_option(),
):
    """Paint images with a trained style network, one pass each (Johnson et al. 2016).

    Exit code 0: every image painted; 3: some files could not be read (each named, and counted in the summary).

    Example: artspace stylise starry.pt photos/ -o pastiches/
    """
    from ..feedforward import stylise

    options = given(locals(), {"size", "batch_size", "tile", "device", "precision"})
    skipped: list[str] = []
    results = stylise(model, images, output, preserve_colors=preserve_colors, progress=not quiet,
                      log=None if quiet else echo_err, on_skip=lambda source, reason: skipped.append(source),
                      **options)
    total = sum(r.elapsed_s for r in results)
    left_out = f"; {len(skipped)} file(s) skipped, unreadable: {', '.join(skipped[:3])}" + (
        f" and {len(skipped) - 3} more" if len(skipped) > 3 else "") if skipped else ""
    typer.echo(f"wrote {len(results)} pastiche(s) to {output} ({total:.2f} s in the network, "
               f"{total / max(1, len(results)):.3f} s per image){left_out}")
    if skipped:
        raise typer.Exit(3)
