"""Label Studio's JSON export (`readers/label_studio.py`): built, read back,
compared with what the tool wrote.

Files from the tool itself: Label Studio's converter (`label-studio-converter`,
a test-only dependency) turns COCO and YOLO data into Label Studio tasks
(`convert_coco_to_ls`, `convert_yolo_to_ls`) and a task export into JSON-MIN
(`Converter.convert_to_json_min`); its YOLO OBB export gives the corners of
a rotated rectangle. The rest are hand-written exports of the shapes its
`converter.py` reads.
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import sys

import numpy as np
import pytest
from label_studio_converter import Converter
from label_studio_converter import utils as ls_utils
from label_studio_converter.imports import coco as ls_coco
from label_studio_converter.imports import yolo as ls_yolo
from pycocotools import mask as mask_utils

import annotation_helpers as ah
import helpers
from image_folder_tfds import readers
from image_folder_tfds import records

TOL = ah.TOL


def _options(**kwargs):
  return readers.ReadOptions(split_fractions={"train": 1.0}, **kwargs)


def _scan(root, layout="auto", **kwargs):
  return readers.scan(str(root), layout, _options(**kwargs))


def _reasons(problems, kind=None):
  return [str(p) for p in problems if kind is None or p.kind == kind]


def _rect(rid, x, y, w, h, labels, size=(80, 40), rotation=0,
          rtype="rectanglelabels"):
  return {"id": rid, "type": rtype, "from_name": "label", "to_name": "image",
          "original_width": size[0], "original_height": size[1],
          "image_rotation": 0,
          "value": {"x": x, "y": y, "width": w, "height": h,
                    "rotation": rotation, rtype: labels}}


def _poly(rid, points, labels, size=(80, 40)):
  return {"id": rid, "type": "polygonlabels", "from_name": "poly",
          "to_name": "image", "original_width": size[0],
          "original_height": size[1],
          "value": {"points": points, "polygonlabels": labels,
                    "closed": True}}


def _kp(rid, x, y, labels, parent=None, size=(80, 40)):
  out = {"id": rid, "type": "keypointlabels", "from_name": "kp",
         "to_name": "image", "original_width": size[0],
         "original_height": size[1],
         "value": {"x": x, "y": y, "width": 0.5, "keypointlabels": labels}}
  if parent is not None:
    out["parentID"] = parent
  return out


def _choices(rid, names):
  return {"id": rid, "type": "choices", "from_name": "choice",
          "to_name": "image", "value": {"choices": names}}


def _ann(aid, result, *, cancelled=False, gt=False, updated=None):
  out = {"id": aid, "completed_by": 1, "result": result,
         "was_cancelled": cancelled, "ground_truth": gt,
         "created_at": "2024-01-01T00:00:00.000000Z", "lead_time": 2.5}
  if updated is not None:
    out["updated_at"] = updated
  return out


def _task(tid, image, annotations, predictions=()):
  return {"id": tid, "data": {"image": image}, "annotations": annotations,
          "predictions": list(predictions), "meta": {}, "inner_id": tid,
          "total_annotations": len(annotations), "project": 1}


def _mask_iou(a, b):
  a, b = a.astype(bool), b.astype(bool)
  union = (a | b).sum()
  return (a & b).sum() / union if union else 1.0


def _polygon_mask(points_percent, width, height):
  """pycocotools' mask of a Label Studio polygon, drawn in pixels."""
  flat = [c for x, y in points_percent
          for c in (x / 100 * width, y / 100 * height)]
  return mask_utils.decode(mask_utils.merge(
      mask_utils.frPyObjects([flat], height, width)))


# --- Files written by the tool: COCO and YOLO imports, JSON-MIN --------------

