"""Roboflow's exports of the formats we read: Pascal VOC, TF Object Detection
CSV and COCO, each in split folders `train/`, `valid/`, `test/` with the
images beside the annotations and `README.dataset.txt`/`README.roboflow.txt`
at the top.

The VOC export is written by Roboflow's own library (`supervision`); the CSV
and COCO files follow what Roboflow writes (its format page's CSV header;
COCO categories led by the project's root category, as real exports have
them). Each build has a broken image in every split, a unicode file name and
an image without objects; every box is read back and compared to 1e-6.
"""

from __future__ import annotations

import csv
import json
import pathlib
import warnings

import numpy as np
import pytest

import annotation_helpers as ah
import helpers

SPLIT_DIRS = {"train": "train", "valid": "validation", "test": "test"}
READMES = {
    "README.dataset.txt": "# animals > 2024-05-01\nhttps://universe.roboflow.com/\n",
    "README.roboflow.txt": "\nanimals - v1 2024-05-01\n==============================\n",
}
BROKEN = b"\xff\xd8\xff\xe0 not really a JPEG"


def _readmes(root: pathlib.Path) -> None:
  for name, text in READMES.items():
    (root / name).write_text(text)


def _assert_readmes_unmentioned(report) -> None:
  for p in report["problems"]:
    assert "README" not in p["file"], p


def _assert_counts(report, written, rejected) -> None:
  """Each split's found = written + rejected, as given."""
  for split, n in written.items():
    counts = report["counts"][split]
    assert counts["written"] == n, (split, counts)
    assert counts["rejected"] == rejected[split], (split, counts)
    assert counts["found"] == n + rejected[split], (split, counts)


def _break(path: pathlib.Path) -> None:
  path.write_bytes(BROKEN)


# --- Pascal VOC XML, written by supervision ---------------------------------------

# {split folder: [(file name, (width, height), [(class id, xyxy)])]}; the last
# image of each split is broken after the export.
VOC_IMAGES = {
    "train": [("dog_jpg.rf.3f2a.jpg", (40, 30), [(0, (2, 3, 20, 25)),
                                                  (1, (0, 0, 39, 29))]),
              ("ünïcödé chat.jpg", (48, 36), [(1, (5, 6, 30, 20))]),
              ("broken_jpg.rf.0000.jpg", (40, 30), [(0, (1, 1, 9, 9))])],
    "valid": [("empty_jpg.rf.11.png", (32, 32), []),
              ("cat_jpg.rf.22.jpg", (50, 40), [(1, (10, 10, 40, 30))]),
              ("broken2.jpg", (40, 30), [(1, (1, 1, 9, 9))])],
    "test": [("t1.jpg", (40, 30), [(0, (4, 4, 36, 26))]),
             ("broken3.jpg", (40, 30), [])],
}
VOC_CLASSES = ["dog", "cône"]


@pytest.fixture(scope="module")
def voc_export(tmp_path_factory):
  """A Roboflow-style VOC export written by `supervision`, built."""
  with warnings.catch_warnings():  # Its pure-NumPy fallback, without OpenCV.
    warnings.simplefilter("ignore")
    import supervision as sv  # pylint: disable=g-import-not-at-top
  tmp = tmp_path_factory.mktemp("roboflow_voc")
  root = tmp / "export"
  seed = 0
  for folder, items in VOC_IMAGES.items():
    paths, annotations = [], {}
    for name, (w, h), boxes in items:
      seed += 1
      src = tmp / "src" / folder / name
      helpers.write_image(src, seed=seed, width=w, height=h,
                          fmt="PNG" if name.endswith(".png") else "JPEG")
      paths.append(str(src))
      annotations[str(src)] = sv.Detections(
          xyxy=np.array([b for _, b in boxes], float).reshape(-1, 4),
          class_id=np.array([c for c, _ in boxes], int))
    sv.DetectionDataset(classes=VOC_CLASSES, images=paths,
                        annotations=annotations).as_pascal_voc(
                            images_directory_path=str(root / folder),
                            annotations_directory_path=str(root / folder))
    _break(root / folder / items[-1][0])
  _readmes(root)
  builder = helpers.build(root, tmp / "out")
  return root, builder, ah.load_all(tmp / "out")


