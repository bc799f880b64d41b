"""The hostile input corpus: each case writes its data folder and says what
must happen (issue 5).

A case is a function `make(root) -> Expect`. Most cases are generated at run
time because they cannot be committed (FIFOs, symbolic link loops, file
names with newlines) or are large (a million objects, a 30 MB JSON file). `python tests/hostile/corpus.py OUT` writes every case to
`OUT/<case>/` for a look by hand (cases that need a monkeypatch, such as a
file that vanishes between scan and read, are set up by test_hostile.py).

Expected outcomes:
* `built`: the build finishes; exactly `written` are the examples; every
  (file part, reason part) in `problems` is in the build report; `check`,
  if any, looks at the examples themselves (no silently wrong value).
* `error`: the build stops with `error_type`, whose message contains every
  string of `error` (the file and the problem).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import struct
import sys
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import helpers  # noqa: E402  pylint: disable=wrong-import-position

from image_folder_tfds import records  # noqa: E402  pylint: disable=wrong-import-position


@dataclasses.dataclass
class Expect:
  outcome: str  # "built" or "error".
  written: set[str] = dataclasses.field(default_factory=set)
  problems: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  error_type: type = records.InputError
  error: list[str] = dataclasses.field(default_factory=list)
  check: Callable[[dict], None] | None = None  # {file_name: example}.
  # Every case builds one split (few files: hash splits would leave one
  # split empty, which is an error of its own).
  config: dict = dataclasses.field(default_factory=lambda: dict(BASE_CONFIG))
  timeout: float = 120.0


BASE_CONFIG = {"name": "hostile", "split_fractions": {"train": 1.0}}
CASES: dict[str, Callable[[pathlib.Path], Expect]] = {}


def case(fn):
  CASES[fn.__name__] = fn
  return fn


def img(path, seed=0, w=40, h=30, fmt="JPEG") -> bytes:
  return helpers.write_image(path, seed=seed, fmt=fmt, width=w, height=h)


def seed001(root, entries, name="train.json", lines=False):
  """A seed-001 annotation file: a JSON list, or JSON Lines."""
  path = pathlib.Path(root) / name
  if lines:
    path.write_text("".join(e if isinstance(e, str) else json.dumps(e) + "\n"
                            for e in entries), encoding="utf-8")
  else:
    path.write_text(json.dumps(entries), encoding="utf-8")
  return path


def box(x0=0.1, y0=0.2, x1=0.5, y1=0.6):
  return {"xmin": [x0], "ymin": [y0], "xmax": [x1], "ymax": [y1]}


# --- JSON: size, nesting, types --------------------------------------------------


@case
def deeply_nested_json_list(root):
  """100,000 nested lists inside `extra` of a JSON list file."""
  img(root / "img/a.jpg")
  depth = 100_000
  text = ('[{"filename": "img/a.jpg", "extra": ' + "[" * depth + "]" * depth
          + "}]")
  (root / "train.json").write_text(text)
  # Named as seed 001 (auto-detection reads the first entry, which fails the
  # same way, so it would take the file for a stray one and report it so).
  return Expect("error", error=["train.json", "nested more than 256 levels"],
                config={**BASE_CONFIG, "layout": "seed001"})


@case
def deeply_nested_json_lines(root):
  """One line nested 100,000 deep; the other line is fine."""
  img(root / "img/a.jpg", 1)
  img(root / "img/b.jpg", 2)
  depth = 100_000
  (root / "train.jsonl").write_text(
      '{"filename": "img/a.jpg"}\n'
      '{"filename": "img/b.jpg", "extra": ' + "[" * depth + "]" * depth + "}\n")
  return Expect("built", written={"img/a.jpg"},
                problems=[("train.jsonl", "nest")])


@case
def huge_json(root):
  """A 30 MB JSON list: 100,000 entries for missing files and a 20 MB
  `extra` string, around one real image."""
  img(root / "img/real.jpg")
  entries = [{"filename": "img/real.jpg", "extra": "x" * 20_000_000}]
  entries += [{"filename": f"img/missing_{i}.jpg"} for i in range(100_000)]
  seed001(root, entries)

  def check(examples):
    assert len(examples["img/real.jpg"]["extra"]) == 20_000_000

  return Expect("built", written={"img/real.jpg"},
                problems=[("train.json", "listed image 'img/missing_99999.jpg'"
                           " not found")], check=check, timeout=240)


@case
def numbers_as_strings(root):
  """Seed 001 allows a class label as a digit string, no other number."""
  img(root / "img/a.jpg")
  seed001(root, [{
      "filename": "img/a.jpg", "class": {"label": "1", "conf": "0.9"},
      "object": {"bbox": {"xmin": ["0.1"], "ymin": [0.2], "xmax": [0.5],
                          "ymax": [0.6]}}}])
  return Expect("built", written={"img/a.jpg"}, problems=[
      ("train.json", "class.conf must be a number, got '0.9'"),
      ("train.json", "object.bbox.xmin[0] must be a number, got '0.1'"),
  ], check=lambda ex: _no_objects(ex["img/a.jpg"]))


def _no_objects(example):
  # Schema 2 stores no objects at all when no image has one.
  assert "objects" not in example or len(example["objects"]["bbox"]) == 0


@case
def nan_and_infinity_json_lines(root):
  """NaN, Infinity and 1e999 (overflows to infinity) as coordinates."""
  for i in range(4):
    img(root / f"img/{i}.jpg", i)
  lines = [
      '{"filename": "img/0.jpg", "object": {"bbox": {"xmin": [NaN], "ymin": [0],'
      ' "xmax": [1], "ymax": [1]}}}\n',
      '{"filename": "img/1.jpg", "object": {"bbox": {"xmin": [0], "ymin": [0],'
      ' "xmax": [Infinity], "ymax": [1]}}}\n',
      '{"filename": "img/2.jpg", "object": {"parts": {"x": [1e999],'
      ' "y": [0.5]}}}\n',
      '{"filename": "img/3.jpg", "object": {"bbox": {"xmin": [0.1],'
      ' "ymin": [0.1], "xmax": [0.9], "ymax": [0.9]}}}\n',
  ]
  seed001(root, lines, "train.jsonl", lines=True)

  def check(ex):
    for name in ("img/0.jpg", "img/1.jpg", "img/2.jpg"):
      _no_objects(ex[name])
    np.testing.assert_allclose(ex["img/3.jpg"]["objects"]["bbox"],
                               [[0.1, 0.1, 0.9, 0.9]], rtol=1e-6)

  return Expect("built", written={f"img/{i}.jpg" for i in range(4)}, problems=[
      ("train.jsonl", "object.bbox.xmin[0] is nan (NaN or infinite)"),
      ("train.jsonl", "object.bbox.xmax[0] is inf (NaN or infinite)"),
      ("train.jsonl", "object.parts.x[0] is inf (NaN or infinite)"),
  ], check=check)


@case
def nan_in_json_list(root):
  """NaN is not strict JSON, but `json.dump` writes it: in a JSON list it
  rejects its own object only, as in JSON Lines (found by auto-detection)."""
  for i in range(3):
    img(root / f"img/{i}.jpg", i)
  entries = [
      {"filename": "img/0.jpg", "object": {"bbox": {
          "xmin": [float("nan")], "ymin": [0], "xmax": [1], "ymax": [1]}}},
      {"filename": "img/1.jpg", "object": {"bbox": {
          "xmin": [0.1], "ymin": [0.1], "xmax": [0.9], "ymax": [0.9]}}},
      {"filename": "img/2.jpg", "object": {"bbox": {
          "xmin": [0], "ymin": [0], "xmax": [float("inf")], "ymax": [1]}}},
  ]
  (root / "train.json").write_text(json.dumps(entries))  # Writes NaN.

  def check(ex):
    _no_objects(ex["img/0.jpg"])
    _no_objects(ex["img/2.jpg"])
    np.testing.assert_allclose(ex["img/1.jpg"]["objects"]["bbox"],
                               [[0.1, 0.1, 0.9, 0.9]], rtol=1e-6)

  return Expect("built", written={f"img/{i}.jpg" for i in range(3)}, problems=[
      ("train.json", "object.bbox.xmin[0] is nan (NaN or infinite)"),
      ("train.json", "object.bbox.xmax[0] is inf (NaN or infinite)"),
  ], check=check)


@case
def broken_json_list(root):
  """A JSON list that is not JSON at all stops, naming file and position."""
  img(root / "img/a.jpg")
  (root / "train.json").write_text('[{"filename": "img/a.jpg", "class": }]')
  return Expect("error", error=["train.json", "not valid JSON"],
                config={**BASE_CONFIG, "layout": "seed001"})


@case
def wrong_types(root):
  for i in range(6):
    img(root / f"img/{i}.jpg", i)
  seed001(root, [
      {"filename": 12345},
      {"filename": "img/0.jpg", "object": [1, 2, 3]},
      {"filename": "img/1.jpg", "object": {"bbox": {
          "xmin": {"v": 1}, "ymin": [0], "xmax": [1], "ymax": [1]}}},
      {"filename": "img/2.jpg", "object": {"count": "1", "bbox": box()}},
      {"filename": "img/3.jpg", "object": {"parts": {"x": [0.5], "y": [0.5],
                                                     "v": [1.5]}}},
      {"filename": "img/4.jpg", "class": ["cat"]},
      ["not", "an", "object"],
      {"filename": "img/5.jpg", "id": {"nested": True}},
  ])
  return Expect(
      "built", written={"img/3.jpg", "img/4.jpg"}, problems=[
          ("train.json", "image file name must be a non-empty string, got"
           " 12345"),
          ("train.json", "object must be an object (a dict), got [1, 2, 3]"),
          ("train.json", "object.bbox.xmin must be an array"),
          ("train.json", "object.count must be an integer, got '1'"),
          ("train.json", "object.parts.v[0] must be an integer, got 1.5"),
          ("train.json", "class must be an object (a dict), got ['cat']"),
          ("train.json", "the entry must be an object (a dict)"),
          ("train.json", "id must be a string or an integer"),
      ])


# --- File names ---------------------------------------------------------------------


@case
def unicode_and_newline_file_names(root):
  """Class folders whose file names hold non-ASCII text and a newline."""
  names = ["猫/ñandú 🐱.jpg", "猫/line\nbreak.jpg", "猫/tab\tand space .jpg",
           "Ünïcödé/ﬁle.jpg"]
  data = {n: img(root / n, i) for i, n in enumerate(names)}

  def check(ex):
    for name, raw in data.items():
      assert ex[name]["image"].shape == (30, 40, 3)
      assert ex[name]["file_name"].decode() == name
      assert helpers.encode(Image.open(io.BytesIO(raw)), "PNG")  # Readable.

  return Expect("built", written=set(names), check=check)


@case
def nul_and_newline_in_annotation_file_name(root):
  """NUL cannot be in a POSIX file name: only inside an annotation string."""
  img(root / "img/a.jpg", 1)
  img(root / "img/new\nline.jpg", 2)
  seed001(root, [{"filename": "img/a.jpg\x00.png"},
                 {"filename": "img/new\nline.jpg"},
                 {"filename": "img/a.jpg"}])
  return Expect("built", written={"img/a.jpg", "img/new\nline.jpg"},
                problems=[("train.json", "contains a NUL character")])


# --- Sizes --------------------------------------------------------------------------


def million_objects_file(root, n=1_000_000):
  img(root / "img/a.jpg", w=200, h=100)
  with open(root / "train.json", "w") as f:  # Streamed: ~50 MB.
    f.write('[{"filename": "img/a.jpg", "object": {"bbox": {')
    for i, key in enumerate(("xmin", "ymin", "xmax", "ymax")):
      value = "0.25" if key.endswith("min") else "0.75"
      f.write(("," if i else "") + f'"{key}": [' + ",".join([value] * n) + "]")
    f.write("}}}]")


@case
def million_objects(root):
  """One image with 1,000,000 boxes (20 MB of JSON): built, every box kept.
  Run in a child process with a memory cap (test_hostile.py, slow)."""
  million_objects_file(root)

  def check(ex):
    assert ex["img/a.jpg"]["objects"]["bbox"].shape == (1_000_000, 4)

  return Expect("built", written={"img/a.jpg"}, check=check, timeout=300)


# --- Images ---------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
  return (struct.pack(">I", len(data)) + kind + data
          + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def bomb_png(width=100_000, height=100_000) -> bytes:
  """A 1 KB PNG that claims 10 billion pixels (zeros compress ~1000:1)."""
  header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # Gray, 8 bit.
  row = b"\x00" * (width + 1)
  z = zlib.compressobj(9)
  body = z.compress(row * 8) + z.flush(zlib.Z_SYNC_FLUSH)  # First rows only.
  return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
          + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b""))


@case
def decompression_bomb_png(root):
  img(root / "cat/ok.jpg")
  (root / "cat/bomb.png").write_bytes(bomb_png())
  return Expect("built", written={"cat/ok.jpg"}, problems=[
      ("cat/bomb.png", "decompression bomb: 100000x100000")])


@case
def truncated_jpeg_and_png(root):
  """Cut in half: refused. A PNG cut after its pixel data (no IEND chunk):
  Pillow reads all of it but TensorFlow refuses it, so it is re-encoded."""
  jpeg = img(root / "cat/ok.jpg", 1, w=64, h=48)
  original = helpers.photo(2, 64, 48)
  png = helpers.encode(original, "PNG")
  (root / "cat/half.jpg").write_bytes(jpeg[: len(jpeg) // 2])
  (root / "cat/no_eoi.jpg").write_bytes(jpeg[:-2])  # End marker cut off.
  (root / "cat/half.png").write_bytes(png[: len(png) // 2])
  (root / "cat/no_end.png").write_bytes(png[:-12])  # IEND cut off.

  def check(ex):
    np.testing.assert_array_equal(ex["cat/no_end.png"]["image"],
                                  np.asarray(original))

  return Expect("built", written={"cat/ok.jpg", "cat/no_end.png"},
                problems=[("cat/half.jpg", "corrupt image"),
                          ("cat/no_eoi.jpg", "corrupt image"),
                          ("cat/half.png", "corrupt image"),
                          ("cat/no_end.png", "without its IEND chunk")],
                check=check)


@case
def multi_frame_gif_and_tiff(root):
  frames = [helpers.photo(i, 32, 24) for i in range(3)]
  frames[0].save(root / "gif.gif", save_all=True, append_images=frames[1:])
  (root / "anim").mkdir()
  os.replace(root / "gif.gif", root / "anim/three.gif")
  frames[0].save(root / "anim/three.tif", save_all=True,
                 append_images=frames[1:])
  first_gif = np.asarray(Image.open(root / "anim/three.gif").convert("RGB"))
  first_tif = np.asarray(Image.open(root / "anim/three.tif").convert("RGB"))

  def check(ex):
    np.testing.assert_array_equal(ex["anim/three.gif"]["image"], first_gif)
    np.testing.assert_array_equal(ex["anim/three.tif"]["image"], first_tif)

  return Expect("built", written={"anim/three.gif", "anim/three.tif"},
                problems=[("anim/three.gif", "3 frames: only the first"),
                          ("anim/three.tif", "3 frames: only the first")],
                check=check)


# --- Links and special files ------------------------------------------------------------


@case
def symlink_loops(root):
  img(root / "cat/a.jpg")
  os.symlink("..", root / "cat/up")  # cat/up/cat/up/... for ever.
  os.symlink(".", root / "cat/self")
  os.symlink("loop2", root / "cat/loop1")  # Links to each other.
  os.symlink("loop1", root / "cat/loop2")
  return Expect("built", written={"cat/a.jpg"}, problems=[
      ("cat/loop1", ""), ("cat/loop2", "")])


@case
def symlinks_outside_the_root(root):
  outside = root.parent / f"{root.name}_outside"
  img(outside / "secret.jpg", 5)
  img(root / "cat/a.jpg")
  os.symlink(outside / "secret.jpg", root / "cat/secret.jpg")
  os.symlink(outside, root / "cat/elsewhere")
  os.symlink("/etc/passwd", root / "cat/passwd.jpg")
  return Expect("built", written={"cat/a.jpg"}, problems=[
      ("cat/secret.jpg", "outside the data folder"),
      ("cat/elsewhere", "outside the data folder"),
      ("cat/passwd.jpg", "outside the data folder")])


@case
def annotation_paths_outside_the_root(root):
  outside = root.parent / f"{root.name}_outside"
  img(outside / "secret.jpg", 5)
  img(root / "img/a.jpg")
  os.symlink(outside / "secret.jpg", root / "img/link.jpg")
  seed001(root, [{"filename": "../" + outside.name + "/secret.jpg"},
                 {"filename": str(outside / "secret.jpg")},
                 {"filename": "img/link.jpg"},
                 {"filename": "/etc/passwd"},
                 {"filename": "img/a.jpg"}])
  return Expect("built", written={"img/a.jpg"}, problems=[
      ("train.json", "outside the data folder"),
      ("train.json", "symbolic link to")])


@case
def fifo_and_device_in_class_folder(root):
  img(root / "cat/a.jpg")
  os.mkfifo(root / "cat/pipe.jpg")
  os.symlink("/dev/zero", root / "cat/zero.jpg")
  return Expect("built", written={"cat/a.jpg"}, problems=[
      ("cat/pipe.jpg", "not a regular file"),
      ("cat/zero.jpg", "")])


@case
def fifo_named_by_an_annotation(root):
  img(root / "img/a.jpg")
  os.mkfifo(root / "img/pipe.jpg")
  seed001(root, [{"filename": "img/pipe.jpg"}, {"filename": "img/a.jpg"}])
  return Expect("built", written={"img/a.jpg"}, problems=[
      ("train.json", "not a regular file")])


# --- Other formats --------------------------------------------------------------------------


@case
def voc_billion_laughs(root):
  """XML entity expansion: must not take the memory or the time."""
  img(root / "JPEGImages/a.jpg")
  (root / "Annotations").mkdir()
  entities = '<!ENTITY lol "lol">' + "".join(
      f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'
      for i in range(1, 10))
  (root / "Annotations/a.xml").write_text(
      f'<?xml version="1.0"?><!DOCTYPE annotation [{entities}]>'
      "<annotation><filename>a.jpg</filename><folder>&lol9;</folder>"
      "</annotation>")
  img(root / "JPEGImages/b.jpg", 2)
  (root / "Annotations/b.xml").write_text(
      "<annotation><filename>b.jpg</filename></annotation>")
  return Expect("built", written={"JPEGImages/b.jpg"}, problems=[
      ("Annotations/a.xml", "not a readable XML file")])


@case
def csv_huge_field_and_nul(root):
  img(root / "img/a.jpg")
  img(root / "img/b.jpg", 2)
  header = "filename,width,height,class,xmin,ymin,xmax,ymax\n"
  (root / "train_labels.csv").write_text(
      header + "img/a.jpg,40,30,cat,1,2,20,20\n"
      + "img/b.jpg,40,30,dog,1,2,20\x00,20\n"
      + "img/b.jpg,40,30," + "x" * 200_000 + ",1,2,20,20\n")
  return Expect("error", error=["train_labels.csv", "not valid CSV after line 3",
                                "field larger than field limit"])


@case
def coco_wrong_types(root):
  for i in range(3):
    img(root / f"images/{i}.jpg", i)
  (root / "annotations").mkdir()
  (root / "annotations/instances_train.json").write_text(json.dumps({
      "categories": [{"id": 1, "name": "cat"}],
      "images": [{"id": 0, "file_name": "0.jpg", "width": 40, "height": 30},
                 {"id": 1, "file_name": None},
                 {"id": 2, "file_name": "2.jpg", "width": "40", "height": 30}],
      "annotations": [
          {"id": 10, "image_id": 0, "category_id": 1, "bbox": "[1, 2, 3, 4]"},
          {"id": 11, "image_id": 0, "category_id": 1, "bbox": [1, 2, -3, 4]},
          {"id": 12, "image_id": 0, "category_id": 1, "bbox": [1, 2, 3]},
          {"id": 13, "image_id": 0, "category_id": 7, "bbox": [1, 2, 3, 4]},
          {"id": 14, "image_id": 99, "category_id": 1, "bbox": [1, 2, 3, 4]},
          {"id": 15, "image_id": 2, "category_id": 1, "bbox": [4, 3, 8, 6]},
      ]}))

  def check(ex):
    assert len(ex["images/0.jpg"]["objects"]["bbox"]) == 0
    np.testing.assert_allclose(ex["images/2.jpg"]["objects"]["bbox"],
                               [[3 / 30, 4 / 40, 9 / 30, 12 / 40]], rtol=1e-6)

  return Expect("built", written={"images/0.jpg", "images/2.jpg"}, problems=[
      ("instances_train.json", "bbox"),
      ("instances_train.json", "image_id 99 is not among the images"),
      ("instances_train.json", "image file name must be a non-empty string"),
  ], check=check)


@case
def big_integer_in_json_list(root):
  """Beyond 64 bits: ijson refuses it, the json module reads it exactly."""
  img(root / "img/a.jpg")
  (root / "train.json").write_text(
      '[{"filename": "img/a.jpg", "extra": {"n": 123456789012345678901234}}]')

  def check(ex):
    extra = json.loads(ex["img/a.jpg"]["extra"].decode())
    assert extra == {"n": 123456789012345678901234}

  return Expect("built", written={"img/a.jpg"}, problems=[], check=check,
                config={**BASE_CONFIG, "layout": "seed001"})


@case
def invalid_utf8_and_bom(root):
  img(root / "img/a.jpg", 1)
  img(root / "img/b.jpg", 2)
  (root / "train.jsonl").write_bytes(
      b'\xef\xbb\xbf{"filename": "img/a.jpg"}\n'
      b'{"filename": "img/b.jpg", "extra": "\xff\xfe bad bytes"}\n')
  return Expect("built", written={"img/a.jpg"}, problems=[
      ("train.jsonl", "not UTF-8 text")])


if __name__ == "__main__":
  out = pathlib.Path(sys.argv[1])
  for name, make in CASES.items():
    (out / name).mkdir(parents=True, exist_ok=True)
    expect = make(out / name)
    print(f"{name}: {expect.outcome}")
