"""Label CSVs (`readers/label_csv.py`): single-label, one-hot and names.

Three datasets are built once each and read back: a Roboflow multi-label
export (`<split>/_classes.csv`, one-hot, Roboflow's header with spaces, one
file written by pandas as Roboflow writes a one-hot frame), a Kaggle-style
single-label folder (`train.csv` of ids without extension beside
`train_images/`), and names separated by spaces, `;` and `|`. Every
expectation is read from the CSV by pandas, not by our reader.
"""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
import tensorflow_datasets as tfds

import annotation_helpers as ah
import helpers
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds import visualize
from image_folder_tfds.readers import common
from image_folder_tfds.readers import label_csv

OPTIONS = common.ReadOptions(
    split_fractions={"train": 0.8, "validation": 0.1, "test": 0.1})
BROKEN = b"\xff\xd8 not a jpeg"
UNICODE = "été_猫.jpg"


def _counts(builder) -> dict:
  return helpers.report(builder)["counts"]


# --- Roboflow: one-hot `_classes.csv` in every split folder ---------------------


def _roboflow(root):
  """train (20 images, Roboflow's own spacing), valid (pandas), test (BOM,
  CRLF). Bad rows and a broken image in every split."""
  classes = ["cat", "dog", "bird"]
  train = root / "train"
  rows = []
  for i in range(19):
    name = f"t{i:02d}.jpg"
    helpers.write_image(train / name, seed=i)
    rows.append([name, int(i % 3 == 0), int(i % 2 == 0), int(i % 5 == 0)])
  helpers.write_image(train / UNICODE, seed=40)
  rows.append([UNICODE, 1, 1, 1])
  (train / "broken.jpg").write_bytes(BROKEN)
  rows.append(["broken.jpg", 1, 0, 0])
  helpers.write_image(train / "bad_value.jpg", seed=41)
  helpers.write_image(train / "short.jpg", seed=42)
  helpers.write_image(train / "stray.jpg", seed=43)  # Named by no row.
  lines = ["filename, " + ", ".join(classes)]
  lines += [", ".join(str(c) for c in r) for r in rows]
  lines += ["missing.jpg, 1, 0, 0",  # line 23
            "bad_value.jpg, 2, 0, 0",  # line 24
            "short.jpg, 1",  # line 25
            "t00.jpg, 0, 0, 1"]  # line 26: t00 again, other classes.
  (train / "_classes.csv").write_text("\n".join(lines) + "\n")

  valid = root / "valid"
  helpers.write_image(valid / "v0.jpg", seed=50)
  helpers.write_image(valid / "v1.jpg", seed=51)
  (valid / "v2.jpg").write_bytes(BROKEN)
  frame = pd.DataFrame({"filename": ["v0.jpg", "v1.jpg", "v2.jpg"],
                        "cat": [1, 0, 0], "dog": [1, 0, 1], "bird": [0, 1, 0]})
  frame.to_csv(valid / "_classes.csv", index=False)

  test = root / "test"
  helpers.write_image(test / "x0.jpg", seed=60)
  (test / "x1.jpg").write_bytes(BROKEN)
  (test / "_classes.csv").write_bytes(
      "\ufefffilename, cat, dog, bird\r\nx0.jpg, 0, 0, 0\r\nx1.jpg, 0, 1, 0\r\n"
      .encode("utf-8"))
  return classes


def _pandas_labels(root, split_dirs) -> dict[str, tuple[str, list[str]]]:
  """{file_name: (split, [classes])} from pandas, first row of each image."""
  out = {}
  for split, folder in split_dirs.items():
    frame = pd.read_csv(root / folder / "_classes.csv", skipinitialspace=True,
                        encoding="utf-8-sig", on_bad_lines="skip")
    frame.columns = [c.strip() for c in frame.columns]
    for _, row in frame.iterrows():
      rel = f"{folder}/{row['filename']}"
      if rel not in out:
        out[rel] = (split, [c for c in frame.columns[1:] if row[c] == 1])
  return out


