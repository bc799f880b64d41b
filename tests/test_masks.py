"""Segmentation masks: COCO instance masks and folder pairs, scan + worker.

The reference is the real `pycocotools` (`COCO.annToMask` of the same file).
End-to-end builds read back with `tfds.load` are in test_segmentation_build.py.
"""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
from PIL import Image
from pycocotools import coco as coco_api
from pycocotools import mask as mask_utils

import helpers
from image_folder_tfds import images
from image_folder_tfds import masks
from image_folder_tfds import pipeline
from image_folder_tfds import readers
from image_folder_tfds import records

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}]


def _png(data: bytes) -> np.ndarray:
  img = Image.open(io.BytesIO(data))
  assert img.format == "PNG" and img.mode == "L"
  return np.asarray(img)


def _crowd_mask(h, w):
  m = np.zeros((h, w), np.uint8, order="F")
  m[3:20, 5:31] = 1
  m[10:12, 0:40] = 1
  return m


def coco_annotations(h=30, w=40):
  """Polygons (two parts), uncompressed RLE, compressed RLE."""
  crowd = _crowd_mask(h, w)
  compressed = mask_utils.encode(crowd)
  counts = []  # Uncompressed: column-major runs, starting with 0s.
  flat = crowd.flatten(order="F")
  value, run = 0, 0
  for v in flat:
    if v != value:
      counts.append(run)
      value, run = v, 0
    run += 1
  counts.append(run)
  return [
      {"id": 11, "image_id": 1, "category_id": 1, "bbox": [2, 3, 20, 15],
       "area": 123.5, "iscrowd": 0,
       "segmentation": [[2.5, 3.25, 21.75, 4.0, 12.0, 17.5],
                        [25.0, 20.0, 38.5, 21.0, 38.0, 28.5, 26.0, 27.0]]},
      {"id": 12, "image_id": 1, "category_id": 3, "bbox": [0, 3, 40, 17],
       "area": 400.0, "iscrowd": 1,
       "segmentation": {"size": [h, w], "counts": counts}},
      {"id": 13, "image_id": 1, "category_id": 3, "bbox": [0, 3, 40, 17],
       "area": 401.0, "iscrowd": 1,
       "segmentation": {"size": [h, w],
                        "counts": compressed["counts"].decode()}},
      {"id": 14, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5],
       "area": 25.0, "iscrowd": 0},  # No segmentation: an empty mask.
  ]


def scan_and_process(root, max_side=None):
  result = readers.scan(root, "auto", readers.ReadOptions(
      split_fractions={"train": 1.0}))
  outcomes = list(pipeline.process_all(
      result.records, images.ImageOptions(max_side=max_side), 0))
  return result, outcomes


def test_coco_masks_equal_pycocotools_decode(tmp_path):
  path = helpers.write_coco(
      tmp_path, "train", [{"id": 1, "file_name": "a.jpg", "width": 40,
                           "height": 30}], coco_annotations(), CATEGORIES,
      kind="instances")
  result, (outcome,) = scan_and_process(tmp_path)
  assert not [p for p in result.problems + list(outcome.problems)
              if p.kind != "warning"]
  api = coco_api.COCO(str(path))
  anns = api.loadAnns(api.getAnnIds(imgIds=[1]))
  assert [o.id for o in outcome.objects] == [str(a["id"]) for a in anns]
  assert len(outcome.masks) == 4
  for ann, png, obj in zip(anns, outcome.masks, outcome.objects):
    expected = (api.annToMask(ann) if "segmentation" in ann
                else np.zeros((30, 40), np.uint8))
    np.testing.assert_array_equal(_png(png), expected)
    assert obj.area == pytest.approx(ann["area"] / (40 * 30))
  assert _png(outcome.masks[1]).any() and not _png(outcome.masks[3]).any()
  warning, = [p for p in result.problems if "no segmentation" in p.reason]
  assert "1 of 4 annotations" in warning.reason


def _exif(orientation: int) -> bytes:
  exif = Image.Exif()
  exif[0x0112] = orientation
  return exif.tobytes()


