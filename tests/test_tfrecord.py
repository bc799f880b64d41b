"""TFRecords in, a checked release out (`readers/tfrecord.py`).

The records are written here with TensorFlow (`tf.train.Example`,
`tf.io.TFRecordWriter`) in the key layout of each script the reader knows:
inception's build_image_data.py, the OD API's create_coco_tf_record.py, seed
001's create_tfrecords.py (both versions, with and without the images) and
the flowers tutorial. Each is built and compared with the build of the same
images from class folders, COCO or seed-001 JSON: same pixels, boxes to 1e-6,
labels, keypoints.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import struct
import sys

import hypothesis
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import strategies as st

import annotation_helpers as ah
import helpers
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds.config import MyImagesConfig
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import tfrecord

OPTIONS = readers.ReadOptions(
    split_fractions={"train": 0.8, "validation": 0.1, "test": 0.1})
CLASSES = ("cat", "dog")
# (file, class, width, height, boxes in pixels (x, y, w, h), keypoints per box
# [(x, y, v)]): the one data set every layout below is written from.
IMAGES = [
    ("cat_0.jpg", "cat", 40, 30, [(4, 3, 20, 15)], [[(10, 8, 2), (20, 12, 1)]]),
    ("cat_1.jpg", "cat", 48, 36, [(0, 0, 48, 36), (10, 5, 8, 9)],
     [[(1, 1, 2), (40, 30, 2)], [(12, 7, 2), (0, 0, 0)]]),
    ("chat_été.jpg", "cat", 32, 32, [], []),
    ("dog_0.jpg", "dog", 40, 30, [(30, 20, 10, 10)],
     [[(35, 25, 2), (31, 21, 1)]]),
    ("dog_1.jpg", "dog", 36, 40, [(2, 2, 30, 30), (5, 6, 7, 8)],
     [[(3, 3, 2), (20, 20, 2)], [(6, 7, 1), (8, 9, 2)]]),
    ("dog_2.jpg", "dog", 50, 30, [(1, 1, 10, 10)], [[(2, 2, 2), (5, 5, 2)]]),
]
# COCO category ids with gaps, as COCO's own: the label map maps them.
CATEGORY_IDS = {"cat": 3, "dog": 7}


# --- Writing records in each script's key layout ------------------------------


def _b(values):
  values = values if isinstance(values, list) else [values]
  return tf.train.Feature(bytes_list=tf.train.BytesList(
      value=[v.encode() if isinstance(v, str) else v for v in values]))


def _i(values):
  values = values if isinstance(values, list) else [values]
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _f(values):
  values = values if isinstance(values, list) else [values]
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _write(path, examples) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with tf.io.TFRecordWriter(str(path)) as writer:
    for ex in examples:
      writer.write(ex if isinstance(ex, bytes) else ex.SerializeToString())
  return path


def _example(features: dict) -> tf.train.Example:
  return tf.train.Example(features=tf.train.Features(feature=features))


def inception_example(name, data, label_index, text, width, height):
  """build_image_data.py's `_convert_to_example`: labels from 1."""
  return _example({
      "image/height": _i(height), "image/width": _i(width),
      "image/colorspace": _b("RGB"), "image/channels": _i(3),
      "image/class/label": _i(label_index + 1), "image/class/text": _b(text),
      "image/format": _b("JPEG"), "image/filename": _b(os.path.basename(name)),
      "image/encoded": _b(data)})


def od_example(image_id, name, data, width, height, boxes, keypoints):
  """create_coco_tf_record.py's `create_tf_example`, with keypoints."""
  feats = {
      "image/height": _i(height), "image/width": _i(width),
      "image/filename": _b(name), "image/source_id": _b(str(image_id)),
      "image/key/sha256": _b(hashlib.sha256(data).hexdigest()),
      "image/encoded": _b(data), "image/format": _b("jpeg"),
      "image/object/bbox/xmin": _f([x / width for x, y, w, h, _ in boxes]),
      "image/object/bbox/xmax": _f([(x + w) / width for x, y, w, h, _ in boxes]),
      "image/object/bbox/ymin": _f([y / height for x, y, w, h, _ in boxes]),
      "image/object/bbox/ymax": _f([(y + h) / height for x, y, w, h, _ in boxes]),
      "image/object/class/text": _b([c for *_, c in boxes]),
      "image/object/class/label": _i([CATEGORY_IDS[c] for *_, c in boxes]),
      "image/object/is_crowd": _i([0] * len(boxes)),
      "image/object/area": _f([float(w * h) for x, y, w, h, _ in boxes]),
      "image/object/keypoint/x": _f([kx / width for kps in keypoints
                                     for kx, ky, kv in kps]),
      "image/object/keypoint/y": _f([ky / height for kps in keypoints
                                     for kx, ky, kv in kps]),
      "image/object/keypoint/visibility": _i([kv for kps in keypoints
                                              for kx, ky, kv in kps]),
      "image/object/keypoint/num": _i([sum(1 for *_, v in kps if v)
                                       for kps in keypoints]),
      "image/object/keypoint/text": _b(["eye", "tail"] * len(keypoints)),
  }
  return _example(feats)


