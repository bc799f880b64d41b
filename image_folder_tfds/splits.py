"""Split names and the stable, hash-based split of a flat folder."""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Iterable, Mapping

CANONICAL_SPLITS = ("train", "validation", "test")
_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
    "testing": "test",
    "eval": "test",
}


def canonical_split(name: str) -> str | None:
  """`"val"` -> `"validation"`; None when `name` is no split name we know."""
  return _ALIASES.get(name.lower())


def hash_fraction(relative_path: str) -> float:
  """A number in [0, 1) fixed by the path alone (not by the other files)."""
  digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
  return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(relative_path: str, fractions: Mapping[str, float]) -> str:
  """The split of one image, from a hash of its relative path.

  Splits take consecutive ranges of [0, 1) in `CANONICAL_SPLITS` order, so an
  image keeps its split when other images are added or removed.
  """
  return assign_splits([relative_path], fractions)[0]


def assign_splits(
    relative_paths: Iterable[str], fractions: Mapping[str, float]
) -> list[str]:
  """`assign_split` of each path: 1M paths in ~0.75 s, mostly the sha256."""
  names, bounds = _split_table(fractions)
  return [names[code] for code in _split_codes(
      [p.encode("utf-8") for p in relative_paths], bounds)]


def _split_table(fractions: Mapping[str, float]) -> tuple[list[str], list[bytes]]:
  """`_table` of the fractions, made once per set of fractions: readers that
  give hash splits one image at a time (`assign_split`) would otherwise
  pay the threshold searches (~100 us) for every image."""
  return _table(tuple(fractions.get(split, 0.0) for split in CANONICAL_SPLITS))


@functools.lru_cache(maxsize=16)
def _table(fractions: tuple[float, ...]) -> tuple[list[str], list[bytes]]:
  """Split names and their upper bounds, as digest thresholds.

  The split of a path is the first one whose upper bound (the running sum of
  the fractions) is above `hash_fraction(path)`. That float test is done on
  the digest bytes: `hash_fraction` grows with the digest's first 8 bytes, so
  `hash_fraction(path) < upper` is `digest < threshold(upper)`, compared as
  byte strings, with the same result for every path (`test_splits.py`).
  """
  names, bounds = [], []
  upper = 0.0
  for split, fraction in zip(CANONICAL_SPLITS, fractions):
    if fraction:
      upper += fraction
      names.append(split)
      bounds.append(_digest_threshold(upper))
  assert names, "split fractions are empty"
  # Past the last bound (fractions add up to 1 within float precision): the
  # last split.
  names.append(names[-1])
  return names, bounds


def _split_codes(paths: Iterable[bytes], bounds: list[bytes]) -> bytes:
  """For each UTF-8 path, the index of its split in `_split_table`'s names."""
  sha256, bisect_right = hashlib.sha256, bisect.bisect_right
  return bytes([bisect_right(bounds, sha256(p).digest()) for p in paths])


def fraction_threshold(upper: float) -> int:
  """The smallest n in [0, 2**64] with n / 2**64 >= upper (as floats)."""
  lo, hi = 0, 2**64
  while lo < hi:
    mid = (lo + hi) // 2
    if mid / 2**64 < upper:
      lo = mid + 1
    else:
      hi = mid
  return lo


def _digest_threshold(upper: float) -> bytes:
  """A byte string above exactly the digests with `hash_fraction` >= upper."""
  n = fraction_threshold(upper)
  # A digest whose first 8 bytes equal n's is not below it (it is longer);
  # 2**64 (upper >= 1) is above every digest.
  return n.to_bytes(8, "big") if n < 2**64 else b"\xff" * 33


