"""Hugging Face `imagefolder` metadata: `metadata.jsonl`, `.csv`, `.parquet`.

    DIR/train/metadata.jsonl   {"file_name": "0001.png", "text": "a cat",
    DIR/train/0001.png          "objects": {"bbox": [[302.0, 109.0, 73.0, 52.0]],
    DIR/test/metadata.csv                   "category": [0]}}

As `datasets.load_dataset("imagefolder", data_dir=DIR)` reads it
(`packaged_modules/folder_based_builder`): every metadata file under DIR
describes images by `file_name`, relative to the file's own folder; a name
that leaves that folder is refused, as HF refuses it. The split of an image
is the first folder of its path named like a split (`train/`, `val/`,
`test/`, ...), else a stable hash of its path.

One analysis pass over every file fixes the schema before any record is
made, as HF's `_split_generators` does: each column's type follows its
values (ints, floats, ints and floats mixed -> float, bools, strings, lists
of them: `common.COLUMN_TYPES`). A value of another type than its column's
is not stored (the column's empty value is, and the row is reported), and a
null (which TFDS cannot store) becomes the empty value, counted per column.
`objects` (HF's object-detection layout: `bbox` [x, y, w, h] in pixels and
`category`/`categories`) becomes boxes and labels; a `label` column is the
image class; class names come from the dataset card's `class_label` names
(`README.md`), else from the data. Columns named like one of our own
features are renamed `metadata_<name>`. The second pass makes the records,
kept packed (`records.PackedRecords`). Files are read in bounded pieces:
JSON Lines line by line, CSV row by row, Parquet one batch of a row group at
a time.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import math
import os
import posixpath
import re

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "metadata"
FILENAMES = ("metadata.jsonl", "metadata.csv", "metadata.parquet")
IMAGE_COLUMN = "file_name"
OBJECTS_COLUMN = "objects"
LABEL_COLUMN = "label"
# The dataset's own top-level features (`features.RESERVED_KEYS`; readers do
# not import the write layer, a test checks that both agree). A metadata
# column of one of these names is renamed `RENAME_PREFIX + name`, except
# `label` and `objects` when they hold what ours hold.
OWN_FEATURES = frozenset((
    "image", "image_path", "file_name", "id", "height", "width", "label",
    "label_text", "label_conf", "extra", "objects", "segmentation_mask",
    "labels"))
RENAME_PREFIX = "metadata_"
# What pandas reads as a missing value in a CSV cell (`na_values`'s
# defaults), so a CSV reads as HF reads it.
_CSV_NULLS = frozenset((
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
    "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
    "nan", "null"))
_CSV_TRUE = frozenset(("True", "TRUE", "true"))
_CSV_FALSE = frozenset(("False", "FALSE", "false"))
_INT = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(
    r"[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity)\Z",
    re.IGNORECASE)
_INT64 = 2**63
# Rows per Parquet batch: `iter_batches` reads one row group at a time and
# hands it out in batches of this size.
_PARQUET_BATCH = 2048
# A column's value where the row has none (null) or one of another type.
# -1 for int, as every "not given" number of ours (`features.MISSING`).
EMPTY = {"int": -1, "float": math.nan, "bool": False, "text": "",
         "int_list": [], "float_list": [], "bool_list": [], "text_list": []}
# Keys of an `objects` entry that become object fields.
_CATEGORY_KEYS = ("category", "categories")
_OBJECT_FIELDS = {"bbox", *_CATEGORY_KEYS, "area", "id", "iscrowd", "is_crowd"}


# --- Finding the files ----------------------------------------------------------


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: a metadata file with a `file_name` column (or HF's
  `*_file_name`) at the top of `root` or in a split folder; likely: such a
  file by name without one (empty, or another header), so that the build
  says what it lacks rather than taking the folder for class folders."""
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    if os.path.basename(path) not in FILENAMES:
      return None
    files = [path]
  else:
    files = []
    try:
      tops = sorted(e.name for e in os.scandir(root)
                    if not common.is_hidden(e.name) and e.is_dir())
    except OSError:
      return None
    for folder in [root] + [os.path.join(root, d) for d in tops
                            if splits_lib.canonical_split(d)]:
      files.extend(p for p in (os.path.join(folder, n) for n in FILENAMES)
                   if os.path.isfile(p))
  if not files:
    return None
  certain = [p for p in files if image_column(header(p) or []) is not None]
  if certain:
    return common.Claim(NAME, common.CERTAIN, tuple(certain))
  return common.Claim(NAME, common.LIKELY, tuple(files))


