"""The Model Garden / Object Detection API output layout, dataset-wide parts.

`features.model_garden_features_dict` declares the keys; this module decides
what needs the whole dataset: each image's `image/source_id`, the number of
keypoints per object, and what goes into the dataset's metadata.

`image/source_id`: Model Garden's detection input turns it into an int64
(`tf.strings.to_number`) and its evaluator matches predictions to ground truth
by it, so it must be a unique decimal number. When every image has a numeric
id of its own (COCO image ids) that id is kept; otherwise the images are
numbered 1..N in the order of their example keys (relative path, then split).
The rule used is recorded in the dataset's metadata (`source_id`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from image_folder_tfds import features
from image_folder_tfds import masks
from image_folder_tfds import records

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,17}")  # Fits an int64, no sign, no 0 pad.
SOURCE_ID_FROM_RECORD = "image id"
SOURCE_ID_BY_POSITION = "position in sorted example keys, from 1"


@dataclasses.dataclass(frozen=True)
class Encoder:
  """Turns checked records into `model_garden_features_dict` examples."""

  class_names: list[str]
  source_ids: dict[tuple[str, str], str]  # (split, key) -> decimal string.
  source_id_rule: str
  num_keypoints: int
  keypoint_names: dict[str, list[str]] = dataclasses.field(default_factory=dict)
  has_masks: bool = False  # Some object has a segmentation: image/object/mask.
  has_segmentation: bool = False  # Folder pairs: image/segmentation/class/encoded.

  @classmethod
  def from_scan(cls, scan) -> Encoder:
    """From a reader's `ScanResult` (records, classes, keypoint names)."""
    encoder = cls.from_records(scan.records, scan.class_names)
    return dataclasses.replace(encoder, keypoint_names=dict(scan.keypoint_names))

  @classmethod
  def from_records(
      cls, recs: Sequence[records.ImageRecord], class_names: Sequence[str]
  ) -> Encoder:
    keys = [(r.split, r.key) for r in recs]
    ids = [r.id for r in recs]
    if all(_DECIMAL.fullmatch(i) for i in ids) and len(set(ids)) == len(ids):
      source_ids = dict(zip(keys, ids))
      rule = SOURCE_ID_FROM_RECORD
    else:
      source_ids = {
          k: str(n) for n, k in enumerate(sorted(keys, key=_key_order), 1)}
      rule = SOURCE_ID_BY_POSITION
    num_keypoints = max(
        (len(o.keypoints) for r in recs for o in r.objects), default=0)
    return cls(list(class_names), source_ids, rule, num_keypoints,
               has_masks=any(o.segmentation >= 0 for r in recs
                             for o in r.objects),
               has_segmentation=any(r.mask_path for r in recs))

  def features_dict(self):
    return features.model_garden_features_dict(
        masks=self.has_masks, segmentation=self.has_segmentation)

  def encode(self, record: records.ImageRecord, image, objects,
             instance_masks: tuple[bytes, ...] = (),
             segmentation_mask: bytes | None = None) -> dict:
    """`instance_masks`: one PNG per object of `objects` (or none at all:
    then empty masks, when the dataset has masks)."""
    pngs = None
    if self.has_masks:
      pngs = masks.complete(instance_masks, len(objects), image.height,
                            image.width)
      # Objects without a class cannot be written: `dropped_fields` reported
      # them when the input was scanned.
      pngs = tuple(m for o, m in zip(objects, pngs, strict=True)
                   if o.label >= 0)
    objects = tuple(o for o in objects if o.label >= 0)
    try:
      return features.to_model_garden_example(
          record, image, objects,
          source_id=self.source_ids[(record.split, record.key)],
          class_names=self.class_names,
          num_keypoints=self.num_keypoints, masks=pngs,
          segmentation_mask=segmentation_mask if self.has_segmentation
          else None)
    except ValueError as e:
      raise ValueError(f"{record.source} ({record.file_name}): {e}") from e

  def metadata(self) -> dict:
    """What a reader of the records needs: offset, classes, keypoints."""
    return {
        "output_format": "model_garden",
        "label_offset": features.MG_LABEL_OFFSET,
        "class_names": list(self.class_names),
        "num_keypoints": self.num_keypoints,
        "source_id": self.source_id_rule,
        "instance_masks": self.has_masks,
    }


def _key_order(split_key: tuple[str, str]) -> tuple[str, str]:
  split, key = split_key
  return key, split


def scan_problems(scan, root: str) -> list[records.Problem]:
  """`dropped_fields` of a reader scan (`inspection.inspect_folder`'s check)."""
  return dropped_fields(scan.records, scan.class_names, root)


def dropped_fields(
    recs: Sequence[records.ImageRecord], class_names: Sequence[str], root: str
) -> list[records.Problem]:
  """What this layout cannot write, as problems for the build report.

  * An object without a class is rejected (both trainers need a class id for
    every box); the rest of its image is written.
  * The layout holds exactly the keys Model Garden and the OD API read; what
    else the input gives (scores, ids, `extra`, ...) is not written: one
    warning names it, instead of dropping it silently.
  """
  problems = []
  for r in recs:
    for index, o in enumerate(r.objects):
      if o.label < 0:
        item = f"object {o.id}" if o.id else f"object #{index}"
        problems.append(records.Problem(
            file=r.source, item=f"{r.file_name}: {item}", split=r.split,
            counts_as_input=False,
            reason="object has no class: output_format='model_garden' needs"
            " a class id for every object, so it is not written"))
  found: dict[str, int] = {}

  def note(what: str) -> None:
    found[what] = found.get(what, 0) + 1

  for r in recs:
    if r.label_conf >= 0:
      note("image class confidence")
    if r.extra:
      note("image extra")
    if r.columns:
      note("metadata columns")
    if r.id and r.id != r.key and not _DECIMAL.fullmatch(r.id):
      note("image id (source_id is a number)")
    for o in r.objects:
      if o.id:
        note("object id")
      if o.score >= 0:
        note("object score")
      if o.conf >= 0:
        note("object confidence")
      if o.text and 0 <= o.label < len(class_names) and (
          o.text != class_names[o.label]):
        note("object text other than the class name")
      if o.keypoint_score_given:
        note("keypoint scores")
  if not found:
    return problems
  listing = ", ".join(f"{what} ({n}x)" for what, n in found.items())
  return problems + [records.Problem(
      file=root, kind="warning", counts_as_input=False,
      reason="output_format='model_garden' writes only the keys Model Garden"
      f" and the OD API read; not written: {listing}. The 'tfds' output format"
      " keeps them.")]
