"""Hugging Face `imagefolder` metadata folders: built, read back, and
compared with what HF `datasets` itself loads from the same folder."""

from __future__ import annotations

import json
import math
import os
import pathlib
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import annotation_helpers as ah
import helpers
from image_folder_tfds import features
from image_folder_tfds import readers
from image_folder_tfds import splits
from image_folder_tfds.readers import common
from image_folder_tfds.readers import hf_metadata

FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
OPTIONS = readers.ReadOptions(split_fractions=FRACTIONS)
CARD_NAMES = ["coverall", "face_shield", "gloves"]
# A dataset card as HF writes it (`Features._to_yaml_list`): `objects` a
# sequence of fields, the category a class_label with {id: name}.
CARD = """---
license: mit
dataset_info:
  features:
  - name: image
    dtype: image
  - name: objects
    sequence:
    - name: id
      dtype: int64
    - name: area
      dtype: float64
    - name: bbox
      sequence: float32
      length: 4
    - name: category
      dtype:
        class_label:
          names:
            '0': coverall
            '1': face_shield
            '2': gloves
  splits:
  - name: train
    num_examples: 4
---
# PPE detection
"""


def write_jsonl(path, rows) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                          for r in rows), encoding="utf-8")
  return path


def write_csv(path, lines) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return path


# --- HF datasets, the reference ---------------------------------------------------


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
  """`load(data_dir, **kwargs)` -> {split: {file relative to data_dir: row}}
  with HF `datasets`, offline, its cache in a temporary folder."""
  cache = tmp_path_factory.mktemp("hf_cache")
  saved = {k: os.environ.get(k) for k in (
      "HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "HF_HOME", "HF_DATASETS_CACHE")}
  os.environ.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
                    HF_HOME=str(cache), HF_DATASETS_CACHE=str(cache / "ds"))
  import datasets  # pylint: disable=g-import-not-at-top
  datasets.disable_progress_bars()

  def load(data_dir, **kwargs):
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(data_dir), cache_dir=str(cache / "ds"),
        **kwargs)
    out = {}
    for split, ds in loaded.items():
      ds = ds.cast_column("image", datasets.Image(decode=False))
      names = (ds.features["label"].names if "label" in ds.features
               and hasattr(ds.features["label"], "names") else None)
      rows = {}
      for row in ds:
        rel = os.path.relpath(row.pop("image")["path"], data_dir)
        if names is not None:
          row["label_name"] = names[row["label"]]
        rows[rel.replace(os.sep, "/")] = row
      out[split] = rows
    return out

  yield load
  for key, value in saved.items():
    if value is None:
      os.environ.pop(key, None)
    else:
      os.environ[key] = value


def hf_rows(loaded) -> dict:
  """{file: row} over every split."""
  return {rel: row for rows in loaded.values() for rel, row in rows.items()}


def assert_columns(example, row, columns, where):
  """Every column of an HF row equals the stored feature (floats as
  float32; HF's null is our empty value)."""
  for name in columns:
    want, got = row[name], example[name]
    if isinstance(got, bytes):
      got = got.decode()
    elif isinstance(got, np.ndarray):
      got = [v.decode() if isinstance(v, bytes) else v.item() for v in got]
    elif isinstance(got, np.generic):
      got = got.item()
    if want is None:
      empty = hf_metadata.EMPTY[columns[name]]
      assert got == empty or (isinstance(empty, float) and math.isnan(got)), (
          where, name, got)
    elif isinstance(want, float) or (
        isinstance(want, list) and want and isinstance(want[0], float)):
      np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=f"{where} {name}")
    else:
      assert got == want, (where, name, got, want)


def assert_objects(example, row, names, root, rel):
  """HF's `objects` (COCO boxes in pixels, category ids) are the stored
  boxes (normalized) and labels."""
  w, h = ah.display_size(root / rel)
  want = row["objects"]
  cats = want.get("category", want.get("categories"))
  got = ah.objects(example, names)
  assert len(got) == len(want["bbox"]), rel
  for i, (g, (x, y, bw, bh), c) in enumerate(zip(got, want["bbox"], cats)):
    ah.assert_object(g, {"box": (x / w, y / h, (x + bw) / w, (y + bh) / h),
                         "label": c, "text": names[c]}, f"{rel} object {i}")
    if "area" in want:
      assert abs(g["area"] - want["area"][i] / (w * h)) < 1e-6, rel
    if "id" in want:
      assert g["id"] == str(want["id"][i]), rel


