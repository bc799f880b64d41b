"""YOLO label files: every layout and task, built and compared with the input.

Layouts: Ultralytics (data.yaml with folders; with .txt lists and names as a
dict; names only, beside images/ + labels/), Roboflow (`../train/images`),
Darknet as CVAT exports it (obj.data, `data/` paths), images/ + labels/
without a YAML, labelImg's classes.txt. Tasks: boxes, polygons (masks checked
against pycocotools), pose (keypoints, flip_idx). Bad lines are reported as
`file [line N]`; files written by globox and supervision build into the
boxes and masks they were given.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import annotation_helpers as ah
import helpers
from image_folder_tfds import readers
from image_folder_tfds import records

W, H = 40, 30  # Image size of the detection datasets.
SW, SH = 64, 48  # Image size of the segmentation datasets.
OPTIONS = readers.ReadOptions(
    split_fractions={"train": 0.8, "validation": 0.1, "test": 0.1})


def box_line(cls, box, fmt="{:.6f}") -> str:
  """`class cx cy w h` of a normalized (xmin, ymin, xmax, ymax) box."""
  xmin, ymin, xmax, ymax = box
  values = ((xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin)
  return f"{cls} " + " ".join(fmt.format(v) for v in values)


def poly_line(cls, points) -> str:
  return f"{cls} " + " ".join(f"{v:.6f}" for v in points)


def write_files(root, files: dict[str, str | bytes]) -> None:
  for rel, content in files.items():
    path = pathlib.Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
      path.write_bytes(content)
    else:
      path.write_text(content, encoding="utf-8")


def write_images(root, rels, width=W, height=H) -> None:
  for i, rel in enumerate(rels):
    helpers.write_image(pathlib.Path(root) / rel, seed=i, width=width,
                        height=height,
                        fmt="PNG" if rel.endswith(".png") else "JPEG")


def scan(root, layout="auto", **options):
  return readers.scan(str(root), layout,
                      readers.ReadOptions(split_fractions=OPTIONS.split_fractions,
                                          **options))


def reasons(problems, kind=None) -> list[str]:
  return [str(p) for p in problems if kind is None or p.kind == kind]


def counts_add_up(builder, written: dict[str, int], rejected: dict[str, int]):
  """`found = written + rejected` in the report, with the numbers given."""
  counts = helpers.report(builder)["counts"]
  for split, c in counts.items():
    assert c["found"] == c["written"] + c["rejected"], (split, c)
  assert {s: c["written"] for s, c in counts.items() if c["written"]} == written
  assert {s: c["rejected"] for s, c in counts.items() if c["rejected"]} == (
      rejected)


def assert_boxes(example, want: list[tuple[int, tuple]], names, tol=ah.TOL):
  got = ah.objects(example, names)
  assert [o["label"] for o in got] == [c for c, _ in want], (got, want)
  for o, (_, box) in zip(got, want):
    np.testing.assert_allclose(o["box"], box, atol=tol)


# --- Ultralytics: data.yaml with image folders; every bad line -------------------

A = [(0, (0.1, 0.2, 0.5, 0.6)), (1, (0.25, 0.25, 0.75, 0.9))]
B = [(2, (0.0, 0.0, 1.0, 1.0))]
U = [(1, (0.3, 0.1, 0.6, 0.4))]
C = [(0, (0.2, 0.2, 0.4, 0.4))]
D = [(2, (0.5, 0.5, 0.9, 0.7))]
BAD_LINES = [  # (line, what the report says)
    ("0 0.5 0.5 0.2", "4 values; a box line has 5"),
    ("7 0.5 0.5 0.2 0.2", "class id 7 is not among the 3 classes"),
    ("0 0.5 abc 0.2 0.2", "'abc' is not a number"),
    ("1 0.5 0.5 0.2 0.2", None),  # Good: kept.
    ("1 0.5 0.5 0.2 0.2", "the same as line 4"),
    ("0 0.5 0.5 0.2 0.2 0.9", "a 6th value is a confidence"),
    ("x 0.5 0.5 0.2 0.2", "class id 'x' is not an integer"),
    ("0 0.5 0.5 -0.2 0.2", "box width -0.2 is negative"),
    ("0 nan 0.5 0.2 0.2", "'nan' is not a finite number"),
    ("-1 0.5 0.5 0.2 0.2", "class id -1 is negative"),
]
ULTRA_YAML = """\
# Written on another machine: `path` does not exist here.
path: /home/someone/datasets/pets
train: images/train
val: images/val
test: images/test
nc: 3
names: [cat, dog, bird]
"""


def make_ultralytics(root):
  root = pathlib.Path(root)
  write_images(root, ["images/train/a.jpg", "images/train/b.png",
                      "images/train/tête ü.jpg", "images/train/bg.jpg",
                      "images/train/empty.jpg", "images/train/bad.jpg",
                      "images/train/clip.jpg", "images/val/c.jpg",
                      "images/test/d.jpg", "images/train/sub/deep.jpg"])
  write_files(root, {
      "data.yaml": ULTRA_YAML,
      "images/train/broken.jpg": b"\xff\xd8 not a jpeg",
      "images/val/broken.jpg": b"GIF89a broken",
      "images/test/broken.png": b"\x89PNG\r\n\x1a\n cut",
      "labels/train/broken.txt": box_line(*C[0]) + "\n",
      "labels/train/a.txt": "\n".join(box_line(*o) for o in A) + "\n",
      "labels/train/b.txt": "\r\n".join(box_line(*o) for o in B),  # CRLF
      "labels/train/tête ü.txt": box_line(*U[0]) + "\n",
      "labels/train/empty.txt": "",
      "labels/train/bad.txt": "\n".join(line for line, _ in BAD_LINES),
      "labels/train/clip.txt": "\n".join([
          "0 0.0025 0.5 0.01 0.2",  # xmin -0.0025: within 1%, clipped.
          "0 0.99 0.5 0.1 0.2",  # xmax 1.04: beyond 1%, rejected.
          "2 0.5 0.5 1.0 1.0"]),
      "labels/train/sub/deep.txt": box_line(*D[0]),
      "labels/train/orphan.txt": box_line(*C[0]),  # No image.
      "labels/val/c.txt": box_line(*C[0]),
      "labels/test/d.txt": box_line(*D[0]),
      "labels/train.cache": b"\x00 Ultralytics' label cache",
  })
  return root


@pytest.fixture(scope="module")
def ultra(tmp_path_factory):
  root = make_ultralytics(tmp_path_factory.mktemp("ultra") / "pets")
  builder = helpers.build(root, tmp_path_factory.mktemp("ultra_out"))
  return root, builder, helpers.read_all(builder), helpers.report(builder)


def test_ultralytics_boxes_splits_and_names(ultra):
  root, builder, examples, _ = ultra
  names = ["cat", "dog", "bird"]
  assert ah.class_names(builder) == names
  want = {"images/train/a.jpg": ("train", A), "images/train/b.png": ("train", B),
          "images/train/tête ü.jpg": ("train", U),
          "images/train/sub/deep.jpg": ("train", D),
          "images/val/c.jpg": ("validation", C),
          "images/test/d.jpg": ("test", D)}
  for rel, (split, objs) in want.items():
    assert examples[rel]["split"] == split, rel
    assert_boxes(examples[rel], objs, names)
  assert builder.info.metadata.get("yolo") is None  # Not a pose dataset.


def test_background_and_empty_label_files_are_images_without_objects(ultra):
  _, _, examples, report = ultra
  for rel in ("images/train/bg.jpg", "images/train/empty.jpg"):
    assert ah.objects(examples[rel]) == []
  assert not [p for p in report["problems"]
              if "bg" in p["file"] or "empty" in p["file"]]


def test_every_bad_line_is_reported_with_its_line(ultra):
  _, _, examples, report = ultra
  label = "labels/train/bad.txt"
  for n, (_, needle) in enumerate(BAD_LINES, start=1):
    if needle is None:
      continue
    p = ah.find_problem(report, label, needle, kind="rejected")
    assert p["item"] == f"line {n}", p
  # The one good line is the one object of the image.
  assert_boxes(examples["images/train/bad.jpg"],
               [(1, (0.4, 0.4, 0.6, 0.6))], None)


def test_coordinates_within_1_percent_are_clipped_beyond_rejected(ultra):
  _, _, examples, report = ultra
  changed = ah.find_problem(report, "clip.txt", "by less than 1%",
                            kind="changed")
  assert changed["item"] == "line 1"
  rejected = ah.find_problem(report, "clip.txt", "more than 1% of it",
                             kind="rejected")
  assert rejected["item"] == "line 2"
  assert_boxes(examples["images/train/clip.jpg"],
               [(0, (0.0, 0.4, 0.0075, 0.6)), (2, (0.0, 0.0, 1.0, 1.0))], None)


def test_orphan_label_yaml_path_and_broken_images(ultra):
  root, builder, examples, report = ultra
  orphan = ah.find_problem(report, "orphan.txt", kind="warning")
  assert "label file with no image" in orphan["reason"]
  path = ah.find_problem(report, "data.yaml", "/home/someone/datasets/pets",
                         kind="warning")
  assert path["item"] == "path" and "YAML's folder" in path["reason"]
  # A broken image in every split: rejected, counted.
  for rel in ("images/train/broken.jpg", "images/val/broken.jpg",
              "images/test/broken.png"):
    assert rel not in examples
    ah.find_problem(report, rel, kind="rejected")
  # Ultralytics' cache beside the label folders is not an input.
  assert not [p for p in report["problems"] if ".cache" in p["file"]]
  counts_add_up(builder, written={"train": 8, "validation": 1, "test": 1},
                rejected={"train": 1, "validation": 1, "test": 1})


def test_ultralytics_scan_is_packed_and_streams_labels(ultra):
  root = ultra[0]
  claim = readers.claims(str(root), OPTIONS)[0]
  assert (claim.layout, claim.certainty) == ("yolo", readers.common.CERTAIN)
  result = scan(root)
  assert isinstance(result.records, records.PackedRecords)
  assert result.layout == ("yolo: data.yaml (train: images/train,"
                           " val: images/val, test: images/test)")
  # The records name their label file: the source of every message.
  by_key = {r.key: r for r in result.records}
  assert by_key["images/train/a.jpg"].source == str(
      root / "labels/train/a.txt")
  assert by_key["images/train/bg.jpg"].source == str(
      root / "images/train/bg.jpg")


# --- Ultralytics: .txt lists, names as a dict, polygons (masks) ----------------

TRIANGLE = [0.1, 0.1, 0.8, 0.2, 0.4, 0.9]
PENTAGON = [0.5, 0.05, 0.95, 0.4, 0.8, 0.95, 0.2, 0.95, 0.05, 0.4]
ROTATED = [0.5, 0.1, 0.9, 0.5, 0.5, 0.9, 0.1, 0.5]  # A 4-point polygon.
OVER = [-0.005, 0.2, 0.6, 0.2, 0.3, 1.004]  # Within 1%: clipped.
SEG_YAML = """\
path: .
train: train.txt
val: [val.txt]
names:
  0: leaf
  1: stone
