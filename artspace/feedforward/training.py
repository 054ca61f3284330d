r"""Training the feed-forward networks: one network per style (Johnson et al. 2016), or AdaIN's decoder (Huang &
Belongie 2017).

Both trainings draw random square crops from folders of images, run them through artspace's VGG-19
(:mod:`artspace.backbone`) and minimise artspace's own losses (:mod:`artspace.losses`) with Adam:

* a style network :math:`f_W` minimises, over content images :math:`x`,
  :math:`\alpha L_{content}(f_W(x), x) + \beta L_{style}(f_W(x), a) + \lambda\,TV(f_W(x))` — the objective the
  optimiser of ``artspace transfer`` minimises for one image, here learned once for every image (Johnson et al. 2016,
  Eq. 3-5), with squared (``l2``) or absolute (``l1``) terms;
* AdaIN's decoder :math:`g` minimises :math:`\|f(g(t)) - t\|^2 + \lambda \sum_l (\|\mu(\phi_l(g(t)))-\mu(\phi_l(s))\|^2
  + \|\sigma(\phi_l(g(t)))-\sigma(\phi_l(s))\|^2)` with :math:`t = \mathrm{AdaIN}(f(c), f(s))` for random content
  and style pairs (Huang & Belongie 2017, Eq. 8-11).

A run writes a checkpoint every ``checkpoint_every`` steps beside its output (``model.pt.checkpoint``) and on
Ctrl-C; running the same command again resumes from it, bit for bit on a CPU with the same ``seed``. The model file
is written once, at the end, atomically; an existing model is never overwritten.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import math
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image

from .. import losses
from ..atomic import atomic_write
from ..backbone import VGG19, ieee_float32, resolve_device
from ..errors import ArtspaceError, InvalidOption, OutputConflict, UnreadableImage
from ..images import file_sha256 as file_digest  # the header's checksums: the catalog's, under its name here
from ..images import (aspect_ratio, check_sides, open_image, probe_image, save_image, to_pil, to_tensor,
                      walk_images)
from ..outputs import check_output
from ..precision import autocast, resolve_precision
from ..spec import DEFAULT_CONTENT_LAYER, DEFAULT_STYLE_LAYERS, LAYERS, network_minimum
from .inference import blend_weights
from .models import full_header, save_model
from .networks import ADAIN_LAYER, ADAIN_STYLE_LAYERS, NORMS, AdaINDecoder, TransformNet, adain, channel_stats

__all__ = ["TrainingResult", "train_style", "train_decoder", "checkpoint_path", "file_digest",
           "DEFAULT_STYLE_NET_WEIGHTS"]

#: α, β, λ of a style network. β/α is that of ``artspace transfer`` (same losses, same VGG-19); λ smooths the
#: pixel-scale noise a network otherwise leaves (docs/transfer.md shows four values side by side).
DEFAULT_STYLE_NET_WEIGHTS = {"content": 1.0, "style": 1e2, "tv": 1e4}
#: AdaIN's style weight λ (Huang & Belongie 2017 use 10 with the content term at relu4_1).
DEFAULT_ADAIN_STYLE_WEIGHT = 10.0
#: Learning-rate schedules of the training loop: the rate kept, or decayed along a half cosine over the run (whose
#: length is *steps*, or the time budget where that ends it first; a resumed run with another length follows it).
LR_SCHEDULES = ("constant", "cosine")
#: Crops are taken after scaling an image's short side to between 1 and this many times the crop size.
SCALE_JITTER = 1.5
#: A training crop whose pixels vary less than this (standard deviation, in [0, 1]; 2 grey levels in 255) is drawn
#: again, and an image that is all one colour, or smaller than :data:`MIN_TRAIN_SIDE` on a side, is skipped: through
#: the instance norms of a flat map (variance 0, σ = √ε) the gradient grows about 300-fold a layer until it is not a
#: number, so one flat crop in a batch ends a run ("the training loss became nan").
FLAT_STD = 2 / 255
#: Images with a shorter side than this (px) are skipped when a training run starts: enlarged to a crop, they are
#: flat.
MIN_TRAIN_SIDE = 16
_UNUSABLE = f"each unreadable, smaller than {MIN_TRAIN_SIDE} px a side, or all one colour"

#: The loss curve written beside a model (``model-losses.csv``) has the mean terms of each block of this many steps.
CURVE_BLOCK = 50
#: A run's final losses (printed, and ``final_losses`` in the model's header) are the mean terms of its last this
#: many steps, or of its last fifth when it is shorter than five times this.
FINAL_STEPS = 50


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where a training run keeps its checkpoint: ``model.pt`` → ``model.pt.checkpoint``."""
    output = Path(output)
    return output.with_name(output.name + ".checkpoint")


def curve_path(output: str | os.PathLike) -> Path:
    """Where a training run writes its loss curve: ``model.pt`` → ``model-losses.csv``."""
    output = Path(output)
    return output.with_name(f"{output.stem}-losses.csv")