@pytest.fixture(scope="module")
def roboflow(tmp_path_factory):
  root = tmp_path_factory.mktemp("roboflow")
  classes = _roboflow(root)
  builder = helpers.build(root, tmp_path_factory.mktemp("roboflow_out"))
  return root, classes, builder, helpers.read_all(builder)


def test_one_hot_labels_read_back_as_pandas_reads_them(roboflow):
  root, classes, builder, examples = roboflow
  assert ah.class_names(builder) == classes  # The header's order.
  expected = _pandas_labels(
      root, {"train": "train", "validation": "valid", "test": "test"})
  rejected = {"train/broken.jpg", "valid/v2.jpg", "test/x1.jpg",
              "train/missing.jpg", "train/bad_value.jpg", "train/short.jpg"}
  assert set(examples) == set(expected) - rejected
  assert len([k for k in examples if k.startswith("train/")]) == 20
  for rel, ex in examples.items():
    split, names = expected[rel]
    assert ex["split"] == split, rel
    assert [classes[i] for i in ex["labels"]] == names, rel
    assert ex["id"].decode() == rel.partition("/")[2]  # As the CSV names it.
  assert list(examples[f"train/{UNICODE}"]["labels"]) == [0, 1, 2]
  assert list(examples["test/x0.jpg"]["labels"]) == []  # No 1: no label.


def test_one_hot_features_and_supervised_keys(roboflow):
  _, _, builder, _ = roboflow
  keys = set(builder.info.features)
  assert "labels" in keys and "label" not in keys and "objects" not in keys
  assert builder.info.supervised_keys == ("image", "labels")
  ds = builder.as_dataset(split="validation", as_supervised=True,
                          shuffle_files=False)
  got = sorted(sorted(int(i) for i in labels)
               for _, labels in tfds.as_numpy(ds))
  assert got == [[0, 1], [2]]  # v0: cat, dog; v1: bird.


def test_one_hot_card_counts_each_label(roboflow):
  """The card's class table: an image counts under each of its labels."""
  _, classes, builder, examples = roboflow
  card = (builder.data_path / "dataset_card.md").read_text()
  splits = sorted({ex["split"] for ex in examples.values()})
  for index, name in [*enumerate(classes), (-1, "(no class label)")]:
    per = [sum(index in ex["labels"] if index >= 0 else not len(ex["labels"])
               for ex in examples.values() if ex["split"] == s)
           for s in splits]
    row = (f"| {index if index >= 0 else ''} | {name} | "
           + " | ".join(map(str, per)) + f" | {sum(per)} |")
    assert row in card, (row, card)
  # `image-folder-tfds stats` counts the same way.
  by_split = {s: [ex for ex in examples.values() if ex["split"] == s]
              for s in splits}
  counts = visualize.count_examples(by_split, classes)
  assert counts["validation"]["examples"] == {"cat": 1, "dog": 1, "bird": 1}


def test_one_hot_bad_rows_are_named_with_their_line(roboflow):
  _, _, builder, _ = roboflow
  report = helpers.report(builder)
  csv_file = "train/_classes.csv"
  assert "not found" in ah.find_problem(
      report, csv_file, "line 23", kind="rejected")["reason"]
  assert "'cat' must be 0 or 1, got '2'" in ah.find_problem(
      report, csv_file, "line 24", kind="rejected")["reason"]
  assert "row has 2 cell(s), the header 4" in ah.find_problem(
      report, csv_file, "line 25", kind="rejected")["reason"]
  twice = ah.find_problem(report, csv_file, "line 26", kind="rejected")
  assert "listed again (first at _classes.csv:2)" in twice["reason"]
  assert "[cat, dog, bird] in train, here [bird] in train" in twice["reason"]
  no_one = ah.find_problem(report, "train/_classes.csv", "no 1",
                           kind="warning")
  assert no_one["reason"].startswith("5 row(s)")  # t01, t07, t11, ...
  assert no_one["item"] == "line 3, 9, 13, 15, 19"
  no_one = ah.find_problem(report, "test/_classes.csv", kind="warning")
  assert no_one["item"] == "line 2" and "no 1 in any class" in no_one["reason"]
  stray = ah.find_problem(report, "named by no row", kind="warning")
  assert "1 image(s)" in stray["reason"] and "train/stray.jpg" in stray["reason"]


