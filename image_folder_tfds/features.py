"""Feature keys and the `FeaturesDict` of `my_images`, defined once.

Nested keys flatten to `objects/bbox`, `objects/keypoints/x`, ... in the
stored `tf.train.Example`s. Fields of seed 001's schema map as documented in
README.md ("What is stored").
"""

from __future__ import annotations


import numpy as np
import tensorflow_datasets as tfds

from image_folder_tfds import images as images_lib
from image_folder_tfds import records

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
EXTRA = "extra"
OBJECTS = "objects"
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
# Keys of one keypoint.
KP_X = "x"
KP_Y = "y"
KP_V = "v"
KP_SCORE = "score"

MISSING = -1.0  # Stored for an optional number that was not given.


def features_dict(*, store_images: bool) -> tfds.features.FeaturesDict:
  """The features; class names are set at build time (`set_class_names`)."""
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


def set_class_names(features: tfds.features.FeaturesDict, names) -> None:
  """Sets the class names on every `ClassLabel` of `features`."""
  names = list(names)
  features[LABEL].names = names
  features[OBJECTS].feature[OBJ_LABEL].names = names


def class_names(features: tfds.features.FeaturesDict) -> list[str]:
  return list(features[LABEL].names)


def to_example(
    record: records.ImageRecord,
    image: images_lib.LoadedImage,
    objects: tuple[records.ObjectRecord, ...],
) -> dict:
  """The example dict for `features_dict`, from checked, normalized values."""
  example = {
      FILE_NAME: record.file_name,
      ID: record.id,
      HEIGHT: image.height,
      WIDTH: image.width,
      LABEL: record.label,
      LABEL_TEXT: record.label_text,
      LABEL_CONF: record.label_conf,
      EXTRA: record.extra,
      OBJECTS: [_object(o) for o in objects],
  }
  if image.data is not None:
    example[IMAGE] = image.data
  else:
    example[IMAGE_PATH] = record.path
  return example


def _object(o: records.ObjectRecord) -> dict:
  if o.box is None:
    box = tfds.features.BBox(0.0, 0.0, 0.0, 0.0)
  else:
    xmin, ymin, xmax, ymax = o.box
    box = tfds.features.BBox(ymin=ymin, xmin=xmin, ymax=ymax, xmax=xmax)
  return {
      BBOX: box,
      OBJ_LABEL: o.label,
      OBJ_TEXT: o.text,
      OBJ_SCORE: o.score,
      OBJ_CONF: o.conf,
      OBJ_AREA: o.area,
      OBJ_ID: o.id,
      OBJ_IS_CROWD: o.is_crowd,
      KEYPOINTS: [
          {KP_X: k.x, KP_Y: k.y, KP_V: k.v, KP_SCORE: k.score}
          for k in o.keypoints
      ],
  }


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
MG_CLASS_LABEL = "image/class/label"  # [id] when the image has a class, else [].
MG_CLASS_TEXT = "image/class/text"
MG_LABEL_OFFSET = 1


def model_garden_features_dict() -> tfds.features.FeaturesDict:
  """Features whose flattened keys are the `MG_*` names above."""
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


def to_model_garden_example(
    record: records.ImageRecord,
    image: images_lib.LoadedImage,
    objects: tuple[records.ObjectRecord, ...],
    *,
    source_id: str,
    class_names: list[str],
    num_keypoints: int,
) -> dict:
  """The example dict for `model_garden_features_dict`.

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
  labelled = record.label >= 0
  flat.update({
      MG_ENCODED: image.data,
      MG_FORMAT: image.format,
      MG_HEIGHT: height,
      MG_WIDTH: width,
      MG_SOURCE_ID: source_id,
      MG_FILENAME: record.file_name,
      MG_CLASS_LABEL: [record.label + MG_LABEL_OFFSET] if labelled else [],
      MG_CLASS_TEXT: [class_names[record.label]] if labelled else [],
  })
  return nest(flat)