@dataclass
class TrainingResult:
    """What a training run made: the model file, its header, the mean loss terms of its last steps (*losses*:
    the last :data:`FINAL_STEPS`, or the last fifth of a shorter run; *losses_steps* says how many), the
    validation pastiches written, the loss terms of every step (of the last 1,000 before a resume), and the loss
    curve file (``model-losses.csv``: the mean terms of every :data:`CURVE_BLOCK` steps, resumed runs included)."""

    path: Path
    header: dict
    steps: int
    elapsed_s: float
    losses: dict = field(default_factory=dict)
    validation: list = field(default_factory=list)
    history: list = field(default_factory=list)
    curve: Path | None = None
    losses_steps: int = 0


class ImageSampler:
    """Random square crops of the images below a folder, each batch drawn from the generator it is given
    (repeatable, resumable; batches can be drawn on several threads at once, each with its own generator).

    Each draw scales an image so that its short side is between 1 and :data:`SCALE_JITTER` times *size*, takes a
    random *size* × *size* crop and flips it left-right half of the time. Files whose header cannot be read are
    named through *log* at the start, and any found unreadable later when drawn; neither is drawn again. A draw of
    a known unreadable image and of one found unreadable now take the same random numbers, so the crops do not
    depend on which thread found it first. :attr:`readable` counts the others (what a model's header records).
    """

    def __init__(self, folder: str | os.PathLike, size: int, *, role: str,
                 log: Callable[[str], None] | None = None):
        folder = Path(folder)
        if not folder.is_dir():
            raise InvalidOption(f"{role} folder {folder} does not exist or is not a folder; give a folder of images")
        self.paths = list(walk_images(folder))
        if not self.paths:
            raise InvalidOption(f"{role} folder {folder} holds no images (.jpg, .png, ...); give a folder of images")
        self.folder, self.size, self.role = folder, size, role
        self.log = log or (lambda msg: None)
        self.lock = threading.Lock()  # the sets below, and naming each unreadable file once
        self.bad: set[int] = set()
        self.varied: set[int] = set()  # images found not to be of one colour (no random draw depends on it)
        for i, p in enumerate(self.paths):  # headers only: a draw of one of these would have found it too
            try:
                w, h = probe_image(p)
                if min(w, h) < MIN_TRAIN_SIDE:
                    raise UnreadableImage(p, f"{w}x{h} px is too small to train on (at least {MIN_TRAIN_SIDE} px "
                                             f"a side)")
            except UnreadableImage as e:
                self.bad.add(i)
                self.log(f"skipped: {e}")
        if len(self.bad) == len(self.paths):
            raise UnreadableImage(folder, f"none of the {role} images can be trained on ({_UNUSABLE})")

    @property
    def readable(self) -> int:
        """The images not found unreadable so far."""
        return len(self.paths) - len(self.bad)

    def first_readable(self) -> Path:
        """The first image (in walk order) not found unreadable."""
        return next(p for i, p in enumerate(self.paths) if i not in self.bad)

    def digest(self) -> str:
        """SHA-256 over the sorted relative paths and SHA-256 of every image: what the header records."""
        h = hashlib.sha256()
        for p in sorted(self.paths):
            h.update(f"{p.relative_to(self.folder).as_posix()}\0{file_digest(p)}\n".encode())
        return h.hexdigest()

    def _crop(self, im: Image.Image, g: torch.Generator) -> torch.Tensor:
        s = self.size
        short = round(s * (1 + (SCALE_JITTER - 1) * float(torch.rand((), generator=g))))
        w, h = im.size
        scale = short / min(w, h)
        im = im.resize((max(s, round(w * scale)), max(s, round(h * scale))), Image.BICUBIC, reducing_gap=3.0)
        x = int(torch.randint(im.width - s + 1, (), generator=g))
        y = int(torch.randint(im.height - s + 1, (), generator=g))
        t = to_tensor(im.crop((x, y, x + s, y + s)))
        return t.flip(-1) if float(torch.rand((), generator=g)) < 0.5 else t

    def _unreadable(self, i: int, error: UnreadableImage) -> None:
        with self.lock:
            if i not in self.bad:
                self.bad.add(i)
                self.log(f"skipped: {error}")

    def batch(self, n: int, g: torch.Generator) -> torch.Tensor:
        """*n* crops (n, 3, size, size), every random number drawn from *g*."""
        out = []
        while len(out) < n:
            if len(self.bad) == len(self.paths):
                raise UnreadableImage(self.folder, f"none of the {self.role} images can be trained on ({_UNUSABLE})")
            i = int(torch.randint(len(self.paths), (), generator=g))
            if i in self.bad:
                continue
            try:
                im = open_image(self.paths[i], max_side=4 * self.size)
                if i not in self.varied:  # whether the whole image is one colour: asked once, not at every draw
                    if _spread(to_tensor(im)) < FLAT_STD:
                        raise UnreadableImage(self.paths[i], "all one colour: nothing to learn from")
                    self.varied.add(i)
                crop = self._crop(im, g)
            except UnreadableImage as e:
                self._unreadable(i, e)
                continue
            if _spread(crop) >= FLAT_STD:  # a flat crop (sky, a blank margin) is drawn again
                out.append(crop)
        return torch.stack(out)