# --- Layouts --------------------------------------------------------------------


def detection_folder(root) -> dict:
  """train/ and test/ with metadata.jsonl (objects as HF's object-detection
  guide writes them, captions, typed columns), and a dataset card."""
  root = pathlib.Path(root)
  rows = {"train": [], "test": []}
  seed = 0
  for split, names in (("train", ["0001.png", "0002.png", "ünï çødé.jpg",
                                  "sub/0003.jpg"]),
                       ("test", ["0004.jpg", "0005.jpg"])):
    for i, name in enumerate(names):
      seed += 1
      fmt = "PNG" if name.endswith(".png") else "JPEG"
      helpers.write_image(root / split / name, seed=seed, fmt=fmt,
                          width=60 + seed, height=40 + seed)
      n = len(rows[split])
      boxes = [[1.0 + n, 2.5, 10.0, 12.0 + seed], [20, 3, 30.5, 20]][:1 + n % 2]
      rows[split].append({
          "file_name": name,
          "text": f"photo {seed} of PPE",
          "count": seed,
          "score": seed / 4 if seed % 2 else seed,  # Ints and floats: float.
          "checked": seed % 2 == 0,
          "tags": ["ppe", f"s{seed}"][:1 + seed % 2],
          "sizes": list(range(seed % 3)),
          "objects": {"id": [100 * seed + k for k in range(len(boxes))],
                      "area": [b[2] * b[3] for b in boxes],
                      "bbox": boxes,
                      "category": [(seed + k) % 3 for k in range(len(boxes))],
                      "occluded": [k == 1 for k in range(len(boxes))]},
      })
  for split, split_rows in rows.items():
    write_jsonl(root / split / "metadata.jsonl", split_rows)
  (root / "README.md").write_text(CARD)
  return rows


def captions_folder(root, n=6) -> None:
  """A text-to-image `metadata.csv` (`file_name,text`) at the top, with a
  string `label` and typed columns."""
  root = pathlib.Path(root)
  lines = ["file_name,text,label,rating,weight,nsfw"]
  for i in range(n):
    name = f"images/img_{i:02d}.jpg"
    helpers.write_image(root / name, seed=50 + i)
    caption = f'"a photo, number {i}"' if i % 2 else f"a dog {i}"
    rating = "" if i == 3 else str(i % 5)  # One null: -1 (HF: float NaN).
    lines.append(f"{name},{caption},{['cat', 'dog'][i % 2]},{rating},"
                 f"{i * 1.5},{'True' if i % 3 == 0 else 'False'}")
  write_csv(root / "metadata.csv", lines)


def parquet_folder(root) -> list[dict]:
  """`train/metadata.parquet` written by pyarrow in two row groups, objects
  with `categories`, no dataset card."""
  root = pathlib.Path(root)
  rows = []
  for i in range(5):
    name = f"p{i}.jpg"
    helpers.write_image(root / "train" / name, seed=80 + i, width=64,
                        height=48)
    rows.append({"file_name": name, "caption": f"c{i}",
                 "depth": [0.5 * i, 1.0], "n": i,
                 "objects": {"bbox": [[1.0, 2.0, 3.0 + i, 4.0]],
                             "categories": [i % 2 + 1]}})
  pq.write_table(pa.Table.from_pylist(rows),
                 root / "train" / "metadata.parquet", row_group_size=2)
  return rows


def class_folders_folder(root) -> None:
  """train/<class>/x.jpg with train/metadata.jsonl (captions), the same in
  validation/."""
  root = pathlib.Path(root)
  seed = 0
  for split in ("train", "validation"):
    rows = []
    for cls in ("cat", "dog", "bird"):
      for i in range(2):
        seed += 1
        helpers.write_image(root / split / cls / f"{cls}{i}.jpg", seed=seed)
        rows.append({"file_name": f"{cls}/{cls}{i}.jpg",
                     "text": f"a {cls}, {seed}"})
    write_jsonl(root / split / "metadata.jsonl", rows)


