"""Annotation checks: every rejection rule, mixed good and bad data, paths,
strict mode, EXIF orientation, layout detection and streaming of big files."""

from __future__ import annotations

import json
import os
import tracemalloc

import numpy as np
import pytest
from PIL import Image

import annotation_helpers as ah
import helpers
from image_folder_tfds import MyImagesConfig
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds import splits
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import coco
from image_folder_tfds.readers import seed001

W, H = 40, 30  # helpers.write_image's default size.
OPTIONS = readers.ReadOptions(split_fractions={"train": 0.8, "validation": 0.1,
                                               "test": 0.1})
STRICT = MyImagesConfig(name="strict", strict=True)


def _box(xmin, ymin, xmax, ymax, **fields):
  """A seed-001 `object` with one box (and per-object `fields`)."""
  obj = {"bbox": {"xmin": [xmin], "ymin": [ymin], "xmax": [xmax],
                  "ymax": [ymax]}}
  for key, value in fields.items():
    if key in ("id", "area"):
      obj[key] = [value]
    else:
      obj["bbox"][key] = [value]
  return obj


# --- Seed 001: one dataset of good and bad annotations --------------------------

# (object id, bbox fields, reason needle, kind) for the objects of mixed.jpg.
MIXED_OBJECTS = [
    ("good", dict(xmin=0.1, ymin=0.2, xmax=0.5, ymax=0.6, label=0), None, None),
    ("clipped", dict(xmin=0.5, ymin=0.5, xmax=1 + 0.5 / W, ymax=1.0, label=1),
     "clipped", "changed"),
    ("outside", dict(xmin=0.1, ymin=0.1, xmax=1.5, ymax=0.5, label=0),
     "lies outside the image", "rejected"),
    ("min-gt-max", dict(xmin=0.6, ymin=0.1, xmax=0.2, ymax=0.5, label=0),
     "min > max", "rejected"),
    ("nan", dict(xmin=float("nan"), ymin=0.1, xmax=0.2, ymax=0.5, label=0),
     "object.bbox.xmin[", "rejected"),
    ("inf", dict(xmin=0.1, ymin=0.1, xmax=0.2, ymax=float("inf"), label=0),
     "object.bbox.ymax[", "rejected"),
    ("wrong-type", dict(xmin="0.1", ymin=0.1, xmax=0.2, ymax=0.5, label=0),
     "object.bbox.xmin[6] must be a number", "rejected"),
    ("label-id", dict(xmin=0.1, ymin=0.1, xmax=0.2, ymax=0.5, label=7),
     "object label 7 is not among the 3 classes", "rejected"),
    ("label-name", dict(xmin=0.1, ymin=0.1, xmax=0.2, ymax=0.5, text="horse"),
     "object label 'horse' is not among the classes", "rejected"),
    ("label-disagree", dict(xmin=0.1, ymin=0.1, xmax=0.2, ymax=0.5, label=0,
                            text="dog"),
     "index 0 is class 'cat', but the name given with it is 'dog'", "rejected"),
    ("negative-label", dict(xmin=0.1, ymin=0.1, xmax=0.2, ymax=0.5, label=-2),
     "class indices start at 0", "rejected"),
    ("big-area", dict(xmin=0.1, ymin=0.1, xmax=0.2, ymax=0.5, label=0,
                      area=1.5), "larger than the image", "rejected"),
    ("good-name", dict(xmin=0.0, ymin=0.0, xmax=1.0, ymax=1.0, text="bird"),
     None, None),
]


def _mixed_object_field():
  """MIXED_OBJECTS as one seed-001 `object` (parallel arrays)."""
  coords = ("xmin", "ymin", "xmax", "ymax")
  obj = {"id": [], "area": [], "bbox": {c: [] for c in coords}}
  obj["bbox"].update(label=[], text=[])
  for obj_id, f, _, _ in MIXED_OBJECTS:
    obj["id"].append(obj_id)
    obj["area"].append(f.get("area", 0.1))
    for c in coords:
      obj["bbox"][c].append(f[c])
    obj["bbox"]["label"].append(f.get("label"))
    obj["bbox"]["text"].append(f.get("text"))
  return obj