# Two images of other sizes, one with a unicode name and a space.
_TOOL_IMAGES = [
    {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
    {"id": 2, "file_name": "été b.jpg", "width": 50, "height": 70},
]
_TOOL_COCO = {
    "images": _TOOL_IMAGES,
    "categories": [{"id": 1, "name": "person", "keypoints": ["nose", "eye"]},
                   {"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [4, 5, 20, 10],
         "segmentation": [[4, 5, 24, 5, 14, 15]], "area": 100, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [30, 5, 20, 30],
         "keypoints": [35, 10, 2, 40, 12, 1], "num_keypoints": 2,
         "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 7, "bbox": [3, 7, 40, 50.5],
         "segmentation": [[3, 7, 43, 9, 40, 57.5, 10, 50, 5, 30]],
         "area": 1500, "iscrowd": 0},
    ],
}


@pytest.fixture(scope="module")
def tool(tmp_path_factory):
  """The COCO data above, turned into Label Studio tasks by the converter
  (images named `/data/local-files/?d=home/me/project/images/...`), and the
  JSON-MIN the converter makes of them; each built from its own folder."""
  base = tmp_path_factory.mktemp("ls_tool")
  full, minimal = base / "full", base / "min"
  for i, image in enumerate(_TOOL_IMAGES):
    for root in (full, minimal):
      helpers.write_image(root / "images" / image["file_name"], seed=i,
                          width=image["width"], height=image["height"])
  coco_path = ah.write_json(base / "coco.json", _TOOL_COCO)
  export = full / "export.json"
  ls_coco.convert_coco_to_ls(
      str(coco_path), str(export),
      image_root_url="/data/local-files/?d=home/me/project/images/")
  config = full / "export.label_config.xml"
  shutil.move(config, base / "config.xml")
  # Label Studio numbers the tasks it imports; its exports carry the ids
  # (and the converter's JSON-MIN needs them).
  tasks = json.loads(export.read_text())
  for i, task in enumerate(tasks):
    task["id"] = 100 + i
  export.write_text(json.dumps(tasks))
  Converter(config=str(base / "config.xml"), project_dir=None) \
      .convert_to_json_min(str(export), str(base / "min_out"), is_dir=False)
  shutil.copy(base / "min_out" / "result.json", minimal / "result.json")
  out = {}
  for name, root in (("full", full), ("min", minimal)):
    builder = helpers.build(root, base / f"out_{name}")
    out[name] = (builder, helpers.read_all(builder))
  return tasks, json.loads((minimal / "result.json").read_text()), out


def test_tool_export_detected_and_counted(tool):
  _, _, built = tool
  for name, file in (("full", "export.json"), ("min", "result.json")):
    builder, examples = built[name]
    report = helpers.report(builder)
    assert report["layout"] == f"label_studio: {file}"
    assert sorted(examples) == sorted(
        f"images/{i['file_name']}" for i in _TOOL_IMAGES)
    assert not ah.problems(report, "rejected"), report["problems"]
    found = sum(c["found"] for c in report["counts"].values())
    assert found == sum(c["written"] for c in report["counts"].values()) == 2


def test_tool_export_classes_sorted(tool):
  _, _, built = tool
  for builder, _ in built.values():
    # Every label seen, sorted: the keypoints of the COCO import are labelled
    # with their category (person), like its boxes.
    assert ah.class_names(builder) == ["cat", "dog", "person"]


def _objects_of(task):
  """What each result of a tool task becomes, in order."""
  out = []
  for r in task["annotations"][0]["result"]:
    v = r["value"]
    if r["type"] == "rectanglelabels":
      out.append(("box", v["rectanglelabels"][0], (
          v["x"] / 100, v["y"] / 100, (v["x"] + v["width"]) / 100,
          (v["y"] + v["height"]) / 100)))
    elif r["type"] == "polygonlabels":
      out.append(("polygon", v["polygonlabels"][0], v["points"]))
    else:
      out.append(("point", v["keypointlabels"][0],
                  (v["x"] / 100, v["y"] / 100, 1 if v.get("hidden") else 2)))
  return out


def test_tool_export_every_region_read_back(tool):
  """Boxes to 1e-6 of percent / 100 (and of the COCO boxes they came from),
  polygons as masks equal to pycocotools' within IoU 0.99, keypoints."""
  tasks, _, built = tool
  sizes = {i["file_name"]: (i["width"], i["height"]) for i in _TOOL_IMAGES}
  coco_boxes = {}
  for ann in _TOOL_COCO["annotations"]:
    image = _TOOL_IMAGES[ann["image_id"] - 1]
    x, y, w, h = ann["bbox"]
    coco_boxes.setdefault(image["file_name"], []).append(
        (x / image["width"], y / image["height"], (x + w) / image["width"],
         (y + h) / image["height"]))
  for name in ("full",):  # JSON-MIN: the same objects, next test.
    builder, examples = built[name]
    names = ah.class_names(builder)
    for task in tasks:
      file = task["data"]["image"].rsplit("/", 1)[1]
      ex = examples[f"images/{file}"]
      width, height = sizes[file]
      assert (ex["width"], ex["height"]) == (width, height)
      got = ah.objects(ex, names)
      want = _objects_of(task)
      assert len(got) == len(want), (name, file)
      masks = ex["objects"]["mask"]
      boxes = []
      for i, (g, (kind, label, shape)) in enumerate(zip(got, want)):
        where = f"{name} {file} object {i}"
        assert g["text"] == label, where
        if kind == "box":
          ah.assert_object(g, {"box": shape, "keypoints": []}, where)
          boxes.append(g["box"])
          assert not masks[i].any(), where  # No polygon: an empty mask.
        elif kind == "polygon":
          xs, ys = [p[0] / 100 for p in shape], [p[1] / 100 for p in shape]
          ah.assert_object(g, {"box": (min(xs), min(ys), max(xs), max(ys))},
                           where)
          iou = _mask_iou(masks[i][..., 0], _polygon_mask(shape, width, height))
          assert iou >= 0.99, (where, iou)
        else:
          ah.assert_object(g, {"box": (0.0, 0.0, 0.0, 0.0),
                               "keypoints": [(*shape[:2], shape[2], -1.0)]},
                           where)
      np.testing.assert_allclose(boxes, coco_boxes[file], atol=TOL)


def _object_set(ex) -> list:
  """An example's objects, in an order of their own (JSON-MIN writes the
  regions of each tag together, the full export in the order drawn)."""
  o = ex["objects"]
  kp = o["keypoints"]
  return sorted(
      (int(o["label"][i]), tuple(np.round(o["bbox"][i], 6)),
       tuple(np.round(kp["x"][i], 6)), tuple(np.round(kp["y"][i], 6)),
       tuple(kp["v"][i]), o["mask"][i].tobytes())
      for i in range(len(o["label"])))


def test_tool_json_min_reads_as_the_full_export(tool):
  _, rows, built = tool
  assert {"image", "id", "annotator", "annotation_id"} <= rows[0].keys()
  _, full = built["full"]
  _, minimal = built["min"]
  assert sorted(full) == sorted(minimal)
  for file, ex in full.items():
    assert minimal[file]["id"] == ex["id"]
    assert _object_set(minimal[file]) == _object_set(ex), file


@pytest.fixture(scope="module")
def yolo(tmp_path_factory):
  """YOLO labels turned into tasks by the converter: as annotations, and as
  predictions (which are not read)."""
  base = tmp_path_factory.mktemp("ls_yolo")
  src = base / "yolo"
  labels = {"p0.jpg": [(0, 0.5, 0.5, 0.4, 0.3), (1, 0.25, 0.3, 0.2, 0.2)],
            "p1.jpg": [(1, 0.6, 0.45, 0.5, 0.5)]}
  for i, name in enumerate(["p0.jpg", "p1.jpg", "p2.jpg"]):
    helpers.write_image(src / "images" / name, seed=10 + i, width=60,
                        height=45)
  (src / "labels").mkdir()
  for name, rows in labels.items():
    (src / "labels" / name.replace(".jpg", ".txt")).write_text(
        "".join(" ".join(map(str, r)) + "\n" for r in rows))
  (src / "classes.txt").write_text("ant\nbee\n")
  out = {}
  for kind in ("annotations", "predictions"):
    root = base / kind
    shutil.copytree(src / "images", root / "images")
    ls_yolo.convert_yolo_to_ls(str(src), str(root / "tasks.json"),
                               out_type=kind, image_ext=".jpg")
    (root / "tasks.label_config.xml").unlink()
    builder = helpers.build(root, base / f"out_{kind}")
    out[kind] = (builder, helpers.read_all(builder))
  return labels, out


def test_tool_yolo_import_boxes(yolo):
  labels, built = yolo
  builder, examples = built["annotations"]
  assert ah.class_names(builder) == ["ant", "bee"]
  assert sorted(examples) == ["images/p0.jpg", "images/p1.jpg",
                              "images/p2.jpg"]
  for name, rows in labels.items():
    got = ah.objects(examples[f"images/{name}"], ["ant", "bee"])
    assert len(got) == len(rows)
    for g, (label, cx, cy, w, h) in zip(got, rows):
      ah.assert_object(g, {"label": label, "box": (
          cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)}, name)
  assert ah.objects(examples["images/p2.jpg"], ["ant", "bee"]) == []
  report = helpers.report(builder)
  ah.find_problem(report, "1 task(s) have no annotation", kind="warning")


def test_tool_yolo_predictions_are_not_read(yolo):
  _, built = yolo
  builder, examples = built["predictions"]
  assert len(examples) == 3
  assert all(not ah.objects(ex) for ex in examples.values())
  report = helpers.report(builder)
  ah.find_problem(report, "predictions of 2 task(s) are not read",
                  "2 of them have no annotation", kind="warning")


def test_rotated_box_is_the_box_around_the_tool_corners():
  """The box of a rotated rectangle holds the four corners Label Studio's
  YOLO OBB export computes, and touches each side."""
  from image_folder_tfds.readers import label_studio
  for rotation in (0, 30, -45, 90, 135, 200):
    value = {"x": 30, "y": 20, "width": 25, "height": 40,
             "rotation": rotation, "original_width": 80,
             "original_height": 40}
    corners = np.array(ls_utils.convert_annotation_to_yolo_obb(value))
    box = label_studio.rotated_box(30, 20, 25, 40, rotation, 80, 40)
    np.testing.assert_allclose(
        box, [*corners.min(axis=0), *corners.max(axis=0)], atol=1e-12)


# --- A hand-written export with every case --------------------------------------

_SIZE = (80, 40)  # Not square: rotation is turned in pixels.


def _train_tasks():
  good = _rect("g1", 5, 5, 20, 20, ["dog"])
  bad_results = [
      7,
      {"id": "b1", "type": "rectanglelabels", "value": 3},
      _rect("b2", "10", 5, 5, 5, ["dog"]),
      _rect("b3", 10, 5, -5, 5, ["dog"]),
      _poly("b4", [[1, 1], [5, 5]], ["cat"]),
      _poly("b5", [[1, 1], [5], [9, 9]], ["cat"]),
      {**_kp("b6", 5, 5, ["star"]), "value": {"x": 5, "keypointlabels":
                                              ["star"]}},
      _rect("b7", 10, 5, 5, 5, []),
      _kp("b8", 5, 5, ["nose"], parent="nope"),
      good,
  ]
  return [
      # 0: local files (trailing parts), one cancelled annotation; rotated
      # rectangles, keypoints of a region, several choices, per-region
      # choices and a text area (not read).
      _task(10, "/data/local-files/?d=Users/me/photos/images/a.jpg", [
          _ann(1, [_rect("x", 1, 1, 5, 5, ["dog"])], cancelled=True),
          _ann(2, [
              _rect("r1", 10, 20, 30, 40, ["dog"]),
              _rect("r2", 50, 10, 20, 30, ["dog"], rotation=30),
              _rect("r3", 60, 50, 10, 20, ["dog"], rotation=90),
              _kp("k1", 15, 25, ["nose"], parent="r1"),
              _kp("k2", 20, 30, ["eye"], parent="r1"),
              _choices("c1", ["outdoor", "sunny"]),
              {**_choices("r1", ["fluffy"]), "from_name": "attr"},
              {"id": "t1", "type": "textarea", "from_name": "note",
               "to_name": "image", "value": {"text": ["hello"]}},
          ])]),
      # 1: percent-encoded local file; the ground truth wins over later
      # annotations.
      _task(11, "/data/local-files/?d=images%2Fb%20c.jpg", [
          _ann(5, [_poly("p1", [[10, 10], [60, 15], [40, 80], [5, 60]],
                         ["cat"]), _choices("c2", ["indoor"])],
               gt=True, updated="2023-01-01T00:00:00.000000Z"),
          _ann(6, [_rect("z", 1, 1, 5, 5, ["dog"])],
               updated="2024-01-01T00:00:00.000000Z"),
          _ann(7, [_rect("z", 1, 1, 5, 5, ["dog"])],
               updated="2025-01-01T00:00:00.000000Z")]),
      # 2: an upload, found by its name (unicode) anywhere in DIR; the
      # latest update wins; a keypoint of its own; a region with two labels.
      _task(12, "/data/upload/7/1a2b3c4d-ünï.jpg", [
          _ann(9, [_rect("z", 1, 1, 5, 5, ["dog"])],
               updated="2024-01-01T00:00:00.000000Z"),
          _ann(8, [_kp("s1", 25, 50, ["star"]),
                   _rect("m1", 20, 20, 30, 30, ["cat", "dog"])],
               updated="2024-03-01T10:00:00.000000Z")]),
      # 3: an upload kept as Label Studio stores it (media/upload/7/...);
      # no updated_at: the highest id wins.
      _task(13, "/data/upload/7/deadbeef-cat%202.jpg", [
          _ann(3, [_rect("z", 1, 1, 5, 5, ["dog"])]),
          _ann(4, [_rect("q1", 40, 40, 10, 10, ["cat"])])]),
      # 4: a plain name; no annotation, a prediction.
      _task(14, "images/c.jpg", [], predictions=[
          {"id": 1, "model_version": "m", "score": 0.5,
           "result": [_rect("y", 1, 1, 5, 5, ["dog"])]}]),
      _task(15, "https://example.com/photos/x.jpg", [_ann(20, [good])]),
      _task(16, "s3://bucket/y.jpg", [_ann(21, [good])]),
      _task(17, "images/d.jpg", [_ann(22, [good], cancelled=True)]),
      _task(18, "images/broken_train.jpg", [_ann(23, [good])]),
      # Bad input.
      42,
      {"id": 20, "data": "images/e.jpg", "annotations": []},
      {"id": 21, "data": {"text": "hello"}, "annotations": []},
      _task(22, "images/missing.jpg", [_ann(24, [good])]),
      {"id": 23, "data": {"image": "images/e.jpg"}, "annotations": {"a": 1}},
      _task(24, "images/f.jpg", [_ann(25, "oops")]),
      _task(25, "images/g.jpg", [_ann(26, bad_results)]),
      _task(26, "../outside.jpg", [_ann(27, [good])]),
      _task(27, "/data/local-files/?d=../../etc/passwd", [_ann(28, [good])]),
  ]


# The rows above that are inputs (tasks), and what becomes of each.
_TRAIN_WRITTEN = ["images/a.jpg", "images/b c.jpg", "uploads/ünï.jpg",
                  "media/upload/7/deadbeef-cat 2.jpg", "images/c.jpg",
                  "images/g.jpg"]
_TRAIN_REJECTED = 12  # 2 URLs, cancelled, broken, 8 bad input.


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
  root = tmp_path_factory.mktemp("ls_hand") / "data"
  for i, rel in enumerate(["images/a.jpg", "images/b c.jpg",
                           "uploads/ünï.jpg",
                           "media/upload/7/deadbeef-cat 2.jpg",
                           "images/c.jpg", "images/d.jpg", "images/e.jpg",
                           "images/f.jpg", "images/g.jpg", "images/v1.jpg"]):
    helpers.write_image(root / rel, seed=i, width=_SIZE[0], height=_SIZE[1])
  for split in ("train", "val"):
    (root / "images" / f"broken_{split}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
  ah.write_json(root / "train.json", _train_tasks())
  ah.write_json(root / "val.json", [
      _task(30, "images/v1.jpg", [_ann(40, [_rect("v", 10, 10, 50, 50,
                                                  ["dog"])])]),
      _task(31, "images/broken_val.jpg", [_ann(41, [_rect("w", 1, 1, 5, 5,
                                                          ["cat"])])])])
  builder = helpers.build(root, root.parent / "out")
  return root, builder, helpers.read_all(builder), helpers.report(builder)


def test_handmade_counts_and_splits(handmade):
  _, builder, examples, report = handmade
  counts = report["counts"]
  assert sorted(examples) == sorted(_TRAIN_WRITTEN + ["images/v1.jpg"])
  assert {f: ex["split"] for f, ex in examples.items()
          if f == "images/v1.jpg"} == {"images/v1.jpg": "validation"}
  assert all(ex["split"] == "train" for f, ex in examples.items()
             if f != "images/v1.jpg")
  found = sum(c["found"] for c in counts.values())
  written = sum(c["written"] for c in counts.values())
  rejected = sum(c["rejected"] for c in counts.values())
  assert found == written + rejected
  assert (written, rejected) == (7, _TRAIN_REJECTED + 1)
  # A broken image in each split is rejected when it is checked.
  for split, file in (("train", "broken_train"), ("validation", "broken_val")):
    problem = ah.find_problem(report, file, kind="rejected")
    assert problem["split"] == split


def test_handmade_class_names_sorted(handmade):
  _, builder, _, _ = handmade
  # Region labels, choices and keypoints of their own; not the names of
  # keypoints of a region (nose, eye), which are keypoint names.
  assert ah.class_names(builder) == [
      "cat", "dog", "indoor", "outdoor", "star", "sunny"]
  assert builder.info.metadata["keypoint_names"] == {"dog": ["eye", "nose"]}


def test_handmade_rectangles_rotation_and_region_keypoints(handmade):
  _, builder, examples, report = handmade
  names = ah.class_names(builder)
  got = ah.objects(examples["images/a.jpg"], names)
  assert [o["id"] for o in got] == ["r1", "r2", "r3"]
  # Keypoints of r1 in its class's sorted keypoint names: eye, nose.
  ah.assert_object(got[0], {"box": (0.1, 0.2, 0.4, 0.6), "text": "dog",
                            "keypoints": [(0.2, 0.3, 2, -1.0),
                                          (0.15, 0.25, 2, -1.0)]}, "r1")
  # Rotated 30 degrees clockwise around (x, y), in pixels of 80 x 40.
  w, h = _SIZE
  px, py, pw, ph = 0.5 * w, 0.1 * h, 0.2 * w, 0.3 * h
  turn = np.array([[math.cos(math.radians(30)), -math.sin(math.radians(30))],
                   [math.sin(math.radians(30)), math.cos(math.radians(30))]])
  corners = (np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]]) @ turn.T
             + [px, py]) / [w, h]
  ah.assert_object(got[1], {"box": (*corners.min(0), *corners.max(0))}, "r2")
  ah.find_problem(report, "images/a.jpg", "r2", "rotated by 30 degrees",
                  kind="changed")
  # 90 degrees: the same rectangle on its side, exactly; nothing reported.
  ah.assert_object(got[2], {"box": (0.6 - 0.2 * h / w, 0.5, 0.6,
                                    0.5 + 0.1 * w / h)}, "r3")
  assert not [p for p in report["problems"] if "r3" in p["item"]]
  # Several choices: the `labels` feature (this dataset has an image with
  # two), not `label`.
  ex = examples["images/a.jpg"]
  assert [names[i] for i in ex["labels"]] == ["outdoor", "sunny"]
  assert (ex["label"] if "label" in ex else -1) == -1


