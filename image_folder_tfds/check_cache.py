"""The check cache: what checking an image found, reused by later builds.

Checking an image (decode it whole, `images.load_image`) is most of a build's
time. Its result depends only on the file's bytes, the image options and the
code, so a later build (of any version) that meets the same bytes under the
same options and code reuses it instead of decoding again.

An entry is keyed by

* the sha256 of the file's bytes: the worker reads the bytes anyway (they go
  into the shard), and hashing them costs ~5% of a check (9 us against ~180 us
  for a 16 KB JPEG). A stat fingerprint (size, mtime, inode) would miss a file
  rewritten in place with its size and mtime restored, so none is used;
* a namespace: the sha256 of everything else the result depends on: the
  `ImageOptions` fields (`max_side`, `max_image_pixels`, `keep_bytes` =
  `store_images`), the output format, the versions of this package, Pillow and
  NumPy, the source of `images.py`, and the cache format.

What an entry holds: the verdict (the rejection reason), or the stored
image's format, sizes and notes for an image stored as it is, whose bytes are
the file's own. Converted bytes are not kept (they would make the cache as big
as the data): an image that is converted when its bytes are stored is checked
and converted again by every build.

The store is one SQLite file (`checks-v1.sqlite`) in the cache folder: SQLite
commits atomically (a killed build leaves only whole transactions), its locks
let builds share a cache, and each row carries a checksum of its namespace,
key and value, so a damaged row is detected, not trusted. A cache that cannot
be opened, fails SQLite's `quick_check`, or was written by another cache
format is ignored for the whole build, with a warning; a damaged row is one
miss, with a warning. A fault of the cache never fails a build.

Who writes: each worker process adds the entries of the images it checked,
one transaction per chunk (`Lookup.add`), so the build process only counts
them (`Cache.record`); entries of images checked in the build process itself
are added by it (`Cache.flush`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
import sys
import time

from image_folder_tfds import images as images_lib

FORMAT = 1
FILE_NAME = f"checks-v{FORMAT}.sqlite"
DIR_NAME = ".check_cache"  # Next to the version folders of a config.
PACKAGE_VERSION = "0.1.0"  # Kept equal to pyproject.toml (a test checks).
_SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_MS = 30_000  # How long a build waits for another one's write lock.
# New entries are written in one transaction per this many, or per this many
# seconds: a build that is killed keeps most of what it checked.
_FLUSH_EVERY = 2048
_FLUSH_SECONDS = 2.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
    # What a namespace stands for, in words (for the warning when none match).
    "CREATE TABLE IF NOT EXISTS namespaces (id INTEGER PRIMARY KEY,"
    " ns BLOB UNIQUE NOT NULL, description TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS checks (ns INTEGER NOT NULL,"
    " digest BLOB NOT NULL, value BLOB NOT NULL, sum BLOB NOT NULL,"
    " PRIMARY KEY (ns, digest)) WITHOUT ROWID",
)


def default_dir(config_dir: str) -> str:
  """`DATA_DIR/my_images/<config>/.check_cache`: shared by all versions."""
  return os.path.join(config_dir, DIR_NAME)


def namespace_of(options: images_lib.ImageOptions,
                 output_format: str) -> tuple[bytes, str]:
  """(namespace, its description) for a build's image options."""
  import numpy  # pylint: disable=g-import-not-at-top
  import PIL  # pylint: disable=g-import-not-at-top
  with open(images_lib.__file__, "rb") as f:
    code = hashlib.sha256(f.read()).hexdigest()
  described = {
      "cache_format": FORMAT,
      "image_folder_tfds": PACKAGE_VERSION,
      "images.py": code[:16],
      "pillow": PIL.__version__,
      "numpy": numpy.__version__,
      "options": dataclasses.asdict(options),
      "output_format": output_format,
  }
  text = json.dumps(described, sort_keys=True)
  return hashlib.sha256(text.encode()).digest(), text


def digest(data: bytes) -> bytes:
  return hashlib.sha256(data).digest()