def _differing(saved: str, loop) -> str:
    """``" (size: 64 then, 128 now; ...)"``: the settings a checkpoint was made with that differ from a run's."""
    try:
        then = json.loads(saved)
    except (TypeError, ValueError):
        return ""
    now = json.loads(loop._fingerprint())
    diff = [f"{k}: {then.get(k)!r} then, {now.get(k)!r} now" for k in sorted(set(then) | set(now))
            if then.get(k) != now.get(k)]
    return f" ({'; '.join(diff[:4])}{'; …' if len(diff) > 4 else ''})" if diff else ""


def _spread(x: torch.Tensor) -> float:
    """How much an image (3, H, W) varies across its pixels: the largest of its channels' standard deviations (a
    flat colour has 0 whatever the colour)."""
    return float(x.flatten(1).std(1).max())


class Batches:
    """The training batches, in order. Batch k is drawn by *draw* from a generator of its own, seeded by the k-th
    number of the loop's *generator*: so the batches depend only on the seed, not on how many threads drew them.
    With *workers* threads (a GPU run: decoding and cropping on one thread would leave the GPU idle most of the
    time), up to *depth* batches are drawn ahead. :attr:`state` is the loop generator's state after the last batch
    handed out (not after those drawn ahead): what a checkpoint stores, so that a resumed run draws exactly the
    batches an uninterrupted one would. An error in drawing a batch (an unreadable folder, Ctrl-C in a test)
    reaches the caller at that batch, where a plain loop would have met it.
    """

    def __init__(self, draw: Callable[[torch.Generator], object], generator: torch.Generator, *, workers: int = 0,
                 depth: int = 0):
        self.draw, self.generator, self.state = draw, generator, generator.get_state()
        self.depth = max(int(depth), int(workers))
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="artspace-crops") if workers > 0 else None
        self.pending: collections.deque = collections.deque()

    def _seeded(self) -> tuple[torch.Generator, torch.Tensor]:
        seed = int(torch.randint(2 ** 62, (), generator=self.generator))
        return torch.Generator().manual_seed(seed), self.generator.get_state()

    def next(self):
        if self.pool is None:
            g, state = self._seeded()
            batch = self.draw(g)
            self.state = state
            return batch
        while len(self.pending) < self.depth:
            g, state = self._seeded()
            self.pending.append((self.pool.submit(self.draw, g), state))
        future, state = self.pending.popleft()
        batch = future.result()
        self.state = state
        return batch

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pending.clear()