def test_handmade_annotation_choice(handmade):
  _, builder, examples, report = handmade
  names = ah.class_names(builder)
  # Ground truth over two later ones.
  b = examples["images/b c.jpg"]
  assert [names[i] for i in b["labels"]] == ["indoor"]
  assert [o["id"] for o in ah.objects(b, names)] == ["p1"]
  ah.find_problem(report, "task 1 (id 11)",
                  "3 annotations: annotation 0 (id 5) is read (the ground"
                  " truth); not read: annotation 1 (id 6), annotation 2 (id 7)",
                  kind="warning")
  # The latest updated_at.
  u = ah.objects(examples["uploads/ünï.jpg"], names)
  assert [(o["id"], o["text"]) for o in u] == [
      ("s1", "star"), ("m1", "cat"), ("m1", "dog")]
  ah.assert_object(u[0], {"box": (0.0, 0.0, 0.0, 0.0),
                          "keypoints": [(0.25, 0.5, 2, -1.0)]}, "s1")
  ah.find_problem(report, "task 2 (id 12)", "annotation 1 (id 8) is read"
                  " (updated last, 2024-03-01T10:00:00+00:00)", kind="warning")
  # The highest id.
  q = ah.objects(examples["media/upload/7/deadbeef-cat 2.jpg"], names)
  assert [o["id"] for o in q] == ["q1"]
  ah.find_problem(report, "task 3 (id 13)", "annotation 1 (id 4) is read"
                  " (the highest id)", kind="warning")


