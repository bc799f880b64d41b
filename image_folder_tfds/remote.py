"""Remote sources: a `.tar.gz`/`.tgz`/`.tar`/`.zip` of class folders at a URL.

The archive is downloaded and extracted by the TFDS download manager, so its
size and sha256 are recorded by `tfds build --register_checksums` (in
`checksums_path()`) and checked on every later build: a mismatch fails with
TFDS's `NonMatchingChecksumError`, which names the expected and the computed
checksum. Before extraction, every entry of the archive is checked here.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import stat
import sys
import tarfile
import zipfile

from etils import epath
from tensorflow_datasets.core.download import checksums as checksums_lib
from tensorflow_datasets.core.download import util as download_utils

from image_folder_tfds import records
from image_folder_tfds.readers import common

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
CHECKSUMS_FILE = "checksums.tsv"
# Overrides where checksums are recorded and read (a folder).
CHECKSUMS_DIR_ENV = "IMAGE_FOLDER_TFDS_CHECKSUMS_DIR"


class UnsafeArchiveError(records.InputError):
  """An archive entry would land outside the extraction folder."""


def checksums_path(code_path: epath.Path | None) -> epath.Path | None:
  """Where `--register_checksums` writes and every build reads checksums.

  1. `$IMAGE_FOLDER_TFDS_CHECKSUMS_DIR/checksums.tsv` when that is set;
  2. `<checkout>/checksums/checksums.tsv` when the package runs from a
     checkout (the folder next to `pyproject.toml`);
  3. otherwise TFDS's default, next to the builder module: for a pip-installed
     package `<site-packages>/image_folder_tfds/checksums.tsv`.
  """
  if env := os.environ.get(CHECKSUMS_DIR_ENV):
    return epath.Path(env) / CHECKSUMS_FILE
  if code_path is None:
    return None
  package_dir = epath.Path(code_path).parent
  checkout = package_dir.parent
  if (checkout / "pyproject.toml").exists() and (checkout / "checksums").is_dir():
    return checkout / "checksums" / CHECKSUMS_FILE
  return package_dir / CHECKSUMS_FILE


def load_url_infos(path: epath.Path | None):
  """The registered `{url: UrlInfo}`, or None when nothing is registered."""
  if path is None or not path.exists():
    return None
  return checksums_lib.load_url_infos(path)


def check_url(url: str) -> None:
  """Fails early for a URL that is not an archive we can extract."""
  path = url.split("?", 1)[0].split("#", 1)[0].lower()
  if not path.endswith(ARCHIVE_SUFFIXES):
    raise records.InputError(
        f"source_url={url!r}: expected an archive of class folders ending in"
        f" {', '.join(ARCHIVE_SUFFIXES)}")


@dataclasses.dataclass(frozen=True)
class Source:
  """A downloaded, checked and extracted archive."""

  url: str
  root: str  # The folder holding the class folders.
  size: int
  sha256: str
  registered: bool  # Its checksum is in checksums.tsv (and was checked).

  def __str__(self) -> str:
    note = "" if self.registered else "; checksum not registered"
    return f"{self.url} ({self.size} bytes, sha256 {self.sha256}{note})"


def download_and_extract(dl_manager, url: str, url_infos=None) -> Source:
  """Downloads `url` (checksums checked by TFDS), checks it, extracts it.

  The data folder is the extraction folder, or its single top-level folder
  (`flower_photos.tgz` holds `flower_photos/`). `url_infos` are the
  registered checksums: an archive without one is used with a warning.
  """
  check_url(url)
  import requests  # pylint: disable=g-import-not-at-top  # ~50 ms: only here.
  try:
    archive = epath.Path(dl_manager.download(url))
  except (requests.exceptions.RequestException, download_utils.DownloadError) as e:
    # Raised by requests/TFDS without the URL (a truncated body is
    # "Connection broken: IncompleteRead(...)").
    raise records.InputError(
        f"{url}: download failed, nothing was built: {e}") from e
  check_archive(archive, url)
  info = checksums_lib.compute_url_info(archive)
  registered = url in (url_infos or {}) or dl_manager.register_checksums
  if not registered:
    print(f"my_images: WARNING: no checksum registered for {url}: this"
          f" download ({info.size} bytes, sha256 {info.checksum}) is not"
          " verified. Run `tfds build ... --register_checksums` once to record"
          " it; later builds then check it.", file=sys.stderr)
  extracted = epath.Path(dl_manager.extract(archive))
  return Source(url=url, root=os.fspath(data_root(extracted)),
                size=int(info.size), sha256=info.checksum,
                registered=registered)


def data_root(extracted: epath.Path) -> epath.Path:
  entries = [p for p in extracted.iterdir() if not common.is_hidden(p.name)]
  if len(entries) == 1 and entries[0].is_dir():
    return entries[0]
  return extracted


def check_archive(path: epath.PathLike, url: str = "") -> None:
  """Refuses an archive with an entry that escapes the extraction folder.

  TFDS's extractor (`core/download/extractor.py`) does not write outside its
  folder, but it drops such entries *silently*: a `../x` or `/x` member is
  skipped by `_normpath`, a symlink is copied as the file it points to or
  skipped with a log line. A tampered archive must fail the build instead,
  naming the entries.
  """
  path = os.fspath(path)
  where = f"{url} ({path})" if url else path
  try:
    if zipfile.is_zipfile(path):
      bad = _zip_problems(path)
    else:
      bad = _tar_problems(path)
  except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
    raise records.InputError(
        f"{where}: not a readable .tar.gz/.tgz/.tar/.zip archive (truncated or"
        f" corrupt download?): {e}") from None
  if bad:
    shown = "; ".join(bad[:10])
    more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
    raise UnsafeArchiveError(
        f"{where}: refused, {len(bad)} archive entr"
        f"{'y' if len(bad) == 1 else 'ies'} would escape the extraction"
        f" folder: {shown}{more}")


def _is_absolute(name: str) -> bool:
  return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":")


def _escapes(name: str) -> bool:
  """True for an absolute name or one that climbs above the archive root."""
  if _is_absolute(name):
    return True
  norm = posixpath.normpath(name.replace("\\", "/"))
  return norm == ".." or norm.startswith("../")


def _link_escapes(member_name: str, target: str) -> bool:
  """True when a symlink's target, seen from its folder, is outside."""
  if _is_absolute(target):
    return True
  parent = posixpath.dirname(member_name.replace("\\", "/"))
  return _escapes(posixpath.join(parent, target))


def _tar_problems(path: str) -> list[str]:
  bad = []
  with tarfile.open(path, mode="r:*") as tar:
    for m in tar:
      if _escapes(m.name):
        bad.append(f"{m.name!r}: path outside the archive folder")
      elif m.issym() and _link_escapes(m.name, m.linkname):
        bad.append(f"{m.name!r}: symbolic link to {m.linkname!r}")
      elif m.islnk() and _escapes(m.linkname):
        bad.append(f"{m.name!r}: hard link to {m.linkname!r}")
      elif m.ischr() or m.isblk() or m.isfifo():
        bad.append(f"{m.name!r}: device or pipe entry")
  return bad


def _zip_problems(path: str) -> list[str]:
  bad = []
  with zipfile.ZipFile(path) as z:
    for info in z.infolist():
      if _escapes(info.filename):
        bad.append(f"{info.filename!r}: path outside the archive folder")
        continue
      mode = info.external_attr >> 16
      if stat.S_ISLNK(mode):
        target = z.read(info).decode("utf-8", "replace")
        if _link_escapes(info.filename, target):
          bad.append(f"{info.filename!r}: symbolic link to {target!r}")
  return bad
