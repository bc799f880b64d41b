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
* `tfds build --overwrite` deletes the finished release first (the CLI's
  `_make_builder`, before any lock, and `download_and_prepare` again), so a
  killed or failed overwrite leaves no release at all, and a second build
  started meanwhile deletes the first one's data.

`exclusive_build` fixes these around `download_and_prepare`: it takes an
exclusive `fcntl.flock` on `<config>/.<version>.lock` (the kernel releases it
when the holder dies, however it dies, so a held lock always means a live
build), waits for a running build of the same version instead of racing it,
removes `incomplete.*` folders whose build is dead, and turns "no space left"
and "read-only" into one clear error. `guard_release` and `replace_release`
make an overwrite build beside the release (`<config>/.overwrite-<version>/`)
and swap it in with one atomic `renameat2(RENAME_EXCHANGE)` once it is
complete, the lock held.
"""

from __future__ import annotations

import contextlib
import ctypes
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
# An overwrite is built into `.overwrite-<version>` (TFDS's own build folder
# for it: `incomplete.XXXXXX_.overwrite-<version>`); the release it replaces
# is swapped there and removed.
STAGING_PREFIX = ".overwrite-"
_STAGED = re.compile(r"^\.overwrite-(?P<version>[^/]+)$")
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
    m = _ORPHAN.match(name) or _STAGED.match(name)
    if m and os.path.isdir(os.path.join(parent, name)):
      version = m.group("version").removeprefix(STAGING_PREFIX)
      if (_STAGED.match(name)
          and not os.path.isdir(os.path.join(parent, version))):
        # A complete overwrite whose swap never happened (only possible
        # without `renameat2`): data, not rubbish.
        log(f"my_images: {os.path.join(parent, name)} is kept: it may be the"
            f" only copy of release {version}")
        continue
      by_version.setdefault(version, []).append(name)
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


def is_release(path) -> bool:
  """A finished dataset version folder (TFDS writes `dataset_info.json`
  last, inside its build folder, before the rename)."""
  return os.path.isfile(os.path.join(os.fspath(path), "dataset_info.json"))


def staging_dir(version_dir) -> str:
  """Where an overwrite of `version_dir` is built, beside it."""
  parent, version = os.path.split(os.path.normpath(os.fspath(version_dir)))
  return os.path.join(parent, STAGING_PREFIX + version)


def guard_release(path, log=None):
  """`path` (an `epath.Path`) whose `rmtree()` keeps a finished release.

  TFDS's `tfds build --overwrite` deletes `builder.data_path` before the
  build starts (scripts/cli/build.py `_make_builder`, without any lock) and
  `download_and_prepare` does it again. The builder's `data_path` is this
  path: such a delete is refused, logged, and the overwrite is done by
  `replace_release` once the new build is complete. Any other path (the
  children of `path`, remote paths) is the ordinary one.
  """
  if not is_local(path):
    return path
  log = log or _log

  class ReleasePath(type(path)):
    """A release folder that TFDS may not delete before its replacement."""

    def rmtree(self, *args, **kwargs):
      if os.fspath(self) == os.fspath(path) and is_release(self):
        log(f"my_images: keeping {self} until its replacement is complete"
            " (overwrite: the new build is made beside it, then swapped in)")
        return
      super().rmtree(*args, **kwargs)

  return ReleasePath(path)


def _exchange(a: str, b: str) -> bool:
  """Atomically swaps two paths (Linux `renameat2(RENAME_EXCHANGE)`).

  False where the system cannot (no such call, or the file system refuses).
  """
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = libc.renameat2
  except (OSError, AttributeError):
    return False
  at_fdcwd, rename_exchange = -100, 2
  renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
                        ctypes.c_char_p, ctypes.c_uint]
  if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b),
               rename_exchange) == 0:
    return True
  code = ctypes.get_errno()
  if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
    return False
  raise OSError(code, f"cannot swap {a} and {b}: {os.strerror(code)}")


def replace_release(staged, version_dir, *, log=None) -> None:
  """Puts the complete build `staged` in place of the release `version_dir`.

  Call with the lock of `version_dir` held. With `renameat2` the release
  path always holds a whole release, the old or the new one. Without it
  (not Linux), two renames leave it empty for an instant; a crash there
  keeps both folders (`remove_orphans` never removes a staged build whose
  release is missing).
  """
  log = log or _log
  staged, version_dir = os.fspath(staged), os.fspath(version_dir)
  if not _exchange(staged, version_dir):
    old = staged + ".replaced"
    os.rename(version_dir, old)
    os.rename(staged, version_dir)
    staged = old
  shutil.rmtree(staged)  # The old release, now replaced.
  log(f"my_images: {version_dir} replaced by the new build")


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