def header(path: str) -> list[str] | None:
  """The columns of a metadata file from its start (JSON Lines: the keys of
  the first row; CSV: the header; Parquet: the schema); None when unreadable
  or empty."""
  try:
    if path.endswith(".parquet"):
      import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
      return list(pq.ParquetFile(path).schema_arrow.names)
    if path.endswith(".csv"):
      with open(path, newline="", encoding="utf-8-sig") as f:
        return next(csv.reader(f), None)
    with open(path, "rb") as f:
      for raw in f:
        if raw.strip():
          row = json.loads(raw.decode("utf-8-sig"))
          return list(row) if isinstance(row, dict) else None
  except (OSError, ValueError, csv.Error, RecursionError):
    return None  # pyarrow's ArrowInvalid (not a Parquet file) is a ValueError.
  return None


def image_column(columns) -> str | None:
  """`file_name`, else the one `<name>_file_name` column (HF's rule: any
  `*_file_name` string column is an image); None without one."""
  if IMAGE_COLUMN in columns:
    return IMAGE_COLUMN
  others = [c for c in columns if isinstance(c, str)
            and c.endswith("_" + IMAGE_COLUMN)]
  return others[0] if len(others) == 1 else None


def _walk(root, options, problems):
  """(metadata files, other files relative to root) below `root` (or the
  folder of the `annotations` file)."""
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    top = os.path.dirname(path)
    rels = common.walk_files(top, root, problems, split=None)
    metas = [path]
  else:
    rels = common.walk_files(root, root, problems, split=None)
    metas = [os.path.join(root, r) for r in rels
             if os.path.basename(r) in FILENAMES]
  others = [r.replace(os.sep, "/") for r in rels
            if os.path.basename(r) not in FILENAMES]
  return metas, others


def split_of(rel: str, options: common.ReadOptions) -> str:
  """The first folder of `rel` named like a split, else the hash split."""
  for part in rel.split("/")[:-1]:
    split = splits_lib.canonical_split(part)
    if split:
      return split
  return splits_lib.assign_split(rel, options.split_fractions)


# --- Reading rows ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
  item: str  # "line 3" (JSON Lines, CSV) or "row 0" (Parquet).
  values: dict
  csv: bool  # Values are CSV cells (text as written).


def rows(path: str, problems: list[records.Problem] | None):
  """The rows of one metadata file, streamed; a line that cannot be read
  is reported in `problems` (None: not reported again) and skipped."""
  if path.endswith(".parquet"):
    yield from _parquet_rows(path)
  elif path.endswith(".csv"):
    yield from _csv_rows(path)
  else:
    yield from _jsonl_rows(path, problems)