@pytest.fixture(scope="module")
def built(tmp_path_factory, hf):
  """Each clean layout built once and loaded once by HF."""
  out = {}
  for name, make in (("detection", detection_folder),
                     ("captions", captions_folder),
                     ("parquet", parquet_folder),
                     ("class_folders", class_folders_folder)):
    root = tmp_path_factory.mktemp(name) / "data"
    made = make(root)
    builder = helpers.build(root, tmp_path_factory.mktemp(name + "_out"))
    out[name] = (root, builder, helpers.read_all(builder), hf(root), made)
  # HF (5.x) adds no folder label beside metadata files, even with
  # `drop_metadata=True`: its labels are read from the same class folders
  # without them.
  root = out["class_folders"][0]
  bare = tmp_path_factory.mktemp("class_folders_bare") / "data"
  shutil.copytree(root, bare, ignore=shutil.ignore_patterns("metadata.*"))
  out["class_folders_hf_labels"] = hf(bare)
  return out


# --- Clean layouts, compared with HF --------------------------------------------


def test_detection_objects_captions_and_columns_as_hf_reads_them(built):
  root, builder, examples, loaded, rows = built["detection"]
  assert builder.info.features["objects"]["label"].names == CARD_NAMES
  assert ah.class_names(builder) == CARD_NAMES
  columns = {"text": "text", "count": "int", "score": "float",
             "checked": "bool", "tags": "text_list", "sizes": "int_list"}
  assert builder.info.metadata["schema"]["columns"] == [
      list(c) for c in columns.items()]
  assert isinstance(builder.info.features["text"],
                    __import__("tensorflow_datasets").features.Text)
  want = hf_rows(loaded)
  assert sorted(loaded) == ["test", "train"]
  assert sorted(examples) == sorted(want) == sorted(
      f"{s}/{r['file_name']}" for s, rs in rows.items() for r in rs)
  assert "train/ünï çødé.jpg" in examples
  for rel, row in want.items():
    ex = examples[rel]
    assert ex["split"] == rel.split("/")[0]
    assert_columns(ex, row, columns, rel)
    assert_objects(ex, row, CARD_NAMES, root, rel)
    # Keys of `objects` without an object field of ours are kept in `extra`.
    extra = json.loads(ex["extra"])
    assert extra["objects"] == {
        str(oid): {"occluded": occ} for oid, occ in
        zip(row["objects"]["id"], row["objects"]["occluded"])}
  report = helpers.report(builder)
  assert not ah.problems(report, "rejected")
  assert report["layout"].startswith("metadata: ")
  assert not [p for p in ah.problems(report) if "class ids" in p["reason"]]


def test_captions_csv_with_a_label_column_as_hf_reads_it(built):
  root, builder, examples, loaded, _ = built["captions"]
  want = hf_rows(loaded)
  assert sorted(examples) == sorted(want)
  assert len(want) == 6
  # A string `label` column is the image class (names sorted), as HF's
  # strings; `as_supervised` works.
  assert builder.info.features["label"].names == ["cat", "dog"]
  assert builder.info.supervised_keys == ("image", "label")
  columns = {"text": "text", "rating": "int", "weight": "float",
             "nsfw": "bool"}
  for rel, row in want.items():
    ex = examples[rel]
    assert ["cat", "dog"][ex["label"]] == row["label"]
    # pandas reads the column with an empty cell as floats (3.0, NaN).
    if row["rating"] is not None and not math.isnan(row["rating"]):
      row["rating"] = int(row["rating"])
    else:
      row["rating"] = None
    assert_columns(ex, row, columns, rel)
    # A file at the top gets the stable hash split.
    assert ex["split"] == splits.assign_split(rel, FRACTIONS)
  assert examples["images/img_01.jpg"]["text"] == b"a photo, number 1"
  assert examples["images/img_03.jpg"]["rating"] == -1
  null = ah.find_problem(helpers.report(builder), "column 'rating'",
                         kind="warning")
  assert null["item"] == "line 5" and "1 row(s)" in null["reason"]


