"""The Beam path: same examples as the plain path, and no example lost quietly."""

from __future__ import annotations

import pathlib

import apache_beam as beam
import pytest

from image_folder_tfds import beam as beam_lib
from image_folder_tfds import report as report_lib

import helpers

_IN_MEMORY = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


def _data(root) -> dict[str, bytes]:
  written = helpers.make_class_folders(root, per_class=6)
  (pathlib.Path(root) / "cat" / "broken.jpg").write_bytes(
      helpers.encode(helpers.photo(99))[:300])  # Truncated: rejected.
  helpers.write_image(pathlib.Path(root) / "dog" / "really_png.jpg", seed=7,
                      fmt="PNG")
  return written


def _beam_build(manual_dir, data_dir, flags=_IN_MEMORY, **kwargs):
  return helpers.build(
      manual_dir, data_dir,
      beam_options=beam.options.pipeline_options.PipelineOptions(flags),
      **kwargs)


def _comparable(examples: dict) -> dict:
  out = {}
  for name, ex in examples.items():
    out[name] = {k: (v.tolist() if hasattr(v, "tolist") else v)
                 for k, v in ex.items() if k != "objects"}
  return out


def _shards(builder) -> dict[str, bytes]:
  return {p.name: p.read_bytes()
          for p in pathlib.Path(builder.data_path).glob("*.tfrecord*")}


def test_same_examples_as_plain_path(tmp_path):
  _data(tmp_path / "in")
  plain = helpers.build(tmp_path / "in", tmp_path / "plain")
  with_beam = _beam_build(tmp_path / "in", tmp_path / "beam")
  a, b = helpers.read_all(plain), helpers.read_all(with_beam)
  assert len(a) == 13
  assert _comparable(a) == _comparable(b)
  # Same shuffle (TFDS hashes the same keys) and canonical serialization:
  # the very same shard files.
  assert _shards(plain) == _shards(with_beam)
  ra, rb = helpers.report(plain), helpers.report(with_beam)
  assert ra["counts"] == rb["counts"]
  assert sorted((p["file"], p["reason"]) for p in ra["problems"]) == sorted(
      (p["file"], p["reason"]) for p in rb["problems"])
  assert any("broken.jpg" in p["file"] for p in rb["problems"])
  # The workers' side outputs are read and removed.
  assert not (pathlib.Path(with_beam.data_path) / beam_lib.WORK_DIR).exists()


def _drop(key_part, keep_outcome):
  """A `_Check.__call__` that loses the record whose key has `key_part`."""
  original = beam_lib._Check.__call__  # pylint: disable=protected-access

  def call(self, record):
    for item in original(self, record):
      if key_part in record.key:
        if isinstance(item, beam.pvalue.TaggedOutput) and keep_outcome:
          yield item
        continue
      yield item
  return call


def test_lost_record_fails_the_build(tmp_path, monkeypatch):
  """A record that never comes back from a worker: the build fails."""
  _data(tmp_path / "in")
  monkeypatch.setattr(beam_lib._Check, "__call__", _drop("cat_1", False))
  with pytest.raises(report_lib.CountMismatchError, match="lost or duplicated"):
    _beam_build(tmp_path / "in", tmp_path / "beam")
  assert not list((tmp_path / "beam").glob("my_images/*/*/dataset_info.json"))


def test_lost_example_fails_the_build(tmp_path, monkeypatch):
  """An example checked but not written by TFDS: reconcile fails the build."""
  _data(tmp_path / "in")
  monkeypatch.setattr(beam_lib._Check, "__call__", _drop("cat_1", True))
  with pytest.raises(report_lib.CountMismatchError, match="lost track"):
    _beam_build(tmp_path / "in", tmp_path / "beam")


@pytest.mark.slow
def test_cli_multi_processing_same_as_plain(tmp_path):
  """`tfds build --beam_pipeline_options=...` with 2 worker processes."""
  _data(tmp_path / "in")
  plain = helpers.build(tmp_path / "in", tmp_path / "plain")
  result = helpers.run(helpers.build_command(
      tmp_path / "in", tmp_path / "mp", "--beam_pipeline_options="
      "direct_running_mode=multi_processing,direct_num_workers=2"))
  assert result.returncode == 0, result.stderr[-3000:]
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  mp = tfds.builder("my_images", data_dir=str(tmp_path / "mp"))
  assert _comparable(helpers.read_all(plain)) == _comparable(
      helpers.read_all(mp))
  assert helpers.report(mp)["counts"] == helpers.report(plain)["counts"]


