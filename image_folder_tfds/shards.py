"""Serialized examples, in their final order, straight to the shard files.

TFDS's writer for a generated split (`writer.Writer`) keeps every serialized
example until the split ends (1 GB in memory, then bucket files on disk),
sorts them by the md5 of the split name and the key (`hashing.Hasher`), cuts
the sorted run into shards (their number from the total size,
`ShardConfig.get_number_shards`; their ends from the number of examples,
`shard_utils.get_shard_boundaries`) and writes each shard with the format's
file adapter (`ExampleWriter`). In our builds every key is known when the
scan ends, so that order is known before the first image is read: the
workers check and serialize the images in it (`hash_order`), and
`write_split` writes what they send, as it comes, through the same example
writer. Nothing is held, nothing is written twice, and the shards are TFDS's
own, byte for byte (`tests/test_shards.py`).

What is not known before the end is where each shard ends: rejected images
do not count, and the shard count depends on the total size. `write_split`
estimates both as it goes (the examples still to come all accepted; the
shard count from the mean size so far, decided at the first boundary), and
at the end compares with the true ones. Where they differ (an image rejected
after a boundary it moves was passed, or a total near a step of the shard
count) the shards concerned are written again from the written ones
(`_finish`, `_read_back`), and the others are kept: a build with broken
images pays a second write of part of a split, one without pays nothing.
"""

from __future__ import annotations

import array
import dataclasses
import os
import struct
from collections.abc import Iterable, Iterator, Sequence

from absl import logging
from etils import epath
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import hashing
from tensorflow_datasets.core import naming
from tensorflow_datasets.core import writer as writer_lib
from tensorflow_datasets.core.utils import shard_utils

from image_folder_tfds import wire

# The formats whose shards `_read_back` can read. Others are written by
# TFDS's own writer (`builder.MyImages._writes_shards`).
FORMATS = (file_adapters.FileFormat.TFRECORD,
           file_adapters.FileFormat.ARRAY_RECORD)
_TFRECORD_HEADER = struct.Struct("<Q")  # Then 4 bytes of CRC, the data, 4.
_READ_BATCH = 256  # ArrayRecord records read back at a time.
_WRITE_BUFFER = 1 << 20  # Bytes of framed records per `write` system call.


class DuplicateKeyError(ValueError):
  """Two examples of a split share TFDS's hash of their key."""


def hash_order(keys: Sequence[str], split: str) -> tuple[list[int], list[int]]:
  """(indices of `keys` in the order TFDS writes them, the hash of each key).

  TFDS's order: `hashing.Hasher(split).hash_key(key)`, ascending. Keys with
  equal hashes are refused, as TFDS's shuffler refuses them (its hash maps
  "\\" to "/": "a\\b.jpg" and "a/b.jpg" are one key to it).
  """
  hasher = hashing.Hasher(split)
  hkeys = [hasher.hash_key(k) for k in keys]
  order = sorted(range(len(keys)), key=hkeys.__getitem__)
  for a, b in zip(order, order[1:]):
    if hkeys[a] == hkeys[b]:
      raise DuplicateKeyError(
          f"split {split!r}: the example keys {keys[a]!r} and {keys[b]!r} are"
          " the same key to TFDS (same hash): rename one of the two files")
  return order, hkeys


@dataclasses.dataclass(frozen=True)
class _Part:
  """A shard file written with the shard ends estimated at the time."""

  path: epath.Path
  start: int  # Index of its first example in the split.
  end: int
  positions: object  # What the example writer returned (record positions).


class _Stream:
  """The split's examples as they come, and what is known of the split."""

  def __init__(self, examples: Iterable[tuple[int, bytes | None]],
               num_inputs: int, overhead: int = 0):
    self._it = iter(examples)
    self._overhead = overhead  # Bytes of framing around each example.
    self.expected = num_inputs  # Examples to come if no more are rejected.
    self.count = 0  # Examples taken.
    self.size = 0  # Their serialized bytes (TFDS's `total_size`).
    self.lengths = array.array("Q")  # Of each example taken.
    self._next = None

  def more(self) -> bool:
    """Whether another example comes (rejected inputs are skipped)."""
    while self._next is None:
      try:
        item = next(self._it)
      except StopIteration:
        return False
      if item[1] is None:
        self.expected -= 1
      else:
        self._next = item
    return True

  def take(self) -> tuple[int, bytes]:
    item, self._next = self._next, None
    self.count += 1
    length = len(item[1]) - self._overhead
    self.size += length
    self.lengths.append(length)
    return item