def _sum(ns: bytes, key: bytes, value: bytes) -> bytes:
  return hashlib.sha256(
      len(ns).to_bytes(2, "big") + ns + key + value).digest()[:16]


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
  """Where a worker finds the cache (crosses the pipe to workers)."""

  path: str
  ns: bytes
  ns_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
  """What the cache did for one image.

  reused: the check was not run (the entry said it all).
  key, value: the entry a miss adds (None when there is nothing to add).
  fault: why an entry could not be used (a damaged row, a broken file).
  added: the worker that checked the image added its entry itself
  (`Lookup.add`; `value` is then None: nothing is left to add).
  """

  reused: bool
  key: bytes | None = None
  value: bytes | None = None
  fault: str = ""
  added: bool = False


# --- Entries ----------------------------------------------------------------


def entry(data: bytes, image: images_lib.LoadedImage | None,
          reason: str | None, options: images_lib.ImageOptions) -> bytes | None:
  """The value to cache for a check of `data`, or None (nothing to reuse).

  `image` is what `load_image` returned, or None with the `reason` it raised.
  An image whose stored bytes are not the file's (converted) is cacheable
  only when no bytes are stored.
  """
  if image is None:
    return json.dumps({"rejected": reason}).encode()
  # With bytes stored, only an image stored as the file's own bytes is
  # cacheable; without, every image is (its bytes are never needed).
  kept = options.keep_bytes and image.data == data
  if options.keep_bytes and not kept:
    return None
  return json.dumps({
      "kept": kept, "format": image.format,
      "source_format": image.source_format, "width": image.width,
      "height": image.height, "display_width": image.display_width,
      "display_height": image.display_height, "notes": list(image.notes),
      "orientation": image.orientation,  # Masks are turned by it (masks.py).
  }).encode()


_INT_FIELDS = ("width", "height", "display_width", "display_height")


def decode(value: bytes, data: bytes, options: images_lib.ImageOptions
           ) -> images_lib.LoadedImage | str:
  """The cached result: the image, or the rejection reason (a str).

  Raises ValueError when the value is not a well-formed entry.
  """
  obj = json.loads(value)
  if not isinstance(obj, dict):
    raise ValueError("not an object")
  if "rejected" in obj:
    if not isinstance(obj["rejected"], str) or len(obj) != 1:
      raise ValueError("bad rejection")
    return obj["rejected"]
  kept = obj.get("kept")
  if kept is not True and (kept is not False or options.keep_bytes):
    raise ValueError("converted bytes are not cached")
  if not all(isinstance(obj.get(k), int) and obj[k] > 0 for k in _INT_FIELDS):
    raise ValueError("bad sizes")
  notes = obj.get("notes")
  if not (isinstance(obj.get("format"), str)
          and isinstance(obj.get("source_format"), str)
          and isinstance(notes, list) and all(isinstance(n, str) for n in notes)):
    raise ValueError("bad fields")
  orientation = obj.get("orientation")
  if orientation is not None and (type(orientation) is not int
                                  or not 2 <= orientation <= 8):
    raise ValueError("bad orientation")
  return images_lib.LoadedImage(
      data=data if options.keep_bytes else None, format=obj["format"],
      source_format=obj["source_format"], width=obj["width"],
      height=obj["height"], display_width=obj["display_width"],
      display_height=obj["display_height"], notes=tuple(notes),
      orientation=orientation)


def verify(path: str) -> list[str]:
  """Problems of the cache file `path` (SQLite's, and rows whose checksum
  fails); empty when every row is intact."""
  try:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
      problems = [r for (r,) in conn.execute("PRAGMA integrity_check")
                  if r != "ok"]
      namespaces = dict(conn.execute("SELECT id, ns FROM namespaces"))
      for ns_id, key, value, checksum in conn.execute("SELECT * FROM checks"):
        if ns_id not in namespaces:
          problems.append(f"row {key.hex()}: unknown namespace {ns_id}")
        elif checksum != _sum(namespaces[ns_id], key, value):
          problems.append(f"row {key.hex()}: checksum fails")
    finally:
      conn.close()
  except sqlite3.Error as e:
    problems = [f"{path}: {e}"]
  return problems


