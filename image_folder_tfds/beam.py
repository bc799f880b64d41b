"""The Apache Beam path: same examples as the plain path, every input counted.

Used when `tfds build ... --beam_pipeline_options=...` is given (DirectRunner
multi_processing on one machine; Dataflow, Flink or Spark beyond it). Records
are written in chunk files next to the build (not embedded in the pipeline
graph, which Dataflow caps at 10 MB), each worker checks images with
`pipeline.process` (the same checks as the plain path) and yields the same
(key, example) pairs, which TFDS's `BeamWriter` shuffles and writes.

What each worker found comes back as a side output, one JSON line per input,
written to `beam_outcomes/` in the build folder and read by the builder after
the pipeline: problems go to the build report and the number of inputs the
workers saw is checked, so `report.reconcile` still holds: inputs found =
examples TFDS wrote + inputs rejected. An engine that drops examples (see
`docs/benchmark.md`, "Beam") fails the build loudly instead of shipping a
dataset with examples missing.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Callable, Iterable

from etils import epath

from image_folder_tfds import images as images_lib
from image_folder_tfds import pipeline
from image_folder_tfds import records

WORK_DIR = "beam_work"  # Inside the (incomplete) dataset folder; removed after.
RECORDS_PER_FILE = 1000
_OUTCOMES = "outcomes"


def uses_beam(download_config) -> bool:
  """True when the user asked for Beam (`--beam_pipeline_options` or a runner)."""
  return bool(download_config and (
      download_config.beam_options is not None
      or download_config.beam_runner is not None))


@dataclasses.dataclass(frozen=True)
class _Check:
  """Checks one record; the example goes on, a line per input to the side."""

  options: images_lib.ImageOptions
  encode: Callable[[pipeline.Outcome], dict]
  strict: bool

  def __call__(self, record: records.ImageRecord):
    import apache_beam as beam  # pylint: disable=g-import-not-at-top
    outcome = pipeline.process(record, self.options)
    if self.strict:
      for p in outcome.problems:
        if p.kind in ("rejected", "changed"):
          raise records.BadInputError(p)
    yield beam.pvalue.TaggedOutput(_OUTCOMES, json.dumps({
        "split": record.split,
        "labels": records.counted_classes(record),
        "written": outcome.image is not None,
        "problems": [dataclasses.asdict(p) for p in outcome.problems],
    }))
    if outcome.image is not None:
      yield record.key, self.encode(outcome)


def _load_chunk(path: str) -> list[records.ImageRecord]:
  return pickle.loads(epath.Path(path).read_bytes())


def split_transform(
    recs: list[records.ImageRecord],
    work_dir: epath.Path,
    options: images_lib.ImageOptions,
    encode: Callable[[pipeline.Outcome], dict],
    strict: bool,
):
  """A PTransform yielding (key, example) for `recs` (one split)."""
  import apache_beam as beam  # pylint: disable=g-import-not-at-top

  split = recs[0].split
  folder = work_dir / split
  folder.mkdir(parents=True, exist_ok=True)
  paths = []
  for i in range(0, len(recs), RECORDS_PER_FILE):
    path = folder / f"records-{i // RECORDS_PER_FILE:05d}.pkl"
    path.write_bytes(pickle.dumps(recs[i:i + RECORDS_PER_FILE]))
    paths.append(str(path))
  check = _Check(options, encode, strict)
  outcomes_prefix = str(folder / _OUTCOMES)

  @beam.ptransform_fn
  def _examples(root):
    out = (
        root
        | "RecordFiles" >> beam.Create(paths)
        | "ReadRecords" >> beam.FlatMap(_load_chunk)
        | "Spread" >> beam.Reshuffle()
        | "Check" >> beam.FlatMap(check).with_outputs(_OUTCOMES, main="examples")
    )
    _ = out[_OUTCOMES] | "WriteOutcomes" >> beam.io.WriteToText(
        outcomes_prefix, file_name_suffix=".jsonl")
    return out.examples

  return _examples()  # pylint: disable=no-value-for-parameter


@dataclasses.dataclass
class Outcomes:
  """What the Beam workers reported, summed over every split."""

  checked: dict[str, int]
  written: dict[str, int]
  labels: dict[str, dict[int, int]]
  problems: list[records.Problem]


def read_outcomes(work_dir: epath.Path) -> Outcomes:
  """Reads the side outputs of every split, then removes the work folder."""
  checked: dict[str, int] = {}
  written: dict[str, int] = {}
  labels: dict[str, dict[int, int]] = {}
  problems = []
  for path in sorted(work_dir.glob(f"*/{_OUTCOMES}*.jsonl")):
    for line in _lines(path):
      o = json.loads(line)
      split = o["split"]
      checked[split] = checked.get(split, 0) + 1
      if o["written"]:
        written[split] = written.get(split, 0) + 1
        counts = labels.setdefault(split, {})
        for label in o["labels"]:
          counts[label] = counts.get(label, 0) + 1
      problems.extend(records.Problem(**p) for p in o["problems"])
  work_dir.rmtree(missing_ok=True)
  return Outcomes(checked, written, labels, problems)


def _lines(path: epath.Path) -> Iterable[str]:
  return (line for line in path.read_text().splitlines() if line.strip())


def check_outcomes(found_records: dict[str, int], outcomes: Outcomes) -> None:
  """Every record reached a worker and came back, exactly once."""
  errors = [
      f"split {split!r}: {n} records sent to Beam, {outcomes.checked.get(split, 0)}"
      " came back from its workers"
      for split, n in sorted(found_records.items())
      if outcomes.checked.get(split, 0) != n
  ]
  if errors:
    from image_folder_tfds import report  # pylint: disable=g-import-not-at-top
    raise report.CountMismatchError(
        "the Beam pipeline lost or duplicated inputs, so the build is not"
        " kept: " + "; ".join(errors))


def count_shard_records(path: epath.Path) -> int:
  """Records actually in a shard file (TFRecord framing or ArrayRecord index)."""
  if ".array_record-" in path.name:
    from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
    reader = array_record_module.ArrayRecordReader(str(path))
    try:
      return reader.num_records()
    finally:
      reader.close()
  from image_folder_tfds import release  # pylint: disable=g-import-not-at-top
  return release.count_tfrecords(path)


def check_shards(data_path: epath.Path, splits) -> None:
  """The shard files hold the records TFDS's split info says they hold.

  TFDS's `BeamWriter` takes shard lengths from what its workers report, not
  from the files; a shard written twice or lost on the way would pass
  unnoticed. Counting the files' own records closes that gap.
  """
  errors = []
  for name, split in sorted(splits.items()):
    for file_name, expected in zip(split.filenames, split.shard_lengths):
      path = epath.Path(data_path) / file_name
      if not path.exists():
        errors.append(f"{path}: shard missing ({expected} records expected)")
        continue
      actual = count_shard_records(path)
      if actual != expected:
        errors.append(f"{path}: {actual} records, split {name!r} info says"
                      f" {expected}")
  if errors:
    from image_folder_tfds import report  # pylint: disable=g-import-not-at-top
    raise report.CountMismatchError(
        "shard files do not hold the examples the build counted, so the build"
        " is not kept: " + "; ".join(errors))


class UnsupportedRunnerError(ValueError):
  """A Beam runner known not to run TFDS's Beam pipeline correctly."""


