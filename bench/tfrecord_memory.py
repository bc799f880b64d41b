"""Memory and speed of scanning a folder of TFRecords (issue 26, point 4).

    python bench/tfrecord_memory.py --gb 1 4 [--dir /tmp/tfrecord_bench]

For each size, writes that many GB of Object Detection API records (the keys
of create_coco_tf_record.py: an image of ~100 KB, 4 boxes, ids and texts) in
shards of ~256 MB, with TensorFlow's own writer, from a synthetic set of 32
noise JPEGs, with their `label_map.pbtxt`; then scans the folder in a fresh
process (`readers.scan`: every record's framing and CRCs checked, every
Example parsed, the records
packed to a temporary file) and prints the records found, the time, and the
peak resident memory the scan added (psutil, sampled every 10 ms, and the
kernel's ru_maxrss). The folder is removed after each size. A scan that held
the image bytes would grow by the size of the folder; the reader holds one
record at a time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time

SHARD_BYTES = 256 << 20
CLASSES = ("cat", "dog", "bird")


def _images(n: int = 32, side: int = 330) -> list[bytes]:
  """Noise JPEGs of ~100 KB (noise does not compress)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  out = []
  for _ in range(n):
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8)).save(
        buf, "JPEG", quality=90)
    out.append(buf.getvalue())
  return out


def write(root: str, gb: float) -> tuple[int, int]:
  """(records, bytes) of OD API records written under `root`."""
  total = int(gb * (1 << 30))
  return write_records(root, _images(), shards=max(1, -(-total // SHARD_BYTES)),
                       shard_bytes=SHARD_BYTES, total_bytes=total)


def write_records(root: str, images: list[bytes], *, shards: int,
                  records: int | None = None, shard_bytes: int | None = None,
                  total_bytes: int | None = None) -> tuple[int, int]:
  """(records, bytes) of OD API records (4 boxes each, the images taken in
  turn from `images`) written to `shards` files under `root`, with its
  `label_map.pbtxt`: `records` of them spread evenly over the files, or
  files of `shard_bytes` up to `total_bytes` (bench/reader_scale.py writes
  a count of tiny images, `main` gigabytes of ~100 KB ones)."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def b(v):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))

  def f(v):
    return tf.train.Feature(float_list=tf.train.FloatList(value=v))

  def i(v):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

  def full(size: int, written: int, n: int, shard: int) -> bool:
    if records is not None:
      return n >= records * (shard + 1) // shards
    return size >= shard_bytes or written >= total_bytes

  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "label_map.pbtxt"), "w") as out:
    out.write("".join(f"item {{ id: {k + 1} name: '{c}' }}\n"
                    for k, c in enumerate(CLASSES)))
  written = n = 0
  for shard in range(shards):
    path = os.path.join(root, f"train.record-{shard:05d}-of-{shards:05d}")
    with tf.io.TFRecordWriter(path) as writer:
      size = 0
      while not full(size, written, n, shard):
        data = images[n % len(images)]
        boxes = [(0.1 * k, 0.1 * k, 0.1 * k + 0.3, 0.1 * k + 0.4)
                 for k in range(4)]
        ex = tf.train.Example(features=tf.train.Features(feature={
            "image/encoded": b([data]), "image/format": b([b"jpeg"]),
            "image/height": i([330]), "image/width": i([330]),
            "image/filename": b([f"{n:08d}.jpg".encode()]),
            "image/source_id": b([str(n).encode()]),
            "image/object/bbox/xmin": f([x[0] for x in boxes]),
            "image/object/bbox/ymin": f([x[1] for x in boxes]),
            "image/object/bbox/xmax": f([x[2] for x in boxes]),
            "image/object/bbox/ymax": f([x[3] for x in boxes]),
            "image/object/class/label": i([1 + k % 3 for k in range(4)]),
            "image/object/class/text": b([CLASSES[k % 3].encode()
                                          for k in range(4)]),
        })).SerializeToString()
        writer.write(ex)
        size += len(ex) + 16
        written += len(ex) + 16
        n += 1
  return n, written


def scan(root: str) -> None:
  """Runs one scan in this (fresh) process and prints what it cost."""
  import psutil  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import readers  # pylint: disable=g-import-not-at-top

  proc = psutil.Process()
  base = proc.memory_info().rss
  base_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  peak = [base]
  done = threading.Event()

  def sample():
    while not done.wait(0.01):
      peak[0] = max(peak[0], proc.memory_info().rss)

  thread = threading.Thread(target=sample, daemon=True)
  thread.start()
  start, cpu = time.perf_counter(), time.process_time()
  options = readers.ReadOptions(split_fractions={"train": 1.0})
  result = readers.scan(root, "tfrecord", options)
  seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
  done.set()
  thread.join()
  peak[0] = max(peak[0], proc.memory_info().rss)
  maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  print(json.dumps({
      "records": len(result.records), "problems": len(result.problems),
      "s": seconds, "cpu_s": cpu, "base_mb": base / 1e6,
      "added_mb": (peak[0] - base) / 1e6,
      "added_maxrss_mb": (maxrss - base_maxrss) / 1e6}))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--gb", type=float, nargs="+", default=[1.0, 4.0])
  parser.add_argument("--dir", default="/tmp/tfrecord_bench")
  parser.add_argument("--scan", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.scan:
    scan(args.scan)
    return
  for gb in args.gb:
    root = os.path.join(args.dir, f"{gb:g}gb")
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    n, size = write(root, gb)
    wrote = time.perf_counter() - start
    out = subprocess.run([sys.executable, __file__, "--scan", root],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    files = len(os.listdir(root)) - 1  # Without label_map.pbtxt.
    print(f"{size / 1e9:.2f} GB, {n} records ({files} files,"
          f" written in {wrote:.0f} s): scan {r['records']} records,"
          f" {r['problems']} problems, in {r['s']:.1f} s"
          f" ({size / 1e9 / r['s']:.2f} GB/s; CPU {r['cpu_s']:.1f} s,"
          f" {r['cpu_s'] / r['records'] * 1e6:.0f} us a record); memory after"
          " imports"
          f" {r['base_mb']:.0f} MB, scan added {r['added_mb']:+.1f} MB"
          f" (psutil peak), {r['added_maxrss_mb']:+.1f} MB (ru_maxrss)",
          flush=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
  main()
