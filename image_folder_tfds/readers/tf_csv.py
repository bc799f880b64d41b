"""The TF Object Detection CSV (seed 003): one row per box, in pixels.

    filename,width,height,class,xmin,ymin,xmax,ymax
    raccoon-1.jpg,650,417,raccoon,81,88,522,408

Columns are found by their header name, in any order; `width` and `height`
are optional (only checked against the image). Rows of one `filename` make
one image, wherever they are in the file. A row whose class and corners are
all empty is an image without objects. Other columns are kept per object in
`extra` as JSON. The file is read row by row.
"""

from __future__ import annotations

import collections
import csv
import json
import os

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "csv"
REQUIRED = ("filename", "class", "xmin", "ymin", "xmax", "ymax")
_KNOWN = set(REQUIRED) | {"width", "height"}
_COORDS = ("xmin", "ymin", "xmax", "ymax")
# Roboflow's "Tensorflow Object Detection CSV" export: one per split folder,
# the images beside it.
ROBOFLOW_FILE = "_annotations.csv"


def find_files(root: str, options: common.ReadOptions) -> list[str]:
  """`options.annotations`, else the `*.csv` files at the top of `root`, in
  `root/annotations/` or in `root/data/`, and Roboflow's export:
  `<split>/_annotations.csv` in the split folders (`train/`, `valid/`,
  `test/`)."""
  if options.annotations:
    return [annotated.annotation_path(root, options.annotations)]
  out = []
  for folder in (root, os.path.join(root, "annotations"),
                 os.path.join(root, "data")):
    if os.path.isdir(folder):
      out.extend(os.path.join(folder, n) for n in common.names(folder)
                 if n.lower().endswith(".csv") and not common.is_hidden(n)
                 and os.path.isfile(os.path.join(folder, n)))
  try:
    names = common.names(root)
  except OSError:
    return out
  for name in names:
    path = os.path.join(root, name, ROBOFLOW_FILE)
    if splits_lib.canonical_split(name) and os.path.isfile(path):
      out.append(path)
  return out


