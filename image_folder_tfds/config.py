"""`MyImagesConfig`: every option of the `my_images` builder, in one place."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import tensorflow_datasets as tfds

from image_folder_tfds import features
from image_folder_tfds import readers
from image_folder_tfds import splits as splits_lib
from image_folder_tfds import versions

# "auto" and every reader's name (`readers.READERS`).
LAYOUTS = readers.LAYOUTS
# "tfds": our own nested features; "model_garden": the flat keys Model Garden
# and the TF Object Detection API parse (docs/model_garden.md).
OUTPUT_FORMATS = ("tfds", "model_garden")
DEFAULT_SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
# Pillow's own limit (Image.MAX_IMAGE_PIXELS): above it Pillow warns of a
# decompression bomb; we refuse the file instead.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
# A split with fewer examples than this gets a warning in the build report.
DEFAULT_MIN_SPLIT_EXAMPLES = 10


@dataclasses.dataclass(eq=False, kw_only=True)
class MyImagesConfig(tfds.core.BuilderConfig):
  """Options of `my_images`. Usable from Python and as `--config '{json}'`.

  Attributes:
    name: Where the build goes (`my_images/<name>/<version>`). Options that
      differ from the defaults need a name of their own.
    layout: "auto" (detected from the manual dir: the one reader that is
      surest the folder is its format), or a reader's name, one of
      `readers.LAYOUTS` ("folders", "coco", "voc", ...; docs/formats.md).
    annotations: An annotation file to read instead of detecting one, relative
      to the manual dir or absolute.
    source_url: URL of a `.tar.gz`/`.tgz`/`.tar`/`.zip` of class folders,
      downloaded and extracted by TFDS instead of reading `--manual_dir`; its
      size and sha256 are registered by `--register_checksums` (docs/releases.md,
      "Remote sources and checksums").
    labels_file: Class list, one name per line (index = line number from 0).
      Relative to the manual dir; default `labels.txt` there if present.
    split_fractions: For inputs without their own split, the fraction of
      images in each split, chosen by a stable hash of the relative path.
    max_side: Resize images whose longer side is larger than this (pixels).
    store_images: Store the image bytes (True) or only the file's path.
    max_image_pixels: Refuse images with more pixels (decompression bombs).
    strict: Fail the build at the first rejected or changed input.
    num_workers: Processes reading and checking images; 0 reads in the main
      process, None uses one per core.
    kind: Which features the dataset stores (docs/features.md):
      "auto" (found from the data: "keypoints" when an object has keypoints,
      else "detection" when an image has objects, else "classification"),
      or one of those to pin it, for example to keep one schema across
      releases. A kind poorer than the data is refused (annotations would be
      lost).
    min_split_examples: A split with fewer examples gets a "warning" in the
      build report (a split with none is left out of the dataset).
    output_format: "tfds" (nested features: `image`, `objects/bbox`, ...) or
      "model_garden" (`image/encoded`, `image/object/bbox/xmin`, ... with
      class ids from 1, plus `label_map.pbtxt` next to the dataset).
    check_cache: Reuse the checks of earlier builds (any version) for files
      whose bytes, options and code are unchanged (`check_cache.py`).
    check_cache_dir: Where that cache lives; default
      `DATA_DIR/my_images/<name>/.check_cache`. Builds may share one.
  """

  name: str = "default"
  layout: str = "auto"
  annotations: str | None = None
  source_url: str | None = None
  labels_file: str | None = None
  split_fractions: dict[str, float] = dataclasses.field(
      default_factory=lambda: dict(DEFAULT_SPLIT_FRACTIONS)
  )
  max_side: int | None = None
  store_images: bool = True
  max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
  strict: bool = False
  num_workers: int | None = None
  min_split_examples: int = DEFAULT_MIN_SPLIT_EXAMPLES
  output_format: str = "tfds"
  kind: str = "auto"
  check_cache: bool = True
  check_cache_dir: str | None = None

  def __post_init__(self):
    if self.output_format not in OUTPUT_FORMATS:
      raise ValueError(
          f"MyImagesConfig.output_format={self.output_format!r}: expected one"
          f" of {OUTPUT_FORMATS}")
    if self.output_format == "model_garden" and not self.store_images:
      raise ValueError(
          "MyImagesConfig: output_format='model_garden' needs"
          " store_images=True (Model Garden reads `image/encoded` bytes)")
    if self.kind not in features.KIND_OPTION_VALUES:
      raise ValueError(
          f"MyImagesConfig.kind={self.kind!r}: expected one of"
          f" {features.KIND_OPTION_VALUES}")
    if self.kind != "auto" and self.output_format == "model_garden":
      raise ValueError(
          "MyImagesConfig.kind applies to output_format='tfds' only (the"
          " model_garden layout has fixed keys)")
    if self.layout not in LAYOUTS:
      raise ValueError(
          f"MyImagesConfig.layout={self.layout!r}: expected one of {LAYOUTS}"
      )
    fractions = dict(self.split_fractions)
    for split, fraction in fractions.items():
      if splits_lib.canonical_split(split) != split:
        raise ValueError(
            f"MyImagesConfig.split_fractions: {split!r} is not a split name;"
            f" use {splits_lib.CANONICAL_SPLITS}"
        )
      if not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ValueError(
            f"MyImagesConfig.split_fractions[{split!r}]={fraction!r}: expected"
            " a number between 0 and 1"
        )
    if not fractions or not math.isclose(sum(fractions.values()), 1.0):
      raise ValueError(
          f"MyImagesConfig.split_fractions={fractions}: the fractions must add"
          " up to 1"
      )
    if self.max_side is not None and (
        not isinstance(self.max_side, int) or self.max_side < 1
    ):
      raise ValueError(
          f"MyImagesConfig.max_side={self.max_side!r}: expected a positive"
          " number of pixels, or None"
      )
    if self.max_image_pixels < 1:
      raise ValueError("MyImagesConfig.max_image_pixels must be positive")
    if self.version is not None or self.release_notes:
      if self.version is not None:
        versions.check_version(str(self.version), "MyImagesConfig.version")
      versions.check_release_notes(self.release_notes or {},
                                   "MyImagesConfig.release_notes")
    if self.source_url is not None:
      from image_folder_tfds import remote  # pylint: disable=g-import-not-at-top
      remote.check_url(self.source_url)
    if self.num_workers is not None and self.num_workers < 0:
      raise ValueError("MyImagesConfig.num_workers must be >= 0 or None")
    if (not isinstance(self.min_split_examples, int)
        or self.min_split_examples < 0):
      raise ValueError(
          f"MyImagesConfig.min_split_examples={self.min_split_examples!r}:"
          " expected a number of examples >= 0")
    if self.name == "default" and self.options() != _DEFAULT_OPTIONS:
      changed = sorted(
          k for k, v in self.options().items() if _DEFAULT_OPTIONS.get(k) != v
      )
      raise ValueError(
          f"MyImagesConfig: options {changed} differ from the defaults, so"
          " this config needs a name of its own (for example"
          ' {"name": "my_config", ...}); otherwise its build would be'
          " confused with the default one."
      )
    if self.description is None:
      self.description = f"my_images built with options {self.options()}"

  def read_options(self) -> readers.ReadOptions:
    """What the readers need of this config."""
    return readers.ReadOptions(
        split_fractions=dict(self.split_fractions),
        labels_file=self.labels_file,
        annotations=self.annotations,
        store_images=self.store_images,
    )

  def options(self) -> dict[str, Any]:
    """The options that change the built data (for reports and the card)."""
    # `num_workers` and the check cache change how fast, never what is built;
    # `min_split_examples` only what the report warns about.
    skip = {"name", "version", "release_notes", "supported_versions",
            "description", "tags", "num_workers", "check_cache",
            "check_cache_dir", "min_split_examples"}
    return {
        f.name: getattr(self, f.name)
        for f in dataclasses.fields(self)
        if f.name not in skip
    }


_DEFAULT_OPTIONS: dict[str, Any] = {}
_DEFAULT_OPTIONS.update(MyImagesConfig(name="_defaults").options())
