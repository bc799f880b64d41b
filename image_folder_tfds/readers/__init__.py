"""Readers: each input format becomes a `ScanResult` of `ImageRecord`s.

`scan` picks the reader (`layout="auto"` detects it), then applies the checks
every layout shares: there is at least one image, and example keys are unique
(found here, before any image is read).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from image_folder_tfds import records
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import coco
from image_folder_tfds.readers import common
from image_folder_tfds.readers import cvat
from image_folder_tfds.readers import folders
from image_folder_tfds.readers import hf_metadata
from image_folder_tfds.readers import label_csv
from image_folder_tfds.readers import labelme
from image_folder_tfds.readers import label_studio
from image_folder_tfds.readers import mask_pairs
from image_folder_tfds.readers import seed001
from image_folder_tfds.readers import tf_csv
from image_folder_tfds.readers import unlabeled
from image_folder_tfds.readers import tfrecord
from image_folder_tfds.readers import voc
from image_folder_tfds.readers import yolo

ReadOptions = common.ReadOptions
ScanResult = common.ScanResult

# Every reader, once. Each module has `NAME` (its `layout` option value),
# `claim(root, options) -> common.Claim | None` ("is this folder mine, and how
# sure am I?", from the files alone) and `read(root, options) -> ScanResult`.
READERS = (coco, voc, tf_csv, label_csv, seed001, label_studio, cvat, hf_metadata,
           yolo, labelme, tfrecord, mask_pairs, folders, unlabeled)
_BY_NAME = {r.NAME: r for r in READERS}
LAYOUTS = ("auto",) + tuple(_BY_NAME)


def claims(root: str, options: ReadOptions) -> list[common.Claim]:
  """Every reader's claim on `root`, most certain first (stable order)."""
  found = [c for r in READERS if (c := r.claim(root, options)) is not None]
  return sorted(found, key=lambda c: -c.certainty)


def detect_layout(root: str, options: ReadOptions) -> str:
  """The layout of `root`: the one reader most certain that it is its own.

  Every reader is asked once (`claims`). Two readers equally certain is an
  error naming both; a less certain claim beside the chosen one is reported
  by `scan` as a warning. With `options.annotations`, only the readers of
  that file answer.
  """
  return _choose(root, options)[0]


def _choose(root: str, options: ReadOptions
            ) -> tuple[str, list[common.Claim]]:
  """(layout, the claims not taken)."""
  found = claims(root, options)
  if not found:
    if options.annotations:
      path = annotated.annotation_path(root, options.annotations)
      raise records.InputError(
          f"{path}: annotation file of unknown format: no reader recognises"
          " it (expected COCO, Label Studio or seed-001 JSON, JSON Lines, a TF"
          " Object Detection CSV, a label CSV, a CVAT for images XML file, or"
          " TFRecords); choose a reader with the `layout` option")
    raise records.InputError(
        f"{root}: no images found: no class folders (DIR/<class>/<image> or"
        " DIR/<split>/<class>/<image>), no image files at the top or in"
        " split folders, and no annotation file of a known format"
        " (docs/formats.md)")
  best = [c for c in found if c.certainty == found[0].certainty]
  if len({c.layout for c in best}) > 1:
    raise records.InputError(
        f"{root}: several annotation formats found ("
        + "; ".join(c.describe(root) for c in best)
        + "). Choose one with the `layout` or `annotations` option.")
  return best[0].layout, found[len(best):]


def _refusal(error: common.ArtefactsFound) -> records.InputError:
  """The message for annotation files found where class folders were read."""
  by_layout: dict[str, list[common.Artefact]] = {}
  for a in error.artefacts:
    by_layout.setdefault(a.layout, []).append(a)
  parts = []
  for layout, found in by_layout.items():
    files = ", ".join(a.file for a in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    if layout in _BY_NAME:
      reader = (f"read with `layout: \"{layout}\"`, which did not recognise"
                " the folder as its own (see docs/formats.md)")
    else:
      reader = "no reader of this version reads it"
    parts.append(f"{found[0].what} ({files}{more}): {reader}")
  return records.InputError(
      f"{error.root}: holds annotation files, so it is not read as"
      f" {error.reading} (its annotations would be lost): " + "; ".join(parts)
      + f". If these files are not annotations, build the {error.reading}"
      f' anyway with `layout: "{error.layout}"`.')


def scan(root: str, layout: str, options: ReadOptions) -> ScanResult:
  root = os.fspath(root)
  if not os.path.isdir(root):
    raise records.InputError(
        f"{root}: the data folder (--manual_dir) does not exist or is not a"
        " folder")
  if layout != "auto" and layout not in _BY_NAME:
    raise records.InputError(
        f"layout {layout!r}: expected one of {LAYOUTS}")
  passed_over: list[common.Claim] = []
  try:
    if layout == "auto":
      try:
        layout, passed_over = _choose(root, options)
      finally:
        common.forget_listings()
      options = dataclasses.replace(options, detected=True)
    result = _BY_NAME[layout].read(root, options)
  except OSError as e:  # An annotation or labels file that cannot be read.
    raise records.InputError(
        f"{e.filename or root}: cannot read: {e.strerror or e}") from e
  except common.ArtefactsFound as e:
    raise _refusal(e) from None
  for claim in passed_over:
    if claim.certainty > common.FALLBACK:
      result.problems.append(records.Problem(
          file=root, kind="warning", counts_as_input=False,
          reason=f"also looks like {claim.describe(root)}, less surely than"
          f" {layout}: not read (choose with the `layout` option)"))
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
  """Fails on the first duplicate example key, naming both sources.

  "First" is in input order: the record whose (split, key) an earlier record
  already had, named with the source of that earlier record.
  """
  if isinstance(recs, records.FolderRecords):
    return  # Relative paths from one walk of the folder: distinct.
  if isinstance(recs, records.PackedRecords):
    _check_packed_keys(recs)
    return
  # The source of each key, not the record: records with their objects are
  # what `records.PackedRecords` keeps out of memory.
  seen: dict[tuple[str, str], str] = {}
  for r in recs:
    key = (r.split, r.key)
    if key in seen:
      raise _duplicate(r, seen[key])
    seen[key] = r.source


def _duplicate(r: records.ImageRecord, first_source: str
               ) -> records.InputError:
  return records.InputError(
      f"duplicate example key {r.key!r} in split {r.split!r}: from"
      f" {first_source} and from {r.source}")


def _check_packed_keys(recs: records.PackedRecords) -> None:
  """`check_unique_keys` on the hashes the container keeps.

  Making every record again to read its key cost ~44 us a record (4
  boxes, on a loaded machine) and a dict of keys and sources ~280 bytes an
  image; sorting the 64-bit hashes costs ~0.07 us and ~17 bytes a record.
  Only the records whose hashes collide are read, to tell a real duplicate
  from a collision (about one chance in 10^9 at 200k records).
  """
  hashes = np.frombuffer(recs.key_hashes(), dtype=np.int64)
  order = np.argsort(hashes, kind="stable")  # Equal hashes: input order.
  ranked = hashes[order]
  same = ranked[1:] == ranked[:-1]
  if not same.any():
    return
  # Every record whose hash another record has, in input order per hash.
  colliding = np.zeros(len(order), dtype=bool)
  colliding[1:] |= same
  colliding[:-1] |= same
  first: dict[tuple[str, str], str] = {}
  for i in np.sort(order[colliding]):  # Input order, as without hashes.
    r = recs[int(i)]
    key = (r.split, r.key)
    if key in first:
      raise _duplicate(r, first[key])
    first[key] = r.source
