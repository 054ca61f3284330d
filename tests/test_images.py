"""The loader: formats, orientation, huge scans, and every kind of bad file."""

from __future__ import annotations

import os
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from artspace import images
from artspace.errors import InvalidOption, UnreadableImage
from artspace.images import open_image, to_pil, to_tensor, walk_images


def test_walk_is_recursive_sorted_and_ignores_non_images(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".artspace").mkdir()
    for rel in ["z.JPG", "a.png", "b/deep/c.tif", "notes.txt", "b/readme", ".hidden.png", ".artspace/x.png"]:
        (tmp_path / rel).write_bytes(b"x")
    assert [p.relative_to(tmp_path).as_posix() for p in walk_images(tmp_path)] == ["a.png", "z.JPG", "b/deep/c.tif"]


@pytest.mark.parametrize("content, reason", [
    (b"", "empty"),
    (b"this is a text file, not a picture", "not an image"),
])
def test_bad_files_raise_with_file_and_reason(tmp_path, content, reason):
    p = tmp_path / "bad.jpg"
    p.write_bytes(content)
    with pytest.raises(UnreadableImage) as e:
        open_image(p)
    assert str(p) in str(e.value) and reason in str(e.value)


def test_truncated_jpeg_is_refused(tmp_path):
    p = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(p, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(UnreadableImage, match="cut.jpg"):
        open_image(cut)


def test_missing_file(tmp_path):
    with pytest.raises(UnreadableImage, match="cannot read"):
        open_image(tmp_path / "nope.png")


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), "red")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    p = tmp_path / "o.jpg"
    im.save(p, exif=exif)
    assert open_image(p).size == (20, 40)


def test_cmyk_sixteen_bit_palette_alpha_become_rgb(tmp_path):
    cmyk = tmp_path / "cmyk.tif"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(cmyk)  # pure red in CMYK
    r, g, b = open_image(cmyk).getpixel((0, 0))
    assert r > 200 and g < 50 and b < 50

    a16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    t16 = tmp_path / "grey16.tif"
    Image.fromarray(a16).save(t16)  # uint16 -> mode I;16
    im = open_image(t16)
    assert im.mode == "RGB" and im.getpixel((7, 7))[0] == round(63000 / 65535 * 255)

    rgba = tmp_path / "alpha.png"
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(rgba)
    assert open_image(rgba).getpixel((0, 0)) == (255, 255, 255)  # transparent over white paper

    pal = tmp_path / "pal.bmp"
    Image.new("P", (4, 4), 3).save(pal)
    assert open_image(pal).mode == "RGB"

    webp = tmp_path / "w.webp"
    Image.new("RGB", (6, 6), "blue").save(webp)
    assert open_image(webp).size == (6, 6)


def test_huge_scans_are_reduced_while_decoding(tmp_path):
    p = tmp_path / "scan.jpg"
    Image.new("RGB", (4000, 3000), "white").save(p)
    im = open_image(p, max_side=400)
    assert max(im.size) == 400 and im.size[0] / im.size[1] == pytest.approx(4 / 3, rel=0.01)


