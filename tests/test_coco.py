"""COCO (`dummy_data/coco`): instances + person_keypoints, built and compared."""

from __future__ import annotations

import json
import sys

import pytest
import tensorflow_datasets as tfds

import annotation_helpers as ah
import helpers
import image_folder_tfds

ROOT = helpers.DUMMY_DATA / "coco"
FILES = {
    "train": ["instances_train2017.json", "person_keypoints_train2017.json"],
    "validation": ["instances_val2017.json"],
}


def _load(name):
  return json.loads((ROOT / "annotations" / name).read_text())


def _categories():
  cats = {}
  for names in FILES.values():
    for name in names:
      for c in _load(name)["categories"]:
        if c.get("keypoints") or c["id"] not in cats:
          cats[c["id"]] = c
  return cats


def _expected():
  """{file_name: (split, image, {ann id: expected object})}."""
  cats = _categories()
  names = [cats[i]["name"] for i in sorted(cats)]
  out = {}
  for split, files in FILES.items():
    folder = files[0].split("_")[-1].split(".")[0]  # train2017
    images, anns = {}, {}
    for name in files:
      data = _load(name)
      for image in data["images"]:
        images[image["id"]] = image
      for ann in data["annotations"]:
        anns.setdefault(ann["id"], {}).update(ann)
    for image in images.values():
      rel = f"{folder}/{image['file_name']}"
      w, h = ah.display_size(ROOT / rel)
      objs = {}
      for ann in anns.values():
        if ann["image_id"] != image["id"]:
          continue
        x, y, bw, bh = ann["bbox"]
        kp = ann.get("keypoints", [])
        label = names.index(cats[ann["category_id"]]["name"])
        objs[str(ann["id"])] = {
            "box": (x / w, y / h, (x + bw) / w, (y + bh) / h),
            "label": label, "text": names[label],
            "area": ann["area"] / (w * h), "is_crowd": bool(ann["iscrowd"]),
            "score": -1.0, "conf": -1.0,
            "keypoints": [(kp[i] / w, kp[i + 1] / h, kp[i + 2], -1.0)
                          for i in range(0, len(kp), 3)],
        }
      out[rel] = (split, image, objs)
  return names, out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("coco")
  builder = helpers.build(ROOT, data_dir)
  return builder, ah.load_all(data_dir)  # Read back with tfds.load.


def test_class_names_are_categories_in_id_order(built):
  builder, _ = built
  names, _ = _expected()
  assert ah.class_names(builder) == names
  assert builder.info.features["objects"]["label"].names == names
  # Category ids 1, 3, 7: the stored label is the index, not the id.
  assert names == ["person", "cat", "dog"]


def test_keypoint_names_in_metadata(built):
  builder, _ = built
  person = [c for c in _load("person_keypoints_train2017.json")["categories"]
            if c["name"] == "person"][0]
  assert builder.info.metadata["keypoint_names"] == {
      "person": person["keypoints"]}


def test_skeleton_in_metadata(built):
  builder, _ = built
  person = [c for c in _load("person_keypoints_train2017.json")["categories"]
            if c["name"] == "person"][0]
  assert person["skeleton"]
  assert builder.info.metadata["skeletons"] == {"person": person["skeleton"]}


def _keypoint_file(root, categories, annotations, images=2):
  """A `person_keypoints_train2017.json` with `images` 40x30 images."""
  return helpers.write_coco(
      root, "train",
      [{"id": i, "file_name": f"{i}.jpg", "width": 40, "height": 30}
       for i in range(1, images + 1)], annotations, categories)


def _kp_annotation(aid, image_id, cid, points):
  """A COCO annotation with keypoints `points` [(x, y, v)] and a box."""
  return {"id": aid, "image_id": image_id, "category_id": cid,
          "bbox": [1, 2, 30, 20], "area": 600.0, "iscrowd": 0,
          "num_keypoints": sum(1 for p in points if p[2]),
          "keypoints": [v for p in points for v in p]}


def _want_keypoints(points):
  return [(x / 40, y / 30, v, -1.0) for x, y, v in points]


ISSUE_POINTS = {10: [(3, 4, 2), (6, 5, 1), (20, 10, 2)],
                11: [(30, 20, 2), (0, 0, 0), (12, 12, 2)]}


@pytest.fixture(scope="module")
def issue_case(tmp_path_factory):
  """Issue 25's file: a category that lists no keypoint names, whose
  annotations carry keypoints, with a skeleton numbered from 0."""
  tmp = tmp_path_factory.mktemp("coco_issue")
  path = _keypoint_file(
      tmp / "coco",
      [{"id": 1, "name": "person", "supercategory": "person",
        "skeleton": [[0, 1], [1, 2]]}],
      [_kp_annotation(aid, aid - 9, 1, points)
       for aid, points in ISSUE_POINTS.items()])
  builder = helpers.build(tmp / "coco", tmp / "out")
  return path, builder, helpers.read_all(builder)


