"""Small and first datasets (issue 12): a split with nothing to write is left
out, not a failed build; tiny splits are warned about; splits stay stable.

Every case builds a real dataset from real files (good JPEGs and broken ones)
in each layout and annotation format, reads it back and compares it with the
input.
"""

from __future__ import annotations

import itertools
import json
import pathlib
import sys

import pytest

import helpers
from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.config import DEFAULT_SPLIT_FRACTIONS, MyImagesConfig

CLASSES = ("cat", "dog")
# Explicit splits (split folders, annotation files named by split), one per
# image in turn: 2 images give train and test, 4 give all three.
PATTERN = ("train", "test", "train", "validation", "train")
COCO_SPLIT = {"train": "train", "validation": "val", "test": "test"}


def plan(n: int, hashed: bool, folder=lambda i, split, cls: None):
  """[(index, class, split, good)] for `n` images.

  Broken: every image of the last split in (train, validation, test) order
  when there are several (so that split has nothing to write), and one train
  image from 5 images on; with a single split, its first image.
  """
  items = []
  for i in range(n):
    cls = CLASSES[i % 2]
    if hashed:
      split = splits_lib.assign_split(f"{cls}/img_{i}.jpg",
                                      DEFAULT_SPLIT_FRACTIONS)
    else:
      split = PATTERN[i % len(PATTERN)]
    items.append([i, cls, split, True])
  present = [s for s in splits_lib.CANONICAL_SPLITS
             if any(it[2] == s for it in items)]
  if len(present) > 1:
    for it in items:
      if it[2] == present[-1]:
        it[3] = False
    if n >= 5:
      next(it for it in items if it[2] == "train")[3] = False
  else:
    items[0][3] = False
  return [tuple(it) for it in items]


def _image(path: pathlib.Path, i: int, good: bool) -> None:
  if good:
    helpers.write_image(path, seed=i)
  else:  # A JPEG cut off after its header: "corrupt image".
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(helpers.encode(helpers.photo(i))[:300])


def write_folders(root, items):
  """Class folders, hash splits: `cls/img_i.jpg`."""
  out = {}
  for i, cls, split, good in items:
    rel = f"{cls}/img_{i}.jpg"
    _image(root / rel, i, good)
    out[rel] = (split, good)
  return out


def write_split_folders(root, items):
  out = {}
  for i, cls, split, good in items:
    rel = f"{split}/{cls}/img_{i}.jpg"
    _image(root / rel, i, good)
    out[rel] = (split, good)
  return out


def write_seed001(root, items):
  out, files = {}, {}
  for i, cls, split, good in items:
    rel = f"images/img_{i}.jpg"
    _image(root / rel, i, good)
    files.setdefault(split, []).append(
        {"filename": rel, "class": {"text": cls},
         "object": {"bbox": {"xmin": [0.1], "ymin": [0.1], "xmax": [0.9],
                             "ymax": [0.8]}, "text": [cls]}})
    out[rel] = (split, good)
  for split, entries in files.items():
    (root / f"{split}.json").write_text(json.dumps(entries))
  return out


def write_coco(root, items):
  out, by_split = {}, {}
  categories = [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]
  for i, cls, split, good in items:
    by_split.setdefault(split, []).append((i, cls, good))
  for split, entries in by_split.items():
    name = COCO_SPLIT[split]
    images = [{"id": i + 1, "file_name": f"img_{i}.jpg", "width": 40,
               "height": 30, "seed": i} for i, _, _ in entries]
    anns = [{"id": 100 + i, "image_id": i + 1, "bbox": [2, 3, 20, 10],
             "area": 200, "iscrowd": 0,
             "category_id": CLASSES.index(cls) + 1} for i, cls, _ in entries]
    helpers.write_coco(root, name, images, anns, categories, kind="instances")
    for i, _, good in entries:
      rel = f"{name}2017/img_{i}.jpg"
      if not good:
        _image(root / rel, i, False)
      out[rel] = (split, good)
  return out


def write_voc(root, items):
  out, lists = {}, {}
  for i, cls, split, good in items:
    rel = f"JPEGImages/img_{i}.jpg"
    _image(root / rel, i, good)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"img_{i}.xml").write_text(
        f"<annotation><filename>img_{i}.jpg</filename>"
        "<size><width>40</width><height>30</height><depth>3</depth></size>"
        f"<object><name>{cls}</name><bndbox><xmin>2</xmin><ymin>3</ymin>"
        "<xmax>30</xmax><ymax>20</ymax></bndbox></object></annotation>")
    lists.setdefault(COCO_SPLIT[split], []).append(f"img_{i}")
    out[rel] = (split, good)
  (root / "ImageSets" / "Main").mkdir(parents=True)
  for name, ids in lists.items():
    (root / "ImageSets" / "Main" / f"{name}.txt").write_text(
        "".join(f"{x}\n" for x in ids))
  return out


