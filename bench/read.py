"""Read speed of `tfds.load` against a dense raw reader, per kind of data.

    python bench/read.py --images 5000 --repeats 5

For each kind of data (class folders: `classification`; COCO boxes:
`detection`; COCO person keypoints: `keypoints`) the same images are built
with `tfds build`, then read in a fresh process, without the plugin (a
user's training script), images decoded and undecoded
(`tfds.decode.SkipDecoding()`):

* `raw`: `tf.data.TFRecordDataset` over the same shard files +
  `tf.io.parse_single_example` with dense specs over exactly the keys stored
  (`FixedLenFeature` for scalars and fixed-size arrays,
  `FixedLenSequenceFeature(allow_missing=True)` for per-object lists), mapped
  with the same parallelism TFDS uses (`AUTOTUNE`) and prefetched;
* `tfds`: `tfds.load(...)` of every stored feature, first pass. TFDS caches a
  dataset under 250 MiB in memory (`ReadConfig.try_autocache`,
  `dataset_builder._should_cache_ds`): the first pass also copies every
  example (decoded) into that cache;
* `tfds_nocache`: the same with `ReadConfig(try_autocache=False)`: what the
  first and every pass of a dataset over 250 MiB costs;
* `tfds_epoch2`: the second pass over one `tfds.load` dataset (the first is
  untimed): a training loop's later epochs, served from TFDS's cache.

Every pipeline is run once untimed (tracing, file cache); then `--repeats`
rounds, each running every pipeline in a rotated order; medians are reported
with the ratio tfds / raw measured in the same process, and the CPU time an
example (all threads of the process), which a loaded machine disturbs less
than the wall time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import data as data_lib  # noqa: E402  pylint: disable=g-import-not-at-top

PY = sys.executable
TFDS = os.path.join(os.path.dirname(PY), "tfds")
_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
            PYTHONPATH=os.pathsep.join(
                p for p in (REPO, os.environ.get("PYTHONPATH")) if p))

# Runs in its own process, without the plugin: a user's training script.
_READ_CODE = r"""
import json, statistics, sys, time
import tensorflow as tf
import tensorflow_datasets as tfds
data_dir, repeats = sys.argv[1], int(sys.argv[2])
builder = tfds.builder("my_images", data_dir=data_dir)
files = [str(builder.data_path / f)
         for f in builder.info.splits["train"].filenames]
n = builder.info.splits["train"].num_examples
info = tfds.core.utils.flatten_nest_dict(
    builder.info.features.get_serialized_info())
def dense(t):
  # How tf.train.Example stores them: int64, float32 or bytes lists.
  dt = tf.as_dtype(t.tf_dtype)
  dtype = (tf.string if dt == tf.string else
           tf.float32 if dt.is_floating else tf.int64)
  if t.sequence_rank == 0:
    return tf.io.FixedLenFeature(list(t.shape), dtype)
  if t.sequence_rank == 1:
    return tf.io.FixedLenSequenceFeature(list(t.shape[1:]), dtype,
                                         allow_missing=True)
  raise SystemExit(f"a sequence in a sequence: {t}")