def test_keypoints_without_names_and_0_based_skeleton_build(issue_case):
  """Today's "skeleton link [0, 1] names a keypoint outside 1..0" no longer
  stops the build: the keypoints are kept, the skeleton is left out, and the
  report says both."""
  path, builder, examples = issue_case
  for aid, points in ISSUE_POINTS.items():
    (got,) = ah.objects(examples[f"train2017/{aid - 9}.jpg"], ["person"])
    ah.assert_object(got, {"box": (1 / 40, 2 / 30, 31 / 40, 22 / 30),
                           "keypoints": _want_keypoints(points)}, str(aid))
  assert "keypoint_names" not in builder.info.metadata
  assert "skeletons" not in builder.info.metadata
  report = helpers.report(builder)
  skeleton = ah.find_problem(report, path.name, "category 1 ('person')"
                             " skeleton", kind="warning")
  assert skeleton["reason"].startswith(
      "skeleton link [0, 1] names a keypoint outside 1..3 (it looks numbered"
      " from 0; COCO numbers keypoints from 1): skeleton left out")
  names = ah.find_problem(report, path.name, "lists no keypoint names",
                          kind="warning")
  assert "3 keypoints in 2 annotation(s)" in names["reason"]
  assert "no keypoint_names for this class" in names["reason"]
  assert not ah.problems(report, "rejected")


# Other category metadata that disagrees with the annotations: each a
# warning naming the file and the category; the build goes on.
OTHER_CATEGORIES = [
    {"id": 1, "name": "hand", "keypoints": ["a", "b"], "skeleton": [[1, 99]]},
    {"id": 2, "name": "paw", "skeleton": [[1]]},
    {"id": 3, "name": "tail", "keypoints": ["x", "y"], "skeleton": "1-2"},
    {"id": 4, "name": "ear", "keypoints": ["l", "r"], "skeleton": [[1, 2]]},
    {"id": 5, "name": "cup", "keypoints": "rim"},
]
OTHER_POINTS = {  # annotation id: (image, category, points)
    20: (1, 1, [(2, 2, 2), (4, 4, 2)]),
    21: (1, 2, [(5, 5, 2), (6, 6, 1)]),
    22: (2, 2, [(7, 7, 2), (8, 8, 2), (9, 9, 2)]),
    23: (2, 3, [(10, 10, 2), (11, 11, 2)]),
    24: (2, 4, [(12, 12, 2), (13, 13, 1)]),
}


def test_other_category_metadata_disagreements_are_warnings(tmp_path):
  path = _keypoint_file(tmp_path / "coco", OTHER_CATEGORIES, [
      _kp_annotation(aid, image, cid, points)
      for aid, (image, cid, points) in OTHER_POINTS.items()])
  builder = helpers.build(tmp_path / "coco", tmp_path / "out")
  names = ["hand", "paw", "tail", "ear", "cup"]
  assert ah.class_names(builder) == names
  assert builder.info.metadata["keypoint_names"] == {
      "hand": ["a", "b"], "tail": ["x", "y"], "ear": ["l", "r"]}
  assert builder.info.metadata["skeletons"] == {"ear": [[1, 2]]}
  examples = helpers.read_all(builder)
  for aid, (image, cid, points) in OTHER_POINTS.items():
    got = {o["id"]: o for o in ah.objects(examples[f"train2017/{image}.jpg"],
                                          names)}
    ah.assert_object(got[str(aid)], {"label": cid - 1,
                                     "keypoints": _want_keypoints(points)},
                     str(aid))
  report = helpers.report(builder)
  for category, needle in [
      ("category 1 ('hand') skeleton", "link [1, 99] names a keypoint outside"
       " 1..2: skeleton left out"),
      ("category 2 ('paw') skeleton", "skeleton link [1] is not a pair"),
      ("category 3 ('tail') skeleton", "skeleton must be an array, got '1-2'"),
      ("category 2 ('paw')", "2 keypoints in 1 annotation(s), 3 keypoints in"
       " 1 annotation(s)"),
      ("category 5 ('cup') keypoints", "must be an array, got 'rim': keypoint"
       " names left out")]:
    problem = ah.find_problem(report, path.name, category, needle,
                              kind="warning")
    assert problem["item"].startswith(category)
  assert "padded" in ah.find_problem(
      report, "category 2 ('paw')", "keypoints in", kind="warning")["reason"]
  assert not ah.problems(report, "rejected")


