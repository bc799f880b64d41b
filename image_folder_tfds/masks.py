"""Segmentation masks: COCO instance masks and label images of folder pairs.

COCO `segmentation`s are parsed and checked by the reader (`parse_coco`),
packed into a compact blob (`pack`), and spilled to a temporary file
(`SegmentationStore`): an object keeps only the blob's offset, so a 200k-image
file with polygons does not hold its polygons in memory. A worker reads the
blobs back once it knows the image (`instance_masks`), decodes them with
`pycocotools` exactly as the COCO API's `annToMask` does, applies the image's
own transform (EXIF orientation, `max_side` resize, nearest neighbour) and
PNG-encodes each mask (values 0 and 1, one channel), as Model Garden's COCO
converter does.

The size a mask is decoded at is the annotation's: an RLE's `size`, for
polygons the image's `width`/`height` in the COCO file (the display size when
the file gives none). A mask of the image's size as displayed is taken as
drawn on the displayed image, like boxes, and only resized; one of the size
the file stores before EXIF orientation (it differs when the orientation
turns the image by 90 degrees) is turned the way the image is. Any other size
rejects the object.

Folder-pair label images (`semantic_mask`) are checked (single channel, size,
values below the number of classes), transformed the same way and stored as
single-channel PNG.

No TensorFlow here: the image workers import this module.
"""

from __future__ import annotations

import array
import io
import struct
import sys

import numpy as np
from PIL import Image

from image_folder_tfds import records

# Blob kinds: polygons (pixels), uncompressed RLE (counts list), compressed
# RLE (COCO's counts string), polygons normalized to [0, 1] of the image's
# width and height (YOLO segmentation, Label Studio's percentages / 100).
POLYGONS, RLE_COUNTS, RLE_STRING = b"P", b"U", b"C"
NORMALIZED_POLYGONS = b"N"
_HEADER = struct.Struct("<cIII")  # kind, height, width, n (parts / counts / bytes).
# PIL transposes of EXIF orientations 2..8, as `ImageOps.exif_transpose`.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_TURNS = {5, 6, 7, 8}  # Orientations that swap width and height.


class MaskError(ValueError):
  """A segmentation or mask that cannot be stored; the message says why."""


# --- Parsing (in the reader) --------------------------------------------------


def parse_coco(segmentation) -> bytes | None:
  """A COCO `segmentation` as a blob (`pack`), checked; None when empty.

  Polygons: a list of parts, each a flat [x1, y1, x2, y2, ...] list of at
  least 3 points. RLE: {"size": [h, w], "counts": [...] or "..."}, whose
  counts must sum to h * w. Raises `MaskError` naming the problem.
  """
  if segmentation is None or segmentation == []:
    return None
  if isinstance(segmentation, list):
    return pack_polygons(check_polygons(segmentation))
  if isinstance(segmentation, dict):
    size = segmentation.get("size")
    if (not isinstance(size, list) or len(size) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0
        for v in size)):
      raise MaskError(
          f"segmentation size must be [height, width] (positive integers),"
          f" got {size!r}")
    h, w = size
    counts = segmentation.get("counts")
    if isinstance(counts, list):
      if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                 for c in counts):
        raise MaskError("segmentation counts must be non-negative integers")
      total = sum(counts)
      if total != h * w:
        raise MaskError(
            f"segmentation RLE counts sum to {total}, not height x width ="
            f" {h} x {w} = {h * w}")
      return pack_rle_counts(h, w, counts)
    if isinstance(counts, str):
      data = counts.encode("ascii", "replace")
      total = int(rle_string_counts(data).sum())
      if total != h * w:
        raise MaskError(
            f"segmentation RLE counts sum to {total}, not height x width ="
            f" {h} x {w} = {h * w}")
      return _HEADER.pack(RLE_STRING, h, w, len(data)) + data
    raise MaskError(
        f"segmentation counts must be a list or a string, got {counts!r}")
  raise MaskError(
      "segmentation must be a list of polygons or an RLE dict, got"
      f" {type(segmentation).__name__}")


