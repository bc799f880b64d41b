"""The one record type between the readers and the builder.

Every reader (class folders, seed-001 JSON, COCO, VOC, CSV) turns its input
into `ImageRecord`s and `Problem`s. The builder never knows where a record came
from. Readers validate structure and types at the edge; coordinates that need
the real image size are checked by `annotations.finalize` once the image header
has been read.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Coords = Literal["normalized", "pixel"]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Keypoint:
  x: float
  y: float
  v: int = 2  # 0: not labelled / outside, 1: occluded, 2: visible (seed 001).
  score: float = -1.0


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ObjectRecord:
  """One annotated object. Box is (xmin, ymin, xmax, ymax) or None."""

  box: tuple[float, float, float, float] | None = None
  label: int = -1  # Index into the dataset's class names, -1 when unknown.
  text: str = ""
  score: float = -1.0
  conf: float = -1.0
  area: float = -1.0  # Normalized by image area; -1 when not given.
  id: str = ""
  is_crowd: bool = False
  keypoints: tuple[Keypoint, ...] = ()
  keypoint_score_given: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ImageRecord:
  """One input image and everything known about it before it is read."""

  key: str  # Stable, human-readable example key (relative path).
  path: str  # Absolute path of the image file.
  file_name: str  # Path relative to the data root, posix separators.
  split: str
  source: str  # The file that produced this record (for error messages).
  id: str = ""
  label: int = -1
  label_text: str = ""
  label_conf: float = -1.0
  objects: tuple[ObjectRecord, ...] = ()
  coords: Coords = "normalized"
  extra: str = ""
  # (width, height) the annotation file says the image has, if it says; a
  # mismatch with the image as displayed is reported (annotations.finalize).
  size: tuple[int, int] | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Problem:
  """Something found while reading the input: rejected, changed or noted.

  `kind` is "rejected" (an input was not written), "changed" (an annotation
  written after a fix, for example a clipped box), "converted" (an image
  re-encoded by design: EXIF orientation, BMP to PNG, resize) or "warning"
  (nothing was lost, but the user should know: an empty class folder).
  Strict mode stops at "rejected" and "changed".
  """

  file: str
  reason: str
  kind: Literal["rejected", "changed", "converted", "warning"] = "rejected"
  split: str = ""
  item: str = ""  # Annotation or object id, where there is one.
  counts_as_input: bool = True  # A rejected image counts towards inputs found.

  def __str__(self) -> str:
    where = f"{self.file} [{self.item}]" if self.item else self.file
    return f"{where}: {self.reason}"


class InputError(ValueError):
  """Input that cannot be built from at all (no images, bad labels file, ...)."""


class BadInputError(ValueError):
  """Raised in strict mode at the first rejected or changed input."""

  def __init__(self, problem: Problem):
    super().__init__(f"{problem} (strict mode stops at the first bad input)")
    self.problem = problem
