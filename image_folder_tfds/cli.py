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
        f"--config: unknown option(s) {unknown}; see docs/options.md",
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

  if args.offset is not None and args.offset < 0:
    raise CommandError(f"--offset {args.offset}: must be >= 0", EXIT_USAGE)
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
  if os.path.exists(out) and not os.path.isdir(out):
    raise CommandError(f"--out {out}: exists and is not a folder", EXIT_USAGE)
  os.makedirs(out, exist_ok=True)  # `--out new/folder`, as `tfds build` does.
  metadata = builder.info.metadata or {}
  pbtxt, label_csv, labels = label_map.write(
      out, names, offset, metadata.get("keypoint_names"))
  print(f"wrote {pbtxt} and {label_csv} ({len(names)} classes, ids {offset}..."
        f"{len(names) - 1 + offset}) and {labels}")
  return EXIT_OK


def dataset_class_names(builder) -> list[str]:
  """Class names of a built dataset, whichever output format it has."""
  metadata = builder.info.metadata or {}
  if metadata.get("class_names"):
    return list(metadata["class_names"])
  from image_folder_tfds import features  # pylint: disable=g-import-not-at-top
  return features.class_names(builder.info.features)


# --- inspect -----------------------------------------------------------------


def _inspect_args(p: argparse.ArgumentParser) -> None:
  p.add_argument("data_dir", metavar="DIR",
                 help="the data folder you would pass as --manual_dir")
  p.add_argument("--config", default=None,
                 help="options as JSON, as for `tfds build --config` (layout,"
                 " labels_file, annotations, split_fractions, max_side, ...)")
  p.add_argument("--workers", type=int, default=None,
                 help="processes checking images (default: one per core)")
  p.add_argument("--json", default=None, metavar="FILE",
                 help="also write the full report as JSON (build_report.json"
                 " format)")
  p.add_argument("--quiet", action="store_true", help="no progress bar")


def _inspect(args) -> int:
  from image_folder_tfds import inspection  # pylint: disable=g-import-not-at-top

  config = parse_config(args.config)
  if args.workers is not None:
    config = dataclasses.replace(config, num_workers=args.workers)
  result = inspection.inspect_folder(
      args.data_dir, config, progress=not args.quiet,
      output_check=_output_check(config))
  print(result.summary())
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump(result.to_dict(), f, indent=1, ensure_ascii=False)
  if result.no_build:
    return EXIT_INPUT  # Every build fails, strict or not.
  return EXIT_OK if result.clean else EXIT_PROBLEMS


def _output_check(config):
  """What `config`'s output format cannot store, as a build would report it."""
  if config.output_format != "model_garden":
    return None
  from image_folder_tfds import model_garden  # pylint: disable=g-import-not-at-top
  return model_garden.scan_problems


# --- show --------------------------------------------------------------------


def _show_args(p: argparse.ArgumentParser) -> None:
  p.add_argument("dataset", help="a built dataset folder, or a --data_dir"
                 " holding one build of my_images")
  p.add_argument("--split", default=None,
                 help="split to draw from (default: train, else the first)")
  p.add_argument("-n", "--num", type=int, default=16,
                 help="number of examples (default 16)")
  p.add_argument("--skip", type=int, default=0,
                 help="start after this many examples")
  p.add_argument("--tile", type=int, default=256,
                 help="side of one tile in pixels (default 256)")
  p.add_argument("--skeleton", default=None, metavar="COCO_JSON",
                 help="COCO annotation file whose categories' `skeleton`"
                 " links the keypoints (e.g. person_keypoints_val2017.json);"
                 " default: the skeleton stored with a COCO dataset")
  p.add_argument("-o", "--out", default="show.png", help="PNG to write")


def _show(args) -> int:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import visualize  # pylint: disable=g-import-not-at-top

  if args.num < 1 or args.skip < 0 or args.tile < 16:
    raise CommandError("--num must be >= 1, --skip >= 0, --tile >= 16",
                       EXIT_USAGE)
  builder = load_builder(args.dataset)
  if "image_path" in builder.info.features:
    raise CommandError(
        f"{args.dataset}: built with store_images=False (image paths only):"
        " there are no images to draw")
  split = _pick_split(builder, args.split)
  names = dataset_class_names(builder)
  metadata = builder.info.metadata or {}
  # The dataset's own COCO skeleton; --skeleton overrides it (or adds one to
  # a dataset built without).
  skeletons = (read_coco_skeletons(args.skeleton) if args.skeleton
               else metadata.get("skeletons"))
  ds = builder.as_dataset(split=split, shuffle_files=False)
  ds = ds.skip(args.skip).take(args.num)
  views = [
      visualize.view_of(ex, names, int(metadata.get("num_keypoints", 0)))
      for ex in _progress(tfds.as_numpy(ds), args.num, "reading examples")
  ]
  if not views:
    raise CommandError(f"split {split!r} has no examples after --skip"
                       f" {args.skip}")
  image = visualize.show_grid(views, tile=args.tile, skeletons=skeletons)
  image.save(args.out, "PNG")
  print(f"wrote {args.out}: {len(views)} examples of split {split!r}")
  return EXIT_OK


