"""TF Object Detection CSV (`dummy_data/csv`, seed 003): built and compared."""

from __future__ import annotations

import collections
import csv

import pytest
import tensorflow_datasets as tfds

import annotation_helpers as ah
import helpers
import image_folder_tfds

ROOT = helpers.DUMMY_DATA / "csv"
FILES = {"train": "train_labels.csv", "test": "test_labels.csv"}


def _expected():
  rows = []
  for split, name in FILES.items():
    with open(ROOT / name, newline="") as f:
      for line, row in enumerate(csv.DictReader(f), start=2):
        rows.append((split, line, row))
  names = sorted({row["class"] for _, _, row in rows})
  out = collections.defaultdict(lambda: [None, []])
  for split, line, row in rows:
    rel = f"images/{row['filename']}"
    w, h = ah.display_size(ROOT / rel)
    entry = out[rel]
    entry[0] = split
    entry[1].append({
        "box": (float(row["xmin"]) / w, float(row["ymin"]) / h,
                float(row["xmax"]) / w, float(row["ymax"]) / h),
        "label": names.index(row["class"]), "text": row["class"],
        "id": str(line), "keypoints": [],
    })
  return names, dict(out)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("csv")
  builder = helpers.build(ROOT, data_dir)
  return builder, ah.load_all(data_dir)  # Read back with tfds.load.


def test_every_box_and_label_read_back(built):
  builder, examples = built
  names, expected = _expected()
  assert ah.class_names(builder) == names
  assert sorted(examples) == sorted(expected)
  for rel, (split, objs) in expected.items():
    ex = examples[rel]
    assert ex["split"] == split
    got = sorted(ah.objects(ex), key=lambda o: int(o["id"]))
    assert len(got) == len(objs), rel
    for g, w in zip(got, objs):
      ah.assert_object(g, w, f"{rel} line {w['id']}")
  assert not ah.problems(helpers.report(builder))


class CsvBuilderTest(tfds.testing.DatasetBuilderTestCase):
  """TFDS's builder test over `dummy_data/csv`."""

  DATASET_CLASS = image_folder_tfds.MyImages
  EXAMPLE_DIR = str(ROOT)
  SPLITS = {"train": 3, "test": 1}
  SKIP_CHECKSUMS = True
