"""Feature keys and the `FeaturesDict` of `my_images`, defined once.

Nested keys flatten to `objects/bbox`, `objects/keypoints/x`, ... in the
stored `tf.train.Example`s. Fields of seed 001's schema map as documented in
README.md ("What is stored").
"""

from __future__ import annotations

import json

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


def extra_to_text(extra) -> str:
  """Seed 001's `extra`: kept as given when text, else as canonical JSON."""
  if extra is None:
    return ""
  if isinstance(extra, str):
    return extra
  return json.dumps(extra, sort_keys=True, ensure_ascii=False)
