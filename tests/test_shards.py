"""`shards.write_split`: TFDS's writer's files, written as the examples come.

The reference is TFDS's own `writer.Writer` given the same serialized
examples (it keeps them all, sorts them by hash and cuts the shards at the
end). Sizes, rejected inputs and shard counts are chosen so that every way
the running estimates can be wrong is met: a boundary passed before an input
was rejected, a shard count that changes near its end, a fixed count, and
the ArrayRecord format.
"""

from __future__ import annotations

import pathlib
import random

import pytest
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import naming
from tensorflow_datasets.core import writer as writer_lib
from tensorflow_datasets.core.utils import shard_utils

from image_folder_tfds import shards
from image_folder_tfds import wire

TFRECORD = file_adapters.FileFormat.TFRECORD
ARRAY_RECORD = file_adapters.FileFormat.ARRAY_RECORD


class _AsIs:
  """TFDS's writer takes examples through a serializer: these are bytes."""

  example_specs = {}

  def serialize_example(self, example):
    return example


def _template(directory: pathlib.Path, file_format) -> naming.ShardedFileTemplate:
  directory.mkdir(parents=True)
  return naming.ShardedFileTemplate(
      data_dir=directory, dataset_name="d", split="train",
      filetype_suffix=file_format.file_suffix)


def _files(directory: pathlib.Path) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _inputs(n: int, sizes, rejected: set[int]):
  """(key, example or None) per input, in input order."""
  out = []
  for i in range(n):
    size = sizes(i)
    data = (b"%06d" % i) + bytes([i % 251]) * size if i not in rejected else None
    out.append((f"class/{i:05d}.jpg", data))
  return out


@pytest.fixture(name="shard_sizes")
def _shard_sizes(monkeypatch):
  """Small shards (TFDS reads these class attributes, not the instance's)."""
  def use(low: int, high: int):
    monkeypatch.setattr(shard_utils.ShardConfig, "min_shard_size", low)
    monkeypatch.setattr(shard_utils.ShardConfig, "max_shard_size", high)
  return use


@pytest.fixture(name="framed", params=[False, True],
                ids=["tfds-adapter", "framed"])
def _framed(request) -> bool:
  """Ours written through TFDS's TFRecord adapter, or framed by the workers
  (`wire.tfrecord`) and written by `shards.TfRecordWriter`."""
  return request.param


def _write_both(tmp_path, inputs, file_format=TFRECORD, num_shards=None,
                framed=False):
  """(TFDS's files, ours, TFDS's (lengths, size), ours, examples re-read)."""
  config = shard_utils.ShardConfig(num_shards=num_shards)
  theirs = tmp_path / "tfds"
  writer = writer_lib.Writer(
      serializer=_AsIs(), filename_template=_template(theirs, file_format),
      hash_salt="train", disable_shuffling=False, shard_config=config,
      example_writer=writer_lib.ExampleWriter(file_format))
  for key, data in inputs:
    if data is not None:
      writer.write(key, data)
  tfds_result = writer.finalize()
  ours = tmp_path / "ours"
  order, hkeys = shards.hash_order([k for k, _ in inputs], "train")
  read_back = []
  real = shards._read_back  # pylint: disable=protected-access

  def counting(*args):
    for item in real(*args):
      read_back.append(item)
      yield item
  shards._read_back = counting  # pylint: disable=protected-access
  try:
    frame = wire.tfrecord if framed else lambda data: data
    result = shards.write_split(
        ((hkeys[i], None if inputs[i][1] is None else frame(inputs[i][1]))
         for i in order), len(inputs),
        _template(ours, file_format), config,
        shards.TfRecordWriter() if framed
        else writer_lib.ExampleWriter(file_format))
  finally:
    shards._read_back = real  # pylint: disable=protected-access
  return _files(theirs), _files(ours), tfds_result, result, read_back


@pytest.mark.parametrize("rejected", [
    set(), {0, 1, 2}, {250, 251}, {497, 498, 499}, set(range(0, 500, 7))],
    ids=["none", "first", "middle", "last", "every 7th"])
