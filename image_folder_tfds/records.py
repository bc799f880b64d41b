"""The one record type between the readers and the builder.

Every reader (class folders, seed-001 JSON, COCO, VOC, CSV) turns its input
into `ImageRecord`s and `Problem`s. The builder never knows where a record came
from. Readers validate structure and types at the edge; coordinates that need
the real image size are checked by `annotations.finalize` once the image header
has been read.
"""

from __future__ import annotations

import array
import collections.abc
import dataclasses
import itertools
import operator
import os
import pickle
import struct
import sys
import tempfile
import threading
import weakref
from typing import Literal

Coords = Literal["normalized", "pixel"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Keypoint:
  x: float
  y: float
  v: int = 2  # 0: not labelled / outside, 1: occluded, 2: visible (seed 001).
  score: float = -1.0


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ObjectRecord:
  """One annotated object. Box is (xmin, ymin, xmax, ymax) or None."""

  box: tuple[float, float, float, float] | None = None
  label: int = -1  # Index into the dataset's class names, -1 when unknown.
  text: str = ""
  score: float = -1.0
  conf: float = -1.0
  area: float = -1.0  # Normalized by image area; -1 when not given.
  id: str = ""
  is_crowd: bool = False
  keypoints: tuple[Keypoint, ...] = ()
  keypoint_score_given: bool = False
  # Offset of the object's COCO segmentation in its record's
  # `segmentation_file` (masks.SegmentationStore), -1 when it has none.
  segmentation: int = -1


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ImageRecord:
  """One input image and everything known about it before it is read."""

  key: str  # Stable, human-readable example key (relative path).
  path: str  # Absolute path of the image file.
  file_name: str  # Path relative to the data root, posix separators.
  split: str
  source: str  # The file that produced this record (for error messages).
  id: str = ""
  label: int = -1
  label_text: str = ""
  label_conf: float = -1.0
  objects: tuple[ObjectRecord, ...] = ()
  coords: Coords = "normalized"
  extra: str = ""
  # (width, height) the annotation file says the image has, if it says; a
  # mismatch with the image as displayed is reported (annotations.finalize).
  size: tuple[int, int] | None = None
  # The file holding the objects' segmentations (masks.SegmentationStore),
  # "" when no object has one.
  segmentation_file: str = ""
  # Folder pairs: the label image of this image, and the number of classes
  # (its values are class indices below it).
  mask_path: str = ""
  mask_classes: int = 0
  # Image-level classes, several per image (CVAT tags, Label Studio choices,
  # multi-label CSVs): indices into the class names, and the names. In a
  # reader's draft (`annotated.resolve_labels`), either may be given alone.
  labels: tuple[int, ...] = ()
  labels_text: tuple[str, ...] = ()
  # The image is `data_range` = (offset, length) bytes of the file at `path`
  # (a TFRecord file, a spill file of images embedded in annotations), not
  # the whole file. None: the whole file.
  data_range: tuple[int, int] | None = None
  # Values of the dataset's metadata columns for this image (Hugging Face
  # `metadata.jsonl`/`.csv`/`.parquet`): a JSON object {column: value},
  # every column of `ScanResult.columns` present, values of its type.
  columns: str = ""


def counted_classes(record: ImageRecord) -> tuple[int, ...]:
  """The classes an image is counted under (the dataset card's class
  table): its class, else each of its image labels, else -1 (none)."""
  if record.label < 0 and record.labels:
    return record.labels
  return (record.label,)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Problem:
  """Something found while reading the input: rejected, changed or noted.

  `kind` is "rejected" (an input was not written), "changed" (an annotation
  written after a fix, for example a clipped box), "converted" (an image
  re-encoded by design: EXIF orientation, BMP to PNG, resize) or "warning"
  (nothing was lost, but the user should know: an empty class folder).
  Strict mode stops at "rejected" and "changed".
  """

  file: str
  reason: str
  kind: Literal["rejected", "changed", "converted", "warning"] = "rejected"
  split: str = ""
  item: str = ""  # Annotation or object id, where there is one.
  counts_as_input: bool = True  # A rejected image counts towards inputs found.

  def __str__(self) -> str:
    if not self.file:  # About a split or the dataset, not one file.
      return self.reason
    where = f"{self.file} [{self.item}]" if self.item else self.file
    return f"{where}: {self.reason}"


class InputError(ValueError):
  """Input that cannot be built from at all (no images, bad labels file, ...)."""


class BadInputError(ValueError):
  """Raised in strict mode at the first rejected or changed input."""

  def __init__(self, problem: Problem):
    super().__init__(f"{problem} (strict mode stops at the first bad input)")
    self.problem = problem


class FolderRecords(collections.abc.Sequence):
  """The `ImageRecord`s of a folder scan, kept as columns.

  A folder scan (class folders, unlabeled folders) knows, per file, only its
  relative path, split and class (-1: none); an `ImageRecord` object per file
  would cost ~3 us and ~400 bytes each (4.7 s and ~400 MB for 1M files). The
  records are made when they are read, one at a time, so the scan and the
  build hold three small columns instead.
  """

  __slots__ = ("_prefix", "_rels", "_splits", "_labels", "_class_names")

  def __init__(self, root: str, rels: list[str], splits: list[str],
               labels: array.array, class_names: list[str]):
    if not len(rels) == len(splits) == len(labels):
      raise ValueError("columns of different lengths")
    self._prefix = root if root.endswith(os.sep) else root + os.sep
    self._rels = rels  # Relative paths, posix separators: key and file name.
    self._splits = splits  # Interned split names.
    self._labels = labels
    self._class_names = class_names

  def __len__(self) -> int:
    return len(self._rels)

  def __getitem__(self, i):
    if isinstance(i, slice):
      return [self._record(j) for j in range(*i.indices(len(self)))]
    return self._record(range(len(self))[i])

  def __iter__(self):
    for i in range(len(self._rels)):
      yield self._record(i)

  def _record(self, i: int) -> ImageRecord:
    rel = self._rels[i]
    path = self._prefix + (rel if os.sep == "/" else rel.replace("/", os.sep))
    label = self._labels[i]
    return ImageRecord(
        key=rel, path=path, file_name=rel, split=self._splits[i], source=path,
        id=rel, label=label,
        label_text=self._class_names[label] if label >= 0 else "")

  def has_labels(self) -> bool:
    """Whether some image has a class (an unlabeled folder's have none)."""
    return bool(self._labels) and max(self._labels) >= 0

  def split_names(self) -> list[str]:
    """The split of each record, in order, without making the records."""
    return self._splits

  def keys(self) -> list[str]:
    """The key of each record, in order, without making the records."""
    return list(self._rels)

  def by_split(self) -> dict[str, FolderRecords]:
    """One `FolderRecords` per split, in input order."""
    out = {}
    for split in dict.fromkeys(self._splits):  # First-seen order.
      keep = [s == split for s in self._splits]
      out[split] = FolderRecords(
          self._prefix, list(itertools.compress(self._rels, keep)),
          list(itertools.compress(self._splits, keep)),
          array.array(self._labels.typecode,
                      itertools.compress(self._labels, keep)),
          self._class_names)
    return out


_IMAGE_FIELDS = tuple(f.name for f in dataclasses.fields(ImageRecord))
_OBJECT_FIELDS = tuple(f.name for f in dataclasses.fields(ObjectRecord))
_OBJECTS = _IMAGE_FIELDS.index("objects")
_KEY = _IMAGE_FIELDS.index("key")
_KEYPOINTS = _OBJECT_FIELDS.index("keypoints")


_image_values = operator.attrgetter(*_IMAGE_FIELDS)
_object_values_of = operator.attrgetter(*_OBJECT_FIELDS)
_KEYPOINT_FIELDS = tuple(f.name for f in dataclasses.fields(Keypoint))
_keypoint_values = operator.attrgetter(*_KEYPOINT_FIELDS)


def _maker(cls):
  """A function making a `cls` from the values of its fields, in order.

  It sets the slots directly: `cls(**dict(zip(names, values)))` parses
  every field as a keyword and costs about twice as much (`unpack_record`
  of an image with 4 boxes: 37 us before, 21 us this way, measured side by
  side on a loaded machine; 183 and 73 us with 17 keypoints an object).
  Only for values taken from a `cls` made by its `__init__` (what
  `pack_record` packed): these dataclasses check nothing in `__init__`.
  """
  if hasattr(cls, "__post_init__"):
    raise TypeError(f"{cls.__name__} checks its values: make it with __init__")
  setters = tuple(getattr(cls, f.name).__set__
                  for f in dataclasses.fields(cls))
  new = object.__new__

  def make(values):
    made = new(cls)
    for set_field, value in zip(setters, values, strict=True):
      set_field(made, value)
    return made

  return make


_make_image = _maker(ImageRecord)
_make_object = _maker(ObjectRecord)
_set_x, _set_y, _set_v, _set_score = (  # Fails here if a field is added.
    getattr(Keypoint, f).__set__ for f in _KEYPOINT_FIELDS)


def _keypoints_from(values: tuple) -> tuple[Keypoint, ...]:
  # The four slots set inline: keypoints come by the dozen an object (17
  # for COCO people), and a call per keypoint through `_maker` costs twice.
  out = []
  new = object.__new__
  for x, y, v, score in values:
    k = new(Keypoint)
    _set_x(k, x)
    _set_y(k, y)
    _set_v(k, v)
    _set_score(k, score)
    out.append(k)
  return tuple(out)


def _object_values(o: ObjectRecord) -> tuple:
  values = _object_values_of(o)
  if not o.keypoints:  # () packs as itself.
    return values
  values = list(values)
  values[_KEYPOINTS] = tuple(map(_keypoint_values, o.keypoints))
  return tuple(values)


def _object_from(values: tuple) -> ObjectRecord:
  if values[_KEYPOINTS]:
    values = list(values)
    values[_KEYPOINTS] = _keypoints_from(values[_KEYPOINTS])
  return _make_object(values)


# Pickled as tuples of their values: a dataclass pickles with the names of
# its fields (~330 bytes an object, as much as the object itself); its values
# alone take ~110.
def pack_object(o: ObjectRecord) -> bytes:
  return pickle.dumps(_object_values(o), protocol=pickle.HIGHEST_PROTOCOL)


def unpack_object(data: bytes) -> ObjectRecord:
  return _object_from(pickle.loads(data))


def pack_record(r: ImageRecord) -> bytes:
  values = list(_image_values(r))
  values[_OBJECTS] = tuple(map(_object_values, r.objects))
  return pickle.dumps(tuple(values), protocol=pickle.HIGHEST_PROTOCOL)


def unpack_record(data: bytes) -> ImageRecord:
  values = list(pickle.loads(data))
  values[_OBJECTS] = tuple(map(_object_from, values[_OBJECTS]))
  return _make_image(values)


def key_hash(split: str, key: str) -> int:
  """A 64-bit hash of an example's (split, key), for finding duplicates.

  Python's own string hash (SipHash): ~0.1 us, and it differs between
  processes (PYTHONHASHSEED), so hashes are compared only within the
  process that made them. Equal hashes are only candidates: the records
  are read to compare their keys.
  """
  return hash((split, key))


_LENGTH = struct.Struct("<I")


class SpillPath(str):
  """A `SpillFile`'s path; keeps the file alive while a record holds it.
  Pickles as a plain `str` (to the workers, which only read)."""

  def __reduce__(self):
    return (str, (str(self),))


class SpillFile:
  """Blobs appended to a temporary file; each is found by its offset.

  The file is deleted when the `SpillFile` is garbage-collected (or its last
  `SpillPath`) or the process exits. A blob is its length (4 bytes, little
  endian) and its bytes; `read_blob` reads one from another process.
  """

  def __init__(self, prefix: str = "my_images_spill_"):
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".bin")
    self.path = SpillPath(path)
    self.path.store = self
    self._file = os.fdopen(fd, "w+b")
    self._size = 0
    self._flushed = 0
    self._lock = threading.Lock()
    self._finalizer = weakref.finalize(self, _remove, self._file, path)

  def add(self, blob: bytes) -> int:
    with self._lock:
      offset = self._size
      self._file.write(_LENGTH.pack(len(blob)))
      self._file.write(blob)
      self._size += _LENGTH.size + len(blob)
    return offset

  def get(self, offset: int) -> bytes:
    with self._lock:
      if offset >= self._flushed:
        self._file.flush()
        self._flushed = self._size
    fd = self._file.fileno()
    (size,) = _LENGTH.unpack(os.pread(fd, _LENGTH.size, offset))
    data = os.pread(fd, size, offset + _LENGTH.size)
    if len(data) != size:
      raise OSError(f"{self.path}: blob at {offset} is cut short")
    return data

  def finish(self) -> None:
    """Everything written is readable by other processes."""
    with self._lock:
      self._file.flush()
      self._flushed = self._size