def test_handmade_polygon_mask(handmade):
  _, builder, examples, _ = handmade
  ex = examples["images/b c.jpg"]
  points = [[10, 10], [60, 15], [40, 80], [5, 60]]
  mask = ex["objects"]["mask"][0][..., 0]
  assert _mask_iou(mask, _polygon_mask(points, *_SIZE)) >= 0.99
  ah.assert_object(ah.objects(ex)[0], {"box": (0.05, 0.1, 0.6, 0.8)}, "p1")
  # Images without polygons have empty masks for their objects.
  assert not examples["images/v1.jpg"]["objects"]["mask"].any()


def test_handmade_refusals_name_file_and_task(handmade):
  root, _, _, report = handmade
  train = "train.json"

  def rejected(item, reason):
    problem = ah.find_problem(report, item, reason, kind="rejected")
    assert problem["file"] == train, problem

  rejected("task 5 (id 15)", "'https://example.com/photos/x.jpg' is a URL:"
           " nothing is downloaded")
  rejected("task 6 (id 16)", "'s3://bucket/y.jpg' is a URL")
  rejected("task 7 (id 17)", "every annotation of the task was cancelled")
  rejected("task 9", "the task must be an object (a dict), got 42")
  rejected("task 10 (id 20)", "no `data` object")
  rejected("task 11 (id 21)", "names no image")
  rejected("task 12 (id 22)", "'images/missing.jpg' not found")
  rejected("task 13 (id 23)", "annotations must be an array")
  rejected("task 14 (id 24)", "annotation 0 (id 25): result must be an array")
  rejected("task 16 (id 26)", "outside the data folder")
  rejected("task 17 (id 27)", "leads outside the data folder")
  # The cancelled annotation of task 0 and the task whose only one was.
  ah.find_problem(report, "2 cancelled (skipped) annotation(s) not read; 1"
                  " task(s) had no other", kind="warning")
  ah.find_problem(report, "predictions of 1 task(s) are not read",
                  kind="warning")
  ah.find_problem(report, "results not read", "choices of a region (1)",
                  "textarea (1)", kind="warning")
  ah.find_problem(report, "1 region(s) have several labels", kind="warning")


