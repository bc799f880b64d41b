"""Turns records into checked examples, on every core, in input order.

This module imports neither TensorFlow nor TFDS, so worker processes start
fast. The builder turns each `Outcome` into a TFDS example.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Iterable, Iterator

from image_folder_tfds import annotations
from image_folder_tfds import images as images_lib
from image_folder_tfds import records


@dataclasses.dataclass(frozen=True)
class Outcome:
  record: records.ImageRecord
  image: images_lib.LoadedImage | None  # None: the image was rejected.
  objects: tuple[records.ObjectRecord, ...] = ()
  problems: tuple[records.Problem, ...] = ()


def process(
    record: records.ImageRecord, options: images_lib.ImageOptions
) -> Outcome:
  """Reads and checks one image and its annotations. Never raises for input."""
  try:
    data = images_lib.read_file(record.path)
  except FileNotFoundError:
    return _rejected(record, "file not found (missing, or vanished after the scan)")
  except IsADirectoryError:
    return _rejected(record, "is a directory, not an image file")
  except PermissionError as e:
    return _rejected(record, f"unreadable: {e.strerror or e}")
  except OSError as e:
    return _rejected(record, f"unreadable: {e}")
  try:
    image = images_lib.load_image(data, options)
  except images_lib.ImageError as e:
    return _rejected(record, str(e))
  problems = [
      records.Problem(file=record.path, reason=note, kind="converted",
                      split=record.split, counts_as_input=False)
      for note in image.notes
  ]
  objects, object_problems = annotations.finalize(
      record, image.display_width, image.display_height
  )
  problems.extend(object_problems)
  return Outcome(record, image, objects, tuple(problems))


def _rejected(record: records.ImageRecord, reason: str) -> Outcome:
  problem = records.Problem(file=record.path, reason=reason, split=record.split)
  return Outcome(record, None, (), (problem,))


def _process_star(args):
  return process(*args)


def default_workers() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
      os.cpu_count() or 1
  )


def process_all(
    recs: Iterable[records.ImageRecord],
    options: images_lib.ImageOptions,
    num_workers: int | None,
) -> Iterator[Outcome]:
  """`process` over `recs`, in order, on `num_workers` processes.

  Results come back in input order (deterministic output) through a bounded
  window, so memory does not grow with the number of images.
  """
  workers = default_workers() if num_workers is None else num_workers
  if workers <= 1:
    for r in recs:
      yield process(r, options)
    return
  # "spawn": the parent has TensorFlow threads running; forking it is unsafe.
  ctx = multiprocessing.get_context("spawn")
  with ctx.Pool(workers) as pool:
    yield from pool.imap(
        _process_star, ((r, options) for r in recs), chunksize=16
    )
