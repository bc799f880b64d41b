"""Schema 2 (issue 11): the stored features follow the data, keypoints dense.

For each kind of data (class folders, boxes, boxes with keypoints): built,
read back with and without the plugin, every value compared with the input,
`tfds.as_numpy` yields NumPy only, and the stored protos hold only the keys
of that kind. Datasets built with schema 1 (builder 1.x) still load.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import annotation_helpers as ah
import helpers
from image_folder_tfds import features
from image_folder_tfds import records

SCHEMA1 = pathlib.Path(__file__).parent / "data" / "schema1"
BUILDER2_0 = pathlib.Path(__file__).parent / "data" / "builder2_0"

# Loads every example of every split in a fresh process, with or without the
# plugin, and prints them as JSON (numbers as lists, bytes as text).
LOAD = r"""
import json, sys
import numpy as np
import tensorflow_datasets as tfds
if sys.argv[2] == "import":
  import image_folder_tfds
builder = tfds.builder(sys.argv[3], data_dir=sys.argv[1])
kinds = set()
def plain(x):
  if isinstance(x, dict):
    return {k: plain(v) for k, v in sorted(x.items())}
  kinds.add(type(x).__module__.split(".")[0] + "." + type(x).__name__)
  if isinstance(x, bytes):
    return x.decode()
  if hasattr(x, "to_list"):  # tf.RaggedTensor: schema 1's nested keypoints.
    return [[v.decode() if isinstance(v, bytes) else v for v in row]
            for row in x.to_list()]
  if isinstance(x, np.ndarray) and x.dtype == object:
    return [v.decode() for v in x.reshape(-1)]
  return np.asarray(x).tolist()
out = {}
for split in sorted(builder.info.splits):
  ds = tfds.load(sys.argv[3], split=split, data_dir=sys.argv[1],
                 shuffle_files=False)
  for ex in tfds.as_numpy(ds):
    out[ex["file_name"].decode()] = plain(ex)
print(json.dumps({"examples": out, "types": sorted(kinds),
                  "features": repr(builder.info.features),
                  "supervised": builder.info.supervised_keys,
                  "plugin": "image_folder_tfds" in sys.modules}))
