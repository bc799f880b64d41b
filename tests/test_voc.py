"""Pascal VOC (`dummy_data/voc`): built, read back, compared with the XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import tensorflow_datasets as tfds

import annotation_helpers as ah
import helpers
import image_folder_tfds

ROOT = helpers.DUMMY_DATA / "voc"
SPLIT_FILES = {"train": "train.txt", "validation": "val.txt"}


def _expected():
  """(class names, {file_name: (split, [expected objects], xml root)})."""
  parsed = {}
  for split, name in SPLIT_FILES.items():
    for stem in (ROOT / "ImageSets" / "Main" / name).read_text().split():
      parsed[stem] = (split, ET.parse(ROOT / "Annotations" / f"{stem}.xml"))
  names = sorted({o.findtext("name") for _, t in parsed.values()
                  for o in t.getroot().iter("object")})
  out = {}
  for stem, (split, tree) in parsed.items():
    top = tree.getroot()
    rel = f"JPEGImages/{top.findtext('filename')}"
    w, h = ah.display_size(ROOT / rel)
    objs = []
    for i, o in enumerate(top.iter("object")):
      b = {c: float(o.findtext(f"bndbox/{c}"))
           for c in ("xmin", "ymin", "xmax", "ymax")}
      objs.append({
          "box": (b["xmin"] / w, b["ymin"] / h, b["xmax"] / w, b["ymax"] / h),
          "label": names.index(o.findtext("name")), "text": o.findtext("name"),
          "id": str(i), "keypoints": [],
      })
    out[rel] = (split, objs, top)
  return names, out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp("voc")
  builder = helpers.build(ROOT, data_dir)
  return builder, ah.load_all(data_dir)  # Read back with tfds.load.


def test_splits_come_from_imagesets(built):
  builder, examples = built
  _, expected = _expected()
  assert {k: v[0] for k, v in expected.items()} == {
      k: ex["split"] for k, ex in examples.items()}
  assert builder.info.metadata["layout"].startswith("voc")


def test_every_box_and_label_read_back(built):
  builder, examples = built
  names, expected = _expected()
  assert ah.class_names(builder) == names
  for rel, (_, objs, _) in expected.items():
    got = ah.objects(examples[rel])
    assert len(got) == len(objs), rel
    for i, (g, w) in enumerate(zip(got, objs)):
      ah.assert_object(g, w, f"{rel} object {i}")


def test_other_fields_kept_in_extra(built):
  _, examples = built
  _, expected = _expected()
  for rel, (_, objs, top) in expected.items():
    extra = json.loads(examples[rel]["extra"].decode())
    assert extra["folder"] == top.findtext("folder")
    assert extra["segmented"] == top.findtext("segmented")
    for i, o in enumerate(top.iter("object")):
      kept = extra["objects"][str(i)]
      for field in ("pose", "truncated", "difficult"):
        assert kept[field] == o.findtext(field), (rel, i, field)


class VocBuilderTest(tfds.testing.DatasetBuilderTestCase):
  """TFDS's builder test over `dummy_data/voc`."""

  DATASET_CLASS = image_folder_tfds.MyImages
  EXAMPLE_DIR = str(ROOT)
  SPLITS = {"train": 2, "validation": 2}
  SKIP_CHECKSUMS = True