def test_parquet_in_row_groups_as_hf_reads_it(built):
  root, builder, examples, loaded, rows = built["parquet"]
  assert pq.ParquetFile(root / "train" / "metadata.parquet"
                        ).num_row_groups == 3
  want = hf_rows(loaded)
  assert sorted(examples) == sorted(want) == [f"train/p{i}.jpg"
                                              for i in range(5)]
  # No dataset card: the category ids are the class names.
  names = ah.class_names(builder)
  assert names == ["0", "1", "2"]
  for rel, row in want.items():
    assert_columns(examples[rel], row, {"caption": "text", "depth":
                                        "float_list", "n": "int"}, rel)
    assert_objects(examples[rel], row, names, root, rel)
  assert ah.find_problem(helpers.report(builder), "class ids are used",
                         kind="warning")


def test_class_folders_give_the_label_hf_gives_them(built):
  root, builder, examples, loaded, _ = built["class_folders"]
  labels = hf_rows(built["class_folders_hf_labels"])
  want = hf_rows(loaded)
  assert sorted(examples) == sorted(want) == sorted(labels)
  names = builder.info.features["label"].names
  assert names == ["bird", "cat", "dog"]
  for rel, ex in examples.items():
    assert names[ex["label"]] == labels[rel]["label_name"] == rel.split("/")[1]
    assert ex["text"].decode() == want[rel]["text"]
    assert ex["split"] == rel.split("/")[0]
  assert not ah.problems(helpers.report(builder), "rejected")