"""


def make_segmentation(root):
  root = pathlib.Path(root)
  write_images(root, ["images/train/s1.jpg", "images/train/s2.jpg",
                      "images/train/s3.jpg", "images/val/v1.jpg"],
               width=SW, height=SH)
  write_files(root, {
      "data.yaml": SEG_YAML,
      # `./` is the list's folder (Ultralytics); a bare path the root.
      "train.txt": "./images/train/s1.jpg\n./images/train/s2.jpg\n"
                   "images/train/s3.jpg\n./images/train/missing.jpg\n"
                   "./images/train/s1.jpg\n",
      # Written on another machine: found by its tail inside DIR.
      "val.txt": "/content/datasets/leaves/images/val/v1.jpg\n",
      "labels/train/s1.txt": poly_line(0, TRIANGLE) + "\n"
                             + poly_line(1, PENTAGON) + "\n",
      "labels/train/s2.txt": poly_line(1, OVER) + "\n"
                             + poly_line(0, ROTATED) + "\n",
      "labels/train/s3.txt": poly_line(0, TRIANGLE) + "\n"
                             + box_line(1, (0.1, 0.1, 0.3, 0.3)) + "\n"
                             + "1 0.1 0.1 0.5 0.5 0.9\n",  # Odd: 5 values.
      "labels/val/v1.txt": poly_line(1, PENTAGON) + "\n",
  })
  return root


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
  root = make_segmentation(tmp_path_factory.mktemp("seg") / "leaves")
  builder = helpers.build(root, tmp_path_factory.mktemp("seg_out"))
  return root, builder, helpers.read_all(builder), helpers.report(builder)


def rasterized(points, width, height) -> np.ndarray:
  """The polygon as pycocotools rasterizes it at the image's size."""
  from pycocotools import mask as mask_utils  # pylint: disable=g-import-not-at-top
  scaled = (np.asarray(points, np.float64).reshape(-1, 2)
            * [width, height]).ravel().tolist()
  return mask_utils.decode(mask_utils.merge(
      mask_utils.frPyObjects([scaled], height, width)))


