"""The real `tfds build` command, and loading in fresh processes."""

from __future__ import annotations

import json
import sys

import pytest

import helpers

SAMPLE = helpers.DUMMY_DATA / "animal_photos"

LOAD = """
import json, sys
import tensorflow_datasets as tfds
if sys.argv[3] == "import":
  import image_folder_tfds
ds = tfds.load(sys.argv[2], split="all", data_dir=sys.argv[1])
rows = sorted((ex["file_name"].decode(), int(ex["label"]), list(ex["image"].shape))
              for ex in tfds.as_numpy(ds))
print(json.dumps({"rows": rows, "has_plugin": "image_folder_tfds" in sys.modules}))
"""


def load_in_fresh_process(data_dir, name, with_import):
  out = helpers.run([sys.executable, "-c", LOAD, str(data_dir), name,
                     "import" if with_import else "no-import"])
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["has_plugin"] == with_import
  return result["rows"]


def test_import_does_not_load_tensorflow():
  out = helpers.run([sys.executable, "-c",
                     "import sys, image_folder_tfds, tensorflow_datasets as tfds;"
                     "assert tfds.builder_cls('my_images') is image_folder_tfds.MyImages;"
                     "print('tensorflow' in sys.modules)"])
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_tfds_build_cli_then_load_with_and_without_import(tmp_path):
  out = helpers.run(helpers.build_command(SAMPLE, tmp_path))
  assert out.returncode == 0, out.stderr[-3000:]
  assert "my_images build report" in out.stderr
  assert (tmp_path / "my_images" / "default" / "2.1.0" / "build_report.json").exists()
  files = sorted(p.relative_to(SAMPLE).as_posix() for p in SAMPLE.rglob("*")
                 if p.is_file() and not p.name.startswith(".")
                 and p.name != "labels.txt")
  labels = (SAMPLE / "labels.txt").read_text().split()
  without = load_in_fresh_process(tmp_path, "my_images", with_import=False)
  with_plugin = load_in_fresh_process(tmp_path, "my_images", with_import=True)
  assert without == with_plugin
  assert [r[0] for r in without] == files
  for name, label, shape in without:
    assert labels[label] == name.split("/")[0]
    assert shape == [48, 64, 3]


@pytest.mark.slow
def test_tfds_build_cli_with_json_config(tmp_path):
  config = {"name": "small", "max_side": 32, "split_fractions": {"train": 1.0}}
  out = helpers.run(helpers.tfds_cli() + [
      "build", "my_images", "--imports", "image_folder_tfds",
      "--config", json.dumps(config),
      "--manual_dir", str(SAMPLE), "--data_dir", str(tmp_path)])
  assert out.returncode == 0, out.stderr[-3000:]
  rows = load_in_fresh_process(tmp_path, "my_images/small", with_import=False)
  assert len(rows) == 12
  assert all(shape == [24, 32, 3] for _, _, shape in rows)
  # The custom config also loads with the plugin imported (TFDS reads it
  # from the files, since "small" is not a predefined config).
  assert load_in_fresh_process(tmp_path, "my_images/small", with_import=True) == rows


@pytest.mark.slow
def test_tfds_build_cli_bad_config_is_a_clear_error(tmp_path):
  out = helpers.run(helpers.tfds_cli() + [
      "build", "my_images", "--imports", "image_folder_tfds",
      "--config", '{"max_side": 32}',
      "--manual_dir", str(SAMPLE), "--data_dir", str(tmp_path)])
  assert out.returncode != 0
  assert "needs a name of its own" in out.stderr