# (image, entry fields, reason needle): entries refused as a whole.
REFUSED_ENTRIES = [
    ("count.jpg", {"object": {"count": 3, **_box(0.1, 0.1, 0.2, 0.2)}},
     "object.count is 3, but object.bbox.xmin has 1 entries"),
    ("kp-unequal.jpg", {"object": {"parts": {"x": [0.1, 0.2, 0.3],
                                             "y": [0.1, 0.2]}}},
     "object.parts arrays have unequal lengths: x 3, y 2"),
    ("arrays.jpg", {"object": {"area": [0.1, 0.2],
                               **_box(0.1, 0.1, 0.2, 0.2)}},
     "object arrays have different lengths"),
    ("partial-box.jpg", {"object": {"bbox": {"xmin": [0.1], "ymin": [0.1]}}},
     "object.bbox has xmin, ymin but not xmax, ymax"),
    ("parts-share.jpg", {"object": {"count": 2, "area": [0.1, 0.1],
                                    "parts": {"x": [0.1, 0.2, 0.3],
                                              "y": [0.1, 0.2, 0.3]}}},
     "cannot be shared evenly among 2 objects"),
    ("not-array.jpg", {"object": {"bbox": {"xmin": 0.1, "ymin": [0.1],
                                           "xmax": [0.2], "ymax": [0.2]}}},
     "object.bbox.xmin must be an array"),
]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
  """A seed-001 dataset where every rule is broken once, next to good data."""
  base = tmp_path_factory.mktemp("mixed")
  root = base / "data"
  outside = base / "outside.jpg"
  helpers.write_image(outside, seed=90)
  (root / "links").mkdir(parents=True)
  os.symlink(outside, root / "links" / "evil.jpg")
  (root / "labels.txt").write_text("cat\ndog\nbird\n")
  names = ["good.jpg", "mixed.jpg", "keypoints.jpg", "bad-class.jpg"]
  names += [n for n, _, _ in REFUSED_ENTRIES]
  for i, name in enumerate(names):
    helpers.write_image(root / "img" / name, seed=i)
  entries = [
      {"filename": "img/good.jpg", "id": "g", "class": {"label": 2},
       "object": {"id": ["a", "b"], **{
           "bbox": {"xmin": [0.1, 0.3], "ymin": [0.2, 0.4],
                    "xmax": [0.4, 0.9], "ymax": [0.5, 1.0],
                    "label": [0, 1]}},
           "parts": {"x": [0.15, 0.35, 0.5, 0.6], "y": [0.25, 0.3, 0.5, 0.9],
                     "v": [2, 1, 2, 2]}}},
      {"filename": "img/mixed.jpg", "object": _mixed_object_field()},
      {"filename": "img/keypoints.jpg", "object": {
          "id": ["kp-good", "kp-outside", "kp-v", "kp-nan"],
          "bbox": {"xmin": [0.1] * 4, "ymin": [0.1] * 4, "xmax": [0.9] * 4,
                   "ymax": [0.9] * 4, "label": [0] * 4},
          # kp-good's second point is outside but not visible (v 0): kept.
          "parts": {"x": [0.2, 1.7, 1.3, 0.4, 0.5, 0.5, float("nan"), 0.1],
                    "y": [0.2, -0.5, 0.5, 0.4, 0.5, 0.5, 0.5, 0.1],
                    "v": [2, 0, 2, 2, 3, 2, 2, 2]}}},
      {"filename": "img/bad-class.jpg", "class": {"label": 9},
       "object": _box(0.2, 0.2, 0.8, 0.8, label=1)},
  ]
  entries += [dict(filename=f"img/{n}", **f) for n, f, _ in REFUSED_ENTRIES]
  entries += [
      {"filename": "../outside.jpg"},
      {"filename": str(outside)},
      {"filename": "links/evil.jpg"},
      {"filename": "img/missing.jpg"},
      {"id": "no-filename"},
      [1, 2, 3],
  ]
  lines = [json.dumps(e) for e in entries]  # NaN and Infinity as Python writes.
  lines.insert(5, "{not json")
  (root / "train.jsonl").write_text("\n".join(lines) + "\n")
  builder = helpers.build(root, base / "out")
  return root, builder, helpers.read_all(builder), helpers.report(builder)


@pytest.mark.parametrize(
    "obj_id,needle,kind",
    [(i, n, k) for i, _, n, k in MIXED_OBJECTS if n],
    ids=[i for i, _, n, _ in MIXED_OBJECTS if n])
def test_each_box_rule_is_reported(mixed, obj_id, needle, kind):
  _, _, _, report = mixed
  p = ah.find_problem(report, "train.jsonl", f"mixed.jpg: object {obj_id}",
                      kind=kind)
  assert needle in p["reason"]


def test_mixed_keeps_every_good_object(mixed):
  _, _, examples, _ = mixed
  got = {o["id"]: o for o in ah.objects(examples["img/mixed.jpg"])}
  assert sorted(got) == ["clipped", "good", "good-name"]
  ah.assert_object(got["good"], {"box": (0.1, 0.2, 0.5, 0.6), "label": 0,
                                 "text": "cat", "area": 0.1}, "good")
  ah.assert_object(got["clipped"], {"box": (0.5, 0.5, 1.0, 1.0), "label": 1,
                                    "text": "dog"}, "clipped")
  ah.assert_object(got["good-name"], {"box": (0.0, 0.0, 1.0, 1.0),
                                      "label": 2, "text": "bird"}, "good-name")
  good = examples["img/good.jpg"]
  assert good["label"] == 2 and "label_text" not in good  # names[2]: bird
  objs = ah.objects(good)
  ah.assert_object(objs[0], {"box": (0.1, 0.2, 0.4, 0.5), "label": 0,
                             "keypoints": [(0.15, 0.25, 2, -1.0),
                                           (0.35, 0.3, 1, -1.0)]}, "a")
  ah.assert_object(objs[1], {"box": (0.3, 0.4, 0.9, 1.0), "label": 1,
                             "keypoints": [(0.5, 0.5, 2, -1.0),
                                           (0.6, 0.9, 2, -1.0)]}, "b")


