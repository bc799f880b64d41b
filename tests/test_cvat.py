"""CVAT for images 1.1 (`annotations.xml`): task and project exports, built,
read back with `tfds.load`, compared with what was written.

The exports are written the way CVAT's own exporter writes them
(`cvat/apps/dataset_manager/formats/cvat.py`: `XMLGenerator`, `<meta>` with the
task's or project's `<labels>`, skeleton sublabels with `<parent>` and the
skeleton's `<svg>`, coordinates as "{:.2f}", a project's images under
`images/<subset>/`); one more is written by a real tool, `globox`.
"""

from __future__ import annotations

import json
import pathlib
import shutil
from xml.sax import saxutils

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import annotation_helpers as ah
import helpers
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds import splits
from image_folder_tfds.readers import cvat

W, H = 64, 48
FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
OPTIONS = readers.ReadOptions(split_fractions=FRACTIONS)
# (name, type, attribute names, sublabels); CVAT lists a skeleton's sublabels
# (with <parent>) among the labels, after it.
LABELS = [
    ("car", "rectangle", ["color"], []),
    ("person", "skeleton", [], ["head", "left_hand", "right_hand"]),
    ("road", "polygon", [], []),
    ("sign", "points", [], []),
    ("night", "tag", [], []),
    ("day", "tag", [], []),
]
CLASSES = ["car", "person", "road", "sign", "night", "day"]
# The skeleton's drawing: node ids are not the sublabels' order.
NODES = {"3": "head", "1": "left_hand", "2": "right_hand"}
SVG_EDGES = [("3", "1"), ("3", "2")]
EDGES = [[1, 2], [1, 3]]  # head-left_hand, head-right_hand, from 1.


# --- Writing exports as CVAT does ---------------------------------------------------


def f2(v) -> str:
  return "{:.2f}".format(v)


def points_text(points) -> str:
  return ";".join(f"{f2(x)},{f2(y)}" for x, y in points)


def box(label, xtl, ytl, xbr, ybr, rotation=0.0, attributes=None, **more):
  attrs = {"label": label, "source": "manual", "occluded": "0",
           "xtl": f2(xtl), "ytl": f2(ytl), "xbr": f2(xbr), "ybr": f2(ybr)}
  if rotation:
    attrs["rotation"] = f2(rotation)
  attrs.update(z_order="0", **more)
  return ("box", attrs, _attributes(attributes))


def polygon(label, points):
  return ("polygon", {"label": label, "source": "manual", "occluded": "0",
                      "points": points_text(points), "z_order": "0"}, [])


def shape_points(label, points, occluded="0"):
  return ("points", {"label": label, "source": "manual", "occluded": occluded,
                     "points": points_text(points), "z_order": "0"}, [])


def skeleton(label, elements, attributes=None):
  """`elements`: (sublabel, (x, y), occluded, outside)."""
  children = [("points", {"label": sub, "source": "manual",
                          "outside": outside, "occluded": occluded,
                          "points": points_text([xy])}, [])
              for sub, xy, occluded, outside in elements]
  return ("skeleton", {"label": label, "source": "manual", "z_order": "0"},
          children + _attributes(attributes))


def cvat_rle(tight: np.ndarray) -> list[int]:
  """CVAT's RLE of a mask's box: row by row, 0s first (MaskConverter.rle)."""
  flat = tight.reshape(-1)
  runs, value, run = [], 0, 0
  for v in flat:
    if v != value:
      runs.append(run)
      value, run = v, 0
    run += 1
  runs.append(run)
  return runs


def mask(label, tight: np.ndarray, left, top):
  h, w = tight.shape
  return ("mask", {"label": label, "source": "manual", "occluded": "0",
                   "rle": ", ".join(map(str, cvat_rle(tight))),
                   "left": str(left), "top": str(top), "width": str(w),
                   "height": str(h), "z_order": "0"}, [])


def tag(label, attributes=None):
  return ("tag", {"label": label, "source": "manual"}, _attributes(attributes))


def _attributes(attributes):
  return [("attribute", {"name": k}, v) for k, v in (attributes or {}).items()]


