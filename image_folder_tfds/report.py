"""The build report: every input accounted for, written with the dataset.

Per split: inputs found = examples written + inputs rejected. A build whose
numbers do not add up fails (`reconcile`), whatever the engine did.
"""

from __future__ import annotations

import collections
import json

from image_folder_tfds import records

REPORT_FILE = "build_report.json"
NO_SPLIT = "(no split)"  # Files rejected before a split could be given.


class CountMismatchError(RuntimeError):
  """Examples written + inputs rejected != inputs found."""


class BuildReport:
  """Collects problems and counts while a dataset is built."""

  def __init__(self, *, root: str, layout: str, class_names: list[str],
               options: dict):
    self.root = root
    self.layout = layout
    self.class_names = list(class_names)
    self.options = options
    self.found: collections.Counter[str] = collections.Counter()
    self.problems: list[records.Problem] = []
    # How the check cache served this build (`check_cache.Cache.stats`), or
    # None without one. Build-specific: differs between a cached and a clean
    # build of the same data, so it is kept out of the card.
    self.check_cache: dict | None = None

  def add_found(self, split: str, n: int = 1) -> None:
    self.found[split or NO_SPLIT] += n

  def add(self, problem: records.Problem) -> None:
    self.problems.append(problem)

  def add_scan(self, scan) -> None:
    """Inputs and problems of a reader's `ScanResult`."""
    for split, n in collections.Counter(scan.split_names()).items():
      self.add_found(split, n)
    for p in scan.problems:
      self.add(p)
      if p.kind == "rejected" and p.counts_as_input:
        self.add_found(p.split)

  def rejected(self) -> collections.Counter[str]:
    return collections.Counter(
        p.split or NO_SPLIT for p in self.problems
        if p.kind == "rejected" and p.counts_as_input)

  def reconcile(self, written: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per-split counts; raises `CountMismatchError` when they disagree."""
    rejected = self.rejected()
    counts = {}
    errors = []
    for split in sorted(set(self.found) | set(written) | set(rejected)):
      c = {"found": self.found[split], "written": written.get(split, 0),
           "rejected": rejected[split]}
      counts[split] = c
      if c["found"] != c["written"] + c["rejected"]:
        errors.append(
            f"split {split!r}: {c['found']} inputs found, but"
            f" {c['written']} examples written + {c['rejected']} rejected ="
            f" {c['written'] + c['rejected']}")
    if errors:
      raise CountMismatchError(
          "the build lost track of inputs, so it is not kept: "
          + "; ".join(errors))
    return counts

  def to_dict(self, counts: dict | None = None) -> dict:
    by_kind = collections.Counter(p.kind for p in self.problems)
    return {
        "root": self.root,
        "layout": self.layout,
        "class_names": self.class_names,
        "options": self.options,
        "counts": counts,
        "problem_counts": dict(sorted(by_kind.items())),
        "problems": [
            {"kind": p.kind, "split": p.split, "file": p.file,
             "item": p.item, "reason": p.reason}
            for p in self.problems
        ],
        "check_cache": self.check_cache,
    }

  def to_json(self, counts: dict | None = None) -> str:
    return json.dumps(self.to_dict(counts), indent=1, ensure_ascii=False)

  def summary(self, counts: dict | None = None, limit: int = 20) -> str:
    lines = [f"my_images build report ({self.layout}, {len(self.class_names)}"
             " classes)"]
    for split, c in (counts or {}).items():
      lines.append(f"  {split}: {c['found']} found, {c['written']} written,"
                   f" {c['rejected']} rejected")
    for kind in ("rejected", "changed", "converted", "warning"):
      items = [p for p in self.problems if p.kind == kind]
      if not items:
        continue
      lines.append(f"  {len(items)} {kind}:")
      lines.extend(f"    {p}" for p in items[:limit])
      if len(items) > limit:
        lines.append(f"    ... and {len(items) - limit} more: see {REPORT_FILE}")
    return "\n".join(lines)