def iou(a, b) -> float:
  a, b = a.astype(bool), b.astype(bool)
  return (a & b).sum() / max((a | b).sum(), 1)


def near_edge(mask) -> np.ndarray:
  """The pixels at most one pixel (8-neighbours) from `mask`'s edge."""
  def grow(m):
    p = np.pad(m, 1)
    return np.logical_or.reduce([p[1 + dy:p.shape[0] - 1 + dy,
                                   1 + dx:p.shape[1] - 1 + dx]
                                 for dy in (-1, 0, 1) for dx in (-1, 0, 1)])
  return grow(mask) & grow(~mask)


def extent(points):
  return (min(points[0::2]), min(points[1::2]), max(points[0::2]),
          max(points[1::2]))


def test_polygons_are_masks_and_their_extent_the_box(seg):
  _, builder, examples, _ = seg
  assert ah.class_names(builder) == ["leaf", "stone"]
  clipped = [min(max(v, 0.0), 1.0) for v in OVER]
  want = {"images/train/s1.jpg": [(0, TRIANGLE), (1, PENTAGON)],
          "images/train/s2.jpg": [(1, clipped), (0, ROTATED)],
          "images/train/s3.jpg": [(0, TRIANGLE)],
          "images/val/v1.jpg": [(1, PENTAGON)]}
  n = 0
  for rel, objs in want.items():
    ex = examples[rel]
    assert_boxes(ex, [(c, extent(p)) for c, p in objs], None)
    for mask, (_, points) in zip(ex["objects"]["mask"], objs):
      assert mask.shape == (SH, SW, 1)
      assert iou(mask[..., 0], rasterized(points, SW, SH)) >= 0.99, rel
      n += 1
  assert n == 6
  assert examples["images/val/v1.jpg"]["split"] == "validation"