def test_handmade_bad_results_drop_only_their_object(handmade):
  _, builder, examples, report = handmade
  got = ah.objects(examples["images/g.jpg"], ah.class_names(builder))
  assert [o["id"] for o in got] == ["g1"]
  where = "task 15 (id 25): images/g.jpg: result"
  for item, reason in [
      ("0", "a result must be an object, got 7"),
      ("1 (id b1)", "`value` must be an object, got 3"),
      ("2 (id b2)", "value.x must be a number, got '10'"),
      ("3 (id b3)", "must not be negative"),
      ("4 (id b4)", "polygon of 2 points"),
      ("5 (id b5)", "value.points[1] must be [x, y]"),
      ("6 (id b6)", "value.y must be a number, got None"),
      ("7 (id b7)", "value.rectanglelabels is empty"),
      ("8 (id b8)", "parentID 'nope' names no rectangle or polygon"),
  ]:
    problem = ah.find_problem(report, f"{where} {item}", reason,
                              kind="rejected")
    assert problem["file"] == "train.json"


# --- Small exports: 1, 2 and 20 images; JSON-MIN by hand; choices ---------------


@pytest.fixture(scope="module")
def small(tmp_path_factory):
  base = tmp_path_factory.mktemp("ls_small")
  out = {}
  # One image, one box.
  one = base / "one"
  helpers.write_image(one / "only.jpg", seed=1)
  ah.write_json(one / "export.json", [_task(1, "only.jpg", [
      _ann(1, [_rect("o", 10, 10, 50, 50, ["thing"], size=(40, 30))])])])
  # Two images as JSON-MIN rows (one task annotated twice): single choices
  # as bare text, as Label Studio's converter writes them.
  two = base / "two"
  for i in range(2):
    helpers.write_image(two / "pics" / f"p{i}.jpg", seed=20 + i)
  ah.write_json(two / "project-1-min.json", [
      {"image": "/data/upload/1/0a0b0c0d-p0.jpg", "id": 1, "choice": "cat",
       "annotator": 1, "annotation_id": 1, "created_at": "2024-01-01T00:00:00Z",
       "updated_at": "2024-01-01T00:00:00Z", "lead_time": 1.0},
      {"image": "/data/upload/1/0a0b0c0d-p0.jpg", "id": 1, "choice": "dog",
       "annotator": 2, "annotation_id": 2, "created_at": "2024-01-02T00:00:00Z",
       "updated_at": "2024-01-02T00:00:00Z", "lead_time": 1.0},
      {"image": "/data/upload/1/1a1b1c1d-p1.jpg", "id": 2, "choice": "cat",
       "annotator": 1, "annotation_id": 3, "created_at": "2024-01-01T00:00:00Z",
       "updated_at": "2024-01-01T00:00:00Z", "lead_time": 1.0}])
  # Twenty images, one choice each: an image classification dataset.
  twenty = base / "twenty"
  tasks = []
  for i in range(20):
    helpers.write_image(twenty / "images" / f"{i:02d}.jpg", seed=40 + i)
    tasks.append(_task(i + 1, f"/data/local-files/?d=images/{i:02d}.jpg", [
        _ann(i + 1, [_choices(f"c{i}", ["odd" if i % 2 else "even"])])]))
  ah.write_json(twenty / "export.json", tasks)
  for name, root in (("one", one), ("two", two), ("twenty", twenty)):
    builder = helpers.build(root, base / f"out_{name}")
    out[name] = (builder, helpers.read_all(builder))
  return out


