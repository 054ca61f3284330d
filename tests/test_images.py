"""The loader: formats, orientation, huge scans, and every kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from artspace import images
from artspace.errors import UnreadableImage
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
