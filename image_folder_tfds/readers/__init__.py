"""Readers: each input format becomes a `ScanResult` of `ImageRecord`s.

`scan` picks the reader (`layout="auto"` detects it), then applies the checks
every layout shares: there is at least one image, and example keys are unique
(found here, before any image is read).
"""

from __future__ import annotations

import os

from image_folder_tfds import records
from image_folder_tfds.readers import common
from image_folder_tfds.readers import folders

ReadOptions = common.ReadOptions
ScanResult = common.ScanResult

_READERS = {
    "folders": folders.read,
}


def detect_layout(root: str, options: ReadOptions) -> str:
  """The layout of `root`: the one format whose files are there."""
  del options  # Annotation formats are detected by their files (issue #3).
  return "folders"


def scan(root: str, layout: str, options: ReadOptions) -> ScanResult:
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise records.InputError(
        f"{root}: the data folder (--manual_dir) does not exist or is not a"
        " folder")
  if layout == "auto":
    layout = detect_layout(root, options)
  result = _READERS[layout](root, options)
  if not result.records:
    rejected = [p for p in result.problems if p.kind == "rejected"]
    detail = (
        f"; {len(rejected)} file(s) were rejected, first: {rejected[0]}"
        if rejected else "")
    raise records.InputError(
        f"{root}: no images found ({result.layout}){detail}. Expected class"
        " folders (DIR/<class>/<image> or DIR/<split>/<class>/<image>) or an"
        " annotation file.")
  check_unique_keys(result.records)
  return result


def check_unique_keys(recs: list[records.ImageRecord]) -> None:
  """Fails on the first duplicate example key, naming both sources."""
  seen: dict[tuple[str, str], records.ImageRecord] = {}
  for r in recs:
    other = seen.setdefault((r.split, r.key), r)
    if other is not r:
      raise records.InputError(
          f"duplicate example key {r.key!r} in split {r.split!r}: from"
          f" {other.source} and from {r.source}")
