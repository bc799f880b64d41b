"""`--file_format=array_record`: builds, and reads with random access."""

from __future__ import annotations

import io
import os
import pathlib
import random

import numpy as np
import pytest
from PIL import Image
import tensorflow_datasets as tfds

import image_folder_tfds  # noqa: F401  (registers my_images)

import helpers


def _build(manual_dir, data_dir, file_format):
  builder = tfds.builder("my_images", data_dir=os.fspath(data_dir),
                         file_format=file_format)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=os.fspath(manual_dir)))
  return builder


def _data(root):
  written = helpers.make_class_folders(root, per_class=40)  # Uses workers.
  (pathlib.Path(root) / "dog" / "empty.jpg").write_bytes(b"")  # Rejected.
  return written


def test_data_source_random_access_matches_tfrecord_build(tmp_path):
  written = _data(tmp_path / "in")
  ar = _build(tmp_path / "in", tmp_path / "ar", "array_record")
  assert list(pathlib.Path(ar.data_path).glob("*.array_record-*"))
  plain = helpers.read_all(_build(tmp_path / "in", tmp_path / "tf", "tfrecord"))
  assert set(plain) == set(written)
  counts = helpers.report(ar)["counts"]
  assert sum(c["written"] for c in counts.values()) == 80
  assert sum(c["rejected"] for c in counts.values()) == 1
  seen = set()
  for split in ar.info.splits:
    source = tfds.data_source("my_images", data_dir=os.fspath(tmp_path / "ar"),
                              split=split)
    assert len(source) == ar.info.splits[split].num_examples
    order = list(range(len(source)))
    random.Random(0).shuffle(order)  # Random access, in any order.
    for i in order:
      ex = source[i]
      name = ex["file_name"].decode()
      seen.add(name)
      want = plain[name]
      assert want["split"] == split
      # The data source decodes with Pillow (TF's decoder rounds a little
      # differently): compare with the input file decoded the same way.
      with Image.open(io.BytesIO(written[name])) as img:
        np.testing.assert_array_equal(ex["image"], np.asarray(img.convert("RGB")))
      assert ex["label"] == want["label"]
      assert (ex["height"], ex["width"]) == (want["height"], want["width"])
  assert seen == set(written)


def test_tfds_load_reports_tfds_limit(tmp_path):
  """TFDS 4.9.10 reads ArrayRecord only as a data source, and says so."""
  _data(tmp_path / "in")
  _build(tmp_path / "in", tmp_path / "ar", "array_record")
  with pytest.raises(NotImplementedError, match="as_data_source"):
    tfds.load("my_images", data_dir=os.fspath(tmp_path / "ar"), split="train")


@pytest.mark.slow
def test_cli_file_format_array_record(tmp_path):
  written = _data(tmp_path / "in")
  result = helpers.run(helpers.build_command(
      tmp_path / "in", tmp_path / "out", "--file_format=array_record"))
  assert result.returncode == 0, result.stderr[-3000:]
  names = set()
  builder = tfds.builder("my_images", data_dir=os.fspath(tmp_path / "out"))
  for split in builder.info.splits:
    source = tfds.data_source("my_images", data_dir=os.fspath(tmp_path / "out"),
                              split=split)
    names.update(source[i]["file_name"].decode() for i in range(len(source)))
  assert names == set(written)


def _flat(example, prefix=""):
  out = {}
  for key, value in example.items():
    if isinstance(value, dict):
      out.update(_flat(value, f"{prefix}{key}/"))
    else:
      out[prefix + key] = value
  return out


@pytest.mark.parametrize("data,kind", [
    ("animal_photos", "classification"), ("voc", "detection"),
    ("coco", "keypoints")])
def test_data_source_gives_tfds_load_values_for_every_kind(tmp_path, data,
                                                          kind):
  manual_dir = helpers.DUMMY_DATA / data
  ar = _build(manual_dir, tmp_path / "ar", "array_record")
  assert ar.info.metadata["schema"]["kind"] == kind
  loaded = helpers.read_all(_build(manual_dir, tmp_path / "tf", "tfrecord"))
  seen = 0
  for split in ar.info.splits:
    source = tfds.data_source("my_images", data_dir=os.fspath(tmp_path / "ar"),
                              split=split)
    for i in reversed(range(len(source))):  # Random access, any order.
      got = _flat(source[i])
      want = _flat(loaded[got["file_name"].decode()])
      assert want.pop("split") == split
      assert sorted(got) == sorted(want)
      for key, value in want.items():
        if key == "image":  # Pillow and TF decode JPEGs a little differently.
          assert got[key].shape == value.shape
        else:
          np.testing.assert_array_equal(got[key], value, err_msg=key)
      seen += 1
  assert seen == len(loaded)
