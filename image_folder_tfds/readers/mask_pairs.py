"""Semantic segmentation folder pairs: `DIR/images/NAME.jpg` + `DIR/masks/NAME.png`.

Also the split layout around it: `DIR/<split>/images/` with
`DIR/<split>/masks/` under every top-level folder (train/val/test names, as
for class folders). Without split folders, each image's split is the stable
hash of its relative path. Images may sit in subfolders of `images/`; the
mask of `images/a/b.jpg` is `masks/a/b.png`.

A mask is a label image: one channel, each value the index of a class in the
labels file (`labels.txt`, one class name per line, line 0 = value 0), which
is required. Found here: an image without a mask (rejected), a mask without
an image or a mask that is not a PNG (warnings). Checked by the image worker
(`masks.semantic_mask`): its size against the image's, its channels, and
that every value is a class.
"""

from __future__ import annotations

import os

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "mask_pairs"
IMAGES, MASKS = "images", "masks"


def pair_dirs(root: str) -> list[tuple[str | None, str]] | None:
  """[(split or None, folder holding images/ and masks/)], None if not this layout."""
  if _is_pair(root):
    return [(None, root)]
  try:
    names = common.subfolders(root)
  except OSError:
    return None
  if not names:
    return None
  out = []
  for name in names:
    split = splits_lib.canonical_split(name)
    folder = os.path.join(root, name)
    if split is None or not _is_pair(folder):
      return None
    out.append((split, folder))
  return out


def _is_pair(folder: str) -> bool:
  return (os.path.isdir(os.path.join(folder, IMAGES))
          and os.path.isdir(os.path.join(folder, MASKS)))


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Likely: `images/` beside `masks/` (also under every split folder)."""
  if options.annotations:
    return None
  dirs = pair_dirs(root)
  if dirs is None:
    return None
  return common.Claim(NAME, common.LIKELY, tuple(
      os.path.join(folder, MASKS) for _, folder in dirs))


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  root = os.path.abspath(root)
  dirs = pair_dirs(root)
  if dirs is None:
    raise records.InputError(
        f"{root}: no segmentation folder pair (DIR/images/ with DIR/masks/,"
        " or DIR/<split>/images/ with DIR/<split>/masks/)")
  labels = common.read_labels_file(root, options.labels_file)
  if labels is None:
    raise records.InputError(
        f"{root}: images/ with masks/ is a segmentation dataset, and needs a"
        " labels file (labels.txt: one class name per line, line 1 = mask"
        " value 0)")
  problems: list[records.Problem] = []
  recs: list[records.ImageRecord] = []
  for split, folder in dirs:
    image_dir = os.path.join(folder, IMAGES)
    mask_dir = os.path.join(folder, MASKS)
    image_rels = common.walk_files(image_dir, image_dir, problems, split)
    mask_rels = common.walk_files(mask_dir, mask_dir, problems, split)
    masks_by_stem: dict[str, str] = {}
    for rel in mask_rels:
      stem, ext = os.path.splitext(rel)
      if ext.lower() != ".png":
        problems.append(records.Problem(
            file=os.path.join(mask_dir, rel), split=split or "",
            kind="warning", counts_as_input=False,
            reason="not a .png file: masks are PNG label images, not used"))
        continue
      masks_by_stem[stem] = rel
    used = set()
    for rel in image_rels:
      path = os.path.join(image_dir, rel)
      key = os.path.relpath(path, root).replace(os.sep, "/")
      this_split = split or annotated.assign_split(None, key, options)
      stem = os.path.splitext(rel)[0]
      mask_rel = masks_by_stem.get(stem)
      if mask_rel is None:
        problems.append(records.Problem(
            file=path, split=this_split,
            reason=f"no mask: expected {os.path.join(mask_dir, stem)}.png"))
        continue
      used.add(mask_rel)
      recs.append(records.ImageRecord(
          key=key, path=path, file_name=key, split=this_split, source=path,
          id=key, mask_path=os.path.join(mask_dir, mask_rel),
          mask_classes=len(labels.names)))
    for rel in sorted(set(masks_by_stem.values()) - used):
      problems.append(records.Problem(
          file=os.path.join(mask_dir, rel), split=split or "", kind="warning",
          counts_as_input=False, reason="mask without an image: not used"))
  layout = ("mask pairs: DIR/images/ + DIR/masks/" if dirs[0][0] is None
            else "mask pairs: DIR/<split>/images/ + DIR/<split>/masks/")
  return common.ScanResult(layout=layout, class_names=list(labels.names),
                           records=recs, problems=problems)