@pytest.mark.parametrize("obj_id,needle", [
    ("kp-outside", "keypoint 0 (1.3, 0.5) lies outside the image"),
    ("kp-v", "object.parts.v[4] is 3"),
    ("kp-nan", "object.parts.x[6] is nan"),
])
def test_each_keypoint_rule_is_reported(mixed, obj_id, needle):
  _, _, examples, report = mixed
  p = ah.find_problem(report, f"keypoints.jpg: object {obj_id}",
                      kind="rejected")
  assert needle in p["reason"]
  (kept,) = ah.objects(examples["img/keypoints.jpg"])
  ah.assert_object(kept, {"id": "kp-good", "keypoints": [
      (0.2, 0.2, 2, -1.0), (1.7, -0.5, 0, -1.0)]}, "kp-good")


@pytest.mark.parametrize("name,needle", [(n, r) for n, _, r in REFUSED_ENTRIES],
                         ids=[n for n, _, _ in REFUSED_ENTRIES])
def test_structural_errors_refuse_the_entry(mixed, name, needle):
  _, _, examples, report = mixed
  p = ah.find_problem(report, "train.jsonl", needle, kind="rejected")
  assert p["item"].startswith("line ")
  assert f"img/{name}" not in examples


def test_bad_image_class_keeps_image_without_class(mixed):
  _, _, examples, report = mixed
  ah.find_problem(report, "bad-class.jpg: class",
                  "class 9 is not among the 3 classes", kind="rejected")
  ex = examples["img/bad-class.jpg"]
  assert ex["label"] == -1
  assert len(ah.objects(ex)) == 1


@pytest.mark.parametrize("needle", [
    "'../outside.jpg' is outside the data folder",
    "outside.jpg' is outside the data folder",
    "'links/evil.jpg' is a symbolic link to",
    "listed image 'img/missing.jpg' not found",
    "no `filename`",
    "the entry must be an object",
    "not valid JSON",
], ids=["dotdot", "absolute", "symlink", "missing", "no-filename", "not-dict",
        "bad-json"])
def test_paths_and_broken_entries_are_reported(mixed, needle):
  _, _, _, report = mixed
  matches = [p for p in ah.problems(report, "rejected")
             if needle in p["reason"]]
  assert len(matches) == (2 if needle.startswith("outside.jpg") else 1), needle


def test_counts_add_up(mixed):
  _, builder, examples, report = mixed
  counts = builder.info.metadata["counts"]
  total = sum(c["found"] for c in counts.values())
  rejected_inputs = sum(c["rejected"] for c in counts.values())
  assert total == len(examples) + rejected_inputs
  # 4 written; 6 refused entries, 3 refused paths, 1 missing, 1 without a
  # filename, 1 not a dict, 1 line of bad JSON.
  assert len(examples) == 4
  assert rejected_inputs == 13
  assert report["counts"] == counts


# --- Strict mode ----------------------------------------------------------------


@pytest.mark.parametrize("obj,needle", [
    (_box(0.1, 0.1, 1 + 0.5 / W, 0.5), "clipped"),
    (_box(0.1, 0.1, 0.5, 0.5, label=5), "label 5 is not among"),
    (_box(0.1, 0.1, 1.5, 0.5), "outside the image"),
])
def test_strict_mode_fails_the_build(tmp_path, obj, needle):
  root = tmp_path / "data"
  helpers.write_image(root / "a.jpg")
  (root / "labels.txt").write_text("cat\n")
  ah.write_json(root / "train.json", [{"filename": "a.jpg", "object": obj}])
  with pytest.raises(records.BadInputError, match=needle):
    helpers.build(root, tmp_path / "out", config=STRICT)


# --- COCO -----------------------------------------------------------------------


