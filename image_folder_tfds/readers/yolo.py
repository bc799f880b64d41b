"""YOLO: one `.txt` label file per image, coordinates normalized to [0, 1].

Four layouts, found in this order:

* Ultralytics: a dataset YAML (`data.yaml`, or the one `*.yaml` at the top
  of DIR whose keys are those of a dataset) with `names` and `train`/`val`/
  `test`, each a folder of images, a `.txt` list of images, or a list of
  either, relative to `path` (the YAML's folder when `path` is missing; a
  `path` that does not exist here, or lies outside DIR, falls back to the
  YAML's folder with a warning). Roboflow's exports are this layout: their
  `train: ../train/images` is read as Ultralytics reads it (the path as
  written, else without its `../`: the split folder beside the YAML).
* Darknet: `obj.data` (`classes`, `train`, `valid`, `names` = key = value
  lines) with `obj.names` and `train.txt`/`valid.txt` lists, as CVAT's
  "YOLO 1.1" export (Datumaro's `yolo` format) writes them: paths with a
  `data/` prefix (the folder darknet runs from), images and labels side by
  side in `obj_<subset>_data/`.
* `images/` + `labels/` folders without a YAML (also under split folders:
  `train/images` + `train/labels`); class names from `classes.txt`, the
  labels file, or the data (class i is "i").
* A folder with `classes.txt` (or `obj.names`) and a `.txt` beside each
  image, as labelImg saves them.

An image's label file is Ultralytics' `img2label_paths`: the last `images`
folder of the image's path (inside DIR) becomes `labels`, the extension
`.txt` (Darknet also reads `JPEGImages` as `images`); without an `images`
folder, the label file is beside the image. An image without a label file,
or with an empty one, is a background image: kept, with no object.

A label line is `class cx cy w h` (detection), `class x1 y1 x2 y2 ...` (a
polygon: its box is the polygon's extent, its mask the polygon), or, with
`kpt_shape: [K, D]` in the YAML, `class cx cy w h` and K keypoints of D
values (pose). A file is read as polygons when one of its lines has more
than 6 values, as Ultralytics' `verify_image_label` decides; a box line in
such a file is a 2-point polygon there, which is reported, not stored.
Bad lines (a wrong number of values, a class outside `names`, a value that
is not a number, coordinates outside the image by more than 1% of it, a
repeated line) are reported with `file` and `line N` and left out;
coordinates outside by less than 1% are clipped and reported as changed.
Oriented boxes (YOLO-OBB) are refused: see `_check_not_obb`.

The scan streams: each label file is opened and read once, its lines parsed
without a regular expression, its record packed into a temporary file
(`records.PackedRecords`) and its polygons spilled (`masks.LazyStore`).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os

import yaml

from image_folder_tfds import masks
from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "yolo"
# Dataset YAMLs found by name (Ultralytics' and Roboflow's exports; the
# `annotation_artefacts` list), read even when broken so the error names them.
YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")
# YAML keys that name a split, in the order read.
_YAML_SPLITS = (("train", "train"), ("val", "validation"),
                ("validation", "validation"), ("test", "test"))
# obj.data keys that are not splits (`eval=coco` is a metric, not a split).
_DARKNET_KEYS = {"classes", "names", "backup", "eval", "results", "map"}
CLASS_FILES = ("classes.txt", "obj.names")
# Coordinates up to this far outside [0, 1] are clipped ("changed"); further
# rejects the line (Ultralytics' own check allows 1%).
TOLERANCE = 0.01
# Below the 6 decimals YOLO files are written with: float rounding of
# `cx - w / 2`, clipped without a report.
_ROUNDING = 1e-6
_LIST_EXTENSIONS = (".txt",)


class _Broken(Exception):
  """The dataset file names this layout but cannot be read (the message
  says which file and key); `claim` still claims it, `read` raises it."""


# --- Finding the dataset ----------------------------------------------------


@dataclasses.dataclass
class _Source:
  """Where one split's images are: a folder walked, or a list file."""

  split: str | None  # None: each image gets a hash split.
  kind: str  # "dir" or "list"
  path: str  # Absolute.
  origin: str = ""  # The file that named it ("data.yaml: train"), for messages.