def read_coco_skeletons(path: str) -> dict[str, list[tuple[int, int]]]:
  """{category name: [(a, b), ...]} from a COCO file's categories."""
  try:
    with open(path, encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, ValueError) as e:  # ValueError: not UTF-8, not JSON.
    raise CommandError(f"{path}: cannot read the COCO file: {e}") from None
  out = {}
  categories = data.get("categories") if isinstance(data, dict) else None
  if not isinstance(categories, list):
    raise CommandError(f"{path}: no `categories` list (not a COCO file?)")
  for i, cat in enumerate(categories):
    links = cat.get("skeleton") if isinstance(cat, dict) else None
    if not links:
      continue
    try:
      out[str(cat["name"])] = [(int(a), int(b)) for a, b in links]
    except (KeyError, TypeError, ValueError):
      raise CommandError(
          f"{path}: categories[{i}].skeleton must be a list of [a, b] keypoint"
          " numbers (from 1)") from None
  if not out:
    raise CommandError(f"{path}: no category has a `skeleton`")
  return out


def _pick_split(builder, split: str | None) -> str:
  splits = list(builder.info.splits)
  if split is None:
    return "train" if "train" in splits else sorted(splits)[0]
  if split not in splits:
    raise CommandError(f"no split {split!r}; the dataset has {sorted(splits)}",
                       EXIT_USAGE)
  return split


def _progress(iterable, total, desc):
  import tqdm  # pylint: disable=g-import-not-at-top
  return tqdm.tqdm(iterable, total=total, desc=desc, unit=" examples",
                   mininterval=1.0, leave=False)


# --- stats -------------------------------------------------------------------


def _stats_args(p: argparse.ArgumentParser) -> None:
  p.add_argument("dataset", help="a built dataset folder, or a --data_dir"
                 " holding one build of my_images")
  p.add_argument("--objects", action="store_true",
                 help="count objects per class instead of examples")
  p.add_argument("-o", "--out", default="stats.png", help="PNG to write")


def _stats(args) -> int:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import features  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import visualize  # pylint: disable=g-import-not-at-top

  builder = load_builder(args.dataset)
  names = dataset_class_names(builder)
  # Labels only: the images are not decoded.
  if features.is_model_garden(builder.info.features):
    decoders = features.nest({features.MG_ENCODED: tfds.decode.SkipDecoding()})
  elif features.IMAGE in builder.info.features:
    decoders = {features.IMAGE: tfds.decode.SkipDecoding()}
  else:
    decoders = None  # Image paths only: nothing to decode.
  splits = sorted(builder.info.splits)
  by_split = {
      split: tfds.as_numpy(builder.as_dataset(
          split=split, shuffle_files=False, decoders=decoders))
      for split in splits
  }
  totals = {split: builder.info.splits[split].num_examples for split in splits}
  counts = visualize.count_examples(
      by_split, names,
      progress=lambda it, split: _progress(it, totals[split], f"counting {split}"))
  what = "objects" if args.objects else "examples"
  visualize.stats_chart(counts, names, what=what).save(args.out, "PNG")
  width = max([len("class")] + [len(n) for n in names])
  print(f"{what} per class and split:")
  print("class".ljust(width) + "".join(f"  {s:>10}" for s in splits))
  for name in names:
    print(name.ljust(width) + "".join(
        f"  {counts[s][what].get(name, 0):>10}" for s in splits))
  print(f"wrote {args.out}")
  return EXIT_OK


# --- verify ------------------------------------------------------------------


def _verify_args(p: argparse.ArgumentParser) -> None:
  p.add_argument("dataset", nargs="+", help="built dataset folder(s)"
                 " (OUT/my_images/<config>/<version>), or a --data_dir holding"
                 " one build of my_images")


def _verify(args) -> int:
  from image_folder_tfds import release  # pylint: disable=g-import-not-at-top

  return release.verify_main([find_dataset_dir(d) for d in args.dataset])


# --- Registry ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Command:
  name: str
  help: str
  add_arguments: Callable[[argparse.ArgumentParser], None]
  run: Callable[[argparse.Namespace], int]


COMMANDS: list[Command] = [
    Command("inspect", "dry run: check a data folder as `tfds build` would,"
            " without writing a dataset", _inspect_args, _inspect),
    Command("show", "draw examples of a built dataset (boxes, names,"
            " keypoints) into one PNG grid", _show_args, _show),
    Command("stats", "bar chart PNG of examples (or objects) per class and"
            " split", _stats_args, _stats),
    Command("label-map", "write label_map.pbtxt (OD API, ids from 1),"
            " label_map.csv (Model Garden) and labels.txt for a built"
            " dataset", _label_map_args, _label_map),
    Command("verify", "check a built dataset's shards against its"
            " manifest.json (sha256, size, record count); names each shard"
            " that differs", _verify_args, _verify),
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
