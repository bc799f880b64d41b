"""Images are stored faithfully: kept when they can be, converted when not."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import helpers
from image_folder_tfds import MyImagesConfig
from image_folder_tfds import images


def expected_rgb(data: bytes) -> np.ndarray:
  """What the stored image must decode to: Pillow's view of the file, as RGB,
  first frame, EXIF orientation applied, 16-bit scaled to 8."""
  img = Image.open(io.BytesIO(data))
  img = Image.Image.transpose(img, Image.Transpose.ROTATE_270) if (
      img.getexif().get(0x0112) == 6) else img
  if img.mode.startswith("I"):
    arr = np.asarray(img).astype(np.float64) * 255 / 65535
    img = Image.fromarray(np.rint(arr).astype(np.uint8), "L")
  return np.asarray(img.convert("RGB")).astype(int)


def variants() -> dict[str, bytes]:
  base = helpers.photo(3, 36, 24)
  rgba = base.convert("RGBA")
  rgba.putalpha(128)
  exif = Image.Exif()
  exif[0x0112] = 6
  gif = io.BytesIO()
  base.save(gif, "GIF", save_all=True,
            append_images=[helpers.photo(4, 36, 24)], duration=100)
  tiff = io.BytesIO()
  base.save(tiff, "TIFF", save_all=True, append_images=[helpers.photo(5, 36, 24)])
  # A uint16 array is an "I;16" image (Pillow 13 refuses the mode argument).
  gray16 = Image.fromarray(
      np.asarray(base.convert("L")).astype(np.uint16) * 257)
  assert gray16.mode == "I;16"
  return {
      "jpeg_rgb.jpg": helpers.encode(base, "JPEG"),
      "jpeg_gray.jpg": helpers.encode(base.convert("L"), "JPEG"),
      "jpeg_cmyk.jpg": helpers.encode(base.convert("CMYK"), "JPEG"),
      "png_named_jpg.jpg": helpers.encode(base, "PNG"),
      "png_rgba.png": helpers.encode(rgba, "PNG"),
      "png_palette.png": helpers.encode(base.convert("P"), "PNG"),
      "png_16bit.png": helpers.encode(gray16, "PNG"),
      "rotated.jpg": helpers.encode(
          base.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif),
      "bitmap.bmp": helpers.encode(base, "BMP"),
      "animated.gif": gif.getvalue(),
      "pages.tiff": tiff.getvalue(),
      "photo.webp": helpers.encode(base, "WEBP", lossless=True),
  }


KEPT = {"jpeg_rgb.jpg", "jpeg_gray.jpg", "png_named_jpg.jpg", "png_rgba.png"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("formats")
  files = variants()
  for name, data in files.items():
    (tmp / "in" / "a").mkdir(parents=True, exist_ok=True)
    (tmp / "in" / "a" / name).write_bytes(data)
  config = MyImagesConfig(name="formats", split_fractions={"train": 1.0})
  builder = helpers.build(tmp / "in", tmp / "out", config=config)
  return files, builder


def test_every_format_decodes_to_declared_shape(built):
  files, builder = built
  ds = builder.as_dataset(split="train",
                          decoders={"image": tfds.decode.SkipDecoding()})
  stored = {ex["file_name"].decode(): ex for ex in tfds.as_numpy(ds)}
  assert set(stored) == {f"a/{n}" for n in files}
  for name, data in files.items():
    raw = stored[f"a/{name}"]["image"]
    decoded = tf.io.decode_image(raw, channels=3, expand_animations=False).numpy()
    want = expected_rgb(data)
    assert decoded.shape == want.shape == (24, 36, 3), name
    error = np.abs(decoded.astype(int) - want)
    if name.endswith(".jpg") and name not in KEPT:  # Re-encoded JPEG.
      assert error.mean() < 2 and error.max() <= 24, name
    elif name.endswith(".jpg"):  # Decoder rounding differences only.
      assert error.max() <= 6, name
    else:  # Lossless.
      assert error.max() == 0, name
    assert (stored[f"a/{name}"]["height"], stored[f"a/{name}"]["width"]) == (24, 36)
    if name in KEPT:
      assert raw == data, f"{name} must be stored unchanged"
    else:
      assert raw != data, f"{name} must be converted"
      fmt = Image.open(io.BytesIO(raw)).format
      assert fmt == ("JPEG" if name.startswith(("jpeg", "rotated")) else "PNG")


def test_conversions_are_reported(built):
  _, builder = built
  reasons = {}
  for p in helpers.report(builder)["problems"]:
    if p["kind"] == "converted":
      name = p["file"].rsplit("/", 1)[-1]
      reasons[name] = (reasons.get(name, "") + "; " + p["reason"]).strip("; ")
  assert set(reasons) == set(variants()) - KEPT
  assert reasons["rotated.jpg"] == "EXIF orientation 6 applied"
  assert "converted from GIF to PNG" in reasons["animated.gif"]
  assert "only the first is kept" in reasons["animated.gif"]
  assert "only the first is kept" in reasons["pages.tiff"]
  assert "converted from BMP to PNG" in reasons["bitmap.bmp"]
  assert "palette image converted to RGB" in reasons["png_palette.png"]
  assert "converted to 8-bit" in reasons["png_16bit.png"]
  assert "CMYK image converted to RGB" in reasons["jpeg_cmyk.jpg"]


def test_format_detected_from_content_not_extension():
  png_named_jpg = helpers.encode(helpers.photo(1), "PNG")
  loaded = images.load_image(png_named_jpg, images.ImageOptions())
  assert loaded.format == "png" and loaded.data == png_named_jpg


def test_keep_bytes_false_checks_but_returns_no_bytes():
  data = helpers.encode(helpers.photo(1), "BMP")
  loaded = images.load_image(data, images.ImageOptions(keep_bytes=False))
  assert loaded.data is None and (loaded.width, loaded.height) == (40, 30)
  with pytest.raises(images.ImageError, match="corrupt image"):
    images.load_image(data[:-100], images.ImageOptions(keep_bytes=False))


def _full_decode_fails(data: bytes) -> bool:
  try:
    Image.open(io.BytesIO(data)).load()
    return False
  except (OSError, SyntaxError, ValueError, EOFError):
    return True


@pytest.mark.parametrize("variant", ["baseline", "progressive", "444", "gray"])
def test_reduced_jpeg_check_rejects_what_a_full_decode_rejects(variant):
  """The check decodes JPEGs at 1/8 scale in grayscale: same verdicts."""
  import random  # pylint: disable=g-import-not-at-top
  rng = random.Random(variant)
  kwargs = {"progressive": {"progressive": True},
            "444": {"subsampling": 0}}.get(variant, {})
  rejected = 0
  for seed in range(12):
    img = helpers.photo(seed, width=96, height=64)
    if variant == "gray":
      img = img.convert("L")
    data = helpers.encode(img, "JPEG", **kwargs)
    n = len(data)
    broken = [data[:cut] for cut in (n // 3, n // 2, n - 40)]
    for _ in range(6):  # A byte of the coded data replaced, or 30 cut out.
      b = bytearray(data)
      at = rng.randrange(n // 3, n - 2)
      b[at:at + rng.choice((1, 30))] = bytes([rng.randrange(256)])
      broken.append(bytes(b))
    for candidate in broken:
      try:
        images.load_image(candidate, images.ImageOptions())
        ours = False
      except images.ImageError:
        ours = True
      assert ours == _full_decode_fails(candidate)
      rejected += ours
  assert rejected >= 36  # Every truncated one, at least.
