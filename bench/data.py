"""Deterministic synthetic input for the benchmark.

`make_dataset(root, n)` writes `n` photo-like 256 px images into class folders
(`root/folders/<class>/<class>_<i>.jpg`), a fraction of them PNG, plus COCO
(`root/coco/`) and seed-001 (`root/seed001/`) data folders over the same
images, with one box each.

Encoding 50k JPEGs one by one would take longer than the builds we time, so a
pool of distinct encoded images is made once and every file is a pool image
with its own index written into a JPEG COM segment (PNG: a tEXt chunk). Every
file is a valid, distinct image with realistic size (~21 KB).
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

SIDE = 256
CLASSES = ("ant", "bee", "cat", "dog", "eel", "fox", "gnu", "hen", "owl", "yak")
PNG_EVERY = 50  # 2% PNG.
POOL = 97
_DONE = ".complete"


def photo(seed: int, side: int = SIDE) -> Image.Image:
  """A photo-like image: smooth shapes, gradients and sensor noise."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
  img = np.zeros((side, side, 3), np.float32)
  base = rng.uniform(40, 215, size=3)
  for c in range(3):
    img[..., c] = base[c] + 60 * (x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1))
  for _ in range(6):
    cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
    mask = ((x - cx) ** 2 + (y - cy) ** 2) < r * r
    img[mask] += rng.uniform(-80, 80, size=3)
  img += rng.normal(0, 6, size=img.shape)
  return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _pool(fmt: str) -> list[bytes]:
  out = []
  for seed in range(POOL):
    buf = io.BytesIO()
    if fmt == "JPEG":
      photo(seed).save(buf, "JPEG", quality=90)
    else:
      photo(seed).save(buf, "PNG", compress_level=1)
    out.append(buf.getvalue())
  return out


def _jpeg_with_comment(data: bytes, text: bytes) -> bytes:
  segment = b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text
  return data[:2] + segment + data[2:]


def _png_with_text(data: bytes, text: bytes) -> bytes:
  body = b"tEXt" + b"Comment\x00" + text
  chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(
      ">I", zlib.crc32(body) & 0xFFFFFFFF)
  return data[:33] + chunk + data[33:]  # After the 8-byte signature + IHDR.


def file_names(n: int) -> list[tuple[str, str]]:
  """(class, relative path) of image i, for i < n."""
  out = []
  for i in range(n):
    cls = CLASSES[i % len(CLASSES)]
    ext = "png" if i % PNG_EVERY == PNG_EVERY - 1 else "jpg"
    out.append((cls, f"{cls}/{cls}_{i:07d}.{ext}"))
  return out


def make_dataset(root: str, n: int) -> dict:
  """Writes the data once (reused when complete); returns its description."""
  folders = os.path.join(root, "folders")
  done = os.path.join(root, _DONE)
  names = file_names(n)
  if not os.path.exists(done):
    jpegs, pngs = _pool("JPEG"), _pool("PNG")
    for cls in CLASSES:
      os.makedirs(os.path.join(folders, cls), exist_ok=True)
    for i, (_, rel) in enumerate(names):
      tag = f"bench image {i}".encode()
      if rel.endswith(".png"):
        data = _png_with_text(pngs[i % POOL], tag)
      else:
        data = _jpeg_with_comment(jpegs[i % POOL], tag)
      with open(os.path.join(folders, rel), "wb") as f:
        f.write(data)
    _write_annotations(root, names)
    with open(done, "w") as f:
      f.write(str(n))
  total = sum(os.path.getsize(os.path.join(folders, rel)) for _, rel in names)
  return {"root": root, "folders": folders, "images": n, "bytes": total,
          "coco": os.path.join(root, "coco"),
          "seed001": os.path.join(root, "seed001")}


def _box(i: int) -> list[float]:
  """A pixel box (x, y, w, h) inside the 256 px image, fixed by i."""
  x, y = (i * 37) % 128, (i * 61) % 128
  return [float(x), float(y), float(32 + i % 96), float(32 + (i * 7) % 96)]


