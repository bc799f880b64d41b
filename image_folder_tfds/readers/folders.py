"""Class-named folders: `DIR/<class>/<image>` or `DIR/<split>/<class>/<image>`.

The split layout is used when every top-level folder is a split name
(train/training, validation/valid/val/dev, test/testing/eval). Otherwise each
top-level folder is a class, and each image's split comes from a stable hash
of its relative path (`splits.assign_splits`).
"""

from __future__ import annotations

import array
import itertools
import os

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import common

NAME = "folders"


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """The fallback: a folder holding class folders (a top-level folder that is
  not a split name, or a folder inside a split folder). Chosen only when no
  reader of annotations claims the folder; `read` then refuses annotation
  files (`common.annotation_artefacts`) unless the layout was forced.

  Split folders holding images directly, and images at the top with no
  folder beside them, are unlabeled folders' (`unlabeled.claim`): the two
  claims never meet. Images at the top beside class folders are class
  folders', which report them as outside every class folder.
  """
  if options.annotations:
    return None
  dirs = common.top_level(root).class_dirs
  return common.Claim(NAME, common.FALLBACK, dirs) if dirs else None


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  root = os.path.abspath(root)
  problems: list[records.Problem] = []
  top_dirs, top_files = common.list_dir(root, problems)
  labels = common.read_labels_file(root, options.labels_file)
  if options.detected:
    top_rels = [os.path.basename(p) for p in top_files
                if labels is None or p != labels.path]
    artefacts = common.annotation_artefacts(top_rels)
    if artefacts:  # Before the walk: a YOLO data.yaml is found at once.
      raise common.ArtefactsFound(root, artefacts)
  for path in top_files:
    if labels is not None and path == labels.path:
      continue
    if os.path.basename(path) in common.KNOWN_METADATA_FILES:
      continue
    problems.append(records.Problem(
        file=path, reason="file is not inside a class folder: not used"))

  split_dirs = {d: splits_lib.canonical_split(os.path.basename(d))
                for d in top_dirs}
  is_split_layout = bool(top_dirs) and all(split_dirs.values())
  # (split or None, class dir) pairs.
  class_dirs: list[tuple[str | None, str]] = []
  if is_split_layout:
    layout = "folders: DIR/<split>/<class>/<image>"
    for split_dir in top_dirs:
      dirs, files = common.list_dir(split_dir, problems)
      split = split_dirs[split_dir]
      for path in files:
        problems.append(records.Problem(
            file=path, split=split,
            reason="file is not inside a class folder: not used"))
      class_dirs.extend((split, d) for d in dirs)
  else:
    layout = "folders: DIR/<class>/<image>"
    looks_like_splits = [d for d, s in split_dirs.items() if s]
    for d in looks_like_splits:
      problems.append(records.Problem(
          file=d, kind="warning", counts_as_input=False,
          reason="folder has a split name, but not every top-level folder"
          " does, so it is read as a class"))
    class_dirs.extend((None, d) for d in top_dirs)

  folder_classes = sorted({os.path.basename(d) for _, d in class_dirs})
  if labels is not None:
    class_names = labels.names
    for name in sorted(set(class_names) - set(folder_classes)):
      problems.append(records.Problem(
          file=labels.path, kind="warning", counts_as_input=False,
          reason=f"class {name!r} has no folder: it will have no images"))
  else:
    class_names = folder_classes
  index = {name: i for i, name in enumerate(class_names)}

  # Walk every class folder first; the flat layout's split hashes run on the
  # other core meanwhile (`SplitAssigner`).
  walked = []  # (split or None, class name, relative paths)
  with splits_lib.SplitAssigner(options.split_fractions) as assigner:
    for split, class_dir in class_dirs:
      names = common.walk_files(class_dir, root, problems, split=split)
      if not names:
        problems.append(records.Problem(
            file=class_dir, kind="warning", counts_as_input=False,
            split=split or "", reason="class folder is empty"))
      if os.sep != "/":
        names = [name.replace(os.sep, "/") for name in names]
      if not split:
        assigner.add(names)
      walked.append((split, os.path.basename(class_dir), names))
    hashed = iter(assigner.results())

  if options.detected:
    artefacts = common.annotation_artefacts(
        [name for _, _, names in walked for name in names])
    if artefacts:
      raise common.ArtefactsFound(root, artefacts)

  # Columns of `records.FolderRecords`: no object per file.
  rels: list[str] = []
  split_of: list[str] = []
  label_of = array.array("i")
  for split, class_name, names in walked:
    these_splits = [split] * len(names) if split else next(hashed)
    if class_name not in index:
      problems.extend(
          records.Problem(
              file=os.path.join(root, *name.split("/")), split=this_split,
              reason=f"class folder {class_name!r} is not in the labels file"
              f" {labels.path if labels else ''}")
          for name, this_split in zip(names, these_splits))
      continue
    rels.extend(names)
    split_of.extend(these_splits)
    label_of.extend(itertools.repeat(index[class_name], len(names)))
  return common.ScanResult(
      layout=layout, class_names=list(class_names),
      records=records.FolderRecords(root, rels, split_of, label_of,
                                    list(class_names)),
      problems=problems,
  )
