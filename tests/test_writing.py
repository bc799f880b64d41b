"""`writing` and `wire`: our serialized examples are exactly TFDS's; builds
written by `shards.py` give TFDS's own shards."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest
import tensorflow_datasets as tfds

from image_folder_tfds import MyImagesConfig
from image_folder_tfds import builder as builder_lib
from image_folder_tfds import features
from image_folder_tfds import release
from image_folder_tfds import writing
from tensorflow_datasets.core import example_serializer

import helpers


def _tfds_bytes(fd, example) -> bytes:
  ser = example_serializer.ExampleSerializer(fd.get_serialized_info())
  return release.canonical_example(
      ser.serialize_example(fd.encode_example(example)))


def _example(objects):
  return {
      features.IMAGE: b"\xff\xd8 not checked here", features.FILE_NAME: "a/é.jpg",
      features.ID: "7", features.HEIGHT: 30, features.WIDTH: 40,
      features.LABEL: 1, features.LABEL_TEXT: "dog", features.LABEL_CONF: 0.25,
      features.EXTRA: '{"k": 1}', features.OBJECTS: objects,
  }


def _object(label, keypoints, crowd=False):
  return {
      features.BBOX: tfds.features.BBox(ymin=0.1, xmin=0.2, ymax=0.5, xmax=1.0),
      features.OBJ_LABEL: label, features.OBJ_TEXT: "dog",
      features.OBJ_SCORE: -1.0, features.OBJ_CONF: 0.5, features.OBJ_AREA: 0.3,
      features.OBJ_ID: "o1", features.OBJ_IS_CROWD: crowd,
      features.KEYPOINTS: [
          {features.KP_X: 0.1 * i, features.KP_Y: 0.05 * i, features.KP_V: i % 3,
           features.KP_SCORE: -1.0} for i in range(keypoints)],
  }


@pytest.mark.parametrize("objects", [
    [],
    [_object(0, 0)],
    [_object(1, 3), _object(-1, 0, crowd=True), _object(0, 17)],
], ids=["no objects", "one object", "ragged keypoints"])
def test_same_bytes_as_tfds(objects):
  fd = features.legacy_features_dict(store_images=True)
  features.set_class_names(fd, ["cat", "dog"])
  serializer = writing.Serializer.for_features(fd)
  assert serializer is not None
  example = _example(objects)
  assert serializer.serialize(example) == _tfds_bytes(fd, example)


def _schema2_records(num_keypoints):
  from image_folder_tfds import records  # pylint: disable=g-import-not-at-top
  kps = tuple(records.Keypoint(x=0.1 * i, y=0.2, v=i % 3, score=0.5)
              for i in range(num_keypoints))
  objs = (
      records.ObjectRecord(box=(0.2, 0.1, 1.0, 0.5), label=1, score=0.9,
                           conf=0.5, area=0.3, id="o1", is_crowd=True,
                           keypoints=kps, keypoint_score_given=True),
      records.ObjectRecord(box=None, label=0, keypoints=kps[:1]),
  )
  rec = records.ImageRecord(
      key="a/é.jpg", path="/d/a/é.jpg", file_name="a/é.jpg", split="train",
      source="x.json", id="7", label=1, label_conf=0.25, extra='{"k": 1}',
      objects=objs)
  return rec, objs


@pytest.mark.parametrize("kind,num_keypoints", [
    ("classification", 0), ("detection", 0), ("keypoints", 1),
    ("keypoints", 3)])
def test_schema2_same_bytes_as_tfds(kind, num_keypoints):
  from image_folder_tfds import images  # pylint: disable=g-import-not-at-top
  rec, objs = _schema2_records(num_keypoints or 1)
  if kind != "keypoints":
    objs = tuple(dataclasses.replace(o, keypoints=()) for o in objs)
    rec = dataclasses.replace(
        rec, objects=objs if kind == "detection" else ())
  schema = features.Schema.from_records([rec], kind=kind)
  assert (schema.kind, schema.num_keypoints) == (kind, num_keypoints)
  fd = schema.features_dict()
  features.set_class_names(fd, ["cat", "dog"])
  serializer = writing.Serializer.for_features(fd)
  assert serializer is not None
  image = images.LoadedImage(
      data=b"\xff\xd8 not checked", format="jpeg", source_format="JPEG",
      width=40, height=30, display_width=40, display_height=30)
  example = schema.to_example(rec, image, rec.objects)
  assert serializer.serialize(example) == _tfds_bytes(fd, example)


def test_tfds_checks_kept():
  fd = features.legacy_features_dict(store_images=True)
  features.set_class_names(fd, ["cat", "dog"])
  serializer = writing.Serializer.for_features(fd)
  with pytest.raises(ValueError, match="num_classes"):
    serializer.serialize(_example([_object(2, 0)]))
  bad = _object(0, 0)
  bad[features.BBOX] = tfds.features.BBox(ymin=0.5, xmin=0.2, ymax=0.1, xmax=1.0)
  with pytest.raises(ValueError, match="min <= max"):
    serializer.serialize(_example([bad]))


def test_unplanned_features_are_refused_naming_them():
  fd = tfds.features.FeaturesDict({"v": tfds.features.Video(shape=(None, 4, 4, 3))})
  with pytest.raises(writing.Unsupported, match="v: Video"):
    writing.Serializer.for_features(fd)


def _shards(builder) -> dict[str, bytes]:
  return {p.name: p.read_bytes()
          for p in pathlib.Path(builder.data_path).glob("*.tfrecord*")}


def _coco(root):
  images = [{"id": i, "file_name": f"{i:03d}.jpg", "width": 40, "height": 30,
             "seed": i} for i in range(1, 71)]
  annotations = [
      {"id": 100 + i, "image_id": i, "category_id": 1 + i % 2,
       "bbox": [2.0, 3.0, 10.0 + i % 7, 8.0], "area": 50.0, "iscrowd": 0,
       "num_keypoints": 2,
       "keypoints": [5.0, 6.0, 2, 7.0, 8.0, 1] if i % 3 else [0, 0, 0, 9.0, 9.0, 2]}
      for i in range(1, 71) for _ in range(i % 3)]
  categories = [{"id": 1, "name": "cat", "keypoints": ["a", "b"]},
                {"id": 2, "name": "dog", "keypoints": ["a", "b"]}]
  helpers.write_coco(root, "train", images, annotations, categories)


def _tfds_path(monkeypatch) -> None:
  """Builds from here on go through TFDS's writer and serializer: no maker,
  so the builder yields example dicts to TFDS's `SplitBuilder` (made
  canonical by `writing.passthrough`): the shards of the code before issue
  27, whose equality with TFDS's own the tests of that code checked."""
  monkeypatch.setattr(builder_lib.MyImages, "_maker", lambda self, *args: None)