def _jsonl_rows(path, problems):
  with open(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      item = f"line {number}"
      try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        if not line.strip():
          continue
        row = json.loads(line)
        if not isinstance(row, dict):
          raise ValueError(f"a row is a JSON object, got {line.strip()[:80]!r}")
      except RecursionError:
        reason = "JSON nested too deeply to read"
      except (UnicodeDecodeError, ValueError) as e:
        reason = (f"not UTF-8 text: {e}" if isinstance(e, UnicodeDecodeError)
                  else f"not a valid JSON row: {e}")
      else:
        yield Row(item, row, False)
        continue
      if problems is not None:
        problems.append(annotated.input_problem(
            path, f"{reason}: row not read", item=item))


def _csv_rows(path):
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    try:
      names = next(reader, None)
      if names is None:
        return
      for cells in reader:
        if not any(cells):
          continue  # A blank line: pandas skips it too.
        if len(cells) > len(names):
          raise records.InputError(
              f"{path}:{reader.line_num}: {len(cells)} cells, but the header"
              f" names {len(names)} columns")
        yield Row(f"line {reader.line_num}",
                  dict(zip(names, cells + [""] * (len(names) - len(cells)))),
                  True)
    except csv.Error as e:
      raise records.InputError(
          f"{path}: not valid CSV after line {reader.line_num}: {e}") from None
    except UnicodeDecodeError as e:
      raise records.InputError(
          f"{path}: not UTF-8 text after line {reader.line_num}: {e}") from None


def _parquet_rows(path):
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  try:
    file = pq.ParquetFile(path)
  except ValueError as e:  # pyarrow's ArrowInvalid.
    raise records.InputError(f"{path}: not a Parquet file: {e}") from None
  index = 0
  try:
    for batch in file.iter_batches(batch_size=_PARQUET_BATCH):
      for row in batch.to_pylist():
        yield Row(f"row {index}", row, False)
        index += 1
  except ValueError as e:  # A damaged row group.
    raise records.InputError(
        f"{path}: cannot read the Parquet rows after row {index}: {e}"
    ) from None


# --- Types ----------------------------------------------------------------------


def csv_value(cell: str):
  """A CSV cell as pandas reads it: None, an int, a float, a bool or text."""
  text = cell.strip()
  if text in _CSV_NULLS:
    return None
  if _INT.match(text):
    value = int(text)
    return value if -_INT64 <= value < _INT64 else cell
  if _FLOAT.match(text):
    return float(text)
  if text in _CSV_TRUE:
    return True
  if text in _CSV_FALSE:
    return False
  return cell


def kind(value) -> str | None:
  """The type of one value (`common.COLUMN_TYPES`), "empty_list" (fits any
  list type), "nested" (a dict, a list of lists or of mixed types), or None
  for null."""
  if value is None:
    return None
  if isinstance(value, bool):
    return "bool"
  if isinstance(value, int):
    return "int" if -_INT64 <= value < _INT64 else "float"
  if isinstance(value, float):
    return "float"
  if isinstance(value, str):
    return "text"
  if isinstance(value, list):
    kinds = {kind(v) for v in value}
    if not kinds:
      return "empty_list"
    if kinds <= {"int", "float"}:
      return "float_list" if "float" in kinds else "int_list"
    if len(kinds) == 1 and next(iter(kinds)) in ("bool", "text"):
      return next(iter(kinds)) + "_list"
  return "nested"


# Kinds that one column type holds.
_FITS = {"int": {"int"}, "float": {"int", "float"}, "bool": {"bool"},
         "text": {"text"}, "int_list": {"int_list", "empty_list"},
         "float_list": {"int_list", "float_list", "empty_list"},
         "bool_list": {"bool_list", "empty_list"},
         "text_list": {"text_list", "empty_list"}}
# Kinds that vote together for a column's type.
_GROUP = {"int": "number", "float": "number", "bool": "bool", "text": "text",
          "int_list": "number_list", "float_list": "number_list",
          "bool_list": "bool_list", "text_list": "text_list",
          "empty_list": "empty_list", "nested": "nested"}


def convert(value, column_type: str):
  """`value` as a value of `column_type`; raises `FieldError` when it is of
  another type."""
  k = kind(value)
  if k not in _FITS[column_type]:
    raise annotated.FieldError(
        f"{_shown(value)} is {_KIND_NAMES.get(k, k)}, the column holds"
        f" {_KIND_NAMES[column_type]}")
  if column_type == "float":
    return float(value)
  if column_type == "float_list":
    return [float(v) for v in value]
  return value


_KIND_NAMES = {
    "int": "an integer", "float": "a number", "bool": "a boolean",
    "text": "text", "int_list": "a list of integers",
    "float_list": "a list of numbers", "bool_list": "a list of booleans",
    "text_list": "a list of strings", "empty_list": "an empty list",
    "nested": "an object or nested list"}


def _shown(value) -> str:
  text = json.dumps(value, ensure_ascii=False, default=str)
  return text if len(text) <= 60 else text[:57] + "..."


@dataclasses.dataclass
class _Column:
  """What the analysis pass saw of one column."""

  name: str
  votes: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)  # group -> rows.
  kinds: set = dataclasses.field(default_factory=set)
  csv_groups: set = dataclasses.field(default_factory=set)
  first: dict = dataclasses.field(default_factory=dict)  # group -> where.

  def add(self, k: str | None, csv_cell: bool, where: str) -> None:
    if k is None:
      return
    group = _GROUP[k]
    self.votes[group] += 1
    self.kinds.add(k)
    self.first.setdefault(group, where)
    if csv_cell:
      self.csv_groups.add(group)

  def type(self) -> str | None:
    """The column's type, "nested" (kept in `extra`), or None (all null).

    The group most rows agree on (the first seen on a tie); CSV cells of
    several groups make a text column, as pandas reads them (lossless: the
    cells as written).
    """
    if len(self.csv_groups) > 1:
      return "text"
    votes = {g: n for g, n in self.votes.items() if g != "empty_list"}
    if not votes:
      return "text_list" if self.votes else None
    best = max(votes.values())
    group = next(g for g in self.votes if votes.get(g) == best)
    if group == "nested":
      return "nested"
    if group == "number":
      return "float" if "float" in self.kinds else "int"
    if group == "number_list":
      return "float_list" if "float_list" in self.kinds else "int_list"
    return group