def _nearest(mask: np.ndarray, h: int, w: int) -> np.ndarray:
  """Nearest-neighbour sampling at pixel centres, written out."""
  rows = ((np.arange(h) + 0.5) * mask.shape[0] / h).astype(int)
  cols = ((np.arange(w) + 0.5) * mask.shape[1] / w).astype(int)
  return mask[rows][:, cols]


@pytest.mark.parametrize("max_side", [None, 20])
def test_coco_mask_of_a_rotated_image_turns_with_it(tmp_path, max_side):
  # A PNG stored 40 wide x 30 high, displayed 30 x 40 (EXIF orientation 6).
  # Its red channel is the crowd mask: after the build, the stored image and
  # its mask must still coincide, pixel for pixel.
  raw = _crowd_mask(30, 40)
  pixels = np.zeros((30, 40, 3), np.uint8)
  pixels[..., 0] = raw * 255
  (tmp_path / "train2017").mkdir()
  Image.fromarray(pixels).save(tmp_path / "train2017" / "r.png",
                               exif=_exif(6))
  rle = mask_utils.encode(np.asfortranarray(raw))
  anns = [{"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 30, 40],
           "area": float(raw.sum()), "iscrowd": 1,
           "segmentation": {"size": [30, 40], "counts": rle["counts"].decode()}},
          # Drawn on the displayed image (30 wide, 40 high): not turned.
          {"id": 2, "image_id": 5, "category_id": 1, "bbox": [1, 1, 9, 9],
           "area": 50.0, "iscrowd": 0,
           "segmentation": [[1.0, 1.0, 10.0, 1.0, 10.0, 10.0, 1.0, 10.0]]}]
  helpers.write_coco(tmp_path, "train", [], anns, CATEGORIES, kind="instances")
  data = json.loads((tmp_path / "annotations" /
                     "instances_train2017.json").read_text())
  data["images"] = [{"id": 5, "file_name": "r.png", "width": 30, "height": 40}]
  (tmp_path / "annotations" / "instances_train2017.json").write_text(
      json.dumps(data))
  _, (outcome,) = scan_and_process(tmp_path, max_side=max_side)
  image = outcome.image
  assert image.orientation == 6
  assert (image.width, image.height) == ((15, 20) if max_side else (30, 40))
  turned = np.rot90(mask_utils.decode(rle), k=-1)  # 90 degrees clockwise.
  polygon = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
      anns[1]["segmentation"], 40, 30)))
  expected = [_nearest(turned, image.height, image.width),
              _nearest(polygon, image.height, image.width)]
  for png, want in zip(outcome.masks, expected, strict=True):
    np.testing.assert_array_equal(_png(png), want)
  if not max_side:  # Lossless PNG, not resized: the image itself agrees.
    stored = np.asarray(Image.open(io.BytesIO(image.data)))[..., 0] > 127
    np.testing.assert_array_equal(_png(outcome.masks[0]), stored)


def test_bad_segmentations_are_reported_and_their_objects_dropped(tmp_path):
  good = [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]]
  anns = [
      {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8],
       "segmentation": [[1.0, 1.0, 9.0, 1.0]]},  # 2 points.
      {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8],
       "segmentation": {"size": [30, 40], "counts": [10, 5, 3]}},
      {"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8],
       "segmentation": {"size": [30, 40], "counts": "0"}},
      {"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8],
       "segmentation": {"size": [31, 40], "counts": [1240]}},  # Wrong size.
      {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8],
       "segmentation": [[1.0, 1.0, 9.0, "x", 9.0, 9.0]]},
      {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8],
       "segmentation": good},
  ]
  path = helpers.write_coco(
      tmp_path, "train", [{"id": 1, "file_name": "a.jpg", "width": 40,
                           "height": 30}], anns, CATEGORIES, kind="instances")
  result, (outcome,) = scan_and_process(tmp_path)
  problems = {p.item: p for p in result.problems + list(outcome.problems)
              if p.kind == "rejected"}
  # The scan names the image as the file does, the worker by its path.
  assert sorted(problems) == [f"a.jpg: object {i}" for i in (1, 2, 3, 5)] + [
      "train2017/a.jpg: object 4"]
  reasons = {item.rsplit(" ", 1)[1]: p.reason for item, p in problems.items()}
  assert "polygon of 2 points: at least 3" in reasons["1"]
  assert "counts sum to 18, not height x width = 30 x 40 = 1200" in reasons["2"]
  assert "counts sum to 0, not height x width" in reasons["3"]
  assert "mask is 31x40 (height x width), the image 30x40" in reasons["4"]
  assert "not a finite number" in reasons["5"]
  for p in problems.values():
    assert p.file == str(path) and p.reason.startswith("segmentation")
  assert [o.id for o in outcome.objects] == ["6"]
  np.testing.assert_array_equal(
      _png(outcome.masks[0]),
      mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(good, 30, 40))))


