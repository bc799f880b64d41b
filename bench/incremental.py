"""Incremental release benchmark (issue 15): v2 with the check cache of v1.

    python bench/incremental.py --images 50000 --added 0.05 --repeats 3

Data (`bench/data.py`, deterministic): v2 is the first `images * (1 + added)`
bench images, v1 the first `images` of them (hard links), so v2 = v1 plus
`added` new images. v1 is built once (untimed), which fills the check cache,
and a copy of that cache is kept. Then, interleaved (the order rotates every
repeat), each in a fresh `tfds build` process into an empty data dir:

* `clean`: v2 with `check_cache: false`: every image checked (the baseline);
* `cold`: v2 with the cache on but empty: what filling it costs;
* `cached`: v2 with a fresh copy of v1's cache: the incremental release;
* `floor`: `tfds build` of a trivial builder (ten tiny examples,
  `bench/trivial_builder.py`): what any `tfds build` costs before its data
  (starting Python, importing TensorFlow, TFDS and Beam, writing the dataset
  info). No build, cached or not, can take less.

Every `cached` and `cold` build is checked byte for byte against the `clean`
build of the same repeat (shards, manifest, card, dataset info; the report
without its build-specific `check_cache` part). Results go to
`<work>/incremental.json`, a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)
import data as data_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
import run as run_lib  # pylint: disable=g-import-not-at-top,wrong-import-position

CONTENDERS = ("clean", "cold", "cached", "floor")
NOTES = {"1.0.0": "v1.", "1.1.0": "v2: more images."}
V1 = {"version": "1.0.0", "release_notes": NOTES}
V2 = {"version": "1.1.0", "release_notes": NOTES}
_COMPARED = ("manifest.json", "dataset_info.json", "features.json",
             "metadata.json", "dataset_card.md")


def _link_subset(src: str, dest: str, n: int) -> None:
  """`dest/<class>/<file>` hard links to the first `n` bench images."""
  if os.path.isdir(dest):
    shutil.rmtree(dest)
  for cls, rel in data_lib.file_names(n):
    os.makedirs(os.path.join(dest, cls), exist_ok=True)
    os.link(os.path.join(src, rel), os.path.join(dest, rel))


def _build(manual_dir: str, data_dir: str, config: dict) -> dict:
  return run_lib.measure([
      run_lib.TFDS, "build", "my_images", "--imports", "image_folder_tfds",
      "--manual_dir", manual_dir, "--data_dir", data_dir,
      "--config", json.dumps(config)])


def _version_dir(data_dir: str, version: str = V2["version"]) -> str:
  return os.path.join(data_dir, "my_images", "default", version)


def _cache_dir(data_dir: str) -> str:
  return os.path.join(data_dir, "my_images", "default", ".check_cache")


def _du(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(path) for f in files)


def _report(version_dir: str) -> dict:
  with open(os.path.join(version_dir, "build_report.json")) as f:
    return json.load(f)


def same_as(clean_dir: str, other_dir: str) -> None:
  """Raises unless `other_dir` holds the same release as `clean_dir`."""
  names = sorted(os.listdir(clean_dir))
  if sorted(os.listdir(other_dir)) != names:
    raise RuntimeError(f"{other_dir}: files differ from {clean_dir}")
  for name in names:
    if name == "build_report.json":
      a, b = _report(clean_dir), _report(other_dir)
      a.pop("check_cache"), b.pop("check_cache")
      same = a == b
    else:
      with open(os.path.join(clean_dir, name), "rb") as f:
        a = f.read()
      with open(os.path.join(other_dir, name), "rb") as f:
        same = f.read() == a
    if not same:
      raise RuntimeError(f"{other_dir}/{name} differs from the clean build")


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--images", type=int, default=50_000, help="images in v1")
  p.add_argument("--added", type=float, default=0.05,
                 help="fraction of v1 added in v2")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--work", default=os.path.join("/tmp", "ift_bench"))
  p.add_argument("--markdown", help="also write the table to this file")
  args = p.parse_args(argv)
  n1 = args.images
  n2 = n1 + round(n1 * args.added)
  d = data_lib.make_dataset(os.path.join(args.work, f"d{n2}"), n2)
  work = os.path.join(args.work, f"incremental_{n1}_{n2}")
  os.makedirs(work, exist_ok=True)
  v1_data = os.path.join(work, "v1_folders")
  _link_subset(d["folders"], v1_data, n1)
  v1_out = os.path.join(work, "v1_out")
  run_lib._clear(v1_out)  # pylint: disable=protected-access
  print(f"v1: {n1} images (untimed, fills the cache)", flush=True)
  v1 = _build(v1_data, v1_out, V1)
  v1_cache = os.path.join(work, "v1_cache")
  run_lib._clear(v1_cache)  # pylint: disable=protected-access
  shutil.copytree(_cache_dir(v1_out), v1_cache)
  results = {
      "date": datetime.datetime.now(datetime.timezone.utc).strftime(
          "%Y-%m-%d %H:%M UTC"),
      "command": "python bench/incremental.py " + " ".join(
          argv if argv is not None else sys.argv[1:]),
      "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                  "python": platform.python_version()},
      "v1_images": n1, "v2_images": n2, "v1_wall": v1["wall"],
      "v1_dataset_bytes": _du(_version_dir(v1_out, V1["version"])),
      "v1_cache_bytes": _du(v1_cache),
  }
  runs: dict[str, list[dict]] = {name: [] for name in CONTENDERS}
  for r in range(args.repeats):
    k = r % len(CONTENDERS)
    order = list(CONTENDERS[k:] + CONTENDERS[:k])
    outs = {}
    for name in order:
      out = outs[name] = os.path.join(work, f"v2_{name}")
      run_lib._clear(out)  # pylint: disable=protected-access
      if name == "floor":
        m = run_lib.measure([run_lib.TFDS, "build", "trivial_images",
                             "--imports", "bench.trivial_builder",
                             "--data_dir", out], cwd=run_lib.REPO)
        m["check_cache"] = None
        runs[name].append(m)
        print(f"  {name:<7} run {r + 1}: {m['wall']:7.2f} s  cpu"
              f" {m['cpu']:6.2f} s  load {m['load']:.1f}", flush=True)
        continue
      config = dict(V2)
      if name == "clean":
        config["check_cache"] = False
      elif name == "cached":
        shutil.copytree(v1_cache, _cache_dir(out))
      m = _build(d["folders"], out, config)
      m["written"] = run_lib._written(m["stderr"])  # pylint: disable=protected-access
      if m["written"] != n2:
        raise RuntimeError(f"{name} wrote {m['written']} of {n2} images")
      m["check_cache"] = _report(_version_dir(out))["check_cache"]
      runs[name].append(m)
      print(f"  {name:<7} run {r + 1}: {m['wall']:7.2f} s  cpu"
            f" {m['cpu']:6.2f} s  load {m['load']:.1f}"
            f"  cache {m['check_cache'] and {k: m['check_cache'][k] for k in ('reused', 'checked')}}",
            flush=True)
    for name in ("cold", "cached"):
      same_as(_version_dir(outs["clean"]), _version_dir(outs[name]))
  summary = {}
  for name, ms in runs.items():
    summary[name] = {
        "walls": [round(m["wall"], 3) for m in ms],
        "wall": statistics.median(m["wall"] for m in ms),
        "cpu": statistics.median(m["cpu"] for m in ms),
        "load": [round(m["load"], 1) for m in ms],
        "check_cache": ms[-1]["check_cache"],
    }
  for s in summary.values():
    s["ratio_to_clean"] = s["wall"] / summary["clean"]["wall"]
  summary["floor_to_cached"] = (summary["floor"]["wall"]
                                / summary["cached"]["wall"])
  summary["cached"]["cache_bytes_after"] = _du(
      _cache_dir(os.path.join(work, "v2_cached")))
  results["builds"] = summary
  results["v2_dataset_bytes"] = _du(
      _version_dir(os.path.join(work, "v2_clean")))
  with open(os.path.join(args.work, "incremental.json"), "w") as f:
    json.dump(results, f, indent=1)
  table = markdown(results)
  print(table)
  if args.markdown:
    with open(args.markdown, "w") as f:
      f.write(table)
  return results


def markdown(results: dict) -> str:
  b = results["builds"]
  lines = [
      f"v1 {results['v1_images']:,} images, v2 {results['v2_images']:,}"
      f" ({results['date']}; `{results['command']}`)", "",
      "| v2 build | runs | wall (median) | walls | CPU s (median) |"
      " reused / checked | vs clean |",
      "|---|---|---|---|---|---|---|"]
  for name in CONTENDERS:
    s = b[name]
    cc = s["check_cache"]
    counts = (f"{cc['reused']:,} / {cc['checked']:,}" if cc else
              "(no images)" if name == "floor" else "(off)")
    lines.append(
        f"| {name} | {len(s['walls'])} | {s['wall']:.2f} s |"
        f" {' / '.join(f'{w:.2f}' for w in s['walls'])} | {s['cpu']:.1f} |"
        f" {counts} | {s['ratio_to_clean']:.2f}x |")
  lines += ["", f"Cache after v1: {results['v1_cache_bytes'] / 1e6:.1f} MB for"
            f" a {results['v1_dataset_bytes'] / 1e6:.0f} MB dataset"
            f" ({results['v1_cache_bytes'] / results['v1_dataset_bytes']:.2%});"
            f" after v2: {b['cached']['cache_bytes_after'] / 1e6:.1f} MB"
            f" ({b['cached']['cache_bytes_after'] / results['v2_dataset_bytes']:.2%}"
            " of v2)."]
  return "\n".join(lines)


if __name__ == "__main__":
  main()