def seed001_example(entry, data, *, later_version: bool):
  """create_tfrecords.py's `_convert_to_example`: every key, with its
  defaults (class label 0, conf 1.0, count 0). The later version (thhung's,
  with `store_images`) adds the OD API's keys and writes object ids as text;
  the first wrote them as int64."""
  cls = entry.get("class", {})
  obj = entry.get("object", {})
  bbox, parts = obj.get("bbox", {}), obj.get("parts", {})
  ids = obj.get("id", [])
  feats = {
      "image/height": _i(entry["height"]), "image/width": _i(entry["width"]),
      "image/colorspace": _b("RGB"), "image/channels": _i(3),
      "image/format": _b("JPEG"), "image/filename": _b(entry["filename"]),
      "image/id": _b(str(entry["id"])), "image/encoded": _b(data),
      "image/extra": _b(json.dumps(entry["extra"], sort_keys=True)
                        if "extra" in entry else ""),
      "image/class/label": _i(cls.get("label", 0)),
      "image/class/text": _b(cls.get("text", "")),
      "image/class/conf": _f(cls.get("conf", 1.0)),
      "image/object/bbox/xmin": _f(bbox.get("xmin", [])),
      "image/object/bbox/xmax": _f(bbox.get("xmax", [])),
      "image/object/bbox/ymin": _f(bbox.get("ymin", [])),
      "image/object/bbox/ymax": _f(bbox.get("ymax", [])),
      "image/object/bbox/label": _i(bbox.get("label", [])),
      "image/object/bbox/text": _b(bbox.get("text", [])),
      "image/object/bbox/conf": _f(bbox.get("conf", [])),
      "image/object/bbox/score": _f(bbox.get("score", [])),
      "image/object/parts/x": _f(parts.get("x", [])),
      "image/object/parts/y": _f(parts.get("y", [])),
      "image/object/parts/v": _i(parts.get("v", [])),
      "image/object/parts/score": _f(parts.get("score", [])),
      "image/object/count": _i(obj.get("count", 0)),
      "image/object/area": _f(obj.get("area", [])),
      "image/object/id": (_b([str(i) for i in ids]) if later_version
                          else _i([int(i) for i in ids])),
  }
  if later_version:
    feats.update({
        "image/source_id": _b(str(entry["id"])),
        "image/key/sha256": _b(hashlib.sha256(data).hexdigest()),
        "image/object/class/label": _i(bbox.get("label", [])),
        "image/object/class/text": _b(bbox.get("text", [])),
        "image/object/is_crowd": _i([]),
    })
  return _example(feats)


def flowers_example(data, label, text):
  """The flowers tutorial's `_convert_to_example`."""
  return _example({"label": _i(label), "text": _b(text), "encoded": _b(data)})


# --- The same data as class folders, COCO and seed-001 JSON -------------------


def _images(root):
  """Writes the images under `root/<class>/`; {name: bytes}."""
  return {name: helpers.write_image(pathlib.Path(root) / cls / name, seed=i,
                                    width=w, height=h)
          for i, (name, cls, w, h, _, _) in enumerate(IMAGES)}


def _seed001_entries(prefix=""):
  """Seed-001 entries of IMAGES, every field given (normalized)."""
  out = []
  for i, (name, cls, w, h, boxes, kps) in enumerate(IMAGES):
    entry = {"filename": f"{prefix}{cls}/{name}", "id": str(100 + i),
             "width": w, "height": h, "extra": {"n": i},
             "class": {"label": CLASSES.index(cls), "text": cls,
                       "conf": 0.5 + i / 20}}
    if boxes:
      entry["object"] = {
          "count": len(boxes), "id": [str(10 * i + k) for k in range(len(boxes))],
          "area": [bw * bh / (w * h) for _, _, bw, bh in boxes],
          "bbox": {"xmin": [x / w for x, _, _, _ in boxes],
                   "ymin": [y / h for _, y, _, _ in boxes],
                   "xmax": [(x + bw) / w for x, _, bw, _ in boxes],
                   "ymax": [(y + bh) / h for _, y, _, bh in boxes],
                   "label": [CLASSES.index(cls)] * len(boxes),
                   "text": [cls] * len(boxes),
                   "score": [0.9 - k / 10 for k in range(len(boxes))],
                   "conf": [0.8] * len(boxes)},
          "parts": {"x": [x / w for k in kps for x, _, _ in k],
                    "y": [y / h for k in kps for _, y, _ in k],
                    "v": [v for k in kps for _, _, v in k],
                    "score": [0.7] * sum(len(k) for k in kps)}}
    out.append(entry)
  return out


def _coco(root):
  """A COCO folder of IMAGES (categories 3 cat, 7 dog, keypoints)."""
  anns, images = [], []
  for i, (name, cls, w, h, boxes, kps) in enumerate(IMAGES):
    images.append({"id": i + 1, "file_name": name, "width": w, "height": h,
                   "seed": i})
    for k, (box, points) in enumerate(zip(boxes, kps)):
      anns.append({"id": 100 * (i + 1) + k, "image_id": i + 1,
                   "category_id": CATEGORY_IDS[cls], "bbox": list(box),
                   "area": float(box[2] * box[3]), "iscrowd": 0,
                   "keypoints": [c for p in points for c in p],
                   "num_keypoints": sum(1 for p in points if p[2])})
  cats = [{"id": cid, "name": name, "keypoints": ["eye", "tail"]}
          for name, cid in CATEGORY_IDS.items()]
  helpers.write_coco(root, "train", images, anns, cats, kind="instances")


