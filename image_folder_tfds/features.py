"""Feature keys and the `FeaturesDict` of `my_images`, defined once.

Nested keys flatten to `objects/bbox`, `objects/keypoints/x`, ... in the
stored `tf.train.Example`s. Fields of seed 001's schema map as documented in
docs/features.md.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json

import numpy as np

from image_folder_tfds import images as images_lib
from image_folder_tfds import masks as masks_lib
from image_folder_tfds import records


class _LazyTFDS:
  """`tensorflow_datasets`, imported at its first use.

  The image workers make the example dicts (`Schema.to_example`,
  `to_model_garden_example`, through `pipeline.Maker`) and must not import
  TFDS (~0.4 s and ~100 MB each): only the functions that make or read TFDS
  features touch it (`tests/test_worker_examples.py` checks).
  """

  def __getattr__(self, name):
    import tensorflow_datasets  # pylint: disable=g-import-not-at-top
    return getattr(tensorflow_datasets, name)


tfds = _LazyTFDS()

# An object's box as `tfds.features.BBoxFeature` takes it: the fields of
# TFDS's own `BBox` namedtuple, whose module imports TFDS.
BBox = collections.namedtuple("BBox", ["ymin", "xmin", "ymax", "xmax"])

# Top-level keys.
IMAGE = "image"
IMAGE_PATH = "image_path"  # Only when store_images=False.
FILE_NAME = "file_name"
ID = "id"
HEIGHT = "height"
WIDTH = "width"
LABEL = "label"
LABEL_TEXT = "label_text"
LABEL_CONF = "label_conf"
# Image-level classes, several per image (CVAT tags, Label Studio choices,
# multi-label CSVs): Sequence(ClassLabel), as TFDS's own `voc` stores its
# image labels.
LABELS = "labels"
EXTRA = "extra"
OBJECTS = "objects"
# Folder pairs: the label image, (h, w, 1) class indices, PNG.
SEGMENTATION_MASK = "segmentation_mask"
# Keys of one object.
BBOX = "bbox"
OBJ_LABEL = "label"
OBJ_TEXT = "text"
OBJ_SCORE = "score"
OBJ_CONF = "conf"
OBJ_AREA = "area"
OBJ_ID = "id"
OBJ_IS_CROWD = "is_crowd"
KEYPOINTS = "keypoints"
# COCO instance masks: (h, w, 1), values 0/1, PNG (as TFDS's lvis).
OBJ_MASK = "mask"
# Keys of one keypoint.
KP_X = "x"
KP_Y = "y"
KP_V = "v"
KP_SCORE = "score"

MISSING = -1.0  # Stored for an optional number that was not given.

# --- The schema: which features a dataset stores, found from its data.
#
# Schema 1 (builder versions 1.x) stored every feature below for every
# dataset, keypoints as a `Sequence` inside the objects `Sequence` (read back
# as `tf.RaggedTensor`). Schema 2 (builder version 2.0.0) stores what the
# data has: the kind of data fixes the structure (`KINDS`), and each optional
# field (`OPTIONAL_KEYS`) is stored when at least one example of the build has
# a value for it. Keypoints are dense: per object, `(num_keypoints,)` arrays.
# Builder 2.1.0 adds the kind "images" (no class: unlabeled folders) and the
# optional `labels`; datasets of 2.0.0 read the same.
SCHEMA_VERSION = 2
IMAGES_KIND = "images"
CLASSIFICATION = "classification"
DETECTION = "detection"
KEYPOINTS_KIND = "keypoints"
# Each adds to the last: images only, an image class, objects, keypoints.
KINDS = (IMAGES_KIND, CLASSIFICATION, DETECTION, KEYPOINTS_KIND)
KIND_OPTION_VALUES = ("auto",) + KINDS

# Flat keys of the optional fields (as they appear in the stored Examples),
# and when a record has a value for one.
_TOP_OPTIONAL = {
    ID: lambda r: r.id != r.file_name,
    LABEL_CONF: lambda r: r.label_conf != MISSING,
    EXTRA: lambda r: r.extra != "",
    SEGMENTATION_MASK: lambda r: r.mask_path != "",
    LABELS: lambda r: bool(r.labels),
}
_OBJECT_OPTIONAL = {
    f"{OBJECTS}/{OBJ_SCORE}": lambda o: o.score != MISSING,
    f"{OBJECTS}/{OBJ_CONF}": lambda o: o.conf != MISSING,
    f"{OBJECTS}/{OBJ_AREA}": lambda o: o.area != MISSING,
    f"{OBJECTS}/{OBJ_ID}": lambda o: o.id != "",
    f"{OBJECTS}/{OBJ_IS_CROWD}": lambda o: o.is_crowd,
    f"{OBJECTS}/{OBJ_MASK}": lambda o: o.segmentation >= 0,
    f"{OBJECTS}/{KEYPOINTS}/{KP_SCORE}": lambda o: o.keypoint_score_given or any(
        k.score != MISSING for k in o.keypoints),
}
# The image class is part of a classification dataset; in the other kinds it
# is stored when some image has one (seed 001 images with a class and boxes).
_IMAGE_LABEL_OPTIONAL = {LABEL: lambda r: r.label >= 0}
OPTIONAL_KEYS = (*_TOP_OPTIONAL, LABEL, *_OBJECT_OPTIONAL)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Schema:
  """What a schema-2 dataset stores: its kind and its optional fields.

  Found from the scanned records (`from_records`), deterministically: the
  same records always give the same schema. Recorded in the dataset's
  metadata (`metadata["schema"]`).
  """

  kind: str = CLASSIFICATION
  store_images: bool = True
  num_keypoints: int = 0  # Per object; objects with fewer are padded.
  optional: frozenset[str] = frozenset()  # The `OPTIONAL_KEYS` stored.
  # Metadata columns, each a top-level feature of its own name:
  # ((name, type), ...), types from `readers.common.COLUMN_TYPES`.
  columns: tuple[tuple[str, str], ...] = ()

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"schema kind {self.kind!r}: expected one of {KINDS}")
    unknown = set(self.optional) - set(OPTIONAL_KEYS)
    if unknown:
      raise ValueError(f"unknown optional schema keys {sorted(unknown)}")
    if (self.kind == KEYPOINTS_KIND) != (self.num_keypoints > 0):
      raise ValueError(
          f"schema kind {self.kind!r} with {self.num_keypoints} keypoints per"
          " object")
    for name, kind in self.columns:
      check_column_name(name)
      if kind not in _COLUMN_FEATURES:
        raise ValueError(f"column {name!r}: unknown type {kind!r}")

  @classmethod
  def from_records(
      cls, recs, *, store_images: bool = True, kind: str = "auto",
      columns: dict[str, str] | None = None,
  ) -> Schema:
    """The schema of `recs` (every scanned record of every split).

    kind "auto": "keypoints" when an object has keypoints, else "detection"
    when an image has objects, else "classification" when an image has a
    class or a label image (class folders, folder pairs), else "images". A
    kind given by the user may be richer than the data (a stable schema
    across releases), never poorer: that would drop annotations, so it is an
    `InputError`.
    """
    if kind not in KIND_OPTION_VALUES:
      raise ValueError(f"kind={kind!r}: expected one of {KIND_OPTION_VALUES}")
    if isinstance(recs, records.FolderRecords):
      # A folder scan: a path, a split and a class (or none, in an unlabeled
      # folder) per image, so nothing optional (its id is its file name).
      found = CLASSIFICATION if recs.has_labels() else IMAGES_KIND
      optional, num_keypoints = set(), 0
      first = {CLASSIFICATION: "the class folders"}
    else:
      found, optional, num_keypoints, first = _survey(recs)
    if kind != "auto" and KINDS.index(kind) < KINDS.index(found):
      raise records.InputError(
          f"kind={kind!r}, but the data has {found} annotations (first in"
          f" {first[found]}): they would be lost. Use kind={found!r} or"
          " 'auto'.")
    chosen = found if kind == "auto" else kind
    if chosen == CLASSIFICATION and SEGMENTATION_MASK not in optional:
      optional -= {LABEL}  # Not optional there.
    if chosen == IMAGES_KIND:
      optional -= {LABEL}  # No image has one.
    if chosen == KEYPOINTS_KIND and not num_keypoints:
      raise records.InputError(
          "kind='keypoints', but no object has keypoints: the number of"
          " keypoints per object cannot be known")
    if chosen != KEYPOINTS_KIND:
      num_keypoints = 0
      optional.discard(f"{OBJECTS}/{KEYPOINTS}/{KP_SCORE}")
    if chosen in (IMAGES_KIND, CLASSIFICATION):
      optional = {k for k in optional if not k.startswith(OBJECTS + "/")}
    return cls(kind=chosen, store_images=store_images,
               num_keypoints=num_keypoints, optional=frozenset(optional),
               columns=tuple((columns or {}).items()))

  @classmethod
  def from_metadata(cls, data: dict, *, store_images: bool) -> Schema:
    return cls(kind=data["kind"], store_images=store_images,
               num_keypoints=int(data.get("num_keypoints", 0)),
               optional=frozenset(data.get("optional", ())),
               columns=tuple(tuple(c) for c in data.get("columns", ())))

  def to_metadata(self) -> dict:
    out = {"version": SCHEMA_VERSION, "kind": self.kind,
           "num_keypoints": self.num_keypoints,
           "optional": sorted(self.optional)}
    if self.columns:  # Absent otherwise: the metadata of 2.0.0 datasets.
      out["columns"] = [list(c) for c in self.columns]
    return out

  @property
  def has_objects(self) -> bool:
    return self.kind not in (IMAGES_KIND, CLASSIFICATION)

  @property
  def has_image_label(self) -> bool:
    # Folder pairs (a label image per image, no objects) have an image class
    # only when some image has one.
    return (self.kind == CLASSIFICATION and not self.has(SEGMENTATION_MASK)
            ) or LABEL in self.optional

  def has(self, key: str) -> bool:
    """Whether the optional flat `key` (e.g. "objects/score") is stored."""
    return key in self.optional

  def features_dict(self) -> tfds.features.FeaturesDict:
    """The features; class names are set at build time (`set_class_names`)."""
    f = tfds.features
    out = (
        {IMAGE: f.Image(shape=(None, None, 3))}
        if self.store_images
        else {IMAGE_PATH: f.Text()}
    )
    out.update({FILE_NAME: f.Text(), HEIGHT: np.int32, WIDTH: np.int32})
    if self.has_image_label:
      out[LABEL] = f.ClassLabel()
    top = {ID: f.Text(), LABEL_CONF: np.float32, EXTRA: f.Text(),
           SEGMENTATION_MASK: _mask_image(),
           LABELS: f.Sequence(f.ClassLabel())}
    out.update({k: v for k, v in top.items() if self.has(k)})
    if self.has_objects:
      obj = {BBOX: f.BBoxFeature(), OBJ_LABEL: f.ClassLabel()}
      optional = {OBJ_SCORE: np.float32, OBJ_CONF: np.float32,
                  OBJ_AREA: np.float32, OBJ_ID: f.Text(),
                  OBJ_IS_CROWD: np.bool_, OBJ_MASK: _mask_image()}
      obj.update({k: v for k, v in optional.items()
                  if self.has(f"{OBJECTS}/{k}")})
      if self.kind == KEYPOINTS_KIND:
        obj[KEYPOINTS] = f.FeaturesDict(self._keypoint_features())
      out[OBJECTS] = f.Sequence(f.FeaturesDict(obj))
    for name, kind in self.columns:
      out[name] = _COLUMN_FEATURES[kind]()
    return f.FeaturesDict(out)

  def _keypoint_features(self) -> dict:
    n = (self.num_keypoints,)
    kp = {KP_X: f_tensor(n, np.float32), KP_Y: f_tensor(n, np.float32),
          KP_V: f_tensor(n, np.int32)}
    if self.has(f"{OBJECTS}/{KEYPOINTS}/{KP_SCORE}"):
      kp[KP_SCORE] = f_tensor(n, np.float32)
    return kp

  def supervised_keys(self) -> tuple[str, str] | None:
    image = IMAGE if self.store_images else IMAGE_PATH
    if self.has_image_label:
      return (image, LABEL)
    if self.has(SEGMENTATION_MASK):
      return (image, SEGMENTATION_MASK)
    if self.has(LABELS) and not self.has_objects:  # Multi-label data.
      return (image, LABELS)
    return None

  def to_example(
      self,
      record: records.ImageRecord,
      image: images_lib.LoadedImage,
      objects: tuple[records.ObjectRecord, ...],
      masks: tuple[bytes, ...] = (),
      segmentation_mask: bytes | None = None,
  ) -> dict:
    """The example dict of `features_dict`, from checked, normalized values.

    `masks`: one PNG per object (`pipeline.Outcome.masks`), or none when no
    object of the image has a segmentation; `segmentation_mask`: the label
    image PNG of a folder pair.
    """
    example = {FILE_NAME: record.file_name, HEIGHT: image.height,
               WIDTH: image.width}
    if image.data is not None:
      example[IMAGE] = image.data
    else:
      example[IMAGE_PATH] = record.path
    if self.has_image_label:
      example[LABEL] = record.label
    if self.has(ID):
      example[ID] = record.id
    if self.has(LABEL_CONF):
      example[LABEL_CONF] = record.label_conf
    if self.has(EXTRA):
      example[EXTRA] = record.extra
    if self.has(LABELS):
      example[LABELS] = list(record.labels)
    if self.has(SEGMENTATION_MASK):
      if segmentation_mask is None:
        raise ValueError(f"{record.path}: no segmentation mask")
      example[SEGMENTATION_MASK] = segmentation_mask
    if self.columns:
      values = json.loads(record.columns) if record.columns else {}
      for name, _ in self.columns:
        if name not in values:
          raise ValueError(f"{record.source}: no value of column {name!r} for"
                           f" {record.file_name}")
        example[name] = values[name]
    if self.has_objects:
      example[OBJECTS] = [self._object(o) for o in objects]
      if self.has(f"{OBJECTS}/{OBJ_MASK}"):
        pngs = masks_lib.complete(masks, len(objects), image.height,
                                  image.width)
        for obj, png in zip(example[OBJECTS], pngs, strict=True):
          obj[OBJ_MASK] = png
    return example

  def _object(self, o: records.ObjectRecord) -> dict:
    out = {BBOX: _bbox(o), OBJ_LABEL: o.label}
    for key, value in ((OBJ_SCORE, o.score), (OBJ_CONF, o.conf),
                       (OBJ_AREA, o.area), (OBJ_ID, o.id),
                       (OBJ_IS_CROWD, o.is_crowd)):
      if self.has(f"{OBJECTS}/{key}"):
        out[key] = value
    if self.kind == KEYPOINTS_KIND:
      kps = o.keypoints
      pad = self.num_keypoints - len(kps)
      if pad < 0:
        raise ValueError(
            f"object {o.id} has {len(kps)} keypoints, more than the dataset's"
            f" {self.num_keypoints}")
      # Padding: not labelled (v=0) at (0, 0), score not given.
      kp = {KP_X: [k.x for k in kps] + [0.0] * pad,
            KP_Y: [k.y for k in kps] + [0.0] * pad,
            KP_V: [k.v for k in kps] + [0] * pad}
      if self.has(f"{OBJECTS}/{KEYPOINTS}/{KP_SCORE}"):
        kp[KP_SCORE] = [k.score for k in kps] + [MISSING] * pad
      out[KEYPOINTS] = kp
    return out

  def keys(self) -> list[str]:
    """Every flat key of the stored `tf.train.Example`s, sorted."""
    return sorted(_flat_keys(self.features_dict(), ""))


# The feature of each metadata column type (`readers.common.COLUMN_TYPES`).
# TFDS stores floats as float32 (tf.train.Example has no doubles).
_COLUMN_FEATURES = {
    "int": lambda: f_tensor((), np.int64),
    "float": lambda: f_tensor((), np.float32),
    "bool": lambda: f_tensor((), np.bool_),
    "text": lambda: tfds.features.Text(),
    "int_list": lambda: f_tensor((None,), np.int64),
    "float_list": lambda: f_tensor((None,), np.float32),
    "bool_list": lambda: f_tensor((None,), np.bool_),
    "text_list": lambda: tfds.features.Sequence(tfds.features.Text()),
}
# Our own top-level keys: a metadata column may not take one of them.
RESERVED_KEYS = frozenset((IMAGE, IMAGE_PATH, FILE_NAME, ID, HEIGHT, WIDTH,
                           LABEL, LABEL_TEXT, LABEL_CONF, EXTRA, OBJECTS,
                           SEGMENTATION_MASK, LABELS))


def check_column_name(name: str) -> None:
  """A metadata column's name is a feature name: not one of ours, no `/`
  (TFDS joins nested keys with it)."""
  if not isinstance(name, str) or not name or "/" in name:
    raise ValueError(f"column name {name!r}: must be a non-empty name"
                     " without '/'")
  if name in RESERVED_KEYS:
    raise ValueError(f"column name {name!r} is one of the dataset's own"
                     f" features {sorted(RESERVED_KEYS)}")


def _mask_image() -> tfds.features.Image:
  """A mask: one channel, PNG (lossless)."""
  return tfds.features.Image(shape=(None, None, 1), encoding_format="png")


def f_tensor(shape, dtype) -> tfds.features.Tensor:
  return tfds.features.Tensor(shape=shape, dtype=dtype)


def _flat_keys(feature, prefix: str):
  if isinstance(feature, tfds.features.FeaturesDict):
    for name, sub in feature.items():
      yield from _flat_keys(sub, f"{prefix}/{name}" if prefix else name)
  elif isinstance(feature, tfds.features.Sequence):
    yield from _flat_keys(feature.feature, prefix)
  else:
    yield prefix


def _survey(recs):
  """(kind, optional keys with a value, keypoints per object, first place).

  One pass over the records; `first[kind]` names the first record of that
  kind, for error messages.
  """
  kind = 0  # Index into KINDS.
  optional: set[str] = set()
  num_keypoints = 0
  first = {}
  top = {**_TOP_OPTIONAL, **_IMAGE_LABEL_OPTIONAL}
  pending_top = dict(top)
  pending_obj = dict(_OBJECT_OPTIONAL)
  for r in recs:
    for key, has in list(pending_top.items()):
      if has(r):
        optional.add(key)
        del pending_top[key]
    if not kind and (r.label >= 0 or r.mask_path):
      kind = 1
      first[CLASSIFICATION] = f"{r.source} ({r.file_name})"
    for o in r.objects:
      if kind < 2:
        kind = 2
        first[DETECTION] = f"{r.source} ({r.file_name})"
      if o.keypoints:
        if kind < 3:
          kind = 3
          first[KEYPOINTS_KIND] = f"{r.source} ({r.file_name})"
        num_keypoints = max(num_keypoints, len(o.keypoints))
      for key, has in list(pending_obj.items()):
        if has(o):
          optional.add(key)
          del pending_obj[key]
  return KINDS[kind], optional, num_keypoints, first


def legacy_features_dict(*, store_images: bool) -> tfds.features.FeaturesDict:
  """Schema 1 (builder versions 1.x): every feature, nested keypoints.

  Kept so that tests can make a 1.x dataset and check it still loads; data
  built with it is read through its own `features.json`.
  """
  f = tfds.features
  image = (
      {IMAGE: f.Image(shape=(None, None, 3))}
      if store_images
      else {IMAGE_PATH: f.Text()}
  )
  keypoint = f.FeaturesDict({
      KP_X: np.float32,
      KP_Y: np.float32,
      KP_V: np.int32,
      KP_SCORE: np.float32,
  })
  obj = f.FeaturesDict({
      BBOX: f.BBoxFeature(),
      OBJ_LABEL: f.ClassLabel(),
      OBJ_TEXT: f.Text(),
      OBJ_SCORE: np.float32,
      OBJ_CONF: np.float32,
      OBJ_AREA: np.float32,
      OBJ_ID: f.Text(),
      OBJ_IS_CROWD: np.bool_,
      KEYPOINTS: f.Sequence(keypoint),
  })
  return f.FeaturesDict({
      **image,
      FILE_NAME: f.Text(),
      ID: f.Text(),
      HEIGHT: np.int32,
      WIDTH: np.int32,
      LABEL: f.ClassLabel(),
      LABEL_TEXT: f.Text(),
      LABEL_CONF: np.float32,
      EXTRA: f.Text(),
      OBJECTS: f.Sequence(obj),
  })


def dense_numpy_sequences(feature_dict: tfds.features.FeaturesDict) -> None:
  """Makes `tfds.data_source` give arrays for `objects/...`, as `tfds.load`.

  TFDS 4.9.10 decodes a `Sequence` for `tfds.data_source` with
  `np_utils.np_map_fn`, one element at a time, so every per-object field
  comes back as a Python list of arrays, and an image without objects gives
  `[]` (no dtype, no shape) where `tfds.load` gives a `(0, 4)` float32 array.
  Its TensorFlow path skips the per-element decoding for plain tensors
  (`Tensor.decode_batch_example`); the same is done here for the NumPy path,
  on the leaves of this `feature_dict` only.
  """
  f = tfds.features
  plain = (f.Tensor.decode_example_np, f.Text.decode_example_np)
  for name, feature in feature_dict.items():
    if isinstance(feature, f.FeaturesDict):
      dense_numpy_sequences(feature)
    elif type(feature) is f.Sequence and isinstance(feature.feature,
                                                     f.FeaturesDict):
      for leaf in _leaves(feature.feature):
        shape = tuple(getattr(leaf, "shape", (None,)))
        if (type(leaf).decode_example_np in plain and None not in shape
            and not getattr(leaf, "_encoded_to_bytes", True)):
          leaf.decode_batch_example_np = functools.partial(
              _dense_batch, np.dtype(leaf.np_dtype), shape)
        elif type(leaf) is f.Image:  # Instance masks: (n, h, w, 1).
          leaf.decode_batch_example_np = functools.partial(_image_batch, leaf)


def _leaves(feature):
  if isinstance(feature, tfds.features.FeaturesDict):
    for sub in feature.values():
      yield from _leaves(sub)
  else:
    yield feature


def _image_batch(leaf, batch) -> np.ndarray:
  """The images of one example's objects, stacked as `tfds.load` gives them
  (an image without objects: shape (0, 0, 0, channels))."""
  images = [leaf.decode_example_np(b) for b in batch]
  if not images:
    return np.zeros((0, 0, 0, leaf.shape[-1]), np.dtype(leaf.np_dtype))
  return np.stack(images)


def _dense_batch(dtype, shape, batch) -> np.ndarray:
  return np.asarray(batch, dtype=dtype).reshape((-1, *shape))


def set_class_names(features: tfds.features.FeaturesDict, names) -> None:
  """Sets the class names on every `ClassLabel` of `features`."""
  names = list(names)
  if LABEL in features:
    features[LABEL].names = names
  if LABELS in features:
    features[LABELS].feature.names = names
  if OBJECTS in features:
    features[OBJECTS].feature[OBJ_LABEL].names = names


def class_names(features: tfds.features.FeaturesDict) -> list[str]:
  if LABEL in features:
    return list(features[LABEL].names)
  if LABELS in features:
    return list(features[LABELS].feature.names)
  if OBJECTS in features:
    return list(features[OBJECTS].feature[OBJ_LABEL].names)
  return []


def _bbox(o: records.ObjectRecord) -> BBox:
  if o.box is None:
    return BBox(0.0, 0.0, 0.0, 0.0)
  xmin, ymin, xmax, ymax = o.box
  return BBox(ymin=ymin, xmin=xmin, ymax=ymax, xmax=xmax)


# --- Model Garden / Object Detection API layout (output_format="model_garden")
# The serialized keys are exactly those that Model Garden's
# `official/vision/dataloaders/tf_example_decoder.py` and the OD API's
# `object_detection/data_decoders/tf_example_decoder.py` parse. TFDS writes
# nested `FeaturesDict` keys joined by "/", so the dict below is built from
# these flat names. Class ids are class index + `MG_LABEL_OFFSET` (0 is the
# background class in both).
MG_ENCODED = "image/encoded"
MG_FORMAT = "image/format"
MG_HEIGHT = "image/height"
MG_WIDTH = "image/width"
MG_SOURCE_ID = "image/source_id"
MG_FILENAME = "image/filename"
MG_XMIN = "image/object/bbox/xmin"
MG_XMAX = "image/object/bbox/xmax"
MG_YMIN = "image/object/bbox/ymin"
MG_YMAX = "image/object/bbox/ymax"
MG_OBJ_LABEL = "image/object/class/label"
MG_OBJ_TEXT = "image/object/class/text"
MG_AREA = "image/object/area"  # Pixels of the stored image.
MG_IS_CROWD = "image/object/is_crowd"
MG_KP_X = "image/object/keypoint/x"  # num_objects * num_keypoints values.
MG_KP_Y = "image/object/keypoint/y"
MG_KP_VISIBILITY = "image/object/keypoint/visibility"
MG_CLASS_LABEL = "image/class/label"  # [id], the ids of its `labels`, or [].
MG_CLASS_TEXT = "image/class/text"
# One PNG (values 0/1) per object, as Model Garden's create_coco_tf_record.py
# writes them and TfExampleDecoder(include_mask=True) reads them; only in
# datasets with instance masks.
MG_MASK = "image/object/mask"
# The label image (values: class indices, no offset), as Model Garden's
# segmentation_input.Decoder reads it; only in folder-pair datasets.
MG_SEGMENTATION = "image/segmentation/class/encoded"
MG_LABEL_OFFSET = 1


def model_garden_features_dict(
    *, masks: bool = False, segmentation: bool = False
) -> tfds.features.FeaturesDict:
  """Features whose flattened keys are the `MG_*` names above.

  `masks`, `segmentation`: the dataset has instance masks / label images.
  """
  f = tfds.features

  def values(dtype):
    return f.Tensor(shape=(None,), dtype=dtype)

  flat = {
      MG_ENCODED: f.Image(shape=(None, None, 3)),
      MG_FORMAT: f.Text(),
      MG_HEIGHT: np.int64,
      MG_WIDTH: np.int64,
      MG_SOURCE_ID: f.Text(),
      MG_FILENAME: f.Text(),
      MG_XMIN: values(np.float32),
      MG_XMAX: values(np.float32),
      MG_YMIN: values(np.float32),
      MG_YMAX: values(np.float32),
      MG_OBJ_LABEL: values(np.int64),
      MG_OBJ_TEXT: values(np.str_),
      MG_AREA: values(np.float32),
      MG_IS_CROWD: values(np.int64),
      MG_KP_X: values(np.float32),
      MG_KP_Y: values(np.float32),
      MG_KP_VISIBILITY: values(np.int64),
      MG_CLASS_LABEL: values(np.int64),
      MG_CLASS_TEXT: values(np.str_),
  }
  if masks:
    flat[MG_MASK] = values(np.object_)
  if segmentation:
    flat[MG_SEGMENTATION] = f.Tensor(shape=(), dtype=np.object_)
  return f.FeaturesDict(nest(flat))


def nest(flat: dict) -> dict:
  """{"a/b": x} -> {"a": {"b": x}}."""
  out: dict = {}
  for key, value in flat.items():
    *parents, leaf = key.split("/")
    node = out
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return out


def is_model_garden(features_or_example) -> bool:
  """Whether a `FeaturesDict` (or a decoded example) has the Model Garden keys.

  Both formats have a top-level "image"; in this one it is a dict.
  """
  image = features_or_example[IMAGE] if IMAGE in features_or_example else None
  return isinstance(image, (dict, tfds.features.FeaturesDict))


def get_flat(example: dict, key: str):
  """`example["image"]["object"]["area"]` for key "image/object/area"."""
  for part in key.split("/"):
    example = example[part]
  return example


def has_flat(example: dict, key: str) -> bool:
  """Whether `get_flat(example, key)` finds a value."""
  for part in key.split("/"):
    if part not in example:
      return False
    example = example[part]
  return True


def to_model_garden_example(
    record: records.ImageRecord,
    image: images_lib.LoadedImage,
    objects: tuple[records.ObjectRecord, ...],
    *,
    source_id: str,
    class_names: list[str],
    num_keypoints: int,
    masks: tuple[bytes, ...] | None = None,
    segmentation_mask: bytes | None = None,
) -> dict:
  """The example dict for `model_garden_features_dict`.

  `masks`: one PNG per object when the dataset has instance masks (else
  None); `segmentation_mask`: the label image PNG of a folder-pair dataset.

  Boxes and keypoints are normalized (as `annotations.finalize` returns them);
  areas are in pixels of the stored image, as Model Garden computes them
  when absent. Every object gets `num_keypoints` keypoints (the dataset's
  largest count): objects with fewer are padded with (0, 0) and visibility 0,
  as the OD API's COCO converter does, since its decoder reshapes the lists to
  [num_objects, num_keypoints].
  """
  if image.data is None:
    raise ValueError("the model_garden layout stores image bytes")
  width, height = image.width, image.height
  flat = {key: [] for key in (
      MG_XMIN, MG_XMAX, MG_YMIN, MG_YMAX, MG_OBJ_LABEL, MG_OBJ_TEXT, MG_AREA,
      MG_IS_CROWD, MG_KP_X, MG_KP_Y, MG_KP_VISIBILITY)}
  for o in objects:
    xmin, ymin, xmax, ymax = o.box if o.box is not None else (0.0,) * 4
    flat[MG_XMIN].append(xmin)
    flat[MG_XMAX].append(xmax)
    flat[MG_YMIN].append(ymin)
    flat[MG_YMAX].append(ymax)
    if not 0 <= o.label < len(class_names):
      raise ValueError(
          f"{record.source}: object {o.id or ''} of {record.file_name} has no"
          " class; the model_garden layout needs one for every object")
    flat[MG_OBJ_LABEL].append(o.label + MG_LABEL_OFFSET)
    # The class name, not the object's free text: with a label map, the OD API
    # maps `class/text` to the id, and it takes precedence over `class/label`.
    flat[MG_OBJ_TEXT].append(class_names[o.label])
    # `o.area` is normalized by the image area (-1: not given).
    area = o.area if o.area >= 0 else (xmax - xmin) * (ymax - ymin)
    flat[MG_AREA].append(area * width * height)
    flat[MG_IS_CROWD].append(int(o.is_crowd))
    if len(o.keypoints) > num_keypoints:
      raise ValueError(
          f"object has {len(o.keypoints)} keypoints, more than the dataset's"
          f" {num_keypoints}")
    for k in o.keypoints:
      flat[MG_KP_X].append(k.x)
      flat[MG_KP_Y].append(k.y)
      flat[MG_KP_VISIBILITY].append(k.v)
    padding = num_keypoints - len(o.keypoints)
    flat[MG_KP_X].extend([0.0] * padding)
    flat[MG_KP_Y].extend([0.0] * padding)
    flat[MG_KP_VISIBILITY].extend([0] * padding)
  # The image's classes: its one class, or its several `labels`.
  image_labels = [record.label] if record.label >= 0 else list(record.labels)
  flat.update({
      MG_ENCODED: image.data,
      MG_FORMAT: image.format,
      MG_HEIGHT: height,
      MG_WIDTH: width,
      MG_SOURCE_ID: source_id,
      MG_FILENAME: record.file_name,
      MG_CLASS_LABEL: [i + MG_LABEL_OFFSET for i in image_labels],
      MG_CLASS_TEXT: [class_names[i] for i in image_labels],
  })
  if masks is not None:
    if len(masks) != len(objects):
      raise ValueError(f"{len(masks)} masks for {len(objects)} objects")
    flat[MG_MASK] = list(masks)
  if segmentation_mask is not None:
    flat[MG_SEGMENTATION] = segmentation_mask
  return nest(flat)