def is_dask_runner(runner) -> bool:
  """Whether `runner` (a name or a runner object) is Beam's DaskRunner.

  Decided from the name alone ("DaskRunner", "dask", any case, or a dotted
  path ending in one of them), or from the class of a runner object: before
  Beam imports the runner, so the answer does not depend on whether `dask`
  is installed. Beam's `create_runner` (2.77, 2.78) finds the DaskRunner only
  by its dotted path and rejects the short names as unknown runners; they are
  refused here too, with the reason.
  """
  if runner is None:
    return False
  if isinstance(runner, str):
    name = runner.rsplit(".", 1)[-1].lower()
    return name in ("dask", "daskrunner")
  return any(cls.__name__ == "DaskRunner" for cls in type(runner).__mro__)


def check_runner(download_config) -> None:
  """Refuses, before any work, a runner that would give a wrong dataset.

  Beam's DaskRunner cannot run TFDS's Beam pipeline (`bench/dask_repro.py`,
  docs/benchmark.md "Beam on Dask"; seen with Beam 2.77 and 2.78): it sends
  a step's tagged output down its main output too (our `Check` step's side
  output reaches TFDS's `Encode` step as examples), computes only the branch
  of the last transform (one split, or our side output, would be missing),
  and recomputes side inputs in every task (TFDS's shard assignment reads
  one). Refused for every Beam version, whether or not `dask` is installed,
  before Beam looks the runner up. Other runners are not checked here.
  """
  options = download_config.beam_options if download_config else None
  runner = download_config.beam_runner if download_config else None
  if options is not None and runner is None:
    from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
    runner = options.view_as(pipeline_options.StandardOptions).runner
  if not is_dask_runner(runner):
    return
  import apache_beam  # pylint: disable=g-import-not-at-top
  raise UnsupportedRunnerError(
      f"my_images: Beam {apache_beam.__version__}'s DaskRunner cannot run"
      " TFDS's Beam pipeline: it passes the tagged side output of a step"
      " (my_images's Check step) to the step reading its main output"
      " (TFDS's Encode), runs only the last branch of the pipeline and"
      " recomputes side inputs in every task (TFDS's shard assignment):"
      " the dataset would be wrong. Reproduction: bench/dask_repro.py. Use"
      " DirectRunner, Dataflow, Flink or Spark, or no Beam on one machine.")