def test_coco_rules(tmp_path):
  root = tmp_path / "data"
  for name in ("1.jpg", "2.jpg"):
    helpers.write_image(root / "images" / name)
  cats = [{"id": 5, "name": "cat"},
          {"id": 2, "name": "person", "keypoints": ["a", "b"]}]
  good = {"id": 1, "image_id": 1, "category_id": 5, "bbox": [4, 3, 20, 15],
          "area": 120.0, "iscrowd": 0}
  bad = [
      (dict(good, id=2, category_id=99), "category_id 99 is not among"),
      (dict(good, id=3, image_id=42), "image_id 42 is not among the images"),
      (dict(good, id=4, bbox=[1, 2, 3]), "bbox must be [x, y, width, height]"),
      (dict(good, id=5, bbox=[1, 2, -3, 4]), "negative width or height"),
      (dict(good, id=6, iscrowd=2), "iscrowd must be 0 or 1"),
      (dict(good, id=7, area="big"), "area must be a number"),
      (dict(good, id=8, category_id=2, keypoints=[1, 2, 2]),
       "keypoints has 1 triples, but the category names 2 keypoints"),
      (dict(good, id=9, category_id=2, keypoints=[1, 2, 2, 3, 4, 2],
            num_keypoints=1), "num_keypoints is 1, but 2 keypoints"),
      (dict(good, id=10, category_id=2, keypoints=[1, 2, 2, 3, 4, 7]),
       "visibility must be 0, 1 or 2"),
      (dict(good, id=11, bbox=[30, 20, 20, 15]), "lies outside the image"),
      (dict(good, id=12, category_id=2, keypoints=[1, 2, 2, 45, 4, 2]),
       "keypoint 1 (45.0, 4.0) lies outside the image"),
  ]
  ok_kp = dict(good, id=13, category_id=2, keypoints=[0, 0, 0, 10, 20, 1],
               num_keypoints=1)
  ah.write_json(root / "annotations" / "instances_train2017.json", {
      "images": [{"id": 1, "file_name": "1.jpg", "width": W, "height": H},
                 {"id": 2, "file_name": "2.jpg", "width": W, "height": H},
                 {"id": 3, "file_name": "gone.jpg"}],
      "annotations": [good, ok_kp] + [a for a, _ in bad],
      "categories": cats})
  builder = helpers.build(root, tmp_path / "out")
  report = helpers.report(builder)
  for ann, needle in bad:
    p = ah.find_problem(report, f"object {ann['id']} ", kind="rejected")
    assert needle in p["reason"], (p, needle)
    assert "instances_train2017.json" in p["file"]
  ah.find_problem(report, "image 3", "listed image 'gone.jpg' not found",
                  kind="rejected")
  examples = helpers.read_all(builder)
  assert sorted(examples) == ["images/1.jpg", "images/2.jpg"]
  got = {o["id"]: o for o in ah.objects(examples["images/1.jpg"])}
  assert sorted(got) == ["1", "13"]
  # Categories 2, 5 -> class names [person, cat]: labels are indices.
  assert ah.class_names(builder) == ["person", "cat"]
  ah.assert_object(got["1"], {"box": (4 / W, 3 / H, 24 / W, 18 / H),
                              "label": 1, "text": "cat",
                              "area": 120 / (W * H)}, "1")
  ah.assert_object(got["13"], {"label": 0, "keypoints": [
      (0.0, 0.0, 0, -1.0), (10 / W, 20 / H, 1, -1.0)]}, "13")
  assert ah.objects(examples["images/2.jpg"]) == []


# --- Pascal VOC -----------------------------------------------------------------


def _voc_object(name, box):
  inner = "".join(f"<{k}>{v}</{k}>" for k, v in zip(
      ("xmin", "ymin", "xmax", "ymax"), box))
  name_xml = f"<name>{name}</name>" if name is not None else ""
  return f"<object>{name_xml}<bndbox>{inner}</bndbox></object>"


def test_voc_rules(tmp_path):
  root = tmp_path / "data"
  (root / "Annotations").mkdir(parents=True)
  main = root / "ImageSets" / "Main"
  main.mkdir(parents=True)
  for stem in ("a", "b"):
    helpers.write_image(root / "JPEGImages" / f"{stem}.jpg")
  (root / "labels.txt").write_text("dog\ncat\n")
  objects = [
      _voc_object("dog", (1, 2, 30, 25)),
      _voc_object(None, (1, 2, 30, 25)),
      _voc_object("dog", ("abc", 2, 30, 25)),
      _voc_object("horse", (1, 2, 30, 25)),
      _voc_object("cat", (1, 2, 60, 25)),
  ]
  (root / "Annotations" / "a.xml").write_text(
      "<annotation><filename>a.jpg</filename><size><width>30</width>"
      f"<height>40</height></size>{''.join(objects)}</annotation>")
  (root / "Annotations" / "b.xml").write_text("<annotation><filename>b.jpg")
  (root / "Annotations" / "c.xml").write_text(
      "<annotation><filename>c.jpg</filename></annotation>")
  (main / "train.txt").write_text("a\nb\nc\nd\n")
  builder = helpers.build(root, tmp_path / "out")
  report = helpers.report(builder)
  for item, needle in [("a.jpg: object 1", "object has no <name>"),
                       ("a.jpg: object 2", "bndbox/xmin must be a number"),
                       ("a.jpg: object 3", "'horse' is not among the classes"),
                       ("a.jpg: object 4", "lies outside the image")]:
    assert needle in ah.find_problem(report, item, kind="rejected")["reason"]
  ah.find_problem(report, "b.xml", "not a readable XML file", kind="rejected")
  ah.find_problem(report, "c.xml", "listed image 'c.jpg' not found",
                  kind="rejected")
  ah.find_problem(report, "train.txt", "'d' has no Annotations/d.xml",
                  kind="rejected")
  ah.find_problem(report, "a.jpg", "gives the image size 30x40",
                  "width and height swapped", kind="warning")
  examples = helpers.read_all(builder)
  assert sorted(examples) == ["JPEGImages/a.jpg"]
  (obj,) = ah.objects(examples["JPEGImages/a.jpg"])
  ah.assert_object(obj, {"box": (1 / W, 2 / H, 30 / W, 25 / H), "label": 0,
                         "text": "dog", "id": "0"}, "a.jpg")
  assert builder.info.metadata["counts"]["train"] == {
      "found": 4, "written": 1, "rejected": 3}


