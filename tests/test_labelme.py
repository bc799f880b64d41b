"""LabelMe (a `.json` beside each image): files written by LabelMe's own
`LabelFile.save` (pip `labelme`), built, read back and compared with the
shapes they were given."""

from __future__ import annotations

import base64
import dataclasses
import json
import pathlib
import sys
from importlib import metadata

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import annotation_helpers as ah
import helpers
from image_folder_tfds import records
from image_folder_tfds import readers
from image_folder_tfds.readers import common
from image_folder_tfds.readers import labelme

W, H = 64, 48
OPTIONS = common.ReadOptions(
    split_fractions={"train": 0.8, "validation": 0.1, "test": 0.1})


def _labelme():
  """LabelMe's `LabelFile` and `utils`, imported when a test writes files:
  `labelme` imports PyQt5 and onnxruntime, which every test process would
  otherwise load when it collects this module."""
  import labelme as labelme_tool  # pylint: disable=g-import-not-at-top
  return labelme_tool.LabelFile, labelme_tool.utils


def b64_png(array) -> str:
  """A mask as LabelMe's app stores it (`utils.img_arr_to_b64`)."""
  return _labelme()[1].img_arr_to_b64(array)


def shape(label, points, shape_type, group_id=None, **kw):
  """A shape dict as LabelMe's app passes it to `LabelFile.save`."""
  return {"label": label, "points": points, "group_id": group_id,
          "description": kw.pop("description", ""), "shape_type": shape_type,
          "flags": kw.pop("flags", {}), "mask": kw.pop("mask", None), **kw}


def save(root, rel, shapes, *, image=None, image_path=None, seed=0,
         image_data=None, flags=None, size=(W, H), fmt="JPEG"):
  """Writes the image `image` (relative to the JSON's folder) unless it is
  None, and the JSON `rel` with LabelMe's own writer."""
  path = pathlib.Path(root) / rel
  path.parent.mkdir(parents=True, exist_ok=True)
  if image is not None:
    helpers.write_image(path.parent / image, seed=seed, fmt=fmt,
                        width=size[0], height=size[1])
  label_file, _ = _labelme()
  label_file().save(str(path), shapes, image_path or image, size[1], size[0],
                   image_data=image_data, flags=flags or {})
  return path


MASK = np.zeros((6, 9), np.uint8)
MASK[1:5, 2:8] = 1
MASK[2, 4] = 0
MASK_AT = (20, 30)  # Its top-left pixel (x, y).
POLYGON = [[40.0, 5.0], [60.5, 12.25], [52.0, 30.0], [38.0, 22.0]]
PART_A = [[2.0, 30.0], [12.0, 30.0], [12.0, 40.0]]
PART_B = [[14.0, 30.0], [22.0, 30.0], [22.0, 44.0], [14.0, 44.0]]


