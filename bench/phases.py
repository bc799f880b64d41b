"""Where the CPU of a build goes, phase by phase, against its floors.

    python bench/phases.py /tmp/ift_bench/d50000/folders --repeats 3

Runs, interleaved (the order rotates every repeat), each in a fresh process:

* `plain`: the plain `TFRecordWriter` loop (`bench/plain_loop.py`);
* `check`: the check alone: `pipeline.process` (read, open, decode, CRC) of
  every image in one process, no pipes, nothing written: the floor of what
  the workers must do;
* `build`: `tfds build my_images` with default options, run in a process that
  wraps a few functions to add up, on the build process's main thread
  (`time.thread_time`), the CPU of each phase: the scan, the splits (issue
  27: the workers check, make and serialize each example, in TFDS's order;
  the build process writes them as they come: `MyImages._generate_splits`),
  the manifest (all threads), the card. Inside the splits, the parts:
  TFDS's order of the keys (`shards.hash_order`), the results coming back
  from the workers (`_Worker.receive`: pipe, unpickle), each result taken
  (`MyImages._take`: check cache, problems), the records fetched and sent
  in that order, the TFRecord writes (the workers frame each record, the
  build process `write`s it to the shard file, `shards.TfRecordWriter`;
  `tf.io.TFRecordWriter.write` where TFDS's adapter writes; wrapped
  for the count), the shards named or cut again at the end
  (`shards._finish`), and the rest of the loop (generators, progress bar).
  The wrappers of the parts called per example cost ~1 us an example
  themselves: "splits" is also measured in `build0`, a run without them.
  Other threads of the build process (the feeders that send records to the
  workers, TensorFlow's) and the workers (children) are counted apart.

Prints medians as a markdown table (CPU-seconds) and the ratios to the plain
loop; `--json FILE` keeps every run. `--workers N` builds with
`--config '{"num_workers": N}'`; contenders `build1`, `build2`, ... build
with that many workers in the same run (core scaling); `build0` is `build`
without the per-example wrappers, `tfdswriter` the same examples written by
TFDS's own writer (its shuffler, bucket files and `Writer.finalize`: the gain
of `shards.py`), `base` the code of `--baseline DIR` (e.g. the code before
issue 27) measured as `build0`. `--config JSON` adds config options to
every build (e.g. `{"check_cache_dir": DIR}` for builds from the check
cache: `--cache-from DIR` copies DIR there before each build).
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
    ("order", "TFDS's order of the keys (`records.keys_of`, `shards.hash_order`)"),
    ("receive", "results from the workers (`_Worker.receive`: pipe, unpickle)"),
    ("take", "each result taken (`MyImages._take`: check cache, problems)"),
    ("write", "shard writes (records framed by the workers, buffered `write`; `tf.io.TFRecordWriter.write` where TFDS's adapter writes)"),
    ("finish", "shards named, or cut again (`shards._finish`)"),
    ("split_loop", "the rest of the split loop (records fetched, generators, progress)"),
    ("manifest", "manifest (sha256 of the shards, all threads)"),
    ("other_threads", "other threads of the build process (record feeders, TensorFlow)"),
    ("rest", "rest of the main thread (CLI, TFDS's bookkeeping, dataset info, card)"),
    ("workers", "workers (children): read, check, make and serialize, pipes"),
]
# Parts of "splits" (the main thread's time in `MyImages._generate_splits`).
_SPLIT_PARTS = ("order", "receive", "take", "write", "finish")


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


def child_build(folders: str, data_dir: str, workers: int | None,
                config: dict, parts: bool, tfds_writer: bool = False) -> None:
  t0 = time.perf_counter()
  from tensorflow_datasets.scripts.cli import main as cli_main  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import builder, pipeline, readers, records, release  # pylint: disable=g-import-not-at-top
  imports = time.process_time()
  acc = _Acc()
  acc.wrap(readers, "scan", "scan")
  # TFDS's method in code before issue 27 (`base`): the same span.
  acc.wrap(builder.MyImages, "_generate_splits", "splits")
  acc.wrap(builder.MyImages, "_generate_splits", "splits_wall",
           clock=time.perf_counter)
  acc.wrap(release, "write_manifest", "manifest_main")
  acc.wrap(release, "write_manifest", "manifest", clock=time.process_time)
  if tfds_writer:  # The workers' examples through TFDS's own writer.
    builder.MyImages._writes_shards = lambda self, download_config: False  # pylint: disable=protected-access
  if parts:
    from image_folder_tfds import shards  # pylint: disable=g-import-not-at-top
    acc.wrap(records, "keys_of", "order")
    acc.wrap(shards, "hash_order", "order")
    acc.wrap(pipeline._Worker, "receive", "receive")  # pylint: disable=protected-access
    acc.wrap(builder.MyImages, "_take", "take")
    acc.wrap(shards, "_finish", "finish")

    class TimedWriter(tf.io.TFRecordWriter):
      def write(self, record):
        t = _clock()
        super().write(record)
        acc.cpu["write"] = acc.cpu.get("write", 0.0) + _clock() - t
    tf.io.TFRecordWriter = TimedWriter

    class TimedFile:
      """The shard file of `shards.TfRecordWriter` (records framed by the
      workers), its writes counted as TensorFlow's are above."""

      def __init__(self, *args, **kwargs):
        self._f = open(*args, **kwargs)  # pylint: disable=consider-using-with

      def __enter__(self):
        return self

      def __exit__(self, *exc):
        t = _clock()
        self._f.close()  # The last buffered bytes.
        acc.cpu["write"] = acc.cpu.get("write", 0.0) + _clock() - t

      def write(self, record):
        t = _clock()
        self._f.write(record)
        acc.cpu["write"] = acc.cpu.get("write", 0.0) + _clock() - t
    shards.open = TimedFile  # Found before the builtin by `shards`' code.
  args = ["tfds", "build", "my_images", "--imports", "image_folder_tfds",
          "--manual_dir", folders, "--data_dir", data_dir]
  if workers is not None:
    config = dict(config, num_workers=workers)
  if config:
    args += ["--config", json.dumps(config)]
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
  cpu["split_loop"] = cpu.get("splits", 0.0) - sum(
      cpu.get(k, 0.0) for k in _SPLIT_PARTS)
  if not parts:
    cpu.pop("split_loop")
  manifest_main = cpu.pop("manifest_main", 0.0)
  cpu["imports"] = imports
  # The manifest's hash threads are counted in "manifest" (process CPU).
  cpu["other_threads"] = (process - main_thread
                          - (cpu.get("manifest", 0.0) - manifest_main))
  cpu["rest"] = (main_thread - imports - cpu.get("scan", 0.0)
                 - cpu.get("splits", 0.0) - manifest_main)
  cpu["workers"] = children.ru_utime + children.ru_stime
  cpu["total"] = process + cpu["workers"]
  cpu["wall"] = time.perf_counter() - t0
  cpu["examples"] = _written(data_dir)
  print("PHASES " + json.dumps(cpu), flush=True)


