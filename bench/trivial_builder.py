"""A trivial TFDS builder: the reference for the fixed cost of a build.

    tfds build trivial_images --imports bench.trivial_builder --data_dir OUT

It writes ten tiny fixed examples (a 1-byte text and a label): everything a
`tfds build` costs besides the data itself.
"""

from __future__ import annotations

import tensorflow_datasets as tfds


class TrivialImages(tfds.core.GeneratorBasedBuilder):
  """Ten fixed examples."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        features=tfds.features.FeaturesDict({
            "text": tfds.features.Text(),
            "label": tfds.features.ClassLabel(names=["a", "b"]),
        }),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    for i in range(10):
      yield str(i), {"text": "x", "label": i % 2}