def test_source_size_is_the_full_size_as_displayed(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    p = tmp_path / "turned.jpg"
    Image.new("RGB", (4000, 3000), "white").save(p, exif=exif)
    im = open_image(p, max_side=400)  # read at 1/8 scale, turned, reduced
    assert im.size == (300, 400) and im.info["source_size"] == (3000, 4000)
    Image.new("RGB", (40, 20)).save(tmp_path / "plain.png")
    assert open_image(tmp_path / "plain.png", max_side=10).info["source_size"] == (40, 20)


def test_larger_than_limit_is_refused_with_advice(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(p)
    monkeypatch.setattr(images, "MAX_PIXELS", 50_000)
    with pytest.raises(UnreadableImage, match="megapixels.*downscale"):
        open_image(p)


def test_tensor_round_trip():
    im = Image.fromarray(np.random.default_rng(1).integers(0, 255, (5, 7, 3), dtype=np.uint8))
    x = to_tensor(im)
    assert x.shape == (3, 5, 7) and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(np.asarray(to_pil(x)), np.asarray(im))


# ---------------------------------------------------------------------------------------------------------------
# Hostile files: every one is refused or reported, none stops, hangs or blows up a walk or a decode.


def within(seconds: float, fn, *args, release=None):
    """fn(*args) in a daemon thread; a test failure, not a hung suite, if it takes longer (then *release* it)."""
    out = {}

    def target():
        try:
            out["value"] = fn(*args)
        except BaseException as e:  # re-raised in the test's thread
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        if release is not None:
            release()
        pytest.fail(f"{fn.__name__} still running after {seconds} s: it blocks")
    if "error" in out:
        raise out["error"]
    return out.get("value")


def unblock_fifo(path):
    """Let a reader blocked on opening the FIFO *path* go (a non-blocking writer opens and closes it)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def test_walk_yields_regular_files_and_reports_every_other_entry_once(hostile):
    skipped = []
    found = within(10, lambda: list(walk_images(hostile, on_skip=lambda p, r: skipped.append((p, r)))))
    assert [p.name for p in found] == ["anim.gif", "bomb.png", "good.png", "link.png"]
    reasons = {p.name: r for p, r in skipped}
    assert len(skipped) == len(reasons) == 4
    assert "broken symbolic link" in reasons["gone.png"] and "nowhere.png" in reasons["gone.png"]
    assert "named pipe (FIFO)" in reasons["x.png"] and "not a regular file" in reasons["x.png"]
    assert "symbolic link to a folder, not followed" in reasons["loop"]
    bad_name = os.fsdecode(b"latin1_\xe9.png")
    assert "not valid UTF-8" in reasons[bad_name] and "convmv" in reasons[bad_name]
    assert repr(b"latin1_\xe9.png") in reasons[bad_name]
    reasons[bad_name].encode("utf-8")  # the reason itself is printable, unlike the path
    assert all(isinstance(p, type(hostile)) for p, _ in skipped)


def test_walk_without_on_skip_is_silent(hostile):
    assert [p.name for p in walk_images(hostile)] == ["anim.gif", "bomb.png", "good.png", "link.png"]


def test_opening_what_the_walk_yields_never_blocks_nor_warns(hostile):
    def open_all():
        results = {}
        for p in list(walk_images(hostile)) + [hostile / "x.png", hostile / "gone.png"]:
            try:
                results[p.name] = open_image(p, max_side=64)
            except UnreadableImage as e:
                results[p.name] = e
        return results

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = within(10, open_all, release=lambda: unblock_fifo(hostile / "x.png"))
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert results["link.png"].getpixel((0, 0)) == results["good.png"].getpixel((0, 0)) == (0, 128, 0)
    assert results["anim.gif"].getpixel((0, 0)) == (255, 0, 0)
    assert "named pipe (FIFO), not a regular file" in str(results["x.png"])
    assert "broken symbolic link" in str(results["gone.png"])
    bomb = str(results["bomb.png"])
    assert "bomb.png" in bomb and "30000x30000 is 900 megapixels" in bomb
    assert f"limit of {images.MAX_PIXELS / 1e6:.0f} megapixels" in bomb
    assert "vips resize" in bomb and "--max-pixels" in bomb and "max_pixels=" in bomb


def test_fifo_is_refused_before_it_is_opened(tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableImage, match="FIFO"):
        within(5, open_image, fifo, release=lambda: unblock_fifo(fifo))


def test_unreadable_folder_is_reported(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads folders whatever their mode; test_folder_that_cannot_be_listed covers the path")
    locked = tmp_path / "locked"
    locked.mkdir()
    Image.new("RGB", (4, 4)).save(locked / "inside.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "outside.png")
    locked.chmod(0)
    try:
        skipped = []
        found = list(walk_images(tmp_path, on_skip=lambda p, r: skipped.append((p, r))))
    finally:
        locked.chmod(0o755)
    assert [p.name for p in found] == ["outside.png"]
    assert skipped == [(locked, skipped[0][1])] and "cannot read folder" in skipped[0][1]


def test_folder_that_cannot_be_listed(tmp_path, monkeypatch):
    # The same path as a chmod 000 folder, also when the tests run as root (whom chmod does not stop).
    (tmp_path / "locked").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "locked" / "inside.png")
    real_scandir = os.scandir

    def scandir(path):
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skipped = []
    assert list(walk_images(tmp_path, on_skip=lambda p, r: skipped.append((p, r)))) == []
    assert len(skipped) == 1 and skipped[0][0] == tmp_path / "locked"
    assert "cannot read folder (Permission denied)" in skipped[0][1] and "chmod" in skipped[0][1]


def test_pillow_guard_never_warns(tmp_path, write_png):
    # 100 Mpx sits between Pillow's warning (89 Mpx) and its error (179 Mpx); artspace's own check speaks instead.
    p = write_png(tmp_path / "wide.png", 10000, 10000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UnreadableImage, match="100 megapixels, above the limit of 1 megapixels"):
            open_image(p, max_pixels=1_000_000)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_max_pixels_raises_or_lowers_the_limit_per_call(tmp_path, monkeypatch):
    p = tmp_path / "mid.png"
    Image.new("RGB", (300, 300), "white").save(p)
    with pytest.raises(UnreadableImage, match="300x300 is 0.09 megapixels, above the limit of 0.05 megapixels"):
        open_image(p, max_pixels=50_000)
    monkeypatch.setattr(images, "MAX_PIXELS", 50_000)
    assert open_image(p, max_pixels=90_000).size == (300, 300)
    with pytest.raises(InvalidOption, match="max_pixels"):
        open_image(p, max_pixels=0)


def test_jpeg_budget_counts_the_reduced_decode(tmp_path):
    p = tmp_path / "scan.jpg"
    Image.new("RGB", (4000, 3000), "white").save(p)  # 12 Mpx; for max_side=400 read at 1/8 scale: 500x375
    assert max(open_image(p, max_side=400, max_pixels=200_000).size) == 400
    with pytest.raises(UnreadableImage, match="4000x3000 is 12 megapixels, above the limit of 1 megapixels"):
        open_image(p, max_pixels=1_000_000)
    with pytest.raises(UnreadableImage, match="even read at reduced scale as 500x375"):
        open_image(p, max_side=400, max_pixels=100_000)


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_animated_images_give_their_first_frame(tmp_path, suffix, animated):
    p = animated(tmp_path / f"anim{suffix}")
    with Image.open(p) as im:
        assert getattr(im, "n_frames", 1) == 2
    im = open_image(p)
    assert im.mode == "RGB" and im.size == (8, 8)
    assert np.array_equal(np.asarray(im), np.full((8, 8, 3), (255, 0, 0), np.uint8))


def test_sixteen_bit_conversion_is_the_rounded_scale_for_every_value():
    v = np.arange(65536, dtype=np.uint16)
    expected = np.floor(v.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    assert np.array_equal(images._sixteen_to_eight(v), expected)


def banded_modes():
    rng = np.random.default_rng(2)
    rgba = Image.fromarray(rng.integers(0, 256, (37, 23, 4), dtype=np.uint8), "RGBA")
    pal = rgba.convert("RGB").quantize(16)
    pal.info["transparency"] = 3
    return {
        "RGBA": rgba,
        "LA": rgba.convert("LA"),
        "P+transparency": pal,
        "CMYK": rgba.convert("CMYK"),
        "I;16": Image.fromarray(rng.integers(0, 65536, (37, 23), dtype=np.uint16)),
        "1": rgba.convert("1"),
    }


@pytest.mark.parametrize("mode", list(banded_modes()))
def test_banded_conversion_matches_whole_image_conversion(mode, monkeypatch):
    im = banded_modes()[mode]
    whole = np.asarray(images._band_to_rgb(im))  # the conversion applied to the whole image at once
    monkeypatch.setattr(images, "_BAND_BYTES", 4 * 23 * 5)  # five rows a band, the last one short
    assert np.array_equal(np.asarray(images._to_rgb(im)), whole)


def test_alpha_is_composited_over_white():
    rgba = banded_modes()["RGBA"]
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    assert np.array_equal(np.asarray(images._to_rgb(rgba)),
                          np.asarray(Image.alpha_composite(white, rgba).convert("RGB")))


def test_contact_sheet_captions_draw_accented_names():
    """"Café été" gets its own glyphs, not the box a font draws for a character it lacks."""
    from artspace.sheets import _font

    def drawn(text):
        m = _font(11).getmask(text)
        return m.size, bytes(m)

    box = drawn("\U000F0000")  # a private-use character no font draws
    for text in ("é", "Ü", "ç"):
        assert drawn(text) != box


def test_contact_sheet_captions_are_drawn_whole_on_as_many_lines_as_they_need():
    """A caption's every line is drawn, wrapped to the cell, so a label or a percentile is never cut away."""
    from artspace.sheets import _font, _wrap, contact_sheet

    font = _font(11)
    length = lambda t: font.getlength(t)  # noqa: E731
    caption = ("#1 0_2365.jpg (id 17)\nl_style d = 1.238e+08 (0.8 % of pairs nearer)\n"
               "Impressionism · label_2 · label_3")
    lines = _wrap(caption, 160, length, 6)
    assert " ".join(lines).replace("  ", " ") == caption.replace("\n", " ")  # nothing dropped, only wrapped
    assert len(lines) > 3 and all(length(line) <= 160 for line in lines)
    red = Image.new("RGB", (40, 20), "red")
    short, long = contact_sheet([(red, "a")], thumb=160), contact_sheet([(red, caption)], thumb=160)
    assert long.height - short.height == 13 * (len(lines) - 1)
    assert _wrap("word " * 40, 50, len, 3)[-1].endswith("…")


def test_a_webp_output_keeps_every_pixel(tmp_path):
    """Pillow's WebP is lossy by default (54 grey levels off in a pastiche): artspace writes it lossless."""
    from artspace.images import save_image

    a = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    save_image(Image.fromarray(a), tmp_path / "p.webp")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p.webp").convert("RGB")), a)


@pytest.mark.parametrize("argv0,expected", [
    ("/opt/venv/bin/artspace", "artspace transfer 'a b.png' s.png"),
    ("/src/artspace/cli/__main__.py", "artspace transfer 'a b.png' s.png"),  # python -m artspace.cli
    ("/ci/artspace/.venv/lib/python3.11/site-packages/pytest/__main__.py", None),  # tests: no command to record
    ("/usr/lib/python3/ipykernel_launcher.py", None),  # a notebook: its settings are the record
])
def test_a_sidecar_records_the_artspace_command_and_nothing_else(monkeypatch, argv0, expected):
    from artspace.images import command_line

    monkeypatch.setattr("sys.argv", [argv0, "transfer", "a b.png", "s.png"])
    assert command_line() == expected
