"""Every reader at scale, against `cat` and a class-folder scan (issue 25, point 8).

    python bench/reader_scale.py [--images 200000] [--repeats 3]
        [--formats coco,yolo,...] [--dir /tmp/reader_scale]
        [--json results.json] [--markdown table.md]
    python bench/reader_scale.py --profile yolo [--images 200000]

For each format, writes once a synthetic dataset of N images (4 boxes each
where the format has boxes; the images are empty files, since a scan only
checks that they exist, except in TFRecords, which hold a tiny JPEG each),
kept in `--dir` for later runs. Then, in each repeat, for every format in
turn (interleaved, so a change of the machine's load hits every format):

* `cat`: `xargs -0 cat` over the format's annotation files, output dropped,
  CPU (of xargs and cat) and wall time; run twice, the second is taken (the
  page cache warm, as it is for the scan that follows).
* `scan`: `readers.scan(root, "auto", options)` in a fresh process, as a
  build does it (detection, read, duplicate-key check): the peak resident
  memory it adds (`peak_added`), its CPU and wall time, and the records
  found.
* `floor`: in a fresh process, the bare parse of the same files with the
  parser the reader uses, nothing kept (ijson items, expat with no handler,
  `json.loads` a file or a line, `csv.reader`, the TFRecord framing and
  Example parser): what no reader built on that parser can go below.

and once a repeat, the class-folder scan of N empty files (`folders`): the
memory baseline. The table gives the medians over the repeats of the ratios
taken within each repeat: scan memory minus the class-folder scan's, scan
CPU / `cat` CPU, scan wall / `cat` wall, floor CPU / `cat` CPU.

`--profile FORMAT` runs one scan under cProfile and prints the functions
that take the most time (by their own time, then with what they call).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import annotation_memory  # noqa: E402  pylint: disable=g-import-not-at-top
import label_studio_scan  # noqa: E402  pylint: disable=g-import-not-at-top
import tfrecord_memory  # noqa: E402  pylint: disable=g-import-not-at-top

# config.DEFAULT_SPLIT_FRACTIONS (config imports TFDS, which this does not
# need): what a build passes the readers by default.
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
CLASSES = [f"c{i}" for i in range(10)]
# The data a format's writer makes changes with this (the data is written
# again).
DATA_VERSION = "1"
# Imported in every measuring process before its baseline, so the memory a
# scan adds is its data, not the code a reader imports on first use.
PRELOAD = ("numpy", "ijson", "yaml", "defusedxml.ElementTree",
           "xml.etree.ElementTree", "pyarrow", "pyarrow.parquet",
           "google_crc32c", "csv", "json")


# --- Writers: one per format, `write(data, n) -> annotation files` ----------


def _empty_files(folder: str, names) -> None:
  os.makedirs(folder, exist_ok=True)
  for name in names:
    open(os.path.join(folder, name), "wb").close()


def _image_names(n: int) -> list[str]:
  return [f"{i:06d}.jpg" for i in range(n)]


def write_folders(data: str, n: int) -> list[str]:
  """Class folders `c0/` ... `c9/` of N empty images: no annotation file."""
  names = _image_names(n)
  for k, c in enumerate(CLASSES):
    _empty_files(os.path.join(data, c), names[k::len(CLASSES)])
  return []


def write_unlabeled(data: str, n: int) -> list[str]:
  """N empty images at the top of the folder."""
  _empty_files(data, _image_names(n))
  return []


def write_coco(data: str, n: int) -> list[str]:
  """bench/annotation_memory.py's COCO file: `images/`, one
  `annotations/instances_train.json`."""
  annotation_memory.write_images(data, n)
  return [annotation_memory.write_coco(data, n)]


def write_yolo(data: str, n: int) -> list[str]:
  """Ultralytics: `data.yaml`, `images/{train,val}/`, `labels/.../*.txt`."""
  with open(os.path.join(data, "data.yaml"), "w") as f:
    f.write("path: .\ntrain: images/train\nval: images/val\nnames:\n"
            + "".join(f"  {k}: {c}\n" for k, c in enumerate(CLASSES)))
  files = [os.path.join(data, "data.yaml")]
  for i, name in enumerate(_image_names(n)):
    split = "val" if i % 10 == 9 else "train"
    if i < 10:
      for kind in ("images", "labels"):
        os.makedirs(os.path.join(data, kind, split), exist_ok=True)
    open(os.path.join(data, "images", split, name), "wb").close()
    path = os.path.join(data, "labels", split, name[:-4] + ".txt")
    with open(path, "w") as f:
      f.write("".join(
          f"{(i + k) % 10} {0.2 + 0.1 * k:.6f} {0.3 + 0.05 * k:.6f}"
          f" {0.1 + 0.02 * k:.6f} {0.15:.6f}\n" for k in range(4)))
    files.append(path)
  return files


def write_cvat(data: str, n: int) -> list[str]:
  """A CVAT for images 1.1 task export: `annotations.xml` (4 `<box>` an
  image, each with an `<attribute>`, as CVAT writes them) and `images/`."""
  _empty_files(os.path.join(data, "images"), _image_names(n))
  path = os.path.join(data, "annotations.xml")
  labels = "".join(
      f"\n        <label>\n          <name>{c}</name>\n          <color>#"
      f"{k:02x}3366</color>\n          <type>rectangle</type>\n"
      "          <attributes>\n            <attribute>\n"
      "              <name>occluded_by</name>\n"
      "              <mutable>False</mutable>\n"
      "              <input_type>text</input_type>\n"
      "              <default_value></default_value>\n"
      "              <values></values>\n            </attribute>\n"
      "          </attributes>\n        </label>"
      for k, c in enumerate(CLASSES))
  with open(path, "w", encoding="utf-8") as f:
    f.write('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n'
            "  <version>1.1</version>\n  <meta>\n    <task>\n"
            f"      <id>7</id>\n      <name>bench</name>\n      <size>{n}"
            "</size>\n      <mode>annotation</mode>\n"
            "      <subset>default</subset>\n"
            f"      <labels>{labels}\n      </labels>\n    </task>\n"
            "    <dumped>2026-12-07 10:00:00.000000+00:00</dumped>\n"
            "  </meta>\n")
    for i, name in enumerate(_image_names(n)):
      f.write(f'  <image id="{i}" name="{name}" width="640" height="480">\n')
      for k in range(4):
        x, y = 10 + 20 * k, 20 + 10 * k
        f.write(
            f'    <box label="{CLASSES[(i + k) % 10]}" source="manual"'
            f' occluded="0" xtl="{x:.2f}" ytl="{y:.2f}" xbr="{x + 100.5:.2f}"'
            f' ybr="{y + 80.25:.2f}" z_order="0">\n'
            '      <attribute name="occluded_by">none</attribute>\n'
            "    </box>\n")
      f.write("  </image>\n")
    f.write("</annotations>\n")
  return [path]


_LABELME_SHAPES = [
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


def write_labelme(data: str, n: int) -> list[str]:
  """A LabelMe `.json` beside each image (4 shapes: 2 rectangles, a polygon,
  a point grouped with the first rectangle), in folders of 1,000."""
  files = []
  for i, name in enumerate(_image_names(n)):
    folder = os.path.join(data, f"d{i // 1000:04d}")
    if i % 1000 == 0:
      os.makedirs(folder, exist_ok=True)
    doc = {"version": "5.4.1", "flags": {}, "shapes": _LABELME_SHAPES,
           "imagePath": name, "imageData": None, "imageHeight": 480,
           "imageWidth": 640}
    path = os.path.join(folder, name[:-4] + ".json")
    with open(path, "w") as f:
      json.dump(doc, f, indent=2)  # LabelMe writes indent=2.
    open(os.path.join(folder, name), "wb").close()
    files.append(path)
  return files


def write_label_studio(data: str, n: int) -> list[str]:
  """bench/label_studio_scan.py's export: one `export.json` of N tasks."""
  label_studio_scan.write(data, n)
  return [os.path.join(data, "export.json")]


