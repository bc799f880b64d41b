"""The workers make the examples' bytes; the build process only writes them.

Issue 27: each worker turns its images into serialized examples
(`pipeline.Maker`) and the builder writes them, in TFDS's order, as they come
(`shards.py`). What a build writes must not change: every release here is
compared, file by file, with the same data built through TFDS's own writer
and TFDS's own serializer (the builder without a maker: the code before this
issue gave those bytes), with two workers and with none, with several shard
counts, with converted, broken and cached images, masks, keypoints, the Model
Garden layout, several image labels, images inside a bigger file, and the
ArrayRecord format.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.utils import shard_utils

from image_folder_tfds import MyImagesConfig
from image_folder_tfds import builder as builder_lib
from image_folder_tfds import features
from image_folder_tfds import images
from image_folder_tfds import model_garden
from image_folder_tfds import pipeline
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds import release
from image_folder_tfds import writing
from tensorflow_datasets.core import example_serializer

import helpers
import test_masks
import test_model_garden
import test_segmentation_build


def _release(builder) -> dict[str, bytes]:
  """Every file of the dataset folder; the report without its check-cache
  part (how this build went, not what it built)."""
  out = {}
  for path in sorted(pathlib.Path(builder.data_path).iterdir()):
    data = path.read_bytes()
    if path.name == "build_report.json":
      report = json.loads(data)
      report.pop("check_cache", None)
      data = json.dumps(report, sort_keys=True).encode()
    out[path.name] = data
  return out


def _assert_same(ours, theirs) -> None:
  a, b = _release(ours), _release(theirs)
  assert sorted(a) == sorted(b)
  assert any(".tfrecord-" in name or ".array_record-" in name for name in a)
  for name in a:
    assert a[name] == b[name], name


def _made(monkeypatch) -> list[int]:
  """Whether each accepted image came from its worker made (its example,
  not its image)."""
  made = []
  unpack = pipeline._unpack  # pylint: disable=protected-access

  def counting_unpack(record, packed):
    outcome = unpack(record, packed)
    if outcome.accepted:
      made.append(outcome.example is not None and outcome.image is None)
    return outcome
  monkeypatch.setattr(pipeline, "_unpack", counting_unpack)
  return made


def _builds(tmp_path, monkeypatch, manual_dir, name="w", download=None,
            **options):
  """(two workers, no workers, TFDS's writer and serializer) builds."""
  monkeypatch.setattr(builder_lib, "MIN_IMAGES_FOR_WORKERS", 1)
  made = _made(monkeypatch)
  out = []
  for workers in (2, 0):
    config = MyImagesConfig(name=name, num_workers=workers, **options)
    out.append(helpers.build(manual_dir, tmp_path / f"w{workers}",
                             config=config, **(download or {})))
  assert made and all(made)
  with monkeypatch.context() as m:
    m.setattr(builder_lib.MyImages, "_maker", lambda self, *args: None)
    config = MyImagesConfig(name=name, num_workers=0, **options)
    out.append(helpers.build(manual_dir, tmp_path / "tfds", config=config,
                             **(download or {})))
  return out


def _folders(root: pathlib.Path) -> set[str]:
  """40 JPEGs kept as they are, a BMP and a big PNG converted, a broken
  JPEG early in the hash order of train, one late, and one in test."""
  written = helpers.make_class_folders(root, ("cat", "dog"), 20)
  helpers.write_image(root / "cat" / "conv.bmp", seed=90, fmt="BMP")
  helpers.write_image(root / "dog" / "zz_big.png", width=90, height=60,
                      fmt="PNG")
  for name in ("broken_a.jpg", "broken_b.jpg", "broken_c.jpg",
               "broken_d.jpg"):
    (root / "dog" / name).write_bytes(b"not a jpeg")
  return set(written) | {"cat/conv.bmp", "dog/zz_big.png"}


@pytest.mark.parametrize("low,train_shards", [
    (None, 1), (12_000, 2), (7_000, 4), (4_000, 8)])
def test_class_folders_same_release_as_tfds_writer(
    tmp_path, monkeypatch, low, train_shards):
  """Train: 37 examples, ~37 KB; shard sizes set for 1 to 8 shards."""
  written = _folders(tmp_path / "in")
  if low:
    monkeypatch.setattr(shard_utils.ShardConfig, "min_shard_size", low)
  two, none, theirs = _builds(tmp_path, monkeypatch, tmp_path / "in",
                              max_side=48)
  assert len(two.info.splits["train"].shard_lengths) == train_shards
  _assert_same(two, theirs)
  _assert_same(none, theirs)
  back = helpers.read_all(two)
  assert set(back) == written
  assert max(back["dog/zz_big.png"]["image"].shape[:2]) == 48
  rejected = [p["file"] for p in helpers.file_problems(helpers.report(two))
              if p["kind"] == "rejected"]
  assert sorted(rejected) == [f"dog/broken_{c}.jpg" for c in "abcd"]


def test_cached_images_same_release(tmp_path, monkeypatch):
  """A release from the check cache (most images not decoded again) writes
  the same files as a clean build through TFDS's writer."""
  _folders(tmp_path / "in")
  monkeypatch.setattr(shard_utils.ShardConfig, "min_shard_size", 4_000)
  monkeypatch.setattr(shard_utils.ShardConfig, "max_shard_size", 8_000)
  monkeypatch.setattr(builder_lib, "MIN_IMAGES_FOR_WORKERS", 1)
  cache = tmp_path / "cache"
  config = MyImagesConfig(name="w", num_workers=2, check_cache_dir=str(cache),
                          max_side=48)
  helpers.build(tmp_path / "in", tmp_path / "first", config=config)
  # 41 px wide: no other image has its bytes.
  helpers.write_image(tmp_path / "in" / "cat" / "new.jpg", seed=1, width=41)
  cached = helpers.build(tmp_path / "in", tmp_path / "cached", config=config)
  stats = helpers.report(cached)["check_cache"]
  # Checked again: the new image and the two converted (whose converted
  # bytes the cache does not keep); the 4 broken files are one entry.
  assert (stats["reused"], stats["checked"]) == (44, 3)
  monkeypatch.setattr(builder_lib.MyImages, "_maker", lambda self, *args: None)
  clean = helpers.build(tmp_path / "in", tmp_path / "clean", config=MyImagesConfig(
      name="w", num_workers=0, check_cache=False, max_side=48))
  _assert_same(cached, clean)


def test_coco_masks_same_release(tmp_path, monkeypatch):
  test_segmentation_build.make_coco(tmp_path / "in")
  two, none, theirs = _builds(tmp_path, monkeypatch, tmp_path / "in")
  assert "mask" in two.info.features["objects"]
  _assert_same(two, theirs)
  _assert_same(none, theirs)


def test_label_images_same_release(tmp_path, monkeypatch):
  test_masks._pairs(tmp_path / "in", "train", n=3)  # pylint: disable=protected-access
  two, _, theirs = _builds(tmp_path, monkeypatch, tmp_path / "in")
  assert features.SEGMENTATION_MASK in two.info.features
  _assert_same(two, theirs)


@pytest.mark.parametrize("output_format", ["tfds", "model_garden"])
def test_coco_keypoints_same_release(tmp_path, monkeypatch, output_format):
  test_model_garden.make_coco(tmp_path / "in")
  two, none, theirs = _builds(tmp_path, monkeypatch, tmp_path / "in",
                              output_format=output_format)
  _assert_same(two, theirs)
  _assert_same(none, theirs)


def test_array_record_same_release(tmp_path, monkeypatch):
  _folders(tmp_path / "in")
  monkeypatch.setattr(shard_utils.ShardConfig, "min_shard_size", 4_000)
  monkeypatch.setattr(shard_utils.ShardConfig, "max_shard_size", 8_000)
  monkeypatch.setattr(builder_lib, "MIN_IMAGES_FOR_WORKERS", 1)
  built = []
  for maker in (True, False):
    with monkeypatch.context() as m:
      if not maker:
        m.setattr(builder_lib.MyImages, "_maker", lambda self, *args: None)
      builder = tfds.builder(
          "my_images", data_dir=str(tmp_path / str(maker)),
          config=MyImagesConfig(name="w", num_workers=2),
          file_format="array_record")
      builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
          manual_dir=str(tmp_path / "in")))
      built.append(builder)
  assert len(built[0].info.splits["train"].shard_lengths) > 1
  _assert_same(*built)
  source = tfds.data_source("my_images/w", data_dir=str(tmp_path / "True"),
                            split="train")
  assert len(source) == built[0].info.splits["train"].num_examples