def test_one_image(small):
  builder, examples = small["one"]
  assert list(examples) == ["only.jpg"]
  assert ah.class_names(builder) == ["thing"]
  ah.assert_object(ah.objects(examples["only.jpg"], ["thing"])[0],
                   {"box": (0.1, 0.1, 0.6, 0.6), "text": "thing"}, "only")


def test_two_images_json_min_single_choice(small):
  builder, examples = small["two"]
  assert ah.class_names(builder) == ["cat", "dog"]
  # Single choices: the `label` feature, the latest annotation of task 1.
  assert {f: int(ex["label"]) for f, ex in examples.items()} == {
      "pics/p0.jpg": 1, "pics/p1.jpg": 0}
  assert "labels" not in builder.info.features.keys()
  report = helpers.report(builder)
  ah.find_problem(report, "row 0 (task 1)", "2 annotations: row 1"
                  " (annotation 2) is read (updated last", kind="warning")
  ah.find_problem(report, "JSON-MIN keys read as image classes", "choice",
                  kind="warning")


def test_twenty_images_classification(small):
  builder, examples = small["twenty"]
  assert len(examples) == 20
  assert ah.class_names(builder) == ["even", "odd"]
  assert builder.info.supervised_keys == ("image", "label")
  for file, ex in examples.items():
    assert int(ex["label"]) == int(file[-6:-4]) % 2
  assert "objects" not in builder.info.features.keys()