def _split_of(path: str) -> str | None:
  """From the file name (`train_labels.csv`), else, for Roboflow's
  `valid/_annotations.csv`, from its split-named folder."""
  if os.path.basename(path) == ROBOFLOW_FILE:
    return splits_lib.canonical_split(os.path.basename(os.path.dirname(path)))
  return annotated.split_of_file(path)


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: a `.csv` whose header names the TF Object Detection columns.

  A `.csv` given as the `annotations` option without that header is claimed
  as likely, so that, unless another reader knows its header, the error
  names the columns it lacks.
  """
  files = [p for p in find_files(root, options) if p.lower().endswith(".csv")]
  with_header = [p for p in files if has_header(p)]
  if with_header:
    return common.Claim(NAME, common.CERTAIN, tuple(with_header))
  if options.annotations and files:
    return common.Claim(NAME, common.LIKELY, tuple(files))
  return None


def has_header(path: str) -> bool:
  """Whether the first line of `path` names the TF Object Detection columns."""
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      header = next(csv.reader(f), [])
  except (OSError, UnicodeDecodeError, csv.Error):
    return False
  return set(REQUIRED) <= {h.strip() for h in header}


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  files = find_files(root, options)
  if not files:
    raise records.InputError(f"{root}: no CSV annotation file found")
  classes = annotated.classes_for(root, options)
  problems: list[records.Problem] = []
  drafts = []
  for path in files:
    for rec in _read_file(path, root, options, problems):
      annotated.observe_labels(classes, rec)
      drafts.append(rec)
  classes.finish()
  recs = annotated.resolve_labels(drafts, classes, problems)
  return common.ScanResult(
      layout="csv: " + ", ".join(os.path.relpath(f, root) for f in files),
      class_names=classes.names, records=recs, problems=problems)


def _cell(row, name):
  value = row.get(name)
  return value.strip() if isinstance(value, str) else ""


def _number(row, name) -> float:
  return annotated.number_text(_cell(row, name), name)


def _rows(reader: csv.DictReader, path: str):
  """The rows of `reader`; a row the csv module refuses (a cell over its
  131,072-character limit, a bad quote) stops the build at that line."""
  try:
    yield from reader
  except csv.Error as e:
    raise records.InputError(
        f"{path}: not valid CSV after line {reader.line_num}: {e}") from None


def _read_file(path, root, options, problems):
  file_split = _split_of(path)
  bases = [os.path.dirname(path), root, os.path.join(root, "images")]
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.DictReader(f)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
      raise records.InputError(
          f"{path}: CSV header {header} lacks column(s) {missing}; expected"
          " filename,width,height,class,xmin,ymin,xmax,ymax")
    reader.fieldnames = header
    others = [h for h in header if h not in _KNOWN]
    # filename as written -> (abs path, rel, split) or None when refused.
    images: dict[str, tuple | None] = {}
    objects: dict[str, list] = collections.defaultdict(list)
    extras: dict[str, dict] = collections.defaultdict(dict)
    sizes: dict[str, tuple[int, int] | None] = {}
    order: list[str] = []
    for row in _rows(reader, path):
      line = reader.line_num
      item = f"line {line}"
      name = _cell(row, "filename")
      if images.get(name, ()) is None:
        problems.append(annotated.annotation_problem(
            path, f"row of image {name!r}, which was refused (see above): not"
            " used", split=file_split or "", item=item))
        continue
      if name not in images:
        try:
          abs_path, rel = annotated.resolve_image(name, bases, root)
          images[name] = (abs_path, rel,
                          annotated.assign_split(file_split, rel, options))
          order.append(name)
        except annotated.PathError as e:
          images[name] = None
          problems.append(annotated.input_problem(
              path, str(e), split=file_split or "", item=item))
      image = images[name]
      if image is None:
        continue
      rel, split = image[1], image[2]
      if None in row:  # More cells than header columns.
        problems.append(annotated.annotation_problem(
            path, f"row has {len(row[None])} more cell(s) than the header:"
            " object not written", split=split, item=f"{rel}: {item}"))
        continue
      if "width" in header and "height" in header and name not in sizes:
        try:  # Only compared with the image: a bad value is a warning.
          sizes[name] = (int(_number(row, "width")),
                         int(_number(row, "height")))
        except annotated.FieldError as e:
          sizes[name] = None
          problems.append(records.Problem(
              file=path, item=f"{rel}: {item}", split=split, kind="warning",
              counts_as_input=False,
              reason=f"{e}: the image size is not checked"))
      try:
        if not _cell(row, "class") and not any(_cell(row, c) for c in _COORDS):
          continue  # An image without objects.
        box = tuple(_number(row, c) for c in _COORDS)
        if not _cell(row, "class"):
          raise annotated.FieldError("class is empty")
      except annotated.FieldError as e:
        problems.append(annotated.annotation_problem(
            path, f"{e}: object not written", split=split,
            item=f"{rel}: {item}"))
        continue
      obj_id = str(line)
      objects[name].append(records.ObjectRecord(
          box=box, text=_cell(row, "class"), id=obj_id))
      rest = {h: row[h] for h in others if row.get(h)}
      if rest:
        extras[name][obj_id] = rest
  for name in order:
    abs_path, rel, split = images[name]
    extra = ({"objects": extras[name]} if name in extras else None)
    yield records.ImageRecord(
        key=rel, path=abs_path, file_name=rel, split=split, source=path,
        id=rel, objects=tuple(objects.get(name, ())), coords="pixel",
        size=sizes.get(name),
        extra=json.dumps(extra, sort_keys=True, ensure_ascii=False)
        if extra else "")
  if os.path.basename(path) == ROBOFLOW_FILE:
    listed = {os.path.normpath(images[name][0]) for name in order}
    yield from _unlisted_images(path, listed, root, file_split, options,
                                problems)


def _unlisted_images(path, listed, root, file_split, options, problems):
  """The images beside Roboflow's `_annotations.csv` that no row names:
  images without objects (the CSV has a row per box, so an image without
  boxes has none), kept as Roboflow's COCO export keeps them."""
  folder = os.path.dirname(path)
  without = []
  for name in common.names(folder):
    if (common.is_hidden(name) or not common.is_image_name(name)
        or os.path.normpath(os.path.join(folder, name)) in listed):
      continue
    try:  # The same checks as a listed name (a link out of root, ...).
      image, rel = annotated.resolve_image(name, [folder], root)
    except annotated.PathError as e:
      problems.append(annotated.input_problem(
          path, str(e), split=file_split or "", item=name))
      continue
    without.append(rel)
    yield records.ImageRecord(
        key=rel, path=image, file_name=rel,
        split=annotated.assign_split(file_split, rel, options), source=path,
        id=rel, coords="pixel")
  if without:
    problems.append(records.Problem(
        file=path, kind="warning", counts_as_input=False,
        split=file_split or "",
        reason=f"{len(without)} image(s) beside it are in no row: kept"
        f" without objects, first: {without[0]}"))
