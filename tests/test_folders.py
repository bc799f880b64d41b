"""Class-folder layouts, labels, splits, features, options and bad input."""

from __future__ import annotations

import collections
import json
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import helpers
from image_folder_tfds import MyImagesConfig
from image_folder_tfds import readers
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.records import BadInputError, InputError


def raw_images(builder, split):
  """{file_name: stored image bytes}, undecoded."""
  ds = builder.as_dataset(
      split=split, decoders={"image": tfds.decode.SkipDecoding()})
  return {ex["file_name"].decode(): ex["image"]
          for ex in tfds.as_numpy(ds)}


def test_flat_layout_round_trip(tmp_path):
  files = helpers.make_class_folders(tmp_path / "in", ("dog", "cat"), 4)
  builder = helpers.build(tmp_path / "in", tmp_path / "out")
  names = builder.info.features["label"].names
  assert names == ["cat", "dog"]  # Sorted folder names without labels.txt.
  examples = helpers.read_all(builder)
  assert set(examples) == set(files)
  stored = {}
  for split in builder.info.splits:
    stored.update(raw_images(builder, split))
  for rel, data in files.items():
    ex = examples[rel]
    assert stored[rel] == data  # JPEG bytes stored unchanged.
    assert names[ex["label"]] == rel.split("/")[0]
    # Schema 2: the class name comes from the label, the id is the file
    # name, and there are no objects: none of those is stored.
    assert {"label_text", "id", "objects"}.isdisjoint(ex)
    assert (ex["height"], ex["width"]) == (30, 40)
    assert ex["image"].shape == (30, 40, 3)
    assert ex["split"] == splits_lib.assign_split(rel, {
        "train": 0.8, "validation": 0.1, "test": 0.1})
  counts = builder.info.metadata["counts"]
  assert sum(c["written"] for c in counts.values()) == len(files)


def test_split_layout_with_aliases(tmp_path):
  root = tmp_path / "in"
  files = {}
  for folder in ("training", "val", "eval"):
    files.update(helpers.make_class_folders(root, ("a", "b"), 2, split=folder))
  builder = helpers.build(root, tmp_path / "out")
  assert set(builder.info.splits) == {"train", "validation", "test"}
  examples = helpers.read_all(builder)
  expected_split = {"training": "train", "val": "validation", "eval": "test"}
  assert set(examples) == set(files)
  for rel, ex in examples.items():
    assert ex["split"] == expected_split[rel.split("/")[0]]
  assert builder.info.splits["train"].num_examples == 4


def test_supervised_and_tfds_load(tmp_path):
  helpers.make_class_folders(tmp_path / "in", ("x", "y"), 3)
  helpers.build(tmp_path / "in", tmp_path / "out")
  ds = tfds.load("my_images", split="all",
                 data_dir=tmp_path / "out", as_supervised=True)
  pairs = list(tfds.as_numpy(ds))
  assert len(pairs) == 6
  for image, label in pairs:
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8
    assert label in (0, 1)


def test_labels_file_fixes_order_and_unlisted_folder_is_reported(tmp_path):
  root = tmp_path / "in"
  files = helpers.make_class_folders(root, ("cat", "dog", "fox"), 2)
  (root / "labels.txt").write_text("dog\ncat\nbird\n")
  builder = helpers.build(root, tmp_path / "out")
  assert builder.info.features["label"].names == ["dog", "cat", "bird"]
  examples = helpers.read_all(builder)
  assert set(examples) == {r for r in files if not r.startswith("fox/")}
  for rel, ex in examples.items():
    assert ex["label"] == ["dog", "cat"].index(rel.split("/")[0])
  rep = helpers.report(builder)
  rejected = {pathlib.Path(p["file"]).name: p["reason"]
              for p in rep["problems"] if p["kind"] == "rejected"}
  assert set(rejected) == {"fox_0.jpg", "fox_1.jpg"}
  assert all("not in the labels file" in r for r in rejected.values())
  warnings = [p["reason"] for p in rep["problems"] if p["kind"] == "warning"]
  assert any("'bird' has no folder" in w for w in warnings)
  total = collections.Counter()
  for c in rep["counts"].values():
    total.update(c)
  assert total["found"] == len(files) == total["written"] + total["rejected"]


