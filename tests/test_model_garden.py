"""output_format="model_garden": the records parse with the real decoders' specs.

The parse specs below are copied key for key from
* Model Garden, `official/vision/dataloaders/tf_example_decoder.py`
  (`TfExampleDecoder.__init__`, include_mask=False, regenerate_source_id=False),
* the OD API, `research/object_detection/data_decoders/tf_example_decoder.py`
  (`TfExampleDecoder.__init__`, with num_keypoints > 0),
* Model Garden, `official/vision/dataloaders/classification_input.py`
  (`Decoder`, is_multilabel=False),
and the built shard files are parsed with them directly (no TFDS in between).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format

import helpers
from image_folder_tfds import cli
from image_folder_tfds import features
from image_folder_tfds import inspection
from image_folder_tfds import label_map
from image_folder_tfds import model_garden
from image_folder_tfds.config import MyImagesConfig

MODEL_GARDEN_DETECTION_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string),
    "image/height": tf.io.FixedLenFeature((), tf.int64, -1),
    "image/width": tf.io.FixedLenFeature((), tf.int64, -1),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/area": tf.io.VarLenFeature(tf.float32),
    "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
    "image/source_id": tf.io.FixedLenFeature((), tf.string),
}

OD_API_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/format": tf.io.FixedLenFeature((), tf.string, default_value="jpeg"),
    "image/filename": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/key/sha256": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/source_id": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=1),
    "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=1),
    "image/class/text": tf.io.VarLenFeature(tf.string),
    "image/class/label": tf.io.VarLenFeature(tf.int64),
    "image/neg_category_ids": tf.io.VarLenFeature(tf.int64),
    "image/not_exhaustive_category_ids": tf.io.VarLenFeature(tf.int64),
    "image/class/confidence": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/xmax": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymin": tf.io.VarLenFeature(tf.float32),
    "image/object/bbox/ymax": tf.io.VarLenFeature(tf.float32),
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
    "image/object/area": tf.io.VarLenFeature(tf.float32),
    "image/object/is_crowd": tf.io.VarLenFeature(tf.int64),
    "image/object/difficult": tf.io.VarLenFeature(tf.int64),
    "image/object/group_of": tf.io.VarLenFeature(tf.int64),
    "image/object/weight": tf.io.VarLenFeature(tf.float32),
    # num_keypoints > 0:
    "image/object/keypoint/x": tf.io.VarLenFeature(tf.float32),
    "image/object/keypoint/y": tf.io.VarLenFeature(tf.float32),
    "image/object/keypoint/visibility": tf.io.VarLenFeature(tf.int64),
}

MODEL_GARDEN_CLASSIFICATION_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/class/label": tf.io.FixedLenFeature((), tf.int64, default_value=-1),
}

# The keys the issue lists, and nothing else.
EXPECTED_KEYS = {
    "image/encoded", "image/format", "image/height", "image/width",
    "image/source_id", "image/filename", "image/object/bbox/xmin",
    "image/object/bbox/xmax", "image/object/bbox/ymin",
    "image/object/bbox/ymax", "image/object/class/label",
    "image/object/class/text", "image/object/area", "image/object/is_crowd",
    "image/object/keypoint/x", "image/object/keypoint/y",
    "image/object/keypoint/visibility", "image/class/label",
    "image/class/text",
}

# COCO categories with non-contiguous ids: classes are ordered by id.
CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person",
     "keypoints": ["nose", "left_eye", "right_eye"], "skeleton": [[1, 2], [1, 3]]},
    {"id": 7, "name": "dog", "supercategory": "animal"},
]
TRAIN_IMAGES = [
    {"id": 101, "file_name": "a.jpg", "width": 64, "height": 48},
    {"id": 7, "file_name": "b.jpg", "width": 40, "height": 60},
    {"id": 55, "file_name": "empty.jpg", "width": 32, "height": 32},
]
TRAIN_ANNOTATIONS = [
    {"id": 1, "image_id": 101, "category_id": 1, "bbox": [4, 6, 20, 30],
     "area": 450.5, "iscrowd": 0, "num_keypoints": 2,
     "keypoints": [10, 12, 2, 8, 10, 1, 0, 0, 0]},
    {"id": 2, "image_id": 101, "category_id": 7, "bbox": [30, 5, 20, 20],
     "area": 380.0, "iscrowd": 1},
    {"id": 3, "image_id": 7, "category_id": 7, "bbox": [0, 10, 40, 50],
     "area": 1500.0, "iscrowd": 0},
]
VAL_IMAGES = [{"id": 900, "file_name": "v.jpg", "width": 50, "height": 50,
               "seed": 9}]
VAL_ANNOTATIONS = [
    {"id": 4, "image_id": 900, "category_id": 1, "bbox": [5, 5, 30, 40],
     "area": 1000.0, "iscrowd": 0, "num_keypoints": 3,
     "keypoints": [10, 10, 2, 20, 12, 2, 25, 30, 2]},
]
CLASSES = ["person", "dog"]  # Category id order.


def make_coco(root):
  helpers.write_coco(root, "train", TRAIN_IMAGES, TRAIN_ANNOTATIONS, CATEGORIES)
  helpers.write_coco(root, "val", VAL_IMAGES, VAL_ANNOTATIONS, CATEGORIES)


def expected_objects():
  """{file_name: [(xmin, xmax, ymin, ymax, label, text, area, crowd, kps)]}."""
  sizes = {f"{split}2017/{im['file_name']}": (im["id"], im["width"], im["height"])
           for split, ims in (("train", TRAIN_IMAGES), ("val", VAL_IMAGES))
           for im in ims}
  by_id = {iid: name for name, (iid, _, _) in sizes.items()}
  out = {name: [] for name in sizes}
  for ann in TRAIN_ANNOTATIONS + VAL_ANNOTATIONS:
    name = by_id[ann["image_id"]]
    _, w, h = sizes[name]
    x, y, bw, bh = ann["bbox"]
    label = 0 if ann["category_id"] == 1 else 1
    kps = ann.get("keypoints") or [0] * 9  # Padded to the dataset's 3.
    kps = [(kps[i] / w, kps[i + 1] / h, kps[i + 2]) for i in range(0, 9, 3)]
    out[name].append((x / w, (x + bw) / w, y / h, (y + bh) / h, label + 1,
                      CLASSES[label], ann["area"], ann["iscrowd"], kps))
  return out, sizes


def shard_examples(builder):
  """{split: [serialized tf.Example]} read straight from the shard files."""
  out = {}
  for split in builder.info.splits:
    files = sorted(str(p) for p in builder.data_path.glob(
        f"my_images-{split}.tfrecord-*"))
    assert files, f"no shard files for {split} in {builder.data_path}"
    out[split] = [r.numpy() for r in tf.data.TFRecordDataset(files)]
  return out


def dense(parsed, key):
  v = parsed[key]
  if isinstance(v, tf.SparseTensor):
    v = tf.sparse.to_dense(v)
  return v.numpy()


@pytest.fixture(scope="module")
def coco_mg(tmp_path_factory):
  root = tmp_path_factory.mktemp("coco")
  make_coco(root)
  out = tmp_path_factory.mktemp("out")
  config = MyImagesConfig(name="mg", output_format="model_garden")
  return root, out, helpers.build(root, out, config=config)


def test_keys_are_exactly_the_model_garden_keys(coco_mg):
  _, _, builder = coco_mg
  for split, examples in shard_examples(builder).items():
    for s in examples:
      keys = set(tf.train.Example.FromString(s).features.feature)
      assert keys == EXPECTED_KEYS, split


def test_model_garden_detection_spec_parses_every_value(coco_mg):
  root, _, builder = coco_mg
  want, sizes = expected_objects()
  seen = set()
  for split, examples in shard_examples(builder).items():
    for s in examples:
      p = tf.io.parse_single_example(s, MODEL_GARDEN_DETECTION_SPEC)
      name = tf.io.parse_single_example(
          s, OD_API_SPEC)["image/filename"].numpy().decode()
      seen.add(name)
      iid, w, h = sizes[name]
      assert name.startswith(f"{split if split == 'train' else 'val'}2017/")
      # COCO image ids are kept: Model Garden matches predictions by them.
      assert p["image/source_id"].numpy() == str(iid).encode()
      assert int(tf.strings.to_number(p["image/source_id"], tf.int64)) == iid
      assert (p["image/height"].numpy(), p["image/width"].numpy()) == (h, w)
      # JPEG bytes stored unchanged.
      assert p["image/encoded"].numpy() == (root / name).read_bytes()
      objs = want[name]
      np.testing.assert_allclose(dense(p, "image/object/bbox/xmin"),
                                 [o[0] for o in objs], atol=1e-6)
      np.testing.assert_allclose(dense(p, "image/object/bbox/xmax"),
                                 [o[1] for o in objs], atol=1e-6)
      np.testing.assert_allclose(dense(p, "image/object/bbox/ymin"),
                                 [o[2] for o in objs], atol=1e-6)
      np.testing.assert_allclose(dense(p, "image/object/bbox/ymax"),
                                 [o[3] for o in objs], atol=1e-6)
      assert list(dense(p, "image/object/class/label")) == [o[4] for o in objs]
      # Area in pixels, as given by COCO.
      np.testing.assert_allclose(dense(p, "image/object/area"),
                                 [o[6] for o in objs], rtol=1e-5)
      assert list(dense(p, "image/object/is_crowd")) == [o[7] for o in objs]
  assert seen == set(sizes)


def test_od_api_spec_parses_labels_text_and_keypoints(coco_mg):
  _, _, builder = coco_mg
  want, _ = expected_objects()
  for examples in shard_examples(builder).values():
    for s in examples:
      p = tf.io.parse_single_example(s, OD_API_SPEC)
      name = p["image/filename"].numpy().decode()
      objs = want[name]
      assert p["image/format"].numpy() == b"jpeg"
      assert [t.decode() for t in dense(p, "image/object/class/text")] == [
          o[5] for o in objs]
      assert list(dense(p, "image/object/class/label")) == [o[4] for o in objs]
      # The decoder's reshape to [num_objects, num_keypoints] (3 here).
      x = dense(p, "image/object/keypoint/x").reshape(-1, 3)
      y = dense(p, "image/object/keypoint/y").reshape(-1, 3)
      v = dense(p, "image/object/keypoint/visibility").reshape(-1, 3)
      assert x.shape == (len(objs), 3)
      for i, o in enumerate(objs):
        np.testing.assert_allclose(x[i], [k[0] for k in o[8]], atol=1e-6)
        np.testing.assert_allclose(y[i], [k[1] for k in o[8]], atol=1e-6)
        assert list(v[i]) == [k[2] for k in o[8]]
      # No image-level class in COCO: empty, as the OD API expects.
      assert dense(p, "image/class/label").size == 0


def test_loads_with_tfds_load(coco_mg):
  _, out, builder = coco_mg
  want, sizes = expected_objects()
  ds = tfds.load("my_images/mg", data_dir=str(out), split="train")
  got = {}
  for ex in tfds.as_numpy(ds):
    image = ex["image"]
    got[image["filename"].decode()] = image
  assert set(got) == {n for n in sizes if n.startswith("train2017/")}
  for name, image in got.items():
    _, w, h = sizes[name]
    assert image["encoded"].shape == (h, w, 3)
    assert list(image["object"]["class"]["label"]) == [o[4] for o in want[name]]
  assert builder.info.metadata["label_offset"] == 1
  assert builder.info.metadata["class_names"] == CLASSES
  assert builder.info.metadata["num_keypoints"] == 3
  assert builder.info.supervised_keys is None


@pytest.mark.slow
def test_loads_in_a_fresh_process_without_the_import(coco_mg):
  _, out, _ = coco_mg
  code = (
      "import tensorflow_datasets as tfds, sys\n"
      f"ds = tfds.load('my_images/mg', data_dir={str(out)!r}, split='validation')\n"
      "(ex,) = list(tfds.as_numpy(ds))\n"
      "image = ex['image']\n"
      "assert 'image_folder_tfds' not in sys.modules\n"
      "print(image['filename'].decode(), image['encoded'].shape,"
      " image['object']['class']['label'].tolist(),"
      " image['object']['keypoint']['visibility'].tolist())\n")
  result = helpers.run([sys.executable, "-c", code], timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split("\n")[-2] == (
      "val2017/v.jpg (50, 50, 3) [1] [2, 2, 2]")


def _label_map_message():
  """The OD API's StringIntLabelMap (string_int_label_map.proto), by hand."""
  fdp = descriptor_pb2.FileDescriptorProto(
      name="string_int_label_map_test.proto", package="object_detection.protos")
  item = fdp.message_type.add(name="StringIntLabelMapItem")
  T = descriptor_pb2.FieldDescriptorProto
  for name, number, ftype in (("name", 1, T.TYPE_STRING),
                              ("id", 2, T.TYPE_INT32),
                              ("display_name", 3, T.TYPE_STRING)):
    item.field.add(name=name, number=number, type=ftype, label=T.LABEL_OPTIONAL)
  keypoint_map = item.nested_type.add(name="KeypointMap")
  keypoint_map.field.add(name="id", number=1, type=T.TYPE_INT32,
                         label=T.LABEL_OPTIONAL)
  keypoint_map.field.add(name="label", number=2, type=T.TYPE_STRING,
                         label=T.LABEL_OPTIONAL)
  item.field.add(
      name="keypoints", number=4, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
      type_name=".object_detection.protos.StringIntLabelMapItem.KeypointMap")
  lm = fdp.message_type.add(name="StringIntLabelMap")
  lm.field.add(name="item", number=1, type=T.TYPE_MESSAGE,
               label=T.LABEL_REPEATED,
               type_name=".object_detection.protos.StringIntLabelMapItem")
  pool = descriptor_pool.DescriptorPool()
  pool.Add(fdp)
  return message_factory.GetMessageClass(
      pool.FindMessageTypeByName("object_detection.protos.StringIntLabelMap"))