def _synthetic_scan(root: pathlib.Path, kind: str):
  """A scan of records no reader makes yet: several image labels, and
  images that are part of one bigger file (`data_range`)."""
  blob = root / "images.bin"
  data, recs = bytearray(b"header"), []
  for i in range(12):
    image = helpers.encode(helpers.photo(i), "PNG" if i % 4 == 0 else "JPEG")
    offset = len(data)
    data += image + b"--"
    labels = () if kind == "images" else (
        (i % 3,) if i % 2 else (i % 3, (i + 1) % 3))
    recs.append(records.ImageRecord(
        key=f"img{i:02d}", path=str(blob), file_name=f"img{i:02d}",
        split="train" if i < 9 else "test", source=str(blob),
        labels=labels, data_range=(offset, len(image))))
  blob.write_bytes(bytes(data))
  return readers.common.ScanResult(
      layout="synthetic", class_names=["red", "green", "blue"], records=recs,
      problems=[])


@pytest.mark.parametrize("kind", ["images", "labels"])
def test_image_labels_and_ranges_same_release(tmp_path, monkeypatch, kind):
  (tmp_path / "in").mkdir()
  scan = _synthetic_scan(tmp_path / "in", kind)
  monkeypatch.setattr(readers, "scan", lambda root, layout, options: scan)
  two, none, theirs = _builds(tmp_path, monkeypatch, tmp_path / "in")
  assert (features.LABELS in two.info.features) == (kind == "labels")
  _assert_same(two, theirs)
  _assert_same(none, theirs)
  back = helpers.read_all(two)
  assert len(back) == 12
  if kind == "labels":
    assert list(back["img04"][features.LABELS]) == [1, 2]
    assert list(back["img05"][features.LABELS]) == [2]