def _element(gen, name, attrs, children, level):
  gen.ignorableWhitespace("\n" + "  " * level)
  gen.startElement(name, attrs)
  if isinstance(children, str):
    gen.characters(children)
  else:
    for child in children:
      _element(gen, *child, level + 1)
    if children:
      gen.ignorableWhitespace("\n" + "  " * level)
  gen.endElement(name)


def _meta_labels(labels=LABELS):
  out = []
  for name, kind, attrs, subs in labels:
    children = [("name", {}, name), ("color", {}, "#33ddff"),
                ("type", {}, kind),
                ("attributes", {}, [
                    ("attribute", {}, [
                        ("name", {}, a), ("mutable", {}, "False"),
                        ("input_type", {}, "text"), ("default_value", {}, ""),
                        ("values", {}, "")]) for a in attrs])]
    if subs:
      svg = "".join(
          f'<line x1="1" y1="1" x2="2" y2="2" stroke="black"'
          f' data-type="edge" data-node-from="{a}" stroke-width="0.5"'
          f' data-node-to="{b}"></line>' for a, b in SVG_EDGES) + "".join(
          f'<circle r="1.5" stroke="black" fill="#b3b3b3" cx="1" cy="1"'
          f' stroke-width="0.1" data-type="element node"'
          f' data-element-id="{n}" data-node-id="{n}"'
          f' data-label-name="{s}"></circle>' for n, s in NODES.items())
      children.append(("svg", {}, svg))
    out.append(("label", {}, children))
    for sub in subs:
      out.append(("label", {}, [
          ("name", {}, sub), ("color", {}, "#d12345"), ("type", {}, "points"),
          ("attributes", {}, []), ("parent", {}, name)]))
  return out


def write_export(root, images, *, project=True, subset="default",
                 labels=LABELS, name="annotations.xml"):
  """`root/annotations.xml` as CVAT writes a project or a task export, and
  a JPEG of W x H for every image with a `seed` (`None`: no file; bytes:
  those bytes). `images`: (name, subset, children, seed)."""
  root = pathlib.Path(root)
  root.mkdir(parents=True, exist_ok=True)
  meta_labels = ("labels", {}, _meta_labels(labels))
  if project:
    subsets = sorted({s for _, s, _, _ in images})
    meta = ("project", {}, [
        ("id", {}, "1"), ("name", {}, "p"), meta_labels,
        ("tasks", {}, [("task", {}, [("id", {}, str(i + 1)), ("name", {}, s),
                                     ("subset", {}, s)])
                       for i, s in enumerate(subsets)]),
        ("subsets", {}, "\n".join(subsets))])
  else:
    meta = ("task", {}, [
        ("id", {}, "7"), ("name", {}, "t"), ("size", {}, str(len(images))),
        ("mode", {}, "annotation"), ("subset", {}, subset), meta_labels])
  with open(root / name, "w", encoding="utf-8") as f:
    gen = saxutils.XMLGenerator(f, "utf-8")
    gen.startDocument()
    gen.startElement("annotations", {})
    _element(gen, "version", {}, "1.1", 1)
    _element(gen, "meta", {}, [meta, ("dumped", {}, "2026-01-01")], 1)
    for i, (image, image_subset, children, seed) in enumerate(images):
      attrs = {"id": str(i)}
      if image is not None:
        attrs["name"] = image
      if project:
        attrs.update(subset=image_subset, task_id="1")
      attrs.update(width=str(W), height=str(H))
      _element(gen, "image", attrs, children, 1)
      if seed is None or image is None:
        continue
      path = root / "images" / (image_subset if project else "") / image
      if isinstance(seed, bytes):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(seed)
      else:
        helpers.write_image(path, seed=seed, width=W, height=H)
    gen.ignorableWhitespace("\n")
    gen.endElement("annotations")
    gen.endDocument()
  return root / name


