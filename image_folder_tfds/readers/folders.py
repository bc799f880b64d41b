"""Class-named folders: `DIR/<class>/<image>` or `DIR/<split>/<class>/<image>`.

The split layout is used when every top-level folder is a split name
(train/training, validation/valid/val/dev, test/testing/eval). Otherwise each
top-level folder is a class, and each image's split comes from a stable hash
of its relative path (`splits.assign_split`).
"""

from __future__ import annotations

import os

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import common


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  root = os.path.abspath(root)
  problems: list[records.Problem] = []
  top_dirs, top_files = common.list_dir(root, problems)
  labels = common.read_labels_file(root, options.labels_file)
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

  recs: list[records.ImageRecord] = []
  for split, class_dir in class_dirs:
    class_name = os.path.basename(class_dir)
    files = common.walk_files(class_dir, root, problems, split=split)
    if not files:
      problems.append(records.Problem(
          file=class_dir, kind="warning", counts_as_input=False, split=split or "",
          reason="class folder is empty"))
    for path in files:
      rel = common.relative(path, root)
      this_split = split or splits_lib.assign_split(rel, options.split_fractions)
      if class_name not in index:
        problems.append(records.Problem(
            file=path, split=this_split,
            reason=f"class folder {class_name!r} is not in the labels file"
            f" {labels.path if labels else ''}"))
        continue
      recs.append(records.ImageRecord(
          key=rel, path=path, file_name=rel, split=this_split, source=path,
          id=rel, label=index[class_name], label_text=class_name,
      ))
  return common.ScanResult(
      layout=layout, class_names=list(class_names), records=recs,
      problems=problems,
  )