def _check_common(output, steps, size, batch_size, lr, checkpoint_every, validate_every, max_minutes=None,
                  lr_schedule="constant", seed: int = 0) -> Path:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2 ** 63 - 1:
        raise InvalidOption(f"seed (--seed) must be a whole number from 0 to {2 ** 63 - 1}, not {seed!r}")
    if max_minutes is not None and not (isinstance(max_minutes, (int, float)) and not isinstance(max_minutes, bool)
                                        and max_minutes > 0):
        raise InvalidOption(f"max_minutes must be a positive number of minutes, not {max_minutes!r}")
    for name, value, lo in (("steps", steps, 1), ("size", size, 32), ("batch_size", batch_size, 1),
                            ("checkpoint_every", checkpoint_every, 0), ("validate_every", validate_every, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise InvalidOption(f"{name} must be a whole number of at least {lo}, not {value!r}")
    if not lr > 0:
        raise InvalidOption(f"lr must be positive, not {lr!r}")
    if lr_schedule not in LR_SCHEDULES:
        raise InvalidOption(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {lr_schedule!r}")
    output = Path(output)
    if output.is_dir():
        raise InvalidOption(f"model output {output} is a folder; give a file name such as {output / 'model.pt'}")
    if output.suffix.lower() not in (".pt", ".pth"):
        raise InvalidOption(f"model output {output}: use a .pt (or .pth) file name, such as {output.with_suffix('.pt')}")
    if output.exists():
        raise OutputConflict(f"{output} already exists; artspace never overwrites a trained model: choose another "
                             "output (-o) or delete it")
    return output


@contextlib.contextmanager
def _terminate_as_interrupt(request_stop: Callable[[], None]):
    """Inside the block, SIGTERM (a batch scheduler ending a job, ``kill``) and SIGINT (Ctrl-C, even where a shell
    started the run in the background with SIGINT ignored) call *request_stop*: the loop stops after the step under
    way, whose update is then whole, and writes a checkpoint."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        request_stop()

    saved = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


class _Loop:
    """The shared training loop: seeding, resume, checkpoints, validation pastiches, progress and timing."""

    def __init__(self, *, kind: str, output: Path, net: torch.nn.Module, settings: dict, steps: int, lr: float,
                 seed: int, checkpoint_every: int, validate_every: int, device: torch.device, precision: str,
                 progress: bool, log: Callable[[str], None] | None, max_minutes: float | None = None,
                 prefetch: int | None = None, workers: int | None = None, lr_schedule: str = "constant"):
        self.kind, self.output, self.net, self.settings = kind, output, net, settings
        self.lr, self.lr_schedule = lr, lr_schedule
        self.steps, self.device, self.precision = steps, device, precision
        self.max_seconds = None if max_minutes is None else 60.0 * max_minutes
        self.stopped_by_time = False
        self.stop_requested = False  # a signal arrived: stop after the step under way
        self.updating = False  # between an optimiser step and the step count that records it
        # batches drawn ahead on threads: on a GPU, decoding and cropping on one thread would leave it idle most of
        # the time; on a CPU the cores are busy with the step itself
        on_cpu = device.type == "cpu"
        self.workers = (0 if on_cpu else min(8, os.cpu_count() or 1)) if workers is None else int(workers)
        self.prefetch = (0 if on_cpu else 2 * self.workers) if prefetch is None else int(prefetch)
        if self.prefetch and not self.workers:
            self.workers = 1
        if self.workers < 0 or self.prefetch < 0:
            raise InvalidOption(f"workers and prefetch must not be negative, not {workers!r} and {prefetch!r}")
        self.batches: Batches | None = None
        self.checkpoint_every, self.validate_every = checkpoint_every, validate_every
        self.progress, self.log = progress, log or (lambda msg: None)
        self.opt = torch.optim.Adam(net.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.step, self.elapsed, self.history = 0, 0.0, []
        self.curve: list[dict] = []  # the mean terms of each block of CURVE_BLOCK steps
        self.block: tuple[dict, int] = ({}, 0)  # the open block's sums and step count
        self.validation: list[Path] = []
        self.ckpt = checkpoint_path(output)
        self.resumed_from: int | None = None  # the step a checkpoint brought the run to, when it resumed one
        self._resume()

    def _fingerprint(self) -> str:
        return json.dumps({k: v for k, v in self.settings.items() if k != "steps"}, sort_keys=True)

    def _resume(self) -> None:
        if not self.ckpt.exists():
            return
        try:
            state = torch.load(self.ckpt, map_location="cpu", weights_only=True)
            saved = state["settings"]
        except Exception as e:
            raise InvalidOption(f"checkpoint {self.ckpt} cannot be read ({type(e).__name__}); delete it to start "
                                "the training afresh") from None
        if saved != self._fingerprint():
            raise InvalidOption(f"checkpoint {self.ckpt} was made with other settings{_differing(saved, self)}; run "
                                "with the same options to resume it (only --steps and --max-minutes may change), or "
                                "delete it to start afresh")
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.generator.set_state(state["sampler_rng"])
        torch.set_rng_state(state["rng"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.resumed_from = self.step
        self.history = json.loads(state["history"])
        self.curve = json.loads(state.get("curve", "[]"))
        sums, count = json.loads(state.get("block", "[{}, 0]"))
        self.block = (sums, int(count))
        self.log(f"resuming {self.output} from step {self.step} ({self.ckpt})")

    def save_checkpoint(self) -> None:
        state = {"settings": self._fingerprint(), "net": self.net.state_dict(), "opt": self.opt.state_dict(),
                 "sampler_rng": self.sampler_done, "rng": self.rng_done, "step": self.step,
                 "elapsed": self.elapsed, "history": json.dumps(self.history[-1000:]),
                 "curve": json.dumps(self.curve), "block": json.dumps(list(self.block))}
        atomic_write(self.ckpt, lambda tmp: torch.save(state, tmp))

    def sampler_state(self) -> torch.Tensor:
        """The crop generator's state after the last batch a step used (not after those drawn ahead)."""
        return self.batches.state if self.batches is not None else self.generator.get_state()

    def descend(self, terms: dict) -> dict:
        """One Adam step on the sum of the loss *terms* (scalar tensors); their values and the total, as floats."""
        total = sum(terms.values())
        if not torch.isfinite(total):
            raise ArtspaceError(f"the training loss became {float(total)} at step {self.step + 1}; train again with "
                                f"a lower --lr or with --precision float32 (delete {self.ckpt} first)")
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.updating = True  # until the loop counts the step
        self.opt.step()
        return {**{k: v.item() for k, v in terms.items()}, "total": total.item()}

    def validation_path(self) -> Path:
        return self.output.with_name(f"{self.output.stem}-validation") / f"step_{self.step:06d}.png"

    def run(self, draw: Callable[[torch.Generator], object], train_step: Callable[[object], dict],
            validate: Callable[[], torch.Tensor] | None) -> None:
        """Steps until *steps* (or the time budget): each *train_step* gets the next batch that *draw* makes from
        the generator it is given (:class:`Batches`)."""
        from tqdm.auto import tqdm

        bar = tqdm(total=self.steps, initial=self.step, disable=not self.progress, unit="step",
                   desc=f"training {self.output.name}", dynamic_ncols=True)
        self.net.train()
        self.batches = Batches(draw, self.generator, workers=self.workers if self.step < self.steps else 0,
                               depth=self.prefetch)
        saved_benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self.device.type == "cuda"  # every step has the same shapes
        try:
            with _terminate_as_interrupt(self._request_stop):
                self._steps(bar, lambda: train_step(self.batches.next()), validate)
        finally:
            torch.backends.cudnn.benchmark = saved_benchmark
            self.batches.close()
        self.net.eval()

    def _request_stop(self) -> None:
        """A signal's handler: the first stops the loop after the step under way, a second at once."""
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        self.log("stopping after this step and writing a checkpoint (Ctrl-C again to stop at once)")

    def _steps(self, bar, train_step, validate) -> None:
        # the crops' generator as the last completed step left it: what a checkpoint stores, even when a stop
        # comes while the next batch is being drawn
        self.sampler_done, self.rng_done = self.sampler_state(), torch.get_rng_state()
        try:
            while self.step < self.steps:
                if self.stop_requested:
                    raise KeyboardInterrupt
                if self.max_seconds is not None and self.elapsed >= self.max_seconds:
                    self.stopped_by_time = True
                    self.log(f"stopped at step {self.step} of {self.steps}: {self.elapsed / 60:.1f} minutes of "
                             f"training steps reached the --max-minutes budget")
                    if validate is not None and self.validate_every and self.step % self.validate_every:
                        self._validate(validate)  # the pastiche of the network as it is written
                    break
                self._set_lr()
                t0 = time.perf_counter()
                terms = train_step()
                self.step += 1
                self.updating = False
                self.sampler_done, self.rng_done = self.sampler_state(), torch.get_rng_state()
                self.elapsed += time.perf_counter() - t0
                self.history.append(terms)
                self._add_to_curve(terms)
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in terms.items()}, refresh=False)
                if self.checkpoint_every and self.step % self.checkpoint_every == 0 and self.step < self.steps:
                    self.save_checkpoint()
                if validate is not None and self.validate_every and (
                        self.step % self.validate_every == 0 or self.step == self.steps):
                    self._validate(validate)
        except KeyboardInterrupt:
            if self.updating:  # stopped inside an update: the network no longer matches any step count
                self.log(f"interrupted during step {self.step + 1}; the last checkpoint {self.ckpt} (if any) resumes "
                         "the run: run the same command again")
            elif self.step:
                self.save_checkpoint()
                self.log(f"interrupted at step {self.step}; the checkpoint {self.ckpt} resumes it: run the same "
                         "command again")
            raise
        finally:
            bar.close()

    def progress_fraction(self) -> float:
        """How much of the run is done: the steps taken over *steps*, or under a time budget the time spent over it
        where that is further along."""
        done = self.step / self.steps
        if self.max_seconds:
            done = max(done, self.elapsed / self.max_seconds)
        return min(done, 1.0)

    def _set_lr(self) -> None:
        """The learning rate of the next step: *lr* throughout, or for ``cosine`` lr·½(1 + cos πp) at the fraction p
        of the run done (Loshchilov & Hutter 2017, without restarts), so that the last steps only settle the net."""
        lr = self.lr
        if self.lr_schedule == "cosine":
            lr = self.lr * 0.5 * (1.0 + math.cos(math.pi * self.progress_fraction()))
        for group in self.opt.param_groups:
            group["lr"] = lr

    def _validate(self, validate) -> None:
        self.net.eval()
        with torch.no_grad():
            image = validate()
        self.net.train()
        self.validation.append(save_image(to_pil(image), self.validation_path()))

    def _add_to_curve(self, terms: dict) -> None:
        sums, count = self.block
        sums = {k: sums.get(k, 0.0) + v for k, v in terms.items()}
        self.block = (sums, count + 1)
        if count + 1 >= CURVE_BLOCK:
            self._close_block()

    def _close_block(self) -> None:
        sums, count = self.block
        if count:
            self.curve.append({"step": self.step, "steps": count, **{k: v / count for k, v in sums.items()}})
        self.block = ({}, 0)

    def _write_curve(self) -> Path | None:
        """``model-losses.csv``: one row per block of steps (its last step, its number of steps, the mean terms)."""
        import pandas as pd

        self._close_block()
        if not self.curve:
            return None
        return atomic_write(curve_path(self.output),
                            lambda tmp: pd.DataFrame(self.curve).to_csv(tmp, index=False, float_format="%.6g"))

    def final_window(self) -> int:
        """Steps averaged for the final losses: the last :data:`FINAL_STEPS`, or the last fifth of a shorter run
        (so that a 20-step run's figure is not its first steps' loss)."""
        return min(FINAL_STEPS, max(1, len(self.history) // 5))

    def mean_terms(self, last: int | None = None) -> dict:
        recent = self.history[-(last or self.final_window()):]
        return {k: sum(t[k] for t in recent) / len(recent) for k in recent[0]} if recent else {}

    def finish(self, header: dict, *, half: bool = False) -> TrainingResult:
        final = self.mean_terms()
        budget = {} if self.max_seconds is None else {"max_minutes": self.max_seconds / 60,
                                                      "stopped_by_time": self.stopped_by_time,
                                                      "steps_asked": self.steps}
        header = {**full_header(self.kind, header), "training": {**header.get("training", {}), "steps": self.step,
                                          "time_s": round(self.elapsed, 1), **budget,
                                          "resumed_from_step": self.resumed_from,
                                          "final_losses": {k: float(f"{v:.6g}") for k, v in final.items()},
                                          "final_losses_steps": self.final_window() if final else 0}}
        path = save_model(self.output, self.kind, self.net, header, half=half)
        curve = self._write_curve()
        self.ckpt.unlink(missing_ok=True)
        return TrainingResult(path, header, self.step, self.elapsed, final, self.validation,
                              self.history, curve, losses_steps=self.final_window() if final else 0)


def _setup(device, precision, weights, last_layer: str):
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    vgg = VGG19(weights, last_layer=last_layer).to(dev, memory_format=torch.channels_last)
    if dev.type == "cpu":
        torch.set_flush_denormal(True)
    return dev, prec, vgg


def _pinned(batch: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """A batch in page-locked memory where it goes to a CUDA GPU, so that the copy overlaps the work."""
    return batch.pin_memory() if dev.type == "cuda" else batch


def _validation_image(path, size: int) -> torch.Tensor:
    im = open_image(path, max_side=size)
    return to_tensor(im)[None]


def style_net_terms(y: torch.Tensor, feats: dict, content_loss_fn, style_loss_fn, weights: dict) -> dict:
    """What :func:`train_style` minimises for a batch of outputs *y*, each term its mean over the batch: α content,
    β style (*feats*: VGG-19's maps of *y*, scored by the two loss modules against their targets) and λ total
    variation, *weights* giving α, β, λ as ``{"content", "style", "tv"}``."""
    b = y.shape[0]
    return {"content": weights["content"] * sum(content_loss_fn(feats).values()) / b,
            "style": weights["style"] * sum(style_loss_fn(feats).values()) / b,
            "tv": weights["tv"] * losses.total_variation(y.float()).sum() / b}


def train_style(styles: Sequence[str | os.PathLike], content: str | os.PathLike, output: str | os.PathLike, *,
                steps: int = 2000, size: int = 256, batch_size: int = 4, norm: str = "instance",
                content_loss: str = "l2", style_loss: str = "l2", content_weight: float | None = None,
                style_weight: float | None = None, tv_weight: float | None = None,
                style_blend: Sequence[float] | None = None, style_size: int | None = None,
                content_layers: Sequence[str] = (DEFAULT_CONTENT_LAYER,),
                style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS, lr: float = 1e-3, lr_schedule: str = "constant",
                seed: int = 0,
                checkpoint_every: int = 100, validate_every: int = 0, validation_image=None,
                weights: str = "original", device: str = "auto", precision: str = "auto", progress: bool = True,
                max_minutes: float | None = None, prefetch: int | None = None,
                workers: int | None = None,
                log: Callable[[str], None] | None = None) -> TrainingResult:
    r"""Train an image transformation network for one style, or a blend of several (Johnson et al. 2016).

    Parameters
    ----------
    styles : list of path
        Style images; with several, the target Gram matrices are their blend (*style_blend* weights, default equal).
    content : path
        Folder of content photographs (searched recursively).
    output : path
        The model file (``.pt``) to write. An existing file is never overwritten; an interrupted run resumes from
        ``output.checkpoint``.
    steps, size, batch_size : int
        Adam steps, the crops' side in pixels, crops per step.
    max_minutes : float, optional
        A time budget: stop after this many minutes of training steps (summed over resumed runs) even if fewer than
        *steps* were taken, and write the model; its header records the steps taken and that the budget stopped it.
    lr, lr_schedule : float, {"constant", "cosine"}
        Adam's learning rate, kept throughout or decayed to 0 along a half cosine over the run (its steps, or the
        time budget when that ends it first).
    prefetch, workers : int, optional
        Batches decoded and cropped ahead while a step runs, and the threads that draw them (default on a GPU: 8
        threads, at most one per CPU core, and twice as many batches; on a CPU none, whose cores the step itself
        keeps busy). Which crops a run draws depends on neither: each batch has its own generator, seeded in turn
        from *seed*.
    norm : {"instance", "batch"}
        Instance normalisation (Ulyanov et al. 2016) or Johnson et al.'s batch normalisation.
    content_loss, style_loss : {"l2", "l1"}
        Squared or absolute errors per term (:mod:`artspace.losses`).
    content_weight, style_weight, tv_weight : float
        α, β, λ (default :data:`DEFAULT_STYLE_NET_WEIGHTS`; β/α sets the style/content ratio).
    style_size : int, optional
        Long side at which the style images are measured (default *size*).
    validate_every : int
        Write a pastiche of *validation_image* (default: the first content image) every this many steps to
        ``<output stem>-validation/step_NNNNNN.png``; 0 writes none.
    precision : {"auto", "float32", "bfloat16", "float16"}
        Precision of the network passes (:mod:`artspace.precision`); losses and weights stay float32.
    """
    output = _check_common(output, steps, size, batch_size, lr, checkpoint_every, validate_every, max_minutes,
                           lr_schedule, seed)
    styles = [Path(s) for s in ([styles] if isinstance(styles, (str, os.PathLike)) else styles)]
    if not styles:
        raise InvalidOption("give at least one style image")
    for s in styles:
        if not s.is_file():
            raise UnreadableImage(s, "no such style image file")
    blend = blend_weights(style_blend, len(styles))
    for kind in (content_loss, style_loss):
        if kind not in losses.LOSS_KINDS:
            raise InvalidOption(f"loss must be one of {losses.LOSS_KINDS}, not {kind!r}")
    weights_ = {"content": DEFAULT_STYLE_NET_WEIGHTS["content"] if content_weight is None else float(content_weight),
                "style": DEFAULT_STYLE_NET_WEIGHTS["style"] if style_weight is None else float(style_weight),
                "tv": DEFAULT_STYLE_NET_WEIGHTS["tv"] if tv_weight is None else float(tv_weight)}
    if min(weights_.values()) < 0:
        raise InvalidOption(f"loss weights must not be negative: {weights_}")
    content_layers, style_layers = list(content_layers), list(style_layers)
    for path in (output, checkpoint_path(output), curve_path(output)):
        check_output(path, inputs=styles)
    if norm not in NORMS:
        raise InvalidOption(f"norm must be one of {NORMS}, not {norm!r}")
    dev, prec, vgg = _setup(device, precision, weights, max(content_layers + style_layers, key=LAYERS.index))
    style_size = style_size or size
    for s in styles:  # a style too thin for the deepest style layer's poolings: said now, not as a torch error
        check_sides(open_image(s, max_side=style_size).size[::-1], s, style_size, network_minimum(style_layers),
                    aspect=aspect_ratio(s), flag="--style-size")
    style_digests = [{"name": s.name, "sha256": file_digest(s)} for s in styles]
    settings = {"kind": "style", "styles": style_digests, "blend": blend, "content": str(Path(content).resolve()),
                "size": size, "batch_size": batch_size, "norm": norm, "losses": [content_loss, style_loss],
                "weights": weights_, "layers": [content_layers, style_layers], "style_size": style_size, "lr": lr,
                "lr_schedule": lr_schedule, "seed": seed, "vgg": str(weights), "precision": prec}
    torch.manual_seed(seed)
    net = TransformNet(norm=norm).to(dev, memory_format=torch.channels_last)
    loop = _Loop(kind="style", output=output, net=net, settings=settings, steps=steps, lr=lr, seed=seed,
                 checkpoint_every=checkpoint_every, validate_every=validate_every, device=dev, precision=prec,
                 progress=progress, log=log, max_minutes=max_minutes, prefetch=prefetch, workers=workers,
                 lr_schedule=lr_schedule)
    sampler = ImageSampler(content, size, role="content", log=log)
    style_loss_fn = losses.StyleLoss(style_layers, kind=style_loss)
    content_loss_fn = losses.ContentLoss(content_layers, kind=content_loss)
    with torch.no_grad(), ieee_float32(dev):
        with autocast(dev, prec):
            feats = [vgg(_validation_image(s, style_size).to(dev), style_layers) for s in styles]
        style_loss_fn.set_target(feats, blend)  # outside autocast: the Gram matrices are products in float32
    check_image = _validation_image(validation_image or sampler.first_readable(), size).to(dev)

    def step(x: torch.Tensor) -> dict:
        x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with autocast(dev, prec):
            with torch.no_grad():
                content_loss_fn.set_target(vgg(x, content_layers))
            y = net(x)
            feats = vgg(y, content_layers + style_layers)
        return loop.descend(style_net_terms(y, feats, content_loss_fn, style_loss_fn, weights_))

    def validate() -> torch.Tensor:
        with autocast(dev, prec):
            return net(check_image.contiguous(memory_format=torch.channels_last)).float().clamp(0, 1)

    loop.run(lambda g: _pinned(sampler.batch(batch_size, g), dev), step, validate)
    header = {
        "architecture": {"network": "TransformNet", "norm": norm, "upsampling": "nearest-resize + conv"},
        "losses": {"content": content_loss, "style": style_loss},
        "layers": {"content": content_layers, "style": style_layers,
                   "style_weights": style_loss_fn.weights},
        "weights": weights_, "vgg_weights": str(weights),
        "styles": style_digests, "blend": blend, "style_size": style_size,
        "training": {"content_folder": str(Path(content)), "content_images": sampler.readable,
                     "content_sha256": sampler.digest(), "size": size, "batch_size": batch_size, "lr": lr,
                     "lr_schedule": lr_schedule, "seed": seed, "precision": prec, "device": str(dev)},
    }
    return loop.finish(header)


def train_decoder(content: str | os.PathLike, styles: str | os.PathLike, output: str | os.PathLike, *,
                  steps: int = 2000, size: int = 256, batch_size: int = 8,
                  style_weight: float = DEFAULT_ADAIN_STYLE_WEIGHT, lr: float = 1e-4, lr_schedule: str = "constant",
                  seed: int = 0,
                  checkpoint_every: int = 100, validate_every: int = 0, validation_image=None,
                  validation_style=None, weights: str = "original", device: str = "auto",
                  precision: str = "auto", half: bool = False, progress: bool = True,
                  max_minutes: float | None = None, prefetch: int | None = None,
                  workers: int | None = None,
                  log: Callable[[str], None] | None = None) -> TrainingResult:
    """Train AdaIN's decoder (Huang & Belongie 2017) on folders of content photographs and style paintings.

    Each step pairs *batch_size* random content crops with as many random style crops. *half* stores the weights
    as float16 (half the file). The other parameters are those of :func:`train_style`; *validation_style* is the
    style of the validation pastiche (default: the first style image).
    """
    output = _check_common(output, steps, size, batch_size, lr, checkpoint_every, validate_every, max_minutes,
                           lr_schedule, seed)
    if not style_weight >= 0:
        raise InvalidOption(f"style_weight must not be negative, not {style_weight!r}")
    dev, prec, vgg = _setup(device, precision, weights, ADAIN_LAYER)
    settings = {"kind": "adain-decoder", "content": str(Path(content).resolve()),
                "styles": str(Path(styles).resolve()), "size": size, "batch_size": batch_size,
                "style_weight": style_weight, "lr": lr, "lr_schedule": lr_schedule, "seed": seed, "vgg": str(weights),
                "precision": prec}
    torch.manual_seed(seed)
    dec = AdaINDecoder().to(dev, memory_format=torch.channels_last)
    loop = _Loop(kind="adain-decoder", output=output, net=dec, settings=settings, steps=steps, lr=lr, seed=seed,
                 checkpoint_every=checkpoint_every, validate_every=validate_every, device=dev, precision=prec,
                 progress=progress, log=log, max_minutes=max_minutes, prefetch=prefetch, workers=workers,
                 lr_schedule=lr_schedule)
    contents = ImageSampler(content, size, role="content", log=log)
    style_images = ImageSampler(styles, size, role="style", log=log)
    layers = list(ADAIN_STYLE_LAYERS)
    check = (_validation_image(validation_image or contents.first_readable(), size).to(dev),
             _validation_image(validation_style or style_images.first_readable(), size).to(dev))

    def draw(g: torch.Generator) -> tuple:
        return _pinned(contents.batch(batch_size, g), dev), _pinned(style_images.batch(batch_size, g), dev)

    def step(pair: tuple) -> dict:
        c, s = (t.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last) for t in pair)
        with autocast(dev, prec):
            with torch.no_grad():
                fc = vgg(c, [ADAIN_LAYER])[ADAIN_LAYER]
                fs = vgg(s, layers)
                target_stats = {n: channel_stats(fs[n]) for n in layers}
                t = adain(fc, *target_stats[ADAIN_LAYER])
            y = dec(t.to(fc.dtype), size=c.shape[-2:])
            fy = vgg(y, layers)
        return loop.descend({
            "content": (fy[ADAIN_LAYER].float() - t).pow(2).flatten(1).mean(1).mean(),
            "style": style_weight * sum(losses.moment_term(*channel_stats(fy[n]), *target_stats[n]).mean()
                                        for n in layers)})

    def validate() -> torch.Tensor:
        with autocast(dev, prec):
            fc = vgg(check[0], [ADAIN_LAYER])[ADAIN_LAYER]
            fs = vgg(check[1], [ADAIN_LAYER])[ADAIN_LAYER]
            return dec(adain(fc, *channel_stats(fs)).to(fc.dtype), size=check[0].shape[-2:]).float().clamp(0, 1)

    loop.run(draw, step, validate)
    header = {
        "architecture": {"network": "AdaINDecoder", "encoder": f"VGG-19 to {ADAIN_LAYER}",
                         "upsampling": "nearest-resize + conv", "padding": "reflection"},
        "losses": {"content": "l2", "style": "moments-l2"},
        "layers": {"content": [ADAIN_LAYER], "style": layers},
        "weights": {"content": 1.0, "style": style_weight}, "vgg_weights": str(weights),
        "training": {"content_folder": str(Path(content)), "content_images": contents.readable,
                     "content_sha256": contents.digest(), "style_folder": str(Path(styles)),
                     "style_images": style_images.readable, "styles_sha256": style_images.digest(),
                     "size": size, "batch_size": batch_size, "lr": lr, "lr_schedule": lr_schedule, "seed": seed,
                     "precision": prec, "device": str(dev), "weights_stored_as": "float16" if half else "float32"},
    }
    return loop.finish(header, half=half)