def test_list_problems_and_box_in_a_polygon_file(seg):
  _, builder, _, report = seg
  missing = ah.find_problem(report, "train.txt", "missing.jpg",
                            kind="rejected")
  assert missing["item"] == "line 4"
  twice = ah.find_problem(report, "train.txt", "listed twice",
                          kind="rejected")
  assert twice["item"] == "line 5"
  box = ah.find_problem(report, "s3.txt", "a box (class cx cy w h) in a file"
                        " of polygons", kind="rejected")
  assert box["item"] == "line 2"
  odd = ah.find_problem(report, "s3.txt", "5 coordinates", kind="rejected")
  assert odd["item"] == "line 3"
  ah.find_problem(report, "s2.txt", "by less than 1%", kind="changed")
  ah.find_problem(report, "val.txt", "1 absolute image paths lie outside",
                  kind="warning")
  counts_add_up(builder, written={"train": 3, "validation": 1},
                rejected={"train": 2})


# --- Pose ---------------------------------------------------------------------------

KPTS = [(0.2, 0.3, 2), (0.4, 0.35, 1), (0.0, 0.0, 0)]
POSE_YAML = """\
train: images
val: images
kpt_shape: [3, 3]
flip_idx: [1, 0, 2]
names: [person, dog]
kpt_names:
  0: [left_hand, right_hand, nose]
"""


def pose_line(cls, box, kpts) -> str:
  return box_line(cls, box) + " " + " ".join(
      f"{x:.6f} {y:.6f} {v}" for x, y, v in kpts)


@pytest.fixture(scope="module")
def pose(tmp_path_factory):
  root = tmp_path_factory.mktemp("pose") / "people"
  write_images(root, ["images/p1.jpg", "images/p2.jpg"])
  write_files(root, {
      "pose.yaml": POSE_YAML,  # Not data.yaml: the one dataset YAML.
      "labels/p1.txt": "\n".join([
          pose_line(0, (0.1, 0.2, 0.5, 0.6), KPTS),
          pose_line(1, (0.5, 0.5, 0.9, 0.9), [(0.6, 0.6, 2), (0.7, 0.7, 2),
                                              (0.8, 0.8, 2)]),
          box_line(0, (0.1, 0.1, 0.2, 0.2)),  # No keypoints.
          pose_line(0, (0.1, 0.2, 0.5, 0.6), [(0.2, 0.3, 3)] * 3)]),
      "labels/p2.txt": "",
  })
  builder = helpers.build(root, tmp_path_factory.mktemp("pose_out"))
  return root, builder, helpers.read_all(builder), helpers.report(builder)


def test_pose_keypoints_flip_idx_and_names(pose):
  _, builder, examples, report = pose
  assert ah.class_names(builder) == ["person", "dog"]
  assert builder.info.metadata["yolo"] == {"kpt_shape": [3, 3],
                                           "flip_idx": [1, 0, 2]}
  assert builder.info.metadata["keypoint_names"] == {
      "person": ["left_hand", "right_hand", "nose"]}
  # `train` and `val` name the same folder: both splits hold its images.
  ah.find_problem(report, "pose.yaml", "val and train both name images",
                  kind="warning")
  for split in ("train", "validation"):
    ex = [e for e in helpers.read_split(builder, split)
          if e["file_name"] == b"images/p1.jpg"][0]
    got = ah.objects(ex, ["person", "dog"])
    assert len(got) == 2
    ah.assert_object(got[0], {"box": (0.1, 0.2, 0.5, 0.6), "label": 0,
                              "keypoints": [(x, y, v, -1.0)
                                            for x, y, v in KPTS]}, "p1 #0")
    ah.assert_object(got[1], {"box": (0.5, 0.5, 0.9, 0.9), "label": 1,
                              "keypoints": [(0.6, 0.6, 2, -1.0),
                                            (0.7, 0.7, 2, -1.0),
                                            (0.8, 0.8, 2, -1.0)]}, "p1 #1")
  # p1.txt is read for both splits, and each bad line reported in each.
  for needle, line in (("5 values; a pose line has 14", "line 3"),
                       ("keypoint 0 visibility is 3", "line 4")):
    found = [(p["split"], p["item"]) for p in ah.problems(report, "rejected")
             if p["file"] == "labels/p1.txt" and needle in p["reason"]]
    assert found == [("train", line), ("validation", line)], needle


def test_pose_with_two_values_takes_ultralytics_visibility(tmp_path):
  """`kpt_shape: [K, 2]`: a keypoint is present unless a coordinate is
  negative (Ultralytics' mask), stored as visible (2) or not labelled (0)."""
  write_images(tmp_path, ["images/t.jpg"])
  write_files(tmp_path, {
      "data.yaml": "train: images\nkpt_shape: [2, 2]\nnames: [tiger]\n",
      "labels/t.txt": box_line(0, (0.1, 0.1, 0.9, 0.9))
                      + " 0.5 0.25 -1 -1\n"})
  (rec,) = scan(tmp_path).records
  (obj,) = rec.objects
  assert [(k.x, k.y, k.v) for k in obj.keypoints] == [(0.5, 0.25, 2),
                                                      (-1.0, -1.0, 0)]


# --- Roboflow, Darknet (CVAT), labelImg, folders without a YAML -------------------

ROBOFLOW_YAML = """\
train: ../train/images
val: ../valid/images
test: ../test/images

nc: 2
names: ['hard hat', 'vest']

roboflow:
  workspace: acme
  project: safety
  version: 3
  license: CC BY 4.0
  url: https://universe.roboflow.com/acme/safety/dataset/3
"""


