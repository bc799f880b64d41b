"""Shared test helpers: make images, build `my_images`, read it back."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parent.parent
DUMMY_DATA = REPO / "dummy_data"


def photo(seed: int, width: int = 40, height: int = 30) -> Image.Image:
  """A small, photo-like RGB image, different for every seed."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  base = rng.uniform(0, 255, size=3)
  img = np.stack([base[c] + (c + 1) * 0.7 * x - 0.5 * y for c in range(3)], -1)
  img += rng.normal(0, 6, size=img.shape)
  return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str = "JPEG", **kwargs) -> bytes:
  buf = io.BytesIO()
  img.save(buf, fmt, **kwargs)
  return buf.getvalue()


def write_image(path, seed=0, fmt="JPEG", width=40, height=30, **kwargs):
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  data = encode(photo(seed, width, height), fmt, **kwargs)
  path.write_bytes(data)
  return data


def make_class_folders(root, classes=("cat", "dog"), per_class=3, split=None):
  """`root/[split/]<class>/<class>_<i>.jpg`; returns {relpath: bytes}."""
  out = {}
  seed = 0
  for cls in classes:
    for i in range(per_class):
      seed += 1
      rel = f"{split + '/' if split else ''}{cls}/{cls}_{i}.jpg"
      out[rel] = write_image(pathlib.Path(root) / rel, seed=seed + hash(split) % 97)
  return out


def deny_read(monkeypatch, suffix: str) -> None:
  """Reading a file whose path ends with `suffix` fails with EACCES.

  Tests run as root, who reads a chmod 000 file anyway, so the read itself
  is made to fail as it does for a normal user (in-process builds only).
  """
  from image_folder_tfds import images
  real_read = images.read_file

  def read(path, data_range=None):
    if path.endswith(suffix):
      raise PermissionError(13, "Permission denied", path)
    return real_read(path, data_range)

  monkeypatch.setattr(images, "read_file", read)


def build(manual_dir, data_dir, config=None, **download_kwargs):
  """Builds `my_images` in-process and returns the builder."""
  import tensorflow_datasets as tfds
  import image_folder_tfds  # noqa: F401  (registers my_images)

  kwargs = {"data_dir": os.fspath(data_dir)}
  if config is not None:
    kwargs["config"] = config
  builder = tfds.builder("my_images", **kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(
          manual_dir=os.fspath(manual_dir), **download_kwargs))
  return builder


def read_split(builder, split) -> list[dict]:
  """Every example of `split` as numpy, decoded."""
  import tensorflow_datasets as tfds
  return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def read_all(builder) -> dict[str, dict]:
  """{file_name: example} over all splits, with `split` added."""
  out = {}
  for split in builder.info.splits:
    for ex in read_split(builder, split):
      ex["split"] = split
      out[ex["file_name"].decode()] = ex
  return out


def report(builder) -> dict:
  return json.loads((builder.data_path / "build_report.json").read_text())


def file_problems(report: dict) -> list[dict]:
  """The problems that name a file: without the warnings about a whole split
  (too few examples, left out), which tiny test datasets always get; those
  are tested in test_small_data.py."""
  return [p for p in report["problems"] if p["file"]]


def run(args, **kwargs) -> subprocess.CompletedProcess:
  """Runs a command (for example `tfds build`) in a fresh process."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env.update(kwargs.pop("env", {}))
  return subprocess.run(args, capture_output=True, text=True, env=env,
                        timeout=kwargs.pop("timeout", 600), **kwargs)


def tfds_cli() -> list[str]:
  """The real `tfds` console script of this environment."""
  return [str(pathlib.Path(sys.executable).parent / "tfds")]


def build_command(manual_dir, data_dir, *extra: str) -> list[str]:
  """README's `tfds build my_images --imports image_folder_tfds --manual_dir
  DIR`, into `data_dir`, with `extra` arguments."""
  return tfds_cli() + [
      "build", "my_images", "--imports", "image_folder_tfds",
      "--manual_dir", os.fspath(manual_dir), "--data_dir", os.fspath(data_dir),
      *extra]


# Reliability (issue 5): unfinished build folders, small or read-only disks.


def incomplete_dirs(data_dir) -> list[pathlib.Path]:
  """TFDS's unfinished build folders (`incomplete.*`) anywhere below.

  (Not TFDS's `.config/incomplete.<hex>.metadata.json`: a tiny file written
  and renamed in microseconds, which a kill at that instant would leave.)
  """
  return sorted(p for p in pathlib.Path(data_dir).rglob("incomplete.*")
                if p.is_dir())


def write_noise_png(path, seed=0, side=100) -> bytes:
  """An incompressible PNG (random pixels): about 3 * side**2 bytes."""
  rng = np.random.default_rng(seed)
  img = Image.fromarray(rng.integers(0, 256, (side, side, 3), np.uint8), "RGB")
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  data = encode(img, "PNG")
  path.write_bytes(data)
  return data


@contextlib.contextmanager
def tmpfs(path, size="1m", read_only=False):
  """A small tmpfs at `path` (a full disk in miniature); needs root, as CI
  has. Read-only mounts stop root too, where chmod does not."""
  path = pathlib.Path(path)
  path.mkdir(parents=True, exist_ok=True)
  options = f"size={size}" + (",ro" if read_only else "")
  subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                 check=True, capture_output=True)
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", str(path)], check=True,
                   capture_output=True)


def remount(path, size=None, read_only=None):
  """Changes a `tmpfs` mount: more space, or read-only."""
  options = ["remount"]
  if size is not None:
    options.append(f"size={size}")
  if read_only is not None:
    options.append("ro" if read_only else "rw")
  subprocess.run(["mount", "-o", ",".join(options), str(path)], check=True,
                 capture_output=True)


def write_coco(root, split, images, annotations, categories,
               kind="person_keypoints"):
  """A COCO folder: `root/<split>2017/<file>` images and the annotation file.

  `images`: [{"id", "file_name", "width", "height", "seed"?}] (a JPEG of that
  size is written for each); returns the annotation file's path.
  """
  root = pathlib.Path(root)
  folder = f"{split}2017"
  for i, image in enumerate(images):
    write_image(root / folder / image["file_name"], seed=image.get("seed", i),
                width=image["width"], height=image["height"])
  path = root / "annotations" / f"{kind}_{folder}.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps({
      "images": [{k: v for k, v in im.items() if k != "seed"} for im in images],
      "annotations": annotations,
      "categories": categories,
  }))
  return path
