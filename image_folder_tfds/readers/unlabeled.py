"""Unlabeled folders: images without a class, `DIR/<image>`, `DIR/<split>/<image>`.

Data to be labelled, or for self-supervised pre-training: the dataset holds
the images and their file names only (schema kind "images": no `label`
feature), and the report says so in a warning. Splits come from the split
folders when every top-level folder is a split name (as for class folders),
else from the stable hash of each image's relative path.

Detected only on positive evidence and only where class folders are not
(`common.top_level`): image files at the top of the data folder or directly
inside its split folders, and no class folder anywhere. Like class folders,
it refuses a folder holding annotation files when the layout was detected,
so a YOLO or LabelMe folder that no reader took is never built as images
without their labels.
"""

from __future__ import annotations

import array
import csv
import os

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import common

NAME = "unlabeled"
READING = "images without labels"


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """The fallback beside class folders: image files (by extension) at the top
  or directly inside split folders, and no class folder."""
  if options.annotations:
    return None
  top = common.top_level(root)
  if top.class_dirs or not top.images:
    return None
  return common.Claim(NAME, common.FALLBACK, top.images)


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  root = os.path.abspath(root)
  problems: list[records.Problem] = []
  # The top folders decide the layout; a flat folder's files are listed by
  # its walk alone (once: a flat folder may hold a million images).
  top_dirs = sorted(os.path.join(root, name)
                    for name, is_dir in common.list_entries(root) if is_dir)
  split_dirs = {d: splits_lib.canonical_split(os.path.basename(d))
                for d in top_dirs}
  is_split_layout = bool(top_dirs) and all(split_dirs.values())

  walked: list[tuple[str | None, list[str]]] = []  # (split or None, rels)
  with splits_lib.SplitAssigner(options.split_fractions) as assigner:
    if is_split_layout:
      layout = "unlabeled: DIR/<split>/<image>"
      _, top_files = common.list_dir(root, problems)
      top_files = [p for p in top_files
                   if os.path.basename(p) not in common.KNOWN_METADATA_FILES]
      _refuse_artefacts(root, [os.path.basename(p) for p in top_files],
                        options)  # Before the walk: data.yaml, at once.
      for path in top_files:
        problems.append(records.Problem(
            file=path, reason="file is not inside a split folder (train/,"
            " validation/, test/): not used"))
      for split_dir in top_dirs:
        split = split_dirs[split_dir]
        names = _posix(common.walk_files(split_dir, root, problems, split))
        if not names:
          problems.append(records.Problem(
              file=split_dir, kind="warning", counts_as_input=False,
              split=split, reason="split folder is empty"))
        walked.append((split, names))
    else:
      layout = "unlabeled: DIR/<image>"
      names = _posix(common.walk_files(root, root, problems, None))
      names = [n for n in names if n not in common.KNOWN_METADATA_FILES]
      assigner.add(names)
      walked.append((None, names))
    hashed = iter(assigner.results())
  _refuse_artefacts(root, [name for _, names in walked for name in names],
                    options)

  # Columns of `records.FolderRecords`, class -1: no object per file.
  rels: list[str] = []
  split_of: list[str] = []
  for split, names in walked:
    these_splits = [split] * len(names) if split else next(hashed)
    if not any(name[-4:].lower() == ".csv" for name in names):
      rels.extend(names)
      split_of.extend(these_splits)
      continue
    for name, this_split in zip(names, these_splits):
      if name.lower().endswith(".csv"):
        # Labels the user expects to be read: say why they are not.
        problems.append(_csv_problem(root, name, this_split))
        continue
      rels.append(name)
      split_of.append(this_split)
  problems.append(records.Problem(
      file=root, kind="warning", counts_as_input=False,
      reason="no class folders and no annotation file: the dataset holds the"
      " images and their file names only, without labels (schema kind"
      " 'images'). Put each image in a folder named by its class, or add a"
      " label file (docs/formats.md), to build a labelled dataset."))
  labels = _labels_file(root, options)
  if labels:
    problems.append(records.Problem(
        file=labels, kind="warning", counts_as_input=False,
        reason="labels file not used: no image has a class here"))
  return common.ScanResult(
      layout=layout, class_names=[],
      records=records.FolderRecords(
          root, rels, split_of, array.array("i", [-1]) * len(rels), []),
      problems=problems)


def _refuse_artefacts(root: str, rels: list[str],
                      options: common.ReadOptions) -> None:
  """Annotation files among `rels` stop a detected layout, as they stop
  class folders: their labels would be lost (`readers.scan` says which)."""
  if options.detected:
    artefacts = common.annotation_artefacts(rels)
    if artefacts:
      raise common.ArtefactsFound(root, artefacts, layout=NAME,
                                  reading=READING)


def _posix(names: list[str]) -> list[str]:
  return names if os.sep == "/" else [n.replace(os.sep, "/") for n in names]


def _labels_file(root: str, options: common.ReadOptions) -> str:
  """The labels file there is (`labels.txt` or `labels_file`), or ""."""
  name = options.labels_file or "labels.txt"
  path = name if os.path.isabs(name) else os.path.join(root, name)
  return path if os.path.isfile(path) else ""


def _csv_problem(root: str, name: str, split: str) -> records.Problem:
  """A CSV file among the images: not an image, and no label file this
  version recognised (its header says why)."""
  path = os.path.join(root, *name.split("/"))
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      header = next(csv.reader(f), [])
    seen = f"its header {[h.strip() for h in header][:8]} is"
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    seen = f"it cannot be read as CSV ({e}), so it is"
  return records.Problem(
      file=path, split=split,
      reason=f"a CSV file, not an image: not used. If it holds labels, {seen}"
      " not one of the label CSVs read (docs/formats.md, 'Label CSVs'):"
      " name its image column filename and its class column label")