BROKEN = b"\xff\xd8\xff\xe0 not a JPEG after all"
TIGHT = np.array([[0, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 0]], np.uint8)
ROAD = [(5.5, 40.0), (60.25, 30.0), (58.0, 46.0), (10.0, 47.0)]
TRAIN = [
    ("a.jpg", "Train", [
        box("car", 1.5, 2.25, 20.0, 25.75, attributes={"color": "red"}),
        box("car", 20.0, 10.0, 40.0, 20.0, rotation=30.0),
        polygon("road", ROAD),
        skeleton("person", [("head", (30.0, 5.0), "0", "0"),
                            ("left_hand", (25.5, 15.0), "1", "0"),
                            ("right_hand", (36.0, 16.0), "0", "1")],
                 attributes={"pose": "standing"}),
        shape_points("sign", [(50.0, 10.0), (55.5, 12.0)], occluded="1"),
        mask("car", TIGHT, 40, 2),
        tag("night", {"weather": "rain"}),
    ], 1),
    ("b.jpg", "Train", [
        box("car", 2.0, 3.0, 12.0, 13.0),
        ("ellipse", {"label": "car", "source": "manual", "occluded": "0",
                     "cx": "30.00", "cy": "20.00", "rx": "8.00", "ry": "4.00",
                     "z_order": "0"}, []),
        ("polyline", {"label": "road", "source": "manual", "occluded": "0",
                      "points": "1.00,1.00;5.00,5.00", "z_order": "0"}, []),
        ("cuboid", {"label": "car", "source": "manual", "occluded": "0",
                    **{f"{c}{k}{n}": "1.00" for c in "xy" for k in
                       ("tl", "bl", "tr", "br") for n in "12"},
                    "z_order": "0"}, []),
        ("box", {"label": "car", "xtl": "1.00", "ytl": "1.00",
                 "xbr": "9.00"}, []),  # No ybr.
        ("box", {"label": "car", "xtl": "abc", "ytl": "1.00", "xbr": "9.00",
                 "ybr": "9.00"}, []),
        box("truck", 1.0, 1.0, 9.0, 9.0),  # Not among the labels.
        ("polygon", {"label": "road", "points": "1.00,1.00;5.00,5.00"}, []),
        tag("dusk"),  # Not among the labels.
        skeleton("person", [("head", (10.0, 10.0), "0", "0"),
                            ("tail", (12.0, 12.0), "0", "0")]),
    ], 2),
    ("chat_été.jpg", "Train", [box("car", 0.0, 0.0, 64.0, 48.0)], 3),
    ("broken_train.jpg", "Train", [box("car", 1.0, 1.0, 9.0, 9.0)], BROKEN),
    (None, "Train", [box("car", 1.0, 1.0, 9.0, 9.0)], 4),  # No name.
    ("missing.jpg", "Train", [], None),  # No file.
]
OTHERS = [
    ("c.jpg", "Validation", [box("car", 10.0, 10.0, 30.5, 40.0)], 5),
    ("broken_val.jpg", "Validation", [], BROKEN),
    ("d.jpg", "Test", [tag("day")], 6),
    ("broken_test.jpg", "Test", [tag("day")], BROKEN),
    ("e.jpg", "default", [box("car", 4.0, 4.0, 8.0, 8.0)], 7),
    ("f.jpg", "fold1", [box("car", 5.0, 5.0, 9.0, 9.0)], 8),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
  """A project export with every shape and every bad input, built once."""
  root = tmp_path_factory.mktemp("cvat_project") / "export"
  write_export(root, TRAIN + OTHERS)
  data_dir = root.parent / "out"
  builder = helpers.build(root, data_dir)
  return root, builder, helpers.report(builder), ah.load_all(data_dir)


def _norm(box_px):
  xmin, ymin, xmax, ymax = box_px
  return (xmin / W, ymin / H, xmax / W, ymax / H)


def test_project_export_classes_splits_and_counts(project):
  root, builder, report, examples = project
  assert report["layout"] == "cvat: annotations.xml"
  assert ah.class_names(builder) == CLASSES  # <meta> order, no sublabels.
  assert builder.info.features["labels"].feature.names == CLASSES
  want = {"images/Train/a.jpg": "train", "images/Train/b.jpg": "train",
          "images/Train/chat_été.jpg": "train",
          "images/Validation/c.jpg": "validation", "images/Test/d.jpg": "test"}
  for rel in ("images/default/e.jpg", "images/fold1/f.jpg"):
    want[rel] = splits.assign_split(rel, FRACTIONS)  # Hash splits.
  assert {k: ex["split"] for k, ex in examples.items()} == want
  found = sum(c["found"] for c in report["counts"].values())
  written = sum(c["written"] for c in report["counts"].values())
  rejected = sum(c["rejected"] for c in report["counts"].values())
  # 12 <image>s: 7 written, 3 broken files, 1 without a name, 1 missing.
  assert (found, written, rejected) == (12, 7, 5)
  for split, name in (("train", "broken_train.jpg"),
                      ("validation", "broken_val.jpg"),
                      ("test", "broken_test.jpg")):
    p = ah.find_problem(report, name, kind="rejected")
    assert p["split"] == split
  p = ah.find_problem(report, "<image> id=4", kind="rejected")
  assert "no name" in p["reason"] and p["file"] == "annotations.xml"
  p = ah.find_problem(report, "<image> id=5", kind="rejected")
  assert "missing.jpg" in p["reason"] and "not found" in p["reason"]
  p = ah.find_problem(report, "fold1", kind="warning")
  assert "not a split name" in p["reason"] and "1 image" in p["reason"]
  assert json.loads(examples["images/fold1/f.jpg"]["extra"])["subset"] == (
      "fold1")


def test_boxes_polygons_masks_and_keypoints_read_back(project):
  _, builder, _, examples = project
  a = ah.objects(examples["images/Train/a.jpg"], CLASSES)
  # Shapes in document order; the id is the place among the <image>'s
  # elements.
  assert [o["id"] for o in a] == ["0", "1", "2", "3", "4", "5"]
  ah.assert_object(a[0], {"box": _norm((1.5, 2.25, 20.0, 25.75)),
                          "label": 0, "keypoints": []}, "a box")
  xs, ys = [p[0] for p in ROAD], [p[1] for p in ROAD]
  ah.assert_object(a[2], {"box": _norm((min(xs), min(ys), max(xs), max(ys))),
                          "label": 2}, "a polygon")
  ah.assert_object(a[3], {"label": 1, "box": (0, 0, 0, 0), "keypoints": [
      (30.0 / W, 5.0 / H, 2, -1.0), (25.5 / W, 15.0 / H, 1, -1.0),
      (36.0 / W, 16.0 / H, 0, -1.0)]}, "a skeleton")
  ah.assert_object(a[4], {"label": 3, "keypoints": [
      (50.0 / W, 10.0 / H, 1, -1.0), (55.5 / W, 12.0 / H, 1, -1.0)]},
      "a points shape")
  ah.assert_object(a[5], {"label": 0, "box": _norm((40 + 0, 2, 40 + 4, 2 + 3))},
                   "a mask")
  assert builder.info.metadata["keypoint_names"] == {
      "person": ["head", "left_hand", "right_hand"]}
  assert builder.info.metadata["skeletons"] == {"person": EDGES}

  masks = examples["images/Train/a.jpg"]["objects"]["mask"][..., 0]
  assert masks.shape == (6, H, W)
  flat = [c for xy in ROAD for c in xy]
  want = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
      [flat], H, W)))
  inter = np.logical_and(masks[2], want).sum()
  union = np.logical_or(masks[2], want).sum()
  assert union and inter / union >= 0.99
  placed = np.zeros((H, W), np.uint8)
  placed[2:5, 40:44] = TIGHT
  np.testing.assert_array_equal(masks[5], placed)
  for i in (0, 1, 3, 4):  # Boxes and keypoints: empty masks.
    assert not masks[i].any()
  # 14 objects read (the broken image's box too), 2 with a mask.
  p = ah.find_problem(project[2], "no polygon or mask", kind="warning")
  assert "12 of 14 objects" in p["reason"]

  c = ah.objects(examples["images/Validation/c.jpg"], CLASSES)
  ah.assert_object(c[0], {"box": _norm((10.0, 10.0, 30.5, 40.0)), "label": 0},
                   "c box")
  u = ah.objects(examples["images/Train/chat_été.jpg"], CLASSES)
  ah.assert_object(u[0], {"box": (0.0, 0.0, 1.0, 1.0)}, "unicode")