# --- Every feature the schemas can declare is serialized as TFDS does. ------


def _tfds_bytes(fd, example) -> bytes:
  ser = example_serializer.ExampleSerializer(fd.get_serialized_info())
  return release.canonical_example(
      ser.serialize_example(fd.encode_example(example)))


def _rich_record(num_keypoints: int) -> records.ImageRecord:
  kps = tuple(records.Keypoint(x=0.1 * i, y=0.2, v=i % 3, score=0.5)
              for i in range(num_keypoints))
  objs = (
      records.ObjectRecord(box=(0.2, 0.1, 1.0, 0.5), label=1, score=0.9,
                           conf=0.5, area=0.3, id="o1", is_crowd=True,
                           keypoints=kps, keypoint_score_given=True,
                           segmentation=0),
      records.ObjectRecord(box=None, label=0, keypoints=kps[:1]),
  )
  return records.ImageRecord(
      key="a/é.jpg", path="/d/a/é.jpg", file_name="a/é.jpg", split="train",
      source="x.json", id="7", label=1, label_conf=0.25, extra='{"k": 1}',
      objects=objs, labels=(0, 2), mask_path="/d/m.png", mask_classes=3)


@pytest.mark.parametrize("kind", features.KINDS)
@pytest.mark.parametrize("store_images", [True, False])
def test_every_schema_feature_serialized_as_tfds(kind, store_images):
  from image_folder_tfds import masks  # pylint: disable=g-import-not-at-top
  rec = _rich_record(3)
  if kind == "images":
    rec = records.ImageRecord(key="a", path="/d/a", file_name="a",
                              split="train", source="/d/a")
  optional = set(features.OPTIONAL_KEYS)
  if kind in ("images", "classification"):
    optional = {k for k in optional if not k.startswith("objects/")}
  if kind != "keypoints":
    optional.discard("objects/keypoints/score")
  if kind == "images":
    optional = set()
  schema = features.Schema(
      kind=kind, store_images=store_images, optional=frozenset(optional),
      num_keypoints=3 if kind == "keypoints" else 0)
  fd = schema.features_dict()
  features.set_class_names(fd, ["a", "b", "c"])
  serializer = writing.Serializer.for_features(fd)
  png = masks.encode_png(np.eye(30, 40, dtype=np.uint8))
  image = images.LoadedImage(
      data=b"\xff\xd8 jpeg" if store_images else None, format="jpeg",
      source_format="JPEG", width=40, height=30, display_width=40,
      display_height=30)
  example = schema.to_example(rec, image, rec.objects,
                              (png, masks.empty_png(30, 40)), png)
  assert serializer.serialize(example) == _tfds_bytes(fd, example)