# --- CSV ------------------------------------------------------------------------


def test_csv_rules(tmp_path):
  root = tmp_path / "data"
  for name in ("a.jpg", "b.jpg"):
    helpers.write_image(root / "images" / name)
  helpers.write_image(tmp_path / "outside.jpg")
  (root / "labels.txt").write_text("raccoon\nfox\n")
  rows = [
      "a.jpg,40,30,raccoon,1,2,30,25",
      "a.jpg,40,30,raccoon,nan,2,30,25",
      "a.jpg,40,30,raccoon,1,inf,30,25",
      "a.jpg,40,30,raccoon,1,2,abc,25",
      "a.jpg,40,30,,1,2,30,25",
      "a.jpg,40,30,wolf,1,2,30,25",
      "a.jpg,40,30,fox,1,2,30,25,extra",
      "a.jpg,40,30,fox,20,20,40.4,30",
      "b.jpg,forty,30,,,,,",
      "missing.jpg,40,30,fox,1,2,3,4",
      "../outside.jpg,40,30,fox,1,2,3,4",
  ]
  (root / "train.csv").write_text(
      "filename,width,height,class,xmin,ymin,xmax,ymax\n" + "\n".join(rows))
  builder = helpers.build(root, tmp_path / "out")
  report = helpers.report(builder)
  for line, needle in [(3, "xmin is nan (NaN or infinite)"),
                       (4, "ymin is inf (NaN or infinite)"),
                       (5, "xmax must be a number, got 'abc'"),
                       (6, "class is empty"),
                       (8, "more cell(s) than the header")]:
    p = ah.find_problem(report, f"a.jpg: line {line} ", kind="rejected")
    assert needle in p["reason"], (line, p)
  # Label checks name the object, whose id is the line number.
  for line, needle in [(7, "'wolf' is not among the classes")]:
    p = ah.find_problem(report, f"a.jpg: object {line} ", kind="rejected")
    assert needle in p["reason"], (line, p)
  ah.find_problem(report, "a.jpg: object 9", "clipped", kind="changed")
  ah.find_problem(report, "b.jpg: line 10", "width must be a number",
                  "not checked", kind="warning")
  ah.find_problem(report, "line 11", "'missing.jpg' not found",
                  kind="rejected")
  ah.find_problem(report, "line 12", "outside the data folder",
                  kind="rejected")
  examples = helpers.read_all(builder)
  assert sorted(examples) == ["images/a.jpg", "images/b.jpg"]
  objs = {o["id"]: o for o in ah.objects(examples["images/a.jpg"])}
  assert sorted(objs) == ["2", "9"]
  ah.assert_object(objs["2"], {"box": (1 / W, 2 / H, 30 / W, 25 / H),
                               "label": 0, "text": "raccoon"}, "line 2")
  ah.assert_object(objs["9"], {"box": (20 / W, 20 / H, 1.0, 1.0),
                               "label": 1}, "line 9")
  assert ah.objects(examples["images/b.jpg"]) == []


# --- EXIF orientation -----------------------------------------------------------


def _rotated_jpeg(path, displayed_box):
  """A JPEG stored sideways with EXIF orientation 6, whose displayed image
  (48x32) is dark with a white rectangle at `displayed_box` (pixels)."""
  shown = np.full((32, 48, 3), 20, np.uint8)
  x0, y0, x1, y1 = displayed_box
  shown[y0:y1, x0:x1] = 255
  # Orientation 6: the viewer turns the stored image 90 degrees clockwise,
  # so the stored pixels are the displayed ones turned counter-clockwise.
  stored = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)
  exif = Image.Exif()
  exif[0x0112] = 6
  path.parent.mkdir(parents=True, exist_ok=True)
  stored.save(path, "JPEG", quality=95, exif=exif)
  assert stored.size == (32, 48)


@pytest.mark.parametrize("fmt", ["seed001", "csv"])
def test_boxes_follow_exif_orientation(tmp_path, fmt):
  box = (8, 4, 24, 20)  # Pixels on the displayed 48x32 image.
  root = tmp_path / "data"
  _rotated_jpeg(root / "rot.jpg", box)
  if fmt == "seed001":
    ah.write_json(root / "train.json", [{"filename": "rot.jpg", "object": _box(
        box[0] / 48, box[1] / 32, box[2] / 48, box[3] / 32, text="white")}])
  else:
    (root / "train.csv").write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\n"
        f"rot.jpg,48,32,white,{','.join(map(str, box))}\n")
  builder = helpers.build(root, tmp_path / "out")
  ex = helpers.read_all(builder)["rot.jpg"]
  image = ex["image"][..., 0].astype(float)
  assert image.shape == (32, 48)
  (obj,) = ah.objects(ex)
  ah.assert_object(obj, {"box": (8 / 48, 4 / 32, 24 / 48, 20 / 32)}, "rot")
  xmin, ymin, xmax, ymax = obj["box"]
  inside = image[round(ymin * 32):round(ymax * 32),
                 round(xmin * 48):round(xmax * 48)]
  assert inside.mean() > 230  # The white rectangle is where the box says.
  mask = np.ones_like(image, bool)
  mask[max(0, round(ymin * 32) - 2):round(ymax * 32) + 2,
       max(0, round(xmin * 48) - 2):round(xmax * 48) + 2] = False
  assert image[mask].mean() < 40
  assert not ah.problems(helpers.report(builder), "warning")


