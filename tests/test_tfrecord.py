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

import numpy as np
import pytest
import tensorflow as tf

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
    ("dog_0.jpg", "dog", 40, 30, [(30, 20, 10, 10)], [[(35, 25, 2), (31, 21, 1)]]),
    ("dog_1.jpg", "dog", 36, 40, [(2, 2, 30, 30), (5, 6, 7, 8)],
     [[(3, 3, 2), (20, 20, 2)], [(6, 7, 1), (8, 9, 2)]]),
    ("dog_2.jpg", "dog", 50, 30, [(1, 1, 10, 10)], [[(2, 2, 2), (5, 5, 2)]]),
]
# COCO category ids with gaps, as COCO's own: the label map maps them.
CATEGORY_IDS = {"cat": 3, "dog": 7}


# --- Writing records in each script's key layout ---------------------------------


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


# --- The same data as class folders, COCO and seed-001 JSON ----------------------


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


# --- Round trips ---------------------------------------------------------------------


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
