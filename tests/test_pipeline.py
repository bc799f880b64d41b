"""`pipeline.process_all`: input order, bounded window, workers cleaned up."""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import pathlib

import psutil
import pytest

from image_folder_tfds import images
from image_folder_tfds import pipeline
from image_folder_tfds import records

import helpers


def _records(root: pathlib.Path, n: int) -> list[records.ImageRecord]:
  out = []
  for i in range(n):
    path = root / f"{i:04d}.jpg"
    if i % 7 == 3:
      path.write_bytes(b"not an image")  # Rejected, in its place.
    else:
      helpers.write_image(path, seed=i)
    out.append(records.ImageRecord(
        key=path.name, path=str(path), file_name=path.name, split="train",
        source=str(path), label=i % 2))
  return out


def _workers() -> list[psutil.Process]:
  return [p for p in psutil.Process().children(recursive=True)
          if "worker_main" in " ".join(p.cmdline())]


def test_same_outcomes_in_input_order_with_and_without_workers(tmp_path):
  recs = _records(tmp_path, 150)  # Several chunks per worker.
  options = images.ImageOptions()
  serial = list(pipeline.process_all(recs, options, 0))
  parallel = list(pipeline.process_all(recs, options, 2))
  assert [o.record.key for o in parallel] == [r.key for r in recs]
  assert parallel == serial
  assert sum(o.image is None for o in parallel) == len(
      [i for i in range(150) if i % 7 == 3])
  assert not _workers()


def test_window_is_bounded(tmp_path, monkeypatch):
  """The input is pulled only a window ahead of what was consumed."""
  recs = _records(tmp_path, 100)
  pulled = []

  def source():
    for r in recs:
      pulled.append(r)
      yield r
  monkeypatch.setattr(pipeline, "CHUNK", 4)
  monkeypatch.setattr(pipeline, "DEPTH", 2)
  it = pipeline.process_all(source(), images.ImageOptions(), 2)
  first = list(itertools.islice(it, 10))
  assert len(first) == 10
  assert len(pulled) <= 10 + 2 * 2 * 4 + 4
  it.close()
  assert not _workers()


def test_stopping_early_ends_the_workers(tmp_path):
  recs = _records(tmp_path, 120)
  it = pipeline.process_all(recs, images.ImageOptions(), 2)
  next(it)
  assert len(_workers()) == 2
  it.close()
  assert not _workers()


def test_dead_worker_is_an_error(tmp_path, monkeypatch):
  recs = _records(tmp_path, 80)
  monkeypatch.setattr(pipeline, "_WORKER_CODE", "import sys; sys.exit(3)")
  with pytest.raises(RuntimeError, match="died with exit code 3"):
    list(pipeline.process_all(recs, images.ImageOptions(), 2))
  assert not _workers()


def test_outcome_crosses_the_pipe_whole():
  rec = records.ImageRecord(key="k", path="/p", file_name="k", split="train",
                            source="/p", label=1)
  image = images.LoadedImage(
      data=b"bytes", format="png", source_format="BMP", width=3, height=4,
      display_width=5, display_height=6, notes=("converted",), orientation=6)
  problem = records.Problem(file="/p", reason="r", kind="converted")
  obj = records.ObjectRecord(box=(0.1, 0.2, 0.3, 0.4), label=1)
  for outcome in (pipeline.Outcome(rec, image, (obj,), (problem,),
                                   masks=(b"png",), segmentation_mask=b"m"),
                  pipeline.Outcome(rec, None, (), (problem,)),
                  pipeline.Outcome(rec, None, problems=(problem,),
                                   example=b"serialized")):
    packed = pickle.loads(pickle.dumps(pipeline._pack(outcome)))  # pylint: disable=protected-access
    assert pipeline._unpack(rec, packed) == outcome  # pylint: disable=protected-access
  # Every field of LoadedImage is packed: a new one must be added there.
  assert len(pipeline._pack(pipeline.Outcome(rec, image))[0]) == len(  # pylint: disable=protected-access
      dataclasses.fields(images.LoadedImage))


