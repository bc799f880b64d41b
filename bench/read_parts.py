"""TFDS's reading pipeline taken apart, against a raw TFRecord reader.

Reads the train split of a built `my_images` dataset (image only, decoded)
through pipelines that add TFDS's pieces one at a time (its parser, its
decoder, `as_dataset` with and without its auto-cache of datasets under
250 MiB and its 16-file interleave), and prints
examples/s (median of interleaved repeats, after an untimed pass of each):

    python bench/read_parts.py /tmp/ift_bench/read_classification_5000 [repeats]

`bench/read.py --images N` builds such datasets (`read_<kind>_N`).
"""

from __future__ import annotations

import statistics
import sys
import time

import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_parser


def main(data_dir: str, repeats: int = 3) -> dict[str, float]:
  builder = tfds.builder("my_images", data_dir=data_dir)
  files = [str(builder.data_path / f)
           for f in builder.info.splits["train"].filenames]
  spec = {"image": tf.io.FixedLenFeature([], tf.string)}
  partial = tfds.decode.PartialDecoding({"image": True})
  features = partial.extract_features(builder.info.features)
  parser = example_parser.ExampleParser(features.get_serialized_info())
  auto = tf.data.AUTOTUNE

  def raw_parse(x):
    image = tf.io.parse_single_example(x, spec)["image"]
    return {"image": tf.io.decode_image(image, channels=3,
                                        expand_animations=False)}

  def tfds_parse(x):
    return features.decode_example(parser.parse_example(x))

  pipelines = {
      "raw: TFRecordDataset.map(parse + decode_image)":
          lambda: tf.data.TFRecordDataset(files).map(raw_parse),
      "the same, num_parallel_calls=AUTOTUNE":
          lambda: tf.data.TFRecordDataset(files).map(
              raw_parse, num_parallel_calls=auto),
      "TFDS's ExampleParser + decode_example, serial map":
          lambda: tf.data.TFRecordDataset(files).map(tfds_parse),
      "the same, AUTOTUNE (as TFDS)":
          lambda: tf.data.TFRecordDataset(files).map(
              tfds_parse, num_parallel_calls=auto),
      "builder.as_dataset(PartialDecoding image)":
          lambda: builder.as_dataset(split="train", decoders=partial),
      "the same, ReadConfig(try_autocache=False)":
          lambda: builder.as_dataset(
              split="train", decoders=partial,
              read_config=tfds.ReadConfig(try_autocache=False)),
      "the same, and interleave_cycle_length=1":
          lambda: builder.as_dataset(
              split="train", decoders=partial,
              read_config=tfds.ReadConfig(try_autocache=False,
                                          interleave_cycle_length=1)),
      "raw, then .cache() (what TFDS's auto-cache adds)":
          lambda: tf.data.TFRecordDataset(files).map(
              raw_parse, num_parallel_calls=auto).cache(),
  }
  rates: dict[str, list[float]] = {name: [] for name in pipelines}
  names = list(pipelines)
  for name in names:  # Warm-up: tracing, file cache.
    for _ in pipelines[name]():
      pass
  for r in range(repeats):
    for name in names[r % len(names):] + names[:r % len(names)]:
      start, count = time.perf_counter(), 0
      for _ in pipelines[name]():
        count += 1
      rates[name].append(count / (time.perf_counter() - start))
  medians = {name: statistics.median(v) for name, v in rates.items()}
  base = medians[names[0]]
  for name, rate in medians.items():
    print(f"{rate:8,.0f} examples/s  {rate / base:5.2f}  {name}")
  return medians


if __name__ == "__main__":
  main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3)