# --- Bad rows -------------------------------------------------------------------


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
  """train/metadata.jsonl and test/metadata.csv with every kind of bad row."""
  root = tmp_path_factory.mktemp("messy") / "data"
  for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg",
                            "unnamed.jpg"]):
    helpers.write_image(root / "train" / name, seed=i)
  for i, name in enumerate(["f.jpg", "g.jpg", "unnamed2.jpg"]):
    helpers.write_image(root / "test" / name, seed=10 + i)
  (root / "train" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
  (root / "test" / "broken2.jpg").write_bytes(b"\x89PNG\r\n\x1a\n cut")
  (root / "train" / "notes.txt").write_text("not an image")
  (root / "elsewhere.jpg").parent.mkdir(parents=True, exist_ok=True)
  helpers.write_image(root / "elsewhere.jpg", seed=30)
  box = {"bbox": [[1, 2, 3, 4]], "category": [0]}
  lines = [
      {"file_name": "a.jpg", "n": 1, "tags": ["x"], "objects": box, "id": 7,
       "width": 5, "label": True, "meta": {"k": [1, 2]}},
      {"file_name": "b.jpg", "n": "oops", "tags": ["y"], "objects": box},
      {"file_name": "missing.jpg", "n": 2},
      {"file_name": "../elsewhere.jpg", "n": 3},
      None,  # Line 5: not JSON.
      {"file_name": "c.jpg", "n": None,
       "objects": {"bbox": [[1, 2, 3], [1, 2, 3, 4]], "category": [0, 1]}},
      {"file_name": "d.jpg", "n": 4,
       "objects": {"bbox": [[1, 2, 3, 4]], "category": [0, 1]}},
      {"file_name": "broken.jpg", "n": 5},
      {"file_name": "a.jpg", "n": 6},
      {"file_name": "e.jpg", "n": 7, "tags": "z", "objects": "none"},
  ]
  path = root / "train" / "metadata.jsonl"
  path.write_text("".join("{not json\n" if r is None else json.dumps(r) + "\n"
                          for r in lines))
  write_csv(root / "test" / "metadata.csv", [
      "file_name,n", "f.jpg,8", "broken2.jpg,9", "gone.jpg,10", "g.jpg,"])
  builder = helpers.build(root, tmp_path_factory.mktemp("messy_out"))
  return root, builder, helpers.read_all(builder), helpers.report(builder)


def test_every_bad_row_is_reported_with_its_file_and_line(messy):
  root, _, _, report = messy
  jsonl = "train/metadata.jsonl"  # The report's paths are relative.
  csv_file = "test/metadata.csv"

  def problem(file, line, *needles, kind=None):
    p = ah.find_problem(report, *needles, kind=kind)
    assert p["file"] == file and p["item"].startswith(f"line {line}"), p
    return p

  problem(jsonl, 2, "column 'n'", '"oops" is text, the column holds an'
          " integer: not stored, -1 written instead", kind="rejected")
  problem(jsonl, 3, "listed image 'missing.jpg' not found", kind="rejected")
  problem(jsonl, 4, "'../elsewhere.jpg' leads outside the metadata file's"
          " folder: refused", kind="rejected")
  problem(jsonl, 5, "not a valid JSON row", kind="rejected")
  problem(jsonl, 6, "object #0: bbox must be [x, y, width, height]",
          kind="rejected")
  problem(jsonl, 7, "objects lists differ in length: bbox has 1, category has"
          " 2", kind="rejected")
  problem(jsonl, 9, "image train/a.jpg is named again (first at", kind="rejected")
  problem(jsonl, 10, "column 'tags'", "is text, the column holds a list of"
          " strings", kind="rejected")
  problem(jsonl, 10, "objects must be an object (a dict)", kind="rejected")
  problem(csv_file, 4, "listed image 'gone.jpg' not found", kind="rejected")
  # Nulls (and columns a row lacks) are counted per column, the first named
  # (files are read in path order: test/ first).
  problem(csv_file, 5, "column 'n': 2 row(s) have no value (null), the first"
          " here; TFDS cannot store a null: stored as -1", kind="warning")
  problem(csv_file, 2, "column 'id': 8 row(s) have no value", kind="warning")
  # Broken images, one per split, named by their file.
  for rel in ("train/broken.jpg", "test/broken2.jpg"):
    rejected = [p for p in ah.problems(report, "rejected")
                if p["file"].endswith(rel)]
    assert len(rejected) == 1, rel
  # Files that no row names.
  for rel in ("train/unnamed.jpg", "test/unnamed2.jpg", "elsewhere.jpg"):
    p = ah.find_problem(report, rel, "has no row in a metadata file",
                        kind="rejected")
    assert p["split"] == hf_metadata.split_of(rel, OPTIONS)
  ah.find_problem(report, "notes.txt", "neither an image nor a metadata file",
                  kind="warning")


def test_bad_rows_keep_the_rest_and_every_input_is_counted(messy):
  _, builder, examples, report = messy
  assert sorted(examples) == ["test/f.jpg", "test/g.jpg", "train/a.jpg",
                              "train/b.jpg", "train/c.jpg", "train/d.jpg",
                              "train/e.jpg"]
  n = {rel: int(ex["n"]) for rel, ex in examples.items()}
  assert n == {"test/f.jpg": 8, "test/g.jpg": -1, "train/a.jpg": 1,
               "train/b.jpg": -1, "train/c.jpg": -1, "train/d.jpg": 4,
               "train/e.jpg": 7}
  # The bad object of c.jpg is dropped, the good one kept; d.jpg has none.
  assert [o["label"] for o in ah.objects(examples["train/c.jpg"])] == [1]
  assert ah.objects(examples["train/d.jpg"]) == []
  # Found = written + rejected, per split (the build checks it too).
  for split, c in report["counts"].items():
    assert c["found"] == c["written"] + c["rejected"], split
  # train: lines 3, 4, 5 and 9, broken.jpg, unnamed.jpg; test: line 4,
  # broken2.jpg, unnamed2.jpg; elsewhere.jpg (no row, a hash split).
  assert sum(c["rejected"] for c in report["counts"].values()) == 10
  assert report["counts"]["test"]["rejected"] >= 3


def test_names_of_our_own_features_are_renamed(messy):
  root, builder, examples, report = messy
  assert hf_metadata.OWN_FEATURES == features.RESERVED_KEYS
  feats = builder.info.features
  # `id`, `width`, and a `label` of booleans are renamed; a nested column
  # is kept in `extra`.
  for name in ("id", "width", "label"):
    ah.find_problem(report, f"column {name!r} is one of the dataset's own"
                    f" features: stored as 'metadata_{name}'", kind="warning")
  assert "label" not in feats and "metadata_label" in feats
  assert int(examples["train/a.jpg"]["metadata_id"]) == 7
  assert int(examples["train/a.jpg"]["metadata_width"]) == 5
  assert int(examples["train/b.jpg"]["metadata_id"]) == -1
  assert bool(examples["train/a.jpg"]["metadata_label"])
  assert json.loads(examples["train/a.jpg"]["extra"])["meta"] == {"k": [1, 2]}
  ah.find_problem(report, "column 'meta' holds objects or nested lists",
                  kind="warning")


# --- Sizes, empty files, detection ------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 20])
def test_1_2_20_images(tmp_path, n):
  root = tmp_path / "data"
  lines = ["file_name,text"]
  for i in range(n):
    helpers.write_image(root / "train" / f"{i}.jpg", seed=i)
    lines.append(f"{i}.jpg,caption {i}")
  write_csv(root / "train" / "metadata.csv", lines)
  builder = helpers.build(root, tmp_path / "out")
  examples = helpers.read_all(builder)
  assert sorted(examples) == sorted(f"train/{i}.jpg" for i in range(n))
  for i in range(n):
    assert examples[f"train/{i}.jpg"]["text"] == f"caption {i}".encode()
  assert not ah.problems(helpers.report(builder), "rejected")


def test_parquet_rows_are_named_by_their_index(tmp_path):
  root = tmp_path / "data"
  for name in ("a.jpg", "b.jpg"):
    helpers.write_image(root / "train" / name)
  rows = [{"file_name": "a.jpg", "objects": {"bbox": [[1.0, 1.0, 5.0, 5.0]],
                                             "category": ["cat"]}},
          {"file_name": "missing.jpg", "objects": None},
          {"file_name": "../a.jpg", "objects": None},
          {"file_name": "b.jpg", "objects": {"bbox": [[1.0, 1.0, -5.0, 5.0]],
                                             "category": ["dog"]}}]
  path = root / "train" / "metadata.parquet"
  pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=1)
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert [r.file_name for r in scan.records] == ["train/a.jpg", "train/b.jpg"]
  assert scan.class_names == ["cat", "dog"]  # Names, sorted.
  found = {(p.item, p.kind, p.counts_as_input) for p in scan.problems
           if p.file == str(path)}
  assert found == {("row 1", "rejected", True), ("row 2", "rejected", True),
                   ("row 3: train/b.jpg", "rejected", False)}
  path.write_bytes(b"PAR1 not really")
  with pytest.raises(readers.records.InputError, match="not a Parquet file"):
    readers.scan(str(root), "metadata", OPTIONS)


