"""`tf.train.Example` wire encoding of our examples, without TensorFlow.

The bytes TFDS writes for one example, from a plan of its features (`Plan`,
made once by `writing.plan_for` from the `FeaturesDict`: flat keys, types,
sequence depth, as TFDS names them), then plain protocol-buffer encoding. Map
entries are in the order `SerializeToString(deterministic=True)` gives
(`_map_order`), so shards are reproducible and equal to
`release.canonical_example` of TFDS's bytes.

TFDS's own path (`FeaturesDict.encode_example` then
`ExampleSerializer.serialize_example`: a NumPy array and a proto message per
field) costs ~400 us an example, this one ~30 us. This module imports neither
TensorFlow nor TFDS and a `Plan` is plain data, so the image workers
(`pipeline.Maker`) serialize the examples and the one build process only
writes them. `tests/test_writing.py` checks the bytes equal TFDS's, field by
field and shard by shard.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import struct
from typing import Any

import google_crc32c
import numpy as np

BYTES, FLOAT, INT = 1, 2, 3  # `Feature.kind` field numbers.

# Leaf types (`Leaf.type`): how a stored value is checked and encoded.
IMAGE, TEXT, CLASS_LABEL, BBOX, TENSOR = (
    "image", "text", "class_label", "bbox", "tensor")


class Unsupported(ValueError):
  """A feature (or a value) whose TFDS encoding is not planned here."""


@dataclasses.dataclass(frozen=True)
class Leaf:
  """What encoding a leaf feature needs to know of it (no TFDS object)."""

  type: str  # IMAGE, TEXT, CLASS_LABEL, BBOX or TENSOR.
  vector: bool = False  # A Tensor with a shape (a (1,) tensor is a vector).
  names: tuple[str, ...] = ()  # CLASS_LABEL: the class names.
  num_classes: int | None = None  # CLASS_LABEL.

  def str2int(self, name: str) -> int:
    """As TFDS's `ClassLabel.str2int`."""
    if self.names:
      if name not in self.names:
        raise ValueError(f"Invalid string class label {name}")
      return self.names.index(name)
    try:
      value = int(name)
    except ValueError:
      value = -1
    if not 0 <= value < (self.num_classes or 0):
      raise ValueError(f"Invalid string class label {name}")
    return value


@dataclasses.dataclass(frozen=True)
class Field:
  key: str  # Flat key, as TFDS writes it ("objects/keypoints/x").
  path: tuple[str, ...]  # Nested keys, with "" marking a Sequence level.
  kind: int  # BYTES, FLOAT or INT.
  leaf: Leaf
  width: int  # Values per leaf (4 for a BBox, n for a Tensor of shape (n,)).


@dataclasses.dataclass(frozen=True)
class Plan:
  """The stored fields of one `FeaturesDict` (`writing.plan_for`)."""

  fields: tuple[Field, ...]


_SMALL = [bytes((i,)) for i in range(128)]


def _varint(n: int) -> bytes:
  if 0 <= n < 128:
    return _SMALL[n]
  if n < 0:
    n &= 0xFFFFFFFFFFFFFFFF
  out = bytearray()
  while n > 0x7F:
    out.append((n & 0x7F) | 0x80)
    n >>= 7
  out.append(n)
  return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
  """A length-delimited field."""
  return _SMALL[number << 3 | 2] + _varint(len(payload)) + payload


def _map_order(a: str, b: str) -> int:
  """upb's deterministic map order: bytewise, but a prefix after the longer.

  Matching it makes our bytes equal to `SerializeToString(deterministic=True)`
  of the same Example (`release.canonical_example`).
  """
  a8, b8 = a.encode(), b.encode()
  n = min(len(a8), len(b8))
  if a8[:n] != b8[:n]:
    return -1 if a8[:n] < b8[:n] else 1
  return len(b8) - len(a8)


class Serializer:
  """Serializes the example dicts of one `Plan` to `tf.train.Example`s.

  Pickles as its plan (the tables are made again), so it crosses to the
  workers as plain data.
  """

  def __init__(self, plan: Plan):
    self.plan = plan
    slots = []  # (stored key, field, part): part "", "values" or "lengths".
    for f in plan.fields:
      if f.path.count("") <= 1:
        slots.append((f.key, f, ""))
      else:
        # Two sequence levels: TFDS stores a ragged tensor as flat values and
        # row lengths (example_serializer._add_ragged_fields).
        slots.append((f"{f.key}/ragged_flat_values", f, "values"))
        slots.append((f"{f.key}/ragged_row_lengths_0", f, "lengths"))
    slots.sort(key=functools.cmp_to_key(lambda x, y: _map_order(x[0], y[0])))
    self._slots = []
    for key, f, part in slots:
      key_field = _field(1, key.encode())
      kind = INT if part == "lengths" else f.kind
      depth = f.path.count("")
      # The entry of an empty sequence (class folders: no objects) is a
      # constant: computed once.
      outer = f.path[:f.path.index("")] if depth else None
      empty = _field(1, key_field + _field(2, _field(kind, b"")))
      self._slots.append((key_field, f, part, kind, depth, outer, empty))
    # Consecutive entries of one sequence (all "objects/..." keys): when the
    # sequence is empty in an example, they are one constant run of bytes.
    runs = []  # (outer, slots)
    for slot in self._slots:
      outer = slot[5]
      if runs and outer is not None and runs[-1][0] == outer:
        runs[-1][1].append(slot)
      else:
        runs.append((outer, [slot]))
    self._runs = [(outer, slots, b"".join(slot[6] for slot in slots))
                  for outer, slots in runs]

  def __reduce__(self):
    return (Serializer, (self.plan,))

  def serialize(self, example: dict) -> bytes:
    # The message is assembled from parts and joined once: an image's bytes
    # are copied once, not once per enclosing message.
    parts = []
    size = 0  # Of the Features message: the sum of its map entries.
    for outer, slots, empty in self._runs:
      if outer is not None and not _gather(example, outer, 0):
        parts.append(empty)
        size += len(empty)
        continue
      for key_field, f, part, kind, depth, _, _ in slots:
        values = (example[f.path[0]] if len(f.path) == 1
                  else _gather(example, f.path, 0))
        if not part:
          if depth == 0 and f.leaf.type == IMAGE:
            if not isinstance(values, bytes):
              raise Unsupported(
                  f"{f.key}: an image must be given as its encoded bytes,"
                  f" not {type(values).__name__}")
            payload = (b"\x0a", _varint(len(values)), values)
          else:
            payload = (_encode(f, values, depth),)
        elif part == "values":
          payload = (_encode(f, [v for row in values for v in row], 1),)
        else:
          payload = (_ints([len(row) for row in values]),)
        payload_len = sum(map(len, payload))
        payload_varint = _varint(payload_len)
        list_len = 1 + len(payload_varint) + payload_len  # The Feature.
        list_varint = _varint(list_len)
        entry_len = len(key_field) + 1 + len(list_varint) + list_len
        header = b"".join((
            b"\x0a", _varint(entry_len), key_field, b"\x12", list_varint,
            _SMALL[kind << 3 | 2], payload_varint))
        parts.append(header)
        parts.extend(payload)
        size += len(header) + payload_len
    return b"".join([b"\x0a", _varint(size), *parts])


