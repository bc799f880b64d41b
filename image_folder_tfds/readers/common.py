"""What every reader shares: options, the scan result, safe folder walking."""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import os
import re
import stat
from collections.abc import Sequence

import ijson
import numpy as np

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib

# Files that are never inputs, wherever they are.
_IGNORED_NAMES = {"Thumbs.db", "desktop.ini", "__MACOSX"}
# Files of ours that may sit at the top of the data folder.
KNOWN_METADATA_FILES = {"labels.txt", "my_images.json", "README.md"}


_progress = None  # The active scan progress bar (`scan_progress`), if any.


@contextlib.contextmanager
def scan_progress(root):
  """A progress bar of the files found while `root` is scanned."""
  global _progress
  import tqdm  # pylint: disable=g-import-not-at-top
  bar = tqdm.tqdm(desc=f"Scanning {root}", unit=" files", leave=False,
                  mininterval=0.5)
  _progress = bar
  try:
    yield bar
  finally:
    _progress = None
    bar.close()


class _Listing:
  """One folder's entries, read once: sorted names, and which are folders.

  Format detection asks every reader whether a folder is its own, and most
  look at the same top folder: a flat folder of 200k images was listed and
  sorted a dozen times, with a `stat` per name for the folders (12 s). The
  listing is kept while the folder's modification time is unchanged.
  """

  __slots__ = ("mtime", "names", "dirs")

  def __init__(self, folder: str, mtime: int):
    self.mtime = mtime
    dirs = set()
    names = []
    with os.scandir(folder) as it:
      for entry in it:
        names.append(entry.name)
        try:
          if entry.is_dir():  # From the entry's type; a link is followed.
            dirs.add(entry.name)
        except OSError:
          continue
    names.sort()
    self.names = names
    self.dirs = dirs


_listings: dict[str, _Listing] = {}


def _listing(folder: str) -> _Listing:
  mtime = os.stat(folder).st_mtime_ns  # Raises OSError as listdir would.
  known = _listings.get(folder)
  if known is None or known.mtime != mtime:
    if len(_listings) > 16:
      _listings.clear()
    known = _listings[folder] = _Listing(folder, mtime)
  return known


def names(folder: str) -> list[str]:
  """The sorted names in `folder` (`os.listdir`), read once while the folder
  is unchanged. Hidden names are kept: callers filter them. Raises OSError."""
  return _listing(folder).names


def subfolders(folder: str) -> list[str]:
  """The sorted names of the folders in `folder` (links to folders too),
  hidden ones left out; [] when `folder` cannot be listed."""
  try:
    listing = _listing(folder)
  except OSError:
    return []
  return [n for n in listing.names if n in listing.dirs and not is_hidden(n)]


def top_files(folder: str) -> list[str]:
  """The sorted names of the entries of `folder` that are not folders,
  hidden ones left out; [] when `folder` cannot be listed."""
  try:
    listing = _listing(folder)
  except OSError:
    return []
  return [n for n in listing.names
          if n not in listing.dirs and not is_hidden(n)]


def forget_listings() -> None:
  """Drops the kept listings (a scan is over: its memory is given back)."""
  _listings.clear()


def is_hidden(name: str) -> bool:
  """`.DS_Store`, `._photo.jpg` (macOS resource forks), `.git`, ..."""
  return name.startswith(".") or name in _IGNORED_NAMES


# Image file extensions, for readers that pair images with per-image
# annotation files (Ultralytics' IMG_FORMATS, plus gif). Images themselves are
# identified by their content when they are checked, not by these.
IMAGE_EXTENSIONS = frozenset((
    ".bmp", ".dng", ".gif", ".heic", ".jpeg", ".jpg", ".mpo", ".pfm", ".png",
    ".tif", ".tiff", ".webp"))