def _written(data_dir: str) -> int:
  """Examples written, from the dataset info of the build."""
  for root, _, files in os.walk(data_dir):
    if "dataset_info.json" in files:
      with open(os.path.join(root, "dataset_info.json")) as f:
        info = json.load(f)
      return sum(int(n) for split in info["splits"]
                 for n in split.get("shardLengths", ()))
  return 0


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


def _run(cmd: list[str], env: dict | None = None) -> dict:
  wrapper = [PY, "-c", (
      "import resource, subprocess, sys, json;"
      "rc = subprocess.call(sys.argv[1:]);"
      "ru = resource.getrusage(resource.RUSAGE_CHILDREN);"
      "print(json.dumps({'rc': rc, 'cpu': ru.ru_utime + ru.ru_stime}),"
      " file=sys.stderr)")] + cmd
  t0 = time.perf_counter()
  proc = subprocess.run(wrapper, env=env or _ENV, capture_output=True,
                        text=True, cwd="/", check=False)
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
  p.add_argument("--config", default="{}", help="JSON config for every build")
  p.add_argument("--cache-from", help="a check cache folder copied to each"
                 " build's `check_cache_dir` before it runs")
  p.add_argument("--json")
  p.add_argument("--child", choices=["build", "check"])
  p.add_argument("--data_dir")
  p.add_argument("--no-parts", action="store_true")
  p.add_argument("--tfds-writer", action="store_true")
  p.add_argument("--baseline", help="a folder holding another"
                 " image_folder_tfds: contender `base` builds with it, as"
                 " `build0` (e.g. `git archive 9cf2525 image_folder_tfds`)")
  a = p.parse_args()
  config = json.loads(a.config)
  if a.child == "build":
    return child_build(a.folders, a.data_dir, a.workers, config,
                       not a.no_parts, a.tfds_writer)
  if a.child == "check":
    return child_check(a.folders)
  os.makedirs(a.work, exist_ok=True)
  me = os.path.abspath(__file__)

  def build(name: str, workers: int | None, parts: bool = True,
            tfds_writer: bool = False):
    out = os.path.join(a.work, name)
    cmd = [PY, me, a.folders, "--child", "build", "--data_dir", out,
           "--config", a.config]
    if workers is not None:
      cmd += ["--workers", str(workers)]
    if not parts:
      cmd.append("--no-parts")
    if tfds_writer:
      cmd.append("--tfds-writer")
    return cmd, out

  cmds = {
      "plain": ([PY, os.path.join(BENCH, "plain_loop.py"), a.folders,
                 os.path.join(a.work, "plain.tfrecord")],
                os.path.join(a.work, "plain.tfrecord")),
      "check": ([PY, me, a.folders, "--child", "check"], None),
      "build": build("build", a.workers),
      "build0": build("build0", a.workers, parts=False),
      "base": build("base", a.workers, parts=False),
      "tfdswriter": build("tfdswriter", a.workers, parts=False,
                          tfds_writer=True),
  }
  envs = {"base": dict(_ENV, PYTHONPATH=os.pathsep.join(
      p for p in (a.baseline, REPO) if p))} if a.baseline else {}
  names = a.contenders.split(",")
  for name in names:  # "build1", "build2": num_workers 1 or 2.
    if name.startswith("build") and name[5:].isdigit() and name != "build0":
      cmds[name] = build(name, int(name[5:]))
  runs = {n: [] for n in names}
  for r in range(a.repeats):
    order = names[r % len(names):] + names[:r % len(names)]
    for name in order:
      cmd, out = cmds[name]
      if out and os.path.isdir(out):
        shutil.rmtree(out)
      elif out and os.path.exists(out):
        os.remove(out)
      if a.cache_from and name.startswith("build"):
        cache_dir = config["check_cache_dir"]  # A fresh copy for each build.
        if os.path.exists(cache_dir):
          shutil.rmtree(cache_dir)
        shutil.copytree(a.cache_from, cache_dir)
      res = _run(cmd, envs.get(name))
      res["uptime"] = _uptime()
      runs[name].append(res)
      print(f"# repeat {r} {name}: wall {res['wall']:.2f} s, cpu"
            f" {res['cpu']:.2f} s, load {res['uptime']}", file=sys.stderr,
            flush=True)
  med = {n: {k: statistics.median(x[k] for x in v) for k in v[0]
             if isinstance(v[0][k], (int, float))}
         for n, v in runs.items() if v}
  if a.json:
    with open(a.json, "w") as f:
      json.dump({"runs": runs, "medians": med, "argv": sys.argv}, f, indent=1)
  print(markdown(med, runs, names, a.repeats))