def test_roboflow_export(tmp_path):
  root = tmp_path / "safety.v3i.yolov8"
  images = {"train/images/r1_jpg.rf.abc.jpg": [(0, (0.1, 0.1, 0.4, 0.5))],
            "train/images/r2_jpg.rf.def.jpg": [(1, (0.5, 0.2, 0.9, 0.8)),
                                               (0, (0.0, 0.0, 0.3, 0.3))],
            "valid/images/r3_jpg.rf.ghi.jpg": [(1, (0.2, 0.2, 0.6, 0.6))],
            "test/images/r4_jpg.rf.jkl.jpg": []}
  write_images(root, list(images))
  write_files(root, {"data.yaml": ROBOFLOW_YAML,
                     "README.roboflow.txt": "Exported via roboflow.com\n",
                     "README.dataset.txt": "# safety\n"})
  write_files(root, {
      rel.replace("/images/", "/labels/").rsplit(".", 1)[0] + ".txt":
      "\n".join(box_line(*o) for o in objs) for rel, objs in images.items()})
  result = scan(root)
  assert result.layout.startswith("yolo: data.yaml (Roboflow, train:"
                                  " train/images")
  builder = helpers.build(root, tmp_path / "out")
  examples = helpers.read_all(builder)
  names = ["hard hat", "vest"]
  assert ah.class_names(builder) == names
  splits = {"train": "train", "valid": "validation", "test": "test"}
  for rel, objs in images.items():
    assert examples[rel]["split"] == splits[rel.split("/")[0]]
    assert_boxes(examples[rel], objs, names)
  assert not ah.problems(helpers.report(builder), "rejected")
  assert not ah.problems(helpers.report(builder), "warning")


def test_darknet_as_cvat_exports_it(tmp_path):
  """CVAT's "YOLO 1.1" (Datumaro's yolo exporter): obj.data with `data/`
  paths, images and labels side by side in obj_<subset>_data/."""
  root = tmp_path / "task_7-yolo 1.1"
  images = {"obj_train_data/frame_000000.jpg": [(1, (0.1, 0.2, 0.3, 0.4))],
            "obj_train_data/frame_000001.png": [],
            "obj_train_data/sub/frame_000002.jpg": [(0, (0.5, 0.5, 0.7, 0.9))],
            "obj_valid_data/frame_000010.jpg": [(0, (0.2, 0.2, 0.8, 0.8))]}
  write_images(root, list(images))
  write_files(root, {
      "obj.data": "classes = 2\ntrain = data/train.txt\n"
                  "valid = data/valid.txt\nnames = data/obj.names\n"
                  "backup = backup/\n",
      "obj.names": "car\nperson\n",
      "train.txt": "".join(f"data/{r}\n" for r in images
                           if r.startswith("obj_train")),
      "valid.txt": "".join(f"data/{r}\n" for r in images
                           if r.startswith("obj_valid")),
      "obj_train_data/stray.txt": box_line(0, (0.1, 0.1, 0.2, 0.2)),
  })
  write_files(root, {r.rsplit(".", 1)[0] + ".txt":
                     "".join(box_line(*o) + "\n" for o in objs)
                     for r, objs in images.items()})
  claim = readers.claims(str(root), OPTIONS)[0]
  assert (claim.layout, claim.certainty) == ("yolo", readers.common.CERTAIN)
  builder = helpers.build(root, tmp_path / "out")
  examples = helpers.read_all(builder)
  names = ["car", "person"]
  assert ah.class_names(builder) == names
  for rel, objs in images.items():
    assert examples[rel]["split"] == (
        "train" if "train" in rel else "validation")
    assert_boxes(examples[rel], objs, names)
  report = helpers.report(builder)
  ah.find_problem(report, "obj_train_data/stray.txt",
                  "label file with no image", kind="warning")
  counts_add_up(builder, written={"train": 3, "validation": 1}, rejected={})


def test_darknet_jpegimages_labels_and_absolute_lists(tmp_path):
  """Darknet's own VOC layout (voc_label.py): train.txt lists absolute
  JPEGImages/ paths of the machine it was made on; darknet reads the labels
  from labels/ (its replace_image_to_label)."""
  write_images(tmp_path, ["VOC2007/JPEGImages/000001.jpg"])
  write_files(tmp_path, {
      "voc.data": "classes= 2\ntrain  = /home/pjreddie/data/voc/train.txt\n"
                  "names = data/voc.names\neval=voc\n",
      "voc.names": "aeroplane\nbicycle\n",
      "train.txt": "/home/pjreddie/data/voc/VOC2007/JPEGImages/000001.jpg\n",
      "VOC2007/labels/000001.txt": box_line(1, (0.2, 0.2, 0.6, 0.8))})
  result = scan(tmp_path)
  assert result.layout == "yolo: voc.data (Darknet: train.txt)"
  assert result.class_names == ["aeroplane", "bicycle"]
  (rec,) = result.records
  assert rec.key == "VOC2007/JPEGImages/000001.jpg" and rec.split == "train"
  assert [o.label for o in rec.objects] == [1]
  assert "outside the data folder" in "\n".join(reasons(result.problems))


