"""Readers: each input format becomes a `ScanResult` of `ImageRecord`s.

`scan` picks the reader (`layout="auto"` detects it), then applies the checks
every layout shares: there is at least one image, and example keys are unique
(found here, before any image is read).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from image_folder_tfds import records
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import coco
from image_folder_tfds.readers import common
from image_folder_tfds.readers import folders
from image_folder_tfds.readers import mask_pairs
from image_folder_tfds.readers import seed001
from image_folder_tfds.readers import tf_csv
from image_folder_tfds.readers import voc

ReadOptions = common.ReadOptions
ScanResult = common.ScanResult

_READERS = {
    "folders": folders.read,
    "seed001": seed001.read,
    "coco": coco.read,
    "voc": voc.read,
    "csv": tf_csv.read,
    "mask_pairs": mask_pairs.read,
}


def detect_layout(root: str, options: ReadOptions) -> str:
  """The layout of `root`: the one format whose files are there.

  `options.annotations` names the file, whose content tells the format.
  Otherwise: `Annotations/` is VOC; `instances_*.json` or
  `person_keypoints_*.json` (top level or `annotations/`) is COCO; a CSV with
  the TF Object Detection header is CSV; other JSON / JSON Lines files are
  seed 001 when its first entry has a `filename`; `images/` beside `masks/`
  (also under every split folder) is segmentation folder pairs; none of these
  is class folders. Two formats at once is an error.
  """
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    return _layout_of_file(path)
  found = []
  if voc.is_voc(root):
    found.append(("voc", "Annotations/"))
  no_file = dataclasses.replace(options, annotations=None)
  coco_files = coco.find_files(root, no_file)
  if coco_files:
    found.append(("coco", coco_files[0]))
  csv_files = [p for p in tf_csv.find_files(root, no_file)
               if tf_csv.has_header(p)]
  if csv_files:
    found.append(("csv", csv_files[0]))
  json_files = [p for p in seed001.find_files(root, no_file)
                if _layout_of_file(p, quiet=True) == "seed001"
                and seed001.looks_like(p)]
  if json_files:
    found.append(("seed001", json_files[0]))
  if mask_pairs.is_mask_pairs(root):
    found.append(("mask_pairs", "images/ + masks/"))
  if len(found) > 1:
    raise records.InputError(
        f"{root}: several annotation formats found ("
        + "; ".join(f"{name}: {path}" for name, path in found)
        + "). Choose one with the `layout` or `annotations` option.")
  return found[0][0] if found else "folders"


def _layout_of_file(path: str, quiet: bool = False) -> str | None:
  """"coco", "seed001" or "csv", from the file's name and first bytes."""
  lower = path.lower()
  if lower.endswith(".csv"):
    return "csv"
  if coco.is_coco_file(path) or lower.endswith(".coco.json"):
    return "coco"
  if lower.endswith((".jsonl", ".ndjson")):
    return "seed001"
  if lower.endswith(".json"):
    first_key = seed001.first_key(path)
    if first_key in coco.TOP_LEVEL_KEYS:
      return "coco"
    return "seed001"
  if quiet:
    return None
  raise records.InputError(
      f"{path}: annotation file of unknown format: expected .json or .jsonl"
      " (seed 001 or COCO) or .csv (TF Object Detection CSV)")


def scan(root: str, layout: str, options: ReadOptions) -> ScanResult:
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise records.InputError(
        f"{root}: the data folder (--manual_dir) does not exist or is not a"
        " folder")
  try:
    if layout == "auto":
      layout = detect_layout(root, options)
    result = _READERS[layout](root, options)
  except OSError as e:  # An annotation or labels file that cannot be read.
    raise records.InputError(
        f"{e.filename or root}: cannot read: {e.strerror or e}") from e
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


def check_unique_keys(recs: Sequence[records.ImageRecord]) -> None:
  """Fails on the first duplicate example key, naming both sources."""
  if isinstance(recs, records.FolderRecords):
    return  # Relative paths from one walk of the folder: distinct.
  # The source of each key, not the record: records with their objects are
  # what `records.PackedRecords` keeps out of memory.
  seen: dict[tuple[str, str], str] = {}
  for r in recs:
    key = (r.split, r.key)
    if key in seen:
      raise records.InputError(
          f"duplicate example key {r.key!r} in split {r.split!r}: from"
          f" {seen[key]} and from {r.source}")
    seen[key] = r.source