def test_one_hot_counts_add_up_in_every_split(roboflow):
  _, _, builder, _ = roboflow
  counts = _counts(builder)
  assert counts["train"] == {"found": 24, "written": 20, "rejected": 4}
  assert counts["validation"] == {"found": 3, "written": 2, "rejected": 1}
  assert counts["test"] == {"found": 2, "written": 1, "rejected": 1}
  for c in counts.values():
    assert c["found"] == c["written"] + c["rejected"]
  assert builder.info.metadata["layout"] == (
      "label_csv (one-hot): test/_classes.csv, train/_classes.csv,"
      " valid/_classes.csv")


# --- Kaggle: single-label `train.csv` / `test.csv` ------------------------------


def _kaggle(root):
  """train.csv (pandas; ids without extension, images in train_images/),
  test.csv (by hand, BOM; names with extension in images/, an extra
  column), and Kaggle's sample_submission.csv."""
  ids, labels = [], []
  for i in range(6):
    image_id = f"{i:08x}"
    ext = "png" if i == 5 else "jpg"
    helpers.write_image(root / "train_images" / f"{image_id}.{ext}", seed=i,
                        fmt="PNG" if ext == "png" else "JPEG")
    ids.append(image_id)
    labels.append(("cat", "dog", "golden retriever")[i % 3])
  (root / "train_images" / "broken.jpg").write_bytes(BROKEN)
  ids.append("broken")
  labels.append("cat")
  pd.DataFrame({"id": ids, "label": labels}).to_csv(
      root / "train.csv", index=False)
  helpers.write_image(root / "train_images" / "dup_a.jpg", seed=20)
  helpers.write_image(root / "train_images" / "short.jpg", seed=21)
  helpers.write_image(root / "train_images" / "empty.jpg", seed=22)
  helpers.write_image(root / "train_images" / "wide.jpg", seed=23)
  with open(root / "train.csv", "a", newline="") as f:
    f.write("empty,\n"  # line 9
            "nothere,cat\n"  # line 10
            "wide,cat,extra\n"  # line 11
            "short\n"  # line 12
            "dup_a,dog\n"  # line 13
            "dup_a,dog\n"  # line 14: the same again
            "dup_a,cat\n"  # line 15: another class
            "../outside.jpg,cat\n")  # line 16
  helpers.write_image(root / "images" / UNICODE, seed=30)
  helpers.write_image(root / "images" / "b.jpg", seed=31)
  (root / "images" / "broken2.jpg").write_bytes(BROKEN)
  (root / "test.csv").write_text(
      "\ufeffimage,label,source\n"
      f"{UNICODE},cat,phone\n"
      "b.jpg,dog,\n"
      "broken2.jpg,dog,scanner\n", encoding="utf-8")
  (root / "sample_submission.csv").write_text("id,label\n00000000,cat\n")


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
  root = tmp_path_factory.mktemp("kaggle")
  _kaggle(root)
  builder = helpers.build(root, tmp_path_factory.mktemp("kaggle_out"))
  return root, builder, helpers.read_all(builder)


