"""Any user image to a (64, 64, 3) uint8 model input, or an ImageError with a sentence."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashdemo.data import images
from hashdemo.data.images import MAX_PIXELS, ImageError, load_image


def save(image: Image.Image, path: Path, **params) -> Path:
    image.save(path, **params)
    return path


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: list[bytes]) -> bytes:
    """A minimal PNG written by hand (filter type 0 on every row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"".join(b"\x00" + row for row in rows))
    chunks = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def with_header_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with IHDR claiming width x height, CRC recomputed (no pixels allocated)."""
    patched = bytearray(png)
    assert patched[12:16] == b"IHDR"
    patched[16:24] = struct.pack(">II", width, height)
    patched[29:33] = struct.pack(">I", zlib.crc32(bytes(patched[12:29])))
    return bytes(patched)


def check_model_image(out: np.ndarray) -> None:
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8


def assert_close(region: np.ndarray, colour: tuple[int, int, int], tol: int) -> None:
    diff = np.abs(region.reshape(-1, 3).astype(int) - np.array(colour)).max()
    assert diff <= tol, f"max channel difference {diff} from {colour}"


# ----------------------------------------------------------------------------- accepted inputs


def test_16_bit_greyscale_png(tmp_path: Path) -> None:
    values = np.zeros((64, 64), np.uint16)
    values[:, 32:] = 65535
    values[20:44, 20:28] = 32768  # half scale -> about 128
    path = save(Image.fromarray(values), tmp_path / "grey16.png")
    assert Image.open(path).mode == "I;16"  # the file really is 16-bit
    out = load_image(path)
    check_model_image(out)
    assert_close(out[:, :16], (0, 0, 0), 1)
    assert_close(out[:, 40:], (255, 255, 255), 1)
    assert_close(out[24:40, 22:26], (128, 128, 128), 1)


def test_dark_16_bit_png_stays_dark(tmp_path: Path) -> None:
    values = np.full((64, 64), 200, np.uint16)  # 200 / 65535 of full scale: 0.08 in 8 bits
    out = load_image(save(Image.fromarray(values), tmp_path / "dark16.png"))
    assert_close(out, (0, 0, 0), 1)


def test_16_bit_rgb_png(tmp_path: Path) -> None:
    # 48-bit RGB written by hand (Pillow cannot save it): one colour per half, 16 bits per channel
    left = struct.pack(">HHH", 65535, 0, 0)  # red
    right = struct.pack(">HHH", 0, 32896, 65535)  # 0x8080 -> 128 in 8 bits; blue
    rows = [left * 32 + right * 32 for _ in range(64)]
    path = tmp_path / "rgb16.png"
    path.write_bytes(raw_png(64, 64, 16, 2, rows))
    out = load_image(path)
    check_model_image(out)
    assert_close(out[:, :28], (255, 0, 0), 1)
    assert_close(out[:, 36:], (0, 128, 255), 1)


def test_rgba_png_transparent_pixels_become_black(tmp_path: Path) -> None:
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[:, :32] = (255, 0, 0, 255)  # opaque red
    rgba[:, 32:] = (255, 255, 255, 0)  # fully transparent white
    out = load_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png"))
    check_model_image(out)
    assert_close(out[:, :28], (255, 0, 0), 1)
    assert_close(out[:, 36:], (0, 0, 0), 1)


def test_greyscale_png(tmp_path: Path) -> None:
    out = load_image(save(Image.new("L", (64, 64), 200), tmp_path / "grey.png"))
    check_model_image(out)
    assert_close(out, (200, 200, 200), 1)


def palette_image() -> Image.Image:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([0, 200, 0, 0, 0, 220] + [0] * (3 * 254))  # index 0 green, index 1 blue
    image.paste(1, (32, 0, 64, 64))
    return image


def test_palette_png(tmp_path: Path) -> None:
    path = save(palette_image(), tmp_path / "palette.png")
    assert Image.open(path).mode == "P"
    out = load_image(path)
    check_model_image(out)
    assert_close(out[:, :28], (0, 200, 0), 1)
    assert_close(out[:, 36:], (0, 0, 220), 1)


def test_palette_png_with_transparent_index(tmp_path: Path) -> None:
    out = load_image(save(palette_image(), tmp_path / "palette_t.png", transparency=1))
    assert_close(out[:, :28], (0, 200, 0), 1)
    assert_close(out[:, 36:], (0, 0, 0), 1)  # the transparent blue index is composited onto black


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = save(Image.new("CMYK", (64, 64), (255, 0, 0, 0)), tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    out = load_image(path)
    check_model_image(out)
    assert_close(out, (0, 255, 255), 8)  # pure cyan ink is RGB cyan


def test_animated_gif_uses_the_first_frame(tmp_path: Path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (64, 64), colour) for colour in colours]
    path = save(frames[0], tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(path), "n_frames", 1) == 3
    out = load_image(path)
    check_model_image(out)
    assert_close(out, colours[0], 2)
    # the same from bytes, after something else moved the file to its last frame
    opened = images.open_image(path.read_bytes())
    opened.seek(2)
    assert_close(images.to_model_image(opened), colours[0], 2)


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    # Stored landscape 64 wide x 32 high, grey, with a white marker in the stored top-left 16x16.
    stored = np.full((32, 64, 3), 100, np.uint8)
    stored[:16, :16] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: display rotated 90 degrees clockwise
    path = save(Image.fromarray(stored), tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = load_image(path)
    check_model_image(out)
    # Displayed: portrait 32 wide x 64 high; stored (x, y) -> (31 - y, x), so the marker lands at
    # x in [16, 32), y in [0, 16). Padding to 64x64 adds 16 black columns on each side.
    assert_close(out[:, :14], (0, 0, 0), 2)  # left padding: the image is portrait now
    assert_close(out[:, 50:], (0, 0, 0), 2)  # right padding
    assert_close(out[2:14, 34:46], (255, 255, 255), 12)  # the marker, top right of the content
    assert_close(out[2:14, 18:30], (100, 100, 100), 12)  # top left of the content is grey
    assert_close(out[20:62, 18:46], (100, 100, 100), 12)


def test_one_pixel_image(tmp_path: Path) -> None:
    out = load_image(save(Image.new("RGB", (1, 1), (10, 20, 30)), tmp_path / "dot.png"))
    check_model_image(out)
    assert_close(out, (10, 20, 30), 1)


@pytest.mark.parametrize("size", [(64, 32), (100, 50)])
def test_non_square_image_is_padded_with_black(size: tuple[int, int], tmp_path: Path) -> None:
    # a wide white image: after padding to a square it fills the middle half of the rows
    out = load_image(save(Image.new("RGB", size, (255, 255, 255)), tmp_path / "wide.png"))
    check_model_image(out)
    assert_close(out[:13], (0, 0, 0), 1)
    assert_close(out[19:45], (255, 255, 255), 1)
    assert_close(out[51:], (0, 0, 0), 1)


def test_bytes_and_path_give_the_same_array(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = save(Image.fromarray(rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)), tmp_path / "noise.png")
    np.testing.assert_array_equal(load_image(path), load_image(path.read_bytes()))


# ----------------------------------------------------------------------------- refusals


def assert_sentence(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message[:1].isupper() and message.rstrip().endswith("."), message
    assert len(message.split()) >= 5, message
    return message


def small_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert "empty" in assert_sentence(error)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n" * 20)
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert "not an image" in assert_sentence(error)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as error:
        load_image(tmp_path / "nowhere.png")
    assert "nowhere.png" in assert_sentence(error)


def test_truncated_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert "truncated" in assert_sentence(error)


def test_header_over_max_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    width, height = 10_000, MAX_PIXELS // 10_000 + 1  # just over the limit
    path = tmp_path / "big.png"
    path.write_bytes(with_header_size(small_png(), width, height))
    assert Image.open(path).size == (width, height)  # the patched header is valid for PIL
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert f"{width}x{height}" in assert_sentence(error)


def test_header_far_over_max_pixels_is_an_image_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(with_header_size(small_png(), 20_000, 20_000))  # 400 megapixels
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert_sentence(error)


def test_file_over_max_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "padded.png"
    path.write_bytes(small_png() + b"\0" * 2**20)  # a valid PNG with trailing bytes, just over 1 MiB
    check_model_image(load_image(path))  # accepted under the real limit
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 2**20)
    with pytest.raises(ImageError) as error:
        load_image(path)
    assert "1 MB" in assert_sentence(error)
