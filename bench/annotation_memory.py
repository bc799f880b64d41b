"""Memory of reading a large annotation file (issue 3, point 10).

    python bench/annotation_memory.py --images 200000 [--dir /tmp/annbench]

Writes a COCO file, a seed-001 JSON list and the same as JSON Lines for N
images (4 boxes each), and N empty image files (the scan only checks that
they exist). For each it prints the file size, the peak Python memory
(tracemalloc) of parsing alone (`parse`), of the whole scan that builds the
records (`scan`), and of `json.load` of the same file for comparison.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import time
import tracemalloc

from image_folder_tfds import readers
from image_folder_tfds.readers import coco
from image_folder_tfds.readers import seed001


def _peak(fn):
  gc.collect()
  tracemalloc.start()
  start = time.perf_counter()
  try:
    result = fn()
    return tracemalloc.get_traced_memory()[1], time.perf_counter() - start, result
  finally:
    tracemalloc.stop()


def _write(root: str, n: int) -> dict[str, str]:
  images = os.path.join(root, "images")
  os.makedirs(images, exist_ok=True)
  for i in range(n):
    open(os.path.join(images, f"{i:06d}.jpg"), "wb").close()
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
  os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
  files["coco"] = os.path.join(root, "annotations", "instances_train.json")
  with open(files["coco"], "w") as f:
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
  return files


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--images", type=int, default=200_000)
  parser.add_argument("--dir", default="/tmp/annotation_memory_bench")
  args = parser.parse_args()
  shutil.rmtree(args.dir, ignore_errors=True)
  files = _write(args.dir, args.images)
  options = readers.ReadOptions(split_fractions={"train": 1.0})
  for kind, path in files.items():
    size = os.path.getsize(path)
    if kind == "coco":
      parse = lambda: sum(1 for part in ("categories", "images", "annotations")
                          for _ in coco._items(path, part))
      scan = lambda: coco.read(args.dir, options)
    else:
      parse = lambda: sum(1 for _ in seed001.iter_entries(path, "", []))
      scan = lambda: seed001.read(
          args.dir, readers.ReadOptions(split_fractions={"train": 1.0},
                                        annotations=path))
    parse_peak, parse_s, _ = _peak(parse)
    scan_peak, scan_s, result = _peak(scan)
    del result
    if kind == "seed001 lines":
      load = lambda: [json.loads(line) for line in open(path)]
    else:
      load = lambda: json.load(open(path))
    load_peak, load_s, _ = _peak(load)
    print(f"{kind}: {args.images} images, file {size / 1e6:.1f} MB;"
          f" parse peak {parse_peak / 1e6:.2f} MB ({parse_s:.1f} s);"
          f" scan peak {scan_peak / 1e6:.1f} MB ({scan_s:.1f} s);"
          f" json.load peak {load_peak / 1e6:.1f} MB ({load_s:.1f} s)",
          flush=True)
  shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
  main()