"""


def _load_fresh(data_dir, with_plugin: bool, name="my_images") -> dict:
  out = helpers.run([sys.executable, "-c", LOAD, str(data_dir),
                     "import" if with_plugin else "no-import", name])
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["plugin"] == with_plugin
  return result


def _stored_keys(builder) -> set[str]:
  """Every feature key of every stored `tf.train.Example`."""
  keys = set()
  for path in pathlib.Path(builder.data_path).glob("*.tfrecord-*"):
    for raw in tf.data.TFRecordDataset(str(path)):
      keys.update(tf.train.Example.FromString(raw.numpy()).features.feature)
  return keys


def _numpy_only(examples) -> None:
  def walk(x, where):
    if isinstance(x, dict):
      for k, v in x.items():
        walk(v, f"{where}/{k}")
    else:
      assert isinstance(x, (np.ndarray, np.generic, bytes)), (where, type(x))
  for ex in examples:  # "split" is added by the test helpers.
    walk({k: v for k, v in ex.items() if k != "split"}, "")


def _check_kind(builder, kind: str) -> None:
  schema = builder.info.metadata["schema"]
  assert schema["kind"] == kind and schema["version"] == 2
  stored = _stored_keys(builder)
  assert stored == set(features.Schema.from_metadata(
      schema, store_images=True).keys())
  if kind == "classification":
    assert not [k for k in stored if k.startswith("objects")], stored
  if kind != "keypoints":
    assert not [k for k in stored if "keypoints" in k], stored


def _same_with_and_without_plugin(data_dir) -> dict:
  without = _load_fresh(data_dir, with_plugin=False)
  with_plugin = _load_fresh(data_dir, with_plugin=True)
  for result in (without, with_plugin):
    assert result["types"] and all(
        t.startswith("numpy.") or t == "builtins.bytes"
        for t in result["types"]), result["types"]
  assert without["features"] == with_plugin["features"]
  assert without["supervised"] == with_plugin["supervised"]
  assert without["examples"] == with_plugin["examples"]
  return without


# --- classification ---------------------------------------------------------


@pytest.mark.parametrize("per_class", [1, 10])
def test_class_folders_store_classification_fields_only(tmp_path, per_class):
  written = helpers.make_class_folders(tmp_path / "in", per_class=per_class)
  builder = helpers.build(tmp_path / "in", tmp_path / "out")
  _check_kind(builder, "classification")
  assert _stored_keys(builder) == {"image", "file_name", "height", "width",
                                   "label"}
  assert builder.info.supervised_keys == ("image", "label")
  examples = helpers.read_all(builder)
  _numpy_only(examples.values())
  assert set(examples) == set(written)
  names = builder.info.features["label"].names
  for rel, ex in examples.items():
    assert names[ex["label"]] == rel.split("/")[0]
  loaded = _same_with_and_without_plugin(tmp_path / "out")
  assert set(loaded["examples"]) == set(written)
  assert loaded["supervised"] == ["image", "label"]


# --- detection ----------------------------------------------------------------


def test_voc_boxes_store_no_keypoint_fields(tmp_path):
  builder = helpers.build(helpers.DUMMY_DATA / "voc", tmp_path)
  _check_kind(builder, "detection")
  assert "label" not in builder.info.features  # VOC has no image class.
  assert builder.info.supervised_keys is None
  examples = ah.load_all(tmp_path)
  _numpy_only(examples.values())
  loaded = _same_with_and_without_plugin(tmp_path)
  for name, ex in examples.items():
    got = loaded["examples"][name]["objects"]
    np.testing.assert_allclose(np.asarray(got["bbox"]).reshape(-1, 4),
                               ex["objects"]["bbox"], atol=ah.TOL)


# --- keypoints ----------------------------------------------------------------


def _coco_with_uneven_keypoints(root):
  """A person with 3 keypoints, a hand with 2, a box without any."""
  images = [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.jpg", "width": 40, "height": 30}]
  anns = [
      {"id": 10, "image_id": 1, "category_id": 1, "bbox": [4, 3, 20, 15],
       "area": 300.0, "iscrowd": 0, "num_keypoints": 2,
       "keypoints": [8, 6, 2, 12, 9, 1, 0, 0, 0]},
      {"id": 11, "image_id": 1, "category_id": 2, "bbox": [1, 1, 8, 8],
       "area": 64.0, "iscrowd": 0, "num_keypoints": 2,
       "keypoints": [2, 2, 2, 5, 7, 2]},
      {"id": 12, "image_id": 2, "category_id": 3, "bbox": [0, 0, 10, 10],
       "area": 100.0, "iscrowd": 1},
  ]
  cats = [{"id": 1, "name": "person", "keypoints": ["nose", "eye", "ear"]},
          {"id": 2, "name": "hand", "keypoints": ["wrist", "thumb"]},
          {"id": 3, "name": "box"}]
  helpers.write_coco(root, "train", images, anns, cats)
  return anns


def test_coco_keypoints_are_dense_numpy_arrays(tmp_path):
  anns = _coco_with_uneven_keypoints(tmp_path / "in")
  builder = helpers.build(tmp_path / "in", tmp_path / "out")
  _check_kind(builder, "keypoints")
  assert builder.info.metadata["schema"]["num_keypoints"] == 3
  assert builder.info.metadata["keypoint_names"] == {
      "person": ["nose", "eye", "ear"], "hand": ["wrist", "thumb"]}
  examples = ah.load_all(tmp_path / "out")
  _numpy_only(examples.values())
  kp = examples["train2017/a.jpg"]["objects"]["keypoints"]
  for key in ("x", "y", "v"):
    assert isinstance(kp[key], np.ndarray) and kp[key].shape == (2, 3)
  names = features.class_names(builder.info.features)
  got = {o["id"]: o for ex in examples.values()
         for o in ah.objects(ex, names)}
  for ann in anns:
    o = got[str(ann["id"])]
    x, y, w, h = ann["bbox"]
    ah.assert_object(o, {
        "box": (x / 40, y / 30, (x + w) / 40, (y + h) / 30),
        "area": ann["area"] / 1200, "is_crowd": bool(ann["iscrowd"]),
        "text": names[ann["category_id"] - 1],
        "keypoints": [
            (k[0] / 40, k[1] / 30, k[2], -1.0) for k in zip(
                *[iter(ann.get("keypoints", []))] * 3)]}, str(ann["id"]))
  # The hand's third keypoint and the box's three are padding: v = 0.
  a = examples["train2017/a.jpg"]["objects"]
  hand = list(a["id"]).index(b"11")
  assert a["keypoints"]["v"][hand].tolist() == [2, 2, 0]
  assert examples["train2017/b.jpg"]["objects"]["keypoints"]["v"].tolist() == [
      [0, 0, 0]]
  loaded = _same_with_and_without_plugin(tmp_path / "out")
  assert loaded["examples"]["train2017/a.jpg"]["objects"]["keypoints"]["x"] == (
      a["keypoints"]["x"].tolist())


def test_seed001_keypoint_scores_are_kept(tmp_path):
  builder = helpers.build(helpers.DUMMY_DATA / "seed001", tmp_path)
  _check_kind(builder, "keypoints")
  assert "objects/keypoints/score" in _stored_keys(builder)
  examples = ah.load_all(tmp_path)
  _numpy_only(examples.values())
  scores = [s for ex in examples.values()
            for o in ah.objects(ex) for (_, _, _, s) in o["keypoints"]]
  assert scores and any(s != -1.0 for s in scores)


# --- choosing the kind --------------------------------------------------------


def test_kind_can_be_pinned_richer_never_poorer(tmp_path):
  from image_folder_tfds import MyImagesConfig
  helpers.make_class_folders(tmp_path / "in", per_class=2)
  builder = helpers.build(tmp_path / "in", tmp_path / "det",
                          config=MyImagesConfig(name="det", kind="detection"))
  _check_kind(builder, "detection")
  for ex in helpers.read_all(builder).values():
    assert ex["objects"]["bbox"].shape == (0, 4)
  _coco_with_uneven_keypoints(tmp_path / "coco")
  with pytest.raises(records.InputError, match="kind='detection'.*keypoints"):
    helpers.build(tmp_path / "coco", tmp_path / "x",
                  config=MyImagesConfig(name="det", kind="detection"))
  with pytest.raises(records.InputError, match="no object has keypoints"):
    helpers.build(tmp_path / "in", tmp_path / "y",
                  config=MyImagesConfig(name="kp", kind="keypoints"))
  with pytest.raises(ValueError, match="kind='boxes'"):
    MyImagesConfig(name="z", kind="boxes")


def test_schema_is_deterministic_and_ignores_record_order():
  def rec(i, **kw):
    return records.ImageRecord(key=f"{i}.jpg", path=f"/d/{i}.jpg",
                               file_name=f"{i}.jpg", split="train",
                               source="a.json", id=f"{i}.jpg", **kw)
  box = records.ObjectRecord(box=(0.1, 0.1, 0.5, 0.5), label=0)
  kp = records.ObjectRecord(box=(0.1, 0.1, 0.5, 0.5), label=0, score=0.5,
                            keypoints=(records.Keypoint(x=0.2, y=0.2),) * 4)
  recs = [rec(0), rec(1, objects=(box,)), rec(2, objects=(kp,), extra="{}")]
  a = features.Schema.from_records(recs)
  b = features.Schema.from_records(list(reversed(recs)))
  assert a == b
  assert (a.kind, a.num_keypoints) == ("keypoints", 4)
  assert a.optional == {"extra", "objects/score"}
  assert features.Schema.from_records(recs[:2]).kind == "detection"
  # No class, no object: images only (builder 2.1.0; was "classification"
  # with a label of -1 for every image).
  assert features.Schema.from_records(recs[:1]).kind == "images"
  assert features.Schema.from_records([rec(0, label=1)]).kind == "classification"
  multi = features.Schema.from_records([rec(0, labels=(0, 2)), rec(1)])
  assert (multi.kind, multi.optional) == ("images", {"labels"})
  assert multi.supervised_keys() == ("image", "labels")
  assert "label" not in multi.features_dict()


# --- schema 1 releases -----------------------------------------------------------


@pytest.mark.parametrize("name", ["folders", "coco"])
def test_schema1_releases_still_load(tmp_path, name):
  data_dir = tmp_path / name
  shutil.copytree(SCHEMA1 / name, data_dir)
  without = _load_fresh(data_dir, with_plugin=False)
  with_plugin = _load_fresh(data_dir, with_plugin=True)
  assert without["features"] == with_plugin["features"]
  assert without["examples"] == with_plugin["examples"]
  info = json.loads(
      (data_dir / "my_images/default/1.0.0/dataset_info.json").read_text())
  total = sum(int(s.get("shardLengths", ["0"])[0]) for s in info["splits"])
  assert len(without["examples"]) == total > 0
  for ex in without["examples"].values():
    assert "label_text" in ex and "objects" in ex  # Schema 1's features.
  # Loaded by version too, in this process with the plugin.
  import image_folder_tfds  # noqa: F401
  builder = tfds.builder("my_images:1.0.0", data_dir=os.fspath(data_dir))
  assert "keypoints" in builder.info.features["objects"].feature
  assert builder.info.splits.total_num_examples == total


@pytest.mark.parametrize("name, input_dir", [("coco", "coco"),
                                             ("animal_photos", "animal_photos")])
def test_builder_2_0_releases_still_load_beside_new_ones(tmp_path, name,
                                                         input_dir):
  """Datasets of builder 2.0.0 load as they were written (with and without
  the plugin), and a build of today's builder version goes beside them."""
  data_dir = tmp_path / name
  shutil.copytree(BUILDER2_0 / name, data_dir)
  without = _load_fresh(data_dir, with_plugin=False)
  with_plugin = _load_fresh(data_dir, with_plugin=True)
  assert without["features"] == with_plugin["features"]
  assert without["examples"] == with_plugin["examples"]
  old = data_dir / "my_images/default/2.0.0"
  info = json.loads((old / "dataset_info.json").read_text())
  total = sum(int(n) for s in info["splits"] for n in s["shardLengths"])
  assert len(without["examples"]) == total > 0
  import image_folder_tfds  # noqa: F401
  from image_folder_tfds import MyImagesConfig
  from image_folder_tfds import builder as builder_lib
  builder = tfds.builder("my_images:2.0.0", data_dir=os.fspath(data_dir))
  assert builder.info.splits.total_num_examples == total
  stored = builder.info.features
  new = helpers.build(helpers.DUMMY_DATA / input_dir, data_dir,
                      config=MyImagesConfig(
                          version=str(builder_lib.MyImages.VERSION)))
  assert str(new.version) == str(builder_lib.MyImages.VERSION) != "2.0.0"
  # The same input gives the same features today.
  assert new.info.features.to_json() == stored.to_json()
  # The old release is untouched.
  assert json.loads((old / "dataset_info.json").read_text()) == info


