"""The dataset card: written with every build, and the TFDS description."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import sys

import pytest

import helpers
import image_folder_tfds
from image_folder_tfds import card as card_lib


def _table(card: str, heading: str) -> list[list[str]]:
  """Rows of the Markdown table under `## heading` (header rows skipped)."""
  section = card.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
  rows = [line for line in section.splitlines() if line.startswith("|")]
  return [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]


def test_card_counts_match_the_data(tmp_path):
  data = tmp_path / "data"
  helpers.make_class_folders(data, classes=("cat", "dog", "owl"), per_class=7)
  (data / "dog" / "broken.jpg").write_bytes(b"not an image")
  builder = helpers.build(data, tmp_path / "out")
  card = (builder.data_path / card_lib.CARD_FILE).read_text()
  assert builder.info.description == card
  examples = helpers.read_all(builder)
  names = builder.info.features["label"].names

  splits = {row[0]: row[1:] for row in _table(card, "Splits")}
  for split in builder.info.splits:
    n = len(helpers.read_split(builder, split))
    assert int(splits[split][0]) == n
  rejected = sum(int(v[2]) for v in splits.values())
  assert rejected == 1

  header = card.split("## Classes\n", 1)[1].split("\n")[1]
  split_cols = [c.strip() for c in header.strip("|").split("|")][2:-1]
  for row in _table(card, "Classes"):
    index, name, *per_split, total = row
    assert names[int(index)] == name
    for split, n in zip(split_cols, per_split):
      expected = sum(1 for ex in examples.values()
                     if ex["split"] == split and names[ex["label"]] == name)
      assert int(n) == expected, (name, split)
    assert int(total) == sum(1 for ex in examples.values()
                             if names[ex["label"]] == name)

  assert "`data/` (the `--manual_dir` folder" in card  # Source: its name.
  assert str(tmp_path) not in card
  options = json.loads(card.split("```json\n", 1)[1].split("```", 1)[0])
  assert options == builder.builder_config.options()
  assert "broken.jpg" in card  # The build report summary names it.
  # The package's default version, with its own release note.
  assert ("**2.1.0** (this release): The exports of annotation tools are read"
          in card)


def test_card_lists_the_version_history(tmp_path):
  data = tmp_path / "data"
  helpers.make_class_folders(data, per_class=3)
  cfg = image_folder_tfds.MyImagesConfig
  helpers.build(data, tmp_path / "out", config=cfg(
      version="1.0.0", release_notes={"1.0.0": "Cats and dogs."}))
  helpers.write_image(data / "cat" / "extra.jpg", seed=77)
  v2 = helpers.build(data, tmp_path / "out", config=cfg(
      version="1.1.0", release_notes={"1.1.0": "One more cat."}))
  card = (v2.data_path / card_lib.CARD_FILE).read_text()
  history = card.split("## Version history\n", 1)[1].split("\n## ", 1)[0]
  assert re.findall(r"\* \*\*(\S+)\*\*", history) == ["1.1.0", "1.0.0"]
  assert "**1.1.0** (this release): One more cat." in history
  assert "**1.0.0**: Cats and dogs." in history
  assert card.startswith("# my_images 1.1.0\n")


LOAD_INFO = """
import sys
import tensorflow_datasets as tfds
print(tfds.builder("my_images", data_dir=sys.argv[1]).info.description)
"""


def test_card_is_the_description_when_loaded_without_the_plugin(tmp_path):
  data = tmp_path / "data"
  helpers.make_class_folders(data, per_class=2)
  builder = helpers.build(data, tmp_path / "out")
  card = (builder.data_path / card_lib.CARD_FILE).read_text()
  out = helpers.run([sys.executable, "-c", LOAD_INFO, str(tmp_path / "out")])
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip() == card.strip()


def test_render_without_class_labels_and_notes():
  text = card_lib.render(
      name="my_images", version="2.0.0", description="d", source="s",
      options={}, class_names=["a"], counts={"train": {
          "found": 2, "written": 2, "rejected": 0}},
      class_counts={"train": {0: 1, -1: 1}}, release_notes={},
      report_summary="r")
  assert f"|  | {card_lib.NO_CLASS} | 1 | 1 |" in text
  assert "**2.0.0** (this release): no release notes given" in text


def _coco_with_problems(root):
  """COCO with a missing image (the reason names the places looked in) and
  an EXIF-rotated one (converted)."""
  images = [{"id": i, "file_name": f"p{i}.jpg", "width": 40, "height": 30}
            for i in (1, 2, 3)]
  anns = [{"id": 10 + i, "image_id": i, "bbox": [1, 1, 10, 10], "area": 100,
           "iscrowd": 0, "category_id": 1} for i in (1, 2, 3)]
  helpers.write_coco(root, "train", images, anns,
                     [{"id": 1, "name": "cat"}], kind="instances")
  (root / "train2017" / "p3.jpg").unlink()


def _folders_with_problems(root):
  helpers.make_class_folders(root, classes=("cat", "dog"), per_class=4)
  (root / "dog" / "broken.jpg").write_bytes(b"not an image")
  (root / "labels.txt").write_text("cat\ndog\n")


def _files(version_dir: pathlib.Path) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted(version_dir.iterdir())
          if p.is_file()}


@pytest.mark.parametrize("make", [_folders_with_problems, _coco_with_problems],
                         ids=["folders", "coco"])
def test_builds_in_two_folders_give_identical_files(tmp_path, make):
  """No absolute path in anything written with the dataset: the same data in
  two folders gives the same files, byte for byte; under another folder name
  only that name (the card's source and the report's `root`) differs."""
  a = tmp_path / "a" / "photos"
  make(a)
  b = tmp_path / "b" / "elsewhere" / "photos"
  shutil.copytree(a, b)
  c = tmp_path / "c" / "renamed"
  shutil.copytree(a, c)
  built = [helpers.build(src, src.parent / "out") for src in (a, b, c)]
  fa, fb, fc = (_files(x.data_path) for x in built)
  assert {"dataset_card.md", "build_report.json", "dataset_info.json",
          "features.json", "manifest.json"} <= set(fa)
  report = json.loads(fa["build_report.json"])
  assert report["problems"], "the case must report problems with files"
  assert fa == fb
  for name, data in fa.items():
    assert str(tmp_path).encode() not in data, name
    assert fc[name].replace(b"renamed", b"photos") == data, name
  assert report["root"] == "photos"
  assert all(not p["file"].startswith("/") for p in report["problems"])