def test_single_labels_read_back_as_pandas_reads_them(kaggle):
  root, builder, examples = kaggle
  names = ah.class_names(builder)
  assert names == ["cat", "dog", "golden retriever"]  # Sorted, spaces kept.
  train = pd.read_csv(root / "train.csv", dtype=str, keep_default_na=False,
                      on_bad_lines="skip")
  test = pd.read_csv(root / "test.csv", dtype=str, keep_default_na=False,
                     encoding="utf-8-sig")
  expected = {}
  for _, row in train.iterrows():
    matches = sorted((root / "train_images").glob(f"{row['id']}.*"))
    if len(matches) == 1 and row["label"]:
      expected.setdefault(f"train_images/{matches[0].name}",
                          ("train", row["label"]))
  for _, row in test.iterrows():
    expected[f"images/{row['image']}"] = ("test", row["label"])
  for rejected in ("train_images/broken.jpg", "images/broken2.jpg"):
    del expected[rejected]  # By the image check.
  assert set(examples) == set(expected)
  for rel, (split, label) in expected.items():
    assert examples[rel]["split"] == split, rel
    assert names[examples[rel]["label"]] == label, rel
  assert examples["train_images/00000005.png"]["id"] == b"00000005"
  # Other columns are kept per image.
  assert json.loads(examples[f"images/{UNICODE}"]["extra"]) == {
      "source": "phone"}
  assert examples["images/b.jpg"]["extra"] == b""


def test_single_label_is_supervised(kaggle):
  _, builder, examples = kaggle
  assert builder.info.supervised_keys == ("image", "label")
  assert "labels" not in builder.info.features
  ds = builder.as_dataset(split="test", as_supervised=True,
                          shuffle_files=False)
  got = sorted(int(label) for _, label in tfds.as_numpy(ds))
  assert got == sorted(int(examples[k]["label"]) for k in examples
                       if examples[k]["split"] == "test")


def test_single_label_bad_rows_are_named_with_their_line(kaggle):
  _, builder, _ = kaggle
  report = helpers.report(builder)
  find = lambda *n, kind="rejected": ah.find_problem(  # noqa: E731
      report, "train.csv", *n, kind=kind)
  assert "label is empty" in find("line 9")["reason"]
  assert ("no image in the data folder has that name without its extension"
          in find("line 10")["reason"])
  assert "more than the header's 2" in find("line 11")["reason"]
  assert "row has 1 cell(s), the header 2" in find("line 12")["reason"]
  assert "alike: one example written" in find("line 14", kind="warning")[
      "reason"]
  assert "([dog] in train, here [cat] in train)" in find("line 15")["reason"]
  assert "outside the data folder" in find("line 16")["reason"]
  assert "submission template" in ah.find_problem(
      report, "sample_submission.csv", kind="warning")["reason"]
  counts = _counts(builder)
  # train: 6 + dup_a written; broken + 5 bad rows rejected (the other rows
  # of dup_a are about an image already written).
  assert counts["train"] == {"found": 13, "written": 7, "rejected": 6}
  assert counts["test"] == {"found": 3, "written": 2, "rejected": 1}
  # Nothing is found twice: the images of rejected rows are not "unnamed".
  assert not [p for p in report["problems"] if "named by no row" in p["reason"]]


# --- Names in one cell: spaces, `;` and `|` ---------------------------------------


@pytest.fixture(scope="module")
def names_built(tmp_path_factory):
  root = tmp_path_factory.mktemp("names")
  for i in range(7):
    helpers.write_image(root / "images" / f"n{i}.jpg", seed=70 + i)
  (root / "images" / "broken.jpg").write_bytes(BROKEN)
  (root / "train.csv").write_text(
      "image,labels\nn0.jpg,cat dog\nn1.jpg,  bird  \nn2.jpg,\n"
      "broken.jpg,cat\n")
  (root / "validation.csv").write_text(
      "fname,tags\nn3.jpg,cat;golden retriever\nn4.jpg,dog; bird;\n")
  (root / "test.csv").write_text(
      "filename,labels\nn5.jpg,golden retriever|cat\nn6.jpg,dog\n")
  builder = helpers.build(root, tmp_path_factory.mktemp("names_out"))
  return root, builder, helpers.read_all(builder)