def _remove(file, path: str) -> None:
  file.close()
  try:
    os.unlink(path)
  except FileNotFoundError:
    return


def read_blob(path: str, offset: int) -> bytes:
  with open(path, "rb") as f:
    return read_at(f, offset)


def read_at(f, offset: int) -> bytes:
  f.seek(offset)
  (size,) = _LENGTH.unpack(f.read(_LENGTH.size))
  return f.read(size)


class PackedRecords(collections.abc.Sequence):
  """`ImageRecord`s kept packed (`pack_record`) in a `SpillFile`, made
  again when read.

  An annotation file's records hold their objects: as Python objects, a COCO
  image with 4 objects costs ~3 KB (800k `ObjectRecord`s, ~600 MB, for 200k
  images); here it costs its offset, its split and its key's hash (24
  bytes) in memory, and ~0.55 KB in the temporary file. Reading one back
  costs ~20 us (~75 with 17 keypoints an object, on a loaded machine), a
  small part of the ~200 us its image's check costs; the records are read a few times a build
  (schema, generation). The split of each record is kept as a column, so
  `split_names` and `by_split` read nothing.

  A record's `segmentation_file` (and a `path` into a spill file of
  embedded images) is a path that keeps its temporary file alive
  (`SpillPath`) but is packed as a plain `str`: the container holds each
  such path, so the files live as long as their records.

  Each record's `key_hash` of (split, key) is kept too, so the duplicate-key
  check (`readers.check_unique_keys`) reads only the records whose hashes
  collide, not every record.
  """

  __slots__ = ("_store", "_offsets", "_splits", "_alive", "_hashes")

  def __init__(self, recs: collections.abc.Iterable[ImageRecord] = ()):
    self._store: SpillFile | None = None  # Made at the first record.
    self._offsets = array.array("q")
    self._splits: list[str] = []
    self._alive: dict[str, str] = {}  # segmentation_file -> the original.
    self._hashes = array.array("q")  # key_hash(split, key) of each record.
    self.extend(recs)

  def append(self, record: ImageRecord) -> None:
    if self._store is None:
      self._store = SpillFile("my_images_records_")
    self._offsets.append(self._store.add(pack_record(record)))
    self._splits.append(sys.intern(record.split))
    self._hashes.append(key_hash(record.split, record.key))
    for path in (record.segmentation_file, record.path):
      if isinstance(path, SpillPath):
        self._alive.setdefault(str(path), path)

  def extend(self, recs: collections.abc.Iterable[ImageRecord]) -> None:
    for r in recs:
      self.append(r)
    if self._store is not None:
      self._store.finish()

  def __len__(self) -> int:
    return len(self._offsets)

  def _get(self, offset: int) -> ImageRecord:
    return unpack_record(self._store.get(offset))

  def __getitem__(self, i):
    if isinstance(i, slice):
      return [self._get(o) for o in self._offsets[i]]
    return self._get(self._offsets[i])

  def __iter__(self):
    for offset in self._offsets:
      yield self._get(offset)

  def split_names(self) -> list[str]:
    """The split of each record, in order, without making the records."""
    return self._splits

  def keys(self) -> list[str]:
    """The key of each record, in order, without making its objects."""
    return [pickle.loads(self._store.get(o))[_KEY] for o in self._offsets]

  def key_hashes(self) -> array.array:
    """`key_hash(split, key)` of each record, in order (int64)."""
    return self._hashes

  def by_split(self) -> dict[str, PackedRecords]:
    """One `PackedRecords` per split, in input order (one file shared)."""
    out: dict[str, PackedRecords] = {}
    for offset, split, h in zip(self._offsets, self._splits, self._hashes):
      part = out.get(split)
      if part is None:
        part = out[split] = PackedRecords()
        part._store = self._store  # pylint: disable=protected-access
        part._alive = self._alive  # pylint: disable=protected-access
      part._offsets.append(offset)  # pylint: disable=protected-access
      part._splits.append(split)  # pylint: disable=protected-access
      part._hashes.append(h)  # pylint: disable=protected-access
    return out


def keys_of(recs: collections.abc.Sequence[ImageRecord]) -> list[str]:
  """The key of each record of `recs`, in order; the containers that keep
  records packed give them without making the records."""
  if isinstance(recs, (FolderRecords, PackedRecords)):
    return recs.keys()
  return [r.key for r in recs]