def is_image_name(name: str) -> bool:
  return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReadOptions:
  split_fractions: dict[str, float]
  labels_file: str | None = None
  annotations: str | None = None
  # The layout was detected, not chosen: the readers of last resort (class
  # folders) then refuse a folder that holds annotation files
  # (`annotation_artefacts`), which the user would otherwise lose.
  detected: bool = False
  # The build stores image bytes (False: only the image's path). A reader
  # whose images live inside bigger files (TFRecords) has no path to store
  # for them, and refuses such a build before any image is read.
  store_images: bool = True


# --- Format detection -----------------------------------------------------------
#
# Each reader answers "is this folder mine, and how sure am I?" with a
# `Claim` (its `claim(root, options)`), from the files alone; the registry
# (`readers.detect_layout`) takes the single most certain answer.

# An annotation file of the format, its content checked (a COCO file's keys,
# a CSV header, `data.yaml` with class names, `annotations.xml` whose root is
# <annotations>).
CERTAIN = 3
# The format's folder structure with files of the right kind (Annotations/
# with XML files; images/ beside masks/).
LIKELY = 2
# No annotation at all: class folders (positive evidence: folders holding
# files), chosen only when no annotation file is present.
FALLBACK = 1


@dataclasses.dataclass(frozen=True)
class Claim:
  """A reader's answer: `layout` is its name (the `layout` option value)."""

  layout: str
  certainty: int  # CERTAIN, LIKELY or FALLBACK.
  evidence: tuple[str, ...]  # The files or folders that made the claim.

  def describe(self, root: str) -> str:
    shown = [_relative(e, root) for e in self.evidence[:3]]
    more = (f" and {len(self.evidence) - 3} more"
            if len(self.evidence) > 3 else "")
    return f"{self.layout} ({', '.join(shown)}{more})"


def _relative(path: str, root: str) -> str:
  if os.path.isabs(path):
    rel = os.path.relpath(path, root)
    return path if rel.startswith("..") else rel
  return path


@dataclasses.dataclass(frozen=True)
class Artefact:
  """A file that is an annotation of some format (`annotation_artefacts`)."""

  file: str  # Relative to the data folder, posix separators.
  layout: str  # The layout that reads such files ("" when none does).
  what: str  # What the file is, for the message.


class ArtefactsFound(Exception):
  """A reader of last resort found annotation files it would not read.

  Raised by class folders and unlabeled folders when the layout was detected
  (not forced); `readers.scan` turns it into an `InputError` naming the files
  and the layout that reads them. `layout` and `reading` are the refusing
  reader's (its `NAME`, and what it would have read the folder as).
  """

  def __init__(self, root: str, artefacts: list[Artefact], *,
               layout: str = "folders", reading: str = "class folders"):
    super().__init__(f"{root}: {len(artefacts)} annotation file(s)")
    self.root = root
    self.artefacts = artefacts
    self.layout = layout
    self.reading = reading


@dataclasses.dataclass(frozen=True)
class TopLevel:
  """What the readers of last resort look at: the top of the data folder.

  `class_dirs`: top-level folders that are not split names, and folders
  inside top-level split folders (`cat`, `train/cat`): class folders.
  `images`: a few image files (by extension; the first names in sorted
  order) at the top and directly inside the split folders (`a.jpg`,
  `train/b.png`), as evidence. Relative paths, posix separators, hidden
  entries left out.
  """

  class_dirs: tuple[str, ...]
  images: tuple[str, ...]


_EVIDENCE = 3  # Image names kept as evidence, per folder.


def top_level(root: str) -> TopLevel:
  """The `TopLevel` of `root`: one listing of it and of its split folders.

  Directory entries only (no stat per file), so a split folder of a million
  images is listed in well under a second.
  """
  class_dirs, images = [], []
  split_dirs = []
  entries = list_entries(root)
  for name, is_dir in entries:
    if is_dir:
      (split_dirs if splits_lib.canonical_split(name) else class_dirs).append(
          name)
  images.extend(_first_images(entries, ""))
  for split_dir in split_dirs:
    entries = list_entries(os.path.join(root, split_dir))
    class_dirs.extend(f"{split_dir}/{n}" for n, is_dir in entries if is_dir)
    images.extend(_first_images(entries, split_dir + "/"))
  return TopLevel(tuple(sorted(class_dirs)), tuple(sorted(images)))