def write_metadata(data: str, n: int) -> list[str]:
  """Hugging Face imagefolder: `train/metadata.jsonl` (HF's object-detection
  layout: `objects` with `bbox` [x, y, w, h] and `category`) and the images
  in `train/`."""
  folder = os.path.join(data, "train")
  _empty_files(folder, _image_names(n))
  path = os.path.join(folder, "metadata.jsonl")
  with open(path, "w") as f:
    for i, name in enumerate(_image_names(n)):
      f.write(json.dumps({
          "file_name": name, "text": f"image {i}",
          "objects": {"bbox": [[10.0 + 20 * k, 20.0 + 10 * k, 100.5, 80.25]
                               for k in range(4)],
                      "category": [(i + k) % 10 for k in range(4)]}}) + "\n")
  return [path]


def write_label_csv(data: str, n: int) -> list[str]:
  """A single-label `train.csv` (`filename,label`) naming `images/...`."""
  _empty_files(os.path.join(data, "images"), _image_names(n))
  path = os.path.join(data, "train.csv")
  with open(path, "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["filename", "label"])
    for i, name in enumerate(_image_names(n)):
      out.writerow([f"images/{name}", CLASSES[i % 10]])
  return [path]


def _tiny_jpeg() -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  Image.new("RGB", (330, 330), (90, 140, 200)).save(buf, "JPEG", quality=90)
  return buf.getvalue()


def write_tfrecord(data: str, n: int) -> list[str]:
  """bench/tfrecord_memory.py's OD API records, each with the same tiny JPEG
  (1.6 KB, 330 x 330 as the records say), 20,000 a shard."""
  shards = max(1, -(-n // 20_000))
  tfrecord_memory.write_records(data, [_tiny_jpeg()], shards=shards,
                                records=n)
  return sorted(os.path.join(data, name) for name in os.listdir(data))


def _voc_xml(name: str, i: int) -> str:
  objects = "".join(
      f"\t<object>\n\t\t<name>{CLASSES[(i + k) % 10]}</name>\n"
      "\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n"
      "\t\t<difficult>0</difficult>\n\t\t<occluded>0</occluded>\n"
      f"\t\t<bndbox>\n\t\t\t<xmin>{10 + 20 * k}</xmin>\n"
      f"\t\t\t<xmax>{110 + 20 * k}</xmax>\n\t\t\t<ymin>{20 + 10 * k}</ymin>\n"
      f"\t\t\t<ymax>{100 + 10 * k}</ymax>\n\t\t</bndbox>\n\t</object>\n"
      for k in range(4))
  return (f"<annotation>\n\t<folder></folder>\n\t<filename>{name}</filename>\n"
          "\t<path>" + name + "</path>\n\t<source>\n"
          "\t\t<database>roboflow.com</database>\n\t</source>\n"
          "\t<size>\n\t\t<width>640</width>\n\t\t<height>480</height>\n"
          "\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n"
          f"{objects}</annotation>\n")


def write_voc(data: str, n: int) -> list[str]:
  """Roboflow's Pascal VOC export: an `.xml` (as Roboflow writes it) beside
  each image in `train/` and `valid/`."""
  files = []
  for i, name in enumerate(_image_names(n)):
    folder = os.path.join(data, "valid" if i % 10 == 9 else "train")
    if i < 10:
      os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, name), "wb").close()
    path = os.path.join(folder, name[:-4] + ".xml")
    with open(path, "w") as f:
      f.write(_voc_xml(name, i))
    files.append(path)
  return files


WRITERS = {
    "folders": write_folders, "coco": write_coco, "yolo": write_yolo,
    "cvat": write_cvat, "labelme": write_labelme,
    "label_studio": write_label_studio, "metadata": write_metadata,
    "label_csv": write_label_csv, "unlabeled": write_unlabeled,
    "tfrecord": write_tfrecord, "voc": write_voc,
}
# The formats compared with the baselines (`folders` is the memory one). Each
# is also the layout its data must be detected as.
FORMATS = tuple(f for f in WRITERS if f != "folders")


def dataset(work: str, fmt: str, n: int) -> tuple[str, str]:
  """(data folder, file listing the annotation files, NUL-separated) of a
  format's data set of N images, written unless already there."""
  home = os.path.join(work, fmt, str(n))
  data = os.path.join(home, "data")
  listing = os.path.join(home, "annotation_files")
  done = os.path.join(home, "complete")
  stamp = f"{DATA_VERSION} {n}"
  if os.path.exists(done) and open(done).read() == stamp:
    return data, listing
  shutil.rmtree(home, ignore_errors=True)
  os.makedirs(data)
  start = time.perf_counter()
  # In a process of its own: a writer holding a file's text would leave
  # this process big, and its children would inherit its peak (_reset_peak).
  subprocess.run([sys.executable, os.path.abspath(__file__), "--write", fmt,
                  str(n), data, listing], check=True)
  with open(done, "w") as f:
    f.write(stamp)
  print(f"wrote {fmt} ({n} images, {len(annotation_files(listing))}"
        f" annotation files) in {time.perf_counter() - start:.0f} s",
        file=sys.stderr, flush=True)
  return data, listing


def _write(fmt: str, n: str, data: str, listing: str) -> None:
  files = WRITERS[fmt](data, int(n))
  with open(listing, "w") as f:
    f.write("".join(p + "\0" for p in files))


def annotation_files(listing: str) -> list[str]:
  with open(listing) as f:
    return [p for p in f.read().split("\0") if p]


# --- Measurements --------------------------------------------------------------


def _status(field: str) -> int:
  """A size from /proc/self/status (`VmRSS`, `VmHWM`), in bytes."""
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) * 1024
  raise KeyError(field)