LABEL_MAP = """# The OD API's label map: ids from 1, with gaps.
item {
  name: "/m/cat"
  id: 3
  display_name: 'cat'
}
item: { id: 7, name: 'dog'; }  # another style
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """{layout: (builder, {file_name: example})} for the reference builds
  and the TFRecord builds of the same images."""
  base = tmp_path_factory.mktemp("tfrecord")
  out = {}

  def build(name, root, config=None):
    builder = helpers.build(root, base / f"data_{name}", config)
    out[name] = (builder, helpers.read_all(builder))

  # Class folders, and the inception and flowers records of them.
  folders = base / "folders"
  data = _images(folders)
  (folders / "labels.txt").write_text("cat\ndog\n")
  build("folders", folders)
  inception = base / "inception"
  shards = {"train-00000-of-00002": IMAGES[0:2], "train-00001-of-00002":
            IMAGES[2:4], "validation-00000-of-00001": IMAGES[4:]}
  for shard, images in shards.items():
    _write(inception / shard, [
        inception_example(f"/old/{cls}/{name}", data[name],
                          CLASSES.index(cls), cls, w, h)
        for name, cls, w, h, _, _ in images])
  build("inception", inception)
  flowers = base / "flowers"
  _write(flowers / "flower.tfrecords", [
      flowers_example(data[name], CLASSES.index(cls), cls)
      for name, cls, *_ in IMAGES])
  build("flowers", flowers)

  # COCO, and the OD API's records of it (a unicode file name).
  coco = base / "coco"
  _coco(coco)
  build("coco", coco)
  od = base / "od"
  od.mkdir()
  (od / "label_map.pbtxt").write_text(LABEL_MAP)
  _write(od / "données_train.record", [
      od_example(i + 1, name, (coco / "train2017" / name).read_bytes(), w, h,
                 [(*box, cls) for box in boxes], kps)
      for i, (name, cls, w, h, boxes, kps) in enumerate(IMAGES)])
  build("od", od)

  # Seed-001 JSON, and create_tfrecords.py's records of it: with the images
  # (the first version), and without (the later one, store_images=False:
  # paths of the machine that wrote them, the images now in DIR).
  seed = base / "seed001"
  _images(seed / "img")
  entries = _seed001_entries("img/")
  ah.write_json(seed / "train.json", entries)
  build("seed001", seed)
  with_images = base / "seed001_images"
  _write(with_images / "train-00000-of-00001", [
      seed001_example(e, (seed / e["filename"]).read_bytes(),
                      later_version=False) for e in entries])
  build("seed001_images", with_images)
  paths_only = base / "seed001_paths"
  _images(paths_only / "img")
  _write(paths_only / "train.tfrecords", [
      seed001_example(dict(e, filename=f"/home/gvh/photos/{e['filename']}"),
                      b"", later_version=True) for e in entries])
  build("seed001_paths", paths_only,
        MyImagesConfig(name="paths", store_images=False))
  out["data"] = data
  out["roots"] = {"seed001_paths": paths_only}
  return out


def _pixels(example):
  return np.asarray(example["image"])


# --- Round trips --------------------------------------------------------------


def test_inception_records_build_as_their_class_folders(built):
  builder, got = built["inception"]
  _, want = built["folders"]
  assert builder.info.metadata["layout"].startswith(
      "tfrecord (inception build_image_data.py)")
  assert ah.class_names(builder) == list(CLASSES)
  assert helpers.file_problems(helpers.report(builder)) == []
  assert sorted(got) == sorted(name for name, *_ in IMAGES)
  by_name = {os.path.basename(k): v for k, v in want.items()}
  for name, cls, w, h, _, _ in IMAGES:
    ex = got[name]
    assert ex["label"] == by_name[name]["label"] == CLASSES.index(cls)
    assert np.array_equal(_pixels(ex), _pixels(by_name[name]))
    assert (ex["width"], ex["height"]) == (w, h)
  assert {n for n, e in got.items() if e["split"] == "validation"} == {
      n for n, *_ in IMAGES[4:]}
  assert builder.info.metadata["tfrecord_layout"] == "inception"


def test_flowers_records_build_as_their_class_folders(built):
  builder, got = built["flowers"]
  _, want = built["folders"]
  assert ah.class_names(builder) == list(CLASSES)
  assert helpers.file_problems(helpers.report(builder)) == []
  # No file name in these records: the key is `<file>:<record number>`.
  assert sorted(got) == [f"flower.tfrecords:{i}" for i in range(len(IMAGES))]
  by_pixels = {_pixels(e).tobytes(): e for e in want.values()}
  for i, (name, cls, *_) in enumerate(IMAGES):
    ex = got[f"flower.tfrecords:{i}"]
    assert ex["label"] == CLASSES.index(cls)
    assert by_pixels[_pixels(ex).tobytes()]["label"] == ex["label"]


def _assert_same_objects(got, want, where, fields):
  g, w = ah.objects(got), ah.objects(want)
  assert len(g) == len(w), where
  for i, (a, b) in enumerate(zip(g, w)):
    ah.assert_object(a, {k: b[k] for k in fields}, f"{where} object {i}")


def test_od_api_records_build_as_their_coco_annotations(built):
  builder, got = built["od"]
  coco_builder, want = built["coco"]
  assert builder.info.metadata["layout"] == (
      "tfrecord (Object Detection API): données_train.record")
  assert ah.class_names(builder) == ah.class_names(coco_builder) == list(CLASSES)
  assert helpers.file_problems(helpers.report(builder)) == []
  assert builder.info.metadata["keypoint_names"] == {
      "cat": ["eye", "tail"], "dog": ["eye", "tail"]}
  assert sorted(got) == sorted(name for name, *_ in IMAGES)
  for i, (name, *_rest) in enumerate(IMAGES):
    ex, ref = got[name], want[f"train2017/{name}"]
    assert ex["id"].decode() == ref["id"].decode() == str(i + 1)
    assert np.array_equal(_pixels(ex), _pixels(ref))
    assert ex["split"] == "train"
    _assert_same_objects(ex, ref, name,
                         ("box", "label", "area", "is_crowd", "keypoints"))


def test_seed001_records_build_as_their_json(built):
  for layout in ("seed001_images", "seed001_paths"):
    builder, got = built[layout]
    json_builder, want = built["seed001"]
    assert ah.class_names(builder) == ah.class_names(json_builder), layout
    problems = helpers.file_problems(helpers.report(builder))
    for name, ex in want.items():
      where = f"{layout}: {name}"
      other = got[name]
      for key in ("label", "extra", "id", "width", "height"):
        assert other[key] == ex[key], (where, key)
      assert abs(other["label_conf"] - ex["label_conf"]) < ah.TOL, where
      _assert_same_objects(other, ex, where, (
          "box", "label", "score", "conf", "area", "id", "keypoints"))
      if layout == "seed001_images":
        assert np.array_equal(_pixels(other), _pixels(ex)), where
    if layout == "seed001_paths":
      # Absolute paths of the machine that wrote them, found in DIR by their
      # end, stored as paths (store_images=False), and said so.
      root = built["roots"]["seed001_paths"]
      assert {e["image_path"].decode() for e in got.values()} == {
          str(root / n) for n in want}
      assert [p["reason"] for p in problems] == [
          f"{len(IMAGES)} image file names are absolute paths outside DIR,"
          " found in DIR by the end of their path (first:"
          " /home/gvh/photos/img/cat/cat_0.jpg -> img/cat/cat_0.jpg)"]
    else:
      assert problems == []


# --- Damaged files: reported with file and record, the rest kept --------------


def _inception_records(n, seed=0, prefix="img"):
  """n inception records of distinct images: (examples, image bytes)."""
  out, images = [], []
  for i in range(n):
    data = helpers.encode(helpers.photo(seed + i))
    images.append(data)
    out.append(inception_example(f"{prefix}_{seed + i}.jpg", data, i % 2,
                                 CLASSES[i % 2], 40, 30))
  return out, images


def _flip(path, offset):
  raw = bytearray(path.read_bytes())
  raw[offset] ^= 0xFF
  path.write_bytes(bytes(raw))


def _offsets(path):
  """(start of the header, start of the data) of each record of `path`."""
  raw, pos, out = path.read_bytes(), 0, []
  while pos < len(raw):
    (length,) = struct.unpack_from("<Q", raw, pos)
    out.append((pos, pos + 12))
    pos += 12 + length + 4
  return out


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
  """Three damaged files and a build of them:
  train-00000-of-00002: 6 records, record 2's data damaged, record 4 not an
    Example, record 5's image not an image;
  train-00001-of-00002: 4 records, cut short inside record 3;
  validation-00000-of-00001: 4 records, record 1's length damaged."""
  root = tmp_path_factory.mktemp("damaged")
  examples, _ = _inception_records(4)
  broken = inception_example("broken.jpg", b"not a jpeg at all", 0, "cat", 4, 3)
  a = _write(root / "train-00000-of-00002",
             examples + [b"not an Example", broken])
  _flip(a, _offsets(a)[2][1] + 100)
  examples, _ = _inception_records(4, seed=10)
  b = _write(root / "train-00001-of-00002", examples)
  b.write_bytes(b.read_bytes()[:_offsets(b)[3][1] + 50])
  examples, _ = _inception_records(4, seed=20)
  c = _write(root / "validation-00000-of-00001", examples)
  _flip(c, _offsets(c)[1][0] + 2)
  scan = readers.scan(root, "auto", OPTIONS)
  builder = helpers.build(root, root.parent / f"{root.name}_data")
  return root, scan, builder


