"""Our serialized examples in TFDS's own writer, and its memory bounded.

`Serializer.for_features` plans a TFDS `FeaturesDict` for `wire.Serializer`
(the bytes TFDS writes, ~30 us an example instead of TFDS's ~400 us). Every
feature `features.Schema` and `features.model_garden_features_dict` declare
is planned; a type that is not (Video, a non-uint8 Image, ...) is an
`Unsupported` error naming it, never a silent change of path.

A default build writes its shards itself (`shards.py`). TFDS's writer
(`SplitBuilder`, `writer.Writer`) still writes capped debug builds
(`max_examples_per_split`) and the formats `shards.py` does not read back;
there, `passthrough` lets our serialized examples through TFDS unchanged and
`bounded_shuffle_memory` caps TFDS's shuffle buffer.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

from image_folder_tfds import release
from image_folder_tfds import wire

Unsupported = wire.Unsupported


@dataclasses.dataclass(frozen=True)
class Serialized:
  """A serialized `tf.train.Example`, passed through TFDS unchanged."""

  data: bytes


class Serializer(wire.Serializer):
  """`wire.Serializer` planned from a TFDS `FeaturesDict`."""

  @classmethod
  def for_features(cls, features) -> Serializer:
    """Raises `Unsupported` (naming the feature) for a type not planned."""
    return cls(plan_for(features))


def plan_for(features) -> wire.Plan:
  """The wire plan of `features` (class names must be set already: the
  `ClassLabel` checks need their number)."""
  return wire.Plan(tuple(_plan(features, "", ())))


def _plan(feature, key: str, path: tuple[str, ...]):
  """Yields a `wire.Field` per stored key of `feature`."""
  f = tfds.features
  # Exact types: subclasses (Video, ...) encode their own way.
  ftype = type(feature)
  if ftype is f.FeaturesDict:
    for name, sub in feature.items():
      yield from _plan(sub, f"{key}/{name}" if key else name, path + (name,))
    return
  if ftype is f.Sequence:
    if feature._length is not None:  # pylint: disable=protected-access
      raise wire.Unsupported(f"{key}: fixed-length Sequence")
    if path.count("") >= 2:
      raise wire.Unsupported(f"{key}: Sequence nested more than twice")
    yield from _plan(feature.feature, key, path + ("",))
    return
  if ftype is f.Image:
    if np.dtype(feature.np_dtype) != np.uint8:
      raise wire.Unsupported(f"{key}: {feature.np_dtype} image")
    yield wire.Field(key, path, wire.BYTES, wire.Leaf(wire.IMAGE), 1)
  elif ftype is f.ClassLabel:
    yield wire.Field(key, path, wire.INT, wire.Leaf(
        wire.CLASS_LABEL, names=tuple(feature.names or ()),
        num_classes=feature.num_classes), 1)
  elif ftype is f.BBoxFeature:
    if str(feature.bbox_format) not in ("BBoxFormat.REL_YXYX", "REL_YXYX",
                                        "rel_yxyx"):
      raise wire.Unsupported(f"{key}: bbox format {feature.bbox_format}")
    yield wire.Field(key, path, wire.FLOAT, wire.Leaf(wire.BBOX), 4)
  elif ftype in (f.Text, f.Tensor, getattr(f, "Scalar", f.Tensor)):
    if isinstance(feature, f.Text) and feature.encoder is not None:
      raise wire.Unsupported(f"{key}: Text with an encoder")
    shape = tuple(feature.shape)
    if len(shape) > 1 or (
        shape and shape[0] is None and path.count("")):
      raise wire.Unsupported(f"{key}: Tensor of shape {shape}")
    dtype = np.dtype(feature.np_dtype)
    if dtype.kind in ("U", "S", "O"):
      kind = wire.BYTES
    elif dtype.kind == "f":
      kind = wire.FLOAT
    elif dtype.kind in ("i", "u", "b") and dtype != np.uint64:
      kind = wire.INT
    else:
      raise wire.Unsupported(f"{key}: dtype {dtype}")
    if dtype.kind == "f" and dtype.itemsize > 4:
      raise wire.Unsupported(f"{key}: dtype {dtype}")  # TFDS stores float32 only.
    width = 1 if not shape else (shape[0] or 0)  # 0: any length.
    leaf = wire.Leaf(wire.TEXT if isinstance(feature, f.Text) else wire.TENSOR,
                     vector=bool(shape))
    yield wire.Field(key, path, kind, leaf, width)
  else:
    raise wire.Unsupported(f"{key}: {type(feature).__name__}")


@contextlib.contextmanager
def passthrough(features):
  """While active, `Serialized` examples go through TFDS unchanged.

  TFDS's `SplitBuilder` calls `features.encode_example` then
  `ExampleSerializer.serialize_example` on every example and has no way to
  accept one already serialized; both are wrapped for `Serialized` values
  only (the first on this `features` object alone). Any other example takes
  TFDS's serializer, whose map order varies between processes, and is then
  made canonical, so every example of the build is deterministic.
  """
  encode = features.encode_example
  cls = example_serializer.ExampleSerializer
  original = cls.serialize_example

  def encode_example(example):
    if isinstance(example, Serialized):
      return example
    return encode(example)

  def serialize_example(self, example):
    if isinstance(example, Serialized):
      return example.data
    return release.canonical_example(original(self, example))

  features.encode_example = encode_example
  cls.serialize_example = serialize_example
  try:
    yield
  finally:
    cls.serialize_example = original
    del features.encode_example


# TFDS keeps up to 1 GB of serialized examples in memory before it spills them
# to 1,000 bucket files (`tensorflow_datasets/core/shuffle.py`, module constant
# `MAX_MEM_BUFFER_SIZE`), on top of TensorFlow's own ~0.7 GB: peak memory
# grows with the dataset up to ~1.8 GB. Ours is capped lower; above it, TFDS
# spills to disk (and writes each example twice), in bounded memory.
SHUFFLE_MEMORY = 128 << 20


@contextlib.contextmanager
def bounded_shuffle_memory(limit: int | None = None):
  """Caps TFDS's shuffle buffer (`limit`, default `SHUFFLE_MEMORY`) while
  our build runs, for the splits TFDS's own writer writes.

  TFDS's `Writer` must see every example of a split before it writes the
  first shard (the number of shards comes from their total size, the order
  from the hash of each key): it keeps up to `MAX_MEM_BUFFER_SIZE` of them in
  memory and spills the rest to bucket files that it reads back.
  """
  limit = SHUFFLE_MEMORY if limit is None else limit
  from tensorflow_datasets.core import shuffle  # pylint: disable=g-import-not-at-top
  old = shuffle.MAX_MEM_BUFFER_SIZE
  shuffle.MAX_MEM_BUFFER_SIZE = min(old, limit)
  try:
    yield
  finally:
    shuffle.MAX_MEM_BUFFER_SIZE = old
