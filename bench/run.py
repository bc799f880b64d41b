"""The build benchmark of `my_images` (issue 4). One command:

    python bench/run.py --sizes 5000,50000

For each size it writes deterministic synthetic data once (`bench/data.py`),
then times, in the same run, with interleaved repeats (the order rotates every
repeat) and medians, each in a fresh process (imports included):

* `copy`: `cp -r` of the image folder: the physical floor (read + write);
* `plain`: the plain single-threaded `tf.io.TFRecordWriter` loop
  (`bench/plain_loop.py`);
* `my_images`: `tfds build my_images` with default options (every image
  checked), the command users run.

Peak memory is the peak of the summed PSS (proportional set size: shared
pages counted once) of the whole process tree (parent and workers), sampled
every 100 ms with psutil; `max1` is the peak RSS of the largest single process
(`getrusage(RUSAGE_CHILDREN)` of a fresh wrapper). Further sections:
Beam (`--beam-sizes`), the scan of `--scan-files` tiny files against
`find DIR -type f | wc -l`, `import image_folder_tfds` time, the fixed cost of
a ten-image build against a trivial TFDS builder, and read speed of
`tfds.load` against a dense raw reader per kind of data (`bench/read.py`).

Results go to `<work>/results.json` and, as a markdown table, to stdout (and
to `--markdown FILE`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import psutil

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import data as data_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
import read as read_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

PY = sys.executable
TFDS = os.path.join(os.path.dirname(sys.executable), "tfds")
_ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
            PYTHONPATH=os.pathsep.join(
                p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
BEAM_OPTIONS = "direct_running_mode=multi_processing,direct_num_workers=2"
BASELINE = [""]  # --baseline: a folder holding an older image_folder_tfds.

def measure(cmd: list[str], cwd: str | None = None,
            allow_failure: bool = False, env: dict | None = None) -> dict:
  """Wall time and peak RSS (tree sum, sampled; and largest process)."""
  wrapper = [PY, "-c", (
      "import resource, subprocess, sys, json;"
      "rc = subprocess.call(sys.argv[1:]);"
      "ru = resource.getrusage(resource.RUSAGE_CHILDREN);"
      "print(json.dumps({'rc': rc, 'max1': ru.ru_maxrss * 1024,"
      " 'cpu': ru.ru_utime + ru.ru_stime, 'written': ru.ru_oublock * 512}),"
      " file=sys.stderr)")] + cmd
  t0 = time.perf_counter()
  # The output goes to files, read at the end: a pipe read only at the end
  # blocks the child once it holds 64 KB (a long build's progress bars).
  out_file = tempfile.TemporaryFile("w+")
  err_file = tempfile.TemporaryFile("w+")
  proc = subprocess.Popen(wrapper, cwd=cwd, env=env or _ENV,
                          stdout=out_file, stderr=err_file, text=True)
  ps = psutil.Process(proc.pid)
  peak = 0
  while proc.poll() is None:
    try:
      tree = [ps] + ps.children(recursive=True)
      total = 0
      for p in tree[1:]:  # Not the wrapper itself.
        try:
          # PSS: pages shared between processes (a worker just forked from
          # the parent, libraries) are counted once, not once per process.
          total += p.memory_full_info().pss
        except psutil.Error:
          continue
      peak = max(peak, total)
    except psutil.Error:
      break
    time.sleep(0.1)
  proc.wait()
  wall = time.perf_counter() - t0
  with out_file, err_file:
    out_file.seek(0)
    err_file.seek(0)
    out, err = out_file.read(), err_file.read()
  last = err.strip().splitlines()[-1] if err.strip() else "{}"
  info = json.loads(last)
  if info.get("rc") != 0 and not allow_failure:
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{out[-3000:]}\n{err[-5000:]}")
  # Bytes the tree wrote to files (Linux counts them as pages are dirtied).
  return {"wall": wall, "peak_rss": peak, "max1": info["max1"],
          "disk_written": info.get("written", 0),
          "cpu": info["cpu"], "rc": info["rc"],
          "load": os.getloadavg()[0], "stdout": out, "stderr": err}


def _contenders(d: dict, out_root: str, names: list[str]) -> dict:
  """{name: (command, output path to clear before each run)}."""
  out = {}
  if "copy" in names:
    dest = os.path.join(out_root, "copy")
    out["copy"] = (["cp", "-r", d["folders"], dest], dest)
  if "plain" in names:
    dest = os.path.join(out_root, "plain.tfrecord")
    out["plain"] = ([PY, os.path.join(BENCH, "plain_loop.py"), d["folders"],
                     dest], dest)
  if "my_images" in names:
    dest = os.path.join(out_root, "my_images")
    out["my_images"] = ([TFDS, "build", "my_images", "--imports",
                         "image_folder_tfds", "--manual_dir", d["folders"],
                         "--data_dir", dest], dest)
  if "my_images_base" in names:  # The same build with --baseline's code.
    dest = os.path.join(out_root, "my_images_base")
    out["my_images_base"] = ([TFDS, "build", "my_images", "--imports",
                              "image_folder_tfds", "--manual_dir",
                              d["folders"], "--data_dir", dest], dest)
  if "array_record" in names:
    dest = os.path.join(out_root, "array_record")
    out["array_record"] = ([TFDS, "build", "my_images", "--imports",
                            "image_folder_tfds", "--manual_dir", d["folders"],
                            "--data_dir", dest, "--file_format=array_record"],
                           dest)
  for layout in ("coco", "seed001"):
    if layout in names:
      dest = os.path.join(out_root, layout)
      out[layout] = ([TFDS, "build", "my_images", "--imports",
                      "image_folder_tfds", "--manual_dir", d[layout],
                      "--data_dir", dest], dest)
  if "beam" in names:
    dest = os.path.join(out_root, "beam")
    out["beam"] = ([TFDS, "build", "my_images", "--imports",
                    "image_folder_tfds", "--manual_dir", d["folders"],
                    "--data_dir", dest,
                    f"--beam_pipeline_options={BEAM_OPTIONS}"], dest)
  return out


def _clear(path: str) -> None:
  if os.path.isdir(path):
    shutil.rmtree(path)
  elif os.path.exists(path):
    os.remove(path)


def _written(stderr: str) -> int:
  """Examples written, from the build report summary in the output."""
  total = 0
  for line in stderr.splitlines():
    line = line.strip()
    if " found, " in line and " written, " in line:
      total += int(line.split(" written,")[0].rsplit(" ", 1)[1])
  return total


def bench_builds(d: dict, names: list[str], repeats: int, work: str) -> dict:
  out_root = os.path.join(work, f"out_{d['images']}")
  os.makedirs(out_root, exist_ok=True)
  contenders = _contenders(d, out_root, names)
  runs: dict[str, list[dict]] = {name: [] for name in contenders}
  order = list(contenders)
  for r in range(repeats):
    rotated = order[r % len(order):] + order[:r % len(order)]
    for name in rotated:
      cmd, dest = contenders[name]
      _clear(dest)
      # A Beam build that fails (its checks found lost examples) is a result.
      # The baseline's code from its own folder, run outside this checkout
      # (a worker started in REPO would find this package first).
      base = name == "my_images_base"
      m = measure(cmd, allow_failure=name == "beam",
                  cwd="/" if base else None,
                  env=dict(_ENV, PYTHONPATH=BASELINE[0]) if base else None)
      if m["rc"]:
        errors = [l for l in m["stderr"].splitlines() if "Error:" in l]
        m["failed"] = errors[-1] if errors else f"exit code {m['rc']}"
        print(f"  {name} FAILED: {m['failed']}", flush=True)
      elif name in ("my_images", "my_images_base", "beam", "array_record",
                    "coco", "seed001"):
        m["written"] = _written(m["stderr"])
        if m["written"] != d["images"]:
          raise RuntimeError(
              f"{name} wrote {m['written']} of {d['images']} images:\n"
              f"{m['stderr'][-3000:]}")
      runs[name].append(m)
      print(f"  {d['images']:>8} {name:<12} run {r + 1}: {m['wall']:7.2f} s"
            f"  cpu {m['cpu']:7.2f} s  peak {m['peak_rss'] / 2**30:.2f} GiB"
            f"  load {m['load']:.1f}",
            flush=True)
  summary = {}
  for name, ms in runs.items():
    wall = statistics.median(m["wall"] for m in ms)
    summary[name] = {
        "images": d["images"], "bytes": d["bytes"], "runs": len(ms),
        "walls": [round(m["wall"], 3) for m in ms],
        "wall": wall,
        "images_per_s": d["images"] / wall,
        "mb_per_s": d["bytes"] / 1e6 / wall,
        "peak_rss": max(m["peak_rss"] for m in ms),
        "max1": max(m["max1"] for m in ms),
        "load": [round(m["load"], 1) for m in ms],
        "cpu": statistics.median(m["cpu"] for m in ms),
        "disk_written": statistics.median(m["disk_written"] for m in ms),
        "failed": [m["failed"] for m in ms if "failed" in m],
    }
  if "plain" in summary:
    for s in summary.values():
      s["ratio_to_plain"] = s["wall"] / summary["plain"]["wall"]
  return summary


def bench_scan(work: str, n: int, repeats: int) -> dict:
  root = data_lib.make_placeholders(os.path.join(work, f"tiny_{n}"), n)
  scan_code = (
      "import sys, time, json\n"
      "from image_folder_tfds import readers\n"
      "t = time.perf_counter()\n"
      "r = readers.scan(sys.argv[1], 'folders', readers.ReadOptions("
      "split_fractions={'train': 0.8, 'validation': 0.1, 'test': 0.1}))\n"
      "print(json.dumps({'scan': time.perf_counter() - t,"
      " 'records': len(r.records)}))\n")
  finds, scans, procs = [], [], []
  for r in range(repeats):
    for kind in (("find", "scan") if r % 2 == 0 else ("scan", "find")):
      if kind == "find":
        t = time.perf_counter()
        out = subprocess.run(f"find {root} -type f | wc -l", shell=True,
                             capture_output=True, text=True, check=True)
        finds.append(time.perf_counter() - t)
        assert int(out.stdout) == n, out.stdout
      else:
        t = time.perf_counter()
        out = subprocess.run([PY, "-c", scan_code, root], capture_output=True,
                             text=True, env=_ENV, check=True)
        procs.append(time.perf_counter() - t)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["records"] == n, res
        scans.append(res["scan"])
  return {"files": n, "find": statistics.median(finds),
          "scan": statistics.median(scans),
          "scan_process": statistics.median(procs),
          "ratio": statistics.median(scans) / statistics.median(finds)}


def bench_import(repeats: int) -> dict:
  code = ("import time; t = time.perf_counter(); import image_folder_tfds;"
          " print(time.perf_counter() - t)")
  times = []
  for _ in range(repeats):
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True,
                         env=_ENV, check=True)
    times.append(float(out.stdout.strip().splitlines()[-1]))
  return {"import": statistics.median(times), "runs": times}


def bench_fixed_cost(work: str, repeats: int) -> dict:
  d = data_lib.make_dataset(os.path.join(work, "d10"), 10)
  out = os.path.join(work, "out_fixed")
  mine = [TFDS, "build", "my_images", "--imports", "image_folder_tfds",
          "--manual_dir", d["folders"], "--data_dir", os.path.join(out, "m")]
  trivial = [TFDS, "build", "trivial_images", "--imports",
             "bench.trivial_builder", "--data_dir", os.path.join(out, "t")]
  walls = {"my_images_10": [], "trivial_10": []}
  for r in range(repeats):
    pairs = [("my_images_10", mine), ("trivial_10", trivial)]
    for name, cmd in pairs if r % 2 == 0 else pairs[::-1]:
      _clear(out)
      walls[name].append(measure(cmd, cwd=REPO)["wall"])
  res = {k: statistics.median(v) for k, v in walls.items()}
  res["ratio"] = res["my_images_10"] / res["trivial_10"]
  return res


def _gib(n: float) -> str:
  return f"{n / 2**30:.2f}"


def markdown(results: dict) -> str:
  m = results["machine"]
  lines = [
      f"Run {results['date']} on {m['cpus']} cores, {m['memory_gib']:.0f} GiB"
      f" RAM, {m['platform']}, Python {m['python']}; command:"
      f" `{results['command']}`.",
      "",
      "| images | converter | runs | wall (median) | CPU s (median) |"
      " images/s | MB/s |"
      " peak memory, tree PSS (GiB) | largest process RSS (GiB) |"
      " vs plain loop |",
      "|---|---|---|---|---|---|---|---|---|---|",
  ]
  loads = [x for summary in results["builds"].values()
           for s in summary.values() for x in s.get("load", [])]
  for size, summary in results["builds"].items():
    for name, s in summary.items():
      ratio = s.get("ratio_to_plain")
      failed = s.get("failed")
      lines.append(
          f"| {int(size):,} | {name}{' (FAILED)' if failed else ''} |"
          f" {s['runs']} | {s['wall']:.2f} s |"
          f" {s.get('cpu', 0):.1f} |"
          f" {s['images_per_s']:,.0f} | {s['mb_per_s']:,.0f} |"
          f" {_gib(s['peak_rss'])} | {_gib(s['max1'])} |"
          f" {'' if ratio is None else f'{ratio:.2f}x'} |")
  for size, summary in results["builds"].items():
    for name, s in summary.items():
      for reason in s.get("failed", []):
        lines += ["", f"{name} at {int(size):,} images failed: `{reason}`"]
  if loads:
    lines += ["", f"1-minute load average at the end of each timed run:"
              f" {min(loads):.1f} to {max(loads):.1f} (2 cores; other work on"
              " the machine makes single figures noisy: medians of interleaved"
              " runs)."]
  if "scan" in results:
    s = results["scan"]
    lines += ["", f"Scan of {s['files']:,} tiny files: `readers.scan`"
              f" {s['scan']:.2f} s (whole process {s['scan_process']:.2f} s)"
              f" vs `find DIR -type f | wc -l` {s['find']:.2f} s:"
              f" {s['ratio']:.2f}x."]
  if "import" in results:
    lines += ["", f"`import image_folder_tfds`: {results['import']['import']:.2f}"
              " s (median)."]
  if "fixed" in results:
    f = results["fixed"]
    lines += ["", f"Fixed cost, `tfds build` of 10 images: {f['my_images_10']:.2f}"
              f" s vs a trivial TFDS builder {f['trivial_10']:.2f} s"
              f" ({f['ratio']:.2f}x)."]
  if "read" in results:
    lines += ["", read_lib.markdown(results["read"], results["read_images"],
                                   results["read_repeats"])]
  return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--sizes", default="5000,50000",
                 help="comma-separated numbers of images")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--contenders", default="copy,plain,my_images",
                 help="any of copy,plain,my_images,array_record,coco,seed001,"
                 "beam, my_images_base (needs --baseline)")
  p.add_argument("--baseline", default="",
                 help="folder holding another image_folder_tfds (e.g. `git"
                 " archive OLD image_folder_tfds | tar -x -C DIR`), built as"
                 " my_images_base in the same run")
  p.add_argument("--beam-sizes", default="",
                 help="sizes at which to time a Beam DirectRunner build once")
  p.add_argument("--scan-files", type=int, default=1_000_000,
                 help="tiny files for the scan benchmark (0: skip)")
  p.add_argument("--read-size", type=int, default=5000,
                 help="images in the dataset read back (0: skip)")
  p.add_argument("--no-extras", action="store_true",
                 help="skip import, fixed-cost and read figures")
  p.add_argument("--work", default=os.path.join("/tmp", "ift_bench"))
  p.add_argument("--markdown", help="also write the table to this file")
  p.add_argument("--results", default="results.json",
                 help="file name of the JSON results in --work")
  args = p.parse_args(argv)
  BASELINE[0] = os.path.abspath(args.baseline) if args.baseline else ""
  if "my_images_base" in args.contenders and not args.baseline:
    p.error("my_images_base needs --baseline DIR")
  os.makedirs(args.work, exist_ok=True)
  names = [n for n in args.contenders.split(",") if n]
  results = {
      "date": datetime.datetime.now(datetime.timezone.utc).strftime(
          "%Y-%m-%d %H:%M UTC"),
      "command": "python bench/run.py " + " ".join(
          argv if argv is not None else sys.argv[1:]),
      "machine": {"cpus": os.cpu_count(),
                  "memory_gib": psutil.virtual_memory().total / 2**30,
                  "platform": platform.platform(),
                  "python": platform.python_version()},
      "builds": {},
  }
  sizes = [int(s) for s in args.sizes.split(",") if s]
  for n in sizes:
    print(f"data: {n} images", flush=True)
    d = data_lib.make_dataset(os.path.join(args.work, f"d{n}"), n)
    results["builds"][str(n)] = bench_builds(d, names, args.repeats, args.work)
  for n in [int(s) for s in args.beam_sizes.split(",") if s]:
    d = data_lib.make_dataset(os.path.join(args.work, f"d{n}"), n)
    beam = bench_builds(d, ["beam"], 1, args.work)["beam"]
    results["builds"].setdefault(str(n), {})["beam"] = beam
    plain = results["builds"][str(n)].get("plain")
    if plain:
      beam["ratio_to_plain"] = beam["wall"] / plain["wall"]
  if args.scan_files:
    print(f"scan: {args.scan_files} files", flush=True)
    results["scan"] = bench_scan(args.work, args.scan_files, args.repeats)
  if not args.no_extras:
    results["import"] = bench_import(max(5, args.repeats))
    results["fixed"] = bench_fixed_cost(args.work, args.repeats)
  if args.read_size and not args.no_extras:
    results["read"] = read_lib.bench_read(args.work, args.read_size,
                                          args.repeats)
    results["read_images"], results["read_repeats"] = (args.read_size,
                                                       args.repeats)
  with open(os.path.join(args.work, args.results), "w") as f:
    json.dump(results, f, indent=1)
  table = markdown(results)
  print(table)
  if args.markdown:
    with open(args.markdown, "w") as f:
      f.write(table)
  return results


if __name__ == "__main__":
  main()