def _write_annotations(root: str, names) -> None:
  """COCO and seed-001 data over the class-folder images (one box each).

  `root/coco/annotations/instances_train2017.json` + `root/coco/train2017/`,
  and `root/seed001/annotations.json` + `root/seed001/images/`: the images are
  hard links to the class-folder files (no copy; symlinks leaving a data
  folder are refused by the readers).
  """
  folders = os.path.join(root, "folders")
  coco = {"images": [], "annotations": [],
          "categories": [{"id": k + 1, "name": c} for k, c in enumerate(CLASSES)]}
  seed = []
  for i, (cls, rel) in enumerate(names):
    x, y, w, h = _box(i)
    k = CLASSES.index(cls)
    coco["images"].append({"id": i + 1, "file_name": rel, "width": SIDE,
                           "height": SIDE})
    coco["annotations"].append({"id": i + 1, "image_id": i + 1,
                                "category_id": k + 1, "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": 0})
    seed.append({
        "filename": f"images/{rel}", "id": str(i),
        "class": {"label": k, "text": cls},
        "object": {"count": 1, "area": [w * h / SIDE / SIDE], "id": [str(i)],
                   "bbox": {"xmin": [x / SIDE], "ymin": [y / SIDE],
                            "xmax": [(x + w) / SIDE], "ymax": [(y + h) / SIDE],
                            "label": [k], "text": [cls]}},
    })
  for image_dir in (os.path.join(root, "coco", "train2017"),
                    os.path.join(root, "seed001", "images")):
    for cls in CLASSES:
      os.makedirs(os.path.join(image_dir, cls), exist_ok=True)
    for _, rel in names:
      target = os.path.join(image_dir, rel)
      if not os.path.exists(target):
        os.link(os.path.join(folders, rel), target)
  os.makedirs(os.path.join(root, "coco", "annotations"), exist_ok=True)
  with open(os.path.join(root, "coco", "annotations",
                         "instances_train2017.json"), "w") as f:
    json.dump(coco, f)
  with open(os.path.join(root, "seed001", "annotations.json"), "w") as f:
    json.dump(seed, f)


def make_placeholders(root: str, n: int, per_dir: int = 1000) -> str:
  """`n` tiny files in class folders of `per_dir` (the scan benchmark)."""
  done = os.path.join(root, _DONE)
  top = os.path.join(root, "tiny")
  if not os.path.exists(done):
    for i in range(n):
      d = os.path.join(top, f"c{i // per_dir:04d}")
      if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
      with open(os.path.join(d, f"{i:07d}.jpg"), "wb") as f:
        f.write(b"x")
    with open(done, "w") as f:
      f.write(str(n))
  return top


def make_keypoints(d: dict, num_keypoints: int = 17) -> str:
  """COCO person keypoints over the images of `make_dataset`'s `d`.

  `root/coco_kp/annotations/person_keypoints_train2017.json`: two objects an
  image, each with a box and `num_keypoints` keypoints (some not labelled),
  the images hard links to the class-folder files. Returns the data folder.
  """
  root = os.path.join(d["root"], "coco_kp")
  done = os.path.join(root, _DONE)
  if os.path.exists(done):
    return root
  names = file_names(d["images"])
  coco = {"images": [], "annotations": [], "categories": [{
      "id": 1, "name": "person",
      "keypoints": [f"k{j}" for j in range(num_keypoints)]}]}
  for i, (_, rel) in enumerate(names):
    coco["images"].append({"id": i + 1, "file_name": rel, "width": SIDE,
                           "height": SIDE})
    for o in range(2):
      x, y, w, h = _box(2 * i + o)
      kps = []
      for j in range(num_keypoints):
        v = (i + j + o) % 3  # 0: not labelled, 1: occluded, 2: visible.
        kps += ([x + (j * 7) % w, y + (j * 5) % h, v] if v else [0, 0, 0])
      coco["annotations"].append({
          "id": 2 * i + o + 1, "image_id": i + 1, "category_id": 1,
          "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
          "keypoints": kps, "num_keypoints": sum(1 for v in kps[2::3] if v)})
  image_dir = os.path.join(root, "train2017")
  for cls in CLASSES:
    os.makedirs(os.path.join(image_dir, cls), exist_ok=True)
  for _, rel in names:
    target = os.path.join(image_dir, rel)
    if not os.path.exists(target):
      os.link(os.path.join(d["folders"], rel), target)
  os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
  with open(os.path.join(root, "annotations",
                         "person_keypoints_train2017.json"), "w") as f:
    json.dump(coco, f)
  with open(done, "w") as f:
    f.write(str(d["images"]))
  return root