class SplitAssigner:
  """`assign_splits` of batches of paths, on the other core for big folders.

  A folder walk gives its files a folder at a time (`add`); `results` returns
  each batch's splits. Below `HELPER_AFTER` paths everything is hashed here,
  at the end. Above, a helper process (plain `python -I -S`, this file only,
  started in ~30 ms) hashes while the caller goes on walking: for 1M files
  the sha256s (~0.75 s) then cost no wall time. If the helper fails in any
  way, the paths are hashed here: the result is the same.
  """

  HELPER_AFTER = 100_000

  def __init__(self, fractions: Mapping[str, float]):
    self._names, self._bounds = _split_table(fractions)
    self._batches: list[list[str]] = []
    self._sent = 0  # Batches given to the helper.
    self._pending = 0  # Paths not yet given to the helper.
    self._helper = None
    self._feeder = None
    self._queue = None

  def __enter__(self) -> SplitAssigner:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    """Stops a helper whose results nobody will ask for (an error)."""
    if self._helper is not None and self._helper.returncode is None:
      self._helper.kill()
      self._queue.put(None)
      self._feeder.join()
      self._helper.stdout.close()
      self._helper.wait()

  def add(self, paths: list[str]) -> None:
    self._batches.append(paths)
    self._pending += len(paths)
    if self._helper is None and self._pending >= self.HELPER_AFTER:
      self._start_helper()
    if self._helper is not None:
      self._send_pending()

  def results(self) -> list[list[str]]:
    """The splits of each batch, in the order they were added."""
    codes = None
    if self._helper is not None:
      codes = self._helper_codes()
    expected = sum(len(b) for b in self._batches)
    if codes is None or len(codes) != expected:
      codes = _split_codes(
          (p.encode("utf-8") for b in self._batches for p in b), self._bounds)
    names = self._names
    out, start = [], 0
    for batch in self._batches:
      end = start + len(batch)
      out.append([names[c] for c in codes[start:end]])
      start = end
    return out

  def _start_helper(self) -> None:
    import queue  # pylint: disable=g-import-not-at-top
    import subprocess  # pylint: disable=g-import-not-at-top
    import sys  # pylint: disable=g-import-not-at-top
    import threading  # pylint: disable=g-import-not-at-top
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('splits', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "m._helper_main(sys.argv[2:])\n")
    try:
      self._helper = subprocess.Popen(
          [sys.executable, "-I", "-S", "-c", code, __file__,
           *(b.hex() for b in self._bounds)],
          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
          stderr=subprocess.DEVNULL)
    except OSError:
      return  # Hashed here instead.
    self._queue = queue.SimpleQueue()
    # The walk must not wait for the helper to read: a thread writes.
    self._feeder = threading.Thread(target=self._feed, daemon=True)
    self._feeder.start()

  def _send_pending(self) -> None:
    while self._sent < len(self._batches):
      batch = self._batches[self._sent]
      self._sent += 1
      if batch:
        self._queue.put("\0".join(batch).encode("utf-8"))
    self._pending = 0

  def _feed(self) -> None:
    stdin = self._helper.stdin
    try:
      while (data := self._queue.get()) is not None:
        stdin.write(len(data).to_bytes(8, "big"))
        stdin.write(data)
      stdin.close()
    except OSError:
      pass  # The helper died: `results` sees too few codes.

  def _helper_codes(self) -> bytes | None:
    self._queue.put(None)
    try:
      codes = self._helper.stdout.read()
    except OSError:
      codes = None
    self._feeder.join()
    self._helper.stdout.close()
    if self._helper.wait() != 0 or not codes:
      return None
    header = len(_HELPER_MAGIC) + 8
    if (codes[:len(_HELPER_MAGIC)] != _HELPER_MAGIC
        or int.from_bytes(codes[len(_HELPER_MAGIC):header], "big")
        != len(codes) - header):
      return None
    return codes[header:]


_HELPER_MAGIC = b"image_folder_tfds splits v1\n"


def _helper_main(bound_hex: list[str]) -> None:
  """The helper process of `SplitAssigner`: frames of paths in, codes out."""
  import sys  # pylint: disable=g-import-not-at-top
  bounds = [bytes.fromhex(b) for b in bound_hex]
  stdin, out = sys.stdin.buffer, bytearray()
  while len(header := stdin.read(8)) == 8:
    data = stdin.read(int.from_bytes(header, "big"))
    out += _split_codes(data.split(b"\0"), bounds)
  # Once, at the end, when the caller reads it.
  sys.stdout.buffer.write(_HELPER_MAGIC + len(out).to_bytes(8, "big") + out)