@pytest.mark.parametrize("masks_on,segmentation", [
    (False, False), (True, False), (False, True)])
def test_every_model_garden_feature_serialized_as_tfds(masks_on, segmentation):
  from image_folder_tfds import masks  # pylint: disable=g-import-not-at-top
  rec = _rich_record(2)
  encoder = model_garden.Encoder.from_records([rec], ["a", "b", "c"])
  encoder = model_garden.Encoder(
      encoder.class_names, encoder.source_ids, encoder.source_id_rule,
      encoder.num_keypoints, has_masks=masks_on, has_segmentation=segmentation)
  fd = encoder.features_dict()
  serializer = writing.Serializer.for_features(fd)
  png = masks.encode_png(np.eye(30, 40, dtype=np.uint8))
  image = images.LoadedImage(
      data=b"\xff\xd8 jpeg", format="jpeg", source_format="JPEG", width=40,
      height=30, display_width=40, display_height=30)
  example = encoder.encode(rec, image, rec.objects,
                           (png, masks.empty_png(30, 40)), png)
  assert serializer.serialize(example) == _tfds_bytes(fd, example)


# --- The worker side. --------------------------------------------------------


def _accepted(tmp_path) -> pipeline.Outcome:
  path = tmp_path / "a.jpg"
  helpers.write_image(path, seed=3)
  rec = records.ImageRecord(key="a.jpg", path=str(path), file_name="a.jpg",
                            split="train", source=str(path), label=0)
  return pipeline.process(rec, images.ImageOptions())


class _Failing:
  """A maker that cannot make the example (as a bad value would)."""

  def make(self, outcome):
    raise ValueError(f"{outcome.record.path}: cannot be made")


def test_a_failing_maker_fails_the_build_process_naming_the_image(tmp_path):
  """The worker sends the outcome as checked; the build process makes it
  again and so raises the error itself, as without workers."""
  outcome = _accepted(tmp_path)
  packed = pickle.loads(pickle.dumps(pipeline._pack(outcome, _Failing())))  # pylint: disable=protected-access
  assert pipeline._unpack(outcome.record, packed) == outcome  # pylint: disable=protected-access
  pool = pipeline.Pool(images.ImageOptions(), 0, maker=_Failing())
  with pytest.raises(ValueError, match="a.jpg: cannot be made"):
    pool._made(outcome)  # pylint: disable=protected-access


def _makers(tmp_path):
  """(schema maker, Model Garden maker) of small real builds."""
  helpers.make_class_folders(tmp_path / "folders", ("cat", "dog"), 2)
  built = helpers.build(tmp_path / "folders", tmp_path / "out",
                        config=MyImagesConfig(name="m", num_workers=0))
  test_model_garden.make_coco(tmp_path / "coco")
  garden = helpers.build(tmp_path / "coco", tmp_path / "out", config=MyImagesConfig(
      name="g", num_workers=0, output_format="model_garden"))
  return built._maker(), garden._maker()  # pylint: disable=protected-access


def test_workers_make_examples_without_tensorflow(tmp_path):
  """A worker unpickles each maker and makes examples, and has imported
  neither TFDS nor TensorFlow (~0.4 s and ~100 MB saved per worker)."""
  makers = _makers(tmp_path)
  outcome = _accepted(tmp_path)
  split, key = sorted(makers[1].encode.__self__.source_ids)[0]
  garden_outcome = pipeline.Outcome(
      dataclasses.replace(outcome.record, split=split, key=key),
      outcome.image, (records.ObjectRecord(box=(0.1, 0.2, 0.3, 0.4), label=0),))
  jobs = [(makers[0], outcome), (makers[1], garden_outcome)]
  want = [maker.make(o).example for maker, o in jobs]
  # The worker's own start (no package `__init__`, which imports TFDS).
  start = pipeline._WORKER_CODE.replace("pipeline.worker_main()\n", "")  # pylint: disable=protected-access
  assert start != pipeline._WORKER_CODE  # pylint: disable=protected-access
  script = start + (
      "import pickle\n"
      "jobs = pickle.load(sys.stdin.buffer)\n"
      "made = [maker.make(o).example for maker, o in jobs]\n"
      "heavy = [m for m in sys.modules if m.split('.')[0] in"
      " ('tensorflow', 'tensorflow_datasets')]\n"
      "assert not heavy, heavy\n"
      "sys.stdout.buffer.write(pickle.dumps(made))\n")
  proc = subprocess.run(
      [sys.executable, "-c", script], input=pickle.dumps(jobs),
      capture_output=True, check=False, timeout=120)
  assert proc.returncode == 0, proc.stderr.decode()
  assert pickle.loads(proc.stdout) == want