def test_labelimg_classes_txt_beside_images(tmp_path):
  root = tmp_path / "shots"
  images = {f"img{i:02d}.jpg": [(i % 3, (0.1 * (i % 5), 0.1, 0.5, 0.5))]
            for i in range(6)}
  images["img_bg.jpg"] = []
  write_images(root, list(images))
  write_files(root, {"classes.txt": "apple\npear\nplum\n"})
  write_files(root, {r[:-4] + ".txt": "".join(box_line(*o) + "\n"
                                              for o in objs)
                     for r, objs in images.items() if objs})
  result = scan(root)
  assert result.layout == "yolo: classes.txt + a .txt beside each image"
  builder = helpers.build(root, tmp_path / "out")
  examples = helpers.read_all(builder)
  assert ah.class_names(builder) == ["apple", "pear", "plum"]
  for rel, objs in images.items():
    assert_boxes(examples[rel], objs, ["apple", "pear", "plum"])
    # Hash splits (the default fractions), as for class folders.
    assert examples[rel]["split"] == readers.annotated.assign_split(
        None, rel, OPTIONS)
  assert not ah.problems(helpers.report(builder))


def test_images_and_labels_folders_without_yaml(tmp_path):
  write_images(tmp_path, ["images/train/a.jpg", "images/val/b.jpg"])
  write_files(tmp_path, {"labels/train/a.txt": box_line(3, (0, 0, 0.5, 0.5)),
                         "labels/val/b.txt": ""})
  claim = readers.claims(str(tmp_path), OPTIONS)[0]
  assert (claim.layout, claim.certainty) == ("yolo", readers.common.LIKELY)
  result = scan(tmp_path)
  assert result.layout == "yolo: images/ + labels/"
  # No class names anywhere: the ids seen, as names.
  assert result.class_names == ["0", "1", "2", "3"]
  assert {r.key: r.split for r in result.records} == {
      "images/train/a.jpg": "train", "images/val/b.jpg": "validation"}
  # A labels file fixes the names; ids index it.
  write_files(tmp_path, {"labels.txt": "a\nb\nc\nd\ne\n"})
  assert scan(tmp_path).class_names == ["a", "b", "c", "d", "e"]


def test_labels_file_remaps_yaml_names(tmp_path):
  write_images(tmp_path, ["images/a.jpg"])
  write_files(tmp_path, {
      "data.yaml": "train: images\nnames: [cat, dog, cow]\n",
      "labels/a.txt": "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.4 0.4\n"
                      "2 0.5 0.5 0.1 0.1\n",
      "labels.txt": "dog\ncat\n"})
  result = scan(tmp_path)
  assert result.class_names == ["dog", "cat"]
  (rec,) = result.records
  assert [(o.label, o.text) for o in rec.objects] == [(1, "cat"), (0, "dog")]
  assert "class 'cow' (id 2) is not in labels.txt" in "\n".join(
      reasons(result.problems))


def test_supervision_names_only_yaml_beside_folders(tmp_path):
  """supervision's `as_yolo` writes `nc` and `names` only: the images are
  images/ + labels/ beside it."""
  write_images(tmp_path, ["images/a.jpg"])
  write_files(tmp_path, {"data.yaml": "nc: 1\nnames: [ant]\n",
                         "labels/a.txt": box_line(0, (0.1, 0.1, 0.2, 0.2))})
  result = scan(tmp_path)
  assert result.class_names == ["ant"]
  assert result.layout == "yolo: data.yaml names, images/ + labels/"


# --- Files written by real tools ----------------------------------------------------


def test_globox_yolo_files_build_into_the_boxes_given(tmp_path):
  import globox  # pylint: disable=g-import-not-at-top
  root = tmp_path / "gb"
  given = {"g1": [("cat", (3.5, 2.25, 20.0, 17.5)), ("dog", (0, 0, 40, 30))],
           "g2": [("dog", (10.0, 5.0, 31.5, 29.0))], "g3": []}
  annotations = []
  for stem, boxes in given.items():
    helpers.write_image(root / "images" / f"{stem}.jpg", width=W, height=H)
    annotations.append(globox.Annotation(
        image_id=f"{stem}.jpg", image_size=(W, H),
        boxes=[globox.BoundingBox.create(label=label, coords=box)
               for label, box in boxes]))
  names = ["cat", "dog"]
  globox.AnnotationSet(annotations).save_yolo_darknet(
      root / "labels", label_to_id={n: i for i, n in enumerate(names)})
  write_files(root, {"data.yaml": "train: images\nnames: [cat, dog]\n"})
  builder = helpers.build(root, tmp_path / "out")
  examples = helpers.read_all(builder)
  for stem, boxes in given.items():
    assert_boxes(examples[f"images/{stem}.jpg"],
                 [(names.index(label), (x0 / W, y0 / H, x1 / W, y1 / H))
                  for label, (x0, y0, x1, y1) in boxes], names)
  assert not ah.problems(helpers.report(builder))