def test_label_map_written_with_the_dataset_matches_the_records(coco_mg):
  _, _, builder = coco_mg
  message = text_format.Parse(
      (builder.data_path / "label_map.pbtxt").read_text(), _label_map_message()())
  id_of = {item.name: item.id for item in message.item}
  assert id_of == {"person": 1, "dog": 2}  # From 1: 0 is background.
  assert all(item.display_name == item.name for item in message.item)
  # COCO keypoint names, id = position in each object's keypoint list.
  person, dog = message.item
  assert [(k.id, k.label) for k in person.keypoints] == [
      (0, "nose"), (1, "left_eye"), (2, "right_eye")]
  assert not dog.keypoints
  assert (builder.data_path / "labels.txt").read_text() == "person\ndog\n"
  # What the OD API does with a label map: class/text -> id must give the
  # stored class/label.
  for examples in shard_examples(builder).values():
    for s in examples:
      p = tf.io.parse_single_example(s, OD_API_SPEC)
      texts = [t.decode() for t in dense(p, "image/object/class/text")]
      assert [id_of[t] for t in texts] == list(
          dense(p, "image/object/class/label"))


def model_garden_csv_label_map(path) -> dict[str, int]:
  """`TfExampleDecoderLabelMap._process_csv` of Model Garden
  (official/vision/dataloaders/tf_example_label_map_decoder.py), line for
  line: `csv.reader`, exactly two cells a row, `int(row[0])`, no header."""
  name_to_id = {}
  with tf.io.gfile.GFile(str(path), "r") as f:
    reader = csv.reader(f, delimiter=",")
    for row in reader:
      if len(row) != 2:
        raise ValueError("Each row of the csv label map file must be in "
                         "`id,name` format. length = {}".format(len(row)))
      name_to_id[row[1]] = int(row[0])
  return name_to_id