# --- The dataset card -----------------------------------------------------------


def card_class_names(root: str, problems: list[records.Problem]
                     ) -> dict[str, list[str]]:
  """{"label": names, "objects": names}: the `class_label` names that the
  YAML front matter of `root/README.md` (the dataset card's `dataset_info:
  features:`) gives the `label` feature and the category of `objects`."""
  path = os.path.join(root, "README.md")
  if not os.path.isfile(path):
    return {}
  import yaml  # pylint: disable=g-import-not-at-top
  try:
    with open(path, encoding="utf-8-sig") as f:
      text = f.read()
  except (OSError, UnicodeDecodeError) as e:
    problems.append(_warning(path, f"cannot read the dataset card: {e}"))
    return {}
  match = re.match(r"---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", text,
                   re.DOTALL)
  if not match:
    return {}
  try:
    card = yaml.safe_load(match.group(1))
  except yaml.YAMLError as e:
    problems.append(_warning(
        path, f"its YAML front matter is not valid YAML ({e}): class names"
        " are not taken from it"))
    return {}
  info = card.get("dataset_info") if isinstance(card, dict) else None
  if isinstance(info, list):  # Several configurations: the default one.
    info = next((i for i in info if isinstance(i, dict)
                 and i.get("config_name", "default") == "default"),
                info[0] if info else None)
  feats = info.get("features") if isinstance(info, dict) else None
  if not isinstance(feats, list):
    return {}
  out = {}
  for feat in feats:
    if not isinstance(feat, dict):
      continue
    if feat.get("name") == LABEL_COLUMN:
      names = _class_label(feat, path)
    elif feat.get("name") == OBJECTS_COLUMN:
      names = next((_class_label(f, path) for f in _subfields(feat)
                    if f.get("name") in _CATEGORY_KEYS), None)
    else:
      continue
    if names is not None:
      out[feat["name"]] = names
  return out


def _subfields(feature):
  """Every dict with a `name` below `feature` (HF's `sequence:`, `list:`,
  `struct:` nestings)."""
  for key in ("sequence", "list", "large_list", "struct", "dtype"):
    sub = feature.get(key)
    subs = sub if isinstance(sub, list) else [sub]
    for s in subs:
      if isinstance(s, dict):
        if "name" in s:
          yield s
        yield from _subfields(s)


def _class_label(feature, path) -> list[str] | None:
  """The names of the first `class_label` below `feature`."""
  stack = [feature]
  while stack:
    node = stack.pop()
    if isinstance(node, dict):
      if isinstance(node.get("class_label"), dict):
        names = node["class_label"].get("names")
        if isinstance(names, dict):  # {'0': cat, '1': dog}, as HF writes it.
          try:
            ids = sorted(int(k) for k in names)
          except (TypeError, ValueError):
            ids = None
          if ids != list(range(len(names))):
            raise records.InputError(
                f"{path}: class_label names of {feature.get('name')!r} are"
                f" not numbered 0..{len(names) - 1}: {sorted(names)}")
          names = [names[k] for k in sorted(names, key=int)]
        if not isinstance(names, list) or not all(
            isinstance(n, (str, int)) for n in names):
          raise records.InputError(
              f"{path}: class_label names of {feature.get('name')!r} must be"
              f" a list or a {{id: name}} mapping, got {names!r}")
        return [str(n) for n in names]
      stack.extend(reversed(list(node.values())))
    elif isinstance(node, list):
      stack.extend(reversed(node))
  return None