def check_polygons(segmentation: list, field: str = "segmentation"
                   ) -> list[array.array]:
  """Polygon parts, each a flat [x1, y1, x2, y2, ...] list of at least 3
  finite points, as `array.array("d")`s. Raises `MaskError` naming the part.
  """
  parts = []
  for i, part in enumerate(segmentation):
    if not isinstance(part, list):
      raise MaskError(f"{field}[{i}] is not a list of coordinates")
    if len(part) % 2:
      raise MaskError(
          f"{field}[{i}] has {len(part)} numbers: expected x, y pairs")
    if len(part) < 6:
      raise MaskError(
          f"{field}[{i}] is a polygon of {len(part) // 2} points:"
          " at least 3 are needed")
    try:
      coords = array.array("d", part)
    except TypeError:
      coords = None
    if (coords is None or not np.isfinite(np.frombuffer(coords)).all()
        or bool in set(map(type, part))):
      bad = next((v for v in part if isinstance(v, bool) or not isinstance(
          v, (int, float)) or not np.isfinite(v)), None)
      raise MaskError(f"{field}[{i}] holds {bad!r}: not a finite number")
    parts.append(coords)
  return parts


def rle_string_counts(data: bytes) -> np.ndarray:
  """The counts of COCO's compressed RLE string (pycocotools' rleFrString).

  Checked here, since pycocotools decodes a string whose counts do not sum to
  h * w without complaint (into uninitialized memory). Each count is a run of
  characters (6 bits each: 5 of value, least significant first, and a
  continuation bit; the last one's 0x10 bit is the sign); from the fourth
  count on, each is stored as the difference to the count two before.
  """
  c = np.frombuffer(data, np.uint8).astype(np.int64) - 48
  if c.size == 0:
    return c
  if ((c < 0) | (c >= 64)).any():
    p = int(np.flatnonzero((c < 0) | (c >= 64))[0])
    raise MaskError(
        f"segmentation counts string holds {chr(data[p])!r} (byte {p}):"
        " not a COCO RLE character")
  more = (c & 0x20) != 0
  if more[-1]:
    raise MaskError("segmentation counts string ends inside a number")
  ends = np.flatnonzero(~more)
  starts = np.concatenate(([0], ends[:-1] + 1))
  lengths = ends - starts + 1
  if lengths.max() > 12:  # 60 bits: more than any count of an image.
    raise MaskError("segmentation counts string holds a number too large")
  k = np.arange(c.size) - np.repeat(starts, lengths)
  x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
  negative = (c[ends] & 0x10) != 0
  x[negative] -= np.left_shift(1, 5 * lengths[negative])
  counts = x.copy()
  # counts[i] = x[i] + counts[i - 2] for i > 2.
  counts[3::2] = np.cumsum(x[1::2])[1:]
  counts[4::2] = np.cumsum(x[2::2])[1:]
  if (counts < 0).any():
    raise MaskError(
        f"segmentation counts string gives a negative count"
        f" {int(counts[counts < 0][0])}")
  return counts


def pack_polygons(parts, *, normalized: bool = False) -> bytes:
  """Parts are lists of numbers or `array.array("d")`s: pixels, or with
  `normalized`, fractions of the image's width (x) and height (y)."""
  parts = [array.array("d", p) for p in parts]  # Copies: byteswap below.
  if sys.byteorder != "little":
    for p in parts:
      p.byteswap()
  kind = NORMALIZED_POLYGONS if normalized else POLYGONS
  return b"".join((
      _HEADER.pack(kind, 0, 0, len(parts)),
      struct.pack(f"<{len(parts)}I", *(len(p) for p in parts)),
      *(p.tobytes() for p in parts)))


def pack_rle_counts(h: int, w: int, counts) -> bytes:
  arr = np.asarray(counts, dtype="<u4")
  return _HEADER.pack(RLE_COUNTS, h, w, len(arr)) + arr.tobytes()


def unpack(blob: bytes):
  """(kind, (h, w) or None, payload): polygons as lists, RLE as pycocotools'."""
  kind, h, w, n = _HEADER.unpack_from(blob)
  at = _HEADER.size
  if kind in (POLYGONS, NORMALIZED_POLYGONS):
    lengths = struct.unpack_from(f"<{n}I", blob, at)
    at += 4 * n
    coords = struct.unpack_from(f"<{sum(lengths)}d", blob, at)
    parts, start = [], 0
    for length in lengths:
      parts.append(list(coords[start:start + length]))
      start += length
    return kind, None, parts
  if kind == RLE_COUNTS:
    counts = np.frombuffer(blob, dtype="<u4", count=n, offset=at)
    return kind, (h, w), counts.tolist()
  return kind, (h, w), blob[at:at + n]