def test_supervision_yolo_files_build_into_the_boxes_and_masks_given(tmp_path):
  """supervision (Roboflow's library) writes a mask as the polygon of its
  contour (through pixel centres: half a pixel inside the mask's edge), and
  a box as `class cx cy w h` (5 decimals)."""
  import supervision as sv  # pylint: disable=g-import-not-at-top
  w, h = 160, 120
  root = tmp_path / "sv"
  given = np.zeros((3, h, w), bool)
  given[0, 10:60, 8:90] = True  # A rectangle.
  yy, xx = np.mgrid[0:h, 0:w]
  given[1] = (yy - 70) ** 2 + (xx - 110) ** 2 < 30 ** 2  # A disc.
  given[2, 70:115, 5:35] = True
  given[2, 95:115, 35:70] = True  # An L.
  boxes = np.array([[8, 10, 90, 60], [80, 40, 140, 100], [5, 70, 70, 115]],
                   np.float32)
  paths = []
  for i in range(2):
    path = root / "images" / f"s{i}.png"
    helpers.write_image(path, seed=i, width=w, height=h, fmt="PNG")
    paths.append(str(path))
  sv.DetectionDataset(
      classes=["tile", "coin"], images=paths,
      annotations={paths[0]: sv.Detections(xyxy=boxes, mask=given,
                                           class_id=np.array([0, 1, 0])),
                   paths[1]: sv.Detections.empty()}).as_yolo(
      annotations_directory_path=str(root / "labels"),
      data_yaml_path=str(root / "data.yaml"))
  # Boxes only, in another dataset.
  box_root = tmp_path / "svbox"
  box_image = str(box_root / "images" / "b.png")
  helpers.write_image(box_image, width=w, height=h, fmt="PNG")
  sv.DetectionDataset(
      classes=["tile", "coin"], images=[box_image],
      annotations={box_image: sv.Detections(
          xyxy=boxes, class_id=np.array([1, 0, 1]))}).as_yolo(
      annotations_directory_path=str(box_root / "labels"),
      data_yaml_path=str(box_root / "data.yaml"))

  builder = helpers.build(root, tmp_path / "out")
  examples = helpers.read_all(builder)
  ex = examples["images/s0.png"]
  got = ah.objects(ex, ["tile", "coin"])
  assert [o["label"] for o in got] == [0, 1, 0]
  written = [[float(v) for v in line.split()[1:]] for line in
             (root / "labels" / "s0.txt").read_text().splitlines()]
  assert len(written) == 3 and all(len(p) >= 8 for p in written)  # Polygons.
  for o, mask, mask_given, points in zip(got, ex["objects"]["mask"], given,
                                         written):
    # Exactly the polygon the file holds; the mask given but for pixels
    # next to its edge (supervision's contour runs through the edge pixels'
    # indices, half a pixel off pycocotools' pixel centres).
    ours = mask[..., 0].astype(bool)
    assert iou(ours, rasterized(points, w, h)) >= 0.99
    assert not ((ours ^ mask_given) & ~near_edge(mask_given)).any()
    assert iou(ours, mask_given) >= 0.9, o
    np.testing.assert_allclose(o["box"], extent(points), atol=ah.TOL)
    rows, cols = np.nonzero(mask_given)
    np.testing.assert_allclose(
        o["box"], (cols.min() / w, rows.min() / h, (cols.max() + 1) / w,
                   (rows.max() + 1) / h), atol=1.01 / min(w, h))
  assert ah.objects(examples["images/s1.png"]) == []

  box_builder = helpers.build(box_root, tmp_path / "out_box")
  ex = helpers.read_all(box_builder)["images/b.png"]
  assert_boxes(ex, [(c, (b[0] / w, b[1] / h, b[2] / w, b[3] / h))
                    for c, b in zip([1, 0, 1], boxes)], None, tol=1e-5)


# --- Refused: oriented boxes, broken dataset files -----------------------------------


def test_oriented_boxes_are_refused(tmp_path):
  write_images(tmp_path, ["images/a.jpg", "images/b.jpg"])
  write_files(tmp_path, {
      "data.yaml": "train: images\nnames: [plane]\n",
      "labels/a.txt": poly_line(0, ROTATED) + "\n",
      "labels/b.txt": poly_line(0, [0.1, 0.1, 0.3, 0.1, 0.3, 0.3, 0.1, 0.3]),
  })
  with pytest.raises(records.InputError) as e:
    scan(tmp_path)
  assert "YOLO-OBB" in str(e.value) and "labels/a.txt:1" in str(e.value)
  assert "task: segment" in str(e.value)
  # Declared as polygons, the same files are read, as masks.
  write_files(tmp_path, {"data.yaml": "train: images\nnames: [plane]\n"
                                      "task: segment\n"})
  result = scan(tmp_path)
  assert all(o.segmentation >= 0 for r in result.records for o in r.objects)
  # Declared as OBB, refused before any label is read.
  write_files(tmp_path, {"data.yaml": "train: images\nnames: [plane]\n"
                                      "task: obb\n"})
  with pytest.raises(records.InputError, match="task: obb"):
    scan(tmp_path)
  # Only axis-aligned rectangles: the same region either way, read.
  write_files(tmp_path, {"data.yaml": "train: images\nnames: [plane]\n",
                         "labels/a.txt": ""})
  assert len(scan(tmp_path).records) == 2


