"""Pascal VOC (`dummy_data/voc`): built, read back, compared with the XML."""

from __future__ import annotations

import json
import pathlib
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


# --- VOC 2012's test set: images listed without an XML --------------------------

BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><filename>bomb.jpg</filename><object><name>&lol9;</name>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>
</object></annotation>
"""
BROKEN = b"\xff\xd8\xff\xe0 not really a JPEG"


def _xml(filename, size, objects, folder="JPEGImages"):
  """A VOC annotation as labelImg writes it (`objects`: (name, box))."""
  objs = "".join(
      f"<object><name>{name}</name><pose>Unspecified</pose>"
      "<truncated>0</truncated><difficult>0</difficult><bndbox>"
      + "".join(f"<{c}>{v}</{c}>" for c, v in zip(
          ("xmin", "ymin", "xmax", "ymax"), box))
      + "</bndbox></object>" for name, box in objects)
  return (f"<annotation><folder>{folder}</folder><filename>{filename}</filename>"
          f"<path>/home/me/{folder}/{filename}</path><source><database>Unknown"
          f"</database></source><size><width>{size[0]}</width><height>{size[1]}"
          f"</height><depth>3</depth></size><segmented>0</segmented>{objs}"
          "</annotation>")


# id: (split list, has XML, image: "good" | "broken" | None, objects)
DEVKIT = {
    "2012_000001": ("train", True, "good", [("dog", (2, 3, 30, 25))]),
    "2012_ünï": ("train", True, "good", [("cat", (1, 1, 39, 29)),
                                          ("dog", (5, 6, 7, 8))]),
    "2012_bomb": ("train", True, "good", []),
    "2012_000002": ("train", True, "broken", [("cat", (1, 1, 9, 9))]),
    "2012_000003": ("val", True, "good", [("cat", (4, 5, 20, 21))]),
    "2012_000004": ("val", True, "broken", [("dog", (1, 1, 9, 9))]),
    "2012_100001": ("test", False, "good", []),
    "2012_100002": ("test", False, "good", []),
    "2012_100003": ("test", False, None, []),  # Listed, neither XML nor image.
    "2012_100004": ("test", False, "broken", []),
}


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
  """A VOC 2012-like devkit: train and val annotated, test without XMLs."""
  root = tmp_path_factory.mktemp("voc2012") / "VOC2012"
  main = root / "ImageSets" / "Main"
  main.mkdir(parents=True)
  (root / "Annotations").mkdir()
  lists = {}
  for i, (image_id, (split, has_xml, image, objects)) in enumerate(
      DEVKIT.items()):
    lists.setdefault(split, []).append(image_id)
    jpg = root / "JPEGImages" / f"{image_id}.jpg"
    if image == "good":
      helpers.write_image(jpg, seed=i, width=40, height=30)
    elif image == "broken":
      jpg.parent.mkdir(parents=True, exist_ok=True)
      jpg.write_bytes(BROKEN)
    if has_xml:
      (root / "Annotations" / f"{image_id}.xml").write_text(
          BOMB if image_id == "2012_bomb" else
          _xml(f"{image_id}.jpg", (40, 30), objects))
  for split, ids in lists.items():
    (main / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
  data_dir = root.parent / "out"
  builder = helpers.build(root, data_dir)
  return root, builder, ah.load_all(data_dir)


def test_listed_images_without_xml_are_kept_without_objects(devkit):
  """VOC 2012's test set: listed in test.txt, no Annotations/<id>.xml. TFDS's
  `voc` dataset keeps these images with no objects; so does this reader."""
  root, builder, examples = devkit
  for image_id in ("2012_100001", "2012_100002"):
    ex = examples[f"JPEGImages/{image_id}.jpg"]
    assert ex["split"] == "test" and ah.objects(ex) == []
    assert ex["id"].decode() == image_id
  report = helpers.report(builder)
  warning = ah.find_problem(report, "test.txt", "have no XML", kind="warning")
  assert warning["reason"].startswith("3 listed image(s)")


def test_listed_image_without_xml_or_image_is_rejected_with_its_line(devkit):
  _, builder, _ = devkit
  report = helpers.report(builder)
  problem = ah.find_problem(report, "test.txt", "'2012_100003' has no"
                            " Annotations/2012_100003.xml", kind="rejected")
  assert problem["item"] == "line 3: 2012_100003"
  assert "its image is missing" in problem["reason"]
  assert "JPEGImages/2012_100003.jpg" in problem["reason"]


def test_billion_laughs_is_refused_not_expanded(devkit):
  root, builder, examples = devkit
  report = helpers.report(builder)
  problem = ah.find_problem(report, "2012_bomb.xml", kind="rejected")
  assert "which are refused, not expanded" in problem["reason"]
  assert "EntitiesForbidden" in problem["reason"]
  assert "JPEGImages/2012_bomb.jpg" not in examples


def test_devkit_boxes_splits_and_broken_images(devkit):
  _, builder, examples = devkit
  names = ah.class_names(builder)
  assert names == ["cat", "dog"]
  for image_id, (split, has_xml, image, objects) in DEVKIT.items():
    rel = f"JPEGImages/{image_id}.jpg"
    if image != "good" or image_id == "2012_bomb":
      assert rel not in examples
      continue
    ex = examples[rel]
    assert ex["split"] == {"val": "validation"}.get(split, split)
    got = ah.objects(ex, names)
    assert len(got) == len(objects), rel
    for i, (g, (name, (x1, y1, x2, y2))) in enumerate(zip(got, objects)):
      ah.assert_object(g, {"box": (x1 / 40, y1 / 30, x2 / 40, y2 / 30),
                           "text": name, "id": str(i)}, rel)
  report = helpers.report(builder)
  broken = {pathlib.Path(p["file"]).name for p in ah.problems(report, "rejected")
            if "2012_bomb" not in p["file"] and "test.txt" not in p["file"]}
  assert broken == {"2012_000002.jpg", "2012_000004.jpg", "2012_100004.jpg"}
  for split, counts in report["counts"].items():
    assert counts["found"] == counts["written"] + counts["rejected"], split
  assert report["counts"]["test"] == {"found": 4, "written": 2, "rejected": 2}


# --- labelImg: an .xml beside each image, in one folder ----------------------------


def _label_img_folder(root: pathlib.Path, n: int):
  """`n` images with an XML beside each, as labelImg saves them; from 20
  images on, the messy cases too. Returns {rel: (objects or None)}: None for
  images not written (broken, or their XML refused)."""
  from image_folder_tfds import splits  # pylint: disable=g-import-not-at-top
  # Named so that 20 images hash to 14 train, 3 validation and 3 test.
  names = [f"pic{i}.jpg" for i in range(n)]
  if n >= 20:
    names[1] = "ünïcödé ñame.jpg"
  expected = {}
  broken_in = set()
  for i, name in enumerate(names):
    stem = name[:-4]
    objects = [(("cat", "dog")[i % 2], (1 + i % 5, 2, 20 + i % 7, 25))]
    if i % 4 == 3:
      objects.append(("dog", (0, 0, 40, 30)))
    helpers.write_image(root / name, seed=i, width=40, height=30)
    (root / f"{stem}.xml").write_text(_xml(name, (40, 30), objects, "imgs"))
    expected[name] = objects
    split = splits.assign_split(name, DEFAULT_FRACTIONS)
    if n >= 20 and split not in broken_in and i >= 6:  # One per split.
      broken_in.add(split)
      (root / name).write_bytes(BROKEN)
      expected[name] = None
  if n >= 20:
    # Older labelImg versions wrote <filename> without the extension.
    (root / "pic2.xml").write_text(_xml("pic2", (40, 30), expected["pic2.jpg"],
                                        "imgs"))
    # Not annotated yet: no XML. An empty XML file: refused, its image too.
    (root / "pic4.xml").unlink()
    expected["pic4.jpg"] = []
    (root / "pic5.xml").write_text("")
    expected["pic5.jpg"] = None
  return expected


DEFAULT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


_LABEL_IMG_BUILDS: dict[int, tuple] = {}


def _label_img_build(n, tmp_path_factory):
  """The labelImg folder of `n` images, built once per module."""
  if n not in _LABEL_IMG_BUILDS:
    tmp = tmp_path_factory.mktemp(f"labelimg{n}")
    expected = _label_img_folder(tmp / "imgs", n)
    builder = helpers.build(tmp / "imgs", tmp / "out")
    _LABEL_IMG_BUILDS[n] = (expected, builder, ah.load_all(tmp / "out"))
  return _LABEL_IMG_BUILDS[n]


@pytest.fixture(scope="module", params=[1, 2, 20])
def label_img(request, tmp_path_factory):
  return _label_img_build(request.param, tmp_path_factory)


def test_label_img_folder_builds_every_box(label_img):
  from image_folder_tfds import splits  # pylint: disable=g-import-not-at-top
  expected, builder, examples = label_img
  assert builder.info.metadata["layout"] == "voc: an .xml beside each image"
  names = ah.class_names(builder)
  assert sorted(examples) == sorted(k for k, v in expected.items()
                                    if v is not None)
  for rel, ex in examples.items():
    assert ex["split"] == splits.assign_split(rel, DEFAULT_FRACTIONS)
    want = expected[rel]
    got = ah.objects(ex, names)
    assert len(got) == len(want), rel
    for i, (g, (name, (x1, y1, x2, y2))) in enumerate(zip(got, want)):
      ah.assert_object(g, {"box": (x1 / 40, y1 / 30, x2 / 40, y2 / 30),
                           "text": name, "id": str(i)}, rel)
  report = helpers.report(builder)
  for split, counts in report["counts"].items():
    assert counts["found"] == counts["written"] + counts["rejected"], split
  if len(expected) < 20:
    assert not ah.problems(report)


def test_label_img_messy_cases_are_reported(tmp_path_factory):
  """20 images: a unicode name, an image not annotated yet (no XML), an
  empty XML, an old labelImg <filename> without its extension, and a broken
  image in each split."""
  _, builder, examples = _label_img_build(20, tmp_path_factory)
  report = helpers.report(builder)
  ah.find_problem(report, "pic5.xml", "not a readable XML file",
                  kind="rejected")
  assert "pic5.jpg" not in examples
  warning = ah.find_problem(report, "no .xml beside it", kind="warning")
  assert warning["file"] == "pic4.jpg" and "(1 image(s) in the top folder" in (
      warning["reason"])
  assert ah.objects(examples["pic4.jpg"]) == []
  assert "pic2.jpg" in examples  # <filename> without extension: paired.
  extra = json.loads(examples["ünïcödé ñame.jpg"]["extra"].decode())
  assert extra["path"] == "/home/me/imgs/ünïcödé ñame.jpg"
  broken = [p for p in ah.problems(report, "rejected") if p["file"].endswith(
      ".jpg")]
  assert len(broken) == 3  # One per split.
  assert len(ah.problems(report, "rejected")) == 4
  assert len(ah.problems(report)) == 5


def test_xml_beside_images_claimed_only_on_positive_evidence(tmp_path):
  """Claimed: XMLs named like the images beside them whose root element is
  <annotation>, for at least half of the images, at the top or one folder
  down. Not: another XML (CVAT's <annotations>), a stray XML in a class
  folder, or only files that defusedxml refuses."""
  from image_folder_tfds import readers  # pylint: disable=g-import-not-at-top
  options = readers.ReadOptions(split_fractions=DEFAULT_FRACTIONS)

  def voc_claim(files: dict[str, str]):
    root = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
    for rel, text in files.items():
      (root / rel).parent.mkdir(parents=True, exist_ok=True)
      if rel.endswith(".jpg"):
        helpers.write_image(root / rel)
      else:
        (root / rel).write_text(text)
    return [c for c in readers.claims(str(root), options) if c.layout == "voc"]

  voc = _xml("a.jpg", (40, 30), [("dog", (1, 2, 3, 4))])
  (claim,) = voc_claim({"train/a.jpg": "", "train/a.xml": voc,
                        "valid/b.jpg": "", "valid/b.xml": voc,
                        "README.roboflow.txt": "roboflow"})
  assert claim.evidence == ("train/a.xml", "valid/b.xml")
  assert voc_claim({"a.jpg": "", "a.xml": voc, "b.jpg": ""})  # Half.
  assert not voc_claim({"a.jpg": "", "a.xml": "<annotations><image/>"
                        "</annotations>", "b.jpg": "", "b.xml": voc})
  assert not voc_claim({"cat/1.jpg": "", "cat/1.xml": voc, "cat/2.jpg": "",
                        "dog/3.jpg": ""})
  assert not voc_claim({"a.jpg": "", "a.xml": BOMB})
  assert not voc_claim({"a.jpg": "", "b.xml": voc})  # Not named like it.
  # Not at the top nor in a split folder: not claimed (class folders then
  # refuse the folder, naming layout "voc"), but read when chosen.
  assert not voc_claim({"batch1/a.jpg": "", "batch1/a.xml": voc})
  root = tmp_path / f"case{len(list(tmp_path.iterdir())) - 1}"
  scan = readers.scan(str(root), "voc", options)
  assert [(r.key, len(r.objects)) for r in scan.records] == [("batch1/a.jpg", 1)]
  # VOC 2012's test download: JPEGImages/ and ImageSets/Main/test.txt only.
  (claim,) = voc_claim({"JPEGImages/x.jpg": "",
                        "ImageSets/Main/test.txt": "x\n"})
  assert claim.evidence == ("ImageSets/Main/test.txt",)
  root = tmp_path / f"case{len(list(tmp_path.iterdir())) - 1}"
  scan = readers.scan(str(root), "auto", options)
  assert [(r.key, r.split, r.objects) for r in scan.records] == [
      ("JPEGImages/x.jpg", "test", ())]
