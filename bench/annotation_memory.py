"""Memory of reading a large annotation file (issue 3, point 10).

    python bench/annotation_memory.py --images 200000 [--dir /tmp/annbench]

Writes a COCO file, a seed-001 JSON list and the same as JSON Lines for N
images (4 boxes each), and N empty image files (the scan only checks that
they exist). For each file, three fresh processes measure the peak resident
memory (ru_maxrss) added by: parsing alone (`parse`: every entry read and
dropped), the whole scan that builds the records (`scan`), and `json.load` of
the same file (`json.load`, for comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time


def _maxrss() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _step(kind: str, step: str, path: str, root: str) -> None:
  """Runs one measurement in this (fresh) process and prints it as JSON."""
  from image_folder_tfds import readers
  from image_folder_tfds.readers import coco
  from image_folder_tfds.readers import seed001

  options = readers.ReadOptions(split_fractions={"train": 1.0},
                                annotations=path)
  if step == "parse" and kind == "coco":
    fn = lambda: sum(1 for part in ("categories", "images", "annotations")
                     for _ in coco._items(path, part))
  elif step == "parse":
    fn = lambda: sum(1 for _ in seed001.iter_entries(path, "", []))
  elif step == "scan":
    fn = lambda: len((coco.read if kind == "coco" else seed001.read)(
        root, options).records)
  elif kind == "seed001 lines":
    fn = lambda: len([json.loads(line) for line in open(path)])
  else:
    fn = lambda: len(json.load(open(path)))
  base = _maxrss()
  start = time.perf_counter()
  n = fn()
  print(json.dumps({"mb": (_maxrss() - base) / 1e6, "n": n,
                    "s": time.perf_counter() - start}))


def write_images(root: str, n: int) -> None:
  """`root/images/000000.jpg`, ...: empty files (the scans only check that
  the images exist)."""
  images = os.path.join(root, "images")
  os.makedirs(images, exist_ok=True)
  for i in range(n):
    open(os.path.join(images, f"{i:06d}.jpg"), "wb").close()


def write_coco(root: str, n: int) -> str:
  """`root/annotations/instances_train.json`: N images of `root/images/`,
  4 boxes each, 2 categories. Returns its path."""
  os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
  path = os.path.join(root, "annotations", "instances_train.json")
  with open(path, "w") as f:
    f.write('{"images": [')
    f.write(",".join(json.dumps({"id": i, "file_name": f"{i:06d}.jpg",
                                 "width": 640, "height": 480})
                     for i in range(n)))
    f.write('], "annotations": [')
    f.write(",".join(json.dumps({"id": 4 * i + k, "image_id": i,
                                 "category_id": 1 + k % 2,
                                 "bbox": [10 + k, 20, 100, 50], "area": 5000,
                                 "iscrowd": 0})
                     for i in range(n) for k in range(4)))
    f.write('], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}')
  return path


def _write(root: str, n: int) -> dict[str, str]:
  write_images(root, n)
  box = {"xmin": [0.1, 0.2, 0.3, 0.4], "ymin": [0.1, 0.2, 0.3, 0.4],
         "xmax": [0.5, 0.6, 0.7, 0.8], "ymax": [0.5, 0.6, 0.7, 0.8],
         "label": [0, 1, 0, 1]}
  files = {}
  os.makedirs(os.path.join(root, "seed001"), exist_ok=True)
  files["seed001 list"] = os.path.join(root, "seed001", "train.json")
  files["seed001 lines"] = os.path.join(root, "seed001", "val.jsonl")
  with open(files["seed001 list"], "w") as lst, \
      open(files["seed001 lines"], "w") as lines:
    lst.write("[")
    for i in range(n):
      entry = json.dumps({"filename": f"../images/{i:06d}.jpg", "id": str(i),
                          "class": {"label": i % 2, "text": f"c{i % 2}"},
                          "object": {"bbox": box}})
      lst.write(("," if i else "") + entry)
      lines.write(entry + "\n")
    lst.write("]")
  files["coco"] = write_coco(root, n)
  return files


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--images", type=int, default=200_000)
  parser.add_argument("--dir", default="/tmp/annotation_memory_bench")
  parser.add_argument("--step", nargs=3, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.step:
    _step(*args.step, args.dir)
    return
  shutil.rmtree(args.dir, ignore_errors=True)
  files = _write(args.dir, args.images)
  for kind, path in files.items():
    size = os.path.getsize(path)
    line = [f"{kind}: {args.images} images, file {size / 1e6:.1f} MB"]
    for step in ("parse", "scan", "json.load"):
      out = subprocess.run(
          [sys.executable, __file__, "--dir", args.dir, "--step", kind, step,
           path], capture_output=True, text=True, check=True)
      r = json.loads(out.stdout.strip().splitlines()[-1])
      line.append(f"{step} +{r['mb']:.1f} MB in {r['s']:.1f} s ({r['n']})")
    print("; ".join(line), flush=True)
  shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
  main()