# --- Detection, bad files, options: the scan alone -----------------------------


def test_not_claimed_seed001_coco_or_stray_json(tmp_path):
  helpers.write_image(tmp_path / "a.jpg")
  ah.write_json(tmp_path / "seed.json", [{"filename": "a.jpg",
                                          "data": {"image": "a.jpg"},
                                          "annotations": []}])
  ah.write_json(tmp_path / "annotations" / "export.json", {
      "images": [], "annotations": [], "categories": []})
  ah.write_json(tmp_path / "notes.json", [{"note": "x", "image": "a.jpg"}])
  ah.write_json(tmp_path / "ocr.json", [{"image": "a.jpg", "words": [
      {"text": "hello", "bbox": [1, 2, 3, 4]}]}])
  from image_folder_tfds.readers import label_studio
  assert label_studio.claim(str(tmp_path), _options()) is None
  assert "label_studio" not in [
      c.layout for c in readers.claims(str(tmp_path), _options())]


def test_claimed_with_annotations_option_over_seed001(tmp_path):
  helpers.write_image(tmp_path / "a.jpg")
  ah.write_json(tmp_path / "labels" / "export.json", [_task(
      1, "a.jpg", [_ann(1, [_rect("r", 1, 1, 5, 5, ["x"], (40, 30))])])])
  result = _scan(tmp_path, annotations="labels/export.json")
  assert result.layout == "label_studio: labels/export.json"
  assert [r.file_name for r in result.records] == ["a.jpg"]


def test_empty_export(tmp_path):
  helpers.write_image(tmp_path / "a.jpg")
  (tmp_path / "export.json").write_text("[]")
  with pytest.raises(records.InputError, match="export.json hold"):
    _scan(tmp_path, layout="label_studio")
  with pytest.raises(records.InputError, match=r"no images found \(label_st"):
    _scan(tmp_path, layout="label_studio", annotations="export.json")


def test_labels_file_fixes_the_classes(tmp_path):
  helpers.write_image(tmp_path / "a.jpg")
  (tmp_path / "labels.txt").write_text("zebra\ndog\n")
  ah.write_json(tmp_path / "export.json", [_task(1, "a.jpg", [_ann(1, [
      _rect("r1", 1, 1, 5, 5, ["dog"], (40, 30)),
      _rect("r2", 1, 1, 5, 5, ["cat"], (40, 30))])])])
  result = _scan(tmp_path)
  assert result.class_names == ["zebra", "dog"]
  (rec,) = result.records
  assert [(o.label, o.text) for o in rec.objects] == [(1, "dog")]
  assert any("'cat' is not among the classes" in r
             for r in _reasons(result.problems, "rejected"))


def test_invalid_json_names_the_file(tmp_path):
  helpers.write_image(tmp_path / "a.jpg")
  task = json.dumps(_task(1, "a.jpg", []))
  (tmp_path / "export.json").write_text(f"[{task}, {{\"id\": 2, ")
  with pytest.raises(records.InputError, match="export.json: not valid JSON"):
    _scan(tmp_path)


def test_ambiguous_upload_name_is_refused(tmp_path):
  helpers.write_image(tmp_path / "x" / "p.jpg")
  helpers.write_image(tmp_path / "y" / "p.jpg")
  helpers.write_image(tmp_path / "q.jpg")
  ah.write_json(tmp_path / "export.json", [
      _task(1, "/data/upload/2/01234567-p.jpg", []),
      _task(2, "q.jpg", [])])
  result = _scan(tmp_path)
  assert [r.file_name for r in result.records] == ["q.jpg"]
  assert any("several files of that name" in r and "x/p.jpg, y/p.jpg" in r
             for r in _reasons(result.problems, "rejected"))


def test_non_consecutive_json_min_rows(tmp_path):
  helpers.write_image(tmp_path / "a.jpg")
  helpers.write_image(tmp_path / "b.jpg")
  row = {"annotator": 1, "created_at": "2024-01-01T00:00:00Z"}
  ah.write_json(tmp_path / "min.json", [
      {"image": "a.jpg", "id": 1, "choice": "x", "annotation_id": 1, **row},
      {"image": "b.jpg", "id": 2, "choice": "y", "annotation_id": 2, **row},
      {"image": "a.jpg", "id": 1, "choice": "z", "annotation_id": 3, **row}])
  result = _scan(tmp_path)
  assert sorted(r.file_name for r in result.records) == ["a.jpg", "b.jpg"]
  assert any("rows of task 1 are not next to each other" in r
             for r in _reasons(result.problems))
  assert sorted(result.class_names) == ["x", "y"]