def _main(root):
  """The main dataset; returns what each image should read back as."""
  a_shapes = [
      shape("cat", [[30.0, 20.0], [5.5, 4.0]], "rectangle", group_id=1,
            description="sleepy", flags={"occluded": True}),
      shape("nose", [[10.0, 10.0]], "point", group_id=1),
      shape("tail", [[28.0, 18.5]], "point", group_id=1),
      shape("dog", POLYGON, "polygon"),
      shape("ball", [[8.0, 40.0], [8.0, 44.0]], "circle"),
      shape("blob", [list(MASK_AT), [MASK_AT[0] + 8, MASK_AT[1] + 5]], "mask",
            mask=b64_png(MASK)),
      shape("edge", [[1.0, 1.0], [5.0, 5.0]], "line"),
      shape("dog", PART_A, "polygon", group_id=7),
      shape("dog", PART_B, "polygon", group_id=7),
  ]
  save(root, "a.json", a_shapes, image="a.jpg", seed=1,
       flags={"day": True, "night": False})
  # Keypoint names in the order first seen: nose, tail (a.json), then ear.
  save(root, "b.json", [
      shape("cat", [[2.0, 2.0], [40.0, 30.0]], "rectangle", group_id=3),
      shape("ear", [[12.0, 3.0]], "point", group_id=3),
      shape("nose", [[20.0, 15.0]], "point", group_id=3),
  ], image="b.jpg", seed=2)
  save(root, "deep/x/y/ünï 猫.json", [
      shape("cat", [[1.0, 2.0], [63.0, 47.0]], "rectangle")],
      image="ünï 猫.png", seed=3, fmt="PNG")
  # Embedded only: imagePath names a file that is not there.
  embedded = helpers.encode(helpers.photo(4, W, H), "PNG")
  save(root, "sub/emb.json", [shape("cat", [[4.0, 4.0], [20.0, 24.0]],
                                    "rectangle")],
       image_path="../lost/gone.png", image_data=embedded)
  # Both: the file wins; imageData (another picture) is not used.
  save(root, "both.json", [shape("dog", [[0.0, 0.0], [10.0, 10.0]],
                                 "rectangle")],
       image="both.png", seed=5, fmt="PNG",
       image_data=helpers.encode(helpers.photo(6, W, H), "JPEG"))
  save(root, "empty.json", [], image="empty.jpg", seed=7)
  save(root, "edge/clip.json", [shape("ball", [[60.0, 24.0], [60.0, 32.0]],
                                      "circle")], image="clip.jpg", seed=8)
  # Bad input, one case a file.
  helpers.write_image(root / "bad/not_json.jpg", seed=9)
  (root / "bad/not_json.json").write_text("{\"shapes\": [")
  helpers.write_image(root / "bad/no_shapes.jpg", seed=10)
  (root / "bad/no_shapes.json").write_text(
      json.dumps({"imagePath": "no_shapes.jpg", "imageData": None}))
  save(root, "bad/missing.json", [shape("cat", [[1, 1], [5, 5]], "rectangle")],
       image_path="nowhere.jpg")
  save(root, "bad/escape.json", [shape("cat", [[1, 1], [5, 5]], "rectangle")],
       image_path="../../../etc/hostname")
  helpers.write_image(root / "bad/broken.jpg", seed=11)
  (root / "bad/broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
  save(root, "bad/broken.json", [shape("cat", [[1, 1], [5, 5]], "rectangle")],
       image_path="broken.jpg")
  save(root, "bad/shapes.json", [
      shape("cat", [[1.0]], "point", group_id=1),  # 0: not two numbers
      shape("cat", [[1, 1], [9, 9]], "polygon"),  # 1: 2 points
      shape("cat", [[1, 1]], "rectangle"),  # 2: one corner
      shape("", [[1, 1], [9, 9]], "rectangle"),  # 3: empty label
      shape("nose", [[3, 3]], "point"),  # 4: no group
      shape("cat", [[1, 1], [9, 9], [3, 5]], "ellipse"),  # 5: unsupported
      shape("cat", [[2, 2], [12, 14]], "rectangle"),  # 6: kept
      shape("cat", [[1, "2"]], "point", group_id=2),  # 7: a string
      shape("eye", [[3, 3]], "point", group_id=9),  # 8: no object group 9
      shape("cat", [[0, 0], [3, 3]], "rectangle", group_id=4),
      shape("dog", [[5, 5], [8, 8]], "rectangle", group_id=4),
      shape("eye", [[6, 6]], "point", group_id=4),  # 11: two objects
  ], image="shapes.jpg", seed=12)
  (root / "bad/notes.json").write_text(json.dumps({"author": "me"}))
  helpers.write_image(root / "lonely.jpg", seed=13)

  def box(x0, y0, x1, y1, w=W, h=H):
    return (x0 / w, y0 / h, x1 / w, y1 / h)
  xs, ys = [p[0] for p in POLYGON], [p[1] for p in POLYGON]
  return {
      "a.jpg": [
          {"box": box(5.5, 4.0, 30.0, 20.0), "text": "cat", "id": "0",
           "keypoints": [(10 / W, 10 / H, 2, -1.0),
                         (28 / W, 18.5 / H, 2, -1.0)]},
          {"box": box(min(xs), min(ys), max(xs), max(ys)), "text": "dog",
           "id": "3"},
          {"box": box(4.0, 36.0, 12.0, 44.0), "text": "ball", "id": "4"},
          {"box": box(20, 30, 29, 36), "text": "blob", "id": "5"},
          {"box": box(2, 30, 22, 44), "text": "dog", "id": "7"},
      ],
      "b.jpg": [
          {"box": box(2, 2, 40, 30), "text": "cat", "id": "0",
           "keypoints": [(20 / W, 15 / H, 2, -1.0), (0.0, 0.0, 0, -1.0),
                         (12 / W, 3 / H, 2, -1.0)]}],
      "deep/x/y/ünï 猫.png": [{"box": box(1, 2, 63, 47), "text": "cat",
                              "id": "0"}],
      "sub/emb.json/gone.png": [{"box": box(4, 4, 20, 24), "text": "cat",
                                 "id": "0"}],
      "both.png": [{"box": box(0, 0, 10, 10), "text": "dog", "id": "0"}],
      "empty.jpg": [],
      "edge/clip.jpg": [{"box": box(52, 16, 64, 32), "text": "ball",
                         "id": "0"}],
      "bad/shapes.jpg": [{"box": box(2, 2, 12, 14), "text": "cat", "id": "6"},
                         {"box": box(0, 0, 3, 3), "text": "cat", "id": "9"},
                         {"box": box(5, 5, 8, 8), "text": "dog", "id": "10"}],
  }, embedded


@pytest.fixture(scope="module")
def main(tmp_path_factory):
  root = tmp_path_factory.mktemp("labelme_main")
  expected, embedded = _main(root)
  data_dir = tmp_path_factory.mktemp("labelme_main_out")
  builder = helpers.build(root, data_dir)
  return root, builder, helpers.read_all(builder), expected, embedded


def test_every_shape_reads_back(main):
  """Boxes (to 1e-6), labels and keypoints as LabelMe's writer was given
  them; the layout is detected."""
  _, builder, examples, expected, _ = main
  names = ah.class_names(builder)
  assert names == sorted(["ball", "blob", "cat", "day", "dog"])
  assert builder.info.metadata["layout"].startswith("labelme")
  assert sorted(examples) == sorted(expected)
  for rel, objs in expected.items():
    got = ah.objects(examples[rel], names)
    assert len(got) == len(objs), (rel, got)
    for i, (g, w) in enumerate(zip(got, objs)):
      w = dict(w, label=names.index(w["text"]))
      w.setdefault("keypoints", [])
      ah.assert_object(g, w, f"{rel} object {i}")


def test_keypoint_names_in_order_first_seen(main):
  _, builder, _, _, _ = main
  assert builder.info.metadata["keypoint_names"] == {
      "cat": ["nose", "tail", "ear"]}


def test_polygon_masks_match_pycocotools(main):
  """The polygon's mask against pycocotools' own rasterization (IoU >=
  0.99); two polygons of one label and group_id are one object, their
  union; the mask shape is exactly LabelMe's array at its corner; the
  rectangle and the circle have empty masks."""
  _, _, examples, _, _ = main
  got = examples["a.jpg"]["objects"]["mask"][..., 0]
  assert got.shape == (5, H, W)

  def iou(a, b):
    return (a & b).sum() / (a | b).sum()

  def rasterized(*parts):
    rle = mask_utils.frPyObjects(
        [[v for p in part for v in p] for part in parts], H, W)
    return mask_utils.decode(mask_utils.merge(rle)).astype(bool)
  assert iou(got[1] > 0, rasterized(POLYGON)) >= 0.99
  assert iou(got[4] > 0, rasterized(PART_A, PART_B)) >= 0.99
  placed = np.zeros((H, W), bool)
  x, y = MASK_AT
  placed[y:y + MASK.shape[0], x:x + MASK.shape[1]] = MASK > 0
  assert ((got[3] > 0) == placed).all()
  assert not got[0].any() and not got[2].any()


def test_flags_and_other_fields(main):
  """True flags are image labels; flags, description, group_id in extra."""
  _, builder, examples, _, _ = main
  names = ah.class_names(builder)
  a = examples["a.jpg"]
  assert [names[i] for i in a["labels"]] == ["day"]
  extra = json.loads(a["extra"])
  assert extra["flags"] == {"day": True, "night": False}
  assert extra["shapes"]["0"] == {"description": "sleepy",
                                  "flags": {"occluded": True}, "group_id": 1}
  assert extra["objects"]["7"] == {"shapes": [7, 8]}
  assert extra["version"] == metadata.version("labelme")
  assert list(examples["b.jpg"]["labels"]) == []


def test_embedded_image_data(main):
  """imageData stands in for a missing file, and is not used when the file
  is there."""
  root, _, examples, _, embedded = main
  emb = examples["sub/emb.json/gone.png"]
  want = np.asarray(helpers.photo(4, W, H))
  assert (emb["image"] == want).all()  # PNG: lossless.
  both = examples["both.png"]["image"].astype(int)
  assert (both == np.asarray(helpers.photo(5, W, H))).all()  # The file's.
  not_used = np.asarray(helpers.photo(6, W, H)).astype(int)
  assert np.abs(both - not_used).mean() > 10
  assert base64.b64decode(json.loads((root / "sub/emb.json").read_text())[
      "imageData"]) == embedded


def test_bad_input_is_reported_and_counted(main):
  """Each bad case a problem naming the file (and shape index); the rest
  kept; found = written + rejected."""
  root, builder, examples, _, _ = main
  report = helpers.report(builder)
  for needles in (("not_json.json", "not a valid JSON"),
                  ("no_shapes.json", "no `shapes` key"),
                  ("missing.json", "nowhere.jpg", "no imageData"),
                  ("escape.json", "outside the data folder"),
                  ("notes.json", "not a LabelMe file"),
                  ("broken.jpg",)):
    ah.find_problem(report, *needles, kind="rejected")
  for index, needle in ((0, "two numbers"), (1, "at least 3"),
                        (2, "two corners"), (3, "non-empty string"),
                        (4, "no group_id"), (5, "'ellipse'"),
                        (7, "must be a number"), (8, "group_id 9"),
                        (11, "several objects have it (cat, dog)")):
    ah.find_problem(report, "shapes.json", f"shapes[{index}]", needle,
                    kind="rejected")
  ah.find_problem(report, "a.json", "shapes[6]", "'line'", kind="rejected")
  ah.find_problem(report, "clip.json", "shapes[0]", "clipped",
                  kind="changed")
  ah.find_problem(report, "lonely.jpg", "not annotated", kind="warning")
  assert not [p for p in ah.problems(report, "warning")
              if "not_json.jpg" in p["file"] or "no_shapes.jpg" in p["file"]]
  counts = report["counts"]
  for split, c in counts.items():
    assert c["found"] == c["written"] + c["rejected"], (split, c)
  assert sum(c["written"] for c in counts.values()) == len(examples)
  assert sum(c["rejected"] for c in counts.values()) == 6


def test_claim():
  """Certain on a LabelMe file at any depth; not on other JSON files."""
  assert labelme.claim(str(helpers.DUMMY_DATA / "coco"), OPTIONS) is None
  assert readers.detect_layout(str(helpers.DUMMY_DATA / "coco"),
                               OPTIONS) == "coco"


def test_claim_depth_and_ties(tmp_path):
  deep = tmp_path / "one" / "two" / "three"
  save(deep, "p.json", [shape("cat", [[1, 1], [5, 5]], "rectangle")],
       image="p.jpg")
  (tmp_path / "config.json").write_text(json.dumps({"shapes": 1}))
  got = labelme.claim(str(tmp_path), OPTIONS)
  assert got.certainty == common.CERTAIN
  assert got.evidence == ("one/two/three/p.json",)
  assert readers.detect_layout(str(tmp_path), OPTIONS) == "labelme"
  assert labelme.claim(str(tmp_path), dataclasses.replace(
      OPTIONS, annotations="one/two/three/p.json")) is None
  # A COCO file beside it: two certain answers, the build names both.
  ah.write_json(tmp_path / "annotations" / "instances_train.json",
                {"images": [], "annotations": [], "categories": []})
  with pytest.raises(records.InputError, match="coco .*labelme"):
    readers.detect_layout(str(tmp_path), OPTIONS)


def test_scan_errors_without_building(tmp_path):
  """Cases that need no image decode: a mask that does not fit its corners,
  a wrong group_id type, imageData that is not base64, a duplicate image."""
  helpers.write_image(tmp_path / "a.jpg", width=W, height=H)
  bad_mask = b64_png(np.ones((3, 3), np.uint8))
  save(tmp_path, "a.json", [
      shape("blob", [[1, 1], [10, 10]], "mask", mask=bad_mask),
      shape("cat", [[1, 1], [5, 5]], "rectangle", group_id="x"),
      shape("cat", [[1, 1], [5, 5]], "rectangle")], image_path="a.jpg")
  save(tmp_path, "copy.json", [], image_path="a.jpg")
  ah.write_json(tmp_path / "b.json", {
      "shapes": [], "imagePath": None, "imageData": "%%%not base64"})
  result = readers.scan(str(tmp_path), "auto", OPTIONS)
  by_text = {str(p): p for p in result.problems}
  text = "\n".join(by_text)
  assert "a.json [a.jpg: shapes[0]]: the mask is 3x3 pixels" in text
  assert "a.json [a.jpg: shapes[1]]: group_id must be an integer" in text
  assert "b.json: imageData is not valid base64" in text
  assert "copy.json: its image a.jpg is already the image of a.json" in text
  assert [r.file_name for r in result.records] == ["a.jpg"]


def _split_folders(root, per_split=6):
  """train/, val/, test/: `per_split` good images and a broken one each."""
  n = 0
  for split in ("train", "val", "test"):
    for i in range(per_split):
      n += 1
      save(root, f"{split}/img{i}.json",
           [shape("cat" if i % 2 else "dog", [[1, 2], [30, 20 + i]],
                  "rectangle")], image=f"img{i}.jpg", seed=n)
    (root / split / "broken.jpg").write_bytes(b"not an image")
    save(root, f"{split}/broken.json",
         [shape("cat", [[1, 1], [5, 5]], "rectangle")], image_path="broken.jpg")


def test_split_folders_twenty_images(tmp_path):
  """20 files in split folders (a broken image in each split): the folders
  give the splits, found = written + rejected per split."""
  _split_folders(tmp_path)
  (tmp_path / "train" / "broken2.jpg").write_bytes(b"\x89PNG broken")
  save(tmp_path, "train/broken2.json", [], image_path="broken2.jpg")
  builder = helpers.build(tmp_path, tmp_path / "out")
  examples = helpers.read_all(builder)
  assert len(examples) == 18
  assert {f"{s}/img{i}.jpg": {"val": "validation"}.get(s, s)
          for s in ("train", "val", "test") for i in range(6)} == {
              k: ex["split"] for k, ex in examples.items()}
  report = helpers.report(builder)
  assert report["counts"] == {
      "train": {"found": 8, "written": 6, "rejected": 2},
      "validation": {"found": 7, "written": 6, "rejected": 1},
      "test": {"found": 7, "written": 6, "rejected": 1}}
  got = ah.objects(examples["val/img3.jpg"], ah.class_names(builder))
  ah.assert_object(got[0], {"box": (1 / W, 2 / H, 30 / W, 23 / H),
                            "text": "cat"}, "val/img3.jpg")


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_images(tmp_path, n):
  for i in range(n):
    save(tmp_path, f"im{i}.json", [shape("cat", [[1, 1], [9, 9]],
                                         "rectangle")], image=f"im{i}.jpg",
         seed=i)
  builder = helpers.build(tmp_path, tmp_path / "out")
  assert len(helpers.read_all(builder)) == n


@pytest.mark.slow
def test_tfds_build_command(tmp_path):
  """The real `tfds build` command on a LabelMe folder, read back in a
  fresh process."""
  data = tmp_path / "data"
  save(data, "x/one.json", [shape("cat", [[2, 4], [30, 40]], "rectangle")],
       image="one.jpg")
  out = helpers.run(helpers.build_command(data, tmp_path / "out"))
  assert out.returncode == 0, out.stderr[-3000:]
  assert "labelme" in out.stderr
  loaded = helpers.run([sys.executable, "-c", (
      "import sys, tensorflow_datasets as tfds\n"
      "ds = tfds.load('my_images', split='train', data_dir=sys.argv[1])\n"
      "for ex in tfds.as_numpy(ds):\n"
      "  print(ex['file_name'].decode(), ex['objects']['bbox'].tolist())\n"),
      str(tmp_path / "out")])
  assert loaded.returncode == 0, loaded.stderr[-3000:]
  name, bbox = loaded.stdout.strip().splitlines()[-1].split(" ", 1)
  assert name == "x/one.jpg"
  np.testing.assert_allclose(json.loads(bbox),
                             [[4 / H, 2 / W, 40 / H, 30 / W]], atol=1e-6)


def test_circle_polygon_is_close_to_the_circle():
  """Circles merged into a region become polygons (labelme2coco's)."""
  pts = np.array(labelme._circle_polygon(10.0, 20.0, 5.0)).reshape(-1, 2)
  r = np.hypot(pts[:, 0] - 10, pts[:, 1] - 20)
  assert np.allclose(r, 5.0) and len(pts) >= 12


def test_labels_file_fixes_the_classes(tmp_path):
  """With `labels.txt`, a shape or a flag not listed is reported and left
  out; the listed ones get their line's index."""
  (tmp_path / "labels.txt").write_text("dog\ncat\nnight\n")
  save(tmp_path, "a.json", [
      shape("cat", [[1, 1], [5, 5]], "rectangle"),
      shape("cow", [[1, 1], [5, 5]], "rectangle")],
      image="a.jpg", flags={"night": True, "rain": True})
  result = readers.scan(str(tmp_path), "auto", OPTIONS)
  (rec,) = result.records
  assert result.class_names == ["dog", "cat", "night"]
  assert [(o.label, o.text, o.id) for o in rec.objects] == [(1, "cat", "0")]
  assert (rec.labels, rec.labels_text) == ((2,), ("night",))
  text = "\n".join(map(str, result.problems))
  assert "a.json [a.jpg: object 1]: object label 'cow' is not among" in text
  assert "a.json [a.jpg: labels]: image label 'rain' is not among" in text
