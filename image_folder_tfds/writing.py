"""Examples to shards fast and in bounded memory.

Fast `tf.train.Example` serialization of our examples, the bytes TFDS writes.

Profiling a 5k-image build (cProfile, `bench/`) showed TFDS's own path,
`FeaturesDict.encode_example` + `ExampleSerializer.serialize_example`
(`tensorflow_datasets/core/example_serializer.py`: a numpy array and a proto
message per field, ragged fields rebuilt through nested dicts), costing
~400 us per example in the one main process: 20 s for 50k images, more than
reading and checking the images on both cores. `Serializer` writes the same
protocol-buffer bytes directly (~40 us): a plan made once from the
`FeaturesDict` (flat keys, types, sequence depth, as TFDS names them), then
wire-format encoding. Map entries are in the order
`SerializeToString(deterministic=True)` gives (`_map_order`), so shards are
reproducible and equal to `release.canonical_example` of TFDS's bytes.

Only feature types whose TFDS encoding is plain are planned (Image given as
bytes, Text, ClassLabel, BBoxFeature, scalar/1-D Tensor, Sequence of these up
to two levels); `Serializer.for_features` returns None for anything else and
the builder keeps TFDS's own path; so does an example whose image is not
given as encoded bytes (`Unsupported` from `serialize`).
`tests/test_writing.py` checks the bytes equal TFDS's, field by field and
shard by shard.

TFDS has no hook for pre-serialized examples, so `passthrough` lets a
`Serialized` value through `encode_example` and `serialize_example` unchanged
while our build runs; any other value takes TFDS's path as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import heapq
import math
import os
import struct
import sys
import zlib
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

from image_folder_tfds import images
from image_folder_tfds import records
from image_folder_tfds import release

_BYTES, _FLOAT, _INT = 1, 2, 3  # Feature.kind field numbers.


@dataclasses.dataclass(frozen=True)
class Serialized:
  """A serialized `tf.train.Example`, passed through TFDS unchanged."""

  data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Reread:
  """A serialized example whose image bytes are read again from their file.

  `head + data + tail` is the serialized example; `data` are the bytes of
  the file at `path` as checked (CRC-32 `crc`). While the build runs
  (`bounded_shuffle_memory`), TFDS's shuffler keeps `head`, `tail` and the
  path, not `data`, and reads the file again when it writes the shard.
  """

  head: bytes
  data: bytes
  tail: bytes
  path: str
  crc: int

  def __len__(self) -> int:
    return len(self.head) + len(self.data) + len(self.tail)

  def join(self) -> bytes:
    return b"".join((self.head, self.data, self.tail))


class Unsupported(ValueError):
  """The features hold a type whose TFDS encoding is not planned here."""


@dataclasses.dataclass(frozen=True)
class _Field:
  key: str  # Flat key, as TFDS writes it ("objects/keypoints/x").
  path: tuple[str, ...]  # Nested keys, with "" marking a Sequence level.
  kind: int
  leaf: Any  # The leaf feature (for its own checks).
  width: int  # Values per leaf (4 for a BBox, n for a Tensor of shape (n,)).


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
  """Serializes example dicts of one `FeaturesDict` to `tf.train.Example`s."""

  def __init__(self, fields: list[_Field]):
    slots = []  # (stored key, field, part): part "", "values" or "lengths".
    for f in fields:
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
      kind = _INT if part == "lengths" else f.kind
      depth = f.path.count("")
      # The entry of an empty sequence (class folders: no objects) is a
      # constant: computed once.
      outer = f.path[:f.path.index("")] if depth else None
      empty = _field(1, key_field + _field(2, _field(kind, b"")))
      self._slots.append((key_field, f, part, kind, depth, outer, empty))
    # Consecutive entries of one sequence (all "objects/..." keys): when the
    # sequence is empty in an example, they are one constant run of bytes.
    self._runs = []  # (outer, slots, bytes of all their empty entries)
    for slot in self._slots:
      outer = slot[5]
      if self._runs and outer is not None and self._runs[-1][0] == outer:
        self._runs[-1][1].append(slot)
      else:
        self._runs.append((outer, [slot]))
    self._runs = [(outer, slots, b"".join(slot[6] for slot in slots))
                  for outer, slots in self._runs]

  @classmethod
  def for_features(cls, features) -> Serializer | None:
    try:
      return cls(list(_plan(features, "", ())))
    except Unsupported:
      return None

  def serialize(self, example: dict) -> bytes:
    # The message is assembled from parts and joined once: an image's bytes
    # are copied once, not once per enclosing message.
    parts, size = self._parts(example)
    return b"".join([b"\x0a", _varint(size), *parts])

  def serialize_around(self, example: dict,
                       data: bytes) -> tuple[bytes, bytes] | None:
    """The serialized example cut around the image bytes `data`.

    `head + data + tail == serialize(example)`, without copying `data`; None
    if `data` (the very object) is not the value of an image field.
    """
    parts, size = self._parts(example)
    for i, part in enumerate(parts):
      if part is data:
        return (b"".join([b"\x0a", _varint(size), *parts[:i]]),
                b"".join(parts[i + 1:]))
    return None

  def _parts(self, example: dict) -> tuple[list[bytes], int]:
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
          if depth == 0 and type(f.leaf) is tfds.features.Image:
            if not isinstance(values, bytes):
              # A path, an array or a PIL image: TFDS encodes those itself.
              raise Unsupported(f"{f.key}: image not given as encoded bytes")
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
    return parts, size


def _encode(f: _Field, values, depth: int) -> bytes:
  items = [values] if depth == 0 else values
  leaf = f.leaf
  if type(leaf) is tfds.features.Image:
    if not all(isinstance(v, bytes) for v in items):
      # A path, an array or a PIL image: TFDS encodes those itself.
      raise Unsupported(f"{f.key}: image not given as encoded bytes")
    return b"".join(_field(1, v) for v in items)
  vector = bool(getattr(leaf, "shape", ()))  # A (1,) tensor is a vector.
  if f.kind == _BYTES and f.width == 1 and not vector:
    return b"".join(_field(1, _to_bytes(v, f.key)) for v in items)
  if isinstance(leaf, tfds.features.BBoxFeature):
    flat = []
    for box in items:
      flat.extend(_check_bbox(box))
    return _floats(flat)
  if isinstance(leaf, tfds.features.ClassLabel):
    return _ints([_class_label(leaf, v) for v in items])
  if f.width != 1 or vector:
    items = [v for item in items for v in _vector(item, f)]
  if f.kind == _BYTES:
    return b"".join(_field(1, _to_bytes(v, f.key)) for v in items)
  if f.kind == _FLOAT:
    return _floats(items)
  return _ints([int(v) for v in items])


def _plan(feature, key: str, path: tuple[str, ...]):
  """Yields a `_Field` per stored key of `feature`."""
  f = tfds.features
  # Exact types: subclasses (Video, ...) encode their own way.
  ftype = type(feature)
  if ftype is f.FeaturesDict:
    for name, sub in feature.items():
      yield from _plan(sub, f"{key}/{name}" if key else name, path + (name,))
    return
  if ftype is f.Sequence:
    if feature._length is not None:  # pylint: disable=protected-access
      raise Unsupported(f"{key}: fixed-length Sequence")
    if path.count("") >= 2:
      raise Unsupported(f"{key}: Sequence nested more than twice")
    yield from _plan(feature.feature, key, path + ("",))
    return
  if ftype is f.Image:
    if np.dtype(feature.np_dtype) != np.uint8:
      raise Unsupported(f"{key}: {feature.np_dtype} image")
    yield _Field(key, path, _BYTES, feature, 1)
  elif ftype is f.ClassLabel:
    yield _Field(key, path, _INT, feature, 1)
  elif ftype is f.BBoxFeature:
    if str(feature.bbox_format) not in ("BBoxFormat.REL_YXYX", "REL_YXYX",
                                        "rel_yxyx"):
      raise Unsupported(f"{key}: bbox format {feature.bbox_format}")
    yield _Field(key, path, _FLOAT, feature, 4)
  elif ftype in (f.Text, f.Tensor, getattr(f, "Scalar", f.Tensor)):
    if isinstance(feature, f.Text) and feature.encoder is not None:
      raise Unsupported(f"{key}: Text with an encoder")
    shape = tuple(feature.shape)
    if len(shape) > 1 or (
        shape and shape[0] is None and path.count("")):
      raise Unsupported(f"{key}: Tensor of shape {shape}")
    dtype = np.dtype(feature.np_dtype)
    if dtype.kind in ("U", "S", "O"):
      kind = _BYTES
    elif dtype.kind == "f":
      kind = _FLOAT
    elif dtype.kind in ("i", "u", "b") and dtype != np.uint64:
      kind = _INT
    else:
      raise Unsupported(f"{key}: dtype {dtype}")
    if dtype.kind == "f" and dtype.itemsize > 4:
      raise Unsupported(f"{key}: dtype {dtype}")  # TFDS stores float32 only.
    width = 1 if not shape else (shape[0] or 0)  # 0: any length.
    yield _Field(key, path, kind, feature, width)
  else:
    raise Unsupported(f"{key}: {type(feature).__name__}")


def _gather(value, path: tuple[str, ...], i: int):
  if i == len(path):
    return value
  step = path[i]
  if step == "":
    return [_gather(item, path, i + 1) for item in value]
  return _gather(value[step], path, i + 1)


def _vector(item, f: _Field):
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


def _class_label(feature, v) -> int:
  if isinstance(v, bytes):
    v = v.decode("utf-8")
  if isinstance(v, str):
    v = feature.str2int(v)
  v = int(v)
  if not -1 <= v < feature.num_classes:
    raise ValueError(
        f"Class label {v} greater than configured num_classes"
        f" {feature.num_classes}")
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


@contextlib.contextmanager
def passthrough(features):
  """While active, `Serialized` examples go through TFDS unchanged.

  TFDS's `SplitBuilder` calls `features.encode_example` then
  `ExampleSerializer.serialize_example` on every example and has no way to
  accept one already serialized; both are wrapped for `Serialized` values
  only (the first on this `features` object alone). Any other example takes
  TFDS's serializer, whose map order varies between processes, and is then
  made canonical, so every example of the build is deterministic.
  """
  encode = features.encode_example
  cls = example_serializer.ExampleSerializer
  original = cls.serialize_example

  def encode_example(example):
    if isinstance(example, (Serialized, Reread)):
      return example
    return encode(example)

  def serialize_example(self, example):
    if isinstance(example, Serialized):
      return example.data
    if isinstance(example, Reread):
      # Not bytes: only our shuffler (`bounded_shuffle_memory`) takes it;
      # TFDS's own refuses anything but bytes, so nothing is written short.
      return example
    return release.canonical_example(original(self, example))

  features.encode_example = encode_example
  cls.serialize_example = serialize_example
  try:
    yield
  finally:
    cls.serialize_example = original
    del features.encode_example


# TFDS keeps up to 1 GB of serialized examples in memory before it spills them
# to 1,000 bucket files (`tensorflow_datasets/core/shuffle.py`, module constant
# `MAX_MEM_BUFFER_SIZE`), on top of TensorFlow's own ~0.7 GB: peak memory
# grows with the dataset up to ~1.8 GB. Ours is capped lower; above it, TFDS
# spills to disk (and writes each example twice), in bounded memory.
SHUFFLE_MEMORY = 128 << 20


@contextlib.contextmanager
def bounded_shuffle_memory(limit: int | None = None):
  """Bounds TFDS's shuffle memory while our build runs; examples written once.

  TFDS's `Writer` must see every example of a split before it writes the
  first shard: the number of shards comes from their total size
  (`shard_utils.ShardConfig`), the order from the hash of each key
  (`shuffle.Shuffler`). It keeps up to `MAX_MEM_BUFFER_SIZE` of serialized
  examples in memory and spills the rest to 1,000 bucket files that it reads
  back: above the buffer, every example is written twice. Neither TFDS option
  avoids it (`disable_shuffling` still buckets the examples and drops the
  hash order; keys arriving in hash order still spill).

  While active:
  * TFDS's buffer is capped at `limit` (default `SHUFFLE_MEMORY`);
  * `shuffle.Shuffler` is `_WriteOnceShuffler`: a `Reread` example is kept
    as its parts around the image bytes (a few hundred bytes) and the path of
    its file, and the file is read again, in hash order, as TFDS writes the
    shard: the same bytes (CRC-checked) in the same order as TFDS's shuffler
    gives, written once. Other examples, and `Reread` ones once the kept
    parts reach `limit`, take TFDS's own path;
  * local buckets (when TFDS spills) use Python's buffered files instead of
    `tf.io.gfile` (`_LocalBucket`): the same bytes in the same files, ~30 us
    an example less; remote ones (gs://...) keep TFDS's code.
  """
  limit = SHUFFLE_MEMORY if limit is None else limit
  from tensorflow_datasets.core import shuffle  # pylint: disable=g-import-not-at-top
  old, old_bucket = shuffle.MAX_MEM_BUFFER_SIZE, shuffle._Bucket  # pylint: disable=protected-access
  old_shuffler = shuffle.Shuffler
  shuffle.MAX_MEM_BUFFER_SIZE = min(old, limit)
  shuffle._Bucket = _local_bucket_class(shuffle)  # pylint: disable=protected-access
  shuffle.Shuffler = _write_once_class(shuffle, limit)
  try:
    yield
  finally:
    shuffle.MAX_MEM_BUFFER_SIZE = old
    shuffle._Bucket = old_bucket  # pylint: disable=protected-access
    shuffle.Shuffler = old_shuffler


# What one kept `Reread` costs in memory besides the bytes of its head, tail
# and path (the entry tuple, its hash key, sizes, CRC; a `_tails` slot), for
# the `limit` budget.
_ENTRY_OVERHEAD = 240


@functools.cache
def _write_once_class(shuffle, limit: int):
  """`shuffle.Shuffler` that keeps `Reread` examples without their image."""
  base = shuffle.Shuffler

  class _WriteOnceShuffler(base):
    """TFDS's shuffler; `Reread` examples are kept small (see above)."""

    def __init__(self, *args, **kwargs):
      super().__init__(*args, **kwargs)
      self._limit = limit
      self._entries = []  # (hkey, head, tail, path, size, crc)
      self._entry_memory = 0
      self._entry_bytes = 0  # Serialized size of the kept examples.
      self._tails = {}  # Equal tails (class folders: label, width) shared.

    @property
    def size(self) -> int:
      return super().size + self._entry_bytes

    @property
    def num_examples(self) -> int:
      return super().num_examples + len(self._entries)

    @property
    def bucket_lengths(self):
      return [*super().bucket_lengths, len(self._entries)]

    def add(self, key, data) -> bool:
      if not isinstance(data, Reread):
        return super().add(key, data)
      if self._read_only:
        raise AssertionError("add() cannot be called after __iter__.")
      tail = self._tails.get(data.tail)
      cost = (_ENTRY_OVERHEAD + sys.getsizeof(data.head)
              + sys.getsizeof(data.path))
      if tail is None:  # A new tail: its bytes and its slot in `_tails`.
        cost += sys.getsizeof(data.tail) + _ENTRY_OVERHEAD
      buffered = super().size if self._in_memory else 0
      if self._entry_memory + cost + buffered > self._limit:
        # Bounded memory first: past the budget, TFDS's own path (spilled).
        self._spill()
        return super().add(key, data.join())
      hkey = self._hasher.hash_key(key)
      if self._ignore_duplicates:
        if hkey in self._seen_keys:
          return  # pytype: disable=bad-return-type
        self._seen_keys.add(hkey)
      if self._disable_shuffling:
        hkey = key
      if tail is None:
        tail = self._tails[data.tail] = data.tail
      self._entries.append(
          (hkey, data.head, tail, data.path, len(data.data), data.crc))
      self._entry_memory += cost
      self._entry_bytes += len(data)

    def _spill(self) -> None:
      """From now on, TFDS's examples go to its bucket files."""
      if self._in_memory:
        for hkey, data in self._mem_buffer:
          self._add_to_bucket(hkey, data)
        self._mem_buffer = None
        self._in_memory = False

    def __iter__(self):
      self._read_only = True
      self._entries.sort(key=lambda e: e[0])
      previous_hkey = previous_data = None
      for hkey, data in heapq.merge(
          super().__iter__(), self._reread(), key=lambda e: e[0]):
        if hkey == previous_hkey:
          raise shuffle.DuplicatedKeysError(data, previous_data)
        previous_hkey, previous_data = hkey, data
        yield hkey, data

    def _reread(self):
      for hkey, head, tail, path, size, crc in self._entries:
        yield hkey, b"".join((head, _read_again(path, size, crc), tail))

  return _WriteOnceShuffler


def _read_again(path: str, size: int, crc: int) -> bytes:
  """The file's bytes as checked earlier in the build, or a clear error."""
  try:
    data = images.read_file(path)
  except OSError as e:
    raise records.InputError(
        f"{path}: could not be read again to be written ({e}); it was"
        " checked earlier in this build. Was it moved or deleted while the"
        " build ran?") from None
  if len(data) != size or zlib.crc32(data) != crc:
    raise records.InputError(
        f"{path}: changed while the build ran (now {len(data)} bytes, checked"
        f" with {size}): its checked bytes cannot be written. Build again once"
        " the folder no longer changes.")
  return data


@functools.cache
def _local_bucket_class(shuffle):
  """`shuffle._Bucket` with Python files for local paths (see above)."""
  base = shuffle._Bucket  # pylint: disable=protected-access
  size_format = struct.Struct("=Q")  # As TFDS writes it.

  class _LocalBucket(base):
    """Same file format as TFDS's `_Bucket`: hkey, size, data per example."""

    def __init__(self, path):
      super().__init__(path)
      self._local = "://" not in str(path)

    def add(self, key, data):
      if not self._local:
        return super().add(key, data)
      if self._fobj is None:
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        try:
          self._fobj = open(self._path, "wb")  # pylint: disable=consider-using-with
        except OSError as e:
          if e.errno != errno.EMFILE:
            raise
          shuffle._increase_open_files_limit()  # pylint: disable=protected-access
          self._fobj = open(self._path, "wb")  # pylint: disable=consider-using-with
      self._fobj.write(shuffle._hkey_to_bytes(key) + size_format.pack(len(data)))  # pylint: disable=protected-access
      self._fobj.write(data)
      self._length += 1
      self._size += len(data)

    def flush(self):
      super().flush()
      if self._local:
        self._fobj = None  # Closed: a Python file cannot be flushed again.

    def read_values(self):
      if not self._local:
        yield from super().read_values()
        return
      self.flush()
      try:
        f = open(self._path, "rb")  # pylint: disable=consider-using-with
      except FileNotFoundError:
        return  # Nothing was ever added to this bucket.
      key_size = shuffle.HKEY_SIZE_BYTES
      with f:
        while buff := f.read(key_size):
          (size,) = size_format.unpack(f.read(8))
          yield shuffle._read_hkey(buff), f.read(size)  # pylint: disable=protected-access

    def del_file(self):
      if not self._local:
        return super().del_file()
      try:
        os.remove(self._path)
      except FileNotFoundError:
        pass

  return _LocalBucket