@pytest.mark.parametrize("workers", [0, 2])
def test_build_shards_identical_to_tfds_path(tmp_path, monkeypatch, workers):
  """70 COCO images with boxes and keypoints: same shard bytes both ways."""
  _coco(tmp_path / "in")
  config = MyImagesConfig(name="w", num_workers=workers)
  fast = helpers.build(tmp_path / "in", tmp_path / "fast", config=config)
  _tfds_path(monkeypatch)
  slow = helpers.build(tmp_path / "in", tmp_path / "slow", config=config)
  a, b = _shards(fast), _shards(slow)
  assert a and a.keys() == b.keys()
  for name in a:
    assert a[name] == b[name], name
  assert sum(len(x) for x in helpers.read_all(fast).values()) > 0


def test_shuffle_memory_capped_and_restored():
  from tensorflow_datasets.core import shuffle
  before = shuffle.MAX_MEM_BUFFER_SIZE
  with writing.bounded_shuffle_memory(1 << 20):
    assert shuffle.MAX_MEM_BUFFER_SIZE == 1 << 20
  assert shuffle.MAX_MEM_BUFFER_SIZE == before


def test_image_not_given_as_bytes_is_refused():
  import numpy as np  # pylint: disable=g-import-not-at-top
  fd = features.legacy_features_dict(store_images=True)
  features.set_class_names(fd, ["cat", "dog"])
  example = _example([])
  example[features.IMAGE] = np.zeros((3, 4, 3), np.uint8)
  with pytest.raises(writing.Unsupported):
    writing.Serializer.for_features(fd).serialize(example)


def _mixed_folders(root):
  """JPEGs kept as they are, plus a BMP and a 16-bit PNG that are converted."""
  written = helpers.make_class_folders(root, per_class=12)
  helpers.write_image(root / "cat" / "conv.bmp", seed=90, fmt="BMP")
  helpers.write_image(root / "dog" / "conv.png", seed=91, fmt="PNG")
  return written


