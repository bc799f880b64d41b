"""Read, check and (only where needed) convert one image file.

`tfds.features.Image` stores whatever bytes it is given, so a truncated or
non-image file would only fail at training time. Every file is therefore
decoded once here. JPEG and PNG bytes that TensorFlow decodes to RGB as they
are, are stored unchanged; everything else is converted (see `load_image`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import os
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Modes whose bytes are kept: `tf.io.decode_image(..., channels=3)` and the
# TFDS decoders read them correctly. Everything else is converted.
_KEEP_MODES = {"JPEG": {"RGB", "L"}, "PNG": {"RGB", "RGBA", "L", "LA"}}
_ORIENTATION_TAG = 0x0112
JPEG_QUALITY = 95
_PNG_END = b"IEND\xaeB`\x82"  # The IEND chunk type and its CRC.


class ImageError(ValueError):
  """The file is not an image we can store; the message says why."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageOptions:
  max_side: int | None = None
  max_image_pixels: int = 89_478_485
  keep_bytes: bool = True  # False: check the file, but return no bytes.


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadedImage:
  data: bytes | None  # What to store (None when keep_bytes is False).
  format: str  # "jpeg" or "png": the format of `data`.
  source_format: str  # What the file holds, from its content ("BMP", ...).
  width: int  # Of the stored image.
  height: int
  display_width: int  # As displayed (EXIF orientation applied), before resize.
  display_height: int
  notes: tuple[str, ...] = ()  # What was changed, for the build report.
  # EXIF orientation applied (2..8), None when none was: masks are turned
  # the same way (masks.to_stored).
  orientation: int | None = None


def read_file(path: str, data_range: tuple[int, int] | None = None) -> bytes:
  """The bytes of the regular file `path` (`data_range`: (offset, length)
  of them only: an image inside a TFRecord or a spill file).

  Opened without blocking and checked before reading: a file replaced by a
  FIFO after the scan would otherwise block the build for ever, and a device
  (/dev/zero) would never end.
  """
  fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
  try:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
      raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    if not stat.S_ISREG(st.st_mode):
      raise OSError(errno.EINVAL,
                    "not a regular file (device, socket or pipe)", path)
    if data_range is not None:
      offset, length = data_range
      data = os.pread(fd, length, offset)
      if len(data) != length:
        raise OSError(errno.EIO, f"{length} bytes at offset {offset} expected,"
                      f" the file holds {len(data)} there (cut short?)", path)
      return data
    # O_NONBLOCK does not apply to regular files. Read to the end, even if
    # the file grew since `fstat`: usually one read and one empty read.
    chunks = [os.read(fd, st.st_size + 1)]
    while chunks[-1]:
      chunks.append(os.read(fd, 1 << 20))
    return chunks[0] if len(chunks) == 2 else b"".join(chunks)
  finally:
    os.close(fd)


@contextlib.contextmanager
def _own_pixel_limit():
  """Pillow's global bomb check is replaced by ours (`max_image_pixels`)."""
  old = Image.MAX_IMAGE_PIXELS
  Image.MAX_IMAGE_PIXELS = None
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)
      yield
  finally:
    Image.MAX_IMAGE_PIXELS = old


def load_image(data: bytes, options: ImageOptions) -> LoadedImage:
  """Checks `data` fully and returns what to store. Raises `ImageError`."""
  if not data:
    raise ImageError("empty file (0 bytes)")
  try:
    with _own_pixel_limit():
      img = Image.open(io.BytesIO(data))
      return _load(img, data, options)
  except ImageError:
    raise
  except UnidentifiedImageError:
    raise ImageError("not an image (Pillow cannot identify the format)")
  except (OSError, SyntaxError, ValueError, EOFError) as e:
    # Truncated data, bad checksums, broken headers.
    raise ImageError(f"corrupt image: {e}") from None
  except Image.DecompressionBombError as e:  # Defensive: limit is ours.
    raise ImageError(f"decompression bomb: {e}") from None