def test_names_cells_split_per_file_separator(names_built):
  root, builder, examples = names_built
  names = ah.class_names(builder)
  assert names == ["bird", "cat", "dog", "golden retriever"]
  separators = {"train.csv": None, "validation.csv": ";", "test.csv": "|"}
  for file, sep in separators.items():
    frame = pd.read_csv(root / file, dtype=str, keep_default_na=False)
    name_col, labels_col = frame.columns
    for _, row in frame.iterrows():
      rel = f"images/{row[name_col]}"
      if rel == "images/broken.jpg":
        assert rel not in examples
        continue
      want = [p.strip() for p in row[labels_col].split(sep) if p.strip()]
      assert [names[i] for i in examples[rel]["labels"]] == want, rel
  assert builder.info.supervised_keys == ("image", "labels")
  report = helpers.report(builder)
  empty = ah.find_problem(report, "train.csv", "line 4", kind="warning")
  assert "empty class cell: images kept, without labels" in empty["reason"]
  assert _counts(builder)["train"] == {"found": 4, "written": 3, "rejected": 1}


# --- Small folders: 1 and 2 images ------------------------------------------------


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_images(tmp_path, n):
  root = tmp_path / "in"
  lines = ["file,class"]
  for i in range(n):
    helpers.write_image(root / f"p{i}.jpg", seed=i)
    lines.append(f"p{i}.jpg,{'ab'[i]}")
  (root / "labels.csv").write_text("\n".join(lines) + "\n")
  config = image_folder_config()
  builder = helpers.build(root, tmp_path / "out", config=config)
  examples = helpers.read_all(builder)
  assert {k: int(v["label"]) for k, v in examples.items()} == {
      f"p{i}.jpg": i for i in range(n)}
  assert ah.class_names(builder) == list("ab"[:n])


def image_folder_config():
  from image_folder_tfds.config import MyImagesConfig
  return MyImagesConfig(name="all_train", split_fractions={"train": 1.0})


# --- Detection and scan-level rules (no build) -------------------------------------


@pytest.mark.parametrize("header, rows, kind", [
    ("filename,label", ["a.jpg,cat"], label_csv.SINGLE),
    ("image,label", ["a.jpg,cat"], label_csv.SINGLE),
    ("id,label", ["a,0"], label_csv.SINGLE),
    ("file,class", ["a.jpg,cat"], label_csv.SINGLE),
    ("image_id,category", ["a.jpg,cat"], label_csv.SINGLE),
    ("path,label", ["x/a.jpg,cat"], label_csv.SINGLE),
    ("id_code,diagnosis", ["a,2"], label_csv.SINGLE),  # Kaggle APTOS.
    ("Image Index,Finding Labels,Patient ID", ["a.png,A|B,1"],
     label_csv.NAMES),  # NIH ChestX-ray14.
    ("image_name,tags", ["a,haze primary"], label_csv.NAMES),  # Kaggle Planet.
    ("fname,labels,is_valid", ["a.jpg,cat dog,True"], label_csv.NAMES),  # fastai
    ("filename, cat, dog", ["a.jpg, 1, 0"], label_csv.ONE_HOT),  # Roboflow.
    ("image_id,healthy,multiple_diseases,rust,scab", ["Train_0,0,0,0,1"],
     label_csv.ONE_HOT),  # Kaggle Plant Pathology 2020.
    ("id,has_cactus", ["a.jpg,1"], label_csv.ONE_HOT),  # Kaggle Aerial Cactus.
    ("filename,label", ["a.jpg,1"], label_csv.SINGLE),  # A label column wins.
    # Not label CSVs:
    ("filename,width,height,class,xmin,ymin,xmax,ymax",
     ["a.jpg,4,4,cat,0,0,1,1"], None),  # The TF Object Detection CSV.
    ("filename,width,height", ["a.jpg,640,480"], None),
    ("id,name", ["1,cat"], None),
    ("class,count", ["cat,3"], None),
    ("filename,cat", [], None),  # No rows, not Roboflow's name: unknown.
])
def test_forms_by_header(header, rows, kind):
  parsed = list(csv.reader([header, *rows], skipinitialspace=True))
  form = label_csv.form_of(parsed[0], parsed[1:], "train.csv")
  assert (form.kind if form else None) == kind


def _scan(root, options=OPTIONS):
  return readers.scan(str(root), "auto", options)