def test_every_box_keypoint_and_label_read_back(built):
  builder, examples = built
  _, expected = _expected()
  assert sorted(examples) == sorted(expected)
  n_objects = 0
  for rel, (split, image, objs) in expected.items():
    ex = examples[rel]
    assert ex["split"] == split
    assert ex["id"].decode() == str(image["id"])
    extra = json.loads(ex["extra"].decode())
    assert extra == {k: v for k, v in image.items()
                     if k not in ("id", "file_name", "width", "height")}
    got = {o["id"]: o for o in ah.objects(ex)}
    assert sorted(got) == sorted(objs), rel
    for ann_id, want in objs.items():
      ah.assert_object(got[ann_id], want, f"{rel} annotation {ann_id}")
      n_objects += 1
  assert n_objects == 5


def test_image_without_annotations_is_kept(built):
  _, examples = built
  assert ah.objects(examples["train2017/000005.jpg"]) == []
  assert ah.objects(examples["val2017/000011.jpg"]) == []


def test_segmentations_are_stored_as_masks(built):
  """`dummy_data/coco` has a polygon and an uncompressed RLE (exactness
  against pycocotools: tests/test_masks.py, test_segmentation_build.py)."""
  builder, examples = built
  from pycocotools import mask as mask_utils  # pylint: disable=g-import-not-at-top
  anns = {str(a["id"]): a for name in FILES["train"]
          for a in _load(name)["annotations"]}
  n_masks = 0
  for ex in examples.values():
    if "objects" not in ex or not len(ex["objects"]["id"]):
      continue
    for oid, mask in zip(ex["objects"]["id"], ex["objects"]["mask"]):
      seg = anns.get(oid.decode(), {}).get("segmentation")
      h, w = mask.shape[:2]
      if seg is None:
        assert not mask.any()  # No segmentation: an empty mask.
        continue
      rle = mask_utils.frPyObjects(seg, h, w)
      want = mask_utils.decode(mask_utils.merge(rle) if isinstance(rle, list)
                               else rle)
      assert (mask[..., 0] == want).all(), oid
      n_masks += 1
  assert n_masks == 2
  report = helpers.report(builder)
  ah.find_problem(report, "instances_train2017.json", "no segmentation",
                  kind="warning")
  assert not ah.problems(report, "rejected")
  assert not ah.problems(report, "changed")


LOAD = """
import json, sys
import tensorflow_datasets as tfds
ds = tfds.load("my_images", split="all", data_dir=sys.argv[1])
out = {}
for ex in tfds.as_numpy(ds):
  o = ex["objects"]
  out[ex["file_name"].decode()] = {
      "ids": [i.decode() for i in o["id"]], "bbox": o["bbox"].tolist(),
      "label": o["label"].tolist(), "kp_x": o["keypoints"]["x"].tolist(),
      "kp_y": o["keypoints"]["y"].tolist(),
      "kp_v": o["keypoints"]["v"].tolist()}  # Dense: NumPy, no RaggedTensor.
print(json.dumps(out))
"""


@pytest.mark.slow
def test_tfds_build_command_then_load_in_fresh_process(tmp_path):
  """The same `tfds build` command as for class folders; `tfds.load` in a
  process that never imports the plugin gives every box back."""
  out = helpers.run(helpers.build_command(ROOT, tmp_path))
  assert out.returncode == 0, out.stderr[-3000:]
  assert "coco: annotations/instances_train2017.json" in out.stderr
  loaded = helpers.run([sys.executable, "-c", LOAD, str(tmp_path)])
  assert loaded.returncode == 0, loaded.stderr[-3000:]
  got = json.loads(loaded.stdout.strip().splitlines()[-1])
  _, expected = _expected()
  assert sorted(got) == sorted(expected)
  for rel, (_, _, objs) in expected.items():
    by_id = dict(zip(got[rel]["ids"], range(len(got[rel]["ids"]))))
    assert sorted(by_id) == sorted(objs)
    for ann_id, want in objs.items():
      i = by_id[ann_id]
      xmin, ymin, xmax, ymax = want["box"]
      assert got[rel]["bbox"][i] == pytest.approx([ymin, xmin, ymax, xmax],
                                                  abs=ah.TOL)
      assert got[rel]["label"][i] == want["label"]
      points = ah.unpad(zip(got[rel]["kp_x"][i], got[rel]["kp_y"][i],
                            got[rel]["kp_v"][i]))
      want_points = ah.unpad(want["keypoints"])
      assert [p[0] for p in points] == pytest.approx(
          [k[0] for k in want_points], abs=ah.TOL)
      assert [p[2] for p in points] == [k[2] for k in want_points]


class CocoBuilderTest(tfds.testing.DatasetBuilderTestCase):
  """TFDS's builder test over `dummy_data/coco`."""

  DATASET_CLASS = image_folder_tfds.MyImages
  EXAMPLE_DIR = str(ROOT)
  SPLITS = {"train": 3, "validation": 2}
  SKIP_CHECKSUMS = True


