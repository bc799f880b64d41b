"""Dry run: every check of a build, without writing a dataset.

`inspect_folder` runs the same reader scan (`readers.scan`) and the same
per-image checks (`pipeline.process`, images decoded but not kept) as
`tfds build`, and collects the problems in the same `BuildReport`. Problems
that a strict build stops at ("rejected", "changed") make it fail.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterable

from image_folder_tfds import images
from image_folder_tfds import pipeline
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds import report as report_lib
from image_folder_tfds.config import MyImagesConfig

STRICT_KINDS = ("rejected", "changed")
# As in the builder: below this many images, worker processes cost more than
# they save.
_MIN_IMAGES_FOR_WORKERS = 64


@dataclasses.dataclass
class Inspection:
  root: str
  report: report_lib.BuildReport
  counts: dict[str, dict[str, int]]  # split -> found / written / rejected.
  seconds: float

  @property
  def strict_failures(self) -> list:
    """Problems a strict build stops at, in the order they were found."""
    return [p for p in self.report.problems if p.kind in STRICT_KINDS]

  @property
  def empty_splits(self) -> list[str]:
    """Splits with inputs but no image left: a build leaves them out."""
    return report_lib.BuildReport.left_out(self.counts)

  @property
  def no_build(self) -> bool:
    """No image at all can be written: every build fails."""
    return not any(c["written"] for c in self.counts.values())

  @property
  def clean(self) -> bool:
    return not self.strict_failures and not self.empty_splits

  def summary(self) -> str:
    r = self.report
    lines = [
        f"data folder: {self.root}",
        f"layout: {r.layout}",
        f"classes ({len(r.class_names)}): " + ", ".join(r.class_names),
        "splits (found = would be written + rejected):",
    ]
    for split, c in self.counts.items():
      lines.append(f"  {split}: {c['found']} found, {c['written']} would be"
                   f" written, {c['rejected']} rejected")
    by_kind = collections.Counter(p.kind for p in r.problems)
    if not r.problems:
      lines.append("problems: none")
    for kind in ("rejected", "changed", "converted", "warning"):
      items = [p for p in r.problems if p.kind == kind]
      if items:
        lines.append(f"{kind} ({by_kind[kind]}):")
        lines.extend(f"  {p}" for p in items)
    if self.no_build:
      lines.append("result: no build can succeed (no image can be written)")
    elif self.strict_failures:
      lines.append(
          f"result: {len(self.strict_failures)} problem(s) would fail a"
          " strict build (strict=True); a default build writes the rest and"
          " reports them")
    else:
      lines.append("result: clean (a strict build would pass)")
    lines.append(f"checked in {self.seconds:.1f} s")
    return "\n".join(lines)

  def to_dict(self) -> dict:
    out = self.report.to_dict(self.counts)
    out["clean"] = self.clean
    out["seconds"] = round(self.seconds, 3)
    return out


def inspect_folder(
    root: str | os.PathLike,
    config: MyImagesConfig | None = None,
    progress: bool = False,
    output_check: Callable[[readers.ScanResult, str], Iterable[records.Problem]]
    | None = None,
) -> Inspection:
  """Checks `root` as `tfds build` with `config` would. Raises `InputError`.

  Raises what the build raises before reading any image (no images at all,
  duplicate example keys, a bad labels or annotation file).

  Inspection reads and checks the input only; it knows no output format.
  What an output format cannot store (`model_garden.dropped_fields`) is
  the caller's to add (`cli.py` does): `output_check(scan, root)` gives
  those problems, reported where the build reports them, after the scan's.
  """
  config = config or MyImagesConfig()
  start = time.perf_counter()
  root = os.fspath(root)
  scanning = (readers.common.scan_progress(root) if progress
              else contextlib.nullcontext())
  with scanning:
    scan = readers.scan(root, config.layout, config.read_options())
  report = report_lib.BuildReport(
      root=root, layout=scan.layout, class_names=scan.class_names,
      options=config.options())
  report.add_scan(scan)
  if output_check is not None:
    for p in output_check(scan, root):
      report.add(p)
  options = images.ImageOptions(
      max_side=config.max_side,
      max_image_pixels=config.max_image_pixels,
      keep_bytes=False,  # Decoded and checked, never kept.
  )
  workers = config.num_workers
  if len(scan.records) < _MIN_IMAGES_FOR_WORKERS:
    workers = 0
  outcomes = pipeline.process_all(scan.records, options, workers)
  if progress:
    import tqdm  # pylint: disable=g-import-not-at-top
    outcomes = tqdm.tqdm(outcomes, total=len(scan.records), unit=" images",
                         desc="checking images", mininterval=1.0)
  written: collections.Counter[str] = collections.Counter()
  for outcome in outcomes:
    for p in outcome.problems:
      report.add(p)
    if outcome.image is not None:
      written[outcome.record.split] += 1
  counts = report.reconcile(dict(written))
  report.add_split_warnings(counts, config.min_split_examples)
  return Inspection(root=root, report=report, counts=counts,
                    seconds=time.perf_counter() - start)
