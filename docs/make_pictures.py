"""Draws the pictures of the docs from dummy_data/, with the real command.

    python docs/make_pictures.py            # writes docs/images/*.png
    python docs/make_pictures.py --out DIR  # writes them into DIR instead

Each picture is made by building a sample of `dummy_data/` with `my_images`
into a temporary folder and running `image-folder-tfds show` or `stats` on
it, so the pictures show what the code draws today.
`tests/test_pictures.py` checks that the committed pictures are the ones this
script makes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pathlib
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parent.parent
DUMMY = REPO / "dummy_data"
IMAGES = REPO / "docs" / "images"

# picture -> (dummy_data folder, image-folder-tfds arguments after DATASET).
PICTURES = {
    "show_coco.png": ("coco", ["show", "-n", "3", "--tile", "256"]),
    "show_animal_photos.png": ("animal_photos", ["show", "-n", "8",
                                                 "--tile", "128"]),
    "stats_animal_photos.png": ("animal_photos", ["stats"]),
    "stats_coco_objects.png": ("coco", ["stats", "--objects"]),
}


def build(sample: str, data_dir: pathlib.Path) -> pathlib.Path:
  """Builds dummy_data/<sample> and returns the dataset's version folder."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import image_folder_tfds  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import

  builder = tfds.builder("my_images", data_dir=os.fspath(data_dir),
                         config="default")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(DUMMY / sample)))
  return pathlib.Path(builder.data_dir)


def make(out: pathlib.Path) -> list[pathlib.Path]:
  """Writes every picture into `out`; returns their paths."""
  from image_folder_tfds import cli  # pylint: disable=g-import-not-at-top

  out.mkdir(parents=True, exist_ok=True)
  written = []
  with tempfile.TemporaryDirectory() as tmp:
    datasets: dict[str, pathlib.Path] = {}
    for picture, (sample, args) in PICTURES.items():
      if sample not in datasets:
        with contextlib.redirect_stdout(io.StringIO()):
          datasets[sample] = build(sample, pathlib.Path(tmp) / sample)
      path = out / picture
      command = [args[0], os.fspath(datasets[sample]), *args[1:],
                 "-o", os.fspath(path)]
      with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(command)
      if code != cli.EXIT_OK:
        raise SystemExit(f"image-folder-tfds {' '.join(command)}: exit {code}")
      written.append(path)
  return written


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", type=pathlib.Path, default=IMAGES,
                      help="folder to write the pictures into")
  args = parser.parse_args(argv)
  for path in make(args.out):
    print(f"wrote {path}")
  return 0


if __name__ == "__main__":
  sys.path.insert(0, os.fspath(REPO))  # This checkout's package first.
  sys.exit(main())