def test_record_crosses_the_pipe_whole():
  """Records go to the workers as tuples of their values: every field."""
  kp = records.Keypoint(x=0.1, y=0.2, v=1, score=0.5)
  rec = records.ImageRecord(
      key="k", path="/p", file_name="k", split="train", source="/s", id="7",
      label=1, label_text="dog", label_conf=0.5, objects=(records.ObjectRecord(
          box=(0.1, 0.2, 0.3, 0.4), label=1, keypoints=(kp,),
          segmentation=12),), coords="pixel", extra="{}", size=(4, 3),
      segmentation_file="/m", mask_path="/mask.png", mask_classes=3,
      labels=(0, 2), labels_text=("cat", "eel"), data_range=(10, 20))
  values = pickle.loads(pickle.dumps(pipeline._record_values(rec)))  # pylint: disable=protected-access
  assert pipeline._record_from(values) == rec  # pylint: disable=protected-access
  assert len(values) == len(dataclasses.fields(records.ImageRecord))


def test_workers_import_the_parents_package_not_the_working_dirs(
    tmp_path, monkeypatch):
  """`python -c` workers would put the working directory first on sys.path."""
  recs = _records(tmp_path, 70)
  decoy = tmp_path / "cwd" / "image_folder_tfds"
  decoy.mkdir(parents=True)
  (decoy / "__init__.py").write_text("")
  (decoy / "pipeline.py").write_text("raise ImportError('decoy imported')\n")
  monkeypatch.chdir(tmp_path / "cwd")
  outcomes = list(pipeline.process_all(recs, images.ImageOptions(), 2))
  assert [o.record.key for o in outcomes] == [r.key for r in recs]


def test_pool_keeps_its_workers_between_maps(tmp_path):
  recs = _records(tmp_path, 150)
  options = images.ImageOptions()
  serial = list(pipeline.process_all(recs, options, 0))
  with pipeline.Pool(options, 2) as pool:
    assert list(pool.map(recs[:70])) == serial[:70]
    pids = sorted(p.pid for p in _workers())
    assert len(pids) == 2
    assert list(pool.map(recs[70:])) == serial[70:]
    assert sorted(p.pid for p in _workers()) == pids
  assert not _workers()


def test_pool_map_stopped_early_leaves_no_stale_results(tmp_path):
  recs = _records(tmp_path, 150)
  options = images.ImageOptions()
  serial = list(pipeline.process_all(recs, options, 0))
  with pipeline.Pool(options, 2) as pool:
    it = pool.map(recs)
    assert [next(it) for _ in range(5)] == serial[:5]
    old = sorted(p.pid for p in _workers())
    it.close()  # Results of the rest are still in the pipes: workers go.
    assert not _workers()
    # A new map gets its own results, not the abandoned ones.
    assert list(pool.map(recs[100:])) == serial[100:]
    assert sorted(p.pid for p in _workers()) != old
  assert not _workers()


def test_a_build_starts_its_workers_once(tmp_path, monkeypatch):
  """Three splits, two workers: two worker processes in all, not six."""
  from image_folder_tfds import builder as builder_lib  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import MyImagesConfig  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(builder_lib, "MIN_IMAGES_FOR_WORKERS", 1)
  started = []
  original = pipeline._Worker.__init__  # pylint: disable=protected-access

  def counting_init(self, options, *args):
    started.append(options)
    original(self, options, *args)
  monkeypatch.setattr(pipeline._Worker, "__init__", counting_init)  # pylint: disable=protected-access
  written = helpers.make_class_folders(tmp_path / "in", ("a", "b"), 15)
  config = MyImagesConfig(name="pool", num_workers=2)
  built = helpers.build(tmp_path / "in", tmp_path / "out", config=config)
  assert len(built.info.splits) == 3
  assert len(started) == 2
  assert set(helpers.read_all(built)) == set(written)
  assert not _workers()
