"""Writes `dummy_data/animal_photos/`: the bundled class-folder sample.

Run `python tests/make_dummy_data.py` to recreate it; the output is
deterministic, and the files are committed so that users and CI need no script.
The sample is small on purpose but covers what real folders hold: JPEG, PNG, a
PNG named `.jpg`, a grayscale JPEG, a BMP, an EXIF-rotated JPEG and a hidden
`.DS_Store`.
"""

from __future__ import annotations

import io
import pathlib

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent / "dummy_data"


def photo(seed: int, width: int = 64, height: int = 48) -> Image.Image:
  """A photo-like RGB image: smooth gradients plus a little noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  base = rng.uniform(0, 255, size=3)
  slope = rng.uniform(-2, 2, size=(3, 2))
  img = np.stack(
      [base[c] + slope[c, 0] * x + slope[c, 1] * y for c in range(3)], axis=-1)
  img += rng.normal(0, 8, size=img.shape)
  return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(img: Image.Image, **kwargs) -> bytes:
  buf = io.BytesIO()
  img.save(buf, "JPEG", quality=90, **kwargs)
  return buf.getvalue()


def make_animal_photos(root: pathlib.Path) -> None:
  seed = 0
  for cls in ("cat", "dog", "bird"):
    folder = root / cls
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(4):
      seed += 1
      img = photo(seed)
      name = f"{cls}_{i}"
      if cls == "cat" and i == 1:  # A PNG named .jpg.
        img.save(folder / f"{name}.jpg", "PNG")
      elif cls == "dog" and i == 2:  # Grayscale JPEG.
        img.convert("L").save(folder / f"{name}.jpeg", "JPEG", quality=90)
      elif cls == "bird" and i == 3:  # A BMP (converted to PNG by the build).
        img.save(folder / f"{name}.bmp", "BMP")
      elif cls == "bird" and i == 1:  # Stored sideways, EXIF says rotate.
        exif = Image.Exif()
        exif[0x0112] = 6  # Rotate 90 CW to display.
        (folder / f"{name}.jpg").write_bytes(
            jpeg_bytes(img.transpose(Image.Transpose.ROTATE_90), exif=exif))
      elif i == 3:
        img.save(folder / f"{name}.png", "PNG")
      else:
        (folder / f"{name}.jpg").write_bytes(jpeg_bytes(img))
  (root / "dog" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
  (root / "labels.txt").write_text("cat\ndog\nbird\n")


if __name__ == "__main__":
  make_animal_photos(ROOT / "animal_photos")
  print(f"wrote {ROOT / 'animal_photos'}")