def test_csv_label_map_decodes_the_records_as_model_garden_does(coco_mg):
  _, _, builder = coco_mg
  path = builder.data_path / "label_map.csv"
  assert str(path).endswith(".csv")  # The decoder refuses any other name.
  name_to_id = model_garden_csv_label_map(path)
  assert name_to_id == {"person": 1, "dog": 2}
  # `_decode_classes`: a StaticHashTable over class/text, default -1. Every
  # object's text must give back the class id stored in the record.
  table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
          keys=tf.constant(list(name_to_id.keys()), dtype=tf.string),
          values=tf.constant(list(name_to_id.values()), dtype=tf.int64)),
      default_value=-1)
  spec = dict(MODEL_GARDEN_DETECTION_SPEC)
  spec["image/object/class/text"] = tf.io.VarLenFeature(tf.string)
  n = 0
  for examples in shard_examples(builder).values():
    for s in examples:
      p = tf.io.parse_single_example(s, spec)
      ids = table.lookup(p["image/object/class/text"])
      assert list(dense({"x": ids}, "x")) == list(
          dense(p, "image/object/class/label"))
      n += len(dense(p, "image/object/class/label"))
  assert n == len(TRAIN_ANNOTATIONS) + len(VAL_ANNOTATIONS)


def test_csv_label_map_quotes_names_with_commas(tmp_path):
  names = ["cat, black", 'say "hi"', "émeu"]
  text = label_map.to_csv(names)
  assert text.splitlines()[0] == '1,"cat, black"'
  path = tmp_path / "label_map.csv"
  path.write_text(text, encoding="utf-8")
  assert model_garden_csv_label_map(path) == {
      "cat, black": 1, 'say "hi"': 2, "émeu": 3}
  with pytest.raises(ValueError, match="line break"):
    label_map.to_csv(["a\nb"])