def _bucket_adds(monkeypatch):
  from tensorflow_datasets.core import shuffle
  adds = []
  real_add = shuffle._Bucket.add
  monkeypatch.setattr(shuffle._Bucket, "add", lambda self, k, d: (
      adds.append(k), real_add(self, k, d))[1])
  return adds


@pytest.mark.parametrize("workers", [0, 2])
def test_written_once_same_shards_as_tfds_writer(tmp_path, monkeypatch,
                                                 workers):
  """Nothing goes to a bucket file, each image file is read once; the shards
  are TFDS's, byte for byte, held in memory or spilled to its buckets.

  Shard sizes small enough for 4 train shards; a broken image moves the
  shard ends after the shards before it were written.
  """
  from tensorflow_datasets.core.utils import shard_utils
  from image_folder_tfds import images  # pylint: disable=g-import-not-at-top
  _mixed_folders(tmp_path / "in")
  (tmp_path / "in" / "dog" / "zz_broken.jpg").write_bytes(b"not a jpeg")
  monkeypatch.setattr(shard_utils.ShardConfig, "min_shard_size", 4_000)
  monkeypatch.setattr(shard_utils.ShardConfig, "max_shard_size", 8_000)
  config = MyImagesConfig(name="w", num_workers=workers)
  adds = _bucket_adds(monkeypatch)
  reads = []
  real_read = images.read_file
  monkeypatch.setattr(images, "read_file", lambda path, *a: (
      reads.append(path), real_read(path, *a))[1])
  once = helpers.build(tmp_path / "in", tmp_path / "once", config=config)
  assert adds == []  # Nothing spilled, nothing written twice.
  if not workers:  # Read in this process: each file once.
    assert sorted(reads) == sorted(
        str(p) for p in (tmp_path / "in").rglob("*") if p.is_file())
  _tfds_path(monkeypatch)
  held = helpers.build(tmp_path / "in", tmp_path / "held", config=config)
  monkeypatch.setattr(writing, "SHUFFLE_MEMORY", 1)
  spilled = helpers.build(tmp_path / "in", tmp_path / "spilled", config=config)
  assert len(adds) == 26  # Every example of the spilled build.
  a, b, c = _shards(once), _shards(held), _shards(spilled)
  assert len([n for n in a if "train" in n]) > 1
  assert a and a == b == c
  for x in (held, spilled):
    assert [(s.name, s.shard_lengths, s.num_bytes)
            for s in once.info.splits.values()] == [
                (s.name, s.shard_lengths, s.num_bytes)
                for s in x.info.splits.values()]
  assert helpers.report(once) == helpers.report(held)


@pytest.mark.parametrize("what", ["instance masks", "label image"])
def test_masks_same_bytes_as_tfds(what):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import images  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import masks  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import records  # pylint: disable=g-import-not-at-top
  png = masks.encode_png(np.eye(30, 40, dtype=np.uint8))
  if what == "instance masks":
    objs = (records.ObjectRecord(box=(0.2, 0.1, 1.0, 0.5), label=1,
                                 segmentation=0),
            records.ObjectRecord(box=(0.2, 0.1, 0.4, 0.5), label=0))
    rec = records.ImageRecord(key="a.jpg", path="/d/a.jpg", file_name="a.jpg",
                              split="train", source="x.json", objects=objs)
    pngs, label_image = (png, masks.empty_png(30, 40)), None
  else:
    rec = records.ImageRecord(key="a.jpg", path="/d/a.jpg", file_name="a.jpg",
                              split="train", source="/d/a.jpg",
                              mask_path="/d/m.png", mask_classes=2)
    pngs, label_image = (), png
  schema = features.Schema.from_records([rec])
  fd = schema.features_dict()
  features.set_class_names(fd, ["cat", "dog"])
  serializer = writing.Serializer.for_features(fd)
  assert serializer is not None
  image = images.LoadedImage(
      data=b"\xff\xd8 not checked", format="jpeg", source_format="JPEG",
      width=40, height=30, display_width=40, display_height=30)
  example = schema.to_example(rec, image, rec.objects, pngs, label_image)
  assert serializer.serialize(example) == _tfds_bytes(fd, example)