def test_labels_tag_over_shapes_and_other_reports(tmp_path):
  """`Labels` over `Rectangle`/`KeyPoint` (a labelled result and its
  unlabelled twin of the same id), an image turned in the editor, a task
  naming two images."""
  helpers.write_image(tmp_path / "a.jpg", width=40, height=30)
  helpers.write_image(tmp_path / "b.jpg", width=40, height=30)
  shape = {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0}
  ah.write_json(tmp_path / "export.json", [
      _task(1, "a.jpg", [_ann(1, [
          {"id": "s", "type": "rectangle", "value": dict(shape),
           "original_width": 40, "original_height": 30, "image_rotation": 90},
          {"id": "s", "type": "labels", "value": {**shape, "labels": ["car"]},
           "original_width": 40, "original_height": 30, "image_rotation": 90},
          {"id": "p", "type": "keypoint", "value": {"x": 5, "y": 6}},
          {"id": "p", "type": "labels",
           "value": {"x": 5, "y": 6, "width": 1, "labels": ["light"]}},
          {"id": "e", "type": "ellipse", "value": {"x": 5, "y": 6}},
      ])]),
      {"id": 2, "data": {"front": "b.jpg", "back": "/data/upload/1/b.jpg"},
       "annotations": []}])
  result = _scan(tmp_path)
  (rec,) = result.records
  assert [(o.text, o.box, [(k.x, k.y, k.v) for k in o.keypoints])
          for o in rec.objects] == [("car", (0.1, 0.2, 0.4, 0.6), []),
                                    ("light", None, [(0.05, 0.06, 2)])]
  assert rec.size == (40, 30)
  reasons = _reasons(result.problems)
  assert any("results not read" in r and "ellipse (1)" in r
             and "rectangle (" not in r for r in reasons), reasons
  assert any("2 result(s) were drawn on an image turned in the editor" in r
             for r in reasons), reasons
  assert any("task 1 (id 2)" in r and "names several images (front, back)"
             in r for r in _reasons(result.problems, "rejected")), reasons


def _reference_depth(text: str) -> int:
  """The deepest nesting of a JSON text, one character at a time."""
  depth = deepest = 0
  inside = escaped = False
  for ch in text:
    if inside:
      if escaped:
        escaped = False
      elif ch == "\\":
        escaped = True
      elif ch == '"':
        inside = False
    elif ch == '"':
      inside = True
    elif ch in "[{":
      depth += 1
      deepest = max(deepest, depth)
    elif ch in "]}":
      depth -= 1
  return deepest


def test_json_depth_check_matches_a_reference(tmp_path):
  """The export's depth check (before ijson parses it) reads chunks of bytes:
  brackets inside strings and escaped quotes cut between chunks count as a
  parser counts them (150 random texts, chunks of 1, 3 and 7 bytes)."""
  from image_folder_tfds.readers import common
  rng = np.random.default_rng(7)
  pieces = ["\\", '"', "[", "]", "{", "}", "a", "é", "\\\\"]

  def value(level):
    r = rng.random()
    if level > 6 or r < 0.3:
      return "".join(rng.choice(pieces, size=rng.integers(0, 8)))
    if r < 0.65:
      return [value(level + 1) for _ in range(rng.integers(0, 4))]
    return {f'{rng.choice(pieces)}{k}': value(level + 1)
            for k in range(rng.integers(0, 4))}

  for i in range(150):
    text = json.dumps(value(0), ensure_ascii=bool(i % 2))
    data = text.encode()
    for size in (1, 3, 7, 1 << 20):
      state, deepest = (0, 0, 0), 0
      for k in range(0, len(data), size):
        _, depths, state = common._chunk_depths(data[k:k + size], state)
        deepest = max([deepest, *depths.tolist()])
      assert deepest == _reference_depth(text), (size, text)
  path = tmp_path / "deep.json"
  path.write_text('[{"s": "[[[[\\"[[", "x": ' + "[" * 300 + "]" * 300 + "}]")
  with pytest.raises(records.InputError, match=r"more than 256 levels deep"
                     r" \(near byte 278\)"):
    common.check_json_depth(str(path))


# --- The real command -----------------------------------------------------------

LOAD = """
import json, sys
import tensorflow_datasets as tfds
out = {}
for split in ("train",):
  for ex in tfds.as_numpy(tfds.load("my_images", split=split,
                                    data_dir=sys.argv[1])):
    out[ex["file_name"].decode()] = ex["objects"]["bbox"].tolist()
print(json.dumps(out))
"""


@pytest.mark.slow
def test_tfds_build_command(tmp_path):
  """`tfds build` on a Label Studio export; `tfds.load` in a fresh process
  (no plugin) gives the boxes back."""
  root = tmp_path / "data"
  helpers.write_image(root / "images" / "a.jpg", seed=3, width=50, height=40)
  ah.write_json(root / "train.json", [_task(1, "/data/local-files/?d=images/a.jpg", [
      _ann(1, [_rect("r", 10, 20, 30, 40, ["dog"], (50, 40))])])])
  out = helpers.run(helpers.build_command(root, tmp_path / "out"))
  assert out.returncode == 0, out.stderr[-3000:]
  assert "label_studio: train.json" in out.stderr
  loaded = helpers.run([sys.executable, "-c", LOAD, str(tmp_path / "out")])
  assert loaded.returncode == 0, loaded.stderr[-3000:]
  got = json.loads(loaded.stdout.strip().splitlines()[-1])
  np.testing.assert_allclose(got["images/a.jpg"], [[0.2, 0.1, 0.6, 0.4]],
                             atol=TOL)
  assert pathlib.Path(tmp_path / "out" / "my_images").is_dir()