def test_voc_export_is_found_and_split_by_folder(voc_export):
  root, builder, examples = voc_export
  from image_folder_tfds import readers  # pylint: disable=g-import-not-at-top
  (claim,) = [c for c in readers.claims(str(root), readers.ReadOptions(
      split_fractions={})) if c.layout == "voc"]
  assert claim.evidence[0].startswith("test/") and claim.evidence[0].endswith(
      ".xml")
  assert builder.info.metadata["layout"] == "voc: an .xml beside each image"
  want = {f"{folder}/{name}": SPLIT_DIRS[folder]
          for folder, items in VOC_IMAGES.items() for name, _, _ in items[:-1]}
  assert {k: ex["split"] for k, ex in examples.items()} == want


def test_voc_export_boxes_are_the_ones_given(voc_export):
  """supervision writes VOC's 1-based pixel indices (xmin, ymin + 1; xmax,
  ymax as given); the reader takes corners as written, as TFDS's `voc`
  does, so the boxes read back are those."""
  _, builder, examples = voc_export
  assert ah.class_names(builder) == sorted(VOC_CLASSES)
  for folder, items in VOC_IMAGES.items():
    for name, (w, h), boxes in items[:-1]:
      got = ah.objects(examples[f"{folder}/{name}"], ah.class_names(builder))
      assert len(got) == len(boxes), name
      for i, (g, (cls, (x1, y1, x2, y2))) in enumerate(zip(got, boxes)):
        ah.assert_object(g, {
            "box": ((x1 + 1) / w, (y1 + 1) / h, x2 / w, y2 / h),
            "text": VOC_CLASSES[cls], "id": str(i)}, f"{name} object {i}")


def test_voc_export_reports_each_broken_image_and_nothing_else(voc_export):
  root, builder, examples = voc_export
  report = helpers.report(builder)
  rejected = ah.problems(report, "rejected")
  assert sorted(pathlib.Path(p["file"]).name for p in rejected) == sorted(
      items[-1][0] for items in VOC_IMAGES.values())
  _assert_counts(report, {"train": 2, "validation": 2, "test": 1},
                 {"train": 1, "validation": 1, "test": 1})
  _assert_readmes_unmentioned(report)
  assert not ah.problems(report, "warning")
  extra = json.loads(examples["train/ünïcödé chat.jpg"]["extra"].decode())
  assert extra["source"] == {"database": "roboflow.ai"}
  assert (root / "train" / "ünïcödé chat.xml").is_file()


# --- TF Object Detection CSV ----------------------------------------------------

# {split folder: [(file name, (w, h), [(class, xmin, ymin, xmax, ymax)])]}: an
# image without boxes has no row; the last image of each split is broken.
CSV_IMAGES = {
    "train": [("a_jpg.rf.1.jpg", (40, 30), [("helmet", 1, 2, 30, 25),
                                             ("head", 3.5, 4, 12, 11.25)]),
              ("ünï_jpg.rf.2.jpg", (64, 48), [("head", 10, 10, 60, 40)]),
              ("null_jpg.rf.3.jpg", (40, 30), []),
              ("bad_jpg.rf.4.jpg", (40, 30), [("head", 1, 1, 5, 5)])],
    "valid": [("v_jpg.rf.5.jpg", (40, 30), [("helmet", 0, 0, 40, 30)]),
              ("bad_jpg.rf.6.jpg", (40, 30), [("head", 1, 1, 5, 5)])],
    "test": [("t_jpg.rf.7.jpg", (30, 40), [("head", 2, 2, 20, 30)]),
             ("bad_jpg.rf.8.jpg", (40, 30), [("helmet", 1, 1, 5, 5)])],
}