# --- Layouts, splits, keys ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["seed001", "coco", "voc", "csv"])
def test_dummy_data_layouts_are_detected(fmt):
  assert readers.detect_layout(str(helpers.DUMMY_DATA / fmt), OPTIONS) == fmt


def test_annotations_option_picks_one_file(tmp_path):
  root = tmp_path / "data"
  for name in ("a.jpg", "b.jpg"):
    helpers.write_image(root / name)
  ah.write_json(root / "one.json", [{"filename": "a.jpg"}])
  ah.write_json(root / "two.json", [{"filename": "b.jpg"}])
  ah.write_json(root / "my_coco.json", {
      "images": [{"id": 1, "file_name": "b.jpg"}], "annotations": [],
      "categories": [{"id": 1, "name": "x"}]})
  options = readers.ReadOptions(split_fractions={"train": 1.0},
                                annotations="two.json")
  assert readers.detect_layout(str(root), options) == "seed001"
  scan = readers.scan(str(root), "auto", options)
  assert [r.key for r in scan.records] == ["b.jpg"]
  options = readers.ReadOptions(split_fractions={"train": 1.0},
                                annotations="my_coco.json")
  assert readers.detect_layout(str(root), options) == "coco"
  assert readers.scan(str(root), "auto", options).class_names == ["x"]


def test_two_formats_at_once_is_an_error(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "a.jpg")
  ah.write_json(root / "train.json", [{"filename": "a.jpg"}])
  (root / "train.csv").write_text(
      "filename,width,height,class,xmin,ymin,xmax,ymax\n")
  with pytest.raises(records.InputError, match="several annotation formats"):
    readers.scan(str(root), "auto", OPTIONS)


def test_split_from_file_name_else_hash(tmp_path):
  assert annotated.split_of_file("train.json") == "train"
  assert annotated.split_of_file("val.jsonl") == "validation"
  assert annotated.split_of_file("test_labels.csv") == "test"
  assert annotated.split_of_file("instances_val2017.json") == "validation"
  assert annotated.split_of_file("train_tfrecords_dataset.json") == "train"
  assert annotated.split_of_file("annotations.json") is None
  root = tmp_path / "data"
  names = [f"img/{i}.jpg" for i in range(30)]
  for i, name in enumerate(names):
    helpers.write_image(root / name, seed=i)
  ah.write_json(root / "labels.json", [{"filename": n} for n in names])
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert {r.key: r.split for r in scan.records} == {
      n: splits.assign_split(n, OPTIONS.split_fractions) for n in names}


def test_filename_relative_to_annotation_folder_then_root(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "annotations" / "near.jpg")
  helpers.write_image(root / "photos" / "far.jpg")
  helpers.write_image(root / "photos" / "other.jpg")
  helpers.write_image(root / "near.jpg")  # Shadowed by annotations/near.jpg.
  ah.write_json(root / "annotations" / "train.json", [
      {"filename": "near.jpg"}, {"filename": "photos/far.jpg"},
      {"filename": "../photos/other.jpg"}])
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert [(r.key, r.path) for r in scan.records] == [
      ("annotations/near.jpg", str(root / "annotations" / "near.jpg")),
      ("photos/far.jpg", str(root / "photos" / "far.jpg")),
      ("photos/other.jpg", str(root / "photos" / "other.jpg"))]


def test_duplicate_keys_fail_early_naming_both(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "a.jpg")
  (root / "train.jsonl").write_text(
      '{"filename": "a.jpg"}\n{"filename": "./a.jpg"}\n')
  with pytest.raises(records.InputError,
                     match=r"duplicate example key 'a.jpg'.*train.jsonl:1.*"
                     r"train.jsonl:2"):
    readers.scan(str(root), "auto", OPTIONS)


# --- Large files are streamed ---------------------------------------------------


def _peak(fn) -> int:
  tracemalloc.start()
  try:
    fn()
    return tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()