def test_rle_string_parser_matches_pycocotools():
  rng = np.random.default_rng(0)
  for _ in range(20):
    m = np.asfortranarray((rng.random((17, 23)) > rng.random()).astype(np.uint8))
    rle = mask_utils.encode(m)
    counts = masks.rle_string_counts(rle["counts"])
    assert counts.sum() == 17 * 23
    back = mask_utils.frPyObjects(
        {"size": [17, 23], "counts": counts.tolist()}, 17, 23)
    assert back["counts"] == rle["counts"]
  with pytest.raises(masks.MaskError, match="ends inside a number"):
    masks.rle_string_counts(b"0o")
  with pytest.raises(masks.MaskError, match="holds ' '"):
    masks.rle_string_counts(b"01 ")
  with pytest.raises(masks.MaskError, match="negative count"):
    masks.rle_string_counts(b"0O")  # "O": 0x1f with the sign bit, -1.


def test_segmentations_live_in_a_file_not_in_the_records(tmp_path):
  helpers.write_coco(
      tmp_path, "train", [{"id": 1, "file_name": "a.jpg", "width": 40,
                           "height": 30}], coco_annotations(), CATEGORIES,
      kind="instances")
  result = readers.scan(tmp_path, "coco", readers.ReadOptions(
      split_fractions={"train": 1.0}))
  (rec,) = result.records
  assert [o.segmentation >= 0 for o in rec.objects] == [True] * 3 + [False]
  # Pickled (to a worker, to Beam): the file's path as a plain string.
  assert type(pickle.loads(pickle.dumps(rec)).segmentation_file) is str
  store_path = str(rec.segmentation_file)
  blob = masks.read_blob(store_path, rec.objects[0].segmentation)
  assert masks.unpack(blob)[2] == coco_annotations()[0]["segmentation"]
  del rec, result
  import gc  # pylint: disable=g-import-not-at-top
  gc.collect()
  assert not __import__("os").path.exists(store_path)


def test_person_keypoints_repeating_instances_is_one_object(tmp_path):
  image = [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 30}]
  seg = [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]]
  ann = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8],
         "segmentation": seg}
  helpers.write_coco(tmp_path, "train", image, [ann], CATEGORIES,
                     kind="instances")
  helpers.write_coco(tmp_path, "train", image, [ann], CATEGORIES,
                     kind="person_keypoints")
  result, (outcome,) = scan_and_process(tmp_path)
  assert not [p for p in result.problems if p.kind != "warning"]
  assert len(outcome.objects) == len(outcome.masks) == 1


# --- Folder pairs -------------------------------------------------------------


def _pairs(root, split=None, n=2, size=(40, 30), classes=("bg", "cat", "dog")):
  base = root / split if split else root
  (base / "images").mkdir(parents=True)
  (base / "masks").mkdir()
  out = {}
  for i in range(n):
    helpers.write_image(base / "images" / f"ü{i}.jpg", seed=i, width=size[0],
                        height=size[1])
    label = (np.arange(size[0] * size[1]).reshape(size[1], size[0]) + i) % len(
        classes)
    Image.fromarray(label.astype(np.uint8), "L").save(
        base / "masks" / f"ü{i}.png")
    out[f"ü{i}"] = label
  (root / "labels.txt").write_text("\n".join(classes) + "\n")
  return out