def _warning(file: str, reason: str, split: str = "") -> records.Problem:
  return records.Problem(file=file, reason=reason, kind="warning",
                         split=split, counts_as_input=False)


# --- Objects --------------------------------------------------------------------


def objects_of(value) -> list[dict]:
  """The objects of an `objects` value, one dict each: HF's layout (a dict
  of lists: {"bbox": [[...], ...], "category": [...]}) or a list of dicts.
  Raises `FieldError` when the value is neither, or its lists differ in
  length."""
  if isinstance(value, list):
    for i, obj in enumerate(value):
      annotated.mapping(obj, f"objects[{i}]")
    return value
  value = annotated.mapping(value, "objects")
  lengths = {}
  for key, values in value.items():
    if not isinstance(values, list):
      raise annotated.FieldError(
          f"objects.{key} must be a list (one value per object), got"
          f" {_shown(values)}")
    lengths[key] = len(values)
  if len(set(lengths.values())) > 1:
    raise annotated.FieldError(
        "objects lists differ in length: " + ", ".join(
            f"{k} has {n}" for k, n in lengths.items()))
  n = next(iter(lengths.values()), 0)
  return [{k: v[i] for k, v in value.items()} for i in range(n)]


def category(obj: dict):
  """(index or None, name or None) of one object's category."""
  given = [k for k in _CATEGORY_KEYS if k in obj]
  if len(given) > 1:
    raise annotated.FieldError("both category and categories are given")
  if not given or obj[given[0]] is None:
    raise annotated.FieldError("no category")
  value = obj[given[0]]
  if isinstance(value, str):
    return None, value
  return annotated.label_id(value, given[0]), None


def object_record(obj: dict, index: int, classes: annotated.Classes
                  ) -> records.ObjectRecord:
  """One object, pixel coordinates (COCO's [x, y, w, h] box)."""
  label, name = classes.resolve(*category(obj), field="category")
  box = None
  if obj.get("bbox") is not None:
    box = annotated.xywh_box(obj["bbox"], shown=_shown)
  area = annotated.number(obj.get("area"), "area", allow_none=True)
  if area is not None and area < 0:
    raise annotated.FieldError(f"area is {area}: negative")
  crowd_key = "is_crowd" if "is_crowd" in obj else "iscrowd"
  crowd = obj.get(crowd_key)
  if crowd is None:
    crowd = 0
  if crowd not in (0, 1) or isinstance(crowd, float):
    raise annotated.FieldError(f"{crowd_key} must be 0 or 1, got {crowd!r}")
  oid = obj.get("id")
  return records.ObjectRecord(
      box=box, label=label, text=name,
      area=-1.0 if area is None else area,
      id=str(index) if oid is None else annotated.identifier(oid, "id"),
      is_crowd=bool(crowd))


# --- The analysis pass ----------------------------------------------------------


@dataclasses.dataclass
class _Analysis:
  columns: dict[str, _Column] = dataclasses.field(default_factory=dict)
  # (index, name) pairs seen in `objects` categories; (value, value as
  # written) of `label`.
  object_classes: set = dataclasses.field(default_factory=set)
  label_values: set = dataclasses.field(default_factory=set)
  # The folder of each row's image, relative to its metadata file's folder,
  # when it is one folder deep (None otherwise).
  folders: set = dataclasses.field(default_factory=set)
  rows: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)  # Per file.


