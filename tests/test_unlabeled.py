"""Unlabeled folders (`readers/unlabeled.py`): images and file names only.

A flat folder and a folder of split folders are built once each and read
back; detection is checked against class folders (the two fallbacks never
claim the same folder) and against annotation files (a YOLO or LabelMe
folder that no reader takes is refused, never built without its labels).
"""

from __future__ import annotations

import pytest

import annotation_helpers as ah
import helpers
from image_folder_tfds import records
from image_folder_tfds import readers
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.config import MyImagesConfig
from image_folder_tfds.readers import common

FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
OPTIONS = common.ReadOptions(split_fractions=FRACTIONS)
BROKEN = b"\xff\xd8 not a jpeg"
UNICODE = "été_猫.jpg"


def _claims(root):
  return [(c.layout, c.certainty) for c in readers.claims(str(root), OPTIONS)]


# --- A flat folder ----------------------------------------------------------------


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
  root = tmp_path_factory.mktemp("flat")
  for i in range(19):
    helpers.write_image(root / f"img{i:02d}.jpg", seed=i)
  helpers.write_image(root / UNICODE, seed=30)
  (root / "broken.jpg").write_bytes(BROKEN)
  (root / "notes.csv").write_text("taken,where\n2023,garden\n")
  (root / "README.md").write_text("Our photos.\n")  # Ours: not an input.
  builder = helpers.build(root, tmp_path_factory.mktemp("flat_out"))
  return root, builder, helpers.read_all(builder)


def test_flat_folder_reads_back_images_and_names_only(flat):
  root, builder, examples = flat
  assert set(builder.info.features) == {"image", "file_name", "height",
                                        "width"}
  assert builder.info.supervised_keys is None
  assert builder.info.metadata["schema"]["kind"] == "images"
  assert builder.info.metadata["layout"] == "unlabeled: DIR/<image>"
  want = {p.name for p in root.iterdir() if p.suffix == ".jpg"} - {"broken.jpg"}
  assert set(examples) == want and len(want) == 20
  for rel, ex in examples.items():
    # The stable hash split, as for class folders.
    assert ex["split"] == splits_lib.assign_split(rel, FRACTIONS), rel
    assert ex["image"].shape == (30, 40, 3)


def test_flat_folder_report(flat):
  _, builder, _ = flat
  report = helpers.report(builder)
  warning = ah.find_problem(report, "without labels", kind="warning")
  assert "no class folders and no annotation file" in warning["reason"]
  assert "not an image" in ah.find_problem(
      report, "broken.jpg", kind="rejected")["reason"]
  csv_problem = ah.find_problem(report, "notes.csv", kind="rejected")
  assert "its header ['taken', 'where'] is not one of the label CSVs" in (
      csv_problem["reason"])
  counts = report["counts"]
  assert sum(c["found"] for c in counts.values()) == 22  # 20 + broken + csv.
  assert sum(c["written"] for c in counts.values()) == 20
  for c in counts.values():
    assert c["found"] == c["written"] + c["rejected"]


# --- Split folders --------------------------------------------------------------


@pytest.fixture(scope="module")
def split_folders(tmp_path_factory):
  root = tmp_path_factory.mktemp("splits")
  for i in range(3):
    helpers.write_image(root / "train" / f"t{i}.jpg", seed=i)
  (root / "train" / "broken.jpg").write_bytes(BROKEN)
  helpers.write_image(root / "val" / UNICODE, seed=10)
  (root / "val" / "broken.jpg").write_bytes(BROKEN)
  helpers.write_image(root / "test" / "x.png", seed=20, fmt="PNG")
  (root / "test" / "broken.jpg").write_bytes(BROKEN)
  helpers.write_image(root / "lost.jpg", seed=30)  # Beside the split folders.
  builder = helpers.build(root, tmp_path_factory.mktemp("splits_out"))
  return root, builder, helpers.read_all(builder)


def test_split_folders_give_the_splits(split_folders):
  _, builder, examples = split_folders
  assert {k: v["split"] for k, v in examples.items()} == {
      "train/t0.jpg": "train", "train/t1.jpg": "train", "train/t2.jpg": "train",
      f"val/{UNICODE}": "validation", "test/x.png": "test"}
  assert "label" not in builder.info.features
  assert builder.info.metadata["layout"] == "unlabeled: DIR/<split>/<image>"
  report = helpers.report(builder)
  assert "not inside a split folder" in ah.find_problem(
      report, "lost.jpg", kind="rejected")["reason"]
  ah.find_problem(report, "without labels", kind="warning")
  counts = report["counts"]
  assert counts["train"] == {"found": 4, "written": 3, "rejected": 1}
  assert counts["validation"] == {"found": 2, "written": 1, "rejected": 1}
  assert counts["test"] == {"found": 2, "written": 1, "rejected": 1}
  assert counts["(no split)"] == {"found": 1, "written": 0, "rejected": 1}


@pytest.mark.parametrize("n", [1, 2])
def test_one_and_two_images(tmp_path, n):
  for i in range(n):
    helpers.write_image(tmp_path / "in" / f"p{i}.jpg", seed=i)
  config = MyImagesConfig(name="all_train", split_fractions={"train": 1.0})
  builder = helpers.build(tmp_path / "in", tmp_path / "out", config=config)
  assert sorted(helpers.read_all(builder)) == [f"p{i}.jpg" for i in range(n)]