def test_bad_labels_file(tmp_path):
  helpers.make_class_folders(tmp_path / "in", ("a",), 1)
  (tmp_path / "in" / "labels.txt").write_text("a\n\nb\n")
  with pytest.raises(InputError, match=r"labels.txt:2: empty line"):
    helpers.build(tmp_path / "in", tmp_path / "out")
  (tmp_path / "in" / "labels.txt").write_text("a\nb\na\n")
  with pytest.raises(InputError, match=r"labels.txt:3: class 'a' is listed twice"):
    helpers.build(tmp_path / "in", tmp_path / "out2")


def test_stable_splits_when_images_are_added():
  fractions = {"train": 0.8, "validation": 0.1, "test": 0.1}
  before = {f"c/{i}.jpg": splits_lib.assign_split(f"c/{i}.jpg", fractions)
            for i in range(2000)}
  counts = collections.Counter(before.values())
  # The hash spreads images in the configured proportions.
  assert 1500 < counts["train"] < 1700 and 140 < counts["test"] < 260
  after = {f"c/{i}.jpg": splits_lib.assign_split(f"c/{i}.jpg", fractions)
           for i in range(2200)}
  assert all(after[k] == v for k, v in before.items())


def test_split_fractions_option(tmp_path):
  files = helpers.make_class_folders(tmp_path / "in", ("a", "b"), 10)
  config = MyImagesConfig(name="half", split_fractions={"train": 0.5, "test": 0.5})
  builder = helpers.build(tmp_path / "in", tmp_path / "out", config=config)
  examples = helpers.read_all(builder)
  assert set(builder.info.splits) <= {"train", "test"}
  for rel, ex in examples.items():
    assert ex["split"] == splits_lib.assign_split(rel, config.split_fractions)
  assert len(examples) == len(files)


def test_config_validation():
  with pytest.raises(ValueError, match="add up to 1"):
    MyImagesConfig(name="x", split_fractions={"train": 0.5})
  with pytest.raises(ValueError, match="not a split name"):
    MyImagesConfig(name="x", split_fractions={"tran": 1.0})
  with pytest.raises(ValueError, match="needs a name of its own"):
    MyImagesConfig(max_side=100)
  with pytest.raises(ValueError, match="layout"):
    MyImagesConfig(name="x", layout="xml")
  with pytest.raises(ValueError, match="max_side"):
    MyImagesConfig(name="x", max_side=0)
  # Version and release notes do not change the data: the name may stay.
  assert MyImagesConfig(version="1.1.0").name == "default"


def test_store_images_false_keeps_paths(tmp_path):
  files = helpers.make_class_folders(tmp_path / "in", ("a",), 3)
  config = MyImagesConfig(name="paths", store_images=False)
  builder = helpers.build(tmp_path / "in", tmp_path / "out", config=config)
  assert "image" not in builder.info.features
  assert builder.info.supervised_keys == ("image_path", "label")
  examples = helpers.read_all(builder)
  for rel, ex in examples.items():
    path = pathlib.Path(ex["image_path"].decode())
    assert path.is_absolute() and path.read_bytes() == files[rel]


def test_max_side_resizes_only_larger_images(tmp_path):
  root = tmp_path / "in"
  helpers.write_image(root / "a" / "big.jpg", seed=1, width=200, height=100)
  small = helpers.write_image(root / "a" / "small.jpg", seed=2, width=40, height=20)
  config = MyImagesConfig(name="max50", max_side=50, split_fractions={"train": 1.0})
  builder = helpers.build(root, tmp_path / "out", config=config)
  examples = helpers.read_all(builder)
  assert examples["a/big.jpg"]["image"].shape == (25, 50, 3)
  assert (examples["a/big.jpg"]["height"], examples["a/big.jpg"]["width"]) == (25, 50)
  assert raw_images(builder, "train")["a/small.jpg"] == small
  changed = [p for p in helpers.report(builder)["problems"] if p["kind"] == "converted"]
  assert [pathlib.Path(p["file"]).name for p in changed] == ["big.jpg"]
  assert "resized from 200x100 to 50x25" in changed[0]["reason"]