def _first_images(entries: list[tuple[str, bool]], prefix: str) -> list[str]:
  names = (n for n, is_dir in entries if not is_dir
           and n[n.rfind("."):].lower() in IMAGE_EXTENSIONS)
  return [prefix + n for n in heapq.nsmallest(_EVIDENCE, names)]


def list_entries(folder: str) -> list[tuple[str, bool]]:
  """(name, is a folder) of the entries of `folder`, unsorted, hidden ones
  left out; [] when it cannot be listed (the reader says why). From the
  directory entries alone (no stat per file)."""
  out = []
  try:
    with os.scandir(folder) as it:
      for entry in it:
        name = entry.name
        if name[0] == "." or name in _IGNORED_NAMES:  # is_hidden, inlined.
          continue
        try:
          out.append((name, entry.is_dir()))
        except OSError:
          continue
  except OSError:
    return []
  return out


_YOLO_FILES = {"data.yaml": "a YOLO dataset file",
               "data.yml": "a YOLO dataset file",
               "dataset.yaml": "a YOLO dataset file",
               "obj.data": "a Darknet YOLO dataset file",
               "obj.names": "a Darknet YOLO class list",
               "classes.txt": "a YOLO class list"}
_METADATA_FILES = {"metadata.jsonl", "metadata.csv", "metadata.parquet"}
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")
_TFRECORD_EXTENSIONS = (".tfrecord", ".tfrecords", ".record")
_PER_IMAGE = {".txt": ("yolo", "a YOLO label file beside its image"),
              ".json": ("labelme", "a per-image JSON annotation (LabelMe)"),
              ".xml": ("voc", "a per-image XML annotation (Pascal VOC)")}


def annotation_artefacts(rels: Sequence[str]) -> list[Artefact]:
  """The files among `rels` (relative paths, posix separators) that are
  annotations, by name alone: a YOLO `data.yaml`/`obj.data`/`obj.names`/
  `classes.txt`, a CVAT `annotations.xml`, a Roboflow `_annotations.*` or
  `_classes.csv`, a metadata file, TFRecord files, `.txt` files in a
  `labels` folder, and `.txt`/`.json`/`.xml` files named like an image
  beside them.

  Cheap on a million files: one pass over the names, no file is opened.
  """
  out = []
  stems: set[tuple[str, str]] | None = None  # (folder, stem) of images.
  for rel in rels:
    folder, _, name = rel.rpartition("/")
    lower = name.lower()
    ext = os.path.splitext(lower)[1]
    if lower in _YOLO_FILES:
      out.append(Artefact(rel, "yolo", _YOLO_FILES[lower]))
    elif lower == "annotations.xml":
      out.append(Artefact(rel, "cvat", "a CVAT for images XML file"))
    elif lower == "_classes.csv":
      out.append(Artefact(rel, "label_csv",
                          "a Roboflow classification CSV"))
    elif lower.startswith("_annotations."):
      layout = ("coco" if lower.endswith(".coco.json") else
                "csv" if lower.endswith(".csv") else "")
      out.append(Artefact(rel, layout, "a Roboflow annotation export"))
    elif lower in _METADATA_FILES:
      out.append(Artefact(rel, "metadata", "an image metadata file"))
    elif lower.endswith(_TFRECORD_EXTENSIONS) or _SHARD.search(lower):
      out.append(Artefact(rel, "tfrecord", "a TFRecord file"))
    elif ext == ".txt" and "labels" in folder.lower().split("/"):
      out.append(Artefact(rel, "yolo", "a YOLO label file (labels/ folder)"))
    elif ext in _PER_IMAGE:
      if stems is None:
        stems = {(f, os.path.splitext(n)[0]) for f, _, n in
                 (r.rpartition("/") for r in rels) if is_image_name(n)}
      if (folder, os.path.splitext(name)[0]) in stems:
        out.append(Artefact(rel, *_PER_IMAGE[ext]))
  return out