def _reset_peak() -> int:
  """Sets this process's peak resident memory (VmHWM) to its resident
  memory now (Linux: `5` to /proc/self/clear_refs), which it returns.

  Not ru_maxrss: a process starts with its parent's peak (the kernel
  carries it over `exec`), so a parent of 700 MB (this script after writing
  the data) made every scan's peak read as +0 MB; and an import that
  allocates and frees (numpy, pyarrow) leaves a peak a scan must exceed
  before it shows.
  """
  with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
  return _status("VmRSS")


def _cpu_self() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
  r = resource.getrusage(resource.RUSAGE_CHILDREN)
  return r.ru_utime + r.ru_stime


def cat(listing: str) -> dict:
  """`xargs -0 cat` over the files, output dropped: CPU and wall, the
  second of two runs (page cache warm)."""
  out = {}
  for _ in range(2):
    cpu, start = _cpu_children(), time.perf_counter()
    subprocess.run(["xargs", "-0", "-a", listing, "cat"],
                   stdout=subprocess.DEVNULL, check=True)
    out = {"wall": time.perf_counter() - start, "cpu": _cpu_children() - cpu}
  return out


def _floor(fmt: str, files: list[str]) -> int:
  """The bare parse of `files` with the parser `fmt`'s reader uses, nothing
  kept; returns the items parsed."""
  n = 0
  if fmt == "coco":
    import ijson  # pylint: disable=g-import-not-at-top
    for path in files:
      for part in ("images", "annotations"):
        with open(path, "rb") as f:
          n += sum(1 for _ in ijson.items(f, f"{part}.item", use_float=True))
  elif fmt == "label_studio":
    import ijson  # pylint: disable=g-import-not-at-top
    for path in files:
      with open(path, "rb") as f:
        n += sum(1 for _ in ijson.items(f, "item", use_float=True))
  elif fmt in ("cvat", "voc"):
    from xml.parsers import expat  # pylint: disable=g-import-not-at-top
    for path in files:
      with open(path, "rb") as f:
        expat.ParserCreate().ParseFile(f)
      n += 1
  elif fmt == "labelme":
    for path in files:
      with open(path, "rb") as f:
        json.loads(f.read())
      n += 1
  elif fmt == "metadata":
    for path in files:
      with open(path, "rb") as f:
        for line in f:
          json.loads(line)
          n += 1
  elif fmt == "label_csv":
    for path in files:
      with open(path, newline="") as f:
        n += sum(1 for _ in csv.reader(f)) - 1
  elif fmt == "yolo":  # Lines split, values made numbers.
    for path in files:
      if path.endswith(".txt"):
        with open(path, "rb") as f:
          for line in f.read().splitlines():
            [float(v) for v in line.split()]
        n += 1
  elif fmt == "tfrecord":
    from image_folder_tfds.readers import tfrecord  # pylint: disable=g-import-not-at-top
    for path in files:
      if not path.endswith(".pbtxt"):
        for frame in tfrecord.frames(path):
          tfrecord.parse_example(frame.data)
          n += 1
  else:
    raise ValueError(f"no floor for {fmt}")
  return n


