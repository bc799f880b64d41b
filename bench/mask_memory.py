"""Memory of a COCO build with instance masks (issue 14, point 6).

    python bench/mask_memory.py --images 200000 [--work /tmp/mask_bench]
        [--steps scan,build]

Writes (once) a COCO folder of N photo-like 256 px JPEGs (`bench/data.py`'s
pool) and two annotation files over them, 4 objects an image: with masks
(3 polygons of 2 parts x 12 points, 2-decimal coordinates as in COCO, and 1
crowd object with a compressed RLE) and the same without `segmentation`.

`scan`: for each file, a fresh process measures the peak resident memory
(ru_maxrss) added by the reader's scan (the records the build keeps).
`build`: `tfds build my_images` of the masks file, peak summed PSS of the
process tree (parent and workers) and largest process RSS, as
`bench/run.py` measures builds; `--baseline` also builds the file without
masks, in the same run, for the ratio.
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

import numpy as np

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import data as data_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
import run as run_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

SIDE = data_lib.SIDE
CLASSES = ("a", "b", "c")
_DONE = ".complete"


def _polygon(i: int, k: int) -> list[list[float]]:
  """Two 12-point parts inside the image, fixed by (i, k)."""
  rng = np.random.default_rng(i * 4 + k)
  parts = []
  for _ in range(2):
    cx, cy = rng.uniform(40, SIDE - 40, size=2)
    angles = np.sort(rng.uniform(0, 2 * np.pi, size=12))
    radii = rng.uniform(8, 36, size=12)
    xs = np.round(cx + radii * np.cos(angles), 2)
    ys = np.round(cy + radii * np.sin(angles), 2)
    parts.append([float(v) for xy in zip(xs, ys) for v in xy])
  return parts


def _rle_pool(n: int = 31) -> list[str]:
  from pycocotools import mask as mask_utils  # pylint: disable=g-import-not-at-top
  out = []
  y, x = np.mgrid[0:SIDE, 0:SIDE]
  for s in range(n):
    m = (((x - 20 - 5 * s) ** 2 + (y - 128) ** 2) < (30 + s) ** 2)
    out.append(mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))[
        "counts"].decode())
  return out


def write(work: str, n: int) -> dict[str, str]:
  root = os.path.join(work, f"coco{n}")
  files = {"masks": os.path.join(root, "annotations", "instances_train2017.json"),
           "no masks": os.path.join(work, f"nomask{n}", "annotations",
                                    "instances_train2017.json")}
  if os.path.exists(os.path.join(work, f"{_DONE}{n}")):
    return files
  shutil.rmtree(root, ignore_errors=True)
  images = os.path.join(root, "train2017")
  os.makedirs(images)
  jpegs = data_lib._pool("JPEG")  # pylint: disable=protected-access
  for i in range(n):
    with open(os.path.join(images, f"{i:07d}.jpg"), "wb") as f:
      f.write(data_lib._jpeg_with_comment(  # pylint: disable=protected-access
          jpegs[i % len(jpegs)], f"mask bench {i}".encode()))
  rles = _rle_pool()
  for name, path in files.items():
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
      f.write('{"images": [')
      f.write(",".join(json.dumps({"id": i + 1, "file_name": f"{i:07d}.jpg",
                                   "width": SIDE, "height": SIDE})
                       for i in range(n)))
      f.write('], "annotations": [')
      for i in range(n):
        for k in range(4):
          ann = {"id": 4 * i + k + 1, "image_id": i + 1,
                 "category_id": 1 + k % 3, "bbox": [10.0 + k, 20.0, 100.0, 50.0],
                 "area": 1234.5, "iscrowd": int(k == 3)}
          if name == "masks":
            ann["segmentation"] = (
                {"size": [SIDE, SIDE], "counts": rles[i % len(rles)]}
                if k == 3 else _polygon(i, k))
          f.write(("," if i or k else "") + json.dumps(ann))
      f.write('], "categories": '
              + json.dumps([{"id": j + 1, "name": c}
                            for j, c in enumerate(CLASSES)]) + "}")
  # The no-masks folder reads the same images (hard links, no copy).
  other = os.path.join(work, f"nomask{n}", "train2017")
  shutil.rmtree(other, ignore_errors=True)
  os.makedirs(other)
  for i in range(n):
    os.link(os.path.join(images, f"{i:07d}.jpg"),
            os.path.join(other, f"{i:07d}.jpg"))
  open(os.path.join(work, f"{_DONE}{n}"), "w").close()
  return files


def _scan_step(path: str) -> None:
  """In a fresh process: the scan's added peak memory, as JSON."""
  from image_folder_tfds import readers  # pylint: disable=g-import-not-at-top
  base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  start = time.perf_counter()
  result = readers.scan(os.path.dirname(os.path.dirname(path)), "coco",
                        readers.ReadOptions(split_fractions={"train": 1.0}))
  seconds = time.perf_counter() - start
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  objects = sum(len(r.objects) for r in result.records)
  print(json.dumps({"mb": (peak - base) / 1e6, "s": seconds,
                    "images": len(result.records), "objects": objects}))