def _big_files(folder, n):
  """A seed-001 JSON list, the same as JSON Lines, and a COCO file, n images."""
  folder.mkdir()
  entry = {"filename": "img/000000.jpg", "class": {"label": 1},
           "object": {"bbox": {"xmin": [0.1] * 4, "ymin": [0.1] * 4,
                               "xmax": [0.5] * 4, "ymax": [0.5] * 4}}}
  text = json.dumps(entry)
  (folder / "big.json").write_text("[" + ",".join([text] * n) + "]")
  (folder / "big.jsonl").write_text((text + "\n") * n)
  images = ",".join(json.dumps({"id": i, "file_name": f"{i}.jpg",
                                "width": 640, "height": 480})
                    for i in range(n))
  anns = ",".join(json.dumps({"id": i, "image_id": i, "category_id": 1,
                              "bbox": [1.5, 2, 30, 40], "area": 1200,
                              "iscrowd": 0}) for i in range(n))
  (folder / "instances_train.json").write_text(
      f'{{"images": [{images}], "annotations": [{anns}],'
      ' "categories": [{"id": 1, "name": "x"}]}')
  return {
      "json list": (folder / "big.json", lambda: seed001.iter_entries(
          str(folder / "big.json"), "", [])),
      "json lines": (folder / "big.jsonl", lambda: seed001.iter_entries(
          str(folder / "big.jsonl"), "", [])),
      "coco": (folder / "instances_train.json", lambda: coco._items(
          str(folder / "instances_train.json"), "annotations")),
  }


def test_large_annotation_files_are_streamed(tmp_path):
  """Parsing holds one entry at a time: the peak does not grow with the file,
  and stays far below its size (no copy of the text, nor of the parsed list).
  """
  small, large = _big_files(tmp_path / "s", 5_000), _big_files(
      tmp_path / "l", 20_000)
  for kind, (path, entries) in large.items():
    small_path, small_entries = small[kind]
    assert sum(1 for _ in entries()) == 20_000
    # The least of three runs: tracemalloc also counts what other threads
    # (TensorFlow's, tqdm's) allocate meanwhile.
    peaks = [min(_peak(lambda it=it: sum(1 for _ in it())) for _ in range(3))
             for it in (small_entries, entries)]
    size = os.path.getsize(path)
    assert size >= 4 * os.path.getsize(small_path) - 100
    assert peaks[1] < peaks[0] * 1.25 + 262_144, (kind, peaks)
    assert peaks[1] < size / 4, (kind, peaks, size)


def test_class_names_from_data_do_not_depend_on_order():
  """Index 1 seen first without a name, later with one: the name is used."""
  import itertools
  pairs = [(1, None), (1, "c1"), (0, "c0"), (None, "zebra"), (None, "ant"),
           (3, None)]
  for order in itertools.permutations(pairs):
    classes = annotated.Classes()
    for index, name in order:
      classes.observe(index, name)
    assert classes.finish() == ["c0", "c1", "2", "3", "ant", "zebra"]
    assert classes.resolve(1, None, "label") == (1, "c1")
    assert classes.resolve(None, "ant", "label") == (4, "ant")
    with pytest.raises(annotated.FieldError, match="but the name given"):
      classes.resolve(0, "c1", "label")


def test_voc_without_imagesets_uses_hash_splits(tmp_path):
  root = tmp_path / "data"
  (root / "Annotations").mkdir(parents=True)
  stems = [f"img{i}" for i in range(12)]
  for i, stem in enumerate(stems):
    helpers.write_image(root / "JPEGImages" / f"{stem}.jpg", seed=i)
    (root / "Annotations" / f"{stem}.xml").write_text(
        f"<annotation><filename>{stem}.jpg</filename>"
        f"{_voc_object('dog', (1, 2, 30, 25))}</annotation>")
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert scan.layout.startswith("voc")
  assert {r.key: r.split for r in scan.records} == {
      f"JPEGImages/{s}.jpg": splits.assign_split(f"JPEGImages/{s}.jpg",
                                                 OPTIONS.split_fractions)
      for s in stems}


def test_coco_string_image_ids_and_other_file_names(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "pics" / "a.jpg")
  ah.write_json(root / "export.json", {
      "categories": [{"id": 1, "name": "x"}],
      "images": [{"id": "img-a", "file_name": "pics/a.jpg"}],
      "annotations": [{"id": "ann-1", "image_id": "img-a", "category_id": 1,
                       "bbox": [1, 2, 3, 4]}]})
  options = readers.ReadOptions(split_fractions={"train": 1.0},
                                annotations="export.json")
  (rec,) = readers.scan(str(root), "auto", options).records
  assert (rec.key, rec.id, rec.split) == ("pics/a.jpg", "img-a", "train")
  assert [(o.id, o.box) for o in rec.objects] == [("ann-1", (1, 2, 4, 6))]


def test_unknown_seed001_fields_are_reported(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "a.jpg")
  ah.write_json(root / "train.json", [
      {"filename": "a.jpg", "encoded": "AAAA", "colour": "red",
       "object": {"bbox": {"xmin": [0.1], "ymin": [0.1], "xmax": [0.2],
                           "ymax": [0.2], "angle": [3]}}}])
  scan = readers.scan(str(root), "auto", OPTIONS)
  (warning,) = [p for p in scan.problems if p.kind == "warning"]
  assert warning.reason.endswith(
      "not stored: colour, encoded, object.bbox.angle")
  assert len(scan.records[0].objects) == 1