# --- Reading (workers) --------------------------------------------------------


class Lookup:
  """A worker's side, one per process: `get` the entry for some bytes, `add`
  the entries of the images it checked.

  A broken file found mid-build turns the lookup off (every later image is a
  miss) and the fault is told once, with the next result; a failed `add`
  turns adding off (the build's `Cache` adds nothing more either way).
  """

  def __init__(self, spec: Spec):
    self.spec = spec
    self._conn: sqlite3.Connection | None = None
    self._off = False
    self._no_adds = False
    self._untold = ""

  def _connection(self) -> sqlite3.Connection:
    if self._conn is None:
      self._conn = sqlite3.connect(
          f"file:{self.spec.path}", uri=True, timeout=_BUSY_MS / 1000,
          isolation_level=None, check_same_thread=False)
    return self._conn

  def _turn_off(self, e: sqlite3.Error) -> str:
    self._off = True
    return (f"check cache {self.spec.path}: unreadable ({e}); the rest of this"
            " build checks every image")

  @contextlib.contextmanager
  def batch(self):
    """One read transaction around a chunk's lookups (~12 us a lookup
    instead of ~18 us, each in its own)."""
    conn = None
    if not self._off:
      try:
        conn = self._connection()
        conn.execute("BEGIN")
      except sqlite3.Error as e:
        self._untold = self._turn_off(e)
        conn = None
    try:
      yield
    finally:
      if conn is not None and conn.in_transaction:
        try:
          conn.execute("COMMIT")  # Ends the read; nothing was written.
        except sqlite3.Error as e:
          self._untold = self._turn_off(e)

  def get(self, key: bytes) -> tuple[bytes | None, str]:
    """(value or None, fault)."""
    fault, self._untold = self._untold, ""
    if self._off:
      return None, fault
    try:
      row = self._connection().execute(
          "SELECT value, sum FROM checks WHERE ns = ? AND digest = ?",
          (self.spec.ns_id, key)).fetchone()
    except sqlite3.Error as e:
      return None, self._turn_off(e)
    if row is None:
      return None, fault
    value, checksum = row
    if not isinstance(value, bytes) or checksum != _sum(self.spec.ns, key, value):
      return None, (f"check cache {self.spec.path}: an entry failed its"
                    " checksum (ignored, the image is checked)")
    return value, fault

  def add(self, entries: list[tuple[bytes, bytes]]) -> bool:
    """Adds (key, value) entries in one transaction; whether they were.

    Outside `batch` (whose read transaction must end first)."""
    if self._off or self._no_adds or not entries:
      return False
    rows = [(self.spec.ns_id, key, value, _sum(self.spec.ns, key, value))
            for key, value in entries]
    try:
      conn = self._connection()
      with conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR IGNORE INTO checks VALUES (?, ?, ?, ?)",
                         rows)
    except sqlite3.Error as e:
      self._no_adds = True
      self._untold = (f"check cache {self.spec.path}: could not add results"
                      f" ({e}): this build adds no more")
      return False
    return True

  def close(self) -> None:
    if self._conn is not None:
      self._conn.close()
      self._conn = None


# --- The build's side -----------------------------------------------------------


