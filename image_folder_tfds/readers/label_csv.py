"""Label CSVs: one row per image, naming its class or its classes.

Three forms, told apart by the header (names compared without case, spaces
around them ignored):

    filename,label            single-label: one class per image (Kaggle's
    id,label                  `train.csv`, `train_labels.csv`, `labels.csv`)
    image_id,category
    image,labels              multi-label: class names in one cell,
    a.jpg,cat dog             separated by `|`, `;`, `,` or spaces
    filename, cat, dog        multi-label, one-hot (Roboflow's
    a.jpg, 1, 0               `train/_classes.csv`): a 0/1 column per class

A single-label file gives the image class (`ImageRecord.label`: the `label`
feature, `as_supervised` gives (image, label)); both multi-label forms give
the image-level `labels` (`Sequence(ClassLabel)`, as TFDS's `voc` stores
its image labels). The form of the file decides, not its rows: a one-hot
file whose rows have one 1 each is still multi-label, so adding a second
class to an image later never changes the dataset's features.

Where the images are: a name is looked up next to the CSV, in `DIR/images/`
and in `DIR` (`annotated.resolve_image`). A bare name (no folder) found in
none of them is looked for anywhere in `DIR` by its file name, or, without an
image extension (Kaggle's `id` columns), by its name before the extension:
Kaggle keeps `train.csv` beside `train_images/` or `train/`. A name two
images answer to is refused, unless one of them is in the folder of the
CSV's split (`train_images/` for `train.csv`).

Splits: the file's name (`train.csv`), else its folder (`valid/_classes.csv`),
else fastai's `is_valid` column, else the stable hash of the image's path.
Classes: a labels file; else, one-hot, the columns in header order; else the
names seen, sorted (a class of digits is an index, as in seed 001). Every bad
row is reported with its line; images no row names, in one warning.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import os

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common
from image_folder_tfds.readers import tf_csv

NAME = "label_csv"

# The image column, in order of preference when several are there.
FILE_COLUMNS = (
    "filename", "file_name", "fname", "file", "filepath", "file_path",
    "path", "image", "image_name", "image_path", "image_file", "img",
    "image_id", "image index", "id_code", "id", "name")
# A column of one class per image.
LABEL_COLUMNS = (
    "label", "class", "category", "class_name", "classname", "label_name",
    "category_name", "breed", "species", "diagnosis")
# A column of several classes per image, in one cell.
LABELS_COLUMNS = (
    "labels", "tags", "classes", "categories", "class_names", "label_names",
    "attribute_ids", "finding labels")
# fastai's validation flag (`ImageDataLoaders.from_csv(valid_col=...)`):
# true rows are the validation split, the others train.
VALID_COLUMN = "is_valid"
# Roboflow's multi-label export, under every split folder.
ROBOFLOW_NAME = "_classes.csv"
# The CSV files of other readers: Hugging Face's image metadata, and
# Roboflow's boxes (the TF Object Detection CSV).
_OTHER_READERS = ("metadata.csv", "_annotations.csv")

SINGLE = "single-label"
NAMES = "multi-label names"
ONE_HOT = "one-hot"

_ONES = frozenset(("1", "1.0"))
_ZEROS = frozenset(("0", "0.0"))
_TRUE = frozenset(("true", "1", "yes"))
_FALSE = frozenset(("false", "0", "no"))
_SEPARATORS = ("|", ";", ",")  # Else spaces.
_PEEK_ROWS = 20  # Rows read to recognise a one-hot file.
_SHOWN = 5  # Names or lines shown in a summary.


@dataclasses.dataclass(frozen=True)
class Form:
  """What the columns of a label CSV are (indices into its header)."""

  kind: str  # SINGLE, NAMES or ONE_HOT.
  header: tuple[str, ...]  # As written, spaces around names stripped.
  file_column: int
  label_column: int = -1  # SINGLE, NAMES.
  class_columns: tuple[int, ...] = ()  # ONE_HOT, in header order.
  valid_column: int = -1
  extra_columns: tuple[int, ...] = ()  # Kept in `extra`.
  error: str = ""  # A header that is a label CSV's, but cannot be read.

  @property
  def multi(self) -> bool:
    return self.kind != SINGLE

  @functools.cached_property
  def width(self) -> int:
    """Cells a row must have: up to the last named column."""
    named = [i for i, h in enumerate(self.header) if h]
    return max(named) + 1 if named else 0


def form_of(header: list[str], rows: list[list[str]],
            file_name: str) -> Form | None:
  """The form of a CSV from its header and first rows; None: not a label CSV.

  One-hot needs its class columns to hold only 0 and 1 (empty cells aside)
  in `rows`; a file without rows is one-hot only under Roboflow's name.
  """
  header = tuple(h.strip() for h in header)
  lower = [h.lower() for h in header]
  if set(tf_csv.REQUIRED) <= set(header):
    return None  # The TF Object Detection CSV: boxes, not image classes.
  file_column = next((lower.index(c) for c in FILE_COLUMNS if c in lower), -1)
  if file_column < 0:
    return None
  valid_column = lower.index(VALID_COLUMN) if VALID_COLUMN in lower else -1
  taken = {file_column, valid_column}
  label = [i for i, h in enumerate(lower)
           if h in LABEL_COLUMNS and i not in taken]
  labels = [i for i, h in enumerate(lower)
            if h in LABELS_COLUMNS and i not in taken]
  base = dict(header=header, file_column=file_column, valid_column=valid_column)
  if len(label) + len(labels) > 1:
    both = [header[i] for i in label + labels]
    return Form(SINGLE if label else NAMES, **base, error=(
        f"several class columns ({', '.join(both)}): keep one, or rename the"
        " others"))
  if label or labels:
    column = (label or labels)[0]
    extra = tuple(i for i, h in enumerate(header)
                  if h and i not in taken | {column})
    return Form(SINGLE if label else NAMES, **base, label_column=column,
                extra_columns=extra)
  classes = tuple(i for i, h in enumerate(header) if h and i not in taken)
  if not classes:
    return None
  values = {r[i].strip() for r in rows for i in classes
            if i < len(r) and r[i].strip()}
  if not values and file_name.lower() != ROBOFLOW_NAME:
    return None
  if not values <= _ONES | _ZEROS:
    return None
  return Form(ONE_HOT, **base, class_columns=classes)


def find_files(root: str, options: common.ReadOptions) -> list[str]:
  """`options.annotations` (a `.csv`), else the `*.csv` files at the top of
  `root`, in `root/annotations/` and in the top-level split folders
  (Roboflow's `train/_classes.csv`), sorted. Files of other readers
  (`metadata.csv`, Roboflow's `_annotations.csv`) are left out."""
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    return [path] if path.lower().endswith(".csv") else []
  try:  # One listing of root: it may hold a million images.
    top = os.listdir(root)
  except OSError:
    return []
  split_dirs = sorted(
      n for n in top if not common.is_hidden(n)
      and splits_lib.canonical_split(n)
      and os.path.isdir(os.path.join(root, n)))
  out = _csv_files(root, top)
  for name in ("annotations", *split_dirs):
    folder = os.path.join(root, name)
    try:
      out += _csv_files(folder, os.listdir(folder))
    except OSError:
      continue
  return out


def _csv_files(folder: str, names: list[str]) -> list[str]:
  """The `.csv` files among `names`, sorted, without other readers'."""
  return [os.path.join(folder, n)
          for n in sorted(n for n in names if n[-4:].lower() == ".csv")
          if not common.is_hidden(n) and n.lower() not in _OTHER_READERS
          and os.path.isfile(os.path.join(folder, n))]


def _is_submission(path: str) -> bool:
  """Kaggle's `sample_submission.csv`: the test images with a placeholder
  class, not labels."""
  return "submission" in os.path.basename(path).lower()


def peek(path: str) -> tuple[list[str], list[list[str]]] | None:
  """(header, first rows) of a CSV file; None when it is not CSV.

  Bytes that are not UTF-8 are replaced here: a label CSV in another
  encoding is still recognised, and `read` names the line that is not.
  """
  try:
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
      reader = csv.reader(f, skipinitialspace=True)
      header = next(reader, None)
      rows = [r for r, _ in zip(reader, range(_PEEK_ROWS))]
  except (OSError, UnicodeDecodeError, csv.Error):
    return None
  return (header, rows) if header else None


def _forms(root: str, options: common.ReadOptions):
  """(path, form or None) of every candidate CSV."""
  out = []
  for path in find_files(root, options):
    if _is_submission(path) and not options.annotations:
      out.append((path, None))
      continue
    seen = peek(path)
    out.append((path, form_of(*seen, os.path.basename(path)) if seen else None))
  return out


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: a `.csv` whose header names an image column and a class
  column, or an image column and one-hot 0/1 columns."""
  found = tuple(path for path, form in _forms(root, options) if form)
  return common.Claim(NAME, common.CERTAIN, found) if found else None


# --- Reading ------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Row:
  """One image row, its labels as written (resolved after every file)."""

  path: str  # The CSV.
  line: int
  name: str  # The image as the CSV names it.
  image: str  # Absolute path.
  rel: str
  split: str
  raw: str | list[str]  # SINGLE / NAMES: the cell; ONE_HOT: class names.
  extra: str


class _Images:
  """The image files of the data folder, by file name and by stem: where a
  bare name that is not next to the CSV is looked for (Kaggle)."""

  def __init__(self, root: str, problems: list[records.Problem]):
    walk_problems: list[records.Problem] = []
    rels = common.walk_files(root, root, walk_problems, None)
    # A file no row names is not an input: what the walk finds wrong with
    # one is said, but not counted.
    problems.extend(dataclasses.replace(p, kind="warning",
                                        counts_as_input=False)
                    for p in walk_problems)
    self.rels = [r.replace(os.sep, "/") for r in rels
                 if common.is_image_name(r)]
    self.named: set[str] = set()  # Images some row names.
    # Made at the first bare name that is not found where the CSV is (most
    # CSVs need neither: ~0.3 KB an image at 200k).
    self._by_name: dict[str, list[str]] | None = None
    self._by_stem: dict[str, list[str]] = {}

  def find(self, name: str, split: str | None) -> list[str]:
    """The images a bare name answers to (by file name, or by stem when it
    has no image extension), narrowed to the CSV's split folder."""
    if self._by_name is None:
      self._by_name = {}
      for rel in self.rels:
        base = rel.rpartition("/")[2]
        self._by_name.setdefault(base, []).append(rel)
        self._by_stem.setdefault(os.path.splitext(base)[0], []).append(rel)
    found = (self._by_name if common.is_image_name(name)
             else self._by_stem).get(name, [])
    if len(found) > 1 and split:
      in_split = [r for r in found if "/" in r and annotated.split_of_file(
          r.partition("/")[0]) == split]
      found = in_split or found
    return found


def _resolve(name: str, bases: list[str], root: str, images: _Images,
             split: str | None) -> tuple[str, str]:
  try:
    return annotated.resolve_image(name, bases, root)
  except annotated.PathError as e:
    if not name.strip() or "/" in name or "\\" in name:
      raise
    found = images.find(name, split)
    if len(found) == 1:
      return annotated.resolve_image(found[0], [""], root)
    if len(found) > 1:
      shown = ", ".join(found[:_SHOWN])
      raise annotated.PathError(
          f"listed image {name!r}: several images answer to it ({shown}):"
          " name it with its folder") from None
    how = ("file name" if common.is_image_name(name)
           else "name without its extension")
    raise annotated.PathError(
        f"{e}, and no image in the data folder has that {how}") from None


def _file_split(path: str, root: str) -> str | None:
  """`train.csv`, `train_labels.csv`; `train/_classes.csv` by its folder."""
  split = annotated.split_of_file(path)
  folder = os.path.dirname(path)
  if split is None and os.path.dirname(folder) == root:
    split = splits_lib.canonical_split(os.path.basename(folder))
  return split


def _separator(cells: list[str]) -> str | None:
  """The separator of a file's names cells: the first of `|`, `;`, `,` in
  any cell, else None (spaces)."""
  for sep in _SEPARATORS:
    if any(sep in c for c in cells):
      return sep
  return None


def _given(name: str) -> tuple[int | None, str | None]:
  """A class as written: digits are an index (`"3"`), else a name."""
  return (int(name), None) if name.isdigit() else (None, name)


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  problems: list[records.Problem] = []
  files = []
  for path, form in _forms(root, options):
    if form is None:
      problems.append(_not_read(path))
    elif form.error:
      raise records.InputError(f"{path}: {form.error}")
    else:
      files.append((path, form))
  if not files:
    if options.annotations:
      raise records.InputError(
          f"{annotated.annotation_path(root, options.annotations)}: not a"
          " label CSV: its header names no image column (filename, image, id,"
          " ...) with a class column (label, class, labels, ...) or 0/1"
          " columns")
    raise records.InputError(f"{root}: no label CSV found")
  kinds = {form.kind for _, form in files}
  if len(kinds) > 1:
    raise records.InputError(
        f"{root}: label CSVs of different forms ("
        + "; ".join(f"{os.path.relpath(p, root)}: {f.kind}" for p, f in files)
        + "): one dataset has one form; build them apart, or write them alike")
  kind = kinds.pop()

  classes = annotated.classes_for(root, options)
  labels_file = classes.fixed is not None
  if kind == ONE_HOT and not labels_file:
    # The columns are the classes, in the order of the first file's header,
    # then the columns new in each later file.
    columns = {}
    for _, form in files:
      columns.update((form.header[i], None) for i in form.class_columns)
    classes = annotated.Classes(
        fixed=list(columns), source="the one-hot columns of "
        + ", ".join(os.path.relpath(p, root) for p, _ in files))

  images = _Images(root, problems)
  rows: list[_Row] = []
  for path, form in files:
    these = list(_read_file(path, form, root, options, images,
                            classes if labels_file else None, problems))
    if form.kind == NAMES:
      sep = _separator([r.raw for r in these])
      for r in these:
        r.raw = [p.strip() for p in r.raw.split(sep) if p.strip()]
    for r in these:
      for name in ([r.raw] if form.kind == SINGLE else r.raw):
        classes.observe(*(_given(name) if kind != ONE_HOT else (None, name)))
    rows.extend(these)
  classes.finish()

  recs = _records(rows, kind, classes, problems)
  unnamed = [rel for rel in images.rels if rel not in images.named]
  if unnamed:
    shown = ", ".join(unnamed[:_SHOWN])
    more = f" and {len(unnamed) - _SHOWN} more" if len(unnamed) > _SHOWN else ""
    problems.append(records.Problem(
        file=root, kind="warning", counts_as_input=False,
        reason=f"{len(unnamed)} image(s) named by no row of the label CSV(s):"
        f" not used ({shown}{more})"))
  names = ", ".join(os.path.relpath(p, root) for p, _ in files)
  return common.ScanResult(
      layout=f"{NAME} ({kind}): {names}", class_names=classes.names,
      records=recs, problems=problems)


def _not_read(path: str) -> records.Problem:
  if _is_submission(path):
    why = "a submission template, whose classes are placeholders"
  else:
    seen = peek(path)
    why = ("not a label CSV: its header"
           f" {[h.strip() for h in seen[0]][:8]} names no image column with"
           " a class column or 0/1 columns" if seen else
           "not a label CSV: it cannot be read as CSV")
  return records.Problem(file=path, kind="warning", counts_as_input=False,
                         reason=f"not read: {why}")


def _read_file(path, form, root, options, images, labels_file, problems):
  """The `_Row`s of one CSV file; bad rows reported. `labels_file`: the
  `Classes` of the labels file, if there is one."""
  file_split = _file_split(path, root)
  bases = list(dict.fromkeys(
      [os.path.dirname(path), os.path.join(root, "images"), root]))
  class_columns = form.class_columns
  if form.kind == ONE_HOT and labels_file is not None:
    # A labels file fixes the classes: a column it lacks is said once.
    classes = labels_file
    unknown = [i for i in class_columns if form.header[i] not in classes.names]
    if unknown:
      problems.append(annotated.annotation_problem(
          path, "column(s) " + ", ".join(repr(form.header[i]) for i in unknown)
          + f" not among the classes ({classes.source}): those labels are not"
          " written", split=file_split or "", item="line 1"))
      class_columns = tuple(i for i in class_columns if i not in unknown)
  empty_lines = []
  count = 0
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f, skipinitialspace=True)
    try:
      next(reader)
      for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
          continue  # A blank line.
        count += 1
        row = _row(cells, line, path, form, class_columns, file_split, root,
                   bases, options, images, problems)
        if row is None:
          continue
        if form.multi and not row.raw:
          empty_lines.append(line)
        yield row
    except csv.Error as e:
      raise records.InputError(
          f"{path}: not valid CSV after line {reader.line_num}: {e}") from None
    except UnicodeDecodeError as e:
      raise records.InputError(
          f"{path}: not UTF-8 text after line {reader.line_num}: {e}"
      ) from None
  if not count:
    problems.append(records.Problem(
        file=path, kind="warning", counts_as_input=False,
        split=file_split or "", reason="the file has a header and no row"))
  if empty_lines and form.kind == ONE_HOT:
    what = "no 1 in any class column"
  else:
    what = "an empty class cell"
  if empty_lines:
    shown = ", ".join(str(n) for n in empty_lines[:_SHOWN])
    more = (f" and {len(empty_lines) - _SHOWN} more"
            if len(empty_lines) > _SHOWN else "")
    problems.append(records.Problem(
        file=path, kind="warning", counts_as_input=False,
        split=file_split or "", item=f"line {shown}{more}",
        reason=f"{len(empty_lines)} row(s) with {what}: images kept, without"
        " labels"))


def _row(cells, line, path, form, class_columns, file_split, root, bases,
         options, images, problems) -> _Row | None:
  item = f"line {line}"
  cells = [c.strip() for c in cells]
  name = cells[form.file_column] if form.file_column < len(cells) else ""
  where = f"{name}: {item}" if name else item

  def reject(reason: str) -> None:
    problems.append(annotated.input_problem(
        path, f"{reason}: image not written", split=file_split or "",
        item=where))

  if name:
    try:
      image, rel = _resolve(name, bases, root, images, file_split)
    except annotated.PathError as e:
      problems.append(annotated.input_problem(
          path, str(e), split=file_split or "", item=item))
      return None
    images.named.add(rel)  # Reported here if refused: not "unnamed".
  if len(cells) < form.width:
    return reject(f"row has {len(cells)} cell(s), the header {form.width}")
  if any(cells[len(form.header):]):
    return reject(f"row has {len(cells)} cells, more than the header's"
                  f" {len(form.header)}")
  if not name:
    return reject(f"{form.header[form.file_column]} is empty")
  if form.valid_column >= 0:
    flag = cells[form.valid_column].lower()
    if flag not in _TRUE | _FALSE:
      return reject(f"{form.header[form.valid_column]} must be true or false,"
                    f" got {cells[form.valid_column]!r}")
    split = "validation" if flag in _TRUE else (file_split or "train")
  else:
    split = annotated.assign_split(file_split, rel, options)
  if form.kind == ONE_HOT:
    raw = []
    for i in class_columns:
      if cells[i] in _ONES:
        raw.append(form.header[i])
      elif cells[i] not in _ZEROS:
        return reject(f"column {form.header[i]!r} must be 0 or 1, got"
                      f" {cells[i]!r}")
  else:
    raw = cells[form.label_column]
    if form.kind == SINGLE and not raw:
      return reject(f"{form.header[form.label_column]} is empty")
  extra = {form.header[i]: cells[i] for i in form.extra_columns if cells[i]}
  return _Row(path=path, line=line, name=name, image=image, rel=rel,
              split=split, raw=raw,
              extra=json.dumps(extra, sort_keys=True, ensure_ascii=False)
              if extra else "")


def _records(rows: list[_Row], kind: str, classes: annotated.Classes,
             problems: list[records.Problem]) -> records.PackedRecords:
  """The rows' records, labels checked against the classes; an image listed
  twice is one record (a second row that disagrees is reported). The rows
  are consumed (`rows` is emptied) as their records are packed."""
  out = records.PackedRecords()
  # rel -> (CSV, line, labels, split) of the row that made its record.
  first: dict[str, tuple[str, int, tuple[int, ...], str]] = {}
  rows.reverse()
  while rows:
    row = rows.pop()
    item = f"{row.rel}: line {row.line}"
    if kind == SINGLE:
      try:
        label, text = classes.resolve(*_given(row.raw), field="class")
      except annotated.FieldError as e:
        problems.append(annotated.input_problem(
            row.path, f"{e}: image not written", split=row.split, item=item))
        continue
      labels = (label,)
    else:
      labels, texts = [], []
      for name in row.raw:
        try:
          index, text = classes.resolve(
              *(_given(name) if kind == NAMES else (None, name)), field="class")
        except annotated.FieldError as e:
          problems.append(annotated.annotation_problem(
              row.path, f"{e}: label not written", split=row.split, item=item))
          continue
        if index not in labels:
          labels.append(index)
          texts.append(text)
      labels = tuple(labels)
    if row.rel in first:
      earlier_path, earlier_line, earlier_labels, earlier_split = first[
          row.rel]
      where = f"{os.path.basename(earlier_path)}:{earlier_line}"
      if (earlier_labels, earlier_split) == (labels, row.split):
        problems.append(records.Problem(
            file=row.path, kind="warning", counts_as_input=False,
            split=row.split, item=item,
            reason=f"image listed again (first at {where}), alike: one"
            " example written"))
      else:
        problems.append(annotated.annotation_problem(
            row.path, f"image listed again (first at {where}) with other"
            f" {'classes' if kind != SINGLE else 'class'} or split"
            f" ({_show(earlier_labels, classes)} in {earlier_split}, here"
            f" {_show(labels, classes)} in {row.split}): this row not used",
            split=row.split, item=item))
      continue
    first[row.rel] = (row.path, row.line, labels, row.split)
    common_fields = dict(
        key=row.rel, path=row.image, file_name=row.rel, split=row.split,
        source=row.path, id=row.name, extra=row.extra)
    if kind == SINGLE:
      out.append(records.ImageRecord(
          **common_fields, label=labels[0], label_text=text))
    else:
      out.append(records.ImageRecord(
          **common_fields, labels=labels, labels_text=tuple(texts)))
  out.extend(())  # Flushes the packed records for the other processes.
  return out


def _show(labels: tuple[int, ...], classes: annotated.Classes) -> str:
  return "[" + ", ".join(classes.names[i] for i in labels) + "]"
