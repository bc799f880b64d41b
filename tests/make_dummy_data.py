"""Writes `dummy_data/animal_photos/`: the bundled class-folder sample.

Run `python tests/make_dummy_data.py` to recreate it; the output is
deterministic, and the files are committed so that users and CI need no script.
The sample is small on purpose but covers what real folders hold: JPEG, PNG, a
PNG named `.jpg`, a grayscale JPEG, a BMP, an EXIF-rotated JPEG and a hidden
`.DS_Store`.
"""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent / "dummy_data"


def photo(seed: int, width: int = 64, height: int = 48) -> Image.Image:
  """A photo-like RGB image: smooth gradients plus a little noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  base = rng.uniform(0, 255, size=3)
  slope = rng.uniform(-2, 2, size=(3, 2))
  img = np.stack(
      [base[c] + slope[c, 0] * x + slope[c, 1] * y for c in range(3)], axis=-1)
  img += rng.normal(0, 8, size=img.shape)
  return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(img: Image.Image, **kwargs) -> bytes:
  buf = io.BytesIO()
  img.save(buf, "JPEG", quality=90, **kwargs)
  return buf.getvalue()


def make_animal_photos(root: pathlib.Path) -> None:
  seed = 0
  for cls in ("cat", "dog", "bird"):
    folder = root / cls
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(4):
      seed += 1
      img = photo(seed)
      name = f"{cls}_{i}"
      if cls == "cat" and i == 1:  # A PNG named .jpg.
        img.save(folder / f"{name}.jpg", "PNG")
      elif cls == "dog" and i == 2:  # Grayscale JPEG.
        img.convert("L").save(folder / f"{name}.jpeg", "JPEG", quality=90)
      elif cls == "bird" and i == 3:  # A BMP (converted to PNG by the build).
        img.save(folder / f"{name}.bmp", "BMP")
      elif cls == "bird" and i == 1:  # Stored sideways, EXIF says rotate.
        exif = Image.Exif()
        exif[0x0112] = 6  # Rotate 90 CW to display.
        (folder / f"{name}.jpg").write_bytes(
            jpeg_bytes(img.transpose(Image.Transpose.ROTATE_90), exif=exif))
      elif i == 3:
        img.save(folder / f"{name}.png", "PNG")
      else:
        (folder / f"{name}.jpg").write_bytes(jpeg_bytes(img))
  (root / "dog" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
  (root / "labels.txt").write_text("cat\ndog\nbird\n")


def _image(path: pathlib.Path, seed: int, width: int, height: int) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  img = photo(seed, width, height)
  if path.suffix == ".png":
    img.save(path, "PNG")
  else:
    path.write_bytes(jpeg_bytes(img))


def make_seed001(root: pathlib.Path) -> None:
  """Seed 001's schema: `train.json` (a list) and `val.jsonl` (JSON Lines).

  Class names come from the data (labels given with their text); images
  live in `images/`, named relative to the annotation files' folder.
  """
  sizes = {"a.jpg": (48, 32), "b.png": (40, 40), "c.jpg": (32, 48),
           "d.jpg": (50, 30), "e.jpg": (36, 24)}
  for i, (name, (w, h)) in enumerate(sizes.items()):
    _image(root / "images" / name, 100 + i, w, h)
  train = [
      {  # Every field of the schema.
          "filename": "images/a.jpg", "id": "a-0", "width": 48, "height": 32,
          "class": {"label": 1, "text": "bunting", "conf": 0.9},
          "object": {
              "count": 2, "area": [0.25, 0.125], "id": ["a1", "a2"],
              "bbox": {"xmin": [0.1, 0.5], "xmax": [0.6, 0.75],
                       "ymin": [0.2, 0.25], "ymax": [0.7, 0.75],
                       "label": [1, 0], "text": ["bunting", "sparrow"],
                       "score": [0.8, 0.7], "conf": [0.9, 0.6]},
              "parts": {"x": [0.2, 0.3, 0.55, 0.7], "y": [0.3, 0.4, 0.3, 0.5],
                        "v": [2, 1, 2, 0], "score": [1.0, 0.5, 0.9, 0.1]},
          },
          "extra": {"photographer": "Ann", "gps": [46.5, 6.6]},
      },
      {"filename": "images/b.png", "id": "b-0",
       "class": {"label": 0, "text": "sparrow"}},  # Image class only.
      {"filename": "images/c.jpg",  # Boxes with names only, no ids.
       "object": {"bbox": {"xmin": [0.0], "xmax": [1.0], "ymin": [0.0],
                           "ymax": [0.5], "text": ["finch"]}},
       "extra": "free text"},
  ]
  (root / "train.json").write_text(json.dumps(train, indent=1))
  val = [
      {"filename": "images/d.jpg", "id": 7, "class": {"text": "finch"},
       "object": {"count": 1, "bbox": {"xmin": [0.2], "xmax": [0.4],
                                       "ymin": [0.1], "ymax": [0.9],
                                       "label": [2], "text": ["finch"]},
                  "parts": {"x": [0.3], "y": [0.5]}}},
      {"filename": "images/e.jpg"},  # Nothing but the image.
  ]
  (root / "val.jsonl").write_text("".join(json.dumps(e) + "\n" for e in val))


def make_coco(root: pathlib.Path) -> None:
  """COCO: `annotations/instances_{train,val}2017.json` and
  `person_keypoints_train2017.json`; category ids 1, 3, 7 (not contiguous);
  one train image without annotations, one crowd annotation."""
  categories = [
      {"id": 7, "name": "dog", "supercategory": "animal"},
      {"id": 1, "name": "person", "supercategory": "person"},
      {"id": 3, "name": "cat", "supercategory": "animal"},
  ]
  kp_names = ["nose", "left_eye", "right_eye"]
  person = {"id": 1, "name": "person", "supercategory": "person",
            "keypoints": kp_names, "skeleton": [[1, 2], [1, 3]]}
  images = {"train2017": [(1, "000001.jpg", 64, 48), (2, "000002.jpg", 40, 60),
                          (5, "000005.jpg", 50, 50)],
            "val2017": [(10, "000010.jpg", 60, 40), (11, "000011.jpg", 48, 48)]}
  seed = 200
  for folder, items in images.items():
    for _, name, w, h in items:
      seed += 1
      _image(root / folder / name, seed, w, h)
  def image_entries(folder):
    return [{"id": i, "file_name": n, "width": w, "height": h, "license": 1,
             "date_captured": "2017-11-14 11:18:45"}
            for i, n, w, h in images[folder]]
  train_anns = [
      {"id": 101, "image_id": 1, "category_id": 1, "bbox": [4, 6, 20, 30],
       "area": 450.5, "iscrowd": 0, "segmentation": [[4, 6, 24, 6, 24, 36]]},
      {"id": 102, "image_id": 1, "category_id": 7, "bbox": [30.5, 10, 25, 20],
       "area": 400, "iscrowd": 0},
      {"id": 103, "image_id": 2, "category_id": 3, "bbox": [0, 0, 40, 60],
       "area": 1800, "iscrowd": 1,
       "segmentation": {"counts": [0, 2400], "size": [60, 40]}},
      {"id": 104, "image_id": 2, "category_id": 1, "bbox": [10, 12, 15, 30],
       "area": 300, "iscrowd": 0},
  ]
  # Image 5 has no annotation: kept with zero objects.
  kp_anns = [
      dict(train_anns[0], keypoints=[10, 12, 2, 8, 10, 1, 0, 0, 0],
           num_keypoints=2),
      dict(train_anns[3], keypoints=[15, 20, 2, 12, 18, 2, 20, 18, 2],
           num_keypoints=3),
  ]
  val_anns = [
      {"id": 201, "image_id": 10, "category_id": 3, "bbox": [5, 5, 30, 20],
       "area": 500, "iscrowd": 0},
  ]
  info = {"description": "my_images COCO sample", "version": "1.0"}
  out = root / "annotations"
  out.mkdir(parents=True, exist_ok=True)
  (out / "instances_train2017.json").write_text(json.dumps({
      "info": info, "licenses": [], "images": image_entries("train2017"),
      "annotations": train_anns, "categories": categories}))
  (out / "person_keypoints_train2017.json").write_text(json.dumps({
      "info": info, "licenses": [], "images": image_entries("train2017"),
      "annotations": kp_anns, "categories": [person]}))
  (out / "instances_val2017.json").write_text(json.dumps({
      "info": info, "licenses": [], "images": image_entries("val2017"),
      "annotations": val_anns, "categories": categories}))


def _voc_xml(name: str, width: int, height: int, objects) -> str:
  parts = [
      "<annotation>", "  <folder>VOC2012</folder>",
      f"  <filename>{name}</filename>",
      "  <source><database>my_images sample</database></source>",
      f"  <size><width>{width}</width><height>{height}</height>"
      "<depth>3</depth></size>",
      "  <segmented>0</segmented>",
  ]
  for cls, pose, truncated, difficult, box in objects:
    xmin, ymin, xmax, ymax = box
    parts += [
        "  <object>", f"    <name>{cls}</name>", f"    <pose>{pose}</pose>",
        f"    <truncated>{truncated}</truncated>",
        f"    <difficult>{difficult}</difficult>",
        f"    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>",
        "  </object>",
    ]
  parts.append("</annotation>")
  return "\n".join(parts) + "\n"


def make_voc(root: pathlib.Path) -> None:
  """Pascal VOC: `Annotations/`, `JPEGImages/`, `ImageSets/Main/{train,val}`."""
  items = {
      "2008_000001": (64, 48, [("dog", "Left", 0, 0, (5, 6, 40, 44)),
                               ("person", "Frontal", 1, 0, (30, 2, 64, 48))]),
      "2008_000002": (48, 64, [("cat", "Unspecified", 0, 1, (1, 1, 47, 63))]),
      "2008_000003": (50, 40, [("person", "Right", 0, 0, (10.5, 4, 20, 30)),
                               ("dog", "Unspecified", 0, 0, (22, 8, 49, 39)),
                               ("cat", "Left", 1, 1, (0, 0, 10, 10))]),
      "2008_000004": (40, 40, []),
  }
  for i, (stem, (w, h, objects)) in enumerate(items.items()):
    _image(root / "JPEGImages" / f"{stem}.jpg", 300 + i, w, h)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{stem}.xml").write_text(
        _voc_xml(f"{stem}.jpg", w, h, objects))
  main = root / "ImageSets" / "Main"
  main.mkdir(parents=True, exist_ok=True)
  (main / "train.txt").write_text("2008_000001\n2008_000003\n")
  (main / "val.txt").write_text("2008_000002\n2008_000004\n")


def make_csv(root: pathlib.Path) -> None:
  """Seed 003's TF Object Detection CSV: `train_labels.csv`,
  `test_labels.csv` at the top, images in `images/`."""
  rows = {
      "train_labels.csv": [
          ("raccoon-1.jpg", 64, 48, "raccoon", 8, 4, 50, 40),
          ("raccoon-1.jpg", 64, 48, "raccoon", 40, 20, 64, 48),
          ("raccoon-2.jpg", 40, 56, "raccoon", 1, 2, 39, 55),
          ("fox-1.jpg", 56, 40, "fox", 10.5, 10, 30.25, 35),
          ("raccoon-2.jpg", 40, 56, "fox", 0, 30, 20, 56),
      ],
      "test_labels.csv": [
          ("fox-2.jpg", 48, 48, "fox", 4, 4, 44, 44),
      ],
  }
  seed = 400
  for name, table in rows.items():
    lines = ["filename,width,height,class,xmin,ymin,xmax,ymax"]
    for row in table:
      lines.append(",".join(str(v) for v in row))
      path = root / "images" / row[0]
      if not path.exists():
        seed += 1
        _image(path, seed, row[1], row[2])
    (root / name).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
  make_animal_photos(ROOT / "animal_photos")
  print(f"wrote {ROOT / 'animal_photos'}")
  for fmt, make in (("seed001", make_seed001), ("coco", make_coco),
                    ("voc", make_voc), ("csv", make_csv)):
    make(ROOT / fmt)
    print(f"wrote {ROOT / fmt}")