@pytest.mark.parametrize("name, text, needle", [
    ("data.yaml", "train: [images\nnames: [a]\n", "not valid YAML"),
    ("data.yaml", "train: images\nnc: 2\n", "no `names`"),
    ("data.yaml", "train: images\nval: images/nowhere\nnames: [a]\n",
     "val: images/nowhere not found"),
    ("data.yaml", "train: images\nnc: 3\nnames: [a, b]\n",
     "nc is 3 but names lists 2"),
    ("data.yaml", "train: images\nnames: [yes, no]\n", "names[0] is True"),
    ("data.yaml", "train: images\nnames: {0: a, 2: b}\n", "id 1 is missing"),
    ("data.yaml", "train: images\nnames: [a]\nkpt_shape: [17]\n",
     "kpt_shape must be"),
    ("data.yaml", "train: images\nnames: [a]\nkpt_shape: [2, 3]\n"
     "flip_idx: [0]\n", "flip_idx must list 2"),
    ("data.yaml", "- just\n- a list\n", "not a YOLO dataset"),
    ("obj.data", "classes = 3\ntrain = data/train.txt\nnames = data/obj.names\n",
     "classes = 3, but obj.names lists 1"),
    ("obj.data", "classes = 1\nnames = data/obj.names\n",
     "no train or valid list"),
])
def test_broken_dataset_file_is_a_clear_error(tmp_path, name, text, needle):
  write_images(tmp_path, ["images/a.jpg"])
  write_files(tmp_path, {name: text, "labels/a.txt": "", "obj.names": "a\n",
                         "train.txt": "images/a.jpg\n"})
  claim = readers.claims(str(tmp_path), OPTIONS)[0]
  assert claim.layout == "yolo"
  with pytest.raises(records.InputError) as e:
    scan(tmp_path)
  assert str(e.value).startswith(str(tmp_path / name)), str(e.value)
  assert needle in str(e.value)


def test_only_positive_evidence_is_claimed(tmp_path):
  # Class folders with a stray .txt: no claim.
  write_images(tmp_path / "cls", ["cat/a.jpg", "dog/b.jpg"])
  write_files(tmp_path / "cls", {"cat/notes.txt": "a cat\n"})
  assert [c.layout for c in readers.claims(str(tmp_path / "cls"), OPTIONS)] \
      == ["folders"]
  # images/ + labels/ whose .txt files are not label lines: no claim.
  write_images(tmp_path / "nl", ["images/a.jpg"])
  write_files(tmp_path / "nl", {"labels/a.txt": "a cat on a mat\n"})
  assert "yolo" not in [c.layout for c in
                        readers.claims(str(tmp_path / "nl"), OPTIONS)]
  # A YAML that is no dataset (not named data.yaml): not ours.
  write_images(tmp_path / "cfg", ["cat/a.jpg"])
  write_files(tmp_path / "cfg", {"config.yaml": "lr: 0.1\n"})
  assert [c.layout for c in readers.claims(str(tmp_path / "cfg"), OPTIONS)] \
      == ["folders"]


# --- Sizes: 1, 2 and 20 images -----------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 20])
def test_small_and_larger_folders(tmp_path, n):
  rels = [f"images/im{i:02d}.jpg" for i in range(n)]
  write_images(tmp_path / "d", rels)
  want = {}
  for i, rel in enumerate(rels):
    want[rel] = [(i % 2, (0.05 * (i % 10), 0.1, 0.5 + 0.02 * (i % 10), 0.9))]
    if i % 4 == 3:
      want[rel] = []  # Background.
      continue
    write_files(tmp_path / "d", {
        rel.replace("images/", "labels/")[:-4] + ".txt":
        "".join(box_line(*o) + "\n" for o in want[rel])})
  write_files(tmp_path / "d", {"data.yaml": "train: images\nval: images\n"
                                            "names: [a, b]\n"})
  builder = helpers.build(tmp_path / "d", tmp_path / "out")
  for split in ("train", "validation"):
    got = {e["file_name"].decode(): e for e in helpers.read_split(builder,
                                                                  split)}
    assert sorted(got) == rels
    for rel, objs in want.items():
      assert_boxes(got[rel], objs, ["a", "b"])
  counts_add_up(builder, written={"train": n, "validation": n}, rejected={})


# --- The real command -----------------------------------------------------------------

@pytest.mark.slow
def test_tfds_build_command_on_an_ultralytics_folder(tmp_path):
  root = make_ultralytics(tmp_path / "pets")
  out = helpers.run(helpers.build_command(root, tmp_path / "data"))
  assert out.returncode == 0, out.stderr[-3000:]
  assert "yolo: data.yaml" in out.stderr
  assert "labels/train/bad.txt [line 2]: class id 7" in out.stderr
  examples = ah.load_all(tmp_path / "data")  # tfds.load
  assert len(examples) == 10
  for rel, objs in {"images/train/a.jpg": A, "images/train/tête ü.jpg": U,
                    "images/val/c.jpg": C}.items():
    assert_boxes(examples[rel], objs, None)
