"""Split names and the stable, hash-based split of a flat folder."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

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
  h = hash_fraction(relative_path)
  upper = 0.0
  last = None
  for split in CANONICAL_SPLITS:
    fraction = fractions.get(split, 0.0)
    if not fraction:
      continue
    upper += fraction
    last = split
    if h < upper:
      return split
  assert last is not None, "split fractions are empty"
  return last  # Rounding: fractions add up to 1 within float precision.
