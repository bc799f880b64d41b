"""Releases: user-owned versions, byte-identical shards, a shard manifest.

* The version and release notes of a dataset belong to its owner: they come
  from the config (`--config '{"version": "1.1.0", "release_notes": {...}}'`)
  and may be kept in a release file, `my_images.json`, in the data folder.
* Shards are written with deterministic proto serialization, so rebuilding a
  version from the same input gives byte-identical files.
* `manifest.json`, written with the dataset, holds every shard's sha256, size
  and record count; `verify` checks a dataset folder against it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import struct
import sys
from collections.abc import Iterable

from etils import epath
import tensorflow_datasets as tfds
from tensorflow_datasets.core import dataset_builder
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import writer as writer_lib
from tensorflow_datasets.core.utils import file_utils
from tensorflow_datasets.proto import tf_example_pb2

from image_folder_tfds.config import MyImagesConfig
# Defined in `versions` (config checks its options with them), used here too.
from image_folder_tfds.versions import ReleaseError
from image_folder_tfds.versions import check_release_notes
from image_folder_tfds.versions import check_version

RELEASE_FILE = "my_images.json"  # In the data folder (--manual_dir).
MANIFEST_FILE = "manifest.json"  # In the dataset folder, next to the shards.
MANIFEST_FORMAT = 1


# ---------------------------------------------------------------------------
# Byte-identical shards.


def canonical_example(serialized: bytes) -> bytes:
  """The same `tf.train.Example`, serialized with sorted map keys."""
  example = tf_example_pb2.Example()
  example.ParseFromString(serialized)
  return example.SerializeToString(deterministic=True)


class DeterministicExampleWriter(writer_lib.ExampleWriter):
  """Writes every example re-serialized deterministically.

  TFDS 4.9.10 serializes examples with `SerializeToString()` without
  `deterministic=True` (`tensorflow_datasets/core/example_serializer.py`,
  `ExampleSerializer.serialize_example`), so the order of the
  `Features.feature` map entries changes from process to process and two
  builds of the same data give different shard bytes. The serializer is
  created inside TFDS's `SplitBuilder` and cannot be replaced; the example
  writer is the documented injection point (`DatasetBuilder._example_writer`),
  and it sees every serialized example, whichever TFDS write path is used.
  Examples serialized by `writing.Serializer` are already in this canonical
  form (re-serializing leaves them unchanged); the writer makes every other
  path (features it does not plan, other output formats) reproducible too,
  at ~17 us per 1.4 KB example and ~43 us per 100 KB example.
  """

  def write(
      self,
      path: epath.PathLike,
      examples: Iterable[tuple[object, bytes]],
  ):
    return super().write(path, _canonical(examples))


def _canonical(examples):
  for key, serialized in examples:
    yield key, canonical_example(serialized)


# ---------------------------------------------------------------------------
# User-owned versions.


@dataclasses.dataclass(frozen=True)
class ReleaseFile:
  """`DIR/my_images.json`: the version of the data in DIR and its notes."""

  path: str
  version: str | None
  release_notes: dict[str, str]
  config: dict  # The whole file: usable as `--config "$(cat FILE)"`.


def read_release_file(manual_dir: epath.PathLike | None) -> ReleaseFile | None:
  """The release file of the data folder, or None when there is none."""
  if manual_dir is None:
    return None
  path = epath.Path(manual_dir) / RELEASE_FILE
  if not path.exists():
    return None
  try:
    data = json.loads(path.read_text())
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise ReleaseError(f"{path}: not valid JSON: {e}") from None
  if not isinstance(data, dict):
    raise ReleaseError(f"{path}: expected a JSON object, got {type(data).__name__}")
  version = data.get("version")
  if version is not None:
    check_version(version, f"{path}: field 'version'")
  notes = data.get("release_notes") or {}
  check_release_notes(notes, f"{path}: field 'release_notes'")
  return ReleaseFile(str(path), version, dict(notes), data)


def check_release_file(release: ReleaseFile | None, version: str) -> None:
  """Fails when the data folder says it is another version than the build."""
  if release is None or release.version is None:
    return
  if release.version != version:
    raise ReleaseError(
        f"{release.path} says this data is version {release.version}, but"
        f" this build is version {version}. Build the release with"
        f" `--config \"$(cat {release.path})\"` (Python:"
        f" `image_folder_tfds.release.config_from_file(DIR)`), or change"
        f" 'version' in {release.path}.")


def config_from_file(manual_dir: epath.PathLike, **overrides):
  """A `MyImagesConfig` from `DIR/my_images.json` (Python use)."""
  release = read_release_file(manual_dir)
  if release is None:
    raise ReleaseError(f"{epath.Path(manual_dir) / RELEASE_FILE}: not found")
  try:
    return MyImagesConfig(**{**release.config, **overrides})
  except TypeError as e:
    raise ReleaseError(f"{release.path}: {e}") from None


def merge_release_notes(*sources: tuple[str, dict[str, str]]) -> dict[str, str]:
  """Release notes of all `(where, notes)` sources, sorted by version.

  Later sources win: notes of prepared versions (oldest first), then the
  release file, then the config.
  """
  merged: dict[str, str] = {}
  for _, notes in sources:
    merged.update(notes)
  return dict(sorted(merged.items(), key=lambda kv: tfds.core.Version(kv[0])))


def release_history(builder, release_file: ReleaseFile | None) -> dict[str, str]:
  """Every version's release notes, as recorded with the build of `builder`.

  Notes of versions prepared earlier in the same data dir are kept, so a
  1.1.0 built next to 1.0.0 carries the whole history. The release file and
  the config may both give notes, but must not contradict each other.
  """
  config = builder.builder_config
  version = tfds.core.Version(str(builder.version))
  sources = prepared_release_notes(
      builder.data_dir_root, builder.name, builder.builder_config_name, version)
  config_notes = dict(config.release_notes or {})
  check_release_notes(config_notes, "the config's release_notes")
  if release_file is not None:
    for v, note in release_file.release_notes.items():
      if v in config_notes and config_notes[v] != note:
        raise ReleaseError(
            f"release notes of version {v} differ: {release_file.path} says"
            f" {note!r}, the config says {config_notes[v]!r}")
    sources.append((release_file.path, release_file.release_notes))
  sources.append(("the config", config_notes))
  notes = merge_release_notes(*sources)
  if str(version) not in notes and str(version) in builder.RELEASE_NOTES:
    notes[str(version)] = builder.RELEASE_NOTES[str(version)]
  return notes


def publish_with_default_config() -> None:
  """Makes TFDS's `--publish_dir` also publish the default config's name.

  `tfds build --publish_dir P` copies the version folder to
  `P/my_images/<config>/<version>/` (`file_utils.publish_data`) but not
  `my_images/.config/metadata.json`, the file that names the default config.
  Without it, `tfds.load("my_images:1.1.0", data_dir=P)` without the package
  imported looks for `P/my_images/1.1.0` and fails. Installed by a build of
  `my_images` (so in the `tfds build` process that publishes); it changes
  nothing for other datasets.
  """
  original = file_utils.publish_data
  if getattr(original, "_my_images_default_config", False):
    return

  def publish_data(from_data_dir, to_data_dir, overwrite=False):
    original(from_data_dir, to_data_dir, overwrite=overwrite)
    src = epath.Path(from_data_dir).parent.parent  # <data_dir>/my_images
    dst = epath.Path(to_data_dir).parent.parent
    if src.name != "my_images" or dst.name != "my_images":
      return
    name = dataset_builder.load_default_config_name(src)
    if name:
      # TFDS's own writer of that file (atomic: written, then renamed).
      dataset_builder._save_default_config_name(  # pylint: disable=protected-access
          dst, default_config_name=name)

  publish_data._my_images_default_config = True  # pylint: disable=protected-access
  file_utils.publish_data = publish_data


def prepared_versions(
    data_dir: epath.PathLike | None, name: str, config_name: str | None
) -> list[tfds.core.Version]:
  """Versions of `name/config_name` fully prepared under `data_dir`, sorted.

  With `data_dir=None`, every data dir TFDS looks in (TFDS_DATA_DIR,
  ~/tensorflow_datasets, ...).
  """
  found = set()
  for root in file_utils.list_data_dirs(data_dir and os.fspath(data_dir)):
    config_dir = file_utils.get_dataset_dir(
        data_dir=root, builder_name=name, config_name=config_name)
    for v in tfds.core.utils.version.list_all_versions(config_dir):
      if (epath.Path(config_dir) / str(v) / "dataset_info.json").exists():
        found.add(v)
  return sorted(found)


def prepared_release_notes(
    data_dir: epath.PathLike | None, name: str, config_name: str | None,
    below: tfds.core.Version,
) -> list[tuple[str, dict[str, str]]]:
  """(where, notes) of each prepared version older than `below`."""
  out = []
  for root in file_utils.list_data_dirs(data_dir and os.fspath(data_dir)):
    config_dir = epath.Path(file_utils.get_dataset_dir(
        data_dir=root, builder_name=name, config_name=config_name))
    for v in prepared_versions(root, name, config_name):
      if v >= below:
        continue
      info_path = config_dir / str(v) / "dataset_info.json"
      info = json.loads(info_path.read_text())
      out.append((str(info_path), dict(info.get("releaseNotes") or {})))
  return out


# ---------------------------------------------------------------------------
# The manifest.


def sha256_file(path: epath.PathLike) -> tuple[str, int]:
  """(hex sha256, size in bytes) of a file, read in 1 MiB blocks."""
  h = hashlib.sha256()
  size = 0
  with epath.Path(path).open("rb") as f:
    while block := f.read(1 << 20):
      h.update(block)
      size += len(block)
  return h.hexdigest(), size


def count_tfrecords(path: epath.PathLike) -> int:
  """Number of records in a TFRecord file, from its framing (no TF needed)."""
  n = 0
  with epath.Path(path).open("rb") as f:
    while header := f.read(12):
      if len(header) < 12:
        raise ValueError(f"{path}: truncated record header after {n} records")
      (length,) = struct.unpack("<Q", header[:8])
      f.seek(length + 4, 1)
      n += 1
    if f.tell() != epath.Path(path).stat().length:
      raise ValueError(f"{path}: truncated record after {n} records")
  return n


def write_manifest(data_path: epath.PathLike, info) -> dict:
  """Writes `manifest.json` for the shards of `info` (a `DatasetInfo`)."""
  data_path = epath.Path(data_path)
  files = [(split_name, file_name, records)
           for split_name, split in sorted(info.splits.items())
           for file_name, records in zip(split.filenames, split.shard_lengths)]
  # hashlib releases the GIL on large blocks: one thread per core.
  with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
    digests = list(pool.map(lambda f: sha256_file(data_path / f[1]), files))
  shards = [{"file": file_name, "split": split_name, "records": int(records),
             "bytes": size, "sha256": digest}
            for (split_name, file_name, records), (digest, size)
            in zip(files, digests)]
  manifest = {
      "manifest_format": MANIFEST_FORMAT,
      "dataset": info.full_name,
      "file_format": info.file_format.value if info.file_format else "tfrecord",
      "total_records": sum(s["records"] for s in shards),
      "shards": shards,
  }
  (data_path / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
  return manifest


_SHARD_NAME = re.compile(r"^.+-[\w.]+\.[a-z_]+-\d{5}-of-\d{5}$")


def verify(dataset_dir: epath.PathLike) -> list[str]:
  """Problems of `dataset_dir` against its manifest; empty when it matches.

  Each problem names the shard file: missing, extra, different size, sha256
  or record count.
  """
  dataset_dir = epath.Path(dataset_dir)
  manifest_path = dataset_dir / MANIFEST_FILE
  if not manifest_path.exists():
    return [f"{manifest_path}: no manifest (was this folder built by"
            " image_folder_tfds, and is it a version folder such as"
            " OUT/my_images/default/1.0.0?)"]
  try:
    manifest = json.loads(manifest_path.read_text())
    shards = manifest["shards"]
  except (json.JSONDecodeError, KeyError, TypeError) as e:
    return [f"{manifest_path}: unreadable manifest: {e!r}"]
  is_tfrecord = manifest.get("file_format", "tfrecord") == (
      file_adapters.FileFormat.TFRECORD.value)
  problems = []
  listed = set()
  for shard in shards:
    name = shard["file"]
    listed.add(name)
    path = dataset_dir / name
    if not path.exists():
      problems.append(f"{path}: shard missing")
      continue
    digest, size = sha256_file(path)
    if size != shard["bytes"]:
      problems.append(
          f"{path}: size {size} bytes, manifest says {shard['bytes']}")
    if digest != shard["sha256"]:
      problems.append(
          f"{path}: sha256 {digest}, manifest says {shard['sha256']}")
    if is_tfrecord:
      try:
        records = count_tfrecords(path)
      except ValueError as e:
        problems.append(str(e))
        continue
      if records != shard["records"]:
        problems.append(
            f"{path}: {records} records, manifest says {shard['records']}")
  for path in sorted(dataset_dir.iterdir()):
    if _SHARD_NAME.match(path.name) and path.name not in listed:
      problems.append(f"{path}: shard file not in the manifest")
  return problems


def verify_main(paths: list[str], out=None) -> int:
  """`verify DATASET_DIR...`: prints the result; 0 when every folder matches."""
  out = out or sys.stdout
  status = 0
  for path in paths:
    problems = verify(path)
    if problems:
      status = 1
      print(f"FAILED {path}: {len(problems)} problem(s)", file=out)
      for p in problems:
        print(f"  {p}", file=out)
    else:
      manifest = json.loads((epath.Path(path) / MANIFEST_FILE).read_text())
      print(f"OK {path}: {len(manifest['shards'])} shards,"
            f" {manifest['total_records']} records match {MANIFEST_FILE}",
            file=out)
  return status