def test_damaged_records_are_reported_and_the_rest_kept(damaged):
  root, scan, _ = damaged
  kept = sorted((os.path.basename(r.source), r.file_name) for r in scan.records)
  assert kept == sorted([
      ("train-00000-of-00002[record 0]", "img_0.jpg"),
      ("train-00000-of-00002[record 1]", "img_1.jpg"),
      ("train-00000-of-00002[record 3]", "img_3.jpg"),
      ("train-00000-of-00002[record 5]", "broken.jpg"),
      ("train-00001-of-00002[record 0]", "img_10.jpg"),
      ("train-00001-of-00002[record 1]", "img_11.jpg"),
      ("train-00001-of-00002[record 2]", "img_12.jpg"),
      ("validation-00000-of-00001[record 0]", "img_20.jpg")])
  rejected = {(os.path.basename(p.file), p.item, p.split): p.reason
              for p in scan.problems if p.kind == "rejected"}
  assert set(rejected) == {
      ("train-00000-of-00002", "record 2", "train"),
      ("train-00000-of-00002", "record 4", "train"),
      ("train-00001-of-00002", "record 3", "train"),
      ("validation-00000-of-00001", "record 1", "validation")}
  assert all(p.counts_as_input for p in scan.problems if p.kind == "rejected")
  assert "fails its data CRC" in rejected[
      ("train-00000-of-00002", "record 2", "train")]
  assert "not a tf.train.Example" in rejected[
      ("train-00000-of-00002", "record 4", "train")]
  cut = root / "train-00001-of-00002"
  length = struct.unpack_from("<Q", cut.read_bytes(), _offsets(cut)[3][0])[0]
  assert rejected[("train-00001-of-00002", "record 3", "train")] == (
      f"the file ends inside record 3: it needs {length + 4:,} bytes after its"
      " header, 50 are left (cut short); the 3 record(s) before it are kept")
  lost = root / "validation-00000-of-00001"
  at = _offsets(lost)[1][0]
  assert rejected[("validation-00000-of-00001", "record 1", "validation")] == (
      f"the length of record 1 (at byte {at:,}) fails its CRC: the record"
      " boundaries are lost there, so the rest of the file"
      f" ({lost.stat().st_size - at:,} bytes) is not read; the 1 record(s)"
      " before it are kept")