@pytest.mark.slow
def test_tfds_build_cli_builds_one_dataset_and_reaches_the_kind_option(tmp_path):
  """The documented command builds one dataset; --config pins the kind."""
  out = tmp_path / "out"
  base = helpers.build_command(helpers.DUMMY_DATA / "animal_photos", out)
  result = helpers.run(base)
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(p.name for p in (out / "my_images").iterdir()
                if not p.name.startswith(".")) == ["default"]
  result = helpers.run(base + ["--config", json.dumps(
      {"name": "det", "kind": "detection"})])
  assert result.returncode == 0, result.stderr[-3000:]
  det = _load_fresh(out, with_plugin=False, name="my_images/det")
  assert det["examples"] and all(
      ex["objects"]["bbox"] == [] for ex in det["examples"].values())
  default = _load_fresh(out, with_plugin=False)
  assert set(default["examples"]) == set(det["examples"])
  assert all("objects" not in ex for ex in default["examples"].values())


def test_metadata_columns_are_features_of_their_own_names():
  """`ScanResult.columns` (HF metadata) become top-level features, written
  from each record's `columns`, and are kept in the schema metadata."""
  import json

  columns = {"text": "text", "rating": "int", "score": "float",
             "ok": "bool", "tags": "text_list", "sizes": "int_list",
             "weights": "float_list", "flags": "bool_list"}
  values = {"text": "a cat", "rating": 3, "score": 0.5, "ok": True,
            "tags": ["x", "y"], "sizes": [1, 2, 3], "weights": [],
            "flags": [False]}
  rec = records.ImageRecord(key="a.jpg", path="/d/a.jpg", file_name="a.jpg",
                            split="train", source="metadata.jsonl",
                            id="a.jpg", columns=json.dumps(values))
  schema = features.Schema.from_records([rec], columns=columns)
  assert schema.kind == "images"
  assert schema.columns == tuple(columns.items())
  feature_dict = schema.features_dict()
  for name in columns:
    assert name in feature_dict
  from image_folder_tfds import images  # pylint: disable=g-import-not-at-top
  image = images.LoadedImage(data=helpers.encode(helpers.photo(1)),
                             format="jpeg", source_format="JPEG", width=40,
                             height=30, display_width=40, display_height=30)
  example = schema.to_example(rec, image, ())
  assert {k: example[k] for k in columns} == values
  # The encoded example is what TFDS would write.
  feature_dict.encode_example(example)
  again = features.Schema.from_metadata(schema.to_metadata(), store_images=True)
  assert again == schema
  # A dataset without columns keeps the metadata of 2.0.0.
  assert "columns" not in features.Schema().to_metadata()
  for bad in ("label", "image", "objects", "a/b", ""):
    with pytest.raises(ValueError, match="column name"):
      features.Schema(columns=((bad, "text"),))
  with pytest.raises(ValueError, match="unknown type"):
    features.Schema(columns=(("x", "complex"),))
  with pytest.raises(ValueError, match="no value of column 'text'"):
    schema.to_example(records.ImageRecord(**{
        **{f: getattr(rec, f) for f in ("key", "path", "file_name", "split",
                                        "source", "id")},
        "columns": "{}"}), image, ())
