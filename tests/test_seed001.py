"""Seed 001's schema (`dummy_data/seed001`): built, read back, compared."""

from __future__ import annotations

import json

import pytest
import tensorflow_datasets as tfds

import annotation_helpers as ah
import helpers
import image_folder_tfds

ROOT = helpers.DUMMY_DATA / "seed001"


def _entries():
  """(split, entry) of every image in the source files."""
  out = [("train", e) for e in json.loads((ROOT / "train.json").read_text())]
  for line in (ROOT / "val.jsonl").read_text().splitlines():
    out.append(("validation", json.loads(line)))
  return out


def _expected_class_names(entries):
  """README's rule: name i is the name given with label i, then the names
  given without a label, sorted."""
  by_index, names_only = {}, set()
  for _, e in entries:
    pairs = [(e.get("class", {}).get("label"), e.get("class", {}).get("text"))]
    bbox = e.get("object", {}).get("bbox", {})
    n = len(bbox.get("xmin", []))
    pairs += [((bbox.get("label") or [None] * n)[i],
               (bbox.get("text") or [None] * n)[i]) for i in range(n)]
    for label, text in pairs:
      if label is not None:
        by_index.setdefault(label, text)
      elif text is not None:
        names_only.add(text)
  names = [by_index.get(i) or str(i) for i in range(max(by_index) + 1)]
  return names + sorted(names_only - set(names))


def _expected_objects(entry, names):
  obj = entry.get("object", {})
  bbox, parts = obj.get("bbox", {}), obj.get("parts", {})
  n = obj.get("count", len(bbox.get("xmin", [])))
  per = len(parts.get("x", [])) // n if n else 0
  out = []
  for i in range(n):
    label = (bbox["label"][i] if "label" in bbox
             else names.index(bbox["text"][i]))
    keypoints = [
        (parts["x"][j], parts["y"][j], parts.get("v", [2] * 99)[j],
         parts.get("score", [-1.0] * 99)[j])
        for j in range(i * per, (i + 1) * per)
    ]
    out.append({
        "box": tuple(bbox[c][i] for c in ("xmin", "ymin", "xmax", "ymax")),
        "label": label, "text": names[label],
        "score": bbox["score"][i] if "score" in bbox else -1.0,
        "conf": bbox["conf"][i] if "conf" in bbox else -1.0,
        "area": obj["area"][i] if "area" in obj else -1.0,
        "id": obj["id"][i] if "id" in obj else "",
        "keypoints": keypoints,
    })
  return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("seed001")
  builder = helpers.build(ROOT, data_dir)
  builder.test_data_dir = data_dir
  return builder, ah.load_all(data_dir)


def test_detected_as_seed001(built):
  builder, _ = built
  assert builder.info.metadata["layout"].startswith("seed001")
  assert helpers.file_problems(helpers.report(builder)) == []


def test_class_names_follow_the_documented_rule(built):
  builder, _ = built
  assert ah.class_names(builder) == _expected_class_names(
      _entries())


def test_every_field_read_back(built):
  builder, examples = built
  names = ah.class_names(builder)
  entries = _entries()
  assert sorted(examples) == sorted(e["filename"] for _, e in entries)
  for split, entry in entries:
    ex = examples[entry["filename"]]
    where = entry["filename"]
    assert ex["split"] == split
    assert ex["id"].decode() == str(entry.get("id", entry["filename"]))
    width, height = ah.display_size(ROOT / entry["filename"])
    assert (ex["width"], ex["height"]) == (width, height)
    cls = entry.get("class", {})
    label = cls["label"] if "label" in cls else (
        names.index(cls["text"]) if "text" in cls else -1)
    assert ex["label"] == label, where
    assert "label_text" not in ex  # Schema 2: names[label].
    assert abs(ex["label_conf"] - cls.get("conf", -1.0)) < ah.TOL
    extra = entry.get("extra")
    assert ex["extra"].decode() == (
        "" if extra is None else extra if isinstance(extra, str)
        else json.dumps(extra, sort_keys=True))
    got = ah.objects(ex)
    want = _expected_objects(entry, names)
    assert len(got) == len(want), where
    for i, (g, w) in enumerate(zip(got, want)):
      ah.assert_object(g, w, f"{where} object {i}")


def test_load_with_tfds_load(built):
  builder, _ = built
  ds = tfds.load("my_images", split="validation",
                 data_dir=str(builder.test_data_dir))
  files = sorted(ex["file_name"].numpy().decode() for ex in ds)
  assert files == sorted(e["filename"] for s, e in _entries()
                         if s == "validation")


class Seed001BuilderTest(tfds.testing.DatasetBuilderTestCase):
  """TFDS's builder test over `dummy_data/seed001`."""

  DATASET_CLASS = image_folder_tfds.MyImages
  EXAMPLE_DIR = str(ROOT)
  SPLITS = {"train": 3, "validation": 2}
  SKIP_CHECKSUMS = True