def decode(blob: bytes, height: int, width: int) -> np.ndarray:
  """The HxW uint8 (0/1) mask, as pycocotools' COCO.annToMask decodes it.

  `height`, `width` are used by polygons only (normalized ones are scaled
  to them first); an RLE has its own size.
  """
  from pycocotools import mask as mask_utils  # pylint: disable=g-import-not-at-top
  kind, size, payload = unpack(blob)
  if kind == NORMALIZED_POLYGONS:
    scale = np.array([float(width), float(height)])
    payload = [(np.asarray(p, np.float64).reshape(-1, 2) * scale).ravel()
               .tolist() for p in payload]
    kind = POLYGONS
  if kind == POLYGONS:
    rle = mask_utils.merge(mask_utils.frPyObjects(payload, height, width))
  elif kind == RLE_COUNTS:
    rle = mask_utils.frPyObjects(
        {"size": list(size), "counts": payload}, *size)
  else:
    rle = {"size": list(size), "counts": payload}
  return mask_utils.decode(rle)


# --- The spill file (scan: write; workers: read) -----------------------------


class SegmentationStore(records.SpillFile):
  """The objects' segmentations, spilled by the COCO scan (a `SpillFile`).

  Records hold its path (`ImageRecord.segmentation_file`, a
  `records.SpillPath` that keeps the file alive) and each object the offset
  of its blob (`ObjectRecord.segmentation`); the workers read them with
  `read_blob`.
  """

  def __init__(self):
    super().__init__("my_images_segmentation_")


read_blob = records.read_blob


class LazyStore:
  """A `SegmentationStore` made at the first segmentation (a scan of
  boxes only makes no temporary file). Readers `add` blobs (`parse_coco`,
  `pack_polygons`) and give each object the offset; records take `path`."""

  def __init__(self):
    self.store: SegmentationStore | None = None

  def add(self, blob: bytes) -> int:
    if self.store is None:
      self.store = SegmentationStore()
    return self.store.add(blob)

  def get(self, offset: int) -> bytes:
    return self.store.get(offset)

  @property
  def path(self) -> str:
    """The file's path (a `records.SpillPath`), "" before any blob."""
    return self.store.path if self.store is not None else ""

  def finish(self) -> None:
    if self.store is not None:
      self.store.finish()


# --- Masks of one image (in the worker) ---------------------------------------


def encode_png(mask: np.ndarray) -> bytes:
  """One-channel 8-bit PNG of an HxW uint8 array."""
  buf = io.BytesIO()
  # Pillow's default zlib level: on 256 px polygon masks, 1.5x smaller than
  # level 1 for about the same time.
  Image.fromarray(mask, "L").save(buf, "PNG")
  return buf.getvalue()


def empty_png(height: int, width: int) -> bytes:
  """The mask of an object without a segmentation (all 0)."""
  return encode_png(np.zeros((height, width), np.uint8))


def complete(pngs: tuple[bytes, ...], n: int, height: int, width: int
             ) -> tuple[bytes, ...]:
  """`pngs`, or n empty masks for an image none of whose objects has one."""
  if len(pngs) == n:
    return tuple(pngs)
  if pngs:
    raise ValueError(f"{len(pngs)} masks for {n} objects")
  return (empty_png(height, width),) * n if n else ()


def stored_size(display: tuple[int, int], orientation: int | None):
  """(h, w) of the file's pixels before EXIF orientation, from the display's."""
  h, w = display
  return (w, h) if orientation in _TURNS else (h, w)


