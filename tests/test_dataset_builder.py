"""TFDS's own builder test over the bundled sample in `dummy_data/`."""

import tensorflow_datasets as tfds

import helpers
import image_folder_tfds


class AnimalPhotosTest(tfds.testing.DatasetBuilderTestCase):
  """`dummy_data/animal_photos`: 12 images of 3 classes, hash-split."""

  DATASET_CLASS = image_folder_tfds.MyImages
  EXAMPLE_DIR = str(helpers.DUMMY_DATA / "animal_photos")
  SPLITS = {"train": 9, "validation": 3}
  SKIP_CHECKSUMS = True


if __name__ == "__main__":
  tfds.testing.test_main()