def _analyse(files, image_col, problems) -> _Analysis:
  """Pass 1: every column's votes, the classes seen, the image folders."""
  out = _Analysis()
  for path in files:
    for row in rows(path, problems):
      out.rows[path] += 1
      where = f"{path} [{row.item}]"
      for name, raw in row.values.items():
        column = out.columns.get(name)
        if column is None:
          column = out.columns[name] = _Column(name)
        value = csv_value(raw) if row.csv else raw
        if name == image_col:
          parts = (posixpath.normpath(value.replace("\\", "/")).split("/")
                   if isinstance(value, str) else [])
          out.folders.add(parts[0] if len(parts) == 2 else None)
          continue
        column.add(kind(value), row.csv, where)
        if name == OBJECTS_COLUMN and isinstance(value, (dict, list)):
          try:
            for obj in objects_of(value):
              out.object_classes.add(category(obj))
          except annotated.FieldError:
            pass  # Reported by the second pass, row by row.
        elif name == LABEL_COLUMN and kind(value) in ("int", "text"):
          out.label_values.add((value, raw))
      if image_col not in row.values:
        out.folders.add(None)
  return out


# --- The reader -----------------------------------------------------------------


@dataclasses.dataclass
class _Plan:
  """What each column becomes, fixed by the analysis before any record."""

  image: str
  stored: dict[str, tuple[str, str]]  # source name -> (feature name, type).
  nested: list[str]  # Columns kept in `extra`.
  objects: bool  # `objects` is read into objects.
  label: str | None  # `label` is the image class: "int" (ids) or "text".
  folder_labels: bool  # The folder of each image is its class.


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  problems: list[records.Problem] = []
  files, others = _walk(root, options, problems)
  if not files:
    raise records.InputError(
        f"{root}: no metadata file ({', '.join(FILENAMES)}) found")
  headers = {p: header(p) for p in files}
  image_col = next((c for h in headers.values() if h
                    for c in [image_column(h)] if c), None)
  if image_col is None and any(headers.values()):
    shown = next(p for p, h in headers.items() if h)
    raise records.InputError(
        f"{shown}: no {IMAGE_COLUMN} column (columns:"
        f" {headers[shown]}): each row names its image in {IMAGE_COLUMN},"
        " relative to the metadata file's folder")
  image_col = image_col or IMAGE_COLUMN
  card = card_class_names(root, problems)
  analysis = _analyse(files, image_col, problems)
  for path in files:
    if not analysis.rows[path]:
      problems.append(_warning(
          path, "metadata file has no rows: it describes no image"))
  plan = _plan(analysis, image_col, problems, root)
  classes = _classes(root, options, analysis, plan, card, problems)

  recs = records.PackedRecords()
  named: dict[str, str] = {}  # rel -> where it was named.
  nulls: dict[str, list] = {}  # column -> [count, first place].
  for path in files:
    _read_file(path, root, options, plan, classes, recs, named, nulls,
               problems)
  recs.extend(())  # Flushes the spill file.
  for name, (count, path, item) in nulls.items():
    column_type = plan.stored[name][1]
    problems.append(records.Problem(
        file=path, item=item, kind="warning", counts_as_input=False,
        reason=f"column {name!r}: {count} row(s) have no value (null), the"
        f" first here; TFDS cannot store a null: stored as"
        f" {_shown(EMPTY[column_type])}"))
  _unnamed(others, named, root, options, files, problems)
  columns = {feature: column_type for feature, column_type
             in plan.stored.values()}
  shown = ", ".join(os.path.relpath(f, root) for f in files[:3])
  more = f" and {len(files) - 3} more" if len(files) > 3 else ""
  return common.ScanResult(
      layout=f"metadata: {shown}{more}",
      class_names=list(classes.names), records=recs, problems=problems,
      columns=columns)


