"""Memory and time of reading a large Label Studio export (issue 25).

    python bench/label_studio_scan.py --tasks 200000 [--dir /tmp/lsbench]

Writes a Label Studio JSON export of N tasks (4 rectangles each, the fields
Label Studio 1.x exports, images named `/data/local-files/?d=data/images/...`)
and N empty image files in 10 class folders (the scan only checks that they
exist). Fresh processes then measure the peak resident memory added
(ru_maxrss), the wall time and the CPU time of: the class-folder scan of the
same files (`folders`), the JSON depth check (`depth`), parsing every task
with ijson and dropping it (`parse`), the Label Studio scan (`scan`) and
layout detection with the scan (`detect+scan`, as a build does). The time of
`cat` over the file is printed for comparison.
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

_CLASSES = [f"c{i}" for i in range(10)]
_STEPS = ("folders", "depth", "parse", "scan", "detect+scan")


def write(root: str, n: int) -> None:
  """`root/export.json`, N tasks of 4 rectangles, and N empty image files
  in `root/images/c0/` ... `c9/` (also used by bench/reader_scale.py)."""
  for c in _CLASSES:
    os.makedirs(os.path.join(root, "images", c), exist_ok=True)
  with open(os.path.join(root, "export.json"), "w") as f:
    f.write("[")
    for i in range(n):
      rel = f"images/{_CLASSES[i % 10]}/{i:06d}.jpg"
      open(os.path.join(root, rel), "wb").close()
      result = [{
          "original_width": 640, "original_height": 480, "image_rotation": 0,
          "value": {"x": 10.0 + k, "y": 20.0 + k, "width": 30.5,
                    "height": 40.25, "rotation": 0,
                    "rectanglelabels": [_CLASSES[(i + k) % 10]]},
          "id": f"r{i}_{k}", "from_name": "label", "to_name": "image",
          "type": "rectanglelabels", "origin": "manual"} for k in range(4)]
      task = {
          "id": i + 1,
          "annotations": [{
              "id": i + 1, "completed_by": 1, "result": result,
              "was_cancelled": False, "ground_truth": False,
              "created_at": "2024-05-01T10:00:00.000000Z",
              "updated_at": "2024-05-01T10:00:00.000000Z",
              "draft_created_at": None, "lead_time": 12.5, "prediction": {},
              "result_count": 4, "unique_id": "3f1c2d4e-0000", "import_id":
              None, "last_action": None, "task": i + 1, "project": 1,
              "updated_by": 1, "parent_prediction": None,
              "parent_annotation": None, "last_created_by": None}],
          "file_upload": None, "drafts": [], "predictions": [],
          "data": {"image": f"/data/local-files/?d=data/{rel}"}, "meta": {},
          "created_at": "2024-05-01T09:00:00.000000Z",
          "updated_at": "2024-05-01T10:00:00.000000Z", "inner_id": i + 1,
          "total_annotations": 1, "cancelled_annotations": 0,
          "total_predictions": 0, "comment_count": 0,
          "unresolved_comment_count": 0, "last_comment_updated_at": None,
          "project": 1, "updated_by": 1, "comment_authors": []}
      f.write(("," if i else "") + json.dumps(task))
    f.write("]")


def _cpu() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def _step(step: str, root: str) -> None:
  """Runs one measurement in this (fresh) process and prints it as JSON."""
  import ijson
  from image_folder_tfds import readers
  from image_folder_tfds.readers import common
  from image_folder_tfds.readers import folders
  from image_folder_tfds.readers import label_studio

  options = readers.ReadOptions(split_fractions={"train": 1.0})
  path = os.path.join(root, "export.json")

  def parse():
    with open(path, "rb") as f:
      return sum(1 for _ in ijson.items(f, "item", use_float=True))

  fn = {
      "folders": lambda: len(folders.read(os.path.join(root, "images"),
                                          options).records),
      "depth": lambda: common.check_json_depth(path) or 0,
      "parse": parse,
      "scan": lambda: len(label_studio.read(root, options).records),
      "detect+scan": lambda: len(readers.scan(root, "auto", options).records),
  }[step]
  base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  start, cpu = time.perf_counter(), _cpu()
  n = fn()
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  print(json.dumps({"step": step, "n": n, "mb": round((peak - base) / 1e6, 1),
                    "s": round(time.perf_counter() - start, 2),
                    "cpu_s": round(_cpu() - cpu, 2)}))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tasks", type=int, default=200_000)
  parser.add_argument("--dir", default="/tmp/lsbench")
  parser.add_argument("--step", choices=_STEPS, help=argparse.SUPPRESS)
  args = parser.parse_args()
  root = os.path.join(args.dir, f"ls{args.tasks}")
  if args.step:
    _step(args.step, root)
    return
  if not os.path.isfile(os.path.join(root, "export.json")):
    shutil.rmtree(root, ignore_errors=True)
    write(root, args.tasks)
  path = os.path.join(root, "export.json")
  print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB, {args.tasks} tasks")
  start = time.perf_counter()
  subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
  print(json.dumps({"step": "cat", "s": round(time.perf_counter() - start,
                                               2)}))
  for step in _STEPS:
    out = subprocess.run(
        [sys.executable, __file__, "--tasks", str(args.tasks), "--dir",
         args.dir, "--step", step], capture_output=True, text=True,
        check=True)
    print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
  main()