spec = {k: dense(t) for k, t in info.items()}
def raw(decode):
  def parse(x):
    ex = tf.io.parse_single_example(x, spec)
    if decode:
      ex["image"] = tf.io.decode_image(ex["image"], channels=3,
                                       expand_animations=False)
    return ex
  return tf.data.TFRecordDataset(files).map(
      parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
def tfds_load(decode, **read):
  decoders = None if decode else {"image": tfds.decode.SkipDecoding()}
  return tfds.load("my_images", split="train", data_dir=data_dir,
                   shuffle_files=False, decoders=decoders,
                   read_config=tfds.ReadConfig(**read))
def epoch2(decode):
  # A training loop's second epoch over one dataset: the first is untimed.
  ds = tfds_load(decode)
  for _ in ds:
    pass
  return ds
def rate(ds):
  # (examples/s of wall time, CPU-us an example over all threads).
  t, c = time.perf_counter(), time.process_time()
  count = 0
  for _ in ds:
    count += 1
  assert count == n, (count, n)
  return n / (time.perf_counter() - t), (time.process_time() - c) / n * 1e6
# Same values from both (a read benchmark of wrong data means nothing).
a = next(iter(tfds.as_numpy(tfds_load(False).take(1))))
b = next(iter(tfds.as_numpy(raw(False).take(1))))
flat_a = tfds.core.utils.flatten_nest_dict(a)
assert sorted(flat_a) == sorted(b), (sorted(flat_a), sorted(b))
for k in b:
  x, y = flat_a[k], b[k]
  if getattr(x, "dtype", None) == bool:
    y = y.astype(bool)
  assert (x == y).all() if hasattr(x, "all") else x == y, k
make = {"tfds": tfds_load, "raw": raw, "tfds_epoch2": epoch2,
        "tfds_nocache": lambda d: tfds_load(d, try_autocache=False)}
pipes = [(k, d) for k in make for d in (True, False)]
out = {f"{k}_{'decode' if d else 'bytes'}": [] for k, d in pipes}
cpu = {key: [] for key in out}
for k, d in pipes:
  for _ in make[k](d):
    pass
for r in range(repeats):
  for k, d in pipes[r % len(pipes):] + pipes[:r % len(pipes)]:
    key = f"{k}_{'decode' if d else 'bytes'}"
    speed, us = rate(make[k](d))
    out[key].append(speed)
    cpu[key].append(us)
res = {k: statistics.median(v) for k, v in out.items()}
res.update({f"cpu_us_{k}": statistics.median(v) for k, v in cpu.items()})
res["keys"] = sorted(spec)
res["schema"] = dict(builder.info.metadata or {}).get("schema")
print(json.dumps(res))
"""


def _build(manual_dir: str, data_dir: str) -> None:
  if os.path.isdir(os.path.join(data_dir, "my_images")):
    return
  out = subprocess.run(
      [TFDS, "build", "my_images", "--imports", "image_folder_tfds",
       "--manual_dir", manual_dir, "--data_dir", data_dir],
      capture_output=True, text=True, env=_ENV)
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])


def bench_read(work: str, n: int, repeats: int) -> dict:
  """{kind: {tfds_decode, raw_decode, ..., ratio_first_decode, ratio_nocache_bytes, ...}}."""
  d = data_lib.make_dataset(os.path.join(work, f"d{n}"), n)
  inputs = {"classification": d["folders"], "detection": d["coco"],
            "keypoints": data_lib.make_keypoints(d)}
  results = {}
  for kind, manual_dir in inputs.items():
    data_dir = os.path.join(work, f"read_{kind}_{n}")
    _build(manual_dir, data_dir)
    out = subprocess.run([PY, "-c", _READ_CODE, data_dir, str(repeats)],
                         capture_output=True, text=True, env=_ENV)
    if out.returncode:
      raise RuntimeError(out.stderr[-3000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["schema"]["kind"] != kind:
      raise RuntimeError(f"{manual_dir}: built as {res['schema']}, not {kind}")
    for k in ("decode", "bytes"):
      for t in ("tfds", "tfds_nocache", "tfds_epoch2"):
        res[f"ratio_{t[5:] or 'first'}_{k}"] = res[f"{t}_{k}"] / res[f"raw_{k}"]
      # CPU an example, raw / tfds: > 1 when tfds.load costs less.
      res[f"cpu_ratio_{k}"] = res[f"cpu_us_raw_{k}"] / res[f"cpu_us_tfds_{k}"]
    results[kind] = res
    print(kind, json.dumps({k: v for k, v in res.items() if k != "keys"}),
          flush=True)
  return results


def markdown(results: dict, n: int, repeats: int) -> str:
  lines = [
      f"Reading the train split of {n:,} images, every stored feature"
      f" (median of {repeats} interleaved repeats; raw in examples/s,"
      " `tfds.load` as a ratio to raw: first pass with TFDS's auto-cache"
      " (datasets under 250 MiB), a pass without it (any dataset over"
      " 250 MiB, `try_autocache=False`), and a later epoch, served from the"
      " cache):", "",
      "| kind | stored keys | images | raw | tfds.load first pass |"
      " without auto-cache | epoch 2 | CPU an example: raw / first pass /"
      " without auto-cache |",
      "|---|---|---|---|---|---|---|---|"]
  for kind, r in results.items():
    for k, name in (("decode", "decoded"), ("bytes", "bytes")):
      lines.append(
          f"| {kind} | {len(r['keys'])} | {name} | {r[f'raw_{k}']:,.0f}/s |"
          f" {r[f'ratio_first_{k}']:.2f}x | **{r[f'ratio_nocache_{k}']:.2f}x** |"
          f" {r[f'ratio_epoch2_{k}']:.2f}x |"
          f" {r[f'cpu_us_raw_{k}']:.0f} / {r[f'cpu_us_tfds_{k}']:.0f} /"
          f" {r[f'cpu_us_tfds_nocache_{k}']:.0f} us |")
  return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--images", type=int, default=5000)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--work", default=os.path.join("/tmp", "ift_bench"))
  args = p.parse_args(argv)
  os.makedirs(args.work, exist_ok=True)
  results = bench_read(args.work, args.images, args.repeats)
  print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC,"
        f" {os.cpu_count()} cores, {platform.platform()}")
  print(markdown(results, args.images, args.repeats))
  with open(os.path.join(args.work, f"read_{args.images}.json"), "w") as f:
    json.dump(results, f, indent=1)
  return results


if __name__ == "__main__":
  main()