def test_class_folders_parse_with_the_classification_spec(tmp_path):
  helpers.make_class_folders(tmp_path / "in", classes=("cat", "dog", "emu"),
                             per_class=2)
  config = MyImagesConfig(name="mgc", output_format="model_garden",
                          split_fractions={"train": 1.0})
  builder = helpers.build(tmp_path / "in", tmp_path / "out", config=config)
  examples = shard_examples(builder)["train"]
  assert len(examples) == 6
  source_ids = set()
  for s in examples:
    p = tf.io.parse_single_example(s, MODEL_GARDEN_CLASSIFICATION_SPEC)
    od = tf.io.parse_single_example(s, OD_API_SPEC)
    name = od["image/filename"].numpy().decode()
    index = ["cat", "dog", "emu"].index(name.split("/")[0])
    assert p["image/class/label"].numpy() == index + 1
    assert [t.decode() for t in dense(od, "image/class/text")] == [
        name.split("/")[0]]
    assert p["image/encoded"].numpy() == (tmp_path / "in" / name).read_bytes()
    assert dense(od, "image/object/class/label").size == 0
    source_ids.add(od["image/source_id"].numpy().decode())
  # No numeric ids in class folders: numbered 1..N by example key.
  assert source_ids == {str(i) for i in range(1, 7)}
  assert builder.info.metadata["source_id"].startswith("position")