def test_folder_pairs_are_detected_and_masks_stored_losslessly(tmp_path):
  expected = _pairs(tmp_path, "train", n=2)
  expected_val = _pairs(tmp_path, "val", n=1)
  assert readers.detect_layout(tmp_path, readers.ReadOptions(
      split_fractions={})) == "mask_pairs"
  result, outcomes = scan_and_process(tmp_path)
  assert result.class_names == ["bg", "cat", "dog"]
  assert sorted((o.record.split, o.record.key) for o in outcomes) == [
      ("train", "train/images/ü0.jpg"), ("train", "train/images/ü1.jpg"),
      ("validation", "val/images/ü0.jpg")]
  for o in outcomes:
    name = o.record.key.rsplit("/", 1)[1][:-4]
    want = (expected_val if o.record.split == "validation" else expected)[name]
    np.testing.assert_array_equal(_png(o.segmentation_mask), want)


def test_flat_folder_pair_with_a_palette_mask(tmp_path):
  _pairs(tmp_path, n=1)
  label = np.zeros((30, 40), np.uint8)
  label[5:9, 2:30] = 2
  pal = Image.fromarray(label, "P")
  pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
  pal.save(tmp_path / "masks" / "ü0.png")
  result, (outcome,) = scan_and_process(tmp_path)
  assert result.layout.startswith("mask pairs: DIR/images/")
  np.testing.assert_array_equal(_png(outcome.segmentation_mask), label)


def test_folder_pair_problems(tmp_path):
  _pairs(tmp_path, "train", n=5)
  base = tmp_path / "train"
  (base / "masks" / "ü0.png").unlink()  # Missing mask.
  Image.fromarray(np.zeros((31, 40), np.uint8)).save(base / "masks" / "ü1.png")
  Image.fromarray(np.full((30, 40), 3, np.uint8)).save(base / "masks" / "ü2.png")
  Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(base / "masks" / "ü3.png")
  Image.fromarray(np.zeros((30, 40), np.uint8)).save(base / "masks" / "extra.png")
  (base / "masks" / "notes.txt").write_text("x")
  result, outcomes = scan_and_process(tmp_path)
  rejected = {p.file.rsplit("/", 1)[1]: p.reason
              for p in result.problems + [p for o in outcomes for p in o.problems]
              if p.kind == "rejected"}
  assert rejected["ü0.jpg"].startswith("no mask: expected")
  assert "mask is 31x40 (height x width), the image 30x40" in rejected["ü1.jpg"]
  assert "has the value 3 (at row 0, column 0): there are 3 classes" in (
      rejected["ü2.jpg"])
  assert "mode RGB (3 channels)" in rejected["ü3.jpg"]
  assert [o.record.key for o in outcomes if o.image] == ["train/images/ü4.jpg"]
  warnings = {p.file.rsplit("/", 1)[1]: p.reason for p in result.problems
              if p.kind == "warning"}
  assert warnings == {"extra.png": "mask without an image: not used",
                      "notes.txt": "not a .png file: masks are PNG label"
                      " images, not used"}


def test_folder_pairs_need_a_labels_file(tmp_path):
  _pairs(tmp_path, n=1)
  (tmp_path / "labels.txt").unlink()
  with pytest.raises(records.InputError, match="needs a labels file"):
    readers.scan(tmp_path, "auto", readers.ReadOptions(split_fractions={}))


def test_check_cache_keeps_the_orientation_masks_turn_by():
  from image_folder_tfds import check_cache  # pylint: disable=g-import-not-at-top
  options = images.ImageOptions(keep_bytes=False)
  pixels = Image.fromarray(np.zeros((30, 40, 3), np.uint8))
  buf = io.BytesIO()
  pixels.save(buf, "PNG", exif=_exif(6))
  image = images.load_image(buf.getvalue(), options)
  assert image.orientation == 6
  value = check_cache.entry(buf.getvalue(), image, None, options)
  assert check_cache.decode(value, buf.getvalue(), options) == image