def _measure(cmd: list[str], work: str) -> dict:
  """`run.measure`, with the build's output going to files.

  `run.measure` reads the child's pipes only once it has ended: a build long
  enough to write more than a pipe's 64 KB of progress bars blocks on its
  stderr (seen here at 200k, the scan with masks taking minutes).
  """
  import psutil  # pylint: disable=g-import-not-at-top
  wrapper = [sys.executable, "-c", (
      "import resource, subprocess, sys, json;"
      "rc = subprocess.call(sys.argv[1:]);"
      "ru = resource.getrusage(resource.RUSAGE_CHILDREN);"
      "print(json.dumps({'rc': rc, 'max1': ru.ru_maxrss * 1024,"
      " 'cpu': ru.ru_utime + ru.ru_stime}))")] + cmd
  log = os.path.join(work, "build.log")
  t0 = time.perf_counter()
  with open(log, "w") as err, open(log + ".out", "w") as out:
    proc = subprocess.Popen(wrapper, env=run_lib._ENV, stdout=out, stderr=err)  # pylint: disable=protected-access
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
      try:
        total = 0
        for p in ps.children(recursive=True):
          try:
            total += p.memory_full_info().pss
          except psutil.Error:
            continue
        peak = max(peak, total)
      except psutil.Error:
        break
      time.sleep(0.1)
  wall = time.perf_counter() - t0
  info = json.loads(open(log + ".out").read().strip().splitlines()[-1])
  if info["rc"] != 0:
    raise RuntimeError(f"{' '.join(cmd)} failed, see {log}")
  return {"wall": wall, "peak_rss": peak, "max1": info["max1"],
          "cpu": info["cpu"], "load": os.getloadavg()[0]}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--images", type=int, default=200_000)
  parser.add_argument("--work", default="/tmp/mask_bench")
  parser.add_argument("--steps", default="scan,build")
  parser.add_argument("--baseline", action="store_true",
                      help="also build the file without masks")
  parser.add_argument("--scan-step", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.scan_step:
    _scan_step(args.scan_step)
    return
  os.makedirs(args.work, exist_ok=True)
  t0 = time.perf_counter()
  files = write(args.work, args.images)
  print(f"data: {args.images} images ({time.perf_counter() - t0:.0f} s)",
        flush=True)
  steps = args.steps.split(",")
  if "scan" in steps:
    for name, path in files.items():
      out = subprocess.run(
          [sys.executable, __file__, "--scan-step", path], env=run_lib._ENV,  # pylint: disable=protected-access
          capture_output=True, text=True, check=True)
      r = json.loads(out.stdout.strip().splitlines()[-1])
      print(f"scan, {name}: {r['images']} images, {r['objects']} objects,"
            f" file {os.path.getsize(path) / 1e6:.0f} MB: +{r['mb']:.0f} MB"
            f" in {r['s']:.1f} s", flush=True)
  if "build" in steps:
    names = ["masks"] + (["no masks"] if args.baseline else [])
    for name in names:
      dest = os.path.join(args.work, "out_" + name.replace(" ", "_"))
      shutil.rmtree(dest, ignore_errors=True)
      manual = os.path.dirname(os.path.dirname(files[name]))
      m = _measure([run_lib.TFDS, "build", "my_images", "--imports",
                    "image_folder_tfds", "--manual_dir", manual,
                    "--data_dir", dest], args.work)
      print(f"build, {name}: wall {m['wall']:.1f} s, cpu {m['cpu']:.1f} s,"
            f" peak tree PSS {m['peak_rss'] / 2**30:.2f} GiB, largest process"
            f" RSS {m['max1'] / 2**30:.2f} GiB, load {m['load']:.1f}",
            flush=True)
      shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
  main()
