"""`show` and `stats`: PNGs drawn from a built dataset, checked pixel by pixel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import annotation_helpers as ah
import helpers
from image_folder_tfds import cli
from image_folder_tfds import visualize
from image_folder_tfds.config import MyImagesConfig
from test_model_garden import make_coco

TILE = 256
PERSON, DOG = visualize.class_color(0), visualize.class_color(1)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
  root = tmp_path_factory.mktemp("coco")
  make_coco(root)
  out = tmp_path_factory.mktemp("out")
  return root, helpers.build(root, out)


@pytest.fixture(scope="module")
def coco_mg(tmp_path_factory):
  root = tmp_path_factory.mktemp("coco_mg")
  make_coco(root)
  out = tmp_path_factory.mktemp("out_mg")
  config = MyImagesConfig(name="mg", output_format="model_garden")
  return root, helpers.build(root, out, config=config)


def read_png(path) -> np.ndarray:
  data = open(path, "rb").read()
  assert data.startswith(b"\x89PNG\r\n\x1a\n")
  img = Image.open(io.BytesIO(data))
  img.verify()  # Checks the PNG's chunks and CRCs.
  img = Image.open(io.BytesIO(data))
  assert img.format == "PNG"
  return np.asarray(img.convert("RGB"))


def position(builder, file_name, split="train"):
  """Index of `file_name` in the order `show` reads the split."""
  names = [ex["file_name"].decode() for ex in helpers.read_split(builder, split)]
  return names.index(file_name)


def show(builder, out, *extra):
  code = cli.main(["show", str(builder.data_path), "-o", str(out),
                   "--tile", str(TILE), "-n", "3", *extra])
  assert code == cli.EXIT_OK
  return read_png(out)


def to_canvas(builder, index, x, y, width=64, height=48):
  """Canvas pixel of image pixel (x, y) in tile `index` (3 tiles)."""
  x0, y0, w, h = visualize.Grid(3, tile=TILE).placement(index, width, height)
  return int(x0 + x * w / width), int(y0 + y * h / height)


def test_show_draws_boxes_in_the_class_colour(coco, tmp_path):
  root, builder = coco
  pixels = show(builder, tmp_path / "grid.png")
  assert pixels.shape[:2][::-1] == visualize.Grid(3, tile=TILE).size
  index = position(builder, "train2017/a.jpg")
  # Person box [x=4, y=6, w=20, h=30]: left edge at x=4, halfway down.
  left = to_canvas(builder, index, 4, 6 + 15)
  assert tuple(pixels[left[1], left[0]]) == PERSON
  # Its bottom edge, halfway across.
  bottom = to_canvas(builder, index, 4 + 10, 36)
  assert tuple(pixels[bottom[1] - 1, bottom[0]]) == PERSON
  # Dog box [30, 5, 20, 20] (a crowd): right edge.
  right = to_canvas(builder, index, 50, 5 + 12)
  assert tuple(pixels[right[1], right[0] - 1]) == DOG
  # Control: without objects, those pixels are the photo, not box colours.
  image = Image.open(root / "train2017/a.jpg").convert("RGB")
  plain = np.asarray(visualize.show_grid(
      [visualize.View(np.asarray(image), "", ())] * 3, tile=TILE))
  assert tuple(plain[left[1], left[0]]) != PERSON
  assert tuple(plain[right[1], right[0] - 1]) != DOG


def test_show_draws_keypoints_and_skeleton(coco, tmp_path):
  root, builder = coco
  index = position(builder, "train2017/a.jpg")
  nose = to_canvas(builder, index, 10, 12)  # Visible (v=2): a filled dot.
  # Halfway along the nose - left_eye (8, 10) link, between the two dots.
  link = to_canvas(builder, index, 9, 11)
  # The COCO skeleton is stored with the dataset and drawn by default.
  assert builder.info.metadata["skeletons"] == {"person": [[1, 2], [1, 3]]}
  drawn = show(builder, tmp_path / "stored.png")
  assert tuple(drawn[nose[1], nose[0]]) == PERSON
  assert tuple(drawn[link[1], link[0]]) == PERSON
  # --skeleton reads the links from a COCO file instead: the same picture.
  skeleton = root / "annotations" / "person_keypoints_train2017.json"
  given = show(builder, tmp_path / "skeleton.png", "--skeleton", str(skeleton))
  assert np.array_equal(given, drawn)
  # Control: the same examples drawn without links leave that pixel alone.
  names = ah.class_names(builder)
  views = [visualize.view_of(ex, names, 0)
           for ex in helpers.read_split(builder, "train")[:3]]
  plain = np.asarray(visualize.show_grid(views, tile=TILE, skeletons={}))
  assert tuple(plain[nose[1], nose[0]]) == PERSON
  assert tuple(plain[link[1], link[0]]) != PERSON
  # right_eye has v=0 (not labelled): neither it nor its link is drawn.
  # 30% of the way from the nose to (0, 0), where right_eye would be.
  right_eye_link = to_canvas(builder, index, 7, 8.4)
  assert tuple(drawn[right_eye_link[1], right_eye_link[0]]) != PERSON


def test_show_model_garden_layout(coco_mg, tmp_path):
  _, builder = coco_mg
  import tensorflow_datasets as tfds
  ds = builder.as_dataset(split="train", shuffle_files=False)
  names = [ex["image"]["filename"].decode() for ex in tfds.as_numpy(ds)]
  index = names.index("train2017/a.jpg")
  pixels = show(builder, tmp_path / "mg.png")
  left = to_canvas(builder, index, 4, 21)
  assert tuple(pixels[left[1], left[0]]) == PERSON
  nose = to_canvas(builder, index, 10, 12)
  assert tuple(pixels[nose[1], nose[0]]) == PERSON
  # stats skips decoding the nested image/encoded.
  assert cli.main(["stats", str(builder.data_path), "-o",
                   str(tmp_path / "s.png")]) == cli.EXIT_OK
  read_png(tmp_path / "s.png")


def test_show_class_folders_and_bad_arguments(tmp_path, capsys):
  helpers.make_class_folders(tmp_path / "in", per_class=2)
  builder = helpers.build(tmp_path / "in", tmp_path / "out")
  out = tmp_path / "f.png"
  assert cli.main(["show", str(tmp_path / "out"), "-o", str(out), "-n", "2",
                   "--split", "train"]) == cli.EXIT_OK
  read_png(out)
  assert cli.main(["show", str(builder.data_path), "--split", "nope",
                   "-o", str(out)]) == cli.EXIT_USAGE
  assert "no split 'nope'" in capsys.readouterr().err
  assert cli.main(["show", str(tmp_path / "missing"), "-o", str(out)]) == (
      cli.EXIT_INPUT)
  paths_only = helpers.build(
      tmp_path / "in", tmp_path / "out",
      config=MyImagesConfig(name="paths", store_images=False))
  assert cli.main(["show", str(paths_only.data_path), "-o", str(out)]) == (
      cli.EXIT_INPUT)
  assert "no images to draw" in capsys.readouterr().err
  assert cli.main(["show", str(builder.data_path), "--skeleton",
                   str(tmp_path / "in" / "cat" / "cat_0.jpg"), "-o",
                   str(out)]) == cli.EXIT_INPUT


def test_stats_counts_and_chart(coco, tmp_path, capsys):
  _, builder = coco
  out = tmp_path / "stats.png"
  assert cli.main(["stats", str(builder.data_path), "-o", str(out)]) == 0
  pixels = read_png(out)
  table = capsys.readouterr().out
  # COCO input: train has a.jpg (person, dog), b.jpg (dog), empty.jpg;
  # validation has v.jpg (person).
  assert "person" in table and "dog" in table
  rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()
          if line.split() and line.split()[0] in ("person", "dog")}
  assert rows == {"person": ["1", "1"], "dog": ["2", "0"]}
  train_color, val_color = visualize.PALETTE[0], visualize.PALETTE[1]
  n_train = np.all(pixels == train_color, axis=-1).sum()
  n_val = np.all(pixels == val_color, axis=-1).sum()
  assert n_train > n_val > 0  # 3 train examples per class vs 1.
  assert cli.main(["stats", str(builder.data_path), "--objects", "-o",
                   str(out)]) == 0
  table = capsys.readouterr().out
  rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()
          if line.split() and line.split()[0] in ("person", "dog")}
  assert rows == {"person": ["1", "1"], "dog": ["2", "0"]}


def test_count_examples_model_garden_equals_tfds(coco, coco_mg):
  import tensorflow_datasets as tfds

  counts = []
  for _, builder in (coco, coco_mg):
    names = cli.dataset_class_names(builder)
    assert names == ["person", "dog"]
    by_split = {s: tfds.as_numpy(builder.as_dataset(split=s))
                for s in builder.info.splits}
    counts.append(visualize.count_examples(by_split, names))
  assert counts[0] == counts[1]
  assert counts[0]["train"]["examples"] == {"person": 1, "dog": 2}


def test_show_grid_tints_instance_masks_and_label_images():
  gray = np.full((32, 32, 3), 100, np.uint8)
  mask = np.zeros((32, 32), np.uint8)
  mask[:, :16] = 1  # Left half.
  seg = np.zeros((32, 32), np.uint8)
  seg[:8] = 2  # Top rows: class 2; the rest class 0 (not tinted).
  views = [visualize.View(gray, "a", (visualize.Obj(None, 1, "dog", (), mask),)),
           visualize.View(gray, "b", (), seg)]
  canvas = np.asarray(visualize.show_grid(views, tile=32))
  alpha = visualize.MASK_ALPHA

  def tint(color):
    return [round((1 - alpha) * 100 + alpha * c) for c in color]

  (x0, y0, _, _), (x1, y1, _, _) = (
      visualize.Grid(2, tile=32).placement(i, 32, 32) for i in (0, 1))
  assert list(canvas[y0 + 20, x0 + 4]) == tint(DOG)
  assert list(canvas[y0 + 20, x0 + 28]) == [100, 100, 100]
  assert list(canvas[y1 + 2, x1 + 10]) == tint(visualize.class_color(2))
  assert list(canvas[y1 + 20, x1 + 10]) == [100, 100, 100]
  bad = visualize.View(gray, "c", (visualize.Obj(None, 0, "x", (),
                                                 np.ones((8, 8))),))
  with pytest.raises(ValueError, match="a mask of 8x8 on an image of 32x32"):
    visualize.show_grid([bad])