def test_workers_add_their_check_cache_entries(tmp_path, monkeypatch):
  """The build process only counts the entries; the workers added them."""
  import sqlite3  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import check_cache  # pylint: disable=g-import-not-at-top
  helpers.make_class_folders(tmp_path / "in", ("cat", "dog"), 20)
  monkeypatch.setattr(builder_lib, "MIN_IMAGES_FOR_WORKERS", 1)
  added_here = []
  flush = check_cache.Cache.flush

  def counting_flush(self):
    added_here.append(len(self._pending))  # pylint: disable=protected-access
    flush(self)
  monkeypatch.setattr(check_cache.Cache, "flush", counting_flush)
  config = MyImagesConfig(name="w", num_workers=2,
                          check_cache_dir=str(tmp_path / "cache"))
  built = helpers.build(tmp_path / "in", tmp_path / "out", config=config)
  stats = helpers.report(built)["check_cache"]
  assert stats["checked"] == stats["added"] == 40
  # Here: the first image of each split (checked here to know the split is
  # not empty); the 37 others by the workers.
  assert sum(added_here) == len(built.info.splits)
  path = tmp_path / "cache" / check_cache.FILE_NAME
  with sqlite3.connect(path) as conn:
    assert conn.execute("SELECT count(*) FROM checks").fetchone()[0] == 40
  assert check_cache.verify(str(path)) == []
  again = helpers.build(tmp_path / "in", tmp_path / "again", config=config)
  assert helpers.report(again)["check_cache"]["reused"] == 40


@pytest.mark.parametrize("download", [
    {"max_examples_per_split": 7}, {"nondeterministic_order": True}],
    ids=["capped", "nondeterministic order"])
def test_tfds_download_options_same_release(tmp_path, monkeypatch, download):
  """A capped debug build (TFDS's writer, fed the workers' bytes) and a
  build in input order (`shards.py`) write what TFDS's path writes."""
  _folders(tmp_path / "in")
  monkeypatch.setattr(shard_utils.ShardConfig, "min_shard_size", 4_000)
  monkeypatch.setattr(shard_utils.ShardConfig, "max_shard_size", 8_000)
  two, none, theirs = _builds(tmp_path, monkeypatch, tmp_path / "in",
                              download=download)
  for built in (two, none):
    _assert_same(built, theirs)
  lengths = {s.name: s.shard_lengths for s in two.info.splits.values()}
  if "max_examples_per_split" in download:
    assert all(sum(n) <= 7 for n in lengths.values())
  else:
    assert len(lengths["train"]) > 1


@pytest.mark.parametrize("values", [
    {"i": 3, "f": 0.1, "b": True, "t": "é x", "il": [1, -2], "fl": [0.5],
     "bl": [True, False], "tl": ["a", "ü"]},
    {"i": -1, "f": -2.5, "b": False, "t": "", "il": [], "fl": [], "bl": [],
     "tl": []},
])
def test_metadata_columns_serialized_as_tfds(values):
  """Every metadata column type (`readers.common.COLUMN_TYPES`), empty lists
  and unicode included, as TFDS encodes them."""
  kinds = dict(zip(values, ("int", "float", "bool", "text", "int_list",
                            "float_list", "bool_list", "text_list")))
  schema = features.Schema(kind="images", store_images=True,
                           columns=tuple(kinds.items()))
  fd = schema.features_dict()
  rec = records.ImageRecord(key="a", path="/d/a", file_name="a",
                            split="train", source="/d/m.jsonl",
                            columns=json.dumps(values))
  image = images.LoadedImage(
      data=b"\xff\xd8 jpeg", format="jpeg", source_format="JPEG", width=4,
      height=3, display_width=4, display_height=3)
  example = schema.to_example(rec, image, (), None, None)
  serializer = writing.Serializer.for_features(fd)
  assert serializer.serialize(example) == _tfds_bytes(fd, example)