def measure(what: str, fmt: str, data: str, listing: str) -> None:
  """In this (fresh) process: one scan or floor, printed as JSON."""
  import importlib  # pylint: disable=g-import-not-at-top
  for name in PRELOAD:
    importlib.import_module(name)
  from image_folder_tfds import readers  # pylint: disable=g-import-not-at-top
  options = readers.ReadOptions(split_fractions=dict(SPLIT_FRACTIONS))
  files = annotation_files(listing)
  base = _reset_peak()
  cpu, start = _cpu_self(), time.perf_counter()
  out = {}
  if what == "scan":
    result = readers.scan(data, "auto", options)
    out["found"] = len(result.records)
    out["code"] = os.path.dirname(os.path.dirname(readers.__file__))
    out["layout"] = result.layout
    if not result.layout.startswith((f"{fmt}:", f"{fmt} ")):
      raise SystemExit(f"{data}: detected as {result.layout}, not {fmt}")
    out["rejected"] = sum(p.kind == "rejected" for p in result.problems)
    out["problems"] = len(result.problems)
  else:
    out["found"] = _floor(fmt, files)
  out["wall"] = time.perf_counter() - start
  out["cpu"] = _cpu_self() - cpu
  out["mb"] = (_status("VmHWM") - base) / 1e6
  print(json.dumps(out))