# The types a metadata column can have (`ScanResult.columns`): a scalar or a
# list (any length) of integers, floats, booleans or strings.
COLUMN_TYPES = ("int", "float", "bool", "text",
                "int_list", "float_list", "bool_list", "text_list")


@dataclasses.dataclass(kw_only=True)
class ScanResult:
  layout: str  # Human-readable description of what was detected.
  class_names: list[str]
  # A list, `FolderRecords` or `PackedRecords`.
  records: Sequence[records.ImageRecord]
  problems: list[records.Problem]
  # Keypoint names per class (COCO categories), kept in `info.metadata`.
  keypoint_names: dict[str, list[str]] = dataclasses.field(default_factory=dict)
  # COCO: {class name: [[a, b], ...]} keypoint links, numbered from 1.
  skeletons: dict[str, list[list[int]]] = dataclasses.field(default_factory=dict)
  # What else the format says of the whole dataset, kept as it is in
  # `info.metadata` (JSON values; YOLO's `flip_idx`, for example). The
  # builder stores it without knowing the format.
  metadata: dict[str, object] = dataclasses.field(default_factory=dict)
  # Metadata columns stored as features of their own: {name: type}, types
  # from `COLUMN_TYPES`, in the order they are stored; each record's
  # `columns` holds a value of every one.
  columns: dict[str, str] = dataclasses.field(default_factory=dict)

  def split_names(self) -> list[str]:
    """The split of each record, in order."""
    if isinstance(self.records, (records.FolderRecords, records.PackedRecords)):
      return self.records.split_names()  # Without making the records.
    return [r.split for r in self.records]

  def by_split(self) -> dict[str, Sequence[records.ImageRecord]]:
    """The records of each split, in input order."""
    if isinstance(self.records, (records.FolderRecords, records.PackedRecords)):
      return self.records.by_split()
    out: dict[str, list[records.ImageRecord]] = {}
    for r in self.records:
      out.setdefault(r.split, []).append(r)
    return out


@dataclasses.dataclass(frozen=True)
class Labels:
  path: str
  names: list[str]


def list_dir(path: str, problems: list[records.Problem]):
  """Sorted (dirs, regular files) of `path`, hidden entries left out."""
  dirs, files = [], []
  try:
    entries = sorted(os.scandir(path), key=lambda e: e.name)
  except OSError as e:
    raise records.InputError(f"{path}: cannot list the folder: {e}") from None
  for entry in entries:
    if is_hidden(entry.name):
      continue
    try:
      if entry.is_dir():
        dirs.append(entry.path)
      elif entry.is_file():
        files.append(entry.path)
      elif entry.is_symlink():
        problems.append(records.Problem(
            file=entry.path, reason="broken symbolic link"))
      else:
        problems.append(records.Problem(
            file=entry.path,
            reason="not a regular file (device, socket or pipe)"))
    except OSError as e:
      problems.append(records.Problem(file=entry.path, reason=f"cannot stat: {e}"))
  return dirs, files