def test_detection_is_certain_and_beats_the_fallbacks(tmp_path):
  root = tmp_path / "in"
  helpers.write_image(root / "a.jpg")
  helpers.write_image(root / "cat" / "b.jpg")
  (root / "labels.csv").write_text("filename,label\na.jpg,x\ncat/b.jpg,y\n")
  found = readers.claims(str(root), OPTIONS)
  assert [(c.layout, c.certainty) for c in found] == [
      ("label_csv", common.CERTAIN), ("folders", common.FALLBACK)]
  assert [r.label_text for r in _scan(root).records] == ["x", "y"]
  # A TF Object Detection CSV is the csv reader's, never this one's.
  (root / "labels.csv").write_text(
      "filename,width,height,class,xmin,ymin,xmax,ymax\n")
  assert [c.layout for c in readers.claims(str(root), OPTIONS)] == [
      "csv", "folders"]
  # Roboflow's file name alone, header only: an empty one-hot file.
  (root / "labels.csv").unlink()
  (root / "train").mkdir()
  (root / "train" / "_classes.csv").write_text("filename, a, b\n")
  assert readers.claims(str(root), OPTIONS)[0].layout == "label_csv"


def test_kaggle_dog_breed_layout(tmp_path):
  """`labels.csv` (`id,breed`, ids without `.jpg`) beside `train/` and
  `test/` of images: the CSV wins over the split folders of unlabeled
  images; the test images, named by no row, are a warning."""
  root = tmp_path / "in"
  breeds = ("beagle", "pug", "beagle")
  for i in range(3):
    helpers.write_image(root / "train" / f"{i:032x}.jpg", seed=i)
  helpers.write_image(root / "test" / f"{'f' * 32}.jpg", seed=9)
  (root / "labels.csv").write_text(
      "id,breed\n" + "".join(f"{i:032x},{b}\n" for i, b in enumerate(breeds)))
  assert [(c.layout, c.certainty) for c in readers.claims(str(root), OPTIONS)
          ] == [("label_csv", common.CERTAIN), ("unlabeled", common.FALLBACK)]
  scan = _scan(root)
  assert scan.class_names == ["beagle", "pug"]
  assert [(r.file_name, r.id, r.label) for r in scan.records] == [
      (f"train/{i:032x}.jpg", f"{i:032x}", label)
      for i, label in enumerate((0, 1, 0))]
  (p,) = [p for p in scan.problems if "named by no row" in p.reason]
  assert f"(test/{'f' * 32}.jpg)" in p.reason


def test_an_empty_csv_gives_no_images(tmp_path):
  root = tmp_path / "in"
  helpers.write_image(root / "a.jpg")
  (root / "labels.csv").write_text("filename,label\n")
  with pytest.raises(records.InputError, match=r"no images found \(label_csv"):
    _scan(root)
  # Beside a file with rows, the empty one is a warning.
  (root / "train.csv").write_text("filename,label\na.jpg,x\n")
  scan = _scan(root)
  assert [r.file_name for r in scan.records] == ["a.jpg"]
  (p,) = [p for p in scan.problems if "no row" in p.reason]
  assert p.file.endswith("labels.csv") and p.kind == "warning"


def test_digits_are_class_indices_and_labels_file_fixes_order(tmp_path):
  root = tmp_path / "in"
  for name in "abc":
    helpers.write_image(root / f"{name}.jpg")
  (root / "labels.csv").write_text("id,label\na,0\nb,3\nc,1\n")
  scan = _scan(root)
  assert scan.class_names == ["0", "1", "2", "3"]
  assert [(r.file_name, r.label) for r in scan.records] == [
      ("a.jpg", 0), ("b.jpg", 3), ("c.jpg", 1)]
  (root / "labels.csv").write_text("id,label\na,dog\nb,cat\nc,bird\n")
  (root / "labels.txt").write_text("dog\ncat\n")
  scan = _scan(root)
  assert scan.class_names == ["dog", "cat"]
  assert [(r.file_name, r.label) for r in scan.records] == [
      ("a.jpg", 0), ("b.jpg", 1)]
  (p,) = [p for p in scan.problems if p.kind == "rejected"]
  assert p.item == "c.jpg: line 4" and "'bird' is not among" in p.reason
  # One-hot: a column the labels file lacks is said once.
  (root / "labels.csv").write_text("filename,dog,cow\na.jpg,1,1\nb.jpg,0,1\n")
  scan = _scan(root)
  assert [r.labels_text for r in scan.records] == [("dog",), ()]
  (p,) = [p for p in scan.problems if "'cow'" in p.reason]
  assert p.item == "line 1" and not p.counts_as_input