def test_rotated_box_is_its_extent_and_reported(project):
  _, _, report, examples = project
  a = ah.objects(examples["images/Train/a.jpg"], CLASSES)
  cx, cy, hw, hh = 30.0, 15.0, 10.0, 5.0
  c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
  dx, dy = hw * c + hh * s, hw * s + hh * c
  ah.assert_object(a[1], {"box": _norm((cx - dx, cy - dy, cx + dx, cy + dy)),
                          "label": 0}, "rotated box")
  p = ah.find_problem(report, "a.jpg: object 1", kind="changed")
  assert "rotated by 30 degrees" in p["reason"]
  extra = json.loads(examples["images/Train/a.jpg"]["extra"])
  assert extra["objects"]["1"]["rotation"] == "30.00"


def test_tags_are_image_labels(project):
  _, _, report, examples = project
  assert list(examples["images/Train/a.jpg"]["labels"]) == [4]
  assert list(examples["images/Test/d.jpg"]["labels"]) == [5]
  assert list(examples["images/Train/b.jpg"]["labels"]) == []
  p = ah.find_problem(report, "<tag> 'dusk'", kind="rejected")
  assert "not among the classes" in p["reason"]


def test_attributes_and_shape_fields_are_kept_in_extra(project):
  _, _, _, examples = project
  extra = json.loads(examples["images/Train/a.jpg"]["extra"])
  assert extra["task_id"] == "1"
  assert extra["objects"]["0"] == {
      "shape": "box", "source": "manual", "occluded": "0", "z_order": "0",
      "attributes": {"color": "red"}}
  assert extra["objects"]["3"]["attributes"] == {"pose": "standing"}
  assert extra["objects"]["3"]["shape"] == "skeleton"
  assert extra["tags"] == [{"label": "night", "source": "manual",
                            "attributes": {"weather": "rain"}}]


