"""`writing`: our serialized examples are exactly TFDS's, memory is capped."""

from __future__ import annotations

import dataclasses
import pathlib
import zlib

import pytest
import tensorflow_datasets as tfds

from image_folder_tfds import MyImagesConfig
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


def test_unplanned_features_keep_tfds_path():
  fd = tfds.features.FeaturesDict({"v": tfds.features.Video(shape=(None, 4, 4, 3))})
  assert writing.Serializer.for_features(fd) is None


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


@pytest.mark.parametrize("workers", [0, 2])
def test_build_shards_identical_to_tfds_path(tmp_path, monkeypatch, workers):
  """70 COCO images with boxes and keypoints: same shard bytes both ways."""
  _coco(tmp_path / "in")
  config = MyImagesConfig(name="w", num_workers=workers)
  fast = helpers.build(tmp_path / "in", tmp_path / "fast", config=config)
  monkeypatch.setattr(writing.Serializer, "for_features",
                      classmethod(lambda cls, fd: None))
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


def test_spilled_build_reads_back(tmp_path, monkeypatch):
  """Above the cap, TFDS spills to bucket files: nothing is lost."""
  written = helpers.make_class_folders(tmp_path / "in", per_class=5)
  in_memory = helpers.build(tmp_path / "in", tmp_path / "mem")
  monkeypatch.setattr(writing, "SHUFFLE_MEMORY", 1)
  spilled = helpers.build(tmp_path / "in", tmp_path / "out")
  assert set(helpers.read_all(spilled)) == set(written)
  # Same shards, byte for byte, as without spilling.
  a, b = _shards(in_memory), _shards(spilled)
  assert a and a == b


def test_local_bucket_files_are_tfds_bucket_files(tmp_path):
  from tensorflow_datasets.core import shuffle
  items = [(7 << 100, b"x" * 70_000), (3, b""), (2**128 - 1, b"\x00abc")]
  tfds_bucket = shuffle._Bucket(tmp_path / "tfds.tmp")
  for key, data in items:
    tfds_bucket.add(key, data)
  tfds_bucket.flush()
  with writing.bounded_shuffle_memory():
    assert shuffle._Bucket is not type(tfds_bucket)
    ours = shuffle._Bucket(tmp_path / "sub" / "ours.tmp")
    empty = shuffle._Bucket(tmp_path / "empty.tmp")
  for key, data in items:
    ours.add(key, data)
  assert (len(ours), ours.size) == (3, 70_004)
  assert list(ours.read_values()) == items
  assert (tmp_path / "sub" / "ours.tmp").read_bytes() == (
      tmp_path / "tfds.tmp").read_bytes()
  assert list(empty.read_values()) == []
  ours.del_file()
  empty.del_file()
  assert not (tmp_path / "sub" / "ours.tmp").exists()
  assert shuffle._Bucket is type(tfds_bucket)  # Restored.


def test_image_not_given_as_bytes_takes_tfds_path():
  import numpy as np  # pylint: disable=g-import-not-at-top
  fd = features.legacy_features_dict(store_images=True)
  features.set_class_names(fd, ["cat", "dog"])
  example = _example([])
  example[features.IMAGE] = np.zeros((3, 4, 3), np.uint8)
  with pytest.raises(writing.Unsupported):
    writing.Serializer.for_features(fd).serialize(example)


@pytest.mark.parametrize("objects", [[], [_object(1, 3), _object(0, 17)]],
                         ids=["no objects", "objects"])
def test_serialize_around_the_image_gives_the_same_bytes(objects):
  fd = features.legacy_features_dict(store_images=True)
  features.set_class_names(fd, ["cat", "dog"])
  serializer = writing.Serializer.for_features(fd)
  example = _example(objects)
  data = example[features.IMAGE]
  head, tail = serializer.serialize_around(example, data)
  assert head + data + tail == serializer.serialize(example)
  # Equal bytes, but not the image's own object: nothing to cut around.
  assert serializer.serialize_around(example, bytes(bytearray(data))) is None


def _mixed_folders(root):
  """JPEGs kept as they are, plus a BMP and a 16-bit PNG that are converted."""
  written = helpers.make_class_folders(root, per_class=12)
  helpers.write_image(root / "cat" / "conv.bmp", seed=90, fmt="BMP")
  helpers.write_image(root / "dog" / "conv.png", seed=91, fmt="PNG")
  return written


