"""Turns records into checked examples, on every core, in input order.

This module imports neither TensorFlow nor TFDS, so worker processes start
fast. With a `Maker` (a default build), the workers also make each example
and serialize it (`wire`): the build process receives the bytes to write.

Workers are plain `python -c` processes that talk to the parent over pipes
(length-prefixed pickles), not `multiprocessing` ones: a "spawn" or
"forkserver" child re-imports the parent's `__main__` (for `tfds build` that is
the TFDS CLI, ~4 s of TensorFlow and Beam imports per worker), and "fork" is
unsafe once TensorFlow threads run. A worker loads `image_folder_tfds.pipeline`
without running the package `__init__` (which imports TFDS), so it starts in
~0.2 s.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import operator
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator

from image_folder_tfds import annotations
from image_folder_tfds import check_cache
from image_folder_tfds import images as images_lib
from image_folder_tfds import masks as masks_lib
from image_folder_tfds import records
from image_folder_tfds import wire

CHUNK = 32  # Records per message to a worker.
DEPTH = 4  # Chunks in flight per worker: bounds memory (~CHUNK*DEPTH images).
PIPE_BYTES = 1 << 20  # Results a worker may write ahead of the parent.


@dataclasses.dataclass(frozen=True)
class Outcome:
  """What checking one record found.

  An accepted image comes either as what the build needs to make its
  example (`image`, `objects`, `masks`, `segmentation_mask`), or, made by a
  `Maker`, as its serialized example alone (`example`; then `image` is None
  and the rest empty). A rejected one has neither.
  """

  record: records.ImageRecord
  image: images_lib.LoadedImage | None  # None: rejected, or made (`example`).
  objects: tuple[records.ObjectRecord, ...] = ()
  problems: tuple[records.Problem, ...] = ()
  cache: check_cache.Result | None = None  # None: no check cache.
  # One PNG per object (COCO instance masks), () when the image has none.
  masks: tuple[bytes, ...] = ()
  segmentation_mask: bytes | None = None  # Folder pairs: the label image.
  # The serialized `tf.train.Example` (framed as a TFRecord record where
  # the `Maker` is `framed`).
  example: bytes | None = None

  @property
  def accepted(self) -> bool:
    """The image is written (its example is, or can be, made)."""
    return self.image is not None or self.example is not None


@dataclasses.dataclass(frozen=True)
class Maker:
  """How an accepted image becomes the bytes of its example.

  `encode`: the example dict of a checked image, called as
  `encode(record, image, objects, masks, segmentation_mask)`
  (`features.Schema.to_example` or `model_garden.Encoder.encode`, bound to
  the build's schema); `serializer`: the wire plan of the dataset's features
  (`writing.Serializer`, pickled as a `wire.Serializer`). Both pickle without
  TFDS, so a `Maker` crosses to the workers. `framed`: each example comes
  out as its TFRecord record (`wire.tfrecord`: length, CRCs), ready for
  `shards.TfRecordWriter`.
  """

  encode: Callable[..., dict]
  serializer: wire.Serializer
  framed: bool = False

  def make(self, outcome: Outcome) -> Outcome:
    """`outcome` with its serialized example instead of its image."""
    example = self.serializer.serialize(self.encode(
        outcome.record, outcome.image, outcome.objects, outcome.masks,
        outcome.segmentation_mask))
    if self.framed:
      example = wire.tfrecord(example)
    return Outcome(outcome.record, None, problems=outcome.problems,
                   cache=outcome.cache, example=example)


def process(
    record: records.ImageRecord, options: images_lib.ImageOptions,
    cache: check_cache.Lookup | None = None,
) -> Outcome:
  """Reads and checks one image and its annotations. Never raises for input.

  With a `cache`, a check already made of the same bytes under the same
  options and code is reused instead of decoding the image again.
  """
  try:
    data = images_lib.read_file(record.path, record.data_range)
  except FileNotFoundError:
    return _rejected(record, "file not found (missing, or vanished after the scan)")
  except IsADirectoryError:
    return _rejected(record, "is a directory, not an image file")
  except PermissionError as e:
    return _rejected(record, f"unreadable: {e.strerror or e}")
  except OSError as e:
    return _rejected(record, f"unreadable: {e}")
  result = None
  image = None
  if cache is not None:
    key = check_cache.digest(data)
    value, fault = cache.get(key)
    if value is not None:
      try:
        image = check_cache.decode(value, data, options)
      except ValueError as e:
        image, fault = None, (f"check cache {cache.spec.path}: a malformed"
                              f" entry ({e}) ignored, the image is checked")
    if image is not None:
      result = check_cache.Result(reused=True, fault=fault)
      if isinstance(image, str):
        return _rejected(record, image, result)
    else:
      image, reason = _check(data, options)
      result = check_cache.Result(
          reused=False, key=key,
          value=check_cache.entry(data, image, reason, options), fault=fault)
      if image is None:
        return _rejected(record, reason, result)
  else:
    image, reason = _check(data, options)
    if image is None:
      return _rejected(record, reason)
  problems = [
      records.Problem(file=_image_file(record), item=_item(record),
                      reason=note, kind="converted", split=record.split,
                      counts_as_input=False)
      for note in image.notes
  ]
  objects, object_problems = annotations.finalize(
      record, image.display_width, image.display_height
  )
  problems.extend(object_problems)
  objects, masks, mask_problems = masks_lib.instance_masks(
      record, image, objects)
  problems.extend(mask_problems)
  segmentation_mask = None
  if record.mask_path:
    try:
      segmentation_mask = masks_lib.semantic_mask(record, image)
    except masks_lib.MaskError as e:
      problems.append(records.Problem(
          file=record.path, item=_item(record), reason=str(e),
          split=record.split))
      return Outcome(record, None, (), tuple(problems), cache=result)
  return Outcome(record, image, objects, tuple(problems), result,
                 masks=masks, segmentation_mask=segmentation_mask)


def _check(data: bytes, options: images_lib.ImageOptions
           ) -> tuple[images_lib.LoadedImage | None, str | None]:
  try:
    return images_lib.load_image(data, options), None
  except images_lib.ImageError as e:
    return None, str(e)


def _image_file(record: records.ImageRecord) -> str:
  """The file a problem of the image names: an image embedded in another
  file (`data_range`: a spill file of LabelMe's imageData, a TFRecord) is
  named by the file it came from, not a temporary file."""
  return record.path if record.data_range is None else record.source


def _rejected(record: records.ImageRecord, reason: str,
              cache: check_cache.Result | None = None) -> Outcome:
  problem = records.Problem(file=_image_file(record), item=_item(record),
                            reason=reason, split=record.split)
  return Outcome(record, None, (), (problem,), cache=cache)


def _item(record: records.ImageRecord) -> str:
  """Which image of its file a problem is about: an image inside a bigger
  file (a TFRecord: `data_range`) by its example key, "" for a whole file."""
  return record.key if record.data_range is not None else ""


def default_workers() -> int:
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
      os.cpu_count() or 1
  )


def process_all(
    recs: Iterable[records.ImageRecord],
    options: images_lib.ImageOptions,
    num_workers: int | None,
    cache: check_cache.Spec | None = None,
    maker: Maker | None = None,
) -> Iterator[Outcome]:
  """`process` over `recs`, in order, on `num_workers` processes.

  Results come back in input order (deterministic output) through a bounded
  window: at most `DEPTH` chunks of `CHUNK` records per worker are in flight,
  so memory does not grow with the number of images. Chunk i goes to worker
  i % n, and results are read back in chunk order.
  """
  with Pool(options, num_workers, cache, maker) as pool:
    yield from pool.map(recs)


class Pool:
  """Worker processes kept across several `map` calls (a build's splits).

  Workers start at the first `map` and stay until `close`, so a build starts
  them once, not once per split (~0.2 s of CPU each). A `map` stopped before
  its end (an error, a capped debug build) stops the workers, whose pipes
  still hold its results; the next `map` starts new ones. With a `maker`,
  every accepted image comes out made (`Outcome.example`), wherever it was
  checked.
  """

  def __init__(self, options: images_lib.ImageOptions,
               num_workers: int | None = None,
               cache: check_cache.Spec | None = None,
               maker: Maker | None = None):
    self._options = options
    self._cache = cache
    self.maker = maker
    self._lookup: check_cache.Lookup | None = None  # In this process.
    self.size = default_workers() if num_workers is None else num_workers
    self._workers: list[_Worker] = []

  @property
  def started(self) -> bool:
    return bool(self._workers)

  def __enter__(self) -> Pool:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    workers, self._workers = self._workers, []
    for w in workers:
      w.close()
    if self._lookup is not None:
      self._lookup.close()
      self._lookup = None

  def map(self, recs: Iterable[records.ImageRecord],
          in_process: bool = False) -> Iterator[Outcome]:
    """`process` over `recs`, in order (see `process_all`).

    `in_process`: in this process, even if the pool has workers.
    """
    if self.size <= 1 or in_process:
      if self._cache is not None and self._lookup is None:
        self._lookup = check_cache.Lookup(self._cache)
      for r in recs:
        yield self._made(process(r, self._options, self._lookup))
      return
    while len(self._workers) < self.size:
      self._workers.append(_Worker(self._options, self._cache, self.maker))
    workers = self._workers
    finished = False
    try:
      pending: collections.deque[_Worker] = collections.deque()
      for i, chunk in enumerate(_chunks(recs, CHUNK)):
        worker = workers[i % len(workers)]
        worker.send(chunk)
        pending.append(worker)
        if len(pending) >= len(workers) * DEPTH:
          yield from map(self._made, pending.popleft().receive())
      while pending:
        yield from map(self._made, pending.popleft().receive())
      finished = True
    finally:
      if not finished:
        self.close()

  def _made(self, outcome: Outcome) -> Outcome:
    """With a maker, an accepted image is made here if it was not already
    (checked here, or its worker failed to: the error is raised here, as in
    a build without workers)."""
    if self.maker is None or outcome.image is None:
      return outcome
    return self.maker.make(outcome)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
  chunk = []
  for item in items:
    chunk.append(item)
    if len(chunk) == size:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


# An `Outcome` crosses the pipe as plain tuples, without its record (the
# parent has it): unpickling frozen dataclasses cost the parent ~20 us an
# image, a fifth of its work per image.
def _pack(outcome: Outcome, maker: Maker | None = None) -> tuple:
  if maker is not None and outcome.image is not None:
    outcome = _try_make(maker, outcome)
  image = outcome.image
  if image is not None:
    image = (image.data, image.format, image.source_format, image.width,
             image.height, image.display_width, image.display_height,
             image.notes, image.orientation)
  cache = outcome.cache
  if cache is not None:
    cache = (cache.reused, cache.key, cache.value, cache.fault, cache.added)
  return (image, outcome.objects, outcome.problems, cache, outcome.masks,
          outcome.segmentation_mask, outcome.example)


def _try_make(maker: Maker, outcome: Outcome) -> Outcome:
  """The made outcome; if making it fails, the outcome as checked: the build
  process makes it again (`Pool._made`), so the error is raised there, with
  its own traceback, as in a build without workers."""
  try:
    return maker.make(outcome)
  except Exception:  # pylint: disable=broad-except
    return outcome


def _unpack(record: records.ImageRecord, packed: tuple) -> Outcome:
  image, objects, problems, cache, masks, segmentation_mask, example = packed
  if cache is not None:
    cache = check_cache.Result(*cache)
  if image is not None:
    (data, fmt, source_format, width, height, display_width, display_height,
     notes, orientation) = image
    image = images_lib.LoadedImage(
        data=data, format=fmt, source_format=source_format, width=width,
        height=height, display_width=display_width,
        display_height=display_height, notes=notes, orientation=orientation)
  return Outcome(record, image, objects, problems, cache, masks,
                 segmentation_mask, example)


# Records cross the pipe as tuples of their values: pickling the frozen
# dataclasses cost ~4 us a record in the build process, the tuples ~1.
_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(records.ImageRecord))
_record_values = operator.attrgetter(*_RECORD_FIELDS)


def _record_from(values: tuple) -> records.ImageRecord:
  return records.ImageRecord(**dict(zip(_RECORD_FIELDS, values, strict=True)))


# Runs in the worker: load this module without the package `__init__`.
# `python -c` puts the working directory first on sys.path, before PYTHONPATH:
# a folder holding another image_folder_tfds (a checkout) would win over the
# parent's, so it is taken off.
_WORKER_CODE = """\
import importlib.util, sys, types
if sys.path and sys.path[0] == "":
  del sys.path[0]
spec = importlib.util.find_spec("image_folder_tfds")
pkg = types.ModuleType("image_folder_tfds")
pkg.__path__ = list(spec.submodule_search_locations)
pkg.__spec__ = spec
sys.modules["image_folder_tfds"] = pkg
from image_folder_tfds import pipeline
pipeline.worker_main()
"""
_HEADER = struct.Struct(">Q")


def _write_frame(stream, obj) -> None:
  data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
  stream.write(_HEADER.pack(len(data)))
  stream.write(data)
  stream.flush()


def _read_frame(stream):
  header = stream.read(_HEADER.size)
  if len(header) < _HEADER.size:
    raise EOFError
  (size,) = _HEADER.unpack(header)
  data = stream.read(size)
  if len(data) < size:
    raise EOFError
  return pickle.loads(data)


def worker_main() -> None:
  """Worker loop: options, cache and maker first, then chunks of records
  until stdin closes."""
  stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
  sys.stdout = sys.stderr  # Nothing else may write to the result pipe.
  try:
    options, cache_spec, maker = _read_frame(stdin)
  except EOFError:
    return
  lookup = cache_spec and check_cache.Lookup(cache_spec)
  while True:
    try:
      chunk = [_record_from(values) for values in _read_frame(stdin)]
    except EOFError:
      return
    try:
      with lookup.batch() if lookup else contextlib.nullcontext():
        outcomes = [process(r, options, lookup) for r in chunk]
      if lookup:
        outcomes = _add_entries(lookup, outcomes)
      result = ("ok", [_pack(o, maker) for o in outcomes])
    except Exception as e:  # pylint: disable=broad-except
      import traceback  # pylint: disable=g-import-not-at-top
      result = ("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    _write_frame(stdout, result)


def _add_entries(lookup: check_cache.Lookup,
                 outcomes: list[Outcome]) -> list[Outcome]:
  """The chunk's new check-cache entries, added by this worker in one
  transaction: the build process then only counts them (`Result.added`)."""
  new = [o.cache for o in outcomes
         if o.cache is not None and o.cache.value is not None]
  if not lookup.add([(c.key, c.value) for c in new]):
    return outcomes  # Not added: the build process adds them.
  return [o if o.cache is None or o.cache.value is None else
          dataclasses.replace(o, cache=dataclasses.replace(
              o.cache, value=None, added=True))
          for o in outcomes]


def _grow_pipe(stream) -> None:
  """Lets a worker run ahead of the parent by up to 1 MB of results.

  Results are read in input order; with the default 64 KB pipe a worker that
  finished its chunk waits for the parent to read the other worker's first,
  and a core idles whenever the scheduler holds the parent back. Linux only
  (`F_SETPIPE_SZ`); elsewhere, or above the system limit, the pipe keeps its
  size, which changes nothing but speed.
  """
  try:
    import fcntl  # pylint: disable=g-import-not-at-top
    fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031),
                PIPE_BYTES)
  except (ImportError, OSError) as e:
    _PIPE_NOTES.append(str(e))  # Kept for debugging; nothing else to do.


_PIPE_NOTES: list[str] = []


class _Worker:
  """One worker process; a thread feeds it so the parent never blocks on it."""

  def __init__(self, options: images_lib.ImageOptions,
               cache: check_cache.Spec | None = None,
               maker: Maker | None = None):
    env = dict(os.environ)
    # The worker must find this very package (editable or not).
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_parent, env.get("PYTHONPATH")) if p)
    self._proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER_CODE],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    _grow_pipe(self._proc.stdout)
    self._inbox: queue.Queue = queue.Queue()
    self._inbox.put((options, cache, maker))
    self._feeder = threading.Thread(target=self._feed, daemon=True)
    self._feeder.start()
    self._chunks: collections.deque[list] = collections.deque()
    self.feed_error: OSError | None = None

  def _feed(self) -> None:
    try:
      while True:
        item = self._inbox.get()
        if item is None:
          break
        _write_frame(self._proc.stdin, item)
      self._proc.stdin.close()
    except OSError as e:  # The worker died: `receive` reports it, with this.
      self.feed_error = e

  def send(self, chunk: list[records.ImageRecord]) -> None:
    self._chunks.append(chunk)
    self._inbox.put([_record_values(r) for r in chunk])

  def receive(self) -> list[Outcome]:
    chunk = self._chunks.popleft()
    try:
      status, value = _read_frame(self._proc.stdout)
    except EOFError:
      code = self._proc.wait()
      raise RuntimeError(
          f"image worker process (pid {self._proc.pid}) died with exit code"
          f" {code} while checking {chunk[0].path} and {len(chunk) - 1} more"
          f" files (pipe: {self.feed_error}); its error is printed above"
      ) from None
    if status != "ok":
      raise RuntimeError(
          f"image worker failed on one of {chunk[0].path} and"
          f" {len(chunk) - 1} more files: {value}")
    return [_unpack(r, packed) for r, packed in zip(chunk, value, strict=True)]

  def close(self) -> None:
    """Lets an idle worker exit; kills one whose results nobody will read."""
    if self._chunks:  # Stopped early (an error, or a capped debug build).
      self._proc.kill()
    self._inbox.put(None)
    self._feeder.join()
    self._proc.stdout.close()
    self._proc.wait()