def test_area_defaults_to_the_box_in_pixels(tmp_path):
  """No COCO `area`: Model Garden's own default, box area in pixels."""
  images = [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}]
  anns = [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [8, 4, 16, 20],
           "iscrowd": 0}]
  helpers.write_coco(tmp_path / "in", "train", images, anns,
                     [{"id": 3, "name": "box"}], kind="instances")
  config = MyImagesConfig(name="mga", output_format="model_garden")
  builder = helpers.build(tmp_path / "in", tmp_path / "out", config=config)
  (s,) = shard_examples(builder)["train"]
  p = tf.io.parse_single_example(s, MODEL_GARDEN_DETECTION_SPEC)
  np.testing.assert_allclose(dense(p, "image/object/area"), [16 * 20], rtol=1e-5)
  assert dense(p, "image/object/class/label").tolist() == [1]


def test_fields_without_a_key_are_reported_not_dropped_silently(coco_mg,
                                                                tmp_path):
  root, _, builder = coco_mg
  report = helpers.report(builder)
  (warning,) = [p for p in report["problems"]
                if "not written" in p["reason"]]
  assert warning["kind"] == "warning"
  assert "object id (4x)" in warning["reason"]
  # inspect with the same options reports the same, through the check the
  # command line gives it (inspection itself knows no output format).
  config = MyImagesConfig(name="mg", output_format="model_garden")
  result = inspection.inspect_folder(
      root, config, output_check=model_garden.scan_problems)
  assert [p.reason for p in result.report.problems] == [
      p["reason"] for p in report["problems"]]
  out = tmp_path / "inspect.json"
  assert cli.main(["inspect", str(root), "--quiet", "--json", str(out),
                   "--config", json.dumps({"name": "mg",
                                           "output_format": "model_garden"})]
                  ) == (cli.EXIT_OK if result.clean else cli.EXIT_PROBLEMS)
  assert [p["reason"] for p in json.loads(out.read_text())["problems"]] == [
      p["reason"] for p in report["problems"]]
  # Without the output format's check: only what the input itself has.
  plain = inspection.inspect_folder(root, config)
  assert "not written" not in str([p.reason for p in plain.report.problems])