def test_same_files_as_tfds_writer(tmp_path, shard_sizes, rejected, framed):
  shard_sizes(20_000, 40_000)  # ~0.8 MB: 32 shards.
  rng = random.Random(7)
  sizes = [rng.randrange(100, 3000) for _ in range(500)]
  theirs, ours, tfds_result, result, read_back = _write_both(
      tmp_path, _inputs(500, sizes.__getitem__, rejected), framed=framed)
  assert len(theirs) > 8
  assert ours == theirs
  assert result == tfds_result
  if not rejected:
    assert read_back == []  # Every shard written once.


def test_a_late_rejection_rewrites_only_the_shards_it_moves(
    tmp_path, shard_sizes, framed):
  shard_sizes(20_000, 40_000)
  inputs = _inputs(500, lambda i: 1500, set())
  order, _ = shards.hash_order([k for k, _ in inputs], "train")
  last = order[-1]  # Rejected after every shard but the last was written.
  inputs[last] = (inputs[last][0], None)
  theirs, ours, tfds_result, result, read_back = _write_both(
      tmp_path, inputs, framed=framed)
  assert ours == theirs and result == tfds_result
  assert 0 < len(read_back) < 499  # Some shards kept as written.


@pytest.mark.parametrize("early,late,count", [(900, 300, 1), (300, 1000, 2)])
def test_shard_count_near_a_step(tmp_path, shard_sizes, early, late, count,
                                 framed):
  """The mean size of the first examples puts the total on the other side
  of a shard-count step (2 shards from 200,000 bytes, with TFDS's 16 a
  record) than the real one: the shards are cut again at the end."""
  shard_sizes(100_000, 10**9)
  keys = [k for k, _ in _inputs(300, lambda i: 0, set())]
  order, _ = shards.hash_order(keys, "train")
  rank = {i: r for r, i in enumerate(order)}
  inputs = _inputs(300, lambda i: early if rank[i] < 150 else late, set())
  theirs, ours, tfds_result, result, read_back = _write_both(
      tmp_path, inputs, framed=framed)
  assert ours == theirs and result == tfds_result
  assert len(result[0]) == count
  assert read_back  # The estimate was wrong, and corrected.


def test_one_example_left(tmp_path, shard_sizes, framed):
  shard_sizes(1_000, 2_000)
  inputs = _inputs(50, lambda i: 300, set(range(1, 50)))
  theirs, ours, tfds_result, result, _ = _write_both(tmp_path, inputs,
                                                     framed=framed)
  assert ours == theirs and result == tfds_result == ([1], len(inputs[0][1]))


def test_fixed_shard_count(tmp_path, shard_sizes, framed):
  shard_sizes(1_000, 2_000)  # Would give more shards: the given count wins.
  inputs = _inputs(100, lambda i: 100 + i, {5, 60, 99})
  theirs, ours, tfds_result, result, _ = _write_both(
      tmp_path, inputs, num_shards=3, framed=framed)
  assert ours == theirs and len(ours) == 3 and result == tfds_result


@pytest.mark.parametrize("rejected", [set(), {3, 150, 299}])
def test_array_record(tmp_path, shard_sizes, rejected):
  shard_sizes(20_000, 40_000)
  inputs = _inputs(300, lambda i: 200 + 7 * i, rejected)
  theirs, ours, tfds_result, result, _ = _write_both(
      tmp_path, inputs, file_format=ARRAY_RECORD)
  assert len(ours) > 4
  assert ours == theirs and result == tfds_result


def test_hash_order_is_tfds_order():
  from tensorflow_datasets.core import hashing  # pylint: disable=g-import-not-at-top
  keys = [f"k{i}" for i in range(200)] + ["a\\b.jpg", "é/ü.png"]
  order, hkeys = shards.hash_order(keys, "validation")
  hasher = hashing.Hasher("validation")
  assert hkeys == [hasher.hash_key(k) for k in keys]
  assert order == sorted(range(len(keys)), key=lambda i: hasher.hash_key(keys[i]))


def test_keys_tfds_cannot_tell_apart_are_refused():
  with pytest.raises(shards.DuplicateKeyError, match=r"a\\\\b.jpg"):
    shards.hash_order(["x.jpg", "a\\b.jpg", "a/b.jpg"], "train")