def test_damaged_build_counts_every_record(damaged):
  root, _, builder = damaged
  report = helpers.report(builder)
  assert report["counts"]["train"] == {"found": 10, "written": 6,
                                       "rejected": 4}
  assert report["counts"]["validation"] == {"found": 2, "written": 1,
                                            "rejected": 1}
  # The image inside a record that is no image: named by its file and key.
  broken = ah.find_problem(report, "train-00000-of-00002", "broken.jpg",
                           kind="rejected")
  # Named as the reader names the record (`ImageRecord.source`): its file and
  # index, the same as the problems of its boxes.
  assert broken["file"] == "train-00000-of-00002[record 5]"
  assert "not an image" in broken["reason"]
  examples = helpers.read_all(builder)
  assert sorted(examples) == sorted(
      ["img_0.jpg", "img_1.jpg", "img_3.jpg", "img_10.jpg", "img_11.jpg",
       "img_12.jpg", "img_20.jpg"])
  # The kept images are the records' bytes: records 3 and 12 read right.
  for name, seed in (("img_3.jpg", 3), ("img_12.jpg", 12)):
    assert np.array_equal(examples[name]["image"], tf.io.decode_jpeg(
        helpers.encode(helpers.photo(seed))).numpy())


# --- The pieces: framing, the Example parser, the label map -------------------


@pytest.mark.parametrize("n", [1, 2, 20])
def test_every_record_is_read_and_points_at_its_image(tmp_path, n):
  examples, images = _inception_records(n)
  path = _write(tmp_path / "entraînement" / "train-00000-of-00001", examples)
  scan = readers.scan(tmp_path, "auto", OPTIONS)
  assert len(scan.records) == n
  assert isinstance(scan.records, records.PackedRecords)
  raw = path.read_bytes()
  for i, (rec, data) in enumerate(zip(scan.records, images)):
    assert rec.path == str(path)
    offset, length = rec.data_range
    assert raw[offset:offset + length] == data
    assert (rec.key, rec.split, rec.label, rec.size) == (
        f"img_{i}.jpg", "train", i % 2, (40, 30))
  assert scan.problems == []


def test_parser_reads_what_tensorflow_writes():
  feats = {
      "b": _b([b"", b"\x00\xff", "é".encode()]), "f": _f([0.5, -1e30, 3.25]),
      "i": _i([0, 1, -1, 2**63 - 1, -2**63, 300]), "empty": _i([]),
      "unicode ключ": _b("v")}
  data = _example(feats).SerializeToString()
  got = tfrecord.parse_example(data)
  assert got["b"].kind == "bytes"
  assert [data[a:b] for a, b in got["b"].values] == [b"", b"\x00\xff",
                                                     "é".encode()]
  assert got["f"] == tfrecord.Feature("float", (0.5, np.float32(-1e30), 3.25))
  assert got["i"].values == (0, 1, -1, 2**63 - 1, -2**63, 300)
  assert got["empty"] == tfrecord.Feature("int64", ())
  assert set(got) == set(feats)
  # Unpacked lists are valid protobuf too (other writers than TensorFlow's).
  def message(field, payload):  # A length-delimited field.
    return bytes([field << 3 | 2, len(payload)]) + payload

  ints = (b"\x08\x01" + b"\x08" + b"\xff" * 9 + b"\x01"  # 1, -1 unpacked,
          + message(1, b"\x02\x03"))  # then 2, 3 packed.
  floats = b"\x0d" + struct.pack("<f", 0.5) + message(1, struct.pack("<f", 2))
  unpacked = message(1, message(1, message(1, b"k") + message(2, message(
      3, ints))) + message(1, message(1, b"f") + message(2, message(
          2, floats))))
  got = tfrecord.parse_example(unpacked)
  assert got["k"].values == (1, -1, 2, 3)
  assert got["f"].values == (0.5, 2.0)