def test_json_list_with_nan_rejects_only_its_object(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "a.jpg")
  helpers.write_image(root / "b.jpg", seed=2)
  (root / "train.json").write_text(  # As json.dump writes NaN.
      '[{"filename": "a.jpg"}, {"filename": "b.jpg", "object": {"area": [NaN]}}]')
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert sorted(r.file_name for r in scan.records) == ["a.jpg", "b.jpg"]
  (problem,) = [p for p in scan.problems if p.kind == "rejected"]
  assert problem.file.endswith("train.json") and "area[0] is nan" in problem.reason


def test_json_list_that_is_not_json_stops_naming_file_and_position(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "a.jpg")
  (root / "train.json").write_text('[{"filename": "a.jpg"}, {"filename": }]')
  # How many entries ijson gives before the error depends on its version's
  # buffering (1 with ijson 3.6, 0 with 3.2, which label-studio-converter
  # pins in the test environment); the parser's own position follows.
  with pytest.raises(records.InputError,
                     match=r"train.json: not valid JSON \(after [01] entries"
                     r"(.|\n)*right here"):
    readers.scan(str(root), "seed001", OPTIONS)


def test_stray_json_next_to_class_folders_is_not_seed001(tmp_path):
  root = tmp_path / "data"
  helpers.make_class_folders(root)
  ah.write_json(root / "classes.json", {"names": ["cat", "dog"]})
  ah.write_json(root / "notes.json", [{"comment": "taken in 2023"}])
  assert readers.detect_layout(str(root), OPTIONS) == "folders"
  ah.write_json(root / "boxes.json", [{"filename": "cat/cat_0.jpg"}])
  assert readers.detect_layout(str(root), OPTIONS) == "seed001"


@pytest.mark.parametrize("fmt", ["seed001", "coco", "voc", "csv"])
def test_dummy_data_is_what_the_script_makes(tmp_path, fmt):
  """`python tests/make_dummy_data.py` remakes the committed samples."""
  import make_dummy_data

  getattr(make_dummy_data, f"make_{fmt}")(tmp_path)
  committed = helpers.DUMMY_DATA / fmt
  made = {p.relative_to(tmp_path): p.read_bytes()
          for p in tmp_path.rglob("*") if p.is_file()}
  assert made == {p.relative_to(committed): p.read_bytes()
                  for p in committed.rglob("*") if p.is_file()}


def test_resolved_images_never_leave_the_data_folder(tmp_path):
  """Any name made of `..`, `.`, folder names and symlinks: either refused,
  or a regular file whose real path is inside the data folder."""
  from hypothesis import given, settings, strategies as st

  root = tmp_path / "data"
  for rel in ("a/x.jpg", "a/b/x.jpg", "x.jpg"):
    helpers.write_image(root / rel)
  helpers.write_image(tmp_path / "x.jpg")  # Outside, same name.
  (tmp_path / "out").mkdir()
  helpers.write_image(tmp_path / "out" / "x.jpg")
  os.symlink(tmp_path / "out", root / "a" / "link")  # Folder link outside.
  os.symlink(root / "a" / "b", root / "inner")  # Folder link inside.
  real_root = os.path.realpath(root)
  segment = st.sampled_from(["..", ".", "a", "b", "link", "inner", ""])

  @settings(max_examples=300, deadline=None)
  @given(st.lists(segment, max_size=5), st.booleans())
  def check(parts, absolute):
    name = "/".join(parts + ["x.jpg"])
    if absolute:
      name = str(root / name)
    try:
      path, rel = annotated.resolve_image(name, [str(root / "a"), str(root)],
                                          str(root))
    except annotated.PathError:
      return
    real = os.path.realpath(path)
    assert real.startswith(real_root + os.sep), (name, real)
    assert os.path.isfile(real)
    assert not rel.startswith("..") and (root / rel).samefile(path)

  check()


def test_roboflow_coco_export(tmp_path):
  """`<split>/_annotations.coco.json` with the images beside it."""
  root = tmp_path / "data"
  for split, folder in (("train", "train"), ("validation", "valid")):
    helpers.write_image(root / folder / "a.jpg")
    ah.write_json(root / folder / "_annotations.coco.json", {
        "categories": [{"id": 0, "name": "things", "supercategory": "none"},
                       {"id": 1, "name": "fox", "supercategory": "things"}],
        "images": [{"id": 0, "file_name": "a.jpg", "width": W, "height": H}],
        "annotations": [{"id": 0, "image_id": 0, "category_id": 1,
                         "bbox": [2, 3, 10, 12], "area": 120, "iscrowd": 0}]})
  assert readers.detect_layout(str(root), OPTIONS) == "coco"
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert {r.key: r.split for r in scan.records} == {
      "train/a.jpg": "train", "valid/a.jpg": "validation"}
  # "things" is Roboflow's root category (the supercategory of "fox", with no
  # annotation): no class (tests/test_roboflow.py).
  assert scan.class_names == ["fox"]
  assert [o.label for r in scan.records for o in r.objects] == [0, 0]
