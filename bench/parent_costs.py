"""The floor of each step the build process takes per example (issue 27).

    python bench/parent_costs.py /tmp/ift_bench/d50000/folders --examples 20000

Each step alone, in one process (thread CPU, `time.thread_time`), on the
records of a class-folder scan and serialized examples of the bench's mean
size (random bytes): what each step costs with nothing else running beside
it. Then the whole split loop (`MyImages._write_split`: order, results
taken, shards written) with a stand-in pool that hands over results already
received, so the loop's own overhead shows as the rest. Prints a markdown
table; `--repeats` runs the whole set again (medians).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# A worker's side: frames made first, then written as fast as the pipe
# takes them (a worker writes each frame whole, after its chunk).
_CHILD = r"""
import os, pickle, struct, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
pool = [os.urandom(size) for _ in range(32)]
frames = [pickle.dumps(("ok", [(None, (), (), None, (), None, bytes(bytearray(e)))
                               for e in pool]), protocol=pickle.HIGHEST_PROTOCOL)
          for _ in range(n // 32)]
out = sys.stdout.buffer
for frame in frames:
  out.write(struct.pack(">Q", len(frame)))
  out.write(frame)
  out.flush()
"""


def _timed(fn) -> float:
  t = time.thread_time()
  fn()
  return time.thread_time() - t


def measure(folders: str, n: int, size: int) -> dict[str, float]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core import hashing  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import MyImagesConfig, check_cache, pipeline, readers, records, shards, wire  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import report as report_lib  # pylint: disable=g-import-not-at-top
  scan = readers.scan(folders, "auto", MyImagesConfig().read_options())
  split = scan.by_split()["train"]
  n = min(n, len(split))
  recs = records.FolderRecords(split._prefix, split._rels[:n], split._splits[:n],  # pylint: disable=protected-access
                               split._labels[:n], split._class_names)  # pylint: disable=protected-access
  work = tempfile.mkdtemp(prefix="parent_costs_")
  out = {}
  rl = [recs[i] for i in range(n)]
  out["record made (`FolderRecords[i]`)"] = _timed(lambda: [recs[i] for i in range(n)])
  chunks = [rl[i:i + 32] for i in range(0, n, 32)]
  out["record sent (value tuples, pickled)"] = _timed(lambda: [
      pickle.dumps([pipeline._record_values(r) for r in c],  # pylint: disable=protected-access
                   protocol=pickle.HIGHEST_PROTOCOL) for c in chunks])
  keys = records.keys_of(recs)
  hasher = hashing.Hasher("train")
  out["TFDS's order (md5 of each key, sort)"] = _timed(
      lambda: sorted(hasher.hash_key(k) for k in keys))
  # Results through a pipe from another process, as from a worker.
  child = subprocess.Popen([sys.executable, "-c", _CHILD, str(n), str(size)],
                           stdout=subprocess.PIPE)
  pipeline._grow_pipe(child.stdout)  # pylint: disable=protected-access
  first = pipeline._read_frame(child.stdout)[1]  # pylint: disable=protected-access
  # Each frame dropped once read, as the build does (kept, they would cost
  # fresh pages).
  out["results read from the pipe and unpickled"] = _timed(lambda: [
      pipeline._read_frame(child.stdout) for _ in range(n // 32 - 1)])  # pylint: disable=protected-access
  child.wait()
  packed = (first * (n // 32 + 1))[:n]  # The first frame's, over again.
  out["results unpacked (`Outcome`s)"] = _timed(lambda: [
      pipeline._unpack(r, p) for r, p in zip(rl, packed)])  # pylint: disable=protected-access
  cache = check_cache.Cache(os.path.join(work, "c1"), b"n" * 32, "bench")
  added = check_cache.Result(reused=False, added=True)
  out["check cache: a worker's entry counted"] = _timed(
      lambda: [cache.record(added) for _ in range(n)])
  cache.close()
  value = b'{"kept": true, "format": "jpeg", "width": 256, "height": 256}'
  cache = check_cache.Cache(os.path.join(work, "c2"), b"n" * 32, "bench")
  entries = [check_cache.Result(reused=False, key=hashlib.sha256(
      str(i).encode()).digest(), value=value) for i in range(n)]
  out["(check cache: entry added by the build process)"] = _timed(
      lambda: ([cache.record(r) for r in entries], cache.flush()))
  cache.close()
  examples = [p[-1] for p in packed]
  writer = tf.io.TFRecordWriter(os.path.join(work, "shard.tfrecord"))
  out["shard write (`tf.io.TFRecordWriter.write`, TFDS's adapter)"] = _timed(
      lambda: ([writer.write(e) for e in examples], writer.close()))
  framed = [wire.tfrecord(e) for e in examples]
  out["shard write, framed by the workers (`shards.TfRecordWriter`)"] = _timed(
      lambda: shards.TfRecordWriter().write(
          os.path.join(work, "framed.tfrecord"), ((None, r) for r in framed)))
  out["(framing each record: `wire.tfrecord`, in the workers)"] = _timed(
      lambda: [len(wire.tfrecord(e)) for e in examples])  # Each dropped.
  fd = os.open(os.path.join(work, "plain.bin"), os.O_WRONLY | os.O_CREAT)
  out["(the same bytes, one `os.write` each: the page-cache floor)"] = _timed(
      lambda: [os.write(fd, e) for e in examples])
  os.close(fd)

  # As the workers send them: each example framed as its TFRecord record.
  framed_packed = [(*p[:-1], wire.tfrecord(p[-1])) for p in packed]

  class Pool:
    """Hands over the results read above, as `Pool.map` would."""
    started = True
    maker = pipeline.Maker(None, None, framed=True)

    def map(self, rs):
      for r, p in zip(rs, framed_packed):
        yield pipeline._unpack(r, p)  # pylint: disable=protected-access

    def close(self):
      return None

  builder = tfds.builder("my_images", data_dir=os.path.join(work, "data"),
                         config=MyImagesConfig(name="costs"))
  builder._pool = Pool()  # pylint: disable=protected-access
  builder._cache = None  # pylint: disable=protected-access
  builder._report = report_lib.BuildReport(  # pylint: disable=protected-access
      root=folders, layout="folders", class_names=scan.class_names, options={})
  builder._class_counts = collections.defaultdict(collections.Counter)  # pylint: disable=protected-access
  os.makedirs(builder.data_path, exist_ok=True)
  out["whole split loop (`_write_split`, results already read)"] = _timed(
      lambda: builder._write_split("train", recs, [], tfds.download.DownloadConfig()))  # pylint: disable=protected-access
  shutil.rmtree(work)
  return {k: 1e6 * v / n for k, v in out.items()}


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("folders")
  p.add_argument("--examples", type=int, default=20000)
  p.add_argument("--size", type=int, default=19400,
                 help="bytes of a serialized example (the bench's mean)")
  p.add_argument("--repeats", type=int, default=3)
  a = p.parse_args()
  runs = []
  for _ in range(a.repeats):
    runs.append(measure(a.folders, a.examples, a.size))
    print(f"# load {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
          file=sys.stderr, flush=True)
  print(f"| step (one process, {a.size:,}-byte examples) | us an example"
        f" (median of {a.repeats}) |")
  print("|---|---|")
  for key in runs[0]:
    print(f"| {key} | {statistics.median(r[key] for r in runs):.1f} |")
  whole = "whole split loop (`_write_split`, results already read)"
  parts = ("record made (`FolderRecords[i]`)",
           "results unpacked (`Outcome`s)", "TFDS's order (md5 of each key, sort)",
           "shard write, framed by the workers (`shards.TfRecordWriter`)")
  rest = statistics.median(r[whole] - sum(r[k] for k in parts) for r in runs)
  print(f"| the loop's own overhead (whole loop less the steps it includes) |"
        f" {rest:.1f} |")


if __name__ == "__main__":
  main()
