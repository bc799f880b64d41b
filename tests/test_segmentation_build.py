"""Masks end to end: COCO instance masks and folder pairs, built and read back.

Every mask read back (`tfds.load`; Model Garden's records parsed with its
`TfExampleDecoder(include_mask=True)` spec) equals `pycocotools`' decode of
the same annotation (`COCO.annToMask`), pixel for pixel.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image
from pycocotools import coco as coco_api
from pycocotools import mask as mask_utils

import helpers
from image_folder_tfds import cli
from image_folder_tfds import visualize
from image_folder_tfds.config import MyImagesConfig
from test_masks import CATEGORIES, coco_annotations, _exif, _nearest, _pairs
from test_model_garden import MODEL_GARDEN_DETECTION_SPEC, shard_examples

# Model Garden, official/vision/dataloaders/tf_example_decoder.py:
# TfExampleDecoder.__init__ with include_mask=True adds this key.
MASK_SPEC = dict(MODEL_GARDEN_DETECTION_SPEC, **{
    "image/object/mask": tf.io.VarLenFeature(tf.string)})


def _decode_masks(parsed):
  """`TfExampleDecoder._decode_masks`, as Model Garden writes it."""
  def decode_png_mask(png_bytes):
    mask = tf.squeeze(
        tf.io.decode_png(png_bytes, channels=1, dtype=tf.uint8), axis=-1)
    mask = tf.cast(mask, dtype=tf.float32)
    mask.set_shape([None, None])
    return mask
  height, width = parsed["image/height"], parsed["image/width"]
  masks = tf.sparse.to_dense(parsed["image/object/mask"], default_value="")
  return tf.cond(
      pred=tf.greater(tf.size(input=masks), 0),
      true_fn=lambda: tf.map_fn(decode_png_mask, masks, dtype=tf.float32),
      false_fn=lambda: tf.zeros([0, height, width], dtype=tf.float32)).numpy()


def make_coco(root):
  """train: a.jpg (every segmentation form), e.jpg (no annotation); val:
  v.jpg (a polygon). Returns {file_name: (COCO api, image id)}."""
  train = helpers.write_coco(
      root, "train", [{"id": 1, "file_name": "a.jpg", "width": 40,
                       "height": 30},
                      {"id": 2, "file_name": "e.jpg", "width": 20,
                       "height": 20}],
      coco_annotations(), CATEGORIES, kind="instances")
  val = helpers.write_coco(
      root, "val", [{"id": 9, "file_name": "v.jpg", "width": 24,
                     "height": 16}],
      [{"id": 90, "image_id": 9, "category_id": 3, "bbox": [2, 2, 10, 10],
        "area": 60.0, "iscrowd": 0,
        "segmentation": [[2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 3.5, 9.25]]}],
      CATEGORIES, kind="instances")
  apis = {}
  for path, folder in ((train, "train2017"), (val, "val2017")):
    api = coco_api.COCO(str(path))
    for iid, image in api.imgs.items():
      apis[f"{folder}/{image['file_name']}"] = (api, iid)
  return apis


def expected_masks(api, iid):
  h, w = api.imgs[iid]["height"], api.imgs[iid]["width"]
  anns = api.loadAnns(api.getAnnIds(imgIds=[iid]))
  return anns, [api.annToMask(a) if "segmentation" in a
                else np.zeros((h, w), np.uint8) for a in anns]


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
  root = tmp_path_factory.mktemp("coco_masks")
  apis = make_coco(root)
  out = tmp_path_factory.mktemp("out")
  return apis, out, helpers.build(root, out)


def test_coco_masks_load_back_equal_pycocotools(coco):
  apis, out, builder = coco
  assert builder.info.features["objects"]["mask"].shape == (None, None, 1)
  seen = set()
  for split in ("train", "validation"):
    for ex in tfds.as_numpy(tfds.load("my_images", data_dir=str(out),
                                      split=split)):
      name = ex["file_name"].decode()
      seen.add(name)
      anns, want = expected_masks(*apis[name])
      got = ex["objects"]["mask"]
      assert got.shape[0] == len(want)
      assert [i.decode() for i in ex["objects"]["id"]] == [
          str(a["id"]) for a in anns]
      for i, (ann, mask) in enumerate(zip(anns, want)):
        np.testing.assert_array_equal(got[i][..., 0], mask, err_msg=name)
        h, w = mask.shape
        assert ex["objects"]["area"][i] == np.float32(ann["area"] / (w * h))
  assert seen == set(apis)


def test_dataset_without_segmentations_has_no_mask_feature(tmp_path):
  helpers.write_coco(
      tmp_path / "in", "train", [{"id": 1, "file_name": "a.jpg", "width": 40,
                                  "height": 30}],
      [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
      CATEGORIES, kind="instances")
  builder = helpers.build(tmp_path / "in", tmp_path / "out")
  assert "mask" not in builder.info.features["objects"]
  assert "segmentation_mask" not in builder.info.features


def test_model_garden_masks_decode_with_tf_example_decoder(tmp_path_factory):
  root = tmp_path_factory.mktemp("coco_mg_masks")
  apis = make_coco(root)
  out = tmp_path_factory.mktemp("out")
  builder = helpers.build(root, out, config=MyImagesConfig(
      name="mg", output_format="model_garden"))
  assert builder.info.metadata["instance_masks"] is True
  seen = set()
  for examples in shard_examples(builder).values():
    for s in examples:
      keys = set(tf.train.Example.FromString(s).features.feature)
      assert "image/object/mask" in keys
      p = tf.io.parse_single_example(s, MASK_SPEC)
      name = tf.train.Example.FromString(s).features.feature[
          "image/filename"].bytes_list.value[0].decode()
      seen.add(name)
      anns, want = expected_masks(*apis[name])
      got = _decode_masks(p)
      h, w = int(p["image/height"]), int(p["image/width"])
      assert got.shape == (len(want), h, w)
      for ann, g, m in zip(anns, got, want):
        np.testing.assert_array_equal(g, m.astype(np.float32), err_msg=name)
      np.testing.assert_allclose(
          tf.sparse.to_dense(p["image/object/area"]).numpy(),
          [a["area"] for a in anns], rtol=1e-6)
  assert seen == set(apis)


def test_folder_pairs_build_and_load(tmp_path):
  want = _pairs(tmp_path / "in", "train", n=2)
  want_val = _pairs(tmp_path / "in", "val", n=1)
  builder = helpers.build(tmp_path / "in", tmp_path / "out")
  feature = builder.info.features["segmentation_mask"]
  assert feature.shape == (None, None, 1) and feature.encoding_format == "png"
  assert "objects" not in builder.info.features
  assert builder.info.metadata["class_names"] == ["bg", "cat", "dog"]
  assert "label" not in builder.info.features
  assert builder.info.supervised_keys == ("image", "segmentation_mask")
  got = {}
  for split, expected in (("train", want), ("validation", want_val)):
    for ex in tfds.as_numpy(tfds.load("my_images", data_dir=str(tmp_path / "out"),
                                      split=split)):
      name = ex["file_name"].decode().rsplit("/", 1)[1][:-4]
      np.testing.assert_array_equal(ex["segmentation_mask"][..., 0],
                                    expected[name])
      assert ex["segmentation_mask"].shape[:2] == ex["image"].shape[:2]
      got[(split, name)] = True
  assert len(got) == 3


def test_show_draws_masks_over_the_image(coco, tmp_path):
  _, _, builder = coco
  out = tmp_path / "grid.png"
  assert cli.main(["show", str(builder.data_path), "-o", str(out), "--tile",
                   "256", "-n", "3", "--split", "validation"]) == cli.EXIT_OK
  canvas = np.asarray(Image.open(out).convert("RGB")).astype(int)
  # v.jpg (24x16) in its 256 px tile: a pixel well inside the polygon (and
  # away from the box's outline and name) is tinted in the dog colour, one
  # far outside is not.
  x0, y0, w, h = visualize.Grid(1, tile=256).placement(0, 24, 16)
  (ex,) = tfds.as_numpy(builder.as_dataset(split="validation"))
  image = ex["image"].astype(int)
  inside, outside = (10, 9), (20, 14)  # (x, y) in the image.
  for (x, y), tinted in ((inside, True), (outside, False)):
    cx, cy = int(x0 + (x + 0.5) * w / 24), int(y0 + (y + 0.5) * h / 16)
    pixel, plain = canvas[cy, cx], image[y, x]
    blend = (1 - visualize.MASK_ALPHA) * plain + visualize.MASK_ALPHA * (
        np.asarray(visualize.class_color(1)))
    if tinted:
      assert np.abs(pixel - blend).max() < 40, (pixel, blend)
    else:
      assert np.abs(pixel - blend).max() > np.abs(pixel - plain).max()


@pytest.mark.slow
def test_tfds_build_rotated_and_resized_masks(tmp_path):
  """`tfds build` with max_side: masks of an EXIF-rotated PNG read back
  equal to pycocotools' decode, turned as the image and nearest-resized."""
  root = tmp_path / "in"
  (root / "train2017").mkdir(parents=True)
  raw = np.zeros((30, 40), np.uint8)
  raw[3:20, 5:31] = 1
  pixels = np.zeros((30, 40, 3), np.uint8)
  pixels[..., 1] = raw * 200
  Image.fromarray(pixels).save(root / "train2017" / "r.png", exif=_exif(6))
  rle = mask_utils.encode(np.asfortranarray(raw))
  ann = {"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 30, 40],
         "area": float(raw.sum()), "iscrowd": 1,
         "segmentation": {"size": [30, 40], "counts": rle["counts"].decode()}}
  (root / "annotations").mkdir()
  (root / "annotations" / "instances_train2017.json").write_text(json.dumps({
      "images": [{"id": 5, "file_name": "r.png", "width": 30, "height": 40}],
      "annotations": [ann], "categories": CATEGORIES}))
  out = tmp_path / "out"
  r = helpers.run(helpers.build_command(
      root, out, "--config", json.dumps({"name": "small", "max_side": 16})))
  assert r.returncode == 0, r.stderr[-3000:]
  (ex,) = tfds.as_numpy(tfds.load("my_images/small", data_dir=str(out),
                                  split="train"))
  assert ex["image"].shape == (16, 12, 3)
  turned = np.rot90(mask_utils.decode(rle), k=-1)
  np.testing.assert_array_equal(ex["objects"]["mask"][0][..., 0],
                                _nearest(turned, 16, 12))