def test_what_is_not_stored_is_reported_with_image_and_shape(project):
  _, _, report, examples = project
  b = ah.objects(examples["images/Train/b.jpg"], CLASSES)
  # Kept: the box, the ellipse (as its box) and the skeleton without its
  # unknown point.
  assert [o["id"] for o in b] == ["0", "1", "9"]
  ah.assert_object(b[1], {"box": _norm((22.0, 16.0, 38.0, 24.0)),
                          "label": 0}, "ellipse")
  ah.assert_object(b[2], {"label": 1, "keypoints": [
      (10.0 / W, 10.0 / H, 2, -1.0), (0.0, 0.0, 0, -1.0),
      (0.0, 0.0, 0, -1.0)]}, "skeleton with a missing point")
  for needles, reason in [
      (("object 2 (<polyline>",), "no feature holds it"),
      (("object 3 (<cuboid>",), "no feature of its own"),
      (("object 4 (<box>",), "ybr is missing"),
      (("object 5 (<box>",), "xtl must be a number, got 'abc'"),
      (("object 6 (<box> 'truck')",), "not among the classes"),
      (("object 7 (<polygon>",), "at least 3 are needed"),
      (("object 9 (<skeleton>",), "point 'tail' is not among the sublabels"),
  ]:
    p = ah.find_problem(report, "images/Train/b.jpg", *needles,
                        kind="rejected")
    assert reason in p["reason"], p
    assert p["file"] == "annotations.xml" and p["split"] == "train"
  p = ah.find_problem(report, "<ellipse> shape(s)", kind="warning")
  assert "1 <ellipse>" in p["reason"] and "b.jpg: object 1" in p["reason"]


def _task_images(n):
  return [(f"batch/img_{i:02d}.jpg", "", [box("car", i, 1.0, i + 10.0, 20.5)],
           100 + i) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 20])