def _fresh(what: str, fmt: str, data: str, listing: str,
           code: str | None = None) -> dict:
  """One measurement in a fresh process; `code`: the folder holding the
  `image_folder_tfds` to import (else this environment's)."""
  env = dict(os.environ)
  if code:
    env["PYTHONPATH"] = code
  proc = subprocess.run(
      [sys.executable, os.path.abspath(__file__), "--measure", what, fmt, data,
       listing], capture_output=True, text=True, env=env)
  if proc.returncode:
    raise RuntimeError(f"{what} {fmt} failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def run(work: str, n: int, formats: list[str], repeats: int,
        baseline: str | None = None) -> dict:
  sets = {f: dataset(work, f, n) for f in ("folders", *formats)}
  has_files = {f: bool(annotation_files(sets[f][1])) for f in sets}
  runs: dict[str, list[dict]] = {f: [] for f in ("folders", *formats)}
  for rep in range(repeats):
    load = os.getloadavg()[0]
    data, listing = sets["folders"]
    runs["folders"].append({"scan": _fresh("scan", "folders", data, listing),
                            "load": load})
    for fmt in formats:
      data, listing = sets[fmt]
      one = {"load": os.getloadavg()[0]}
      if has_files[fmt]:
        one["cat"] = cat(listing)
      one["scan"] = _fresh("scan", fmt, data, listing)
      if baseline:
        one["base"] = _fresh("scan", fmt, data, listing, code=baseline)
      if has_files[fmt]:
        one["floor"] = _fresh("floor", fmt, data, listing)
      runs[fmt].append(one)
    print(f"repeat {rep + 1}/{repeats} done (load {load:.1f})",
          file=sys.stderr, flush=True)
  out = {"images": n, "repeats": repeats, "baseline": baseline,
         "formats": {}}
  for fmt in ("folders", *formats):
    files = annotation_files(sets[fmt][1])
    rows = runs[fmt]
    summary = {
        "files": len(files),
        "mb": sum(os.path.getsize(p) for p in files) / 1e6,
        "found": [r["scan"]["found"] for r in rows],
        "layout": rows[0]["scan"]["layout"],
        "rejected": rows[0]["scan"]["rejected"],
        "problems": rows[0]["scan"]["problems"],
        "load": [r["load"] for r in rows],
        "runs": rows,
    }
    med = lambda values: statistics.median(values)  # noqa: E731
    summary["scan_cpu"] = med([r["scan"]["cpu"] for r in rows])
    summary["scan_wall"] = med([r["scan"]["wall"] for r in rows])
    summary["scan_mb"] = med([r["scan"]["mb"] for r in rows])
    summary["mem_over_folders"] = med([
        r["scan"]["mb"] - f["scan"]["mb"]
        for r, f in zip(rows, runs["folders"])])
    if baseline and fmt != "folders":
      summary["base_cpu"] = med([r["base"]["cpu"] for r in rows])
      summary["base_mem_over_folders"] = med([
          r["base"]["mb"] - f["scan"]["mb"]
          for r, f in zip(rows, runs["folders"])])
      summary["cpu_over_base"] = med([_ratio(r["scan"]["cpu"],
                                             r["base"]["cpu"]) for r in rows])
    if files:
      summary["cat_cpu"] = med([r["cat"]["cpu"] for r in rows])
      summary["cat_wall"] = med([r["cat"]["wall"] for r in rows])
      summary["floor_cpu"] = med([r["floor"]["cpu"] for r in rows])
      summary["cpu_over_cat"] = med([_ratio(r["scan"]["cpu"], r["cat"]["cpu"])
                                     for r in rows])
      summary["wall_over_cat"] = med([
          _ratio(r["scan"]["wall"], r["cat"]["wall"]) for r in rows])
      summary["floor_over_cat"] = med([
          _ratio(r["floor"]["cpu"], r["cat"]["cpu"]) for r in rows])
    out["formats"][fmt] = summary
  return out


def _ratio(a: float, b: float) -> float:
  """a / b; NaN when b is too small to be measured (a tiny `cat`)."""
  return a / b if b > 0 else float("nan")