def test_folders_are_classes_only_at_one_depth(tmp_path):
  """HF's rule for class folders: every image one folder deep (here: below
  its metadata file), and more than one folder."""
  root = tmp_path / "data"
  for rel in ("cat/a.jpg", "dog/b.jpg", "c.jpg"):
    helpers.write_image(root / rel)
  write_jsonl(root / "metadata.jsonl", [{"file_name": "cat/a.jpg"},
                                        {"file_name": "dog/b.jpg"}])
  (root / "c.jpg").unlink()
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert scan.class_names == ["cat", "dog"]
  assert [r.label_text for r in scan.records] == ["cat", "dog"]
  helpers.write_image(root / "c.jpg")
  write_jsonl(root / "metadata.jsonl", [{"file_name": "cat/a.jpg"},
                                        {"file_name": "dog/b.jpg"},
                                        {"file_name": "c.jpg"}])
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert scan.class_names == [] and {r.label for r in scan.records} == {-1}


@pytest.mark.parametrize("name,content", [
    ("metadata.csv", "file_name,text\n"),  # A header only.
    ("metadata.jsonl", ""),  # Zero lines.
    ("metadata.parquet", None),  # A schema, zero rows.
])
def test_an_empty_metadata_file_describes_no_image(tmp_path, name, content):
  root = tmp_path / "data"
  helpers.write_image(root / "train" / "a.jpg")
  path = root / "train" / name
  if content is None:
    pq.write_table(pa.table({"file_name": pa.array([], pa.string())}), path)
  else:
    path.write_text(content)
  claim = hf_metadata.claim(str(root), OPTIONS)
  assert claim.certainty == (common.LIKELY if name.endswith(".jsonl")
                             else common.CERTAIN)
  with pytest.raises(readers.records.InputError,
                     match="a.jpg: image has no row in a metadata file"):
    readers.scan(str(root), "auto", OPTIONS)
  # Beside a file that has rows: the others are built, the empty one noted.
  helpers.write_image(root / "test" / "b.jpg", seed=2)
  write_jsonl(root / "test" / "metadata.jsonl", [{"file_name": "b.jpg"}])
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert [r.file_name for r in scan.records] == ["test/b.jpg"]
  reasons = [str(p) for p in scan.problems]
  assert any("train/a.jpg: image has no row" in r for r in reasons), reasons
  assert f"{path}: metadata file has no rows: it describes no image" in reasons