# --- Detection: which fallback, and refusals --------------------------------------


def test_the_two_fallbacks_never_claim_the_same_folder(tmp_path):
  fallback = common.FALLBACK
  flat = tmp_path / "flat"
  helpers.write_image(flat / "a.jpg")
  assert _claims(flat) == [("unlabeled", fallback)]
  # Images at the top beside a class folder: class folders' (they report
  # the top-level image as outside every class folder).
  helpers.write_image(flat / "cat" / "b.jpg")
  assert _claims(flat) == [("folders", fallback)]
  # Split folders holding images directly, or class folders.
  split = tmp_path / "split"
  helpers.write_image(split / "train" / "a.jpg")
  helpers.write_image(split / "test" / "b.jpg")
  assert _claims(split) == [("unlabeled", fallback)]
  helpers.write_image(split / "test" / "cat" / "c.jpg")
  assert _claims(split) == [("folders", fallback)]
  # Nothing by its name is an image: nobody claims (no images found).
  empty = tmp_path / "empty"
  (empty / "train").mkdir(parents=True)
  (empty / "notes.txt").write_text("x")
  assert _claims(empty) == []
  with pytest.raises(records.InputError, match="no images found"):
    readers.scan(str(empty), "auto", OPTIONS)


def test_scan_keeps_columns_not_records(tmp_path):
  """A big unlabeled folder costs three columns, not an object per file."""
  for i in range(5):
    helpers.write_image(tmp_path / f"{i}.jpg", seed=i)
  (tmp_path / "labels.txt").write_text("cat\ndog\n")
  scan = readers.scan(str(tmp_path), "auto", OPTIONS)
  assert isinstance(scan.records, records.FolderRecords)
  assert not scan.records.has_labels() and scan.class_names == []
  rec = scan.records[0]
  assert (rec.file_name, rec.label, rec.label_text) == ("0.jpg", -1, "")
  assert any("labels file not used" in p.reason for p in scan.problems)


@pytest.mark.parametrize("files, what, layout", [
    # Roboflow's "Keras TXT" export: no reader reads it.
    ({"_annotations.txt": "a.jpg 1,2,3,4,0\n"}, "a Roboflow annotation export",
     None),
    # A JSON beside its image that is not LabelMe's (no shapes, no imagePath).
    ({"a.json": '{"boxes": [[1, 2, 3, 4]]}'},
     "a per-image JSON annotation (LabelMe)", "labelme"),
    # An XML beside its image that is not VOC's (another root element).
    ({"train/b.xml": "<doc><box>1 2 3 4</box></doc>"},
     "a per-image XML annotation", "voc"),
])
def test_annotation_files_are_never_read_as_unlabeled_images(
    tmp_path, files, what, layout):
  """Annotation files no reader takes stop the build; they are never left
  behind as images without labels. (Those a reader takes go to it: a YOLO
  or LabelMe folder, tests/test_yolo.py and tests/test_labelme.py.)"""
  root = tmp_path / "data"
  if any(rel.startswith("train/") for rel in files):
    helpers.write_image(root / "train" / "b.jpg")
  else:
    helpers.write_image(root / "a.jpg")
  for rel, text in files.items():
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)
  assert [c.layout for c in readers.claims(str(root), OPTIONS)] == [
      "unlabeled"]
  with pytest.raises(records.InputError) as e:
    readers.scan(str(root), "auto", OPTIONS)
  message = str(e.value)
  assert "not read as images without labels" in message and what in message
  assert 'build the images without labels anyway with `layout: "unlabeled"`' in (
      message)
  if layout is None:
    assert "no reader of this version reads it" in message
  else:
    assert f'`layout: "{layout}"`, which did not recognise' in message
  # Forced, the images are read; the other files are rejected, not lost.
  scan = readers.scan(str(root), "unlabeled", OPTIONS)
  assert [r.file_name for r in scan.records if r.file_name.endswith(".jpg")]


def test_a_yolo_folder_is_read_as_yolo_never_as_unlabeled_images(tmp_path):
  """`images/` + `labels/*.txt` + `data.yaml`: the YOLO reader is surest;
  neither class folders nor unlabeled images are read."""
  root = tmp_path / "yolo"
  helpers.write_image(root / "images" / "a.jpg")
  (root / "labels").mkdir()
  (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
  (root / "data.yaml").write_text("names: [cat]\n")
  found = _claims(root)
  assert found[0][0] == "yolo" and ("unlabeled", common.FALLBACK) not in found
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert scan.layout.startswith("yolo")
  assert [len(r.objects) for r in scan.records] == [1]


def test_forced_layout_reads_every_image_below(tmp_path):
  """`layout: "unlabeled"` on class folders: their images, without class."""
  helpers.make_class_folders(tmp_path / "in", ("cat", "dog"), 2)
  scan = readers.scan(str(tmp_path / "in"), "unlabeled", OPTIONS)
  assert [r.file_name for r in scan.records] == [
      "cat/cat_0.jpg", "cat/cat_1.jpg", "dog/dog_0.jpg", "dog/dog_1.jpg"]
  assert {r.label for r in scan.records} == {-1}