def _uptime() -> str:
  return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _rate(x: dict) -> str:
  """The splits' wall time and images a second (all checked and written)."""
  if not x.get("splits_wall"):
    return "-"
  return (f"{x['splits_wall']:.2f} s wall,"
          f" {x.get('examples', 0) / x['splits_wall']:,.0f} images/s")


def markdown(med: dict, runs: dict, names: list[str], repeats: int) -> str:
  lines = [f"| phase | CPU s (median of {repeats}) | per example | share of the build |",
           "|---|---|---|---|"]
  plain = med.get("plain")
  if "build" in med:
    b = med["build"]
    n = b.get("examples") or 1
    b["exit"] = b["cpu"] - b["total"]  # After the build: interpreter exit.
    per_example = {"order", "receive", "take", "write", "finish", "split_loop",
                   "other_threads"}
    for key, label in PHASES + [("exit", "process exit (after the build)")]:
      v = b.get(key, 0.0)
      each = f"{1e6 * v / n:.1f} us" if key in per_example | {"workers"} else ""
      lines.append(f"| {label} | {v:.2f} | {each} | {100 * v / b['cpu']:.0f}% |")
    own = b.get("splits", 0.0) + b.get("other_threads", 0.0)
    lines.append(
        f"| **the build process's own work on the splits** (main thread in"
        f" the splits + other threads) | **{own:.2f}** |"
        f" **{1e6 * own / n:.1f} us** | |")
    lines.append(f"| **build, whole process tree** | **{b['cpu']:.2f}** |"
                 f" | wall {b['wall']:.2f} s; splits {_rate(b)} |")
  for name, what in (("build0", "build without the per-example wrappers"),
                     ("tfdswriter", "the workers' examples through TFDS's"
                      " writer (shuffler, buckets) instead of `shards.py`"),
                     ("base", "the code of `--baseline`, same measure")):
    if name in med:
      x = med[name]
      n = x.get("examples") or 1
      own = x.get("splits", 0.0) + x.get("other_threads", 0.0)
      lines.append(f"| {what}: splits + other threads | {own:.2f} |"
                   f" {1e6 * own / n:.1f} us | whole tree {x['cpu']:.2f} s,"
                   f" wall {x['wall']:.2f} s; splits {_rate(x)} |")
  if "check" in med:
    lines.append(f"| check alone, one process (`pipeline.process`,"
                 f" {med['check']['n']:.0f} images) | {med['check']['check']:.2f}"
                 f" | {1e6 * med['check']['check'] / med['check']['n']:.0f} us | |")
  for name in names:
    if name.startswith("build") and name[5:].isdigit() and name != "build0" and (
        name in med):
      x = med[name]
      n = x.get("examples") or 1
      own = x.get("splits", 0.0) + x.get("other_threads", 0.0)
      lines.append(
          f"| build with num_workers={name[5:]}, whole tree | {x['cpu']:.2f} |"
          f" | wall {x['wall']:.2f} s; build process in the splits"
          f" {own:.2f} s ({1e6 * own / n:.1f} us an example), workers"
          f" {x['workers']:.2f} s; splits {_rate(x)} |")
  if plain:
    lines.append(f"| plain loop, whole process | {plain['cpu']:.2f} | | wall"
                 f" {plain['wall']:.2f} s |")
    for name in ("build", "build0", "tfdswriter", "base"):
      if name in med:
        lines.append(
            f"\n{name} / plain: CPU {med[name]['cpu'] / plain['cpu']:.2f}x,"
            f" wall {med[name]['wall'] / plain['wall']:.2f}x (medians;"
            " per-repeat wall ratios: " + ", ".join(
                f"{x['wall'] / y['wall']:.2f}x"
                for x, y in zip(runs[name], runs["plain"])) + ")")
  return "\n".join(lines)


if __name__ == "__main__":
  main()