def write_split(
    examples: Iterable[tuple[int, bytes | None]],
    num_inputs: int,
    filename_template: naming.ShardedFileTemplate,
    shard_config: shard_utils.ShardConfig,
    example_writer: writer_lib.ExampleWriter,
) -> tuple[list[int], int]:
  """Writes one split's shards; returns (examples per shard, total bytes).

  `examples`: (hash key, serialized example, or None for a rejected input)
  for each of the split's `num_inputs` inputs, in TFDS's order (each example
  framed as its TFRecord record for a `TfRecordWriter`). The files,
  the shard lengths and the total size are what TFDS's writer gives for the
  same examples with the same `shard_config` and `example_writer`.
  """
  stream = _Stream(examples, num_inputs,
                   wire.TFRECORD_OVERHEAD if _framed(example_writer) else 0)
  num_shards = shard_config.num_shards or None  # None: not decided yet.
  parts: list[_Part] = []
  index = 0  # Of the shard being written, for the estimated shard ends.

  def end_of(j: int) -> int | None:
    if num_shards is None or j >= num_shards - 1:
      return None  # To the end of the split (or of shard 0: see below).
    return round(stream.expected * (j + 1) / num_shards)

  def first_shard() -> Iterator[tuple[int, bytes]]:
    """Shard 0, when the shard count is not given: its end is where the
    estimated count puts it (its first boundary)."""
    nonlocal num_shards
    firsts = _first_ends(stream.expected)
    expected = stream.expected
    while stream.more():
      if stream.expected != expected:  # Rejected inputs: ends move.
        expected = stream.expected
        firsts = _first_ends(expected)
      for k in firsts.get(stream.count, ()):
        estimate = shard_config.get_number_shards(
            stream.size * expected // stream.count, expected)
        if estimate == k:
          num_shards = k
          return
      yield stream.take()

  def shard(j: int) -> Iterator[tuple[int, bytes]]:
    while stream.more():
      end = end_of(j)
      if end is not None and stream.count >= end:
        return
      yield stream.take()

  while stream.more():
    if num_shards is None:
      examples_of = first_shard()
    else:
      while (end := end_of(index)) is not None and stream.count >= end:
        index += 1  # Rejected inputs moved this shard's end behind us.
      examples_of = shard(index)
    start = stream.count
    path = _part_path(filename_template, len(parts))
    positions = example_writer.write(path, examples_of)
    parts.append(_Part(path, start, stream.count, positions))
    index += 1
  if not stream.count:
    raise AssertionError("No examples were yielded.")  # As TFDS's writer.
  return _finish(parts, stream, filename_template, shard_config,
                 example_writer)


def _first_ends(expected: int) -> dict[int, list[int]]:
  """{where shard 0 ends: [shard counts that end it there]}, for every
  count `ShardConfig.calculate_number_shards` can give `expected` examples."""
  counts = [2 ** i for i in range(1, 11)]  # 2 ... 1024,
  counts += range(2048, expected + 1, 1024)  # then multiples of 1024.
  firsts: dict[int, list[int]] = {}
  for k in counts:
    if k <= expected:
      firsts.setdefault(round(expected / k), []).append(k)
  return firsts


class TfRecordWriter(writer_lib.ExampleWriter):
  """TFDS's TFRecord example writer for records framed already.

  The workers frame each example as its TFRecord record (`wire.tfrecord`,
  `pipeline.Maker.framed`), so writing it is one buffered `write`: ~6 us an
  example in the build process against ~19 for `tf.io.TFRecordWriter.write`
  (its copy into C++, its CRCs), which TFDS's adapter calls for each
  example (`bench/parent_costs.py`). The file is the one TFDS's adapter
  writes, byte for byte (`tests/test_worker_examples.py`). Local paths only
  (`builder.MyImages._frames_records`); TensorFlow's file systems (`gs://`)
  keep TFDS's adapter.
  """

  framed = True

  def __init__(self):
    super().__init__(file_adapters.FileFormat.TFRECORD)

  def write(self, path, examples) -> None:
    with open(os.fspath(path), "wb", buffering=_WRITE_BUFFER) as f:
      write = f.write
      for _, record in examples:
        write(record)
    return None  # As TFDS's TFRecord adapter: no record positions.


def _framed(example_writer: writer_lib.ExampleWriter) -> bool:
  return getattr(example_writer, "framed", False)


def _part_path(template: naming.ShardedFileTemplate, i: int) -> epath.Path:
  """Where the i-th shard is written before its name (`-of-N`) is known."""
  return epath.Path(f"{template.filepath_prefix()}.part-{i:05d}")


def _finish(parts: list[_Part], stream: _Stream,
            template: naming.ShardedFileTemplate,
            shard_config: shard_utils.ShardConfig,
            example_writer: writer_lib.ExampleWriter) -> tuple[list[int], int]:
  """Names the shards, after writing again those the estimates got wrong."""
  num_shards = shard_config.get_number_shards(stream.size, stream.count)
  ends = shard_utils.get_shard_boundaries(stream.count, num_shards)
  bounds = list(zip([0, *ends[:-1]], ends))
  kept = {(p.start, p.end): p for p in parts}
  renames = []
  for j, (start, end) in enumerate(bounds):
    final = template.sharded_filepath(shard_index=j, num_shards=num_shards)
    part = kept.pop((start, end), None)
    if part is not None:
      renames.append((part, final))
      continue
    positions = example_writer.write(
        final, _read_back(parts, stream.lengths, start, end, example_writer))
    _write_index(final, positions)
  for part, final in renames:
    part.path.rename(final)
    _write_index(final, part.positions)
  for part in kept.values():  # Written again above, under their own names.
    part.path.unlink()
  shard_lengths = [end - start for start, end in bounds]
  # TFDS's writer's own line, which tells that a split is complete.
  logging.info("Done writing %s. Number of examples: %s (shards: %s)",
               template.sharded_filepaths_pattern(), stream.count,
               shard_lengths)
  return shard_lengths, stream.size


def _write_index(path: epath.Path, positions) -> None:
  if positions:  # Formats with record positions, as TFDS's writer does.
    writer_lib._write_index_file(writer_lib._get_index_path(os.fspath(path)),  # pylint: disable=protected-access
                                 positions)


def _read_back(parts: list[_Part], lengths: array.array, start: int, end: int,
               example_writer: writer_lib.ExampleWriter
               ) -> Iterator[tuple[int, bytes]]:
  """(index, example) of the examples `start` to `end` of the split, read
  from the part files written."""
  file_format = example_writer.file_format
  for part in parts:
    a, b = max(start, part.start), min(end, part.end)
    if a >= b:
      continue
    if file_format == file_adapters.FileFormat.TFRECORD:
      records = _tfrecords(part, lengths, a, b, _framed(example_writer))
    elif file_format == file_adapters.FileFormat.ARRAY_RECORD:
      records = _array_records(part, a, b)
    else:
      raise ValueError(f"cannot read back {file_format} shards")
    for i, record in enumerate(records, a):
      yield i, record


def _tfrecords(part: _Part, lengths: array.array, a: int, b: int,
               framed: bool = False) -> Iterator[bytes]:
  """Records `a` to `b` (split indices) of a TFRecord part file. Each
  record is its length (8 bytes), a CRC (4), the data and a CRC (4): the
  data is given, or (`framed`) the whole record."""
  offset = sum(lengths[i] for i in range(part.start, a)) + 16 * (a - part.start)
  with part.path.open("rb") as f:
    f.seek(offset)
    for i in range(a, b):
      header = f.read(12)
      if len(header) != 12 or _TFRECORD_HEADER.unpack(header[:8])[0] != (
          lengths[i]):
        raise RuntimeError(
            f"{part.path}: record {i - part.start} is not the one written")
      data = f.read(lengths[i])
      footer = f.read(4)
      if len(data) != lengths[i] or len(footer) != 4:
        raise RuntimeError(f"{part.path}: cut short at record {i - part.start}")
      yield b"".join((header, data, footer)) if framed else data


def _array_records(part: _Part, a: int, b: int) -> Iterator[bytes]:
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  reader = array_record_module.ArrayRecordReader(os.fspath(part.path))
  try:
    for begin in range(a - part.start, b - part.start, _READ_BATCH):
      yield from reader.read(begin, min(begin + _READ_BATCH, b - part.start))
  finally:
    reader.close()