def to_stored(mask: np.ndarray, *, display: tuple[int, int],
              orientation: int | None, out: tuple[int, int]) -> np.ndarray:
  """`mask` (HxW) in the stored image's pixels: turned, then resized.

  `display` and `out` are (height, width) of the image as displayed and as
  stored. A mask of the display size is only resized; one of the pre-EXIF
  size (a 90-degree orientation) is transposed as `ImageOps.exif_transpose`
  turns the image. Raises `MaskError` for any other size.
  """
  size = mask.shape[:2]
  turn = False
  if size != tuple(display):
    raw = stored_size(display, orientation)
    if orientation in _TURNS and size == raw:
      turn = True
    else:
      hint = (f", {raw[0]}x{raw[1]} before its EXIF orientation"
              if raw != tuple(display) else "")
      raise MaskError(
          f"mask is {size[0]}x{size[1]} (height x width), the image"
          f" {display[0]}x{display[1]} as displayed{hint}")
  if not turn and size == tuple(out):
    return mask
  img = Image.fromarray(mask)
  if turn:
    img = img.transpose(_TRANSPOSE[orientation])
  if img.size != (out[1], out[0]):
    img = img.resize((out[1], out[0]), Image.Resampling.NEAREST)
  return np.asarray(img)


def instance_masks(record, image, objects):
  """(kept objects, one PNG per kept object, problems) of one image.

  `objects` are the checked objects of `record` (`annotations.finalize`); an
  object whose mask cannot be stored is dropped with a "rejected" problem.
  Objects without a segmentation get an empty mask. Nothing is done (no
  masks) when no object has a segmentation.
  """
  if not record.segmentation_file or all(o.segmentation < 0 for o in objects):
    return objects, (), []
  display = (image.display_height, image.display_width)
  out = (image.height, image.width)
  declared = (record.size[1], record.size[0]) if record.size else display
  kept, pngs, problems = [], [], []
  empty = None
  with open(record.segmentation_file, "rb") as f:
    for index, obj in enumerate(objects):
      if obj.segmentation < 0:
        if empty is None:
          empty = empty_png(*out)
        kept.append(obj)
        pngs.append(empty)
        continue
      try:
        mask = decode(records.read_at(f, obj.segmentation), *declared)
        mask = to_stored(mask, display=display, orientation=image.orientation,
                         out=out)
      except (MaskError, ValueError) as e:  # ValueError: pycocotools' own.
        item = f"object {obj.id}" if obj.id else f"object #{index}"
        problems.append(records.Problem(
            file=record.source, item=f"{record.file_name}: {item}",
            reason=f"segmentation: {e}: object not written",
            split=record.split, counts_as_input=False))
        continue
      kept.append(obj)
      pngs.append(encode_png(np.ascontiguousarray(mask)))
  return tuple(kept), tuple(pngs), problems


_MASK_MODES = {"L", "P", "1", "I", "I;16", "I;16B", "I;16L"}


def semantic_mask(record, image) -> bytes:
  """The label image of `record` as a one-channel PNG of the stored size.

  Raises `MaskError`: not an image, not single-channel, another size than
  the image, or a value that is not a class index (< `record.mask_classes`).
  """
  try:
    with open(record.mask_path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise MaskError(f"mask {record.mask_path}: cannot read: {e.strerror or e}"
                    ) from None
  try:
    img = Image.open(io.BytesIO(data))
    img.load()
  except (OSError, SyntaxError, ValueError, EOFError) as e:
    raise MaskError(f"mask {record.mask_path}: not a readable image: {e}"
                    ) from None
  if img.mode not in _MASK_MODES:
    raise MaskError(
        f"mask {record.mask_path} has mode {img.mode} ({len(img.getbands())}"
        " channels): a label image has one channel of class indices")
  arr = np.asarray(img)
  if arr.dtype == bool:
    arr = arr.astype(np.uint8)
  top = int(arr.max(initial=0))
  if top >= record.mask_classes:
    where = np.argwhere(arr == top)[0]
    raise MaskError(
        f"mask {record.mask_path} has the value {top} (at row {where[0]},"
        f" column {where[1]}): there are {record.mask_classes} classes,"
        f" values 0..{record.mask_classes - 1}")
  arr = arr.astype(np.uint8)
  try:
    arr = to_stored(arr, display=(image.display_height, image.display_width),
                    orientation=image.orientation,
                    out=(image.height, image.width))
  except MaskError as e:
    raise MaskError(f"mask {record.mask_path}: {e}") from None
  return encode_png(np.ascontiguousarray(arr))
