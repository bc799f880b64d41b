"""`image-folder-tfds`: tools around a `my_images` data folder or dataset.

`tfds build my_images ...` builds; this command looks at what goes in and what
came out. Each subcommand is two functions, `_<name>_args(parser)` (its
arguments) and `_<name>(args) -> exit code`, plus one line in `COMMANDS`.
Heavy imports (TensorFlow, TFDS) happen inside the subcommands, so `--help`
is fast.

Exit codes (the same for every subcommand):
  0  success; for checks: nothing wrong was found.
  1  problems found (for `inspect`: problems that would fail a strict build).
  2  wrong usage (bad arguments; argparse's own code).
  3  the input cannot be used at all (no dataset there, no images, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence

from image_folder_tfds import records

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INPUT = 3


class CommandError(Exception):
  """A failure to report in one line, with its exit code."""

  def __init__(self, message: str, code: int = EXIT_INPUT):
    super().__init__(message)
    self.code = code


# --- Shared helpers ----------------------------------------------------------


def find_dataset_dir(path: str) -> str:
  """The folder of one built dataset version (the one with dataset_info.json).

  `path` is that folder, or a `--data_dir` holding exactly one build of
  `my_images` (`<data_dir>/my_images/<config>/<version>/`).
  """
  from etils import epath  # pylint: disable=g-import-not-at-top

  root = epath.Path(path)
  if not root.exists():
    raise CommandError(f"{path}: no such folder")
  if (root / "dataset_info.json").exists():
    return os.fspath(root)
  # <name>/<config>/<version>, <config>/<version> or <version> below `path`
  # (explicit depths: epath refuses `**`, which would crawl whole buckets).
  found = sorted(
      p.parent
      for pattern in ("*/dataset_info.json", "*/*/dataset_info.json",
                      "*/*/*/dataset_info.json")
      for p in root.glob(pattern)
      if not any(part.startswith("incomplete.") for part in p.parts))
  if len(found) == 1:
    return os.fspath(found[0])
  if not found:
    raise CommandError(
        f"{path}: no built dataset here (no dataset_info.json below it). Build"
        " one with `tfds build my_images --imports image_folder_tfds"
        " --manual_dir DIR --data_dir OUT`.")
  listing = "\n  ".join(os.fspath(p) for p in found)
  raise CommandError(
      f"{path} holds {len(found)} datasets; pass the folder of one:\n  {listing}",
      EXIT_USAGE)


def load_builder(path: str):
  """The builder of the dataset at `path` (see `find_dataset_dir`)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  return tfds.builder_from_directory(find_dataset_dir(path))


def parse_config(text: str | None):
  """`MyImagesConfig` from the same JSON `tfds build --config` takes."""
  from image_folder_tfds.config import MyImagesConfig  # pylint: disable=g-import-not-at-top

  if not text:
    return MyImagesConfig()
  try:
    values = json.loads(text)
  except json.JSONDecodeError as e:
    raise CommandError(f"--config is not JSON: {e}", EXIT_USAGE) from None
  if not isinstance(values, dict):
    raise CommandError("--config must be a JSON object", EXIT_USAGE)
  values.setdefault("name", "inspect")
  names = {f.name for f in dataclasses.fields(MyImagesConfig)}
  unknown = sorted(set(values) - names)
  if unknown:
    raise CommandError(
        f"--config: unknown option(s) {unknown}; see README 'Options'",
        EXIT_USAGE)
  try:
    return MyImagesConfig(**values)
  except (TypeError, ValueError) as e:
    raise CommandError(f"--config: {e}", EXIT_USAGE) from None


# --- label-map ---------------------------------------------------------------


def _label_map_args(p: argparse.ArgumentParser) -> None:
  p.add_argument("dataset", help="a built dataset folder, or a --data_dir"
                 " holding one build of my_images")
  p.add_argument("--offset", type=int, default=None,
                 help="id of the first class (default: 1, 0 is background in"
                 " the OD API; a model_garden dataset's own offset)")
  p.add_argument("--out", default=None,
                 help="folder to write into (default: the dataset folder)")


def _label_map(args) -> int:
  from image_folder_tfds import label_map  # pylint: disable=g-import-not-at-top

  builder = load_builder(args.dataset)
  names = dataset_class_names(builder)
  if not names:
    raise CommandError(f"{args.dataset}: the dataset has no class names")
  stored = builder.info.metadata.get("label_offset") if builder.info.metadata else None
  offset = args.offset
  if offset is None:
    offset = label_map.DEFAULT_OFFSET if stored is None else int(stored)
  elif stored is not None and offset != int(stored):
    raise CommandError(
        f"--offset {offset}: this dataset's records store class ids with offset"
        f" {stored}; a label map with another offset would name the wrong"
        " classes", EXIT_USAGE)
  out = args.out or find_dataset_dir(args.dataset)
  pbtxt, labels = label_map.write(out, names, offset)
  print(f"wrote {pbtxt} ({len(names)} classes, ids {offset}..."
        f"{len(names) - 1 + offset}) and {labels}")
  return EXIT_OK


def dataset_class_names(builder) -> list[str]:
  """Class names of a built dataset, whichever output format it has."""
  metadata = builder.info.metadata or {}
  if metadata.get("class_names"):
    return list(metadata["class_names"])
  features = builder.info.features
  if "label" in features:
    return list(features["label"].names)
  return []


# --- Registry ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Command:
  name: str
  help: str
  add_arguments: Callable[[argparse.ArgumentParser], None]
  run: Callable[[argparse.Namespace], int]


COMMANDS: list[Command] = [
    Command("label-map", "write label_map.pbtxt (OD API, ids from 1) and"
            " labels.txt for a built dataset", _label_map_args, _label_map),
]


def make_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog="image-folder-tfds",
      description="Check, draw and export my_images data. Build with `tfds"
      " build my_images --imports image_folder_tfds --manual_dir DIR`.",
      epilog="Exit codes: 0 ok, 1 problems found, 2 wrong usage, 3 input"
      " unusable.")
  sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
  for command in COMMANDS:
    p = sub.add_parser(command.name, help=command.help,
                       description=command.help)
    command.add_arguments(p)
    p.set_defaults(run=command.run)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  args = make_parser().parse_args(argv)
  try:
    return args.run(args)
  except CommandError as e:
    print(f"image-folder-tfds {args.command}: {e}", file=sys.stderr)
    return e.code
  except (records.InputError, records.BadInputError, OSError) as e:
    # The messages name the file and the problem.
    print(f"image-folder-tfds {args.command}: {e}", file=sys.stderr)
    return EXIT_INPUT


def console_main() -> None:
  sys.exit(main())


if __name__ == "__main__":
  console_main()
