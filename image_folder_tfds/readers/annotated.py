"""What the annotation readers (seed 001, COCO, VOC, CSV) share.

* `resolve_image`: an annotation's image name to a file inside the data root,
  refusing names that escape it (`../`, absolute paths, symbolic links).
* Field checks (`number`, `integer`, `text`, ...) that raise `FieldError`
  naming the field, so every reader reports the same way.
* `Classes`: the class list (labels file, a fixed list, or formed from the
  labels and names seen in the data) and the check of every label against it.
* `split_of_file`: `train.json`, `instances_val2017.json`, `test_labels.csv`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import stat
from collections.abc import Iterable, Sequence

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import common


def annotation_path(root: str, name: str) -> str:
  """The annotation file the `annotations` option names (relative to root)."""
  path = name if os.path.isabs(name) else os.path.join(root, name)
  if not os.path.isfile(path):
    raise records.InputError(f"{path}: annotation file not found")
  return os.path.abspath(path)


class FieldError(ValueError):
  """A field of an annotation has the wrong type or value."""


class PathError(ValueError):
  """An image name that is refused (escapes the data root) or not found."""


# --- Image paths --------------------------------------------------------------


def _inside(path: str, folder: str) -> bool:
  return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@functools.lru_cache(maxsize=4096)
def _real_folder(folder: str) -> str:
  """`os.path.realpath` of a folder, cached: images share a few folders."""
  return os.path.realpath(folder)


def start_scan() -> None:
  """Forgets cached folder links (they may have changed since the last scan)."""
  _real_folder.cache_clear()


def resolve_image(name, bases: list[str], root: str) -> tuple[str, str]:
  """(absolute path, path relative to `root`) of the image called `name`.

  A relative `name` is looked up in each folder of `bases` in turn; the first
  existing file wins. An absolute `name` is used as it is. Raises `PathError`
  when the name leaves `root` (directly, with `..`, or through a symbolic
  link), or when no candidate exists inside `root`.
  """
  if not isinstance(name, str) or not name.strip():
    raise PathError(f"image file name must be a non-empty string, got {name!r}")
  if "\x00" in name:
    raise PathError(f"image file name {name!r} contains a NUL character")
  root = os.path.abspath(root)
  real_root = _real_folder(root)
  native = name.replace("/", os.sep)
  candidates = [native] if os.path.isabs(native) else [
      os.path.join(b, native) for b in bases]
  escaped = []
  looked = []
  for candidate in candidates:
    path = os.path.normpath(os.path.join(root, candidate))
    if not _inside(path, root):
      escaped.append(path)
      continue
    looked.append(path)
    try:
      st = os.lstat(path)
    except OSError:
      continue
    if stat.S_ISLNK(st.st_mode):
      real = os.path.realpath(path)
    else:  # Only the folders can be links: their real path is cached.
      real = os.path.join(_real_folder(os.path.dirname(path)),
                          os.path.basename(path))
    if not _inside(real, real_root):
      raise PathError(
          f"image {name!r} is a symbolic link to {real}, outside the data"
          f" folder {root}: refused")
    if not os.path.isfile(real):
      raise PathError(f"image {name!r} ({path}) is not a regular file")
    return path, path[len(root):].lstrip(os.sep).replace(os.sep, "/")
  if escaped:  # Not found inside; the name points outside: refuse it.
    raise PathError(
        f"image {name!r} is outside the data folder {root} ({escaped[0]}):"
        " refused")
  raise PathError(
      f"listed image {name!r} not found (looked for "
      + ", ".join(looked) + ")")


# --- Field checks ---------------------------------------------------------------


def number(value, field: str, *, allow_none: bool = False) -> float | None:
  """A finite float; ints are accepted, bools and strings are not."""
  if value is None and allow_none:
    return None
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise FieldError(f"{field} must be a number, got {value!r}")
  value = float(value)
  if not math.isfinite(value):
    raise FieldError(f"{field} is {value} (NaN or infinite)")
  return value


def number_text(text, field: str) -> float:
  """A finite float written as text (a CSV cell, an XML attribute or
  element); raises `FieldError` naming the field when it is missing, not a
  number, NaN or infinite."""
  if text is None or not str(text).strip():
    raise FieldError(f"{field} is missing")
  try:
    value = float(text)
  except ValueError:
    raise FieldError(f"{field} must be a number, got {str(text).strip()!r}"
                     ) from None
  if not math.isfinite(value):
    raise FieldError(f"{field} is {str(text).strip()} (NaN or infinite)")
  return value


def xywh_box(value, field: str = "bbox", shown=repr
             ) -> tuple[float, float, float, float]:
  """A COCO `[x, y, width, height]` box (pixels, as COCO and Hugging Face's
  object-detection metadata write it) as (xmin, ymin, xmax, ymax).
  `shown` writes the value in messages."""
  bbox = array(value, field)
  if len(bbox) != 4:
    raise FieldError(f"{field} must be [x, y, width, height], got"
                     f" {shown(bbox)}")
  x, y, w, h = (number(v, f"{field}[{i}]") for i, v in enumerate(bbox))
  if w < 0 or h < 0:
    raise FieldError(f"{field} {shown(bbox)} has a negative width or height")
  return (x, y, x + w, y + h)


def integer(value, field: str) -> int:
  """An int; a float with an integral value (2.0) and digit strings are not."""
  if isinstance(value, bool) or not isinstance(value, int):
    raise FieldError(f"{field} must be an integer, got {value!r}")
  return value


def label_id(value, field: str) -> int:
  """A class index: an int >= 0, or a string of digits (seed 001's `"1"`)."""
  if isinstance(value, str) and value.strip().isdigit():
    value = int(value.strip())
  value = integer(value, field)
  if value < 0:
    raise FieldError(f"{field} is {value}: class indices start at 0")
  return value


def text(value, field: str) -> str:
  if not isinstance(value, str):
    raise FieldError(f"{field} must be a string, got {value!r}")
  return value


def identifier(value, field: str) -> str:
  """An id: a string, or an int (kept as its decimal text)."""
  if isinstance(value, bool) or not isinstance(value, (str, int)):
    raise FieldError(f"{field} must be a string or an integer, got {value!r}")
  return str(value)


def mapping(value, field: str) -> dict:
  if not isinstance(value, dict):
    raise FieldError(f"{field} must be an object (a dict), got {value!r}")
  return value


def array(value, field: str) -> list:
  if not isinstance(value, list):
    raise FieldError(f"{field} must be an array, got {value!r}")
  return value


def declared_size(width, height, file: str, item: str, split: str,
                  problems: list[records.Problem]) -> tuple[int, int] | None:
  """(width, height) an annotation gives for its image, or None.

  Only compared with the real size later, so a bad value is a warning.
  """
  if width is None and height is None:
    return None
  try:
    size = (integer(width, "width"), integer(height, "height"))
    if min(size) < 1:
      raise FieldError(f"width and height must be positive, got {size}")
  except FieldError as e:
    problems.append(records.Problem(
        file=file, item=item, split=split, kind="warning",
        counts_as_input=False,
        reason=f"{e}: the image size is not checked"))
    return None
  return size


# --- Classes --------------------------------------------------------------------


@dataclasses.dataclass
class Classes:
  """The class names of a dataset, and the check of each label against them.

  With `fixed` names (a labels file, COCO's categories) a label must be one of
  them. Otherwise `observe` every (index, name) pair first; `finish` then forms
  the names: position i holds the name given with index i (or "i" when no
  name came with it), followed by the names given without an index, sorted.
  """

  fixed: list[str] | None = None
  source: str = ""  # Where fixed names come from, for messages.
  _by_index: dict[int, str] = dataclasses.field(default_factory=dict)
  _names_only: set[str] = dataclasses.field(default_factory=set)
  names: list[str] = dataclasses.field(default_factory=list)
  _index: dict[str, int] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.fixed is not None:
      self._set(list(self.fixed))

  def _set(self, names: list[str]) -> None:
    self.names = names
    self._index = {n: i for i, n in enumerate(names)}

  def observe(self, index: int | None, name: str | None) -> None:
    """Records a pair seen in the data (ignored when names are fixed)."""
    if self.fixed is not None:
      return
    if index is not None:
      if self._by_index.get(index) is None:  # The first name given wins.
        self._by_index[index] = name
    elif name is not None:
      self._names_only.add(name)

  def finish(self) -> list[str]:
    if self.fixed is None:
      size = max(self._by_index, default=-1) + 1
      names = [self._by_index.get(i) or str(i) for i in range(size)]
      taken = set(names)
      names += sorted(n for n in self._names_only if n not in taken)
      self._set(names)
    return self.names

  def resolve(self, index: int | None, name: str | None, field: str):
    """(index, name) checked against the classes; (-1, "") when neither given.

    Raises `FieldError` for an index or a name that is not among the classes,
    or for an index and a name that disagree.
    """
    where = f" ({self.source})" if self.source else ""
    if index is None and name is None:
      return -1, ""
    if index is not None and index >= len(self.names):
      raise FieldError(
          f"{field} {index} is not among the {len(self.names)} classes{where}")
    if name is not None and name not in self._index:
      raise FieldError(f"{field} {name!r} is not among the classes{where}")
    if index is not None and name is not None and self._index[name] != index:
      raise FieldError(
          f"{field}: index {index} is class {self.names[index]!r}, but the"
          f" name given with it is {name!r}{where}")
    if index is None:
      index = self._index[name]
    return index, self.names[index]


def classes_for(root: str, options: common.ReadOptions) -> Classes:
  """Fixed to the labels file when there is one, else formed from the data."""
  labels = common.read_labels_file(root, options.labels_file)
  if labels is None:
    return Classes()
  return Classes(fixed=labels.names, source=labels.path)


# --- Splits ---------------------------------------------------------------------


# `-00003-of-00010`: the shard numbering of sharded files (TFRecords).
_SHARD_SUFFIX = re.compile(r"[-_]\d+-of-\d+$")


def split_of_file(path: str) -> str | None:
  """The split an annotation file is named for, or None.

  The name without extension, or its first or last word (separated by `_`,
  `-` or `.`) with trailing digits removed: `train.json`, `val.jsonl`,
  `train_labels.csv`, `instances_val2017.json`. A shard suffix is not a
  word (`coco_train-00003-of-00010`, TFRecord shards). Only the file name
  counts, not its folder.
  """
  stem = _SHARD_SUFFIX.sub("", os.path.basename(path).split(".")[0])
  words = [w for w in re.split(r"[_\-.]", stem) if w]
  for word in [stem] + words[:1] + words[-1:]:
    split = splits_lib.canonical_split(re.sub(r"\d+$", "", word))
    if split:
      return split
  return None


def input_problem(file: str, reason: str, *, split: str = "", item: str = ""
                  ) -> records.Problem:
  """An input (an image entry) that is not written."""
  return records.Problem(file=file, reason=reason, split=split, item=item)


def annotation_problem(file: str, reason: str, *, split: str = "",
                       item: str = "", kind: str = "rejected"
                       ) -> records.Problem:
  """An annotation dropped (or changed) from an image that is written."""
  return records.Problem(file=file, reason=reason, split=split, item=item,
                         kind=kind, counts_as_input=False)


def _given(index: int, name: str) -> tuple[int | None, str | None]:
  return (index if index >= 0 else None), (name if name else None)


def _given_labels(rec: records.ImageRecord):
  """The (index or None, name or None) pairs of a draft's `labels`."""
  n = max(len(rec.labels), len(rec.labels_text))
  indices = rec.labels or (-1,) * n
  names = rec.labels_text or ("",) * n
  if len(indices) != len(names):
    raise ValueError(f"{rec.source}: labels and labels_text differ in length")
  return [_given(i, t) for i, t in zip(indices, names)]


def observe_labels(classes: Classes, rec: records.ImageRecord) -> None:
  """Tells `classes` every label of a draft record (before `finish`)."""
  classes.observe(*_given(rec.label, rec.label_text))
  for pair in _given_labels(rec):
    classes.observe(*pair)
  for obj in rec.objects:
    classes.observe(*_given(obj.label, obj.text))


def resolve_labels(
    drafts: Iterable[records.ImageRecord], classes: Classes,
    problems: list[records.Problem], out=None,
) -> Sequence[records.ImageRecord]:
  """Draft records (labels as given) with labels checked against `classes`.

  In a draft, `label` is the index as given (-1: none) and `label_text` /
  `text` the name as given ("": none). A bad image-level class is dropped
  (the image is kept, unlabelled); a bad object label drops that object.
  Each is reported with the file and the annotation. The records are
  appended to `out` (a new list by default; a `records.PackedRecords` keeps
  them out of memory) and `out` is returned.
  """
  out = [] if out is None else out
  for rec in drafts:
    changes = {}
    try:
      changes["label"], changes["label_text"] = classes.resolve(
          *_given(rec.label, rec.label_text), field="class")
    except FieldError as e:
      problems.append(annotation_problem(
          rec.source, f"{e}: image kept without a class", split=rec.split,
          item=f"{rec.file_name}: class"))
      changes["label"], changes["label_text"] = -1, ""
    if rec.labels or rec.labels_text:
      labels, names = [], []
      for index, name in _given_labels(rec):
        try:
          index, name = classes.resolve(index, name, field="image label")
        except FieldError as e:
          problems.append(annotation_problem(
              rec.source, f"{e}: label not written", split=rec.split,
              item=f"{rec.file_name}: labels"))
          continue
        if index not in labels:  # A class given twice is one label.
          labels.append(index)
          names.append(name)
      changes["labels"], changes["labels_text"] = tuple(labels), tuple(names)
    objects = []
    for i, obj in enumerate(rec.objects):
      try:
        index, name = classes.resolve(*_given(obj.label, obj.text),
                                      field="object label")
      except FieldError as e:
        what = f"object {obj.id}" if obj.id else f"object #{i}"
        problems.append(annotation_problem(
            rec.source, f"{e}: object not written", split=rec.split,
            item=f"{rec.file_name}: {what}"))
        continue
      objects.append(dataclasses.replace(obj, label=index, text=name))
    changes["objects"] = tuple(objects)
    out.append(dataclasses.replace(rec, **changes))
  return out


def assign_split(file_split: str | None, rel: str,
                 options: common.ReadOptions) -> str:
  """The annotation file's split, else the stable hash split of the image."""
  return file_split or splits_lib.assign_split(rel, options.split_fractions)