def write_csv(root, items):
  out, rows = {}, {}
  for i, cls, split, good in items:
    rel = f"images/img_{i}.jpg"
    _image(root / rel, i, good)
    rows.setdefault(COCO_SPLIT[split], []).append(
        f"img_{i}.jpg,40,30,{cls},2,3,30,20\n")
    out[rel] = (split, good)
  for name, lines in rows.items():
    (root / f"{name}_labels.csv").write_text(
        "filename,width,height,class,xmin,ymin,xmax,ymax\n" + "".join(lines))
  return out


WRITERS = {
    "folders": (write_folders, True),
    "split_folders": (write_split_folders, False),
    "seed001": (write_seed001, False),
    "coco": (write_coco, False),
    "voc": (write_voc, False),
    "csv": (write_csv, False),
}


def expected(files):
  """{split: sorted good file names} and {split: sorted broken ones}."""
  good, bad = {}, {}
  for rel, (split, ok) in files.items():
    (good if ok else bad).setdefault(split, []).append(rel)
  return ({s: sorted(v) for s, v in good.items()},
          {s: sorted(v) for s, v in bad.items()})


# Broken files at every size; without them at 1 and 2 images (the larger
# clean folders are built by the other tests).
CASES = [(n, True) for n in (1, 2, 5, 20)] + [(n, False) for n in (1, 2)]


@pytest.mark.parametrize("n,broken", CASES,
                         ids=[f"{n}-{'broken' if b else 'clean'}"
                              for n, b in CASES])
@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_tiny_datasets_build_and_leave_out_empty_splits(tmp_path, layout, n,
                                                        broken):
  write, hashed = WRITERS[layout]
  items = plan(n, hashed)
  if not broken:
    items = [(i, cls, split, True) for i, cls, split, _ in items]
  root = tmp_path / "in"
  root.mkdir()
  files = write(root, items)
  good, bad = expected(files)
  config = MyImagesConfig(num_workers=0)
  if not good:  # Nothing at all can be written: a clear error.
    with pytest.raises(records.InputError,
                       match=r"no image could be written: all 1 input\(s\)"
                       r" were rejected; first: .*img_0.jpg: corrupt image"):
      helpers.build(root, tmp_path / "out", config=config)
    return
  builder = helpers.build(root, tmp_path / "out", config=config)
  left_out = sorted(set(bad) - set(good))
  assert bool(bad) == broken
  if not hashed:  # Explicit splits: from 2 images on, one is left out.
    assert (left_out != []) == (broken and n > 1)
  assert sorted(builder.info.splits) == sorted(good)
  for split, names in good.items():
    got = sorted(ex["file_name"].decode()
                 for ex in helpers.read_split(builder, split))
    assert got == names, split
  report = helpers.report(builder)
  assert report["left_out_splits"] == left_out
  for split in left_out:
    assert report["counts"][split] == {
        "found": len(bad[split]), "written": 0, "rejected": len(bad[split])}
    (warning,) = [p for p in report["problems"] if p["kind"] == "warning"
                  and p["split"] == split and "left out" in p["reason"]]
    for rel in bad[split]:  # Each rejected file named.
      assert rel in warning["reason"], warning
  card = (builder.data_path / "dataset_card.md").read_text()
  if left_out:
    assert "Left out of the dataset, every input rejected" in card
    assert all(f"`{s}`" in card for s in left_out)
    assert f"{left_out[0]}: {len(bad[left_out[0]])} found, 0 written" in card
  else:
    assert "Left out" not in card
  # Found = written + rejected over every split, left out or not.
  total = sum(c["found"] for c in report["counts"].values())
  assert total == n


def test_strict_still_fails_on_a_split_left_out(tmp_path):
  root = tmp_path / "in"
  files = write_split_folders(root, plan(2, hashed=False))
  bad = [rel for rel, (_, ok) in files.items() if not ok]
  with pytest.raises(records.BadInputError,
                     match=f"{bad[0]}: corrupt image.*strict mode"):
    helpers.build(root, tmp_path / "out",
                  config=MyImagesConfig(name="s", strict=True))
  assert not list((tmp_path / "out").rglob("dataset_info.json"))