def _plan(analysis: _Analysis, image_col: str, problems, root) -> _Plan:
  stored, nested = {}, []
  objects, label = False, None
  taken = set(analysis.columns) | OWN_FEATURES
  for name, column in analysis.columns.items():
    if name == image_col:
      continue
    column_type = column.type()
    if name == OBJECTS_COLUMN and column_type == "nested":
      objects = True
      continue
    if name == LABEL_COLUMN and column_type in ("int", "text"):
      label = column_type
      continue
    if column_type is None:
      problems.append(_warning(
          root, f"column {name!r}: every value is null: not stored"))
      continue
    if column_type == "nested":
      nested.append(name)
      problems.append(_warning(
          root, f"column {name!r} holds objects or nested lists (first at"
          f" {column.first['nested']}), which are not a feature type: kept in"
          " each image's `extra` (JSON)"))
      continue
    feature = name
    if name in OWN_FEATURES or not name or "/" in name:
      feature = RENAME_PREFIX + (name.replace("/", "_") or "column")
      while feature in taken:
        feature += "_"
      taken.add(feature)
      why = ("is one of the dataset's own features" if name in OWN_FEATURES
             else "is not a feature name (empty, or with '/')")
      problems.append(_warning(
          root, f"column {name!r} {why}: stored as {feature!r}"))
    stored[name] = (feature, column_type)
  folder_labels = (not label and None not in analysis.folders
                   and len(analysis.folders) > 1)
  return _Plan(image=image_col, stored=stored, nested=nested,
               objects=objects, label=label, folder_labels=folder_labels)


def _classes(root, options, analysis, plan, card, problems
             ) -> annotated.Classes:
  """The class list: a labels file, else the dataset card's class_label
  names, else the classes seen (category ids are their own names)."""
  labels = common.read_labels_file(root, options.labels_file)
  if labels is not None:
    return annotated.Classes(fixed=labels.names, source=labels.path)
  readme = os.path.join(root, "README.md")
  given = {k: v for k, v in card.items()
           if (k == LABEL_COLUMN and plan.label)
           or (k == OBJECTS_COLUMN and plan.objects)}
  if len(given) > 1 and given[LABEL_COLUMN] != given[OBJECTS_COLUMN]:
    raise records.InputError(
        f"{readme}: the class_label names of label ({given[LABEL_COLUMN]})"
        f" and of objects ({given[OBJECTS_COLUMN]}) differ; the dataset has"
        " one class list")
  if given:
    return annotated.Classes(fixed=next(iter(given.values())),
                             source=f"{readme} class_label names")
  classes = annotated.Classes()
  seen = set()
  if plan.objects:
    seen |= analysis.object_classes
  for value, raw in analysis.label_values:
    given = label_given(value, raw, plan.label)
    if given:
      seen.add(given)
  if plan.folder_labels:
    seen |= {(None, f) for f in analysis.folders}
  for index, name in sorted(seen, key=repr):
    classes.observe(index, name)
  classes.finish()
  if any(index is not None for index, _ in seen):
    problems.append(_warning(
        root, "class ids are used as class names (\"0\", \"1\", ...): no"
        " class_label names in README.md (dataset_info: features) and no"
        " labels file"))
  return classes


def label_given(value, raw, label_type: str | None):
  """(index, None) or (None, name) of a `label` value (typed, and as
  written) in a column of `label_type`; None when it is of another type."""
  if label_type == "int" and kind(value) == "int":
    return value, None
  if label_type == "text" and isinstance(raw, str):
    return None, raw
  return None


def _refuse_escape(name: str) -> str:
  """`name` as a path below its metadata file's folder (posix); raises
  `PathError` for a name that leaves it, as HF refuses it."""
  if not isinstance(name, str) or not name.strip():
    raise annotated.PathError(
        f"{IMAGE_COLUMN} must be a non-empty string, got {_shown(name)}")
  rel = posixpath.normpath(name.replace("\\", "/"))
  if ("://" in name or posixpath.isabs(rel) or os.path.isabs(name)
      or rel == ".." or rel.startswith("../")):
    raise annotated.PathError(
        f"{IMAGE_COLUMN} {name!r} leads outside the metadata file's folder:"
        " refused")
  return rel


