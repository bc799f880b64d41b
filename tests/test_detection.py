"""Format detection: every reader answers once, the surest answer wins, and a
folder holding annotations is never read as class folders."""

from __future__ import annotations

import pathlib

import pytest

import annotation_helpers as ah
import helpers
from image_folder_tfds import MyImagesConfig
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds.readers import common

OPTIONS = readers.ReadOptions(split_fractions={"train": 1.0})


def test_every_reader_is_registered_once_with_claim_and_read():
  names = [r.NAME for r in readers.READERS]
  assert len(names) == len(set(names))
  assert readers.LAYOUTS == ("auto", *names)
  for reader in readers.READERS:
    assert callable(reader.claim) and callable(reader.read), reader.NAME
  # The config takes exactly these.
  for layout in readers.LAYOUTS:
    name = "default" if layout == "auto" else f"as_{layout}"
    assert MyImagesConfig(name=name, layout=layout).layout == layout
  with pytest.raises(ValueError, match="layout='nope'"):
    MyImagesConfig(name="x", layout="nope")


def test_an_empty_folder_is_claimed_by_no_reader(tmp_path):
  (tmp_path / "data").mkdir()
  assert readers.claims(str(tmp_path / "data"), OPTIONS) == []
  with pytest.raises(records.InputError, match="no images found"):
    readers.scan(str(tmp_path / "data"), "auto", OPTIONS)


def test_class_folders_are_the_fallback(tmp_path):
  helpers.make_class_folders(tmp_path / "data")
  (claim,) = readers.claims(str(tmp_path / "data"), OPTIONS)
  assert (claim.layout, claim.certainty) == ("folders", common.FALLBACK)
  assert readers.detect_layout(str(tmp_path / "data"), OPTIONS) == "folders"


def test_surer_claim_wins_and_the_other_is_reported(tmp_path):
  """A VOC `Annotations/` folder (likely) beside a COCO file (certain)."""
  root = tmp_path / "data"
  helpers.write_image(root / "JPEGImages" / "a.jpg")
  (root / "Annotations").mkdir()
  (root / "Annotations" / "a.xml").write_text(
      "<annotation><filename>a.jpg</filename></annotation>")
  ah.write_json(root / "annotations" / "instances_train.json", {
      "images": [{"id": 1, "file_name": "JPEGImages/a.jpg"}],
      "annotations": [], "categories": [{"id": 1, "name": "x"}]})
  found = readers.claims(str(root), OPTIONS)
  assert [(c.layout, c.certainty) for c in found] == [
      ("coco", common.CERTAIN), ("voc", common.LIKELY),
      ("folders", common.FALLBACK)]
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert scan.layout.startswith("coco")
  (warning,) = [p for p in scan.problems if "also looks like" in p.reason]
  assert warning.kind == "warning" and "voc (Annotations/a.xml)" in warning.reason


def test_equally_sure_claims_stop_the_build_naming_both(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "a.jpg")
  ah.write_json(root / "annotations" / "instances_train.json", {
      "images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [],
      "categories": [{"id": 1, "name": "x"}]})
  (root / "boxes.csv").write_text(
      "filename,width,height,class,xmin,ymin,xmax,ymax\n")
  with pytest.raises(records.InputError) as e:
    readers.scan(str(root), "auto", OPTIONS)
  message = str(e.value)
  assert "several annotation formats" in message
  assert "coco (annotations/instances_train.json)" in message
  assert "csv (boxes.csv)" in message


def test_coco_file_of_any_name_is_found_by_its_keys(tmp_path):
  root = tmp_path / "data"
  helpers.write_image(root / "images" / "a.jpg")
  ah.write_json(root / "labels_2024.json", {
      "images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [],
      "categories": [{"id": 1, "name": "x"}]})
  assert readers.detect_layout(str(root), OPTIONS) == "coco"
  assert [r.key for r in readers.scan(str(root), "auto", OPTIONS).records] == [
      "images/a.jpg"]


def _class_folders_with(root: pathlib.Path, files: dict[str, str]) -> None:
  helpers.make_class_folders(root)
  for rel, text in files.items():
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


@pytest.mark.parametrize("files, what, layout", [
    # Roboflow's "Keras TXT" export: no reader reads it.
    ({"_annotations.txt": "cat_0.jpg 1,2,3,4,0\n"}, "a Roboflow annotation export",
     None),
    # A per-image XML beside its image, in a class folder.
    ({"cat/cat_0.xml": "<annotation/>"}, "a per-image XML annotation", "voc"),
    # TFRecords of an old script beside the images.
    ({"train.record": "x"}, "a TFRecord file", "tfrecord"),
])
def test_annotation_files_are_never_read_as_class_folders(
    tmp_path, files, what, layout):
  root = tmp_path / "data"
  _class_folders_with(root, files)
  with pytest.raises(records.InputError) as e:
    readers.scan(str(root), "auto", OPTIONS)
  message = str(e.value)
  assert "not read as class folders" in message and what in message
  for rel in files:
    assert rel in message
  if layout in readers.LAYOUTS:
    assert f'`layout: "{layout}"`' in message
  else:
    assert "no reader of this version reads it" in message
  assert 'build the class folders anyway with `layout: "folders"`' in message
  # Forced, the folder is read as class folders; the other files are
  # reported as before, never lost quietly.
  scan = readers.scan(str(root), "folders", OPTIONS)
  assert scan.class_names == ["cat", "dog"]


def test_a_stray_text_file_in_a_class_folder_is_no_annotation(tmp_path):
  """Only files named like an image beside them, or in a `labels/` folder,
  or with an annotation tool's own name, count."""
  root = tmp_path / "data"
  _class_folders_with(root, {"cat/notes.txt": "taken in 2023",
                             "dog/README.json": "{}"})
  scan = readers.scan(str(root), "auto", OPTIONS)
  assert scan.class_names == ["cat", "dog"]


def test_annotation_artefacts_by_name():
  found = common.annotation_artefacts([
      "data.yaml", "obj.names", "annotations.xml", "train/_annotations.coco.json",
      "labels/train/a.txt", "images/train/a.jpg", "x/b.png", "x/b.json",
      "x/c.json", "metadata.jsonl", "train-00000-of-00004", "cat/1.jpg",
      "cat/notes.txt"])
  assert {(a.file, a.layout) for a in found} == {
      ("data.yaml", "yolo"), ("obj.names", "yolo"), ("annotations.xml", "cvat"),
      ("train/_annotations.coco.json", "coco"), ("labels/train/a.txt", "yolo"),
      ("x/b.json", "labelme"), ("metadata.jsonl", "metadata"),
      ("train-00000-of-00004", "tfrecord")}


@pytest.mark.slow
def test_refusal_reaches_the_user_of_tfds_build(tmp_path):
  """The command a user runs stops with the message, and writes nothing."""
  root = tmp_path / "data"
  _class_folders_with(root, {"_annotations.txt": "cat_0.jpg 1,2,3,4,0\n"})
  result = helpers.run(
      helpers.build_command(root, tmp_path / "out"))
  assert result.returncode != 0
  assert "not read as class folders" in result.stderr
  assert "_annotations.txt" in result.stderr
  assert not list((tmp_path / "out").rglob("*.tfrecord*"))