def walk_files(
    top: str, root: str, problems: list[records.Problem], split: str | None
) -> list[str]:
  """Every regular file below `top`, as paths relative to `root`, sorted.

  `top` is `root` or a folder below it, as `os.path.join` makes it. Safe
  symlinks only are followed: one whose target lies outside `root`, or a
  folder seen before (a symlink loop), is reported and not followed.
  Relative paths use the OS separator.
  """
  real_root = os.path.realpath(root)
  prefix_len = len(root if root.endswith(os.sep) else root + os.sep)
  out: list[str] = []
  reported = 0  # Files already counted in the progress bar.
  seen_dirs: set[tuple[int, int]] = set()
  stack = [top]
  while stack:
    folder = stack.pop()
    try:
      st = os.stat(folder)
    except OSError as e:
      problems.append(records.Problem(
          file=folder, split=split or "", reason=f"cannot read folder: {e}"))
      continue
    if (st.st_dev, st.st_ino) in seen_dirs:
      problems.append(records.Problem(
          file=folder, split=split or "", kind="warning", counts_as_input=False,
          reason="symbolic link loop: folder already read, not read again"))
      continue
    seen_dirs.add((st.st_dev, st.st_ino))
    try:
      with os.scandir(folder) as it:
        # The common case first, at C speed: regular files, from the file
        # type in the directory entry itself (d_type), with no stat call per
        # file, as `find -type f` does. Everything else is looked at below.
        others = []
        names = [e.name for e in it
                 if e.is_file(follow_symlinks=False) or others.append(e)]
    except OSError as e:
      problems.append(records.Problem(
          file=folder, split=split or "", reason=f"cannot list folder: {e}"))
      continue
    # Hidden files are rare: one search of the joined names says whether
    # any is there.
    joined = "\n" + "\n".join(names) + "\n"
    if "\n." in joined or any(
        f"\n{name}\n" in joined for name in _IGNORED_NAMES):
      names = [name for name in names if not is_hidden(name)]
    rel_folder = folder[prefix_len:] + os.sep if len(folder) > prefix_len else ""
    out.extend(map(rel_folder.__add__, names))
    subdirs = []
    for entry in sorted(others, key=lambda e: e.name):
      name = entry.name
      if name[0] == "." or name in _IGNORED_NAMES:  # is_hidden, inlined.
        continue
      path = entry.path
      try:
        if entry.is_dir(follow_symlinks=False):
          subdirs.append(path)
          continue
        if entry.is_symlink():
          real = os.path.realpath(path)
          if os.path.commonpath([real, real_root]) != real_root:
            problems.append(records.Problem(
                file=path, split=split or "",
                reason=f"symbolic link points outside the data folder ({real}):"
                " refused"))
            continue
        mode = entry.stat().st_mode  # Follows symlinks.
      except FileNotFoundError:
        problems.append(records.Problem(
            file=path, split=split or "", reason="broken symbolic link"))
        continue
      except OSError as e:
        problems.append(records.Problem(
            file=path, split=split or "", reason=f"cannot stat: {e}"))
        continue
      if stat.S_ISDIR(mode):
        subdirs.append(path)
      elif stat.S_ISREG(mode):
        out.append(path[prefix_len:])
      else:
        problems.append(records.Problem(
            file=path, split=split or "",
            reason="not a regular file (device, socket or pipe)"))
    stack.extend(reversed(subdirs))
    if _progress is not None:
      _progress.update(len(out) - reported)
      reported = len(out)
  out.sort()
  return out


def read_labels_file(root: str, labels_file: str | None) -> Labels | None:
  """The labels file (one class per line, index = line number from 0)."""
  if labels_file is None:
    path = os.path.join(root, "labels.txt")
    if not os.path.isfile(path):
      return None
  else:
    path = labels_file if os.path.isabs(labels_file) else os.path.join(
        root, labels_file)
    if not os.path.isfile(path):
      raise records.InputError(f"{path}: labels file not found")
  try:
    with open(path, encoding="utf-8") as f:
      lines = f.read().splitlines()
  except UnicodeDecodeError as e:
    raise records.InputError(f"{path}: labels file is not UTF-8 text: {e}")
  while lines and not lines[-1].strip():
    lines.pop()
  names = []
  for number, line in enumerate(lines, start=1):
    name = line.strip()
    if not name:
      raise records.InputError(
          f"{path}:{number}: empty line inside the labels file (the line"
          " number is the class index, so blank lines are ambiguous)")
    if name in names:
      raise records.InputError(
          f"{path}:{number}: class {name!r} is listed twice")
    names.append(name)
  if not names:
    raise records.InputError(f"{path}: labels file lists no class")
  return Labels(path=path, names=names)