@pytest.mark.parametrize("data, message", [
    (b"\x0a\x05\x0a\x03", "runs past the end"),
    (b"\x0a", "runs past the end"),
    (b"\x0e", "wire type 6"),
    (b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
    (b"\x0a\x06\x0a\x04\x0a\x02\xff\xfe", "not UTF-8"),
])
def test_parser_refuses_malformed_bytes(data, message):
  with pytest.raises(tfrecord.WireError, match=message):
    tfrecord.parse_example(data)


def test_parser_bounds_the_values_of_a_feature(monkeypatch):
  """A record of 100 MB of tiny values is refused, not made 50M objects."""
  monkeypatch.setattr(tfrecord, "MAX_VALUES", 10)
  for feature in (_b([b""] * 11), _f([0.0] * 11), _i([1] * 11)):
    data = _example({"k": feature}).SerializeToString()
    with pytest.raises(tfrecord.WireError, match="more than 10 values"):
      tfrecord.parse_example(data)
  assert len(tfrecord.parse_example(_example(
      {"k": _i([1] * 10)}).SerializeToString())["k"].values) == 10


def test_a_record_too_large_is_skipped_not_read(tmp_path, monkeypatch):
  examples, _ = _inception_records(3)
  examples[1] = inception_example(
      "img_1.jpg", helpers.encode(helpers.photo(1, 200, 150)), 1, "dog", 200,
      150)
  _write(tmp_path / "train.record", examples)
  sizes = [len(e.SerializeToString()) for e in examples]
  assert sizes[1] > max(sizes[0], sizes[2])
  monkeypatch.setattr(tfrecord, "MAX_RECORD_BYTES", sizes[1] - 1)
  scan = readers.scan(tmp_path, "auto", OPTIONS)
  assert [r.file_name for r in scan.records] == ["img_0.jpg", "img_2.jpg"]
  [problem] = scan.problems
  assert (problem.item, problem.kind) == ("record 1", "rejected")
  assert problem.reason.startswith(f"record 1 is {sizes[1]:,} bytes, more than")


def test_masked_crc_is_tensorflows():
  path = _write(pathlib.Path(os.environ.get("TMPDIR", "/tmp"))
                / f"crc-{os.getpid()}.tfrecord", [b"", b"abc"])
  try:
    frames = list(tfrecord.frames(str(path)))
  finally:
    path.unlink()
  assert [(f.index, f.data, f.error) for f in frames] == [
      (0, b"", ""), (1, b"abc", "")]


def test_label_map_parser(tmp_path):
  path = tmp_path / "label_map.pbtxt"
  path.write_text("""
# comment
item {
  name: "/m/01g317"  # OID name
  id: 1
  display_name: "person"
  keypoints { id: 0 label: "nose" }
  frequency: FREQUENT
}
item: {id: 0 name: 'background'}
item < id: 5; name: 'c\\'at' 'x' >
item { id: 3, name: "\\303\\251t\\xc3\\xa9" }
""", encoding="utf-8")
  lm = tfrecord.read_label_map(str(path))
  assert lm.ids == (1, 3, 5)
  assert lm.names == ("person", "été", "c'atx")
  assert lm.aliases["/m/01g317"] == "person"


@pytest.mark.parametrize("text, message", [
    ("item { id: 1 name: 'a' } item { id: 1 name: 'b' }", "id 1 is given twice"),
    ("item { id: 1 name: 'a' } item { id: 2 name: 'a' }", "ids 1 and 2"),
    ("item { id: 0 name: 'cat' }", "ids start at 1"),
    ("item { name: 'cat' }", "no id"),
    ("item { id: x name: 'cat' }", "not an integer"),
    ("item { id: 1 name: cat }", "quoted strings"),
    ("item { id: 1 name: 'cat' ", "not closed"),
    ("# nothing", "lists no class"),
    ("item { id: 1 name: 'a' } ?", "unexpected '?'"),
])
def test_label_map_errors_name_the_file(tmp_path, text, message):
  path = tmp_path / "label_map.pbtxt"
  path.write_text(text)
  with pytest.raises(records.InputError, match=message) as e:
    tfrecord.read_label_map(str(path))
  assert str(path) in str(e.value)


def test_split_of_shard_names_and_folders(tmp_path):
  for name, split in [("train-00000-of-01024", "train"),
                      ("validation-00127-of-00128", "validation"),
                      ("coco_train.record-00003-of-00100", "train"),
                      ("pet_faces_val.record-00000-of-00010", "validation"),
                      ("val.tfrecord", "validation"),
                      ("test.record", "test"), ("flower.tfrecords", None)]:
    assert annotated.split_of_file(name) == split, name
  examples, _ = _inception_records(2)
  _write(tmp_path / "val" / "data.tfrecord", examples)
  _write(tmp_path / "training" / "data.tfrecord",
         _inception_records(2, seed=5)[0])
  scan = readers.scan(tmp_path, "auto", OPTIONS)
  assert {r.file_name: r.split for r in scan.records} == {
      "img_0.jpg": "validation", "img_1.jpg": "validation",
      "img_5.jpg": "train", "img_6.jpg": "train"}


# --- Detection, refusals, classes and keys ------------------------------------


def test_claims(tmp_path):
  examples, _ = _inception_records(1)
  certain = tmp_path / "certain"
  _write(certain / "empty-00000-of-00002.tfrecord", [])  # An empty shard first.
  _write(certain / "empty-00001-of-00002.tfrecord", examples)
  assert readers.detect_layout(certain, OPTIONS) == "tfrecord"
  assert tfrecord.claim(str(certain), OPTIONS).certainty == 3
  unknown = tmp_path / "unknown"
  _write(unknown / "x.record", [_example({"img": _b(b"x"), "lbl": _i(1)})])
  assert tfrecord.claim(str(unknown), OPTIONS).certainty == 2
  with pytest.raises(records.InputError, match=r"keys \['img', 'lbl'\]") as e:
    readers.scan(unknown, "auto", OPTIONS)
  assert "x.record [record 0]" in str(e.value)
  slim = tmp_path / "slim"
  _write(slim / "flowers_train_00000-of-00005.tfrecord", [_example({
      "image/encoded": _b(b"x"), "image/format": _b("png"),
      "image/class/label": _i(1), "image/height": _i(1),
      "image/width": _i(1)})])
  with pytest.raises(records.InputError, match="count from 0 or from 1"):
    readers.scan(slim, "auto", OPTIONS)
  damaged = tmp_path / "damaged"
  _write(damaged / "x.record", [b"\xff not an Example"])
  assert tfrecord.claim(str(damaged), OPTIONS).certainty == 2
  with pytest.raises(records.InputError, match="could be read as a"):
    readers.scan(damaged, "auto", OPTIONS)
  # Named like a TFRecord, but none: no claim (class folders refuse it,
  # tests/test_detection.py).
  text = tmp_path / "text"
  text.mkdir()
  (text / "notes.record").write_text("not a TFRecord at all\n")
  assert tfrecord.claim(str(text), OPTIONS) is None
  # By content, when named with `annotations`.
  (certain / "renamed.bin").write_bytes(
      (certain / "empty-00001-of-00002.tfrecord").read_bytes())
  named = readers.ReadOptions(split_fractions={"train": 1.0},
                              annotations="renamed.bin")
  assert readers.detect_layout(certain, named) == "tfrecord"
  assert len(readers.scan(certain, "auto", named).records) == 1


def test_store_images_false_refuses_images_inside_records(tmp_path):
  _write(tmp_path / "train.record", _inception_records(2)[0])
  config = MyImagesConfig(name="paths", store_images=False)
  assert config.read_options().store_images is False
  with pytest.raises(records.InputError) as e:
    readers.scan(tmp_path, "auto", config.read_options())
  assert str(e.value) == (
      f"{tmp_path / 'train.record'} [record 0]: the image is inside the"
      " TFRecord file, and store_images=False stores the path of an image"
      " file: there is none to store. Build with store_images=True (the"
      " default); see docs/formats.md, TFRecords")


def test_record_without_image_is_reported(tmp_path):
  data = helpers.encode(helpers.photo(1))
  _write(tmp_path / "train.record", [
      od_example(1, "a.jpg", data, 40, 30, [(1, 1, 5, 5, "cat")], []),
      _example({"image/source_id": _b("2"), "image/filename": _b("b.jpg"),
                "image/object/class/text": _b(["cat"])}),
  ])
  scan = readers.scan(tmp_path, "auto", OPTIONS)
  assert [r.key for r in scan.records] == ["1"]
  [problem] = [p for p in scan.problems if p.kind == "rejected"]
  assert (problem.item, problem.split, problem.counts_as_input) == (
      "record 1", "train", True)
  assert problem.reason.startswith(
      "no image: image/encoded is empty or missing, and there is no file name"
      " or image/filename to read it from (keys: ['image/filename',")


def test_repeated_file_names_fall_back_to_file_and_record_keys(tmp_path):
  data = helpers.encode(helpers.photo(1))
  _write(tmp_path / "train-00000-of-00001", [
      inception_example("/x/cat/1.jpg", data, 0, "cat", 40, 30),
      inception_example("/x/dog/1.jpg", data, 1, "dog", 40, 30),
      inception_example("/x/dog/2.jpg", data, 1, "dog", 40, 30)])
  scan = readers.scan(tmp_path, "auto", OPTIONS)
  assert [(r.key, r.file_name, r.label) for r in scan.records] == [
      ("train-00000-of-00001:0", "1.jpg", 0),
      ("train-00000-of-00001:1", "1.jpg", 1),
      ("train-00000-of-00001:2", "2.jpg", 1)]
  [warning] = [p for p in scan.problems if p.kind == "warning"]
  assert warning.reason == (
      "example keys repeat within a split (first: '1.jpg' in 'train', 1"
      " repeated key(s)): every example's key is `<file>:<record number>`"
      " instead")


def test_class_ids_from_the_records_a_labels_file_or_a_label_map(tmp_path):
  data = helpers.encode(helpers.photo(1))

  def od(root, boxes):
    _write(root / "train.record", [od_example(
        i, f"{i}.jpg", data, 40, 30, [(1, 1, 5, 5, c)], [])
        for i, c in enumerate(boxes)])
    return root

  # From the records: ids in id order, whatever their gaps.
  scan = readers.scan(od(tmp_path / "data", ["dog", "cat", "dog"]), "auto",
                      OPTIONS)
  assert scan.class_names == ["cat", "dog"]
  assert [r.objects[0].label for r in scan.records] == [1, 0, 1]
  # labels.txt: line i is id i + 1 (cat, id 3); dog's id 7 is beyond it.
  root = od(tmp_path / "labels", ["cat", "dog"])
  (root / "labels.txt").write_text("x\ny\ncat\n")
  scan = readers.scan(root, "auto", OPTIONS)
  assert [[o.label for o in r.objects] for r in scan.records] == [[2], []]
  [problem] = [p for p in scan.problems if p.kind == "rejected"]
  assert problem.reason == (
      f"object class id 7 is not among the ids 1..3 of the 3 classes of"
      f" {root / 'labels.txt'}: object not written")
  assert not problem.counts_as_input
  # A label map that lacks an id drops that object, reported.
  root = od(tmp_path / "map", ["cat", "dog"])
  (root / "label_map.pbtxt").write_text("item { id: 3 name: 'cat' }")
  scan = readers.scan(root, "auto", OPTIONS)
  assert [len(r.objects) for r in scan.records] == [1, 0]
  [problem] = [p for p in scan.problems if p.kind == "rejected"]
  assert problem.reason.startswith("object class id 7 is not among the ids of")
  assert problem.item == "1.jpg: object #0"


def test_inception_background_id_is_reported(tmp_path):
  data = helpers.encode(helpers.photo(1))
  ex = inception_example("a.jpg", data, 0, "cat", 40, 30)
  ex.features.feature["image/class/label"].int64_list.value[0] = 0
  _write(tmp_path / "train-00000-of-00001",
         [ex, inception_example("b.jpg", data, 1, "dog", 40, 30)])
  scan = readers.scan(tmp_path, "auto", OPTIONS)
  assert [(r.key, r.label) for r in scan.records] == [("a.jpg", -1),
                                                      ("b.jpg", 1)]
  [problem] = [p for p in scan.problems if p.kind == "rejected"]
  assert problem.reason == (
      "image class id 0: inception build_image_data.py numbers its classes"
      " from 1,"
      " 0 is its background class: image kept without a class")


def test_seed001_default_class_is_no_class_when_no_record_has_one(tmp_path):
  data = helpers.encode(helpers.photo(1))
  boxes = {"object": {"bbox": {"xmin": [0.1], "ymin": [0.1], "xmax": [0.5],
                               "ymax": [0.5], "label": [1]}}}
  entries = [dict(filename=f"{i}.jpg", id=i, width=40, height=30, **boxes)
             for i in range(3)]
  root = tmp_path / "boxes"
  _write(root / "train-00000-of-00001", [
      seed001_example(e, data, later_version=True) for e in entries])
  scan = readers.scan(root, "auto", OPTIONS)
  assert [r.label for r in scan.records] == [-1, -1, -1]
  assert [r.label_conf for r in scan.records] == [-1.0] * 3
  assert scan.class_names == ["0", "1"]  # From the box labels only.
  # One record with a class of its own: the defaults are class 0 then.
  entries[0]["class"] = {"label": 1, "text": "dog"}
  root = tmp_path / "mixed"
  _write(root / "train-00000-of-00001", [
      seed001_example(e, data, later_version=True) for e in entries])
  scan = readers.scan(root, "auto", OPTIONS)
  assert [r.label for r in scan.records] == [1, 0, 0]
  assert scan.class_names == ["0", "dog"]


def test_unknown_keys_are_reported_once(tmp_path):
  data = helpers.encode(helpers.photo(1))
  examples = []
  for i in range(3):
    ex = od_example(i, f"{i}.jpg", data, 40, 30, [(1, 1, 5, 5, "cat")], [])
    ex.features.feature["image/object/difficult"].int64_list.value.append(0)
    examples.append(ex)
  _write(tmp_path / "train.record", examples)
  scan = readers.scan(tmp_path, "auto", OPTIONS)
  assert [p.reason for p in scan.problems] == [
      "keys that Object Detection API records do not store here:"
      " image/object/difficult (3 records)"]


_VALUES = {
    "bytes": st.lists(st.binary(max_size=40), max_size=5).map(_b),
    "float": st.lists(st.floats(width=32, allow_nan=False),
                      max_size=5).map(_f),
    "int64": st.lists(st.integers(-2**63, 2**63 - 1), max_size=5).map(_i),
}


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(st.dictionaries(
    st.text(max_size=12), st.one_of(*_VALUES.values()), max_size=6))
def test_parser_agrees_with_tensorflow(features):
  data = _example(features).SerializeToString()
  got = tfrecord.parse_example(data)
  assert set(got) == set(features)
  for key, feature in features.items():
    kind = feature.WhichOneof("kind")
    want = list(getattr(feature, kind).value) if kind else []
    if got[key].kind == "bytes":
      assert [data[a:b] for a, b in got[key].values] == want
    else:
      assert list(got[key].values) == want


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(st.binary(max_size=64))
def test_parser_refuses_any_bytes_with_wire_error_only(data):
  try:
    got = tfrecord.parse_example(data)
  except tfrecord.WireError as e:  # The one error the reader reports.
    assert str(e)
    return
  assert all(isinstance(f, tfrecord.Feature) for f in got.values())


def test_model_garden_output_reads_back_as_its_source(tmp_path):
  """This package's own `output_format: "model_garden"` shards (the OD API's
  keys, ids from 1, label_map.pbtxt beside them) build as the COCO sample
  they were built from."""
  coco = helpers.DUMMY_DATA / "coco"
  mg = helpers.build(coco, tmp_path / "mg",
                     MyImagesConfig(name="mg", output_format="model_garden"))
  back = helpers.build(mg.data_path, tmp_path / "back")
  ref = helpers.build(coco, tmp_path / "ref")
  got, want = helpers.read_all(back), helpers.read_all(ref)
  assert ah.class_names(back) == ah.class_names(ref)
  assert sorted(got) == sorted(want)
  for name, ex in want.items():
    assert got[name]["split"] == ex["split"]
    assert np.array_equal(got[name]["image"], ex["image"])
    _assert_same_objects(got[name], ex, name,
                         ("box", "label", "area", "is_crowd", "keypoints"))
  # The masks are not read back: said once, with the count.
  assert [p["reason"] for p in helpers.file_problems(helpers.report(back))] == [
      "keys that Object Detection API records do not store here:"
      " image/object/mask (5 records)"]


def test_a_record_file_linked_from_outside_is_refused(tmp_path):
  outside = _write(tmp_path / "elsewhere" / "train.record",
                   _inception_records(1, seed=3)[0])
  root = tmp_path / "data"
  _write(root / "val.record", _inception_records(1)[0])
  (root / "train.record").symlink_to(outside)
  scan = readers.scan(root, "auto", OPTIONS)
  assert [r.file_name for r in scan.records] == ["img_0.jpg"]
  [problem] = scan.problems
  assert problem.file == str(root / "train.record")
  assert problem.reason.startswith("symbolic link points outside the data")


@pytest.mark.slow
def test_memory_benchmark_runs_at_tiny_size(tmp_path):
  """bench/tfrecord_memory.py end to end: records written, scanned in a
  fresh process, every record found."""
  result = helpers.run([
      sys.executable, str(helpers.REPO / "bench" / "tfrecord_memory.py"),
      "--gb", "0.005", "--dir", str(tmp_path / "bench")])
  assert result.returncode == 0, result.stderr[-3000:]
  line = result.stdout.strip().splitlines()[-1]
  n = int(line.split(" records (")[0].split(", ")[-1])
  assert f"scan {n} records, 0 problems" in line and n > 0
  assert not (tmp_path / "bench" / "0.005gb").exists()