def test_scan_keeps_records_packed_and_equal_to_the_objects():
  """The COCO scan keeps its records pickled (`records.PackedRecords`): they
  read back equal, by split in input order, at a fraction of their size as
  Python objects."""
  from image_folder_tfds import readers
  from image_folder_tfds import records
  scan = readers.scan(str(ROOT), "auto",
                      readers.common.ReadOptions(split_fractions={}))
  recs = scan.records
  assert isinstance(recs, records.PackedRecords)
  every = list(recs)
  assert [r.split for r in every] == scan.split_names()
  assert recs[0] == every[0] and recs[-1] == every[-1]
  assert recs[1:3] == every[1:3]
  _, expected = _expected()
  assert {r.file_name for r in every} == set(expected)
  for r in every:
    split, _, objs = expected[r.file_name]
    assert r.split == split
    assert {o.id for o in r.objects} == set(objs)
  parts = scan.by_split()
  assert {s: list(p) for s, p in parts.items()} == {
      s: [r for r in every if r.split == s] for s in dict.fromkeys(
          r.split for r in every)}
  assert all(isinstance(p, records.PackedRecords) for p in parts.values())
  # Packed, an image is a few hundred bytes, an object ~100 (+ keypoints).
  for r in every:
    assert len(records.pack_record(r)) < 400 + sum(
        120 + 40 * len(o.keypoints) for o in r.objects), r
    for o in r.objects:
      assert records.unpack_object(records.pack_object(o)) == o
  assert any(o.keypoints for r in every for o in r.objects)
  assert any(o.segmentation >= 0 for r in every for o in r.objects)


def test_annotations_merged_by_id_across_files_and_repeats_reported(tmp_path):
  """One split's `instances_*` and `person_keypoints_*` give one object per
  annotation id (the keypoints taken, the mask of either); an id repeated
  with other values is reported and its first values kept; an exact repeat
  is one object. Objects keep the order they were first read in."""
  root = tmp_path / "coco"
  images = [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.jpg", "width": 40, "height": 30}]
  cats = [{"id": 1, "name": "person", "keypoints": ["nose", "eye"]},
          {"id": 2, "name": "cup"}]
  square = [[2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0]]
  instances = [
      {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10],
       "area": 100.0, "iscrowd": 0, "segmentation": square},
      {"id": 11, "image_id": 2, "category_id": 2, "bbox": [2, 2, 5, 5],
       "area": 25.0, "iscrowd": 0},
      {"id": 12, "image_id": 1, "category_id": 2, "bbox": [5, 5, 5, 5],
       "area": 25.0, "iscrowd": 0},
      {"id": 11, "image_id": 2, "category_id": 2, "bbox": [3, 3, 5, 5],
       "area": 25.0, "iscrowd": 0},  # Other values: reported, not used.
      {"id": 12, "image_id": 1, "category_id": 2, "bbox": [5, 5, 5, 5],
       "area": 25.0, "iscrowd": 0},  # The same again: one object.
  ]
  helpers.write_coco(root, "train", images, instances, cats, kind="instances")
  helpers.write_coco(root, "train", images, [
      {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10],
       "area": 100.0, "iscrowd": 0, "num_keypoints": 2,
       "keypoints": [3, 4, 2, 6, 5, 1]},
  ], cats)
  builder = helpers.build(root, tmp_path / "out")
  got = {ex["file_name"].decode(): ex
         for ex in helpers.read_split(builder, "train")}
  a = ah.objects(got["train2017/a.jpg"])
  assert [(o["id"], o["label"]) for o in a] == [("10", 0), ("12", 1)]
  want = [(3 / 40, 4 / 30, 2, -1.0), (6 / 40, 5 / 30, 1, -1.0)]
  assert len(a[0]["keypoints"]) == len(want)
  for got_kp, want_kp in zip(a[0]["keypoints"], want):
    assert got_kp == pytest.approx(want_kp, abs=1e-6)
  assert got["train2017/a.jpg"]["objects"]["mask"].shape[0] == 2
  assert got["train2017/a.jpg"]["objects"]["mask"][0].sum() > 0  # From instances.
  b = ah.objects(got["train2017/b.jpg"])
  assert len(b) == 1
  assert b[0]["box"] == pytest.approx((2 / 40, 2 / 30, 7 / 40, 7 / 30))
  twice = [p for p in ah.problems(helpers.report(builder))
           if "appears twice" in p["reason"]]
  assert len(twice) == 1 and "object 11" in twice[0]["item"]
  assert twice[0]["file"].endswith("instances_train2017.json")