_HEADER = ("| format | annotation files | MB | found | scan − folders mem"
           " | scan CPU / cat CPU | scan wall / cat wall | floor CPU / cat CPU"
           " | scan CPU | cat CPU | floor CPU |")


def table(results: dict) -> str:
  lines = [_HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
  for fmt, s in results["formats"].items():
    found = "/".join(sorted({str(f) for f in s["found"]}))
    mem = (f"{s['scan_mb']:.1f} MB" if fmt == "folders"
           else f"{s['mem_over_folders']:+.1f} MB")
    if s["files"]:
      ratios = (f"{s['cpu_over_cat']:.1f}", f"{s['wall_over_cat']:.1f}",
                f"{s['floor_over_cat']:.1f}")
      cpus = (f"{s['scan_cpu']:.1f} s", f"{s['cat_cpu']:.2f} s",
              f"{s['floor_cpu']:.1f} s")
    else:
      ratios = ("", "", "")
      cpus = (f"{s['scan_cpu']:.1f} s", "", "")
    lines.append(f"| {fmt} | {s['files']:,} | {s['mb']:.1f} | {found} | {mem}"
                 f" | {' | '.join(ratios)} | {' | '.join(cpus)} |")
  return "\n".join(lines) + "\n"


def baseline_table(results: dict) -> str:
  lines = ["| format | scan CPU, baseline | scan CPU | ratio (median) | scan −"
           " folders mem, baseline | scan − folders mem |",
           "|---|---:|---:|---:|---:|---:|"]
  for fmt, s in results["formats"].items():
    if "base_cpu" in s:
      lines.append(
          f"| {fmt} | {s['base_cpu']:.1f} s | {s['scan_cpu']:.1f} s |"
          f" {s['cpu_over_base']:.2f} | {s['base_mem_over_folders']:+.1f} MB |"
          f" {s['mem_over_folders']:+.1f} MB |")
  return "\n".join(lines) + "\n"


def profile(work: str, fmt: str, n: int, top: int) -> None:
  import importlib  # pylint: disable=g-import-not-at-top
  for name in PRELOAD:
    importlib.import_module(name)
  from image_folder_tfds import readers  # pylint: disable=g-import-not-at-top
  data, _ = dataset(work, fmt, n)
  options = readers.ReadOptions(split_fractions=dict(SPLIT_FRACTIONS))
  prof = cProfile.Profile()
  prof.enable()
  readers.scan(data, "auto", options)
  prof.disable()
  for order in ("tottime", "cumulative"):
    pstats.Stats(prof).strip_dirs().sort_stats(order).print_stats(top)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--images", type=int, default=200_000)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--formats", default=",".join(FORMATS),
                      help="comma-separated, from " + ", ".join(FORMATS))
  parser.add_argument("--dir", default="/tmp/reader_scale")
  parser.add_argument("--json", help="write every measurement here")
  parser.add_argument("--markdown", help="write the table here")
  parser.add_argument("--profile", metavar="FORMAT",
                      help="profile one scan of FORMAT instead")
  parser.add_argument("--top", type=int, default=25)
  parser.add_argument(
      "--baseline", metavar="DIR",
      help="a folder holding another image_folder_tfds (e.g. `git archive"
      " REV image_folder_tfds | tar -x -C DIR`): its scan too, each repeat,"
      " right after this code's")
  parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
  parser.add_argument("--write", nargs=4, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.measure:
    measure(*args.measure)
    return
  if args.write:
    _write(*args.write)
    return
  if args.profile:
    profile(args.dir, args.profile, args.images, args.top)
    return
  formats = [f for f in args.formats.split(",") if f]
  unknown = sorted(set(formats) - set(FORMATS))
  if unknown:
    parser.error(f"unknown formats {unknown}: expected some of {FORMATS}")
  baseline = os.path.abspath(args.baseline) if args.baseline else None
  results = run(args.dir, args.images, formats, args.repeats, baseline)
  text = table(results)
  if baseline:
    text += f"\nAgainst the code in {baseline}:\n\n" + baseline_table(results)
  print(f"{args.images} images, {args.repeats} repeat(s), load"
        f" {min(min(s['load']) for s in results['formats'].values()):.1f}-"
        f"{max(max(s['load']) for s in results['formats'].values()):.1f}")
  print(text)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=1)
  if args.markdown:
    with open(args.markdown, "w") as f:
      f.write(text)


if __name__ == "__main__":
  main()