def first_key(path: str) -> str | None:
  """The first key of a JSON file holding an object (None for a list, or a
  file that is not JSON)."""
  # `basic_parse`, not `parse`: `parse` builds the path of every level of the
  # first 64 KB at once, which a deeply nested file turns into gigabytes.
  try:
    with open(path, "rb") as f:
      for event, value in ijson.basic_parse(f, use_float=True):
        if event == "map_key":
          return value
        if event != "start_map":
          return None
  except (ijson.JSONError, OSError):
    return None
  return None


# JSON nested deeper than this is refused before it is parsed: ijson's C
# backend (`ijson.items`) keeps the path of every open level, so its memory
# grows with the square of the depth (a 200 KB file nested 100,000 deep took
# all 23 GB of this machine). Annotation files nest a few levels.
MAX_JSON_DEPTH = 256


def check_json_depth(path: str, limit: int = MAX_JSON_DEPTH) -> None:
  """Raises `InputError` when the JSON file `path` nests deeper than `limit`.

  Once per file version (layout detection and the reader both ask), in
  NumPy passes over 1 MiB chunks of the bytes (`_chunk_depths`): ijson's
  basic parser, which keeps no paths either, costs more than parsing the
  items themselves (1.3 s against 0.8 s for a 42 MB Label Studio export).
  Invalid JSON is left to the reader's own parse, which says where it is.
  """
  st = os.stat(path)
  version = (st.st_mtime_ns, st.st_size, limit)
  if _depth_checked.get(path) == version:
    return
  state = (0, 0, 0)  # Depth, inside a string (0/1), backslashes at the end.
  offset = 0
  with open(path, "rb") as f:
    while chunk := f.read(1 << 20):
      where, depths, state = _chunk_depths(chunk, state)
      if depths.size and int(depths.max()) > limit:
        at = offset + int(where[np.argmax(depths > limit)])
        raise records.InputError(
            f"{path}: JSON nested more than {limit} levels deep (near byte"
            f" {at:,}): refused, annotations nest a few levels")
      offset += len(chunk)
  _depth_checked[path] = version


def _chunk_depths(chunk: bytes, state: tuple[int, int, int]):
  """(offsets of the brackets of `chunk` outside strings, the depth after
  each, the state after the chunk).

  A quote ends or starts a string unless an odd number of backslashes comes
  before it (in this chunk or at the end of the one before: `state`). The
  bytes of JSON's syntax never occur inside a UTF-8 multi-byte character,
  so bytes are enough.
  """
  depth, in_string, backslashes = state
  a = np.frombuffer(chunk, np.uint8)
  n = a.size
  quotes = np.flatnonzero(a == 0x22)
  if b"\\" in chunk:
    # The last byte at or before i that is not a backslash (-1: none).
    last_other = np.where(a == 0x5C, -1, np.arange(n, dtype=np.int32))
    np.maximum.accumulate(last_other, out=last_other)
    before = np.where(quotes > 0, last_other[np.maximum(quotes - 1, 0)], -1)
    run = np.where(before >= 0, quotes - 1 - before, quotes + backslashes)
    quotes = quotes[run % 2 == 0]
    tail = int(last_other[-1])
    backslashes = backslashes + n if tail < 0 else n - 1 - tail
  else:
    if backslashes % 2 and quotes.size and quotes[0] == 0:
      quotes = quotes[1:]  # Escaped by the backslashes ending the last chunk.
    backslashes = 0
  opening = a == 0x5B
  opening |= a == 0x7B
  closing = a == 0x5D
  closing |= a == 0x7D
  where = np.flatnonzero(opening | closing)
  # Inside a string when an odd number of quotes comes before (with the
  # string the last chunk ended in).
  outside = ((np.searchsorted(quotes, where) + in_string) & 1) == 0
  where = where[outside]
  step = np.where(opening[where], 1, -1)
  depths = np.cumsum(step, dtype=np.int64) + depth
  if depths.size:
    depth = int(depths[-1])
  in_string = (in_string + quotes.size) & 1
  return where, depths, (depth, in_string, backslashes)


_depth_checked: dict[str, tuple[int, int, int]] = {}