def direct_runner_warning(download_config) -> str | None:
  """A warning for Beam's DirectRunner with several workers, else None.

  With `direct_running_mode=multi_processing` (or `multi_threading`) and
  more than one worker, Beam 2.77's runner lost ~6% of the examples of a
  50k-image build (docs/benchmark.md, "Beam"), by the race that
  `fix_runner_output_stream_race` closes; the checks above would fail the
  build if anything were lost anyway. On one machine the default path is
  faster and does not need Beam.
  """
  options = download_config.beam_options if download_config else None
  if options is None:
    return None
  from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
  runner = (options.view_as(pipeline_options.StandardOptions).runner
            or download_config.beam_runner)
  if runner is not None and "Direct" not in str(runner):
    return None
  direct = options.view_as(pipeline_options.DirectOptions)
  if direct.direct_running_mode not in ("multi_processing", "multi_threading"):
    return None
  if direct.direct_num_workers == 1:
    return None
  return (
      "my_images: Beam's DirectRunner with several workers"
      f" ({direct.direct_running_mode}) loses examples through a race in its"
      " data stream; my_images patches it for this build, and checks every"
      " input and fails rather than keep an incomplete dataset. On one"
      " machine, build without --beam_pipeline_options: it uses every core"
      " and is 5-7x faster.")


def fix_runner_output_stream_race() -> bool:
  """Makes Beam's runner-side data streams safe to flush while written.

  The cause of the lost examples (docs/benchmark.md, "Beam"): the Python
  portable runner (DirectRunner with `direct_running_mode=multi_processing`)
  sends each bundle's input to an SDK worker through a
  `data_plane.TimeBasedBufferingClosableOutputStream`
  (`BeamFnDataServicer(DATA_BUFFER_TIME_LIMIT_MS=1000)`). A timer thread
  flushes it every second under `_flush_lock`: `get()` the buffer, send it,
  `_clear()` it. `write()` takes no lock, so bytes written between `get()` and
  `_clear()` are dropped without an error. Only inputs that take over a second
  to write are hit: the large buffer a stage reads after a fusion break, as
  TFDS's shard assignment (it reads a side input) does. Beam 2.77 and 2.78
  (the class is the same in both; docs/benchmark.md); the worker side uses
  size-based streams (no timer) and other runners do not use this class.

  `write` is made to take the same lock. Idempotent; returns True when the
  patch is (now) in place, False when this Beam has no such class.
  """
  try:
    from apache_beam.runners.worker import data_plane  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  cls = getattr(data_plane, "TimeBasedBufferingClosableOutputStream", None)
  if cls is None:
    return False
  if getattr(cls.write, "_image_folder_tfds_locked", False):
    return True
  unlocked_write = cls.write

  def write(self, b, nested=False):
    with self._flush_lock:  # pylint: disable=protected-access
      unlocked_write(self, b, nested)

  write._image_folder_tfds_locked = True  # pylint: disable=protected-access
  cls.write = write
  return True
