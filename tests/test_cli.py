"""The `image-folder-tfds` console script: subcommands, --help, exit codes."""

from __future__ import annotations

import pathlib
import sys

import pytest

import helpers
from image_folder_tfds import cli
from image_folder_tfds import label_map
from image_folder_tfds.config import MyImagesConfig

# `verify` comes from the releases issue (#6).
SUBCOMMANDS = ["inspect", "show", "stats", "label-map", "verify"]


def console_script() -> str:
  return str(pathlib.Path(sys.executable).parent / "image-folder-tfds")


def test_console_script_is_installed_and_lists_subcommands():
  result = helpers.run([console_script(), "--help"], timeout=120)
  assert result.returncode == 0, result.stderr
  for name in SUBCOMMANDS:
    assert name in result.stdout
  assert "Exit codes" in result.stdout
  # No subcommand, or an unknown one: argparse's usage error.
  assert helpers.run([console_script()], timeout=120).returncode == cli.EXIT_USAGE
  bad = helpers.run([console_script(), "bogus"], timeout=120)
  assert bad.returncode == cli.EXIT_USAGE
  assert "invalid choice" in bad.stderr


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name, capsys):
  with pytest.raises(SystemExit) as info:
    cli.main([name, "--help"])
  assert info.value.code == 0
  out = capsys.readouterr().out
  assert out.startswith(f"usage: image-folder-tfds {name}")


def test_registry_names_are_the_subcommands():
  assert {c.name for c in cli.COMMANDS} == set(SUBCOMMANDS)


@pytest.fixture(scope="module")
def folders_dataset(tmp_path_factory):
  root = tmp_path_factory.mktemp("in")
  helpers.make_class_folders(root, classes=("zebra", "ant", "cat dog"))
  out = tmp_path_factory.mktemp("out")
  return out, helpers.build(root, out)


def test_label_map_of_a_built_dataset(folders_dataset, tmp_path, capsys):
  out, builder = folders_dataset
  # A --data_dir holding one build is found, as is the dataset folder itself.
  assert cli.main(["label-map", str(out)]) == cli.EXIT_OK
  pbtxt = (builder.data_path / "label_map.pbtxt").read_text()
  names = list(builder.info.features["label"].names)
  assert names == ["ant", "cat dog", "zebra"]
  for i, name in enumerate(names):
    assert f'item {{\n  id: {i + 1}\n  name: "{name}"\n' in pbtxt
  assert "id: 0\n" not in pbtxt
  assert (builder.data_path / "labels.txt").read_text() == "ant\ncat dog\nzebra\n"
  # Model Garden's TfExampleDecoderLabelMap reads `id,name` rows.
  assert (builder.data_path / "label_map.csv").read_text() == (
      "1,ant\n2,cat dog\n3,zebra\n")
  assert "ids 1...3" in capsys.readouterr().out

  other = tmp_path / "lm" / "new"  # Made by the command, as `mkdir -p`.
  assert cli.main(["label-map", str(builder.data_path), "--offset", "0",
                   "--out", str(other)]) == cli.EXIT_OK
  text = (other / "label_map.pbtxt").read_text()
  assert 'id: 0\n  name: "ant"' in text and 'id: 2\n  name: "zebra"' in text
  assert (other / "label_map.csv").read_text() == "0,ant\n1,cat dog\n2,zebra\n"
  assert cli.main(["label-map", str(builder.data_path), "--offset", "-1",
                   "--out", str(other)]) == cli.EXIT_USAGE
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  assert cli.main(["label-map", str(builder.data_path), "--out",
                   str(a_file)]) == cli.EXIT_USAGE
  assert "exists and is not a folder" in capsys.readouterr().err


def test_label_map_of_a_model_garden_dataset_keeps_its_offset(tmp_path, capsys):
  helpers.make_class_folders(tmp_path / "in", per_class=1)
  builder = helpers.build(
      tmp_path / "in", tmp_path / "out",
      config=MyImagesConfig(name="mg", output_format="model_garden"))
  written = (builder.data_path / "label_map.pbtxt").read_text()
  assert cli.main(["label-map", str(builder.data_path), "--out",
                   str(tmp_path)]) == cli.EXIT_OK
  assert (tmp_path / "label_map.pbtxt").read_text() == written
  # The records store ids from 1: a label map from 0 would name wrong classes.
  assert cli.main(["label-map", str(builder.data_path), "--offset", "0"]) == (
      cli.EXIT_USAGE)
  assert "offset 1" in capsys.readouterr().err


def test_label_map_errors(tmp_path, capsys):
  assert cli.main(["label-map", str(tmp_path / "nowhere")]) == cli.EXIT_INPUT
  assert "no such folder" in capsys.readouterr().err
  assert cli.main(["label-map", str(tmp_path)]) == cli.EXIT_INPUT
  assert "no built dataset here" in capsys.readouterr().err
  with pytest.raises(ValueError, match="line break"):
    label_map.to_labels_txt(["a\nb"])
  with pytest.raises(ValueError, match="empty name"):
    label_map.to_pbtxt(["a", ""])


def test_several_datasets_need_a_choice(tmp_path, capsys):
  helpers.make_class_folders(tmp_path / "in", per_class=1)
  helpers.build(tmp_path / "in", tmp_path / "out")
  helpers.build(tmp_path / "in", tmp_path / "out",
                config=MyImagesConfig(name="small", max_side=16))
  assert cli.main(["label-map", str(tmp_path / "out")]) == cli.EXIT_USAGE
  err = capsys.readouterr().err
  assert "holds 2 datasets" in err
  assert "my_images/small/2.1.0" in err and "my_images/default/2.1.0" in err


def test_label_map_quotes_names():
  text = label_map.to_pbtxt(['say "hi"', "back\\slash", "ünï"])
  assert 'name: "say \\"hi\\""' in text
  assert 'name: "back\\\\slash"' in text
  assert 'name: "ünï"' in text