def _encode(f: Field, values, depth: int) -> bytes:
  items = [values] if depth == 0 else values
  leaf = f.leaf
  if leaf.type == IMAGE:
    if not all(isinstance(v, bytes) for v in items):
      raise Unsupported(f"{f.key}: images must be given as encoded bytes")
    return b"".join(_field(1, v) for v in items)
  if f.kind == BYTES and f.width == 1 and not leaf.vector:
    return b"".join(_field(1, _to_bytes(v, f.key)) for v in items)
  if leaf.type == BBOX:
    flat = []
    for box in items:
      flat.extend(_check_bbox(box))
    return _floats(flat)
  if leaf.type == CLASS_LABEL:
    return _ints([_class_label(leaf, v) for v in items])
  if f.width != 1 or leaf.vector:
    items = [v for item in items for v in _vector(item, f)]
  if f.kind == BYTES:
    return b"".join(_field(1, _to_bytes(v, f.key)) for v in items)
  if f.kind == FLOAT:
    return _floats(items)
  return _ints([int(v) for v in items])


def _gather(value, path: tuple[str, ...], i: int):
  if i == len(path):
    return value
  step = path[i]
  if step == "":
    return [_gather(item, path, i + 1) for item in value]
  return _gather(value[step], path, i + 1)


def _vector(item, f: Field):
  values = list(item) if not isinstance(item, np.ndarray) else item.tolist()
  if f.width and len(values) != f.width:
    raise ValueError(f"{f.key}: expected {f.width} values, got {len(values)}")
  return values


def _to_bytes(v, key: str) -> bytes:
  if isinstance(v, bytes):
    return v
  if isinstance(v, str):
    return v.encode("utf-8")
  raise ValueError(f"{key}: expected text or bytes, got {type(v).__name__}")


def _floats(values) -> bytes:
  if not values:
    return b""
  return _field(1, struct.pack(f"<{len(values)}f", *values))


def _ints(values) -> bytes:
  if not values:
    return b""
  return _field(1, b"".join(_varint(int(v)) for v in values))


def _class_label(leaf: Leaf, v: Any) -> int:
  if isinstance(v, bytes):
    v = v.decode("utf-8")
  if isinstance(v, str):
    v = leaf.str2int(v)
  v = int(v)
  if leaf.num_classes is None:
    raise ValueError(
        "Trying to use ClassLabel feature with undefined number of class.")
  if not -1 <= v < leaf.num_classes:
    raise ValueError(
        f"Class label {v} greater than configured num_classes"
        f" {leaf.num_classes}")
  return v


def _check_bbox(box) -> tuple[float, float, float, float]:
  """TFDS's BBoxFeature checks: floats in [0, 1], min <= max."""
  ymin, xmin, ymax, xmax = box
  for c in (ymin, xmin, ymax, xmax):
    if not isinstance(c, (float, np.floating)) or not 0.0 <= c <= 1.0 or (
        math.isnan(c)):
      raise ValueError(
          f"BBox coordinates should be floats between 0 and 1. Got {box}.")
  if xmax < xmin or ymax < ymin:
    raise ValueError(f"BBox coordinates should have min <= max. Got {box}.")
  return ymin, xmin, ymax, xmax


# --- TFRecord framing ------------------------------------------------------

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8
TFRECORD_OVERHEAD = 16  # Bytes a TFRecord adds around each record.


def masked_crc(data) -> int:
  """TensorFlow's masked CRC-32C of `data` (crc32c.h; the TFRecord reader,
  `readers/tfrecord.py`, checks it the same way)."""
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
  """`data` as one record of a TFRecord file, the bytes
  `tf.io.TFRecordWriter.write` adds to the file: its length (8 bytes), the
  masked CRC of the length (4), the data, the masked CRC of the data (4).

  Made by the image workers, so the build process writes each example
  with one buffered `write` instead of TensorFlow's writer (~19 us an
  example there, ~6 this way; `shards.TfRecordWriter`).
  """
  length = _LENGTH.pack(len(data))
  return b"".join((length, _CRC.pack(masked_crc(length)), data,
                   _CRC.pack(masked_crc(data))))

