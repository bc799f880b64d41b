"""Property-based tests (hypothesis) of the annotation readers and of the box
and keypoint checks (`annotations.finalize`), issue 5.

Random valid inputs round-trip exactly; random invalid ones are refused with
a message naming the field. Example counts stay moderate (see `FEW`).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import helpers
from image_folder_tfds import annotations
from image_folder_tfds import readers
from image_folder_tfds import records

FEW = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.too_slow])
READERS = settings(max_examples=40, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.function_scoped_fixture])

unit = st.floats(0.0, 1.0, allow_nan=False)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
sizes = st.integers(1, 4000)


def record(objects, coords="normalized"):
  return records.ImageRecord(key="a.jpg", path="/x/a.jpg", file_name="a.jpg",
                             split="train", source="ann.json",
                             objects=tuple(objects), coords=coords)


@st.composite
def unit_boxes(draw):
  x0, x1 = sorted((draw(unit), draw(unit)))
  y0, y1 = sorted((draw(unit), draw(unit)))
  return (x0, y0, x1, y1)


@st.composite
def keypoints_inside(draw, max_size=5):
  return tuple(records.Keypoint(x=draw(unit), y=draw(unit),
                                v=draw(st.sampled_from([1, 2])),
                                score=draw(unit))
               for _ in range(draw(st.integers(0, max_size))))


# --- annotations.finalize ------------------------------------------------------


@FEW
@given(st.lists(st.tuples(unit_boxes(), keypoints_inside()), max_size=6),
       sizes, sizes)
def test_valid_normalized_objects_round_trip_exactly(objs, width, height):
  given_objects = [records.ObjectRecord(box=b, keypoints=k, id=str(i))
                   for i, (b, k) in enumerate(objs)]
  kept, problems = annotations.finalize(record(given_objects), width, height)
  assert problems == []
  assert kept == tuple(given_objects)  # Bit for bit.


@FEW
@given(sizes, sizes, st.data())
def test_valid_pixel_boxes_normalize_by_the_image_size(width, height, data):
  x0, x1 = sorted(data.draw(st.integers(0, width), label="x") for _ in "ab")
  y0, y1 = sorted(data.draw(st.integers(0, height), label="y") for _ in "ab")
  obj = records.ObjectRecord(box=(x0, y0, x1, y1), area=float(
      (x1 - x0) * (y1 - y0)))
  (kept,), problems = annotations.finalize(record([obj], "pixel"), width,
                                           height)
  assert problems == []
  for got, pixels, size in zip(kept.box, (x0, y0, x1, y1),
                               (width, height, width, height)):
    assert 0.0 <= got <= 1.0
    assert math.isclose(got * size, pixels, rel_tol=1e-12, abs_tol=1e-9)
  assert math.isclose(kept.area, (x1 - x0) * (y1 - y0) / (width * height),
                      rel_tol=1e-12, abs_tol=1e-12)


bad_value = st.sampled_from([math.nan, math.inf, -math.inf])


@FEW
@given(unit_boxes(), st.integers(0, 3), bad_value, sizes, sizes)
def test_nan_or_infinite_box_is_refused(box, which, value, width, height):
  box = list(box)
  box[which] = value
  kept, (problem,) = annotations.finalize(
      record([records.ObjectRecord(box=tuple(box), id="7")]), width, height)
  assert kept == ()
  assert problem.kind == "rejected" and "object 7" in problem.item
  assert "NaN or infinite" in problem.reason


@FEW
@given(unit_boxes(), st.booleans(), sizes, sizes)
def test_min_above_max_is_refused(box, swap_x, width, height):
  x0, y0, x1, y1 = box
  if swap_x:
    if x0 == x1:
      x1 = min(1.0, x0 + 0.5) if x0 < 1 else 0.0
    box = (max(x0, x1), y0, min(x0, x1), y1)
  else:
    if y0 == y1:
      y1 = min(1.0, y0 + 0.5) if y0 < 1 else 0.0
    box = (x0, max(y0, y1), x1, min(y0, y1))
  kept, (problem,) = annotations.finalize(
      record([records.ObjectRecord(box=box)]), width, height)
  assert kept == () and "min > max" in problem.reason


@FEW
@given(sizes, sizes, st.floats(1.001, 1e6), st.integers(0, 3),
       st.booleans())
def test_box_beyond_one_pixel_is_refused(width, height, pixels, which, low):
  """Over a pixel outside the image: refused, naming the box."""
  size = (width, height, width, height)[which]
  box = [0.0, 0.0, 1.0, 1.0]
  box[which] = -pixels / size if low else 1 + pixels / size
  if box[0] > box[2] or box[1] > box[3]:
    box[which] = -pixels / size if which >= 2 else 1 + pixels / size
    if box[0] > box[2] or box[1] > box[3]:
      return  # Min > max instead: the other test covers it.
  kept, (problem,) = annotations.finalize(
      record([records.ObjectRecord(box=tuple(box))]), width, height)
  assert kept == () and "lies outside the image" in problem.reason


@FEW
@given(sizes, sizes, st.floats(0.0, 0.999), st.integers(0, 3))
def test_box_within_one_pixel_is_clipped_and_reported(width, height, pixels,
                                                      which):
  size = (width, height, width, height)[which]
  box = [0.0, 0.0, 1.0, 1.0]
  box[which] = -pixels / size if which < 2 else 1 + pixels / size
  (kept,), problems = annotations.finalize(
      record([records.ObjectRecord(box=tuple(box))]), width, height)
  assert kept.box == (0.0, 0.0, 1.0, 1.0)
  if not 0 <= box[which] <= 1:  # (1 + 1e-307 is 1.0: nothing to clip.)
    (problem,) = problems
    assert problem.kind == "changed" and "clipped" in problem.reason
  else:
    assert problems == []


@FEW
@given(sizes, sizes, st.floats(1.001, 1e5), st.booleans(),
       st.sampled_from([1, 2]))
def test_visible_keypoint_beyond_a_pixel_is_refused(width, height, pixels,
                                                    on_x, v):
  x, y = (1 + pixels / width, 0.5) if on_x else (0.5, -pixels / height)
  kept, (problem,) = annotations.finalize(record([records.ObjectRecord(
      keypoints=(records.Keypoint(x=x, y=y, v=v),))]), width, height)
  assert kept == () and "keypoint 0" in problem.reason
  assert "lies outside the image" in problem.reason


@FEW
@given(sizes, sizes, finite, finite)
def test_invisible_keypoint_is_kept_as_given(width, height, x, y):
  kp = records.Keypoint(x=x, y=y, v=0)
  (kept,), problems = annotations.finalize(
      record([records.ObjectRecord(keypoints=(kp,))]), width, height)
  assert problems == [] and kept.keypoints == (kp,)


@FEW
@given(sizes, sizes, bad_value, st.booleans())
def test_nan_keypoint_is_refused(width, height, value, on_x):
  kp = records.Keypoint(x=value if on_x else 0.5, y=0.5 if on_x else value)
  kept, (problem,) = annotations.finalize(
      record([records.ObjectRecord(keypoints=(kp,))]), width, height)
  assert kept == () and "NaN or infinite" in problem.reason


# --- Readers: seed 001 JSON / JSON Lines, CSV -----------------------------------

NUM_IMAGES = 4
NUM_CLASSES = 3


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("props")
  for i in range(NUM_IMAGES):
    helpers.write_image(root / "img" / f"{i}.jpg", seed=i)
  return root


texts = st.text(st.characters(blacklist_categories=("Cs",),
                              blacklist_characters="\x00"), max_size=12)


@st.composite
def seed001_entry(draw, index):
  """A valid seed-001 entry for image `index`, and the objects it means."""
  n = draw(st.integers(0, 4))
  k = draw(st.integers(0, 3))  # Keypoints per object.
  boxes = [draw(unit_boxes()) for _ in range(n)]
  labels = [draw(st.integers(0, NUM_CLASSES - 1)) for _ in range(n)]
  scores = [draw(unit) for _ in range(n)]
  ids = [f"o{index}_{j}" for j in range(n)]
  kps = [[(draw(unit), draw(unit), draw(st.sampled_from([0, 1, 2])),
           draw(unit)) for _ in range(k)] for _ in range(n)]
  entry = {"filename": f"img/{index}.jpg", "id": draw(texts) or f"id{index}"}
  cls = draw(st.integers(0, NUM_CLASSES - 1))
  entry["class"] = {"label": cls, "text": f"class{cls}", "conf": draw(unit)}
  # ijson's C parser refuses integers beyond 64 bits ("integer overflow",
  # with the position: a clear error, tested in test_hostile).
  entry["extra"] = draw(st.dictionaries(
      texts, st.integers(-2**63, 2**63 - 1) | texts, max_size=3))
  if n:
    flat = [p for obj in kps for p in obj]
    entry["object"] = {
        "count": n, "id": ids,
        "bbox": {"xmin": [b[0] for b in boxes], "ymin": [b[1] for b in boxes],
                 "xmax": [b[2] for b in boxes], "ymax": [b[3] for b in boxes],
                 "label": labels, "text": [f"class{c}" for c in labels],
                 "score": scores},
    }
    if k:
      entry["object"]["parts"] = {"x": [p[0] for p in flat],
                                  "y": [p[1] for p in flat],
                                  "v": [p[2] for p in flat],
                                  "score": [p[3] for p in flat]}
  objects = tuple(
      records.ObjectRecord(
          box=boxes[j], label=labels[j], text=f"class{labels[j]}",
          score=scores[j], id=ids[j], keypoint_score_given=bool(k),
          keypoints=tuple(records.Keypoint(x=x, y=y, v=v, score=s)
                          for x, y, v, s in kps[j]))
      for j in range(n))
  return entry, objects


def scan_seed001(root, entries, lines):
  for old in root.glob("train.json*"):
    old.unlink()
  if lines:
    (root / "train.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in entries))
  else:
    (root / "train.json").write_text(json.dumps(entries))
  return readers.scan(str(root), "seed001", readers.ReadOptions(
      split_fractions={"train": 1.0}))


@READERS
@given(st.data(), st.booleans())
def test_seed001_valid_entries_round_trip_exactly(image_root, data, lines):
  pairs = [data.draw(seed001_entry(i), label=f"entry {i}")
           for i in range(data.draw(st.integers(1, NUM_IMAGES)))]
  result = scan_seed001(image_root, [e for e, _ in pairs], lines)
  assert [p for p in result.problems if p.kind != "warning"] == []
  by_name = {r.file_name: r for r in result.records}
  assert len(by_name) == len(pairs)
  for entry, objects in pairs:
    rec = by_name[entry["filename"]]
    assert rec.id == entry["id"]
    assert rec.label_conf == entry["class"]["conf"]
    assert rec.label_text == entry["class"]["text"]
    assert json.loads(rec.extra or "{}") == entry["extra"]
    assert rec.objects == objects  # Every float bit for bit.
    kept, problems = annotations.finalize(rec, 40, 30)
    assert problems == [] and kept == objects


WRONG = st.sampled_from(["text", "0.5", True, {"a": 1}, [1]])
FIELDS = [  # (where to put the wrong value, the field the message names)
    (("object", "bbox", "xmin", 0), "object.bbox.xmin[0]"),
    (("object", "bbox", "score", 0), "object.bbox.score[0]"),
    (("object", "parts", "v", 0), "object.parts.v[0]"),
    (("object", "parts", "x", 0), "object.parts.x[0]"),
    (("object", "count"), "object.count"),
    (("class", "conf"), "class.conf"),
    (("object", "bbox", "xmin"), "object.bbox.xmin"),
]


@READERS
@given(st.sampled_from(FIELDS), WRONG, st.booleans())
def test_seed001_wrong_values_are_refused_naming_the_field(
    image_root, field, wrong, lines):
  path, name = field
  entry = {"filename": "img/0.jpg", "class": {"label": 0, "conf": 0.5},
           "object": {"count": 1, "bbox": {"xmin": [0.1], "ymin": [0.1],
                                           "xmax": [0.9], "ymax": [0.9],
                                           "score": [0.5]},
                      "parts": {"x": [0.5], "y": [0.5], "v": [2]}}}
  target = entry
  for key in path[:-1]:
    target = target[key]
  if name == "object.bbox.xmin" and isinstance(wrong, list):
    wrong = "text"  # A list is the right type there.
  target[path[-1]] = wrong
  good = {"filename": "img/1.jpg"}
  result = scan_seed001(image_root, [entry, good], lines)
  refused = [p for p in result.problems if p.kind == "rejected"]
  assert refused, result.problems
  assert any(name in p.reason for p in refused), [str(p) for p in refused]
  assert all("train.json" in p.file for p in refused)
  assert "img/1.jpg" in {r.file_name for r in result.records}  # Others stay.


@st.composite
def csv_rows(draw):
  rows = []
  for i in range(draw(st.integers(1, NUM_IMAGES))):
    for _ in range(draw(st.integers(1, 3))):
      x0, x1 = sorted(draw(st.integers(0, 40)) for _ in "ab")
      y0, y1 = sorted(draw(st.integers(0, 30)) for _ in "ab")
      rows.append((f"img/{i}.jpg", f"class{draw(st.integers(0, 2))}",
                   (x0, y0, x1, y1)))
  return rows


@READERS
@given(csv_rows())
def test_csv_rows_round_trip_exactly(image_root, rows):
  for old in image_root.glob("*.json*"):
    old.unlink()
  (image_root / "train_labels.csv").write_text(
      "filename,width,height,class,xmin,ymin,xmax,ymax\n" + "".join(
          f"{f},40,30,{c},{b[0]},{b[1]},{b[2]},{b[3]}\n" for f, c, b in rows))
  try:
    result = readers.scan(str(image_root), "csv", readers.ReadOptions(
        split_fractions={"train": 1.0}))
  finally:
    (image_root / "train_labels.csv").unlink()
  assert [p for p in result.problems if p.kind != "warning"] == []
  got = sorted((r.file_name, o.text, o.box) for r in result.records
               for o in r.objects)
  assert got == sorted((f, c, tuple(float(v) for v in b)) for f, c, b in rows)
  for r in result.records:
    kept, problems = annotations.finalize(r, 40, 30)
    assert problems == []
    for o, k in zip(r.objects, kept):
      assert [round(v * s, 9) for v, s in zip(k.box, (40, 30, 40, 30))] == \
          list(o.box)


# --- Reader: COCO ---------------------------------------------------------------

COCO_CATEGORIES = [{"id": 1, "name": "cat", "keypoints": ["a", "b"]},
                   {"id": 2, "name": "dog", "keypoints": ["a", "b"]}]


@st.composite
def coco_annotation(draw, ann_id, image_id):
  x, w = draw(st.integers(0, 39)), draw(st.integers(0, 40))
  y, h = draw(st.integers(0, 29)), draw(st.integers(0, 30))
  w, h = min(w, 40 - x), min(h, 30 - y)
  box = [x + draw(st.sampled_from([0, 0.25, 0.5])) * (w > 0), float(y),
         float(w) * 0.5, float(h)]
  cat = draw(st.sampled_from(COCO_CATEGORIES))
  kps = [(draw(st.integers(0, 40)), draw(st.integers(0, 30)),
          draw(st.sampled_from([0, 1, 2]))) for _ in range(2)]
  ann = {"id": ann_id, "image_id": image_id, "category_id": cat["id"],
         "bbox": box, "area": draw(st.floats(0, 1200, allow_nan=False)),
         "iscrowd": draw(st.sampled_from([0, 1])),
         "keypoints": [v for kp in kps for v in kp],
         "num_keypoints": sum(1 for kp in kps if kp[2] > 0)}
  obj = records.ObjectRecord(
      box=(box[0], box[1], box[0] + box[2], box[1] + box[3]),
      label=["cat", "dog"].index(cat["name"]), text=cat["name"],
      area=ann["area"], id=str(ann_id), is_crowd=bool(ann["iscrowd"]),
      keypoints=tuple(records.Keypoint(x=kx, y=ky, v=kv)
                      for kx, ky, kv in kps))
  return ann, obj


def scan_coco(root, doc):
  folder = root / "annotations"
  folder.mkdir(exist_ok=True)
  path = folder / "person_keypoints_train.json"
  path.write_text(json.dumps(doc))
  try:
    return readers.scan(str(root), "coco", readers.ReadOptions(
        split_fractions={"train": 1.0}))
  finally:
    path.unlink()


@READERS
@given(st.data())
def test_coco_valid_annotations_round_trip_exactly(image_root, data):
  n_images = data.draw(st.integers(1, NUM_IMAGES), label="images")
  images = [{"id": i, "file_name": f"img/{i}.jpg", "width": 40, "height": 30}
            for i in range(n_images)]
  pairs = {}
  ann_id = 100
  for i in range(n_images):
    for _ in range(data.draw(st.integers(0, 3), label=f"objects of {i}")):
      pairs.setdefault(f"img/{i}.jpg", []).append(
          data.draw(coco_annotation(ann_id, i), label=f"annotation {ann_id}"))
      ann_id += 1
  result = scan_coco(image_root, {
      "categories": COCO_CATEGORIES, "images": images,
      "annotations": [a for objs in pairs.values() for a, _ in objs]})
  assert [p for p in result.problems if p.kind != "warning"] == []
  assert result.class_names == ["cat", "dog"]
  for rec in result.records:
    expected = tuple(o for _, o in pairs.get(rec.file_name, []))
    assert rec.objects == expected  # Every value as written.
    kept, problems = annotations.finalize(rec, 40, 30)
    assert problems == []
    for got, want in zip(kept, expected):
      assert [round(v * s, 9) for v, s in zip(got.box, (40, 30, 40, 30))] == \
          list(want.box)


COCO_WRONG = [  # (field, wrong value, what the message names)
    ("bbox", "[1, 2, 3, 4]", "bbox must be an array"),
    ("bbox", [1, 2, 3], "bbox must be [x, y, width, height]"),
    ("bbox", [1, 2, -3, 4], "negative width or height"),
    ("bbox", [1, "2", 3, 4], "bbox[1] must be a number"),
    ("category_id", 9, "category_id 9 is not among the categories"),
    ("category_id", "1", "category_id must be an integer"),
    ("iscrowd", 2, "iscrowd must be 0 or 1"),
    ("area", -5, "area is -5.0: negative"),
    ("keypoints", [1, 2, 3, 4], "keypoints has 4 numbers"),
    ("keypoints", [1, 2, 2, 3, 4, 7], "visibility must be 0, 1 or 2"),
    ("num_keypoints", 5, "num_keypoints is 5"),
]


@READERS
@given(st.sampled_from(COCO_WRONG), st.integers(0, NUM_IMAGES - 1))
def test_coco_wrong_values_are_refused_naming_the_field(image_root, wrong,
                                                        image_id):
  field, value, message = wrong
  good = {"id": 1, "image_id": image_id, "category_id": 1,
          "bbox": [1, 2, 3, 4], "keypoints": [1, 1, 2, 2, 2, 2],
          "num_keypoints": 2}
  bad = dict(good, id=2, **{field: value})
  result = scan_coco(image_root, {
      "categories": COCO_CATEGORIES,
      "images": [{"id": image_id, "file_name": f"img/{image_id}.jpg"}],
      "annotations": [good, bad]})
  (rec,) = result.records
  assert [o.id for o in rec.objects] == ["1"]  # The good one is kept.
  refused = [p for p in result.problems if p.kind == "rejected"]
  assert len(refused) == 1 and message in refused[0].reason, refused
  assert "object 2" in refused[0].item


# --- Reader: Pascal VOC ----------------------------------------------------------


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
  root = tmp_path_factory.mktemp("voc_props")
  for i in range(NUM_IMAGES):
    helpers.write_image(root / "JPEGImages" / f"{i}.jpg", seed=i)
  (root / "Annotations").mkdir()
  return root


pixel_x = st.floats(0, 40, allow_nan=False)
pixel_y = st.floats(0, 30, allow_nan=False)
voc_names = st.text(st.characters(whitelist_categories=("L", "N")),
                    min_size=1, max_size=8)


@READERS
@given(st.data())
def test_voc_valid_objects_round_trip_exactly(voc_root, data):
  from xml.sax.saxutils import escape  # pylint: disable=g-import-not-at-top
  for old in (voc_root / "Annotations").iterdir():
    old.unlink()
  expected = {}
  for i in range(data.draw(st.integers(1, NUM_IMAGES), label="images")):
    objs = []
    xml = [f"<annotation><filename>{i}.jpg</filename>"]
    for j in range(data.draw(st.integers(0, 3), label=f"objects of {i}")):
      x0, x1 = sorted((data.draw(pixel_x), data.draw(pixel_x)))
      y0, y1 = sorted((data.draw(pixel_y), data.draw(pixel_y)))
      name = data.draw(voc_names)
      xml.append(f"<object><name>{escape(name)}</name><bndbox>"
                 f"<xmin>{x0!r}</xmin><ymin>{y0!r}</ymin>"
                 f"<xmax>{x1!r}</xmax><ymax>{y1!r}</ymax></bndbox></object>")
      objs.append(records.ObjectRecord(box=(x0, y0, x1, y1), text=name,
                                       id=str(j)))
    xml.append("</annotation>")
    (voc_root / "Annotations" / f"{i}.xml").write_text("".join(xml))
    expected[f"JPEGImages/{i}.jpg"] = objs
  result = readers.scan(str(voc_root), "voc", readers.ReadOptions(
      split_fractions={"train": 1.0}))
  assert [p for p in result.problems if p.kind == "rejected"] == []
  assert {r.file_name for r in result.records} == set(expected)
  for rec in result.records:
    want = expected[rec.file_name]
    assert [(o.box, o.text, o.id) for o in rec.objects] == [
        (o.box, o.text, o.id) for o in want]  # Bit for bit.
    kept, problems = annotations.finalize(rec, 40, 30)
    assert problems == [] and len(kept) == len(want)
