"""Baseline: the plain single-threaded `tf.io.TFRecordWriter` loop.

What users write by hand: walk the class folders, read each file, read the
image size from its header with Pillow (no decode), build one
`tf.train.Example` per image and write it to a single TFRecord file.

    python bench/plain_loop.py IMAGE_DIR OUT_FILE
"""

from __future__ import annotations

import io
import os
import sys

from PIL import Image
import tensorflow as tf


def _bytes(v):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v]))


def _int(v):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))


def main(root: str, out: str) -> int:
  classes = sorted(d for d in os.listdir(root)
                   if os.path.isdir(os.path.join(root, d)))
  n = 0
  with tf.io.TFRecordWriter(out) as writer:
    for label, cls in enumerate(classes):
      folder = os.path.join(root, cls)
      for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
          data = f.read()
        width, height = Image.open(io.BytesIO(data)).size  # Header only.
        example = tf.train.Example(features=tf.train.Features(feature={
            "image/encoded": _bytes(data),
            "image/filename": _bytes(f"{cls}/{name}".encode()),
            "image/class/label": _int(label),
            "image/height": _int(height),
            "image/width": _int(width),
        }))
        writer.write(example.SerializeToString())
        n += 1
  print(f"plain loop: {n} examples written to {out}")
  return n


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
