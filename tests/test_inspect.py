"""`inspect`: the same problems as a build, found without writing a dataset."""

from __future__ import annotations

import json
import os
import pathlib

import pytest

import helpers
from image_folder_tfds import cli
from image_folder_tfds import inspection
from image_folder_tfds import records
from image_folder_tfds.config import MyImagesConfig

CATEGORIES = [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]


def make_messy_coco(root: pathlib.Path) -> None:
  """Good and bad images and annotations, every kind of problem once."""
  images = [
      {"id": 1, "file_name": "good.jpg", "width": 40, "height": 30},
      {"id": 2, "file_name": "truncated.jpg", "width": 40, "height": 30},
      {"id": 3, "file_name": "empty.jpg", "width": 40, "height": 30},
      {"id": 4, "file_name": "boxes.jpg", "width": 40, "height": 30},
      {"id": 5, "file_name": "missing.jpg", "width": 40, "height": 30},
  ]
  annotations = [
      {"id": 10, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10],
       "area": 100, "iscrowd": 0},
      # Outside the image: object rejected.
      {"id": 11, "image_id": 4, "category_id": 2, "bbox": [30, 5, 25, 10],
       "area": 250, "iscrowd": 0},
      # Overshoots by half a pixel: clipped ("changed").
      {"id": 12, "image_id": 4, "category_id": 1, "bbox": [20, 10, 20.5, 10],
       "area": 205, "iscrowd": 0},
      # Unknown category: rejected by the reader.
      {"id": 13, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5],
       "area": 25, "iscrowd": 0},
  ]
  helpers.write_coco(root, "train", images, annotations, CATEGORIES,
                     kind="instances")
  folder = root / "train2017"
  data = (folder / "truncated.jpg").read_bytes()
  (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
  (folder / "empty.jpg").write_bytes(b"")
  (folder / "missing.jpg").unlink()
  helpers.write_coco(root, "val", [
      {"id": 20, "file_name": "v.jpg", "width": 40, "height": 30}], [
      {"id": 21, "image_id": 20, "category_id": 2, "bbox": [1, 1, 20, 20],
       "area": 400, "iscrowd": 0}], CATEGORIES, kind="instances")


def problem_set(problems) -> set[tuple]:
  return {(p["kind"], p["split"], p["file"], p["item"], p["reason"])
          for p in problems}


def tree(root) -> dict[str, tuple]:
  """Every file below `root` with its size and modification time."""
  out = {}
  for folder, _, files in os.walk(root):
    for name in files:
      st = os.stat(os.path.join(folder, name))
      out[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
  return out


def test_inspect_finds_what_the_build_reports(tmp_path):
  root = tmp_path / "in"
  make_messy_coco(root)
  before = tree(root)
  result = inspection.inspect_folder(root, MyImagesConfig(num_workers=0))
  assert tree(root) == before  # Nothing written into the data folder.

  builder = helpers.build(root, tmp_path / "out")
  built = helpers.report(builder)
  assert problem_set(result.to_dict()["problems"]) == problem_set(
      built["problems"])
  assert result.counts == built["counts"]
  kinds = {p.kind for p in result.report.problems}
  assert {"rejected", "changed"} <= kinds
  reasons = " ".join(p.reason for p in result.report.problems)
  for needle in ("empty file", "outside the image", "clipped", "not found"):
    assert needle in reasons
  assert not result.clean
  assert result.counts["train"] == {"found": 5, "written": 2, "rejected": 3}


def test_strict_build_fails_exactly_when_inspect_says_so(tmp_path):
  root = tmp_path / "in"
  make_messy_coco(root)
  result = inspection.inspect_folder(root)
  strict = MyImagesConfig(name="strict", strict=True)
  with pytest.raises(Exception) as info:
    helpers.build(root, tmp_path / "out", config=strict)
  error = info.value
  while not isinstance(error, records.BadInputError) and error.__cause__:
    error = error.__cause__
  assert isinstance(error, records.BadInputError), repr(info.value)
  assert error.problem in result.strict_failures

  clean = tmp_path / "clean"
  helpers.make_class_folders(clean, per_class=2)
  helpers.write_image(clean / "dog" / "old.bmp", fmt="BMP")  # Converted: fine.
  result = inspection.inspect_folder(clean)
  assert result.clean
  # (Splits under min_split_examples also get a warning; they name no file.)
  assert [p.kind for p in result.report.problems if p.file] == ["converted"]
  builder = helpers.build(clean, tmp_path / "out2", config=strict)
  assert result.counts == helpers.report(builder)["counts"]


def test_cli_exit_codes_and_report(tmp_path, capsys):
  root = tmp_path / "in"
  make_messy_coco(root)
  out = tmp_path / "report.json"
  code = cli.main(["inspect", str(root), "--quiet", "--workers", "0",
                   "--json", str(out)])
  assert code == cli.EXIT_PROBLEMS
  text = capsys.readouterr().out
  assert "layout: coco" in text
  assert "classes (2): cat, dog" in text
  assert "train: 5 found, 2 would be written, 3 rejected" in text
  for name in ("truncated.jpg", "empty.jpg", "missing.jpg", "boxes.jpg"):
    assert name in text
  assert "would fail a strict build" in text
  saved = json.loads(out.read_text())
  assert saved["clean"] is False
  assert saved["counts"]["validation"] == {"found": 1, "written": 1,
                                           "rejected": 0}

  clean = tmp_path / "clean"
  helpers.make_class_folders(clean, per_class=2)
  assert cli.main(["inspect", str(clean), "--quiet"]) == cli.EXIT_OK
  assert "result: clean" in capsys.readouterr().out
  # The same options as `tfds build --config`.
  config = json.dumps({"labels_file": "nope.txt"})
  assert cli.main(["inspect", str(clean), "--config", config, "--quiet"]) == (
      cli.EXIT_INPUT)
  assert "nope.txt: labels file not found" in capsys.readouterr().err
  assert cli.main(["inspect", str(clean), "--config", "{bad"]) == cli.EXIT_USAGE
  assert cli.main(["inspect", str(clean), "--config",
                   '{"colour": 1}']) == cli.EXIT_USAGE
  assert "unknown option(s) ['colour']" in capsys.readouterr().err

  # Every file rejected: no build can succeed.
  bad = tmp_path / "bad"
  (bad / "cat").mkdir(parents=True)
  (bad / "cat" / "notes.txt").write_text("not an image")
  assert cli.main(["inspect", str(bad), "--quiet"]) == cli.EXIT_INPUT
  assert "result: no build can succeed" in capsys.readouterr().out
  # No image at all: the scan fails as the build does.
  empty = tmp_path / "empty"
  (empty / "cat").mkdir(parents=True)
  assert cli.main(["inspect", str(empty), "--quiet"]) == cli.EXIT_INPUT
  assert "no images found" in capsys.readouterr().err


def test_every_image_rejected_is_no_build(tmp_path):
  root = tmp_path / "in"
  (root / "cat").mkdir(parents=True)
  (root / "cat" / "a.jpg").write_bytes(b"")
  (root / "cat" / "b.jpg").write_bytes(b"not a jpeg")
  result = inspection.inspect_folder(
      root, MyImagesConfig(name="t", split_fractions={"train": 1.0}))
  assert result.empty_splits == ["train"]
  assert not result.clean
  assert "no build can succeed" in result.summary()