# Model Garden, official/vision/dataloaders/segmentation_input.py: Decoder.
SEGMENTATION_SPEC = {
    "image/encoded": tf.io.FixedLenFeature((), tf.string, default_value=""),
    "image/height": tf.io.FixedLenFeature((), tf.int64, default_value=0),
    "image/width": tf.io.FixedLenFeature((), tf.int64, default_value=0),
    "image/segmentation/class/encoded":
        tf.io.FixedLenFeature((), tf.string, default_value=""),
}


def test_model_garden_folder_pairs_parse_with_segmentation_decoder(tmp_path):
  want = _pairs(tmp_path / "in", n=3)
  builder = helpers.build(tmp_path / "in", tmp_path / "out", config=(
      MyImagesConfig(name="mg", output_format="model_garden")))
  n = 0
  for examples in shard_examples(builder).values():
    for s in examples:
      p = tf.io.parse_single_example(s, SEGMENTATION_SPEC)
      name = tf.train.Example.FromString(s).features.feature[
          "image/filename"].bytes_list.value[0].decode()
      # As segmentation_input.Parser._prepare_image_and_label reads it.
      label = tf.io.decode_image(p["image/segmentation/class/encoded"],
                                 channels=1)
      label = tf.reshape(label, (1, p["image/height"], p["image/width"]))
      np.testing.assert_array_equal(label.numpy()[0],
                                    want[name.rsplit("/", 1)[1][:-4]])
      n += 1
  assert n == 3