class Cache:
  """The build's handle: opens (or creates) the cache, adds entries, counts."""

  def __init__(self, directory: str, ns: bytes, description: str):
    self.directory = directory
    self.path = os.path.join(directory, FILE_NAME)
    self.ns = ns
    self.description = description
    self.spec: Spec | None = None  # None: the cache is off for this build.
    self.reused = 0
    self.checked = 0
    self.added = 0
    self.warnings: list[str] = []
    self._pending: list[tuple[int, bytes, bytes, bytes]] = []
    self._conn: sqlite3.Connection | None = None
    self._flushed = time.monotonic()
    try:
      self._open()
    except (sqlite3.Error, OSError, ValueError) as e:
      self._fail(f"check cache {self.path} is not usable ({e}): it is ignored"
                 f" and every image is checked; delete {directory} to start a"
                 " new one")

  def _fail(self, message: str) -> None:
    self.warn(message)
    self.spec = None
    if self._conn is not None:
      self._conn.close()
      self._conn = None
    self._pending.clear()

  def warn(self, message: str) -> None:
    if message not in self.warnings:
      self.warnings.append(message)
      print(f"WARNING: {message}", file=sys.stderr)

  def _open(self) -> None:
    os.makedirs(self.directory, exist_ok=True)
    if os.path.exists(self.path) and os.path.getsize(self.path):
      with open(self.path, "rb") as f:
        if f.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
          raise ValueError("not an SQLite database")
    conn = self._conn = sqlite3.connect(
        self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
    if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
      raise ValueError("SQLite cannot use its write-ahead log here")
    conn.execute("PRAGMA synchronous=NORMAL")
    if (check := conn.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
      raise ValueError(f"SQLite quick_check: {check}")
    conn.execute("BEGIN IMMEDIATE")
    try:
      for statement in _SCHEMA:
        conn.execute(statement)
      conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)",
                   (str(FORMAT),))
      (fmt,) = conn.execute(
          "SELECT value FROM meta WHERE key = 'format'").fetchone()
      if fmt != str(FORMAT):
        raise ValueError(f"written by cache format {fmt}, this is {FORMAT}")
      row = conn.execute("SELECT id FROM namespaces WHERE ns = ?",
                         (self.ns,)).fetchone()
      if row is None:
        others = [d for (d,) in conn.execute(
            "SELECT description FROM namespaces ORDER BY id")]
        if others:
          self.warn(
              f"check cache {self.path}: its {len(others)} earlier result"
              " set(s) were made with other options or another version of"
              f" the code (last: {others[-1]}; now: {self.description}):"
              " they are not used")
        row = (conn.execute(
            "INSERT INTO namespaces (ns, description) VALUES (?, ?)",
            (self.ns, self.description)).lastrowid,)
      conn.execute("COMMIT")
    except BaseException:
      conn.execute("ROLLBACK")
      raise
    self.spec = Spec(self.path, self.ns, row[0])

  def record(self, result: Result | None) -> None:
    """Counts one image's result and keeps its new entry."""
    if result is None:
      return
    if result.fault:
      self.warn(result.fault)
    if result.reused:
      self.reused += 1
      return
    self.checked += 1
    if result.added:  # By the worker that checked it (`Lookup.add`).
      self.added += 1
      return
    if result.value is not None and self.spec is not None:
      self._pending.append((self.spec.ns_id, result.key, result.value,
                            _sum(self.ns, result.key, result.value)))
      if (len(self._pending) >= _FLUSH_EVERY
          or time.monotonic() - self._flushed > _FLUSH_SECONDS):
        self.flush()

  def flush(self) -> None:
    """Writes the pending entries in one transaction."""
    self._flushed = time.monotonic()
    if not self._pending or self._conn is None:
      return
    try:
      with self._conn:
        self._conn.execute("BEGIN IMMEDIATE")
        self._conn.executemany(
            "INSERT OR IGNORE INTO checks VALUES (?, ?, ?, ?)", self._pending)
    except sqlite3.Error as e:
      self._fail(f"check cache {self.path}: could not add results ({e}):"
                 " this build adds no more")
      return
    self.added += len(self._pending)
    self._pending.clear()

  def close(self) -> None:
    self.flush()
    if self._conn is not None:
      self._conn.close()
      self._conn = None

  def stats(self) -> dict:
    """For the build report (build-specific, see README). Not the folder:
    two builds that found the same in their caches report the same."""
    return {"used": self.spec is not None,
            "reused": self.reused, "checked": self.checked,
            "added": self.added, "warnings": list(self.warnings)}

  def summary(self) -> str:
    state = "" if self.spec is not None else " (not usable: see the warning)"
    return (f"  check cache{state}: {self.reused} images reused,"
            f" {self.checked} checked ({self.directory})")