def _bucket_adds(monkeypatch):
  from tensorflow_datasets.core import shuffle
  bucket = writing._local_bucket_class(shuffle)
  adds = []
  real_add = bucket.add
  monkeypatch.setattr(bucket, "add", lambda self, k, d: (
      adds.append(k), real_add(self, k, d))[1])
  return adds


@pytest.mark.parametrize("workers", [0, 2])
def test_written_once_same_shards_as_tfds_shuffler(tmp_path, monkeypatch,
                                                   workers):
  """No example goes to a bucket file; the shards are TFDS's, byte for byte.

  Baselines: every example held by TFDS's shuffler in memory, and every
  example spilled to its buckets; shard sizes small enough for 4 shards.
  """
  from tensorflow_datasets.core.utils import shard_utils
  _mixed_folders(tmp_path / "in")
  monkeypatch.setattr(shard_utils.ShardConfig, "min_shard_size", 4_000)
  monkeypatch.setattr(shard_utils.ShardConfig, "max_shard_size", 8_000)
  config = MyImagesConfig(name="w", num_workers=workers)
  adds = _bucket_adds(monkeypatch)
  once = helpers.build(tmp_path / "in", tmp_path / "once", config=config)
  assert adds == []  # Nothing spilled, nothing written twice.
  # TFDS's shuffler holding all the bytes (the path before `Reread`).
  monkeypatch.setattr(writing.Serializer, "serialize_around",
                      lambda self, example, data: None)
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


def _reread_items(root, n):
  """(key, Reread) for n real files, and (key, bytes) for every third key."""
  items = []
  for i in range(n):
    path = root / f"{i}.jpg"
    data = helpers.write_image(path, seed=i)
    reread = writing.Reread(head=b"h%d" % i, data=data, tail=b"t%d" % (i % 2),
                            path=str(path), crc=zlib.crc32(data))
    items.append((f"k{i}", reread.join() if i % 3 == 0 else reread))
  return items


@pytest.mark.parametrize("limit", [1 << 20, 2_000, 1],
                         ids=["all kept", "budget reached", "nothing kept"])
def test_write_once_shuffler_gives_tfds_order_and_bytes(tmp_path, limit):
  from tensorflow_datasets.core import shuffle
  items = _reread_items(tmp_path, 30)
  tfds_shuffler = shuffle.Shuffler(tmp_path / "a", hash_salt="train")
  for key, data in items:
    tfds_shuffler.add(key, data if isinstance(data, bytes) else data.join())
  expected = list(tfds_shuffler)
  with writing.bounded_shuffle_memory(limit):
    ours = shuffle.Shuffler(tmp_path / "b", hash_salt="train")
  for key, data in items:
    ours.add(key, data)
  kept = len(ours._entries)
  assert (ours.num_examples, ours.size) == (
      tfds_shuffler.num_examples, tfds_shuffler.size)
  assert list(ours) == expected
  assert sum(ours.bucket_lengths) == 30
  if limit == 1 << 20:
    assert kept == 20 and ours._in_memory  # The 10 bytes ones: in memory.
  elif limit == 2_000:
    assert 0 < kept < 20 and not ours._in_memory  # The rest spilled.
  else:
    assert kept == 0


def test_write_once_shuffler_refuses_duplicate_keys(tmp_path):
  from tensorflow_datasets.core import shuffle
  (_, a), (_, b) = _reread_items(tmp_path, 2)
  with writing.bounded_shuffle_memory():
    ours = shuffle.Shuffler(tmp_path, hash_salt="train")
  ours.add("same", a)
  ours.add("same", b)
  with pytest.raises(shuffle.DuplicatedKeysError):
    list(ours)


@pytest.mark.parametrize("change", ["rewritten", "deleted"])
def test_image_changed_before_it_is_written_fails_naming_it(
    tmp_path, monkeypatch, change):
  """The file is checked, then changed before TFDS writes it: no bad shard."""
  helpers.make_class_folders(tmp_path / "in", per_class=4)
  victim = tmp_path / "in" / "dog" / "dog_2.jpg"
  real_read_again = writing._read_again

  def read_again(path, size, crc):
    if path == str(victim) and victim.exists():
      if change == "deleted":
        victim.unlink()
      else:
        helpers.write_image(victim, seed=77)
    return real_read_again(path, size, crc)

  monkeypatch.setattr(writing, "_read_again", read_again)
  words = "changed while the build ran" if change == "rewritten" else (
      "could not be read again")
  with pytest.raises(Exception, match=words) as e:
    helpers.build(tmp_path / "in", tmp_path / "out")
  assert str(victim) in str(e.value)
  assert not list((tmp_path / "out").rglob("*.tfrecord*"))


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