def _load(img: Image.Image, data: bytes, options: ImageOptions) -> LoadedImage:
  fmt = img.format or "unknown"
  width, height = img.size
  if width < 1 or height < 1:
    raise ImageError(f"{fmt} image has an empty size {width}x{height}")
  if width * height > options.max_image_pixels:
    raise ImageError(
        f"decompression bomb: {width}x{height} = {width * height:,} pixels is"
        f" more than max_image_pixels={options.max_image_pixels:,}"
    )
  notes = []
  n_frames = getattr(img, "n_frames", 1)
  if n_frames > 1 and fmt != "PNG":
    notes.append(f"{fmt} has {n_frames} frames: only the first is kept")
  orientation = _orientation(img)
  high_bit_depth = fmt == "PNG" and len(data) > 24 and data[24] == 16
  resize = options.max_side is not None and max(width, height) > options.max_side
  # Pillow decodes a PNG cut off after its pixel data (no IEND chunk) in
  # full, but TensorFlow's decoder refuses it ("Invalid PNG data") at
  # training time: such a file is re-encoded from the pixels read here.
  png_unended = fmt == "PNG" and _PNG_END not in data[-4096:]
  if png_unended:
    notes.append("PNG ends without its IEND chunk (cut off after the pixel"
                 " data): re-encoded")
  keep = (
      fmt in _KEEP_MODES
      and img.mode in _KEEP_MODES[fmt]
      and orientation in (1, None)
      and not high_bit_depth
      and not resize
      and not png_unended
  )
  if keep:
    # Decode everything once: catches truncated and corrupt files. For JPEG,
    # a reduced-size decode (DCT scaling) still reads every coded byte.
    # Grayscale output skips the colour IDCTs and conversion (~15% faster);
    # the entropy decoder still reads every block of every component.
    if fmt == "JPEG":
      img.draft("L", (max(1, width // 8), max(1, height // 8)))
    img.load()
    return LoadedImage(
        data=data if options.keep_bytes else None,
        format=fmt.lower(),
        source_format=fmt,
        width=width,
        height=height,
        display_width=width,
        display_height=height,
        notes=tuple(notes),
    )

  img.load()
  if orientation not in (1, None):
    img = ImageOps.exif_transpose(img)
    notes.append(f"EXIF orientation {orientation} applied")
  display_width, display_height = img.size
  img, mode_note = _to_storable_mode(img, high_bit_depth)
  if mode_note:
    notes.append(mode_note)
  if resize:
    scale = options.max_side / max(display_width, display_height)
    size = (
        max(1, round(display_width * scale)),
        max(1, round(display_height * scale)),
    )
    img = img.resize(size, Image.Resampling.LANCZOS)
    notes.append(
        f"resized from {display_width}x{display_height} to {size[0]}x{size[1]}"
    )
  out_format = "JPEG" if fmt == "JPEG" and img.mode in ("RGB", "L") else "PNG"
  if fmt not in ("JPEG", "PNG"):
    notes.append(f"converted from {fmt} to PNG")
  encoded = None
  if options.keep_bytes:
    buf = io.BytesIO()
    if out_format == "JPEG":
      # Full-resolution chroma: a second JPEG generation loses least.
      img.save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
      img.save(buf, "PNG")
    encoded = buf.getvalue()
  return LoadedImage(
      data=encoded,
      format=out_format.lower(),
      source_format=fmt,
      width=img.size[0],
      height=img.size[1],
      display_width=display_width,
      display_height=display_height,
      notes=tuple(notes),
      orientation=orientation if orientation not in (1, None) else None,
  )


def _orientation(img: Image.Image) -> int | None:
  if img.format == "JPEG" and "exif" not in img.info:
    # A JPEG's EXIF (APP1) comes before its image data, so it is known at
    # open: without it, skip `getexif()` (tens of us an image).
    return None
  try:
    value = img.getexif().get(_ORIENTATION_TAG)
  except Exception:  # pylint: disable=broad-except
    return None  # A broken EXIF block is not a broken image: ignore it.
  return value if isinstance(value, int) and 1 <= value <= 8 else None


def _to_storable_mode(
    img: Image.Image, high_bit_depth: bool
) -> tuple[Image.Image, str]:
  """Converts to 8-bit L, RGB or RGBA."""
  mode = img.mode
  if mode in ("RGB", "L", "RGBA", "LA") and not high_bit_depth:
    return img, ""
  if mode in ("RGB", "RGBA"):  # 16-bit colour PNG: Pillow already has 8 bits.
    return img, "16-bit PNG converted to 8 bits"
  if mode.startswith("I") or mode == "F":
    arr = np.asarray(img).astype(np.float64)
    if mode.startswith("I;16") or mode == "I" and arr.max(initial=0) > 255:
      arr = arr * 255.0 / 65535.0
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "L"), f"{mode} image converted to 8-bit grayscale"
  if mode == "P":
    target = "RGBA" if "transparency" in img.info else "RGB"
    return img.convert(target), f"palette image converted to {target}"
  if mode == "PA":
    return img.convert("RGBA"), "palette image converted to RGBA"
  if mode == "1":
    return img.convert("L"), "1-bit image converted to 8-bit grayscale"
  return img.convert("RGB"), f"{mode} image converted to RGB"
