"""Nothing half-written: a build lock, orphan cleanup, clear output errors.

TFDS writes a build into `<config>/incomplete.XXXXXX_<version>/` and renames it
to `<config>/<version>/` when it is complete, so readers never see a partial
dataset. What TFDS 4.9.10 does not do (measured here):

* a build killed with `kill -9` leaves its `incomplete.*` folder behind for
  ever, and every rerun starts a new one beside it;
* two builds of the same version into one `data_dir` both generate everything;
  the second one's final rename then fails with a bare `FileExistsError:
  Cannot rename .../incomplete.XXXXXX_1.0.0. Destination .../1.0.0 already
  exists`;
* a full or read-only `data_dir` ends in a traceback from deep inside the
  writer.

`exclusive_build` fixes these around `download_and_prepare`: it takes an
exclusive `fcntl.flock` on `<config>/.<version>.lock` (the kernel releases it
when the holder dies, however it dies, so a held lock always means a live
build), waits for a running build of the same version instead of racing it,
removes `incomplete.*` folders whose build is dead, and turns "no space left"
and "read-only" into one clear error.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator

# TFDS's temporary build folder: `incomplete.` + 6 characters + `_<version>`
# (tensorflow_datasets/core/utils/file_utils.py, `_get_incomplete_dir`).
_ORPHAN = re.compile(r"^incomplete\.[A-Z0-9]{6}_(?P<version>[^/]+)$")
_OUTPUT_ERRNOS = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}
# TensorFlow's file system reports the same conditions as text, not errno.
_OUTPUT_MESSAGES = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}


class BuildLockedError(RuntimeError):
  """Another live build holds the lock of this dataset version."""


class OutputError(OSError):
  """The dataset could not be written to `data_dir` (full, read-only, ...)."""


def lock_path(version_dir: str) -> str:
  """`<data_dir>/my_images/<config>/.<version>.lock`."""
  version_dir = os.path.normpath(os.fspath(version_dir))
  parent, version = os.path.split(version_dir)
  return os.path.join(parent, f".{version}.lock")


def is_local(path) -> bool:
  """Locks and cleanup work on local (POSIX) paths, not on `gs://...`."""
  return "://" not in os.fspath(path)


def _holder(fd: int) -> str:
  """Who holds the lock, as written in the lock file by its holder."""
  try:
    info = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
  except (OSError, ValueError):
    return "a build whose lock file cannot be read"
  if not info:
    return "a build that has not written its id yet"
  return (f"pid {info.get('pid')} on {info.get('host')}, started"
          f" {info.get('started')}")


@contextlib.contextmanager
def build_lock(version_dir: str, *, wait: bool = True,
               log=None) -> Iterator[bool | None]:
  """Holds the exclusive build lock of `version_dir`; yields True if it waited.

  With `wait=False`, raises `BuildLockedError` when another build holds it.
  Yields None where the file system has no locks (nothing is locked).
  """
  log = log or _log
  path = lock_path(version_dir)
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
  except OSError as e:
    raise (output_error(e, path, "cannot create the build lock") or e) from e
  waited = False
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = _holder(fd)
      if not wait:
        raise BuildLockedError(
            f"{version_dir}: another build of this dataset version is running"
            f" ({holder}; lock {path})") from None
      log(f"my_images: another build of {version_dir} is running ({holder});"
          f" waiting for it to finish (lock: {path})")
      waited = True
      fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as e:
      if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
        raise
      log(f"my_images: {path}: this file system has no file locks ({e});"
          " building without a lock, and unfinished folders of crashed builds"
          " are left in place")
      yield None
      return
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, json.dumps({
          "pid": os.getpid(), "host": socket.gethostname(),
          "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
      }).encode("utf-8"), 0)
    except OSError as e:
      raise (output_error(e, path, "cannot write the build lock") or e) from e
    yield waited
  finally:
    # Closing releases the lock. The file stays: deleting a lock file races
    # with a build that has just opened it.
    os.close(fd)


def remove_orphans(version_dir: str, *, log=None) -> list[str]:
  """Removes `incomplete.*` build folders next to `version_dir` whose build
  is dead. Call with the lock of `version_dir` held.

  A folder of this version is dead because we hold its lock; a folder of
  another version only when its lock can be taken now (no live build).
  """
  log = log or _log
  version_dir = os.path.normpath(os.fspath(version_dir))
  parent, own_version = os.path.split(version_dir)
  try:
    names = sorted(os.listdir(parent))
  except FileNotFoundError:
    return []
  by_version: dict[str, list[str]] = {}
  for name in names:
    m = _ORPHAN.match(name)
    if m and os.path.isdir(os.path.join(parent, name)):
      by_version.setdefault(m.group("version"), []).append(name)
  removed = []
  for version, folders in sorted(by_version.items()):
    if version == own_version:
      held = contextlib.nullcontext()
    else:
      held = build_lock(os.path.join(parent, version), wait=False, log=log)
    try:
      with held as locked:
        if locked is None and version != own_version:
          continue  # No locks on this file system: leave them.
        for name in folders:
          shutil.rmtree(os.path.join(parent, name))
          removed.append(os.path.join(parent, name))
    except BuildLockedError:
      continue  # A live build of that version owns them.
  if removed:
    log(f"my_images: removed {len(removed)} unfinished folder(s) of crashed"
        f" builds: {', '.join(removed)}")
  return removed


def output_error(e: BaseException, where, doing: str) -> OutputError | None:
  """A clear `OutputError` when `e` (or its cause) is a full or unwritable
  output; None for any other error."""
  code = _output_errno(e, os.fspath(where))
  if code is None:
    return None
  return OutputError(
      code,
      f"{where}: {doing}: {_OUTPUT_ERRNOS[code]}. Nothing was kept: the"
      " unfinished build folder was removed. Free some space or pick a"
      " writable --data_dir, then run the same command again.")


def _output_errno(e: BaseException | None, where: str) -> int | None:
  """The errno of a write failure under `where` found in `e`'s chain.

  A full or read-only disk is always about the output (inputs are only
  read); "permission denied" only when it names a path under `where`, since
  an unreadable input file raises it too.
  """
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    code = None
    if isinstance(e, OSError) and e.errno in _OUTPUT_ERRNOS:
      code = e.errno
    else:
      code = next((c for m, c in _OUTPUT_MESSAGES.items() if m in str(e)),
                  None)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
      return code
    if code is not None and where in f"{getattr(e, 'filename', '')} {e}":
      return code
    e = e.__cause__ or e.__context__
  return None


@contextlib.contextmanager
def exclusive_build(version_dir, data_dir_root) -> Iterator[bool]:
  """Around TFDS's `download_and_prepare`: lock, clean orphans, clear errors.

  Yields True when this build waited for another one (which may have built
  the dataset meanwhile).
  """
  version_dir = os.fspath(version_dir)
  if not is_local(version_dir):
    yield False  # No flock on remote file systems: TFDS's behaviour only.
    return
  with build_lock(version_dir) as waited:
    if waited is not None:
      remove_orphans(version_dir)
    try:
      yield waited
    except OutputError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      error = output_error(e, data_dir_root,
                           f"cannot write the dataset into {version_dir}")
      if error is None:
        raise
      raise error from e


def _log(message: str) -> None:
  print(message, file=sys.stderr, flush=True)