def _read_file(path, root, options, plan, classes, recs, named, nulls,
               problems):
  """Pass 2: the records of one metadata file."""
  folder = os.path.dirname(path)
  for row in rows(path, None):
    where = f"{path} [{row.item}]"
    values = row.values
    name = values.get(plan.image)
    try:
      rel_name = _refuse_escape(name)
      abs_path, rel = annotated.resolve_image(rel_name, [folder], root)
    except annotated.PathError as e:
      guess = posixpath.normpath(posixpath.join(
          os.path.relpath(folder, root).replace(os.sep, "/"), str(name)))
      problems.append(annotated.input_problem(
          path, str(e), item=row.item, split=split_of(guess, options)))
      continue
    split = split_of(rel, options)
    if rel in named:
      problems.append(annotated.input_problem(
          path, f"image {rel} is named again (first at {named[rel]}): this"
          " row is not used", split=split, item=row.item))
      continue
    named[rel] = where
    item = f"{row.item}: {rel}"

    def dropped(reason, item=item, split=split):
      problems.append(annotated.annotation_problem(
          path, reason, split=split, item=item))

    columns = {}
    for column, (feature, column_type) in plan.stored.items():
      raw = values.get(column)
      if row.csv:
        value = None if raw is None or raw.strip() in _CSV_NULLS else (
            raw if column_type == "text" else csv_value(raw))
      else:
        value = raw
      if value is None:
        nulls.setdefault(column, [0, path, row.item])[0] += 1
        columns[feature] = EMPTY[column_type]
        continue
      try:
        columns[feature] = convert(value, column_type)
      except annotated.FieldError as e:
        dropped(f"column {column!r}: {e}: not stored,"
                f" {_shown(EMPTY[column_type])} written instead")
        columns[feature] = EMPTY[column_type]
    extra = {c: values[c] for c in plan.nested if values.get(c) is not None}
    objects = ()
    if plan.objects and values.get(OBJECTS_COLUMN) is not None:
      objects = _objects(values[OBJECTS_COLUMN], classes, extra, dropped)
    label, label_text = -1, ""
    given = None
    if plan.label:
      raw = values.get(LABEL_COLUMN)
      value = csv_value(raw) if row.csv and raw is not None else raw
      if value is not None and not (row.csv and raw.strip() in _CSV_NULLS):
        given = label_given(value, raw, plan.label)
        if given is None:
          dropped(f"label {_shown(raw)} is {_KIND_NAMES.get(kind(value))},"
                  f" the column holds {_KIND_NAMES[plan.label]} (class"
                  f" {'ids' if plan.label == 'int' else 'names'}): image kept"
                  " without a class")
    elif plan.folder_labels:
      given = (None, rel_name.split("/")[0])
    if given is not None:
      try:
        index = given[0]
        if index is not None:
          index = annotated.label_id(index, "label")
        label, label_text = classes.resolve(index, given[1], "label")
      except annotated.FieldError as e:
        dropped(f"{e}: image kept without a class")
    recs.append(records.ImageRecord(
        key=rel, path=abs_path, file_name=rel, split=split,
        source=f"{path}:{row.item.split()[-1]}", id=rel, label=label,
        label_text=label_text, objects=objects, coords="pixel",
        extra=json.dumps(extra, sort_keys=True, ensure_ascii=False,
                         default=str) if extra else "",
        columns=json.dumps(columns, ensure_ascii=False)))


def _objects(value, classes, extra, dropped) -> tuple:
  """The objects of one row; a bad one is dropped (reported), a value that
  is no list of objects drops them all."""
  try:
    entries = objects_of(value)
  except annotated.FieldError as e:
    dropped(f"{e}: no object of this image is written")
    return ()
  out = []
  for i, obj in enumerate(entries):
    try:
      out.append(object_record(obj, i, classes))
    except annotated.FieldError as e:
      dropped(f"object #{i}: {e}: object not written")
      continue
    rest = {k: v for k, v in obj.items() if k not in _OBJECT_FIELDS}
    if rest:
      extra.setdefault(OBJECTS_COLUMN, {})[out[-1].id] = rest
  return tuple(out)


def _unnamed(others, named, root, options, files, problems) -> None:
  """Files below the data folder that no row names: an image is rejected
  (an input not written), another file noted."""
  metas = ", ".join(os.path.relpath(f, root) for f in files[:3])
  for rel in others:
    if rel in named or (rel in common.KNOWN_METADATA_FILES):
      continue
    path = os.path.join(root, *rel.split("/"))
    if common.is_image_name(rel):
      problems.append(annotated.input_problem(
          path, f"image has no row in a metadata file ({metas}): not used",
          split=split_of(rel, options)))
    else:
      problems.append(_warning(
          path, "neither an image nor a metadata file, and no row names it:"
          " not used"))