@dataclasses.dataclass
class _Dataset:
  layout: str  # For ScanResult.layout.
  evidence: tuple[str, ...]
  sources: list[_Source]
  base: str  # Where relative list lines are resolved first.
  names: list[str] | None = None
  names_source: str = ""
  task: str = ""
  kpt_shape: tuple[int, int] | None = None
  flip_idx: list[int] | None = None
  kpt_names: dict[int, list[str]] = dataclasses.field(default_factory=dict)
  jpeg_images: bool = False  # Darknet: JPEGImages/ is an images folder too.
  warnings: list[records.Problem] = dataclasses.field(default_factory=list)
  # Files that are not labels though they end in .txt (lists, class files).
  not_labels: set[str] = dataclasses.field(default_factory=set)


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: a dataset YAML with `names` whose split paths exist, or a
  Darknet `obj.data`. Likely: `images/` + `labels/` folders (also under
  split folders) holding label lines, a `classes.txt` with a `.txt` beside an
  image, or a dataset file that names this layout but is broken (`read`
  then says what is wrong)."""
  try:
    found = _find(os.path.abspath(root), options)
  except _Broken as e:
    return common.Claim(NAME, common.LIKELY, (e.args[1],))
  if found is None:
    return None
  dataset, certainty = found
  return common.Claim(NAME, certainty, dataset.evidence)


def _find(root: str, options: common.ReadOptions):
  """(_Dataset, certainty), or None when `root` is not a YOLO folder.
  Raises `_Broken` for a dataset file of this layout that cannot be read."""
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    lower = path.lower()
    if lower.endswith((".yaml", ".yml")):
      return _from_yaml(root, path), common.CERTAIN
    if lower.endswith(".data"):
      return _from_darknet(root, path), common.CERTAIN
    return None
  yaml_path = _dataset_yaml(root)
  if yaml_path is not None:
    return _from_yaml(root, yaml_path), common.CERTAIN
  data_path = _darknet_file(root)
  if data_path is not None:
    return _from_darknet(root, data_path), common.CERTAIN
  folders = _label_folders(root)
  if folders is not None:
    return folders, common.LIKELY
  flat = _flat(root)
  if flat is not None:
    return flat, common.LIKELY
  return None


def _top_files(root: str) -> list[str]:
  return common.top_files(root)


def _load_yaml(path: str):
  try:
    with open(path, encoding="utf-8-sig") as f:
      return yaml.safe_load(f)
  except (yaml.YAMLError, UnicodeDecodeError) as e:
    raise _Broken(f"{path}: not valid YAML: {e}", path) from None
  except OSError as e:
    raise _Broken(f"{path}: cannot read: {e.strerror or e}", path) from None


def _looks_like_dataset(data) -> bool:
  return (isinstance(data, dict) and ("names" in data or "nc" in data)
          and any(k in data for k, _ in _YAML_SPLITS))


def _dataset_yaml(root: str) -> str | None:
  """`data.yaml` (or another known name), else the one `*.yaml` at the top
  whose keys are a dataset's; with several, the one named like the folder
  (as Ultralytics' `find_dataset_yaml` prefers)."""
  names = _top_files(root)
  for name in names:
    if name.lower() in YAML_NAMES:
      return os.path.join(root, name)
  found = []
  for name in names:
    if name.lower().endswith((".yaml", ".yml")):
      path = os.path.join(root, name)
      try:
        data = _load_yaml(path)
      except _Broken:
        continue  # Not a dataset file by name, and not YAML: not ours.
      if _looks_like_dataset(data):
        found.append(path)
  if len(found) > 1:
    same = [p for p in found if os.path.splitext(os.path.basename(p))[0]
            == os.path.basename(root)]
    if len(same) == 1:
      return same[0]
    raise _Broken(
        f"{root}: several YOLO dataset files ("
        + ", ".join(os.path.basename(p) for p in found)
        + "): choose one with the `annotations` option", found[0])
  return found[0] if found else None


def _inside(path: str, root: str) -> bool:
  return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _from_yaml(root: str, path: str) -> _Dataset:
  data = _load_yaml(path)
  rel_yaml = os.path.relpath(path, root)
  if not isinstance(data, dict):
    raise _Broken(
        f"{path}: holds {type(data).__name__ if data is not None else 'nothing'}"
        ", not a YOLO dataset (a mapping with names, train, val)", path)
  folder = os.path.dirname(path)
  warnings: list[records.Problem] = []
  base = _dataset_root(data, path, root, folder, warnings)
  names = _yaml_names(data, path)
  task = data.get("task") or ""
  if not isinstance(task, str):
    raise _Broken(f"{path}: task must be a word (detect, segment, pose),"
                  f" got {task!r}", path)
  sources, seen = [], {}
  for key, split in _YAML_SPLITS:
    value = data.get(key)
    if value in (None, "", []):
      continue
    if split in {s.split for s in sources} and key == "validation":
      continue  # `val` given too: Ultralytics renames only a lone one.
    items = value if isinstance(value, list) else [value]
    for item in items:
      if not isinstance(item, str) or not item.strip():
        raise _Broken(
            f"{path}: {key} must be a folder or a .txt list of images (or a"
            f" list of them), got {item!r}", path)
      target = _split_path(item.strip(), base, root, path, key)
      origin = f"{rel_yaml}: {key}"
      if target in seen:
        warnings.append(records.Problem(
            file=path, kind="warning", counts_as_input=False, item=key,
            reason=f"{key} and {seen[target]} both name {item}: its images"
            " are in both splits"))
      seen[target] = key
      kind = "dir" if os.path.isdir(target) else "list"
      sources.append(_Source(split, kind, target, origin))
  if names is None:
    raise _Broken(
        f"{path}: no `names` (the class names, a list or {{id: name}});"
        " Ultralytics would call the classes class_0, class_1, ...:"
        " give their names", path)
  if sources:
    dataset = _Dataset(
        layout=f"yolo: {rel_yaml} ("
        + ("Roboflow, " if "roboflow" in data else "")
        + ", ".join(f"{s.origin.split(': ')[1]}: "
                    f"{os.path.relpath(s.path, root)}" for s in sources)
        + ")", evidence=(path,), sources=sources, base=base,
        not_labels={s.path for s in sources if s.kind == "list"})
  else:
    # Only the classes (supervision's `as_yolo` writes `nc` and `names`):
    # the images are images/ + labels/ beside it.
    dataset = _label_folders(folder)
    if dataset is None:
      raise _Broken(
          f"{path}: no train, val or test key naming the images (and no"
          " images/ + labels/ folders beside it)", path)
    dataset.layout = f"yolo: {rel_yaml} names, " + dataset.layout[6:]
    dataset.evidence = (path,) + dataset.evidence
  dataset.names, dataset.names_source = names, f"{rel_yaml} names"
  dataset.task = task
  dataset.warnings = warnings + dataset.warnings
  _pose_keys(data, path, dataset)
  return dataset


def _dataset_root(data, path, root, folder, warnings) -> str:
  """`path:` of the YAML, relative to the YAML's folder; the YAML's folder
  when it is missing, does not exist here, or lies outside DIR."""
  given = data.get("path")
  if given in (None, ""):
    return folder
  if not isinstance(given, str):
    raise _Broken(f"{path}: path must be a folder, got {given!r}", path)
  target = os.path.normpath(os.path.join(folder, given))
  if os.path.isdir(target) and _inside(os.path.realpath(target),
                                       os.path.realpath(root)):
    return target
  why = ("is outside the data folder" if os.path.isdir(target)
         else "does not exist here")
  warnings.append(records.Problem(
      file=path, kind="warning", counts_as_input=False, item="path",
      reason=f"path {given!r} {why} (written on another machine?): the"
      " YAML's folder is the dataset root"))
  return folder


def _split_path(item: str, base: str, root: str, path: str, key: str) -> str:
  """A split's folder or list, as Ultralytics' `check_det_dataset` finds it:
  relative to the dataset root, or, when that does not exist and it starts
  with `../` (Roboflow's `../train/images`), without the `../`."""
  item = item.replace("\\", "/")
  candidates = [os.path.normpath(os.path.join(base, item))]
  if item.startswith("../"):
    candidates.append(os.path.normpath(os.path.join(base, item[3:])))
  real_root = os.path.realpath(root)
  for target in candidates:
    if os.path.exists(target):
      if not _inside(os.path.realpath(target), real_root):
        continue
      if os.path.isfile(target) and not target.lower().endswith(
          _LIST_EXTENSIONS):
        raise _Broken(
            f"{path}: {key}: {item} is a file but not a .txt list of images",
            path)
      return target
  raise _Broken(
      f"{path}: {key}: {item} not found inside the data folder (looked for "
      + ", ".join(candidates) + ")", path)


def _yaml_names(data, path) -> list[str] | None:
  """`names` as a list, or {id: name} with ids 0..n-1 (Ultralytics'
  `check_class_names`); checked against `nc`."""
  names = data.get("names")
  if names is None:
    return None
  if isinstance(names, dict):
    by_id = {}
    for k, v in names.items():
      if isinstance(k, str) and k.strip().isdigit():
        k = int(k)
      if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise _Broken(f"{path}: names: key {k!r} is not a class id", path)
      by_id[k] = v
    missing = [i for i in range(len(by_id)) if i not in by_id]
    if missing:
      raise _Broken(
          f"{path}: names: {len(by_id)} classes need the ids"
          f" 0..{len(by_id) - 1}, id {missing[0]} is missing", path)
    names = [by_id[i] for i in range(len(by_id))]
  elif not isinstance(names, list):
    raise _Broken(f"{path}: names must be a list or {{id: name}}, got"
                  f" {type(names).__name__}", path)
  out = []
  for i, name in enumerate(names):
    # YAML reads `no`, `on`, `1.0` as booleans or numbers: a name that is
    # not text (or an integer) would be stored as something else.
    if isinstance(name, bool) or not isinstance(name, (str, int)):
      raise _Broken(
          f"{path}: names[{i}] is {name!r} ({type(name).__name__}), not a"
          " name: quote it", path)
    out.append(str(name))
  twice = sorted({n for n in out if out.count(n) > 1})
  if twice:
    raise _Broken(f"{path}: names lists {twice} more than once", path)
  if not out:
    raise _Broken(f"{path}: names is empty", path)
  nc = data.get("nc")
  if nc is not None and (isinstance(nc, bool) or nc != len(out)):
    raise _Broken(
        f"{path}: nc is {nc!r} but names lists {len(out)} classes", path)
  return out


def _pose_keys(data, path, dataset: _Dataset) -> None:
  """`kpt_shape: [K, D]`, `flip_idx`, `kpt_names: {class id: [names]}`."""
  shape = data.get("kpt_shape")
  if shape is None:
    for key in ("flip_idx", "kpt_names"):
      if data.get(key) is not None:
        raise _Broken(f"{path}: {key} is given without kpt_shape", path)
    return
  if (not isinstance(shape, list) or len(shape) != 2
      or not all(isinstance(v, int) and not isinstance(v, bool)
                 for v in shape) or shape[0] < 1 or shape[1] not in (2, 3)):
    raise _Broken(
        f"{path}: kpt_shape must be [number of keypoints, 2 or 3], got"
        f" {shape!r}", path)
  k = shape[0]
  dataset.kpt_shape = (k, shape[1])
  flip = data.get("flip_idx")
  if flip is not None:
    if (not isinstance(flip, list) or len(flip) != k or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < k
        for v in flip)):
      raise _Broken(
          f"{path}: flip_idx must list {k} keypoint indices (0..{k - 1}),"
          f" got {flip!r}", path)
    dataset.flip_idx = list(flip)
  kpt_names = data.get("kpt_names")
  if kpt_names is None:
    return
  if isinstance(kpt_names, list):
    kpt_names = dict(enumerate(kpt_names))
  if not isinstance(kpt_names, dict):
    raise _Broken(f"{path}: kpt_names must be {{class id: [names]}}, got"
                  f" {kpt_names!r}", path)
  for cid, names in kpt_names.items():
    try:
      cid = int(cid)
    except (TypeError, ValueError):
      raise _Broken(f"{path}: kpt_names: {cid!r} is not a class id", path
                    ) from None
    if not 0 <= cid < len(dataset.names):
      raise _Broken(f"{path}: kpt_names: class id {cid} is not among the"
                    f" {len(dataset.names)} names", path)
    if (not isinstance(names, list) or len(names) != k
        or not all(isinstance(n, str) for n in names)):
      raise _Broken(f"{path}: kpt_names[{cid}] must list {k} keypoint names,"
                    f" got {names!r}", path)
    dataset.kpt_names[cid] = list(names)


