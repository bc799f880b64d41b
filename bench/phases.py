"""Where the CPU of a build goes, phase by phase, against its floors.

    python bench/phases.py /tmp/ift_bench/d50000/folders --repeats 3

Runs, interleaved (the order rotates every repeat), each in a fresh process:

* `plain`: the plain `TFRecordWriter` loop (`bench/plain_loop.py`);
* `check`: the check alone: `pipeline.process` (read, open, decode, CRC) of
  every image in one process, no pipes, nothing written: the floor of what
  the workers must do;
* `build`: `tfds build my_images` with default options, run in a process that
  wraps a few functions to add up, on the build process's main thread
  (`time.thread_time`), the CPU of each phase: the scan, the results coming
  back from the workers, making the example dict, serializing, TFDS's
  shuffler (`add`), reading the files again in hash order, TFDS's shard
  writing (`Writer.finalize` less the reading again), the manifest (all
  threads), the card; the rest of the main thread is TFDS's generator loop and
  bookkeeping. Other threads of the build process (the feeders that send
  records to the workers, TensorFlow's) and the workers (children) are
  counted apart.

Prints medians as a markdown table (CPU-seconds) and the ratios to the plain
loop; `--json FILE` keeps every run. `--workers N` builds with
`--config '{"num_workers": N}'`; contenders `build1`, `build2`, ... build
with that many workers in the same run (core scaling).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
PY = sys.executable
_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
            PYTHONPATH=os.pathsep.join(
                p for p in (REPO, os.environ.get("PYTHONPATH")) if p))

PHASES = [
    ("imports", "imports (`tfds` CLI: TensorFlow, Beam; image_folder_tfds)"),
    ("scan", "scan of the folder (`readers.scan`)"),
    ("receive", "results from the workers (pipe, unpickle)"),
    ("encode", "example dict (`features.Schema.to_example`)"),
    ("serialize", "serialize (`writing.Serializer`)"),
    ("shuffle_add", "TFDS's shuffler: hash the key, keep the example"),
    ("reread", "read the file again, in hash order (`writing._read_again`)"),
    ("shard_write", "shard write (TFDS `Writer.finalize`, less reading again)"),
    ("tfds_loop", "TFDS's generator loop and bookkeeping (the rest of the main thread)"),
    ("manifest", "manifest (sha256 of the shards, all threads)"),
    ("other_threads", "other threads of the build process (record feeders, TensorFlow)"),
    ("rest", "rest of the main thread (CLI, dataset info, release notes, card)"),
    ("workers", "workers (children): read, check, CRC, pipes"),
]


def _clock() -> float:
  return time.thread_time()


class _Acc:
  def __init__(self):
    self.cpu = {}
    self.depth = {}

  def wrap(self, obj, name: str, phase: str, clock=_clock) -> None:
    original = getattr(obj, name)
    acc = self

    def timed(*args, **kwargs):
      outer = acc.depth.get(phase, 0) == 0
      acc.depth[phase] = acc.depth.get(phase, 0) + 1
      t = clock()
      try:
        return original(*args, **kwargs)
      finally:
        acc.depth[phase] -= 1
        if outer:
          acc.cpu[phase] = acc.cpu.get(phase, 0.0) + clock() - t
    setattr(obj, name, timed)


def child_build(folders: str, data_dir: str, workers: int | None) -> None:
  t0 = time.perf_counter()
  from tensorflow_datasets.scripts.cli import main as cli_main  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core import shuffle  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core import writer as writer_lib  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import builder, pipeline, readers, release, writing  # pylint: disable=g-import-not-at-top
  imports = time.process_time()
  acc = _Acc()
  acc.wrap(readers, "scan", "scan")
  acc.wrap(pipeline._Worker, "receive", "receive")  # pylint: disable=protected-access
  acc.wrap(builder.MyImages, "_encode", "encode")
  acc.wrap(writing.Serializer, "serialize", "serialize")
  acc.wrap(writing.Serializer, "serialize_around", "serialize")
  acc.wrap(writing._write_once_class(shuffle, writing.SHUFFLE_MEMORY), "add",  # pylint: disable=protected-access
           "shuffle_add")
  acc.wrap(writing, "_read_again", "reread")
  acc.wrap(writer_lib.Writer, "finalize", "finalize")
  acc.wrap(release, "write_manifest", "manifest_main")
  acc.wrap(release, "write_manifest", "manifest", clock=time.process_time)
  acc.wrap(builder.MyImages, "_download_and_prepare", "build")
  args = ["tfds", "build", "my_images", "--imports", "image_folder_tfds",
          "--manual_dir", folders, "--data_dir", data_dir]
  if workers is not None:
    args += ["--config", json.dumps({"num_workers": workers})]
  sys.argv = args
  try:
    cli_main.launch_cli()
  except SystemExit as e:
    if e.code:
      raise
  main_thread = time.thread_time()
  process = time.process_time()
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = dict(acc.cpu)
  cpu["shard_write"] = cpu.pop("finalize", 0.0) - cpu.get("reread", 0.0)
  inner = sum(cpu.get(k, 0.0) for k in (
      "scan", "receive", "encode", "serialize", "shuffle_add", "reread",
      "shard_write"))
  manifest_main = cpu.pop("manifest_main", 0.0)
  cpu["tfds_loop"] = cpu.pop("build", 0.0) - inner - manifest_main
  cpu["imports"] = imports
  # The manifest's hash threads are counted in "manifest" (process CPU).
  cpu["other_threads"] = (process - main_thread
                          - (cpu.get("manifest", 0.0) - manifest_main))
  cpu["rest"] = process - sum(
      cpu.get(k, 0.0) for k, _ in PHASES if k not in ("rest", "workers"))
  cpu["workers"] = children.ru_utime + children.ru_stime
  cpu["total"] = process + cpu["workers"]
  cpu["wall"] = time.perf_counter() - t0
  print("PHASES " + json.dumps(cpu), flush=True)


def child_check(folders: str) -> None:
  from image_folder_tfds import images, pipeline, records  # pylint: disable=g-import-not-at-top
  recs = []
  for cls in sorted(os.listdir(folders)):
    d = os.path.join(folders, cls)
    if not os.path.isdir(d):
      continue
    for name in sorted(os.listdir(d)):
      path = os.path.join(d, name)
      recs.append(records.ImageRecord(
          key=name, path=path, file_name=name, split="train", source=path,
          label=0))
  options = images.ImageOptions()
  t = time.process_time()
  n = sum(pipeline.process(r, options).image is not None for r in recs)
  print("PHASES " + json.dumps({"check": time.process_time() - t, "n": n}),
        flush=True)


def _run(cmd: list[str]) -> dict:
  wrapper = [PY, "-c", (
      "import resource, subprocess, sys, json;"
      "rc = subprocess.call(sys.argv[1:]);"
      "ru = resource.getrusage(resource.RUSAGE_CHILDREN);"
      "print(json.dumps({'rc': rc, 'cpu': ru.ru_utime + ru.ru_stime}),"
      " file=sys.stderr)")] + cmd
  t0 = time.perf_counter()
  proc = subprocess.run(wrapper, env=_ENV, capture_output=True, text=True,
                        cwd="/", check=False)
  wall = time.perf_counter() - t0
  info = json.loads(proc.stderr.strip().splitlines()[-1])
  if info["rc"] != 0:
    raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
  out = {"wall": wall, "cpu": info["cpu"], "load": os.getloadavg()[0]}
  for line in proc.stdout.splitlines():
    if line.startswith("PHASES "):
      out.update(json.loads(line[len("PHASES "):]))
  return out


def main() -> None:
  p = argparse.ArgumentParser()
  p.add_argument("folders")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--work", default="/tmp/ift_bench/phases")
  p.add_argument("--workers", type=int, default=None)
  p.add_argument("--contenders", default="plain,check,build")
  p.add_argument("--json")
  p.add_argument("--child", choices=["build", "check"])
  p.add_argument("--data_dir")
  a = p.parse_args()
  if a.child == "build":
    return child_build(a.folders, a.data_dir, a.workers)
  if a.child == "check":
    return child_check(a.folders)
  os.makedirs(a.work, exist_ok=True)
  me = os.path.abspath(__file__)
  cmds = {
      "plain": ([PY, os.path.join(BENCH, "plain_loop.py"), a.folders,
                 os.path.join(a.work, "plain.tfrecord")],
                os.path.join(a.work, "plain.tfrecord")),
      "check": ([PY, me, a.folders, "--child", "check"], None),
      "build": ([PY, me, a.folders, "--child", "build", "--data_dir",
                 os.path.join(a.work, "build")]
                + ([] if a.workers is None else ["--workers", str(a.workers)]),
                os.path.join(a.work, "build")),
  }
  names = a.contenders.split(",")
  for name in names:  # "build1", "build2": num_workers 1 or 2.
    if name.startswith("build") and name[5:].isdigit():
      cmds[name] = ([PY, me, a.folders, "--child", "build", "--data_dir",
                     os.path.join(a.work, name), "--workers", name[5:]],
                    os.path.join(a.work, name))
  runs = {n: [] for n in names}
  for r in range(a.repeats):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
      cmd, out = cmds[name]
      if out and os.path.isdir(out):
        shutil.rmtree(out)
      elif out and os.path.exists(out):
        os.remove(out)
      res = _run(cmd)
      runs[name].append(res)
      print(f"# repeat {r} {name}: wall {res['wall']:.2f} s, cpu"
            f" {res['cpu']:.2f} s, load {res['load']:.1f}", file=sys.stderr,
            flush=True)
  med = {n: {k: statistics.median(x[k] for x in v) for k in v[0]}
         for n, v in runs.items() if v}
  if a.json:
    with open(a.json, "w") as f:
      json.dump({"runs": runs, "medians": med, "argv": sys.argv}, f, indent=1)
  plain = med.get("plain")
  print(f"| phase | CPU s (median of {a.repeats}) | share of the build |")
  print("|---|---|---|")
  if "build" in med:
    b = med["build"]
    b["exit"] = b["cpu"] - b["total"]  # After the build: interpreter exit.
    for key, label in PHASES + [("exit", "process exit (after the build)")]:
      v = b.get(key, 0.0)
      print(f"| {label} | {v:.2f} | {100 * v / b['cpu']:.0f}% |")
    print(f"| **build, whole process tree** | **{b['cpu']:.2f}** | wall"
          f" {b['wall']:.2f} s |")
  if "check" in med:
    print(f"| check alone, one process (`pipeline.process`, {med['check']['n']:.0f}"
          f" images) | {med['check']['check']:.2f} | |")
  for name in names:
    if name != "build" and name.startswith("build") and name in med:
      x = med[name]
      print(f"| build with num_workers={name[5:]}, whole tree | {x['cpu']:.2f} |"
            f" wall {x['wall']:.2f} s; in the build process:"
            f" {x['total'] - x['workers'] - x['imports']:.2f} s after imports,"
            f" workers {x['workers']:.2f} s |")
  if plain:
    print(f"| plain loop, whole process | {plain['cpu']:.2f} | wall"
          f" {plain['wall']:.2f} s |")
    if "build" in med:
      print(f"\nbuild / plain: CPU {med['build']['cpu'] / plain['cpu']:.2f}x,"
            f" wall {med['build']['wall'] / plain['wall']:.2f}x (medians;"
            " per-repeat ratios: " + ", ".join(
                f"{x['wall'] / y['wall']:.2f}x"
                for x, y in zip(runs["build"], runs["plain"])) + ")")


if __name__ == "__main__":
  main()
