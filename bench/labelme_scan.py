"""Time and memory of the LabelMe scan against `cat` of the same files.

    python bench/labelme_scan.py --files 200000 [--dir /tmp/labelme_bench]

Writes N LabelMe files (4 shapes each: 2 rectangles, a polygon, a point
grouped with the first rectangle) in folders of 1,000, each beside an empty
image file (the scan only checks that it exists), once. Then measures, each
in a fresh process: `cat` of every JSON file (wall and CPU), the LabelMe scan
(`readers.scan(..., "labelme", ...)`: wall, CPU, peak resident memory above
the process's imports).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

_SHAPES = [
    {"label": "cat", "points": [[10.5, 20.25], [100.0, 120.0]], "group_id": 1,
     "description": "", "shape_type": "rectangle", "flags": {}, "mask": None},
    {"label": "dog", "points": [[30.0, 40.0], [60.0, 80.0]], "group_id": None,
     "description": "", "shape_type": "rectangle", "flags": {}, "mask": None},
    {"label": "car", "points": [[1.0, 2.0], [50.0, 3.0], [40.0, 60.0],
                                [5.0, 50.0]], "group_id": None,
     "description": "", "shape_type": "polygon", "flags": {}, "mask": None},
    {"label": "nose", "points": [[20.0, 30.0]], "group_id": 1,
     "description": "", "shape_type": "point", "flags": {}, "mask": None},
]


def _write(root: str, n: int) -> None:
  done = os.path.join(root, ".complete")
  if os.path.exists(done) and open(done).read() == str(n):
    return
  for i in range(n):
    folder = os.path.join(root, f"d{i // 1000:04d}")
    if i % 1000 == 0:
      os.makedirs(folder, exist_ok=True)
    data = {"version": "5.4.1", "flags": {}, "shapes": _SHAPES,
            "imagePath": f"img{i}.jpg", "imageData": None,
            "imageHeight": 480, "imageWidth": 640}
    with open(os.path.join(folder, f"img{i}.json"), "w") as f:
      json.dump(data, f, indent=2)  # LabelMe writes indent=2.
    open(os.path.join(folder, f"img{i}.jpg"), "wb").close()
  with open(done, "w") as f:
    f.write(str(n))


def _scan(root: str, layout: str) -> None:
  """In a fresh process: one scan, printed as JSON."""
  import numpy  # noqa: F401  (imports before the baseline)
  from image_folder_tfds import readers
  options = readers.ReadOptions(split_fractions={"train": 1.0})
  before = resource.getrusage(resource.RUSAGE_SELF)
  base = before.ru_maxrss * 1024
  start = time.perf_counter()
  n = len(readers.scan(root, layout, options).records)
  after = resource.getrusage(resource.RUSAGE_SELF)
  print(json.dumps({
      "records": n, "wall": time.perf_counter() - start,
      "cpu": (after.ru_utime + after.ru_stime
              - before.ru_utime - before.ru_stime),
      "peak_mb": (after.ru_maxrss * 1024 - base) / 1e6}))


def _cat(root: str) -> dict:
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  subprocess.run(
      f"find {root} -name '*.json' -print0 | xargs -0 cat > /dev/null",
      shell=True, check=True)
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  return {"wall": time.perf_counter() - start,
          "cpu": (after.ru_utime + after.ru_stime
                  - before.ru_utime - before.ru_stime)}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--files", type=int, default=200_000)
  parser.add_argument("--dir", default="/tmp/labelme_bench")
  parser.add_argument("--scan", nargs=2, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.scan:
    _scan(*args.scan)
    return
  root = os.path.join(args.dir, str(args.files))
  _write(root, args.files)
  out = {"files": args.files, "cat": _cat(root)}
  proc = subprocess.run(
      [sys.executable, __file__, "--scan", root, "labelme"],
      capture_output=True, text=True, check=True)
  out["labelme"] = json.loads(proc.stdout.strip().splitlines()[-1])
  out["labelme_over_cat_wall"] = out["labelme"]["wall"] / out["cat"]["wall"]
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  main()