def test_fastai_is_valid_and_bare_names_found_in_split_folders(tmp_path):
  root = tmp_path / "in"
  for split in ("train", "valid"):
    for i in range(2):
      helpers.write_image(root / f"{split}_images" / f"{i}.jpg", seed=i)
  (root / "labels.csv").write_text(
      "fname,labels,is_valid\ntrain_images/0.jpg,a b,False\n"
      "train_images/1.jpg,a,True\nvalid_images/0.jpg,b,maybe\n")
  scan = _scan(root)
  assert [(r.file_name, r.split, r.labels_text) for r in scan.records] == [
      ("train_images/0.jpg", "train", ("a", "b")),
      ("train_images/1.jpg", "validation", ("a",))]
  (p,) = [p for p in scan.problems if p.kind == "rejected"]
  assert "is_valid must be true or false, got 'maybe'" in p.reason
  # `1.jpg` is in both folders: the one of the CSV's split is taken.
  (root / "labels.csv").unlink()
  (root / "valid.csv").write_text("image,label\n1.jpg,x\n")
  (root / "other.csv").write_text("image,label\n0.jpg,y\n")
  scan = _scan(root)
  assert [(r.file_name, r.split) for r in scan.records][:1] == [
      ("valid_images/1.jpg", "validation")]
  (p,) = [p for p in scan.problems if p.kind == "rejected"]
  assert "several images answer to it (train_images/0.jpg," in p.reason
  assert p.file.endswith("other.csv") and p.item == "line 2"


def test_refused_files(tmp_path):
  root = tmp_path / "in"
  helpers.write_image(root / "a.jpg")
  (root / "labels.csv").write_text("image,label,class\na.jpg,x,y\n")
  with pytest.raises(records.InputError, match="several class columns"):
    _scan(root)
  (root / "labels.csv").write_text("image,label\na.jpg,x\n")
  (root / "more.csv").write_text("image,labels\na.jpg,x y\n")
  with pytest.raises(records.InputError, match="different forms"):
    _scan(root)
  (root / "more.csv").unlink()
  (root / "labels.csv").write_bytes(b"image,label\na.jpg,caf\xe9\n")
  with pytest.raises(records.InputError, match="labels.csv: not UTF-8"):
    _scan(root)


@pytest.mark.slow
def test_tfds_build_command(tmp_path):
  """The command a user runs, on a Roboflow export."""
  root = tmp_path / "in"
  for split, n in (("train", 3), ("valid", 1)):
    lines = ["filename, cat, dog"]
    for i in range(n):
      helpers.write_image(root / split / f"{split}{i}.jpg", seed=i)
      lines.append(f"{split}{i}.jpg, {i % 2}, 1")
    (root / split / "_classes.csv").write_text("\n".join(lines) + "\n")
  result = helpers.run(
      helpers.build_command(root, tmp_path / "out"))
  assert result.returncode == 0, result.stderr
  assert "label_csv (one-hot)" in result.stdout + result.stderr
  builder = tfds.builder("my_images", data_dir=str(tmp_path / "out"))
  examples = ah.load_all(tmp_path / "out")
  assert {k: (v["split"], list(v["labels"])) for k, v in examples.items()} == {
      "train/train0.jpg": ("train", [1]), "train/train1.jpg": ("train", [0, 1]),
      "train/train2.jpg": ("train", [1]),
      "valid/valid0.jpg": ("validation", [1])}
  assert ah.class_names(builder) == ["cat", "dog"]
