"""Checks every box and keypoint once the real image size is known.

Pixel coordinates are normalized by the image size as displayed (EXIF
orientation applied), read from the image itself, so annotations drawn on the
displayed image stay on the same pixels. Rules (docs/bad_input.md, "Annotation checks"):

* a box that overshoots [0, 1] by less than one pixel is clipped (reported as
  changed); any other out-of-range box, a box with min > max, or a NaN or
  infinite value rejects the object (reported as rejected);
* keypoints outside the image by less than a pixel are clipped, others reject
  the object, except those with visibility 0 (not visible, possibly outside
  the image), which are kept as given;
* an area larger than the image rejects the object;
* an image size given by the annotation file that differs from the image's is
  reported as a warning.
"""

from __future__ import annotations

import dataclasses
import math

from image_folder_tfds import records


def finalize(
    record: records.ImageRecord, width: int, height: int
) -> tuple[tuple[records.ObjectRecord, ...], list[records.Problem]]:
  """Objects of `record`, normalized and checked, and what was changed."""
  size_problems = _check_size(record, width, height)
  if not record.objects:
    return (), size_problems
  sx, sy = (1.0 / width, 1.0 / height) if record.coords == "pixel" else (1, 1)
  # One pixel, in normalized units: the clipping tolerance.
  tol_x, tol_y = 1.0 / width, 1.0 / height
  kept = []
  problems = size_problems
  for index, obj in enumerate(record.objects):
    item = f"object {obj.id}" if obj.id else f"object #{index}"

    def problem(reason, kind="rejected", item=item):
      return records.Problem(
          file=record.source, item=f"{record.file_name}: {item}",
          reason=reason, kind=kind, split=record.split,
          counts_as_input=False,
      )

    try:
      box, clipped = _check_box(obj.box, sx, sy, tol_x, tol_y)
      keypoints, kp_clipped = _check_keypoints(
          obj.keypoints, sx, sy, tol_x, tol_y
      )
    except ValueError as e:
      problems.append(problem(str(e)))
      continue
    if clipped or kp_clipped:
      what = " and ".join(
          w for w, c in (("box", clipped), ("keypoints", kp_clipped)) if c
      )
      problems.append(
          problem(f"{what} overshot the image by less than a pixel: clipped",
                  kind="changed")
      )
    area = obj.area
    if record.coords == "pixel" and area >= 0:
      area = area * sx * sy
    if area > 1 + 1e-6:
      problems.append(problem(
          f"area {obj.area} is larger than the image ({area:.6g} of it)"))
      continue
    kept.append(
        dataclasses.replace(obj, box=box, keypoints=keypoints, area=area)
    )
  return tuple(kept), problems


def _check_size(record, width, height) -> list[records.Problem]:
  """A warning when the annotation file gives another image size.

  Coordinates are always normalized by the real size; a mismatch usually
  means the image was resized after it was annotated, or the annotation tool
  ignored the EXIF orientation (sizes swapped).
  """
  if record.size is None or tuple(record.size) == (width, height):
    return []
  hint = (" (width and height swapped: was it annotated without applying the"
          " EXIF orientation?)" if tuple(record.size) == (height, width)
          else "")
  return [records.Problem(
      file=record.source, item=record.file_name, kind="warning",
      split=record.split, counts_as_input=False,
      reason=f"the annotation gives the image size {record.size[0]}x"
      f"{record.size[1]}, the image as displayed is {width}x{height}"
      f"{hint}; coordinates are taken on the displayed image")]


def _check_box(box, sx, sy, tol_x, tol_y):
  if box is None:
    return None, False
  xmin, ymin, xmax, ymax = box
  values = (xmin * sx, ymin * sy, xmax * sx, ymax * sy)
  if not all(math.isfinite(v) for v in values):
    raise ValueError(f"box {list(box)} has a NaN or infinite value")
  xmin, ymin, xmax, ymax = values
  if xmin > xmax or ymin > ymax:
    raise ValueError(
        f"box {list(box)} has min > max (xmin, ymin, xmax, ymax order)"
    )
  clipped = False
  out = []
  for v, tol in ((xmin, tol_x), (ymin, tol_y), (xmax, tol_x), (ymax, tol_y)):
    if v < 0 or v > 1:
      if v < -tol or v > 1 + tol:
        raise ValueError(
            f"box {list(box)} lies outside the image (normalized"
            f" {[round(x, 6) for x in values]})"
        )
      clipped = True
      v = min(max(v, 0.0), 1.0)
    out.append(v)
  return tuple(out), clipped


def _check_keypoints(keypoints, sx, sy, tol_x, tol_y):
  out = []
  clipped = False
  for i, kp in enumerate(keypoints):
    x, y = kp.x * sx, kp.y * sy
    if not (math.isfinite(x) and math.isfinite(y)):
      raise ValueError(f"keypoint {i} ({kp.x}, {kp.y}) is NaN or infinite")
    if kp.v == 0:
      # Not visible: COCO writes (0, 0), seed 001 allows a point outside the
      # image ("out of the image plane"). Kept as given, not range-checked.
      out.append(dataclasses.replace(kp, x=x, y=y))
      continue
    nx, ny = x, y
    if not (0 <= x <= 1 and 0 <= y <= 1):
      if x < -tol_x or x > 1 + tol_x or y < -tol_y or y > 1 + tol_y:
        raise ValueError(
            f"keypoint {i} ({kp.x}, {kp.y}) lies outside the image"
        )
      clipped = True
      nx, ny = min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)
    out.append(dataclasses.replace(kp, x=nx, y=ny))
  return tuple(out), clipped