@pytest.fixture(scope="module")
def csv_export(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("roboflow_csv")
  root = tmp / "export"
  seed = 100
  for folder, items in CSV_IMAGES.items():
    rows = []
    for name, (w, h), boxes in items:
      seed += 1
      helpers.write_image(root / folder / name, seed=seed, width=w, height=h)
      rows.extend([name, w, h, *box] for box in boxes)
    with open(root / folder / "_annotations.csv", "w", newline="") as f:
      writer = csv.writer(f)
      writer.writerow(["filename", "width", "height", "class", "xmin", "ymin",
                       "xmax", "ymax"])
      writer.writerows(rows)
    _break(root / folder / items[-1][0])
  _readmes(root)
  builder = helpers.build(root, tmp / "out")
  return root, builder, ah.load_all(tmp / "out")


def test_csv_export_every_box_read_back(csv_export):
  _, builder, examples = csv_export
  names = ah.class_names(builder)
  assert names == ["head", "helmet"]
  assert builder.info.metadata["layout"] == (
      "csv: test/_annotations.csv, train/_annotations.csv,"
      " valid/_annotations.csv")
  want = {f"{folder}/{name}": (SPLIT_DIRS[folder], (w, h), boxes)
          for folder, items in CSV_IMAGES.items()
          for name, (w, h), boxes in items[:-1]}
  assert sorted(examples) == sorted(want)
  for rel, (split, (w, h), boxes) in want.items():
    assert examples[rel]["split"] == split
    got = ah.objects(examples[rel], names)
    assert len(got) == len(boxes), rel
    for g, (cls, x1, y1, x2, y2) in zip(got, boxes):
      ah.assert_object(g, {"box": (x1 / w, y1 / h, x2 / w, y2 / h),
                           "text": cls}, rel)


def test_csv_export_image_without_row_kept_and_broken_reported(csv_export):
  _, builder, examples = csv_export
  assert ah.objects(examples["train/null_jpg.rf.3.jpg"]) == []
  report = helpers.report(builder)
  warning = ah.find_problem(report, "train/_annotations.csv", "in no row",
                            kind="warning")
  assert "1 image(s)" in warning["reason"]
  assert "train/null_jpg.rf.3.jpg" in warning["reason"]
  rejected = ah.problems(report, "rejected")
  assert sorted(pathlib.Path(p["file"]).name for p in rejected) == [
      "bad_jpg.rf.4.jpg", "bad_jpg.rf.6.jpg", "bad_jpg.rf.8.jpg"]
  _assert_counts(report, {"train": 3, "validation": 1, "test": 1},
                 {"train": 1, "validation": 1, "test": 1})
  _assert_readmes_unmentioned(report)


# --- COCO JSON ----------------------------------------------------------------

ROOT_CATEGORY = {"id": 0, "name": "animals-4Xa2", "supercategory": "none"}
COCO_CATEGORIES = [ROOT_CATEGORY,
                   {"id": 1, "name": "cat", "supercategory": "animals-4Xa2"},
                   {"id": 2, "name": "dög", "supercategory": "animals-4Xa2"}]
# {split folder: [(file name, (w, h), [(category id, [x, y, w, h])])]}; the
# last image of each split is broken.
COCO_IMAGES = {
    "train": [("c1_jpg.rf.aa.jpg", (40, 30), [(1, [1, 2, 20, 15]),
                                               (2, [10.5, 5, 20, 20])]),
              ("ñandú_jpg.rf.bb.jpg", (64, 48), [(2, [0, 0, 64, 48])]),
              ("null_jpg.rf.cc.jpg", (40, 30), []),
              ("bad_jpg.rf.dd.jpg", (40, 30), [(1, [1, 1, 4, 4])])],
    "valid": [("v_jpg.rf.ee.jpg", (40, 30), [(1, [5, 5, 10, 10])]),
              ("bad_jpg.rf.ff.jpg", (40, 30), [])],
    "test": [("t_jpg.rf.gg.jpg", (30, 40), [(2, [3, 4, 5, 6])]),
             ("bad_jpg.rf.hh.jpg", (40, 30), [(2, [1, 1, 4, 4])])],
}


def _coco_export(root, categories, images, seed=200):
  """Roboflow's COCO export: `<split>/_annotations.coco.json` beside the
  images, with its `info`, `licenses`, image `extra` and empty
  segmentations."""
  for folder, items in images.items():
    data = {"info": {"year": "2024", "version": "1",
                     "description": "Exported from roboflow.com",
                     "contributor": "", "url": "https://public.roboflow.com",
                     "date_created": "2024-05-01T12:00:00+00:00"},
            "licenses": [{"id": 1, "url": "https://creativecommons.org/",
                          "name": "CC BY 4.0"}],
            "categories": categories, "images": [], "annotations": []}
    for image_id, (name, (w, h), anns) in enumerate(items):
      seed += 1
      helpers.write_image(root / folder / name, seed=seed, width=w, height=h)
      data["images"].append({
          "id": image_id, "license": 1, "file_name": name, "height": h,
          "width": w, "date_captured": "2024-05-01T12:00:00+00:00",
          "extra": {"name": name.split("_jpg")[0] + ".jpg"}})
      for cid, bbox, *rest in anns:
        ann = {"id": len(data["annotations"]), "image_id": image_id,
               "category_id": cid, "bbox": bbox, "area": bbox[2] * bbox[3],
               "segmentation": [], "iscrowd": 0}
        if rest:
          ann["keypoints"] = rest[0]
          ann["num_keypoints"] = sum(1 for v in rest[0][2::3] if v > 0)
        data["annotations"].append(ann)
    (root / folder / "_annotations.coco.json").write_text(json.dumps(data))
    _break(root / folder / items[-1][0])
  _readmes(root)


@pytest.fixture(scope="module")
def coco_export(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("roboflow_coco")
  _coco_export(tmp / "export", COCO_CATEGORIES, COCO_IMAGES)
  builder = helpers.build(tmp / "export", tmp / "out")
  return builder, ah.load_all(tmp / "out")


def test_coco_export_root_category_is_no_class(coco_export):
  """The project's root category (the supercategory of the others, with no
  annotation) is left out, with a warning: the classes are Roboflow's."""
  builder, _ = coco_export
  assert ah.class_names(builder) == ["cat", "dög"]
  report = helpers.report(builder)
  warning = ah.find_problem(report, "category 0 ('animals-4Xa2')",
                            kind="warning")
  assert "root category" in warning["reason"]
  assert warning["file"].endswith("_annotations.coco.json")


def test_coco_export_every_box_read_back(coco_export):
  builder, examples = coco_export
  names = ah.class_names(builder)
  want = {f"{folder}/{name}": (SPLIT_DIRS[folder], (w, h), anns)
          for folder, items in COCO_IMAGES.items()
          for name, (w, h), anns in items[:-1]}
  assert sorted(examples) == sorted(want)
  for rel, (split, (w, h), anns) in want.items():
    ex = examples[rel]
    assert ex["split"] == split
    assert json.loads(ex["extra"].decode())["extra"]["name"].endswith(".jpg")
    got = ah.objects(ex, names)
    assert len(got) == len(anns), rel
    for g, (cid, (x, y, bw, bh)) in zip(got, anns):
      ah.assert_object(g, {
          "box": (x / w, y / h, (x + bw) / w, (y + bh) / h),
          "text": COCO_CATEGORIES[cid]["name"],
          "area": bw * bh / (w * h)}, rel)
  assert ah.objects(examples["train/null_jpg.rf.cc.jpg"]) == []


def test_coco_export_reports_broken_images_and_nothing_else(coco_export):
  builder, _ = coco_export
  report = helpers.report(builder)
  rejected = ah.problems(report, "rejected")
  assert sorted(pathlib.Path(p["file"]).name for p in rejected) == [
      "bad_jpg.rf.dd.jpg", "bad_jpg.rf.ff.jpg", "bad_jpg.rf.hh.jpg"]
  _assert_counts(report, {"train": 3, "validation": 1, "test": 1},
                 {"train": 1, "validation": 1, "test": 1})
  _assert_readmes_unmentioned(report)
  # Only the root category's warning, once per split file.
  warnings_ = ah.problems(report, "warning")
  assert len(warnings_) == 1, warnings_


# Roboflow's keypoint export, as a real one has it: the root category has
# the class's own name (two ids, one name), the skeleton is numbered from 1.
KP_CATEGORIES = [
    {"id": 0, "name": "locust", "supercategory": "none"},
    {"id": 1, "name": "locust", "supercategory": "locust",
     "keypoints": ["left_antenna", "head", "right_antenna", "tail"],
     "skeleton": [[1, 2], [3, 2], [2, 4]]}]
KP_IMAGES = {
    "train": [("l1_jpg.rf.1.jpg", (40, 30), [
        (1, [5, 5, 20, 15], [6, 6, 2, 10, 7, 2, 14, 6, 1, 24, 18, 2])]),
              ("bad_jpg.rf.2.jpg", (40, 30), [])],
    "valid": [("l2_jpg.rf.3.jpg", (50, 40), [
        (1, [1, 2, 30, 30], [2, 3, 2, 0, 0, 0, 8, 4, 2, 20, 25, 2])]),
              ("bad_jpg.rf.4.jpg", (40, 30), [])],
}


def test_coco_keypoint_export_builds_with_its_root_category(tmp_path):
  """Two category ids named `locust` (root and class) no longer stop the
  build: the root is left out, the class keeps its keypoint names and its
  skeleton, and every keypoint reads back."""
  _coco_export(tmp_path / "export", KP_CATEGORIES, KP_IMAGES)
  builder = helpers.build(tmp_path / "export", tmp_path / "out")
  examples = ah.load_all(tmp_path / "out")
  assert ah.class_names(builder) == ["locust"]
  assert builder.info.metadata["keypoint_names"] == {
      "locust": KP_CATEGORIES[1]["keypoints"]}
  assert builder.info.metadata["skeletons"] == {
      "locust": KP_CATEGORIES[1]["skeleton"]}
  for folder, items in KP_IMAGES.items():
    name, (w, h), ((_, (x, y, bw, bh), kp),) = items[0]
    (got,) = ah.objects(examples[f"{folder}/{name}"], ["locust"])
    ah.assert_object(got, {
        "box": (x / w, y / h, (x + bw) / w, (y + bh) / h), "label": 0,
        "keypoints": [(kp[i] / w, kp[i + 1] / h, kp[i + 2], -1.0)
                      if kp[i + 2] else (0.0, 0.0, 0, -1.0)
                      for i in range(0, len(kp), 3)]}, name)
  report = helpers.report(builder)
  ah.find_problem(report, "category 0 ('locust')", "root category",
                  kind="warning")


@pytest.mark.slow
def test_tfds_build_command_on_the_voc_export(voc_export, tmp_path):
  """The user's command on the unzipped VOC export gives the dataset the
  in-process build gave: the same examples, splits and boxes."""
  root, _, examples = voc_export
  out = helpers.run(helpers.build_command(root, tmp_path))
  assert out.returncode == 0, out.stderr[-3000:]
  assert "voc: an .xml beside each image" in out.stderr
  got = ah.load_all(tmp_path)
  assert sorted(got) == sorted(examples)
  for rel, ex in examples.items():
    assert got[rel]["split"] == ex["split"]
    np.testing.assert_allclose(got[rel]["objects"]["bbox"],
                               ex["objects"]["bbox"], atol=ah.TOL)