def test_config_through_tfds_load_builder_kwargs(tmp_path):
  files = helpers.make_class_folders(tmp_path / "in", ("a", "b"), 2)
  config = MyImagesConfig(name="all_train", split_fractions={"train": 1.0})
  ds = tfds.load(
      "my_images", split="train", data_dir=tmp_path / "out",
      builder_kwargs={"config": config},
      download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
          manual_dir=str(tmp_path / "in"))})
  assert sorted(ex["file_name"].decode() for ex in tfds.as_numpy(ds)) == sorted(files)
  # Later, by name only (TFDS finds the custom config in the data folder).
  again = tfds.load("my_images/all_train", split="train", data_dir=tmp_path / "out")
  assert len(list(again)) == len(files)


def test_bad_input_is_reported_and_nothing_is_lost(tmp_path, monkeypatch, capsys):
  root = tmp_path / "in"
  good = helpers.make_class_folders(root, ("cat", "dog"), 2)
  jpeg = helpers.encode(helpers.photo(5), "JPEG")
  png = helpers.encode(helpers.photo(6), "PNG")
  bad = {
      "cat/truncated.jpg": jpeg[: len(jpeg) // 2],
      "cat/truncated.png": png[: len(png) - 40],
      "dog/empty.jpg": b"",
      "dog/notes.txt": b"not an image at all\n",
      "dog/garbage.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 50,
      "dog/unreadable.jpg": jpeg,
  }
  for rel, data in bad.items():
    (root / rel).write_bytes(data)
  (root / "empty_class").mkdir()
  (root / "cat" / ".DS_Store").write_bytes(b"junk")
  (root / "cat" / "._cat_0.jpg").write_bytes(b"junk")
  helpers.deny_read(monkeypatch, "unreadable.jpg")  # Root reads chmod 000.
  config = MyImagesConfig(name="bad", num_workers=0, split_fractions={"train": 1.0})
  builder = helpers.build(root, tmp_path / "out", config=config)
  examples = helpers.read_all(builder)
  assert set(examples) == set(good)
  rep = helpers.report(builder)
  rejected = {p["file"]: p["reason"]  # Relative to the data root.
              for p in rep["problems"] if p["kind"] == "rejected"}
  assert set(rejected) == set(bad)
  assert "corrupt image" in rejected["cat/truncated.jpg"]
  assert "corrupt image" in rejected["cat/truncated.png"]
  assert rejected["dog/empty.jpg"] == "empty file (0 bytes)"
  assert "not an image" in rejected["dog/notes.txt"]
  assert "Permission denied" in rejected["dog/unreadable.jpg"]
  warnings = [(pathlib.Path(p["file"]).name, p["reason"])
              for p in rep["problems"] if p["kind"] == "warning"]
  assert ("empty_class", "class folder is empty") in warnings
  # Hidden files are ignored, not reported.
  assert not any(".DS_Store" in p["file"] or "._cat" in p["file"]
                 for p in rep["problems"])
  # Examples written + files reported == files found, per split.
  for split, c in rep["counts"].items():
    assert c["found"] == c["written"] + c["rejected"], split
  assert sum(c["found"] for c in rep["counts"].values()) == len(good) + len(bad)
  assert builder.info.metadata["counts"] == rep["counts"]
  # The summary printed at the end of the build names every rejected file,
  # relative to the data folder it names once.
  summary = capsys.readouterr().err
  assert f"data folder: {root}\n" in summary
  assert f"{len(bad)} rejected:" in summary
  for rel, reason in rejected.items():
    assert f"\n    {rel}: {reason}" in summary


def test_decompression_bomb_is_refused(tmp_path):
  root = tmp_path / "in"
  helpers.make_class_folders(root, ("a",), 2)
  # 1-bit 20000x20000 PNG: a few kB on disk, 400 M pixels decoded.
  from PIL import Image
  Image.new("1", (20000, 20000)).save(root / "a" / "bomb.png")
  assert (root / "a" / "bomb.png").stat().st_size < 100_000
  config = MyImagesConfig(name="one_split", split_fractions={"train": 1.0})
  builder = helpers.build(root, tmp_path / "out", config=config)
  rep = helpers.report(builder)
  (bomb,) = [p for p in rep["problems"] if p["kind"] == "rejected"]
  assert bomb["file"].endswith("bomb.png")
  assert "decompression bomb: 20000x20000" in bomb["reason"]
  assert len(helpers.read_all(builder)) == 2


def test_strict_fails_at_first_bad_file(tmp_path):
  root = tmp_path / "in"
  helpers.make_class_folders(root, ("a",), 2)
  (root / "a" / "zero.jpg").write_bytes(b"")
  config = MyImagesConfig(name="strict", strict=True, num_workers=0)
  with pytest.raises(BadInputError, match=r"zero.jpg: empty file"):
    helpers.build(root, tmp_path / "out", config=config)
  assert not (tmp_path / "out" / "my_images" / "strict" / "2.1.0").exists()


def test_no_images_at_all(tmp_path):
  (tmp_path / "in" / "cat").mkdir(parents=True)
  (tmp_path / "in" / "cat" / "readme.txt").write_text("hello")
  with pytest.raises(InputError, match=r"no image could be written.*readme.txt: not an image"):
    helpers.build(tmp_path / "in", tmp_path / "out")
  # An empty or missing folder is refused by TFDS's own manual_dir check,
  # with our instructions.
  (tmp_path / "empty").mkdir()
  with pytest.raises(AssertionError, match="empty.*does not exist or is empty"):
    helpers.build(tmp_path / "empty", tmp_path / "out")
  with pytest.raises(AssertionError, match="--manual_dir DIR"):
    helpers.build(tmp_path / "missing", tmp_path / "out")
  # Only hidden files: no images either.
  (tmp_path / "hidden" / "a").mkdir(parents=True)
  (tmp_path / "hidden" / "a" / ".DS_Store").write_bytes(b"x")
  with pytest.raises(InputError, match="no images found"):
    helpers.build(tmp_path / "hidden", tmp_path / "out")


def test_stray_file_at_the_root_is_reported(tmp_path):
  root = tmp_path / "in"
  helpers.make_class_folders(root, ("a",), 2)
  helpers.write_image(root / "lost.jpg", seed=9)
  config = MyImagesConfig(name="one_split", split_fractions={"train": 1.0})
  builder = helpers.build(root, tmp_path / "out", config=config)
  rep = helpers.report(builder)
  (p,) = [p for p in rep["problems"] if p["kind"] == "rejected"]
  assert p["file"].endswith("lost.jpg") and "not inside a class folder" in p["reason"]
  assert rep["counts"]["(no split)"] == {"found": 1, "written": 0, "rejected": 1}
  assert json.loads(json.dumps(rep))  # The report file is plain JSON.


def test_scan_records_with_the_split_helper(tmp_path, monkeypatch):
  # Big folders hash their splits in a helper process: force it on here.
  monkeypatch.setattr(splits_lib.SplitAssigner, "HELPER_AFTER", 1)
  root = tmp_path / "in"
  helpers.make_class_folders(root, ("dog", "cat"), 5)
  (root / "dog" / "deeper").mkdir()
  helpers.write_image(root / "dog" / "deeper" / "x.jpg")
  (root / "dog" / ".hidden.jpg").write_bytes(b"not read")
  (root / "cat" / "Thumbs.db").write_bytes(b"not read")
  (root / "cat" / "._0.jpg").write_bytes(b"not read")
  fractions = {"train": 0.5, "validation": 0.25, "test": 0.25}
  scan = readers.scan(str(root), "folders",
                      readers.ReadOptions(split_fractions=fractions))
  want = sorted(
      str(p.relative_to(root)) for p in root.rglob("*.jpg")
      if not p.name.startswith("."))
  assert len(want) == 11
  got = list(scan.records)
  assert [r.key for r in got] == want  # cat/..., then dog/... (with deeper/).
  for r in got:
    assert r.path == r.source == str(root / r.key)
    assert r.file_name == r.id == r.key
    assert r.label_text == r.key.split("/")[0]
    assert r.label == scan.class_names.index(r.label_text)
    assert r.split == splits_lib.assign_split(r.key, fractions)
  assert scan.records[3] == got[3] and scan.records[-1] == got[-1]
  assert scan.records[2:5] == got[2:5]
  by_split = scan.by_split()
  assert {s: list(rs) for s, rs in by_split.items()} == {
      s: [r for r in got if r.split == s] for s in {r.split for r in got}}
  assert scan.split_names() == [r.split for r in got]