def _darknet_file(root: str) -> str | None:
  """`obj.data` (any name), or another top-level `*.data` whose keys are a
  Darknet dataset's (`names`, and `train` or `valid`)."""
  names = _top_files(root)
  for name in names:
    if name.lower() == "obj.data":
      return os.path.join(root, name)
  for name in names:
    if name.lower().endswith(".data"):
      path = os.path.join(root, name)
      try:
        config = _darknet_config(path)
      except _Broken:
        continue
      if "names" in config and ("train" in config or "valid" in config):
        return path
  return None


def _darknet_config(path: str) -> dict[str, tuple[int, str]]:
  """{key: (line, value)} of `key = value` lines (Datumaro's reading)."""
  out = {}
  try:
    with open(path, encoding="utf-8-sig") as f:
      for n, line in enumerate(f, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
          continue
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
          raise _Broken(f"{path}:{n}: {line!r} is not `key = value`", path)
        out[key] = (n, value)
  except UnicodeDecodeError as e:
    raise _Broken(f"{path}: not UTF-8 text: {e}", path) from None
  except OSError as e:
    raise _Broken(f"{path}: cannot read: {e.strerror or e}", path) from None
  return out


def _darknet_path(value: str, folder: str, root: str) -> str | None:
  """A path of `obj.data`: relative to darknet's folder (`data/train.txt`:
  the export is darknet's `data/`), as Datumaro localizes them."""
  value = value.replace("\\", "/")
  if os.path.isabs(value):
    candidates = [value, os.path.join(folder, os.path.basename(value))]
  else:
    candidates = [os.path.join(folder, value)]
    first, _, rest = value.partition("/")
    if rest and first in ("data", os.path.basename(folder)):
      candidates.append(os.path.join(folder, rest))
  real_root = os.path.realpath(root)
  for c in candidates:
    c = os.path.normpath(c)
    if os.path.isfile(c) and _inside(os.path.realpath(c), real_root):
      return c
  return None


def _from_darknet(root: str, path: str) -> _Dataset:
  config = _darknet_config(path)
  folder = os.path.dirname(path)
  rel = os.path.relpath(path, root)
  if "names" not in config:
    raise _Broken(f"{path}: no `names = ...` line (the class list file)",
                  path)
  n, value = config["names"]
  names_path = _darknet_path(value, folder, root)
  if names_path is None:
    raise _Broken(f"{path}:{n}: names: {value} not found", path)
  names = _class_file(names_path)
  if "classes" in config:
    n, value = config["classes"]
    if not value.isdigit() or int(value) != len(names):
      raise _Broken(
          f"{path}:{n}: classes = {value}, but {os.path.basename(names_path)}"
          f" lists {len(names)} classes", path)
  sources, warnings = [], []
  for key, (n, value) in config.items():
    if key.lower() in _DARKNET_KEYS:
      continue
    split = splits_lib.canonical_split(key)
    if split is None:
      warnings.append(records.Problem(
          file=path, kind="warning", counts_as_input=False, item=f"line {n}",
          reason=f"key {key!r} is not a split name: its list is not read"))
      continue
    list_path = _darknet_path(value, folder, root)
    if list_path is None:
      raise _Broken(f"{path}:{n}: {key}: {value} not found", path)
    sources.append(_Source(split, "list", list_path, f"{rel}: {key}"))
  if not sources:
    raise _Broken(f"{path}: no train or valid list", path)
  return _Dataset(
      layout=f"yolo: {rel} (Darknet: "
      + ", ".join(os.path.relpath(s.path, root) for s in sources) + ")",
      evidence=(path,), sources=sources, base=folder, names=names,
      names_source=os.path.relpath(names_path, root), jpeg_images=True,
      warnings=warnings,
      not_labels={names_path} | {s.path for s in sources})


def _class_file(path: str) -> list[str]:
  try:
    return common.read_labels_file(os.path.dirname(path), path).names
  except records.InputError as e:
    raise _Broken(str(e), path) from None


def _first_txt(folder: str, limit: int = 64) -> tuple[bool, bool]:
  """(a .txt file is below `folder`, the first non-empty one starts with a
  label line), looking at `limit` entries at most."""
  stack, seen, found = [folder], 0, False
  while stack and seen < limit:
    try:
      entries = sorted(os.scandir(stack.pop()), key=lambda e: e.name)
    except OSError:
      continue
    for e in entries:
      seen += 1
      if common.is_hidden(e.name):
        continue
      if e.is_dir():
        stack.append(e.path)
      elif e.name.lower().endswith(".txt") and e.is_file():
        found = True
        try:
          with open(e.path, "rb") as f:
            head = f.read(4096)
        except OSError:
          continue
        line = next((ln for ln in head.splitlines() if ln.strip()), None)
        if line is not None:
          return True, _is_label_line(line)
  return found, True


def _is_label_line(line: bytes) -> bool:
  parts = line.split()
  if len(parts) < 5:
    return False
  try:
    int(parts[0])
    [float(p) for p in parts[1:5]]
  except ValueError:
    return False
  return True


def _label_folders(root: str) -> _Dataset | None:
  """`images/` + `labels/` at the top (split subfolders of `images/` give
  the splits), or `<split>/images/` + `<split>/labels/` under every
  top-level folder; `labels/` must hold label files."""
  def pair(folder):
    return (os.path.isdir(os.path.join(folder, "images"))
            and os.path.isdir(os.path.join(folder, "labels")))

  sources = []
  if pair(root):
    images = os.path.join(root, "images")
    try:
      entries = [e for e in os.scandir(images) if not common.is_hidden(e.name)]
    except OSError:
      return None
    subs = sorted(e.name for e in entries if e.is_dir())
    files = [e for e in entries if e.is_file()]
    if subs and not files and all(splits_lib.canonical_split(s)
                                  for s in subs):
      sources = [_Source(splits_lib.canonical_split(s), "dir",
                         os.path.join(images, s)) for s in subs]
    else:
      sources = [_Source(None, "dir", images)]
    labels = [os.path.join(root, "labels")]
    layout = "yolo: images/ + labels/"
  else:
    try:
      tops = sorted(e.name for e in os.scandir(root)
                    if not common.is_hidden(e.name) and e.is_dir())
    except OSError:
      return None
    if not tops or not all(splits_lib.canonical_split(t) and os.path.isdir(
        os.path.join(root, t, "images")) for t in tops):
      return None
    sources = [_Source(splits_lib.canonical_split(t), "dir",
                       os.path.join(root, t, "images")) for t in tops]
    labels = [os.path.join(root, t, "labels") for t in tops
              if os.path.isdir(os.path.join(root, t, "labels"))]
    if not labels:
      return None
    layout = "yolo: <split>/images/ + <split>/labels/"
  found = [_first_txt(folder) for folder in labels]
  if not any(has for has, _ in found) or not all(ok for _, ok in found):
    return None
  dataset = _Dataset(layout=layout, evidence=tuple(labels), sources=sources,
                     base=root)
  _top_class_file(root, dataset)
  return dataset


def _top_class_file(root: str, dataset: _Dataset) -> None:
  for name in CLASS_FILES:
    path = os.path.join(root, name)
    if os.path.isfile(path):
      dataset.names = _class_file(path)
      dataset.names_source = name
      dataset.not_labels.add(path)
      return


def _flat(root: str) -> _Dataset | None:
  """`classes.txt` (or `obj.names`) at the top, and an image with a `.txt`
  of the same name beside it, at the top or one folder down (labelImg)."""
  names = _top_files(root)
  class_file = next((n for n in names if n in CLASS_FILES), None)
  if class_file is None:
    return None
  folders = [root]
  try:
    folders += sorted(e.path for e in os.scandir(root)
                      if not common.is_hidden(e.name) and e.is_dir())
  except OSError:
    return None
  pair = None
  for folder in folders:
    files = set(_top_files(folder))
    pair = next((os.path.join(folder, os.path.splitext(n)[0] + ".txt")
                 for n in sorted(files) if common.is_image_name(n)
                 and os.path.splitext(n)[0] + ".txt" in files
                 and os.path.splitext(n)[0] + ".txt" not in CLASS_FILES),
                None)
    if pair is not None:
      break
  if pair is None:
    return None
  dataset = _Dataset(
      layout=f"yolo: {class_file} + a .txt beside each image",
      evidence=(os.path.join(root, class_file), pair),
      sources=[_Source(None, "dir", root)], base=root)
  _top_class_file(root, dataset)
  return dataset


# --- Reading ------------------------------------------------------------------


@dataclasses.dataclass
class _Stats:
  """Counts over every label line, for the checks made at the end."""

  polygons: int = 0  # Lines read as polygons.
  quads: int = 0  # ... of exactly 4 points,
  rotated: int = 0  # ... of which not an axis-aligned rectangle.
  first_quad: str = ""  # file:line of the first rotated one.
  boxes: int = 0  # Objects without a polygon (empty masks beside polygons).
  listed_outside: int = 0  # Absolute list lines found by their tail.


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  try:
    found = _find(root, options)
  except _Broken as e:
    raise records.InputError(e.args[0]) from None
  if found is None:
    raise records.InputError(
        f"{root}: no YOLO dataset: expected a dataset YAML (data.yaml with"
        " names, train, val), a Darknet obj.data, images/ beside labels/, or"
        " classes.txt with a .txt label file beside each image")
  dataset, _ = found
  if dataset.task.lower() == "obb":
    raise records.InputError(
        f"{dataset.evidence[0]}: task: obb: oriented boxes (YOLO-OBB, `class"
        " x1 y1 x2 y2 x3 y3 x4 y4`) are not read (boxes are stored axis"
        " aligned; a rotated box would be misread)")
  reader = _Reader(root, options, dataset)
  return reader.run()


class _Reader:
  """One scan: the images of each source, their label files, the records."""

  def __init__(self, root, options, dataset: _Dataset):
    self.root = root
    self.prefix = root + os.sep
    self.options = options
    self.d = dataset
    self.problems: list[records.Problem] = list(dataset.warnings)
    self.recs = records.PackedRecords()
    self.store = masks.LazyStore()
    self.stats = _Stats()
    self.seen: dict[str, set[str]] = collections.defaultdict(set)
    self.used: set[str] = set()  # Label files read (relative to root).
    self.txt: set[str] = set()  # .txt files that may be labels.
    self.label_roots: set[str] = set()  # Folders walked for orphan labels.
    self.list_label_dirs: set[str] = set()
    self.max_class = -1
    labels = common.read_labels_file(root, options.labels_file)
    # The classes: a labels file fixes them (YAML names are looked up in
    # it), else the dataset's names, else the ids seen ("0", "1", ...).
    self.names = dataset.names
    self.index = None  # Dataset class id -> stored label, when remapped.
    self.class_source = dataset.names_source
    if labels is not None:
      if dataset.names is not None:
        self.index = [labels.names.index(n) if n in labels.names else -1
                      for n in dataset.names]
      self.names = labels.names
      self.class_source = os.path.relpath(labels.path, root)
      self.not_labels = dataset.not_labels | {labels.path}
    else:
      self.not_labels = set(dataset.not_labels)
    self.pose = dataset.kpt_shape
    self.image_folders = (("images", "JPEGImages") if dataset.jpeg_images
                          else ("images",))
    self.label_folders: dict[str, str] = {}  # Image folder -> label folder.
    # (label, name) of each class id, for the fast path of box lines; a
    # class the labels file lacks takes the slow path, which reports it.
    self.fast_labels: list[tuple[int, str]] = []
    if self.names is None:  # The ids are the names: the first thousand.
      self.fast_labels = [(cid, str(cid)) for cid in range(1000)]
    else:
      for cid in range(len(self.index if self.index is not None
                           else self.names)):
        label = self.index[cid] if self.index is not None else cid
        if label < 0:
          break
        self.fast_labels.append((label, self.names[label]))

  # -- images ---------------------------------------------------------------

  def run(self) -> common.ScanResult:
    for source in self.d.sources:
      if source.kind == "dir":
        self._walk(source)
      else:
        self._list(source)
    self.recs.extend(())  # Flushes the records file for other processes.
    self.store.finish()
    self._orphans()
    self._check_not_obb()
    if self.stats.boxes and self.stats.polygons:
      self.problems.append(records.Problem(
          file=self.root, kind="warning", counts_as_input=False,
          reason=f"{self.stats.boxes} objects are boxes without a"
          f" polygon, beside {self.stats.polygons} polygons: their masks"
          " are stored empty (all 0)"))
    if self.names is None:
      class_names = [str(i) for i in range(self.max_class + 1)]
    else:
      class_names = list(self.names)
    metadata = {}
    if self.pose is not None:
      meta = {"kpt_shape": list(self.pose)}
      if self.d.flip_idx is not None:
        meta["flip_idx"] = list(self.d.flip_idx)
      metadata["yolo"] = meta
    keypoint_names = {}
    for cid, kp_names in sorted(self.d.kpt_names.items()):
      label = self.index[cid] if self.index is not None else cid
      if label >= 0:
        keypoint_names[class_names[label]] = kp_names
    return common.ScanResult(
        layout=self.d.layout, class_names=class_names, records=self.recs,
        problems=self.problems, keypoint_names=keypoint_names,
        metadata=metadata)

  def _walk(self, source: _Source) -> None:
    """Every image below a folder (Ultralytics globs `**/*.*`)."""
    rels = common.walk_files(source.path, self.root, self.problems,
                             source.split)
    if os.sep != "/":
      rels = [r.replace(os.sep, "/") for r in rels]
    images, others = [], []
    for rel in rels:
      name = rel.rpartition("/")[2]
      lower = name.lower()
      if common.is_image_name(name):
        images.append(rel)
      elif lower.endswith(".txt"):
        self.txt.add(rel)
      elif not (lower.endswith((".yaml", ".yml", ".data", ".names", ".cache"))
                or name in common.KNOWN_METADATA_FILES):
        others.append(rel)
    del rels
    if source.split is None:  # Hash splits, all at once (splits.py's C path).
      splits = splits_lib.assign_splits(images, self.options.split_fractions)
    else:
      splits = [source.split] * len(images)
    for rel, split in zip(images, splits):
      self._image(self.prefix + rel, rel, split, source.path)
    for rel in others:
      self.problems.append(records.Problem(
          file=self.prefix + rel, split=source.split or "",
          reason="not an image by its extension (YOLO reads "
          + ", ".join(sorted(common.IMAGE_EXTENSIONS)) + "): not used"))
    # The label files of these images: below this folder (found by the
    # walk), or in the labels/ folder that mirrors it.
    top = os.path.relpath(source.path, self.root).replace(os.sep, "/")
    top = "" if top == "." else top
    label_top = self._label_rel(f"{top}/x.jpg" if top else "x.jpg")
    label_top = label_top.rpartition("/")[0]
    if label_top != top:
      self.label_roots.add(label_top)

  def _list(self, source: _Source) -> None:
    """The images a list file names, one a line (`./x.jpg`: beside it)."""
    folder = os.path.dirname(source.path)
    try:
      f = open(source.path, encoding="utf-8-sig")
    except OSError as e:
      raise records.InputError(
          f"{source.path}: cannot read: {e.strerror or e}") from None
    with f:
      try:
        for n, line in enumerate(f, start=1):
          name = line.strip()
          if not name:
            continue
          where = f"line {n}"
          try:
            path, rel = self._resolve(name, folder)
          except annotated.PathError as e:
            self.problems.append(annotated.input_problem(
                source.path, str(e), split=source.split or "", item=where))
            continue
          if not common.is_image_name(rel):
            self.problems.append(annotated.input_problem(
                source.path, f"{name}: not an image by its extension (YOLO"
                " reads " + ", ".join(sorted(common.IMAGE_EXTENSIONS)) + ")",
                split=source.split or "", item=where))
            continue
          self._image(path, rel,
                      annotated.assign_split(source.split, rel, self.options),
                      source.path, where)
          self.list_label_dirs.add(self._label_rel(rel).rpartition("/")[0])
      except UnicodeDecodeError as e:
        raise records.InputError(
            f"{source.path}: not UTF-8 text: {e}") from None
    if self.stats.listed_outside:
      self.problems.append(records.Problem(
          file=source.path, kind="warning", counts_as_input=False,
          reason=f"{self.stats.listed_outside} absolute image paths lie"
          " outside the data folder (written on another machine?): each was"
          " read from the file inside it with the longest same trailing"
          " path"))
      self.stats.listed_outside = 0

  def _resolve(self, name: str, folder: str) -> tuple[str, str]:
    """A list line to (path, relative path): `./x` beside the list, else
    relative to the dataset root, the list's folder or DIR, else without a
    leading `data/` (Darknet's folder); an absolute path from another
    machine by its longest trailing part that exists inside DIR."""
    name = name.replace("\\", "/")
    if name.startswith("./"):
      return annotated.resolve_image(name[2:], [folder], self.root)
    bases = list(dict.fromkeys([self.d.base, folder, self.root]))
    if os.path.isabs(name) and not _inside(os.path.normpath(name), self.root):
      parts = [p for p in name.split("/") if p]
      for i in range(1, len(parts)):
        try:
          found = annotated.resolve_image("/".join(parts[i:]), bases,
                                          self.root)
        except annotated.PathError:
          continue
        self.stats.listed_outside += 1
        return found
      raise annotated.PathError(
          f"image {name!r} is outside the data folder {self.root}, and no"
          " file inside it ends with its path: refused")
    try:
      return annotated.resolve_image(name, bases, self.root)
    except annotated.PathError as e:
      first, _, rest = name.partition("/")
      if rest and first in ("data", os.path.basename(self.d.base)):
        try:
          return annotated.resolve_image(rest, bases, self.root)
        except annotated.PathError:
          pass
      raise e from None

  def _label_rel(self, rel: str) -> str:
    """Ultralytics' `img2label_paths`, inside DIR: the last `images` folder
    becomes `labels` (Darknet: also `JPEGImages`), the extension `.txt`."""
    folder, _, name = rel.rpartition("/")
    label_folder = self.label_folders.get(folder)
    if label_folder is None:
      parts = folder.split("/") if folder else []
      for target in self.image_folders:
        if target in parts:
          parts[len(parts) - 1 - parts[::-1].index(target)] = "labels"
          break
      label_folder = self.label_folders[folder] = "".join(
          p + "/" for p in parts)
    return label_folder + name.rsplit(".", 1)[0] + ".txt"

  def _image(self, path: str, rel: str, split: str, origin: str,
             where: str = "") -> None:
    seen = self.seen[split]
    if rel in seen:
      self.problems.append(annotated.input_problem(
          origin, f"{rel} is listed twice in split {split!r}: the second is"
          " not used", split=split, item=where or rel))
      return
    seen.add(rel)
    label_rel = self._label_rel(rel)
    label = self.prefix + label_rel
    try:
      data = _read(label)
    except OSError as e:
      self.problems.append(annotated.input_problem(
          label, f"label file of {rel} cannot be read: {e.strerror or e}",
          split=split))
      return
    if data is None:  # A background image.
      self.recs.append(records.ImageRecord(
          key=rel, path=path, file_name=rel, split=split, source=path, id=rel))
      return
    self.used.add(label_rel)
    objects, masked = self._parse(data, label, split)
    self.recs.append(records.ImageRecord(
        key=rel, path=path, file_name=rel, split=split, source=label, id=rel,
        objects=objects, segmentation_file=self.store.path if masked else ""))

  # -- label lines ----------------------------------------------------------

  def _parse(self, data: bytes, label: str, split: str):
    """(objects, any with a polygon) of one label file; each bad line is
    reported and left out. Box lines that are right take a fast path; any
    other line goes through `_line`, which says what is wrong."""
    if data.startswith(b"\xef\xbb\xbf"):
      data = data[3:]
    rows = [ln.split() for ln in data.splitlines()]
    if not rows:
      return (), False
    segments = self.pose is None and max(map(len, rows)) > 6
    fast = self.fast_labels if self.pose is None and not segments else ()
    n_fast = len(fast)
    objects = []
    seen: dict[tuple, int] = {}
    new_object = records.ObjectRecord
    boxes = 0
    for n, tokens in enumerate(rows, 1):
      if not tokens:
        continue
      if n_fast and len(tokens) == 5:
        try:
          cid = int(tokens[0])
          cx = float(tokens[1])
          cy = float(tokens[2])
          w = float(tokens[3])
          h = float(tokens[4])
        except ValueError:
          cid = -1
        if 0 <= cid < n_fast:
          x0 = cx - w / 2
          y0 = cy - h / 2
          x1 = cx + w / 2
          y1 = cy + h / 2
          key = (cid, cx, cy, w, h)  # As `_line` makes it.
          # A negative size, NaN (which fails every comparison), a corner
          # outside, or a repeat: the slow path says which.
          if (0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0
              and key not in seen):
            seen[key] = n
            label_id, text = fast[cid]
            objects.append(new_object(box=(x0, y0, x1, y1), label=label_id,
                                      text=text))
            boxes += 1
            continue
      try:
        obj, key, clipped = self._line(tokens, segments, label, n)
      except ValueError as e:
        self.problems.append(annotated.annotation_problem(
            label, f"{e}: object not written", split=split, item=f"line {n}"))
        continue
      if key in seen:
        self.problems.append(annotated.annotation_problem(
            label, f"the same as line {seen[key]}: not written again"
            " (Ultralytics drops repeated labels too)", split=split,
            item=f"line {n}"))
        continue
      seen[key] = n
      if clipped:
        self.problems.append(annotated.annotation_problem(
            label, "coordinates outside the image by less than 1% of it:"
            " clipped", split=split, item=f"line {n}", kind="changed"))
      if obj.segmentation < 0:
        boxes += 1
      objects.append(obj)
    self.stats.boxes += boxes
    if self.names is None and objects:
      self.max_class = max(self.max_class, max(o.label for o in objects))
    return tuple(objects), segments and bool(objects)

  def _class(self, token: bytes) -> tuple[int, int, str]:
    """(class id as written, stored label, class name)."""
    try:
      cid = int(token)
    except ValueError:
      try:
        value = float(token)
      except ValueError:
        value = math.nan
      if not (math.isfinite(value) and value.is_integer()):
        raise ValueError(
            f"class id {_text(token)!r} is not an integer") from None
      cid = int(value)
    if cid < 0:
      raise ValueError(f"class id {cid} is negative")
    if self.names is None:
      self.max_class = max(self.max_class, cid)
      return cid, cid, str(cid)
    if self.index is not None:
      if cid >= len(self.index):
        raise ValueError(
            f"class id {cid} is not among the {len(self.index)} classes"
            f" ({self.d.names_source})")
      label = self.index[cid]
      if label < 0:
        raise ValueError(
            f"class {self.d.names[cid]!r} (id {cid}) is not in"
            f" {self.class_source}")
      return cid, label, self.names[label]
    if cid >= len(self.names):
      raise ValueError(
          f"class id {cid} is not among the {len(self.names)} classes"
          f" ({self.class_source})")
    return cid, cid, self.names[cid]

  def _line(self, tokens: list[bytes], segments: bool, label: str, n: int):
    """(object, key for repeats, clipped) of one line; ValueError says why
    it is not read."""
    count = len(tokens)
    if self.pose is not None:
      k, dims = self.pose
      want = 5 + k * dims
      if count != want:
        raise ValueError(
            f"{count} values; a pose line has {want}: class cx cy w h and"
            f" {k} keypoints of {dims} values (kpt_shape)")
    elif segments:
      if count == 5:
        raise ValueError(
            "a box (class cx cy w h) in a file of polygons: Ultralytics reads"
            " every line of such a file as a polygon, this one as 2 points")
      if count % 2 == 0:
        raise ValueError(
            f"{count - 1} coordinates: a polygon line is class x1 y1 x2 y2"
            " ..., x y pairs")
    elif count != 5:
      hint = (" (a 6th value is a confidence: a file of predictions?)"
              if count == 6 else "")
      raise ValueError(
          f"{count} values; a box line has 5: class cx cy w h{hint}")
    cid, label_id, text = self._class(tokens[0])
    try:
      values = [float(t) for t in tokens[1:]]
    except ValueError:
      bad = next(t for t in tokens[1:] if not _is_float(t))
      raise ValueError(f"{_text(bad)!r} is not a number") from None
    if not all(map(math.isfinite, values)):
      bad = next(t for t, v in zip(tokens[1:], values)
                 if not math.isfinite(v))
      raise ValueError(f"{_text(bad)!r} is not a finite number")
    key = (cid, *values)
    if segments:
      obj, clipped = self._polygon(values, label_id, text, f"{label}:{n}")
      return obj, key, clipped
    cx, cy, w, h = values[:4]
    if w < 0 or h < 0:
      raise ValueError(f"box {'width' if w < 0 else 'height'}"
                       f" {min(w, h):g} is negative")
    box, clipped = _clip_box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    keypoints = ()
    if self.pose is not None:
      keypoints, kp_clipped = self._keypoints(values[4:])
      clipped = clipped or kp_clipped
    obj = records.ObjectRecord(box=box, label=label_id, text=text,
                               keypoints=keypoints)
    return obj, key, clipped

  def _polygon(self, values, label_id, text, where):
    """(object, clipped) of a polygon line: its mask the polygon, its box
    the polygon's extent (Ultralytics' `segments2boxes`)."""
    points, clipped = _clip_points(values)
    xs, ys = points[0::2], points[1::2]
    self.stats.polygons += 1
    if len(points) == 8:
      self.stats.quads += 1
      if (max(xs) - min(xs) > _ROUNDING and max(ys) - min(ys) > _ROUNDING
          and (len({round(x, 6) for x in xs}) > 2
               or len({round(y, 6) for y in ys}) > 2)):
        self.stats.rotated += 1
        if not self.stats.first_quad:
          self.stats.first_quad = where
    blob = masks.pack_polygons([points], normalized=True)
    obj = records.ObjectRecord(
        box=(min(xs), min(ys), max(xs), max(ys)), label=label_id, text=text,
        segmentation=self.store.add(blob))
    return obj, clipped

  def _keypoints(self, values):
    k, dims = self.pose
    out, clipped = [], False
    for i in range(k):
      x, y = values[i * dims], values[i * dims + 1]
      if dims == 3:
        v = values[i * dims + 2]
        if v not in (0.0, 1.0, 2.0):
          raise ValueError(
              f"keypoint {i} visibility is {v:g}: 0, 1 or 2")
        v = int(v)
      else:
        # Ultralytics' mask for x y keypoints: present unless a coordinate
        # is negative. Present is stored as visible (2): the file does not
        # say occluded.
        v = 0 if x < 0 or y < 0 else 2
      if v:
        (x, y), c = _clip_points([x, y])
        clipped = clipped or c
      out.append(records.Keypoint(x=x, y=y, v=v))
    return tuple(out), clipped

  # -- what is checked at the end ---------------------------------------------

  def _orphans(self) -> None:
    """Label files with no image: warned, naming each."""
    candidates = set(self.txt)
    for top in sorted(self.label_roots):
      folder = os.path.join(self.root, top)
      if os.path.isdir(folder):
        for rel in common.walk_files(folder, self.root, self.problems, None):
          if rel.lower().endswith(".txt"):
            candidates.add(rel.replace(os.sep, "/"))
    for top in sorted(self.list_label_dirs - self.label_roots):
      folder = os.path.join(self.root, top)
      try:
        names = [e.name for e in os.scandir(folder)
                 if e.name.lower().endswith(".txt") and e.is_file()
                 and not common.is_hidden(e.name)]
      except OSError:
        continue
      candidates.update(f"{top}/{n}" if top else n for n in names)
    not_labels = {os.path.relpath(p, self.root).replace(os.sep, "/")
                  for p in self.not_labels}
    for rel in sorted(candidates - self.used - not_labels):
      name = rel.rpartition("/")[2].lower()
      if name.startswith("readme") or name in CLASS_FILES or (
          name == "labels.txt" and "/" not in rel):
        continue
      self.problems.append(records.Problem(
          file=self.prefix + rel, kind="warning", counts_as_input=False,
          reason="label file with no image among the images read (its image"
          " is missing, or in no split): not used"))

  def _check_not_obb(self) -> None:
    """Oriented boxes (YOLO-OBB: `class x1 y1 x2 y2 x3 y3 x4 y4`) are the
    lines of a 4-point polygon. The dataset is refused as OBB when its YAML
    says `task: obb` (checked first), or when every polygon line has 4 points
    and at least one of them is not an axis-aligned rectangle, unless the
    YAML says `task: segment`. (A rectangle reads the same either way.)"""
    s = self.stats
    if (s.polygons and s.quads == s.polygons and s.rotated
        and self.d.task.lower() != "segment"):
      raise records.InputError(
          f"{s.first_quad}: every polygon of the dataset ({s.polygons}) has 4"
          " points, and some are rotated: this looks like YOLO-OBB (oriented"
          " boxes, `class x1 y1 x2 y2 x3 y3 x4 y4`), which is not read (boxes"
          " are stored axis-aligned). If these are 4-point polygons"
          " (segmentation), say `task: segment` in the dataset YAML.")


def _read(path: str) -> bytes | None:
  """The bytes of a label file, None when there is none: one open and one
  read (`os.read`, without the buffered file object) for a small file."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except FileNotFoundError:
    return None
  try:
    data = os.read(fd, 1 << 16)
    if len(data) == 1 << 16:
      chunks = [data]
      while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
      data = b"".join(chunks)
  finally:
    os.close(fd)
  return data


def _text(token: bytes) -> str:
  return token.decode("utf-8", "replace")


def _is_float(token: bytes) -> bool:
  try:
    float(token)
  except ValueError:
    return False
  return True


def _clip(v: float) -> tuple[float, int]:
  """(v in [0, 1], 0 unchanged / 1 clipped); ValueError beyond 1%."""
  if 0.0 <= v <= 1.0:
    return v, 0
  if -_ROUNDING <= v <= 1.0 + _ROUNDING:
    return min(max(v, 0.0), 1.0), 0
  if -TOLERANCE <= v <= 1.0 + TOLERANCE:
    return min(max(v, 0.0), 1.0), 1
  raise ValueError(
      f"coordinate {v:.6g} is outside the image by more than 1% of it")


def _clip_box(xmin, ymin, xmax, ymax):
  if (0.0 <= xmin and 0.0 <= ymin and xmax <= 1.0 and ymax <= 1.0):
    return (xmin, ymin, xmax, ymax), False
  out, changed = [], 0
  for v in (xmin, ymin, xmax, ymax):
    v, c = _clip(v)
    out.append(v)
    changed |= c
  return tuple(out), bool(changed)


def _clip_points(values):
  if min(values) >= 0.0 and max(values) <= 1.0:
    return values, False
  out, changed = [], 0
  for v in values:
    v, c = _clip(v)
    out.append(v)
    changed |= c
  return out, bool(changed)