def names_in_splits(n: int) -> dict[str, list[str]]:
  return {s: [f"cat/img_{i}.jpg" for i in range(n)
              if splits_lib.assign_split(f"cat/img_{i}.jpg",
                                         DEFAULT_SPLIT_FRACTIONS) == s]
          for s in splits_lib.CANONICAL_SPLITS}


def test_ten_images_by_default(tmp_path):
  """What README says a 10-image user gets: each image's split from its own
  hash (80/10/10 on average, not exactly), a split with no image absent, a
  warning for every split under min_split_examples (10)."""
  root = tmp_path / "in"
  for i in range(10):
    helpers.write_image(root / "cat" / f"img_{i}.jpg", seed=i)
  want = {s: v for s, v in names_in_splits(10).items() if v}
  builder = helpers.build(root, tmp_path / "out")
  assert sorted(builder.info.splits) == sorted(want)
  for split, names in want.items():
    assert sorted(ex["file_name"].decode() for ex in
                  helpers.read_split(builder, split)) == names
    assert builder.info.splits[split].num_examples == len(names)
  report = helpers.report(builder)
  small = {p["split"]: p["reason"] for p in report["problems"]
           if p["kind"] == "warning" and "min_split_examples" in p["reason"]}
  assert sorted(small) == sorted(want)  # All of them hold fewer than 10.
  for split, reason in small.items():
    assert f"holds only {len(want[split])} example(s)" in reason
  assert report["left_out_splits"] == []  # Nothing rejected: just absent.

  # The minimum is the user's choice (it changes no data: same config).
  builder = helpers.build(root, tmp_path / "out2",
                          config=MyImagesConfig(min_split_examples=2))
  small = sorted(p["split"] for p in helpers.report(builder)["problems"]
                 if "min_split_examples=2" in p["reason"])
  assert small == sorted(s for s, v in want.items() if len(v) < 2)
  assert builder.builder_config.name == "default"
  with pytest.raises(ValueError, match="min_split_examples"):
    MyImagesConfig(min_split_examples=-1)


def test_adding_images_moves_no_existing_image(tmp_path):
  """10 images, then 10 more: each of the first 10 stays in its split."""
  root = tmp_path / "in"
  for i in range(10):
    helpers.write_image(root / "cat" / f"img_{i}.jpg", seed=i)
  first = helpers.read_all(helpers.build(root, tmp_path / "a"))
  for i in range(10, 20):
    helpers.write_image(root / "cat" / f"img_{i}.jpg", seed=i)
  second = helpers.read_all(helpers.build(root, tmp_path / "b"))
  assert len(first) == 10 and len(second) == 20
  for name, ex in first.items():
    assert second[name]["split"] == ex["split"], name


def twenty_two_photos(root) -> tuple[list[str], list[str]]:
  """The issue's folder: 22 photos in three class folders, 5 broken, among
  them the one image that hashes to `test`. Returns (good, broken)."""
  test, others = None, []
  for k in itertools.count():
    rel = f"{('bird', 'fish', 'frog')[k % 3]}/IMG_{k:04d}.jpg"
    if splits_lib.assign_split(rel, DEFAULT_SPLIT_FRACTIONS) == "test":
      test = test or rel
    elif len(others) < 21:
      others.append(rel)
    if test and len(others) == 21:
      break
  broken = [test] + others[:4]
  for i, rel in enumerate([test] + others):
    _image(root / rel, i, rel not in broken)
  return others[4:], broken


@pytest.mark.slow
def test_twenty_two_photos_build_with_the_documented_command(tmp_path):
  root = tmp_path / "photos"
  good, broken = twenty_two_photos(root)
  assert len(good) == 17 and len(broken) == 5
  out = tmp_path / "out"
  run = helpers.run(helpers.build_command(root, out))
  assert run.returncode == 0, run.stderr[-3000:]
  assert "'test' is left out of the dataset" in run.stderr
  load = helpers.run([sys.executable, "-c", (
      "import json, sys, tensorflow_datasets as tfds\n"
      "b = tfds.builder('my_images', data_dir=sys.argv[1])\n"
      "print(json.dumps({s: sorted(e['file_name'].decode() for e in"
      " tfds.as_numpy(b.as_dataset(split=s))) for s in b.info.splits}))"),
      str(out)])
  assert load.returncode == 0, load.stderr[-3000:]
  got = json.loads(load.stdout.strip().splitlines()[-1])
  assert "test" not in got
  assert sorted(n for v in got.values() for n in v) == sorted(good)