@pytest.mark.parametrize("file_format", ["tfrecord", "array_record"])
def test_shard_with_missing_records_is_caught(tmp_path, file_format):
  """A shard whose file holds fewer records than its split info says."""
  import os  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  helpers.make_class_folders(tmp_path / "in", per_class=4)
  builder = tfds.builder("my_images", data_dir=os.fspath(tmp_path / "out"),
                         file_format=file_format)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(tmp_path / "in")))
  beam_lib.check_shards(builder.data_path, builder.info.splits)  # All there.
  split = builder.info.splits["train"]
  shard = pathlib.Path(builder.data_path) / split.filenames[0]
  assert beam_lib.count_shard_records(shard) == split.shard_lengths[0]
  # The shard rewritten with one record less, as a lost write would leave it.
  if file_format == "tfrecord":
    data = shard.read_bytes()
    import struct  # pylint: disable=g-import-not-at-top
    (length,) = struct.unpack("<Q", data[:8])
    shard.write_bytes(data[12 + length + 4:])
  else:
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    reader = array_record_module.ArrayRecordReader(str(shard))
    records = reader.read_all()
    reader.close()
    writer = array_record_module.ArrayRecordWriter(str(shard), "group_size:1")
    for r in records[1:]:
      writer.write(r)
    writer.close()
  with pytest.raises(report_lib.CountMismatchError, match="records, split"):
    beam_lib.check_shards(builder.data_path, builder.info.splits)


@pytest.mark.parametrize("runner", [
    "apache_beam.runners.dask.dask_runner.DaskRunner", "DaskRunner", "dask",
    "DASKRUNNER"])
def test_dask_runner_is_refused_before_any_work(tmp_path, runner):
  """Beam's DaskRunner mistranslates the pipeline (bench/dask_repro.py).

  Refused before Beam looks the runner up: with or without `dask`
  installed (Beam 2.78 imports it to resolve the name), under every name
  Beam's `create_runner` accepts for it.
  """
  _data(tmp_path / "in")
  with pytest.raises(beam_lib.UnsupportedRunnerError,
                     match="tagged side output.*dask_repro"):
    _beam_build(tmp_path / "in", tmp_path / "beam", flags=[f"--runner={runner}"])
  assert not list((tmp_path / "beam").rglob("*.tfrecord*"))
  assert not list((tmp_path / "beam").rglob(beam_lib.WORK_DIR))


def test_dask_runner_is_recognised_by_name_and_by_class():
  class DaskRunner:  # Stands for Beam's class: only its name is looked at.
    pass

  class MyDaskRunner(DaskRunner):
    pass

  for runner in ("DaskRunner", "dask", "Dask",
                 "apache_beam.runners.dask.dask_runner.DaskRunner",
                 DaskRunner(), MyDaskRunner()):
    assert beam_lib.is_dask_runner(runner), runner
  for runner in (None, "DirectRunner", "direct", "FlinkRunner",
                 "apache_beam.runners.dask_like.Other", object()):
    assert not beam_lib.is_dask_runner(runner), runner


@pytest.mark.parametrize("flags, warned", [
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], True),
    (["--direct_running_mode=multi_threading", "--direct_num_workers=0"], True),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=1"], False),
    (_IN_MEMORY, False),
    (["--runner=DataflowRunner", "--direct_running_mode=multi_processing"], False),
])
def test_direct_runner_with_several_workers_is_warned(flags, warned):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  config = tfds.download.DownloadConfig(
      beam_options=beam.options.pipeline_options.PipelineOptions(flags))
  message = beam_lib.direct_runner_warning(config)
  assert (message is not None) == warned
  assert beam_lib.direct_runner_warning(tfds.download.DownloadConfig()) is None


def test_runner_output_stream_keeps_bytes_written_during_a_flush():
  """The fix-around for the cause of Beam's lost examples (beam.py)."""
  from apache_beam.runners.worker import data_plane  # pylint: disable=g-import-not-at-top
  assert beam_lib.fix_runner_output_stream_race()
  assert beam_lib.fix_runner_output_stream_race()  # Idempotent.
  delivered = []
  # A flush every millisecond while 300 MB are written: without the lock,
  # bytes written between the flusher's get() and _clear() are lost
  # (hundreds of MB in every run here).
  stream = data_plane.TimeBasedBufferingClosableOutputStream(
      close_callback=lambda data: delivered.append(len(data)),
      flush_callback=lambda data: delivered.append(len(data)),
      time_flush_threshold_ms=1)
  chunk = bytes(1 << 20)
  for _ in range(300):
    stream.write(chunk)
  stream.close()
  assert sum(delivered) == 300 * len(chunk)
  assert len(delivered) > 1  # The timer did flush while writing.