def test_claimed_by_a_file_name_column_only(tmp_path):
  root = tmp_path / "data"
  helpers.make_class_folders(root / "train")
  assert hf_metadata.claim(str(root), OPTIONS) is None
  write_jsonl(root / "train" / "metadata.jsonl",
              [{"file_name": "cat/cat_0.jpg", "text": "x"}])
  claim = hf_metadata.claim(str(root), OPTIONS)
  assert claim.certainty == common.CERTAIN
  assert readers.detect_layout(str(root), OPTIONS) == "metadata"
  # HF's `*_file_name` names the image too.
  write_jsonl(root / "train" / "metadata.jsonl",
              [{"image_file_name": "cat/cat_0.jpg"}])
  assert hf_metadata.claim(str(root), OPTIONS).certainty == common.CERTAIN
  # A metadata file without one is taken (likely), and the build says what
  # it lacks.
  write_jsonl(root / "train" / "metadata.jsonl", [{"path": "cat/cat_0.jpg"}])
  assert hf_metadata.claim(str(root), OPTIONS).certainty == common.LIKELY
  with pytest.raises(readers.records.InputError, match="no file_name column"):
    readers.scan(str(root), "auto", OPTIONS)
  # Named with `annotations`, it is this reader's, not seed 001's.
  write_jsonl(root / "train" / "metadata.jsonl",
              [{"file_name": "cat/cat_0.jpg"}])
  named = readers.ReadOptions(split_fractions=FRACTIONS,
                              annotations="train/metadata.jsonl")
  assert readers.detect_layout(str(root), named) == "metadata"
  scan = readers.scan(str(root), "auto", named)
  assert [r.file_name for r in scan.records] == ["train/cat/cat_0.jpg"]


def test_csv_and_type_rules():
  """pandas' reading of CSV cells; the type of a column from its values."""
  assert [hf_metadata.csv_value(c) for c in
          ["", "NA", "7", "-3", "1.5", "1e3", "True", "false", "abc"]] == [
              None, None, 7, -3, 1.5, 1000.0, True, False, "abc"]
  assert [hf_metadata.kind(v) for v in
          [None, 1, 1.0, True, "a", [], [1, 2], [1, 2.5], ["a"], [True],
           [1, "a"], [[1]], {"a": 1}]] == [
              None, "int", "float", "bool", "text", "empty_list", "int_list",
              "float_list", "text_list", "bool_list", "nested", "nested",
              "nested"]
  column = hf_metadata._Column("c")  # pylint: disable=protected-access
  for v in (1, 2, "x", 2.5):
    column.add(hf_metadata.kind(v), False, "here")
  assert column.type() == "float"  # 3 numbers (one float) against 1 text.
  with pytest.raises(hf_metadata.annotated.FieldError, match="is text"):
    hf_metadata.convert("x", "float")
  csv_column = hf_metadata._Column("c")  # pylint: disable=protected-access
  for cell in ("1", "two"):
    csv_column.add(hf_metadata.kind(hf_metadata.csv_value(cell)), True, "")
  assert csv_column.type() == "text"  # As pandas: the cells as written.


@pytest.mark.slow
def test_tfds_build_command_reads_a_metadata_folder(tmp_path):
  """The real `tfds build` on the detection layout, then `tfds.load`."""
  root = tmp_path / "data"
  rows = detection_folder(root)
  result = helpers.run(
      helpers.build_command(root, tmp_path / "out"))
  assert result.returncode == 0, result.stderr[-3000:]
  examples = ah.load_all(tmp_path / "out")
  assert sorted(examples) == sorted(
      f"{s}/{r['file_name']}" for s, rs in rows.items() for r in rs)
  row = rows["train"][0]
  assert examples["train/0001.png"]["text"].decode() == row["text"]
  assert_objects(examples["train/0001.png"], row, CARD_NAMES, root,
                 "train/0001.png")