def test_task_export_of_1_2_20_images(tmp_path, n):
  """A task export: `images/<name>` (a frame's path keeps its folders), the
  task's subset in <meta> gives every image's split."""
  root = tmp_path / "export"
  write_export(root, _task_images(n), project=False, subset="Validation")
  builder = helpers.build(root, tmp_path / "out")
  examples = helpers.read_all(builder)
  assert sorted(examples) == [f"images/batch/img_{i:02d}.jpg"
                              for i in range(n)]
  assert {ex["split"] for ex in examples.values()} == {"validation"}
  for i in range(n):
    (o,) = ah.objects(examples[f"images/batch/img_{i:02d}.jpg"], CLASSES)
    ah.assert_object(o, {"box": _norm((i, 1.0, i + 10.0, 20.5)),
                         "label": 0}, f"image {i}")
  assert not ah.problems(helpers.report(builder), "rejected")


def test_task_export_without_a_subset_gets_hash_splits():
  """CVAT writes a task without a subset as "default"."""
  import tempfile
  with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    write_export(root, _task_images(3), project=False)
    scan = readers.scan(str(root), "auto", OPTIONS)
  assert [r.split for r in scan.records] == [
      splits.assign_split(r.file_name, FRACTIONS) for r in scan.records]
  assert not [p for p in scan.problems if "split name" in p.reason]


def test_globox_export_builds_into_its_boxes(tmp_path):
  """A CVAT file written by a real tool (globox): no <meta>, so the class
  names are the labels used, sorted (reported)."""
  from globox import Annotation, AnnotationSet, BoundingBox
  root = tmp_path / "export"
  given = {
      "x.jpg": [("dog", (1.5, 2.0, 30.25, 40.0)), ("cat", (10, 11, 12, 13))],
      "y.jpg": [("cat", (0.0, 0.0, 64.0, 48.0))],
      "z.jpg": [],
  }
  annotations = []
  for i, (name, boxes) in enumerate(given.items()):
    helpers.write_image(root / "images" / name, seed=i, width=W, height=H)
    annotations.append(Annotation(image_id=name, image_size=(W, H), boxes=[
        BoundingBox.create(label=label, coords=coords)
        for label, coords in boxes]))
  AnnotationSet(annotations).save_cvat(root / "annotations.xml")
  assert cvat.root_tag(str(root / "annotations.xml")) == "annotations"
  builder = helpers.build(root, tmp_path / "out")
  assert ah.class_names(builder) == ["cat", "dog"]
  examples = helpers.read_all(builder)
  for name, boxes in given.items():
    got = ah.objects(examples[f"images/{name}"], ["cat", "dog"])
    assert len(got) == len(boxes)
    for g, (label, coords) in zip(got, boxes):
      ah.assert_object(g, {"box": _norm(coords), "text": label}, name)
  report = helpers.report(builder)
  assert not ah.problems(report, "rejected")
  ah.find_problem(report, "no <labels> in <meta>", kind="warning")


# --- Detection and bad files (scans, no build) ------------------------------------


def test_claimed_by_root_element_not_by_name(tmp_path):
  root = tmp_path / "d"
  write_export(root, TRAIN[:1], name="my_export.xml")
  (root / "notes.xml").write_text("<annotation><filename>a.jpg</filename>"
                                  "</annotation>")
  claim = cvat.claim(str(root), OPTIONS)
  assert claim.certainty == readers.common.CERTAIN
  assert claim.evidence == (str(root / "my_export.xml"),)
  assert readers.detect_layout(str(root), OPTIONS) == "cvat"
  other = tmp_path / "voc_like"
  other.mkdir()
  (other / "annotations.xml").write_text("<annotation></annotation>")
  assert cvat.claim(str(other), OPTIONS) is None
  with pytest.raises(records.InputError, match="root element is <annotation>"):
    cvat.read(str(other), OPTIONS)