def test_object_without_a_class_is_rejected_not_written(tmp_path):
  """Seed 001 boxes may have no label; both trainers need one per box."""
  root = tmp_path / "in"
  helpers.write_image(root / "a.jpg", seed=1)
  helpers.write_image(root / "b.jpg", seed=2)
  (root / "labels.txt").write_text("cat\ndog\n")
  (root / "annotations.json").write_text(json.dumps([
      {"filename": "a.jpg", "id": "1", "object": {"bbox": {
          "xmin": [0.1], "xmax": [0.5], "ymin": [0.2], "ymax": [0.6],
          "label": [1]}}},
      {"filename": "b.jpg", "id": "2", "object": {"bbox": {
          "xmin": [0.1], "xmax": [0.5], "ymin": [0.2], "ymax": [0.6]}}},
  ]))
  config = MyImagesConfig(name="mg", output_format="model_garden",
                          split_fractions={"train": 1.0})
  builder = helpers.build(root, tmp_path / "out", config=config)
  rejected = [p for p in helpers.report(builder)["problems"]
              if p["kind"] == "rejected"]
  assert [(p["item"], p["split"]) for p in rejected] == [
      ("b.jpg: object #0", "train")]
  assert "object has no class" in rejected[0]["reason"]
  labels = {}
  for s in shard_examples(builder)["train"]:
    p = tf.io.parse_single_example(s, OD_API_SPEC)
    labels[p["image/filename"].numpy().decode()] = list(
        dense(p, "image/object/class/label"))
  assert labels == {"a.jpg": [2], "b.jpg": []}  # dog = index 1, id 2.
  result = inspection.inspect_folder(root, config,
                                     output_check=model_garden.scan_problems)
  assert [p.item for p in result.strict_failures] == ["b.jpg: object #0"]
  strict = dataclasses.replace(config, name="mgstrict", strict=True)
  with pytest.raises(Exception, match="object has no class"):
    helpers.build(root, tmp_path / "out2", config=strict)


def test_config_checks_the_output_format():
  with pytest.raises(ValueError, match="output_format"):
    MyImagesConfig(name="x", output_format="tfrecord")
  with pytest.raises(ValueError, match="store_images=True"):
    MyImagesConfig(name="x", output_format="model_garden", store_images=False)


def test_flat_keys_of_the_features_dict():
  flat = features.model_garden_features_dict().get_serialized_info()

  def walk(d, prefix=""):
    for k, v in d.items():
      if isinstance(v, dict):
        yield from walk(v, f"{prefix}{k}/")
      else:
        yield f"{prefix}{k}", v

  info = dict(walk(flat))
  assert set(info) == EXPECTED_KEYS
  # dtypes as the decoders parse them.
  for key, spec in OD_API_SPEC.items():
    if key in info:
      assert info[key].dtype == spec.dtype, key
      fixed = isinstance(spec, tf.io.FixedLenFeature)
      assert (info[key].shape == ()) == fixed, key