def test_project_folder_is_no_longer_taken_for_class_folders(tmp_path):
  """`images/Train/` looks like class folders; `annotations.xml` decides."""
  root = tmp_path / "d"
  write_export(root, TRAIN[:1] + OTHERS[:1])
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert scan.layout == "cvat: annotations.xml"
  assert [r.file_name for r in scan.records] == [
      "images/Train/a.jpg", "images/Validation/c.jpg"]


def test_truncated_xml_keeps_the_images_before_and_says_where(tmp_path):
  root = tmp_path / "d"
  path = write_export(root, [(f"{i}.jpg", "Train", [box("car", 1, 1, 5, 5)], i)
                             for i in range(3)])
  text = path.read_text()
  path.write_text(text[:text.index('<image id="2"') + 30])
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert [r.file_name for r in scan.records] == [
      "images/Train/0.jpg", "images/Train/1.jpg"]
  (p,) = [p for p in scan.problems if p.kind == "rejected"]
  assert p.file == str(path) and "not a readable XML file" in p.reason
  assert "line" in p.reason and "2 <image> element(s) read" in p.reason


def test_xml_without_images_is_refused_clearly(tmp_path):
  root = tmp_path / "d"
  write_export(root, [])
  with pytest.raises(records.InputError, match="no <image> element"):
    readers.scan(str(root), "auto", OPTIONS)


def test_entities_are_refused(tmp_path):
  """defusedxml: an entity declaration is refused, never expanded."""
  root = tmp_path / "d"
  root.mkdir()
  entities = '<!ENTITY lol "lol">' + "".join(
      f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'
      for i in range(1, 10))
  (root / "annotations.xml").write_text(
      f'<?xml version="1.0"?><!DOCTYPE annotations [{entities}]>'
      '<annotations><image id="0" name="&lol9;"/></annotations>')
  with pytest.raises(records.InputError) as e:
    readers.scan(str(root), "auto", OPTIONS)
  assert "refused by defusedxml" in str(e.value)
  assert "annotations.xml" in str(e.value)


def test_a_labels_file_fixes_the_classes(tmp_path):
  root = tmp_path / "d"
  write_export(root, TRAIN[:1])
  (root / "labels.txt").write_text("road\ncar\nnight\n")
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert scan.class_names == ["road", "car", "night"]
  (rec,) = scan.records
  assert [(o.label, o.text) for o in rec.objects] == [
      (1, "car"), (1, "car"), (0, "road"), (1, "car")]
  assert rec.labels == (2,)
  rejected = [p.item for p in scan.problems if p.kind == "rejected"]
  assert rejected == ["images/Train/a.jpg: object 3 (<skeleton> 'person')",
                      "images/Train/a.jpg: object 4 (<points> 'sign')"]


def test_mask_outside_its_image_or_with_bad_counts_is_reported(tmp_path):
  root = tmp_path / "d"
  bad_sum = mask("car", TIGHT, 0, 0)
  bad_sum[1]["rle"] = "1, 2"
  write_export(root, [("a.jpg", "Train", [
      mask("car", TIGHT, W - 2, 0), bad_sum, mask("car", TIGHT, 0, 0)], 1)])
  scan = readers.scan(str(root), "auto", OPTIONS)
  (rec,) = scan.records
  assert [o.id for o in rec.objects] == ["2"]
  reasons = [p.reason for p in scan.problems if p.kind == "rejected"]
  assert len(reasons) == 2
  assert "is not inside the 64x48 image" in reasons[0]
  assert "rle counts sum to 3, not width x height = 4 x 3 = 12" in reasons[1]


@pytest.mark.slow
def test_tfds_build_command_reads_a_project_export(tmp_path, project):
  """The real `tfds build` on the project export, then `tfds.load`."""
  root = tmp_path / "export"
  shutil.copytree(project[0], root)
  result = helpers.run(
      helpers.build_command(root, tmp_path / "out"))
  assert result.returncode == 0, result.stderr[-3000:]
  examples = ah.load_all(tmp_path / "out")
  assert sorted(examples) == sorted(project[3])
  a = ah.objects(examples["images/Train/a.jpg"], CLASSES)
  ah.assert_object(a[0], {"box": _norm((1.5, 2.25, 20.0, 25.75))}, "cli box")
