"""The build report: every input accounted for, written with the dataset.

Per split: inputs found = examples written + inputs rejected. A build whose
numbers do not add up fails (`reconcile`), whatever the engine did.

The report, its summary and so the dataset card name files relative to the
data root (`portable`): nothing written with a dataset holds the absolute
path of the folder it was built from, so two builds of the same data in two
folders give the same files. Paths outside the root (an absolute labels file
given as an option) stay as given.

A split whose every input was rejected is left out of the dataset (TFDS cannot
write an empty split); `add_split_warnings` says so, naming the files, and
warns about splits too small to evaluate on.
"""

from __future__ import annotations

import collections
import json
import os

from image_folder_tfds import records

REPORT_FILE = "build_report.json"
NO_SPLIT = "(no split)"  # Files rejected before a split could be given.
# Rejected files named in a "left out" warning; the rest are in `problems`.
_NAMED = 10


class CountMismatchError(RuntimeError):
  """Examples written + inputs rejected != inputs found."""


class BuildReport:
  """Collects problems and counts while a dataset is built."""

  def __init__(self, *, root: str, layout: str, class_names: list[str],
               options: dict):
    self.root = root
    # The root as given and resolved (readers may resolve links), longest
    # first, each with a trailing separator.
    self._prefixes = sorted(
        {os.path.join(r, "") for r in (root, os.path.realpath(root)) if r},
        key=len, reverse=True)
    self.layout = layout
    self.class_names = list(class_names)
    self.options = options
    self.found: collections.Counter[str] = collections.Counter()
    self.problems: list[records.Problem] = []
    # How the check cache served this build (`check_cache.Cache.stats`), or
    # None without one. Build-specific: differs between a cached and a clean
    # build of the same data, so it is kept out of the card.
    self.check_cache: dict | None = None

  @property
  def root_name(self) -> str:
    """The data folder's name, without the path to it."""
    return os.path.basename(os.path.normpath(self.root))

  def portable(self, text: str) -> str:
    """`text` with every path under the root made relative to it."""
    for prefix in self._prefixes:
      if text == prefix.rstrip(os.sep):
        return "."
      text = text.replace(prefix, "")
    return text

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

  def add_split_warnings(self, counts: dict[str, dict[str, int]],
                         min_examples: int) -> None:
    """Warnings for splits left out (nothing written) or below `min_examples`.

    `counts` is `reconcile`'s result. Call once, after it.
    """
    for split, c in counts.items():
      if split == NO_SPLIT or not c["found"]:
        continue
      if not c["written"]:
        files = [p.file for p in self.problems
                 if p.kind == "rejected" and p.split == split
                 and p.counts_as_input]
        more = (f" and {len(files) - _NAMED} more" if len(files) > _NAMED
                else "")
        self.add(records.Problem(
            file="", split=split, kind="warning", counts_as_input=False,
            reason=f"split {split!r} is left out of the dataset: all"
            f" {c['found']} of its input(s) were rejected: "
            + ", ".join(files[:_NAMED]) + more))
      elif c["written"] < min_examples:
        self.add(records.Problem(
            file="", split=split, kind="warning", counts_as_input=False,
            reason=f"split {split!r} holds only {c['written']} example(s),"
            f" fewer than min_split_examples={min_examples}: too few to"
            " evaluate or train on reliably"))

  @staticmethod
  def left_out(counts: dict[str, dict[str, int]] | None) -> list[str]:
    """Splits with inputs of which none was written (not in the dataset)."""
    return [s for s, c in (counts or {}).items()
            if s != NO_SPLIT and c["found"] and not c["written"]]

  def to_dict(self, counts: dict | None = None) -> dict:
    by_kind = collections.Counter(p.kind for p in self.problems)
    return {
        # The folder's name only: the files below are relative to it.
        "root": self.root_name,
        "layout": self.layout,
        "class_names": self.class_names,
        "options": self.options,
        "counts": counts,
        "left_out_splits": self.left_out(counts),
        "problem_counts": dict(sorted(by_kind.items())),
        "problems": [
            {"kind": p.kind, "split": p.split, "file": self.portable(p.file),
             "item": p.item, "reason": self.portable(p.reason)}
            for p in self.problems
        ],
        "check_cache": self.check_cache,
    }

  def to_json(self, counts: dict | None = None) -> str:
    return json.dumps(self.to_dict(counts), indent=1, ensure_ascii=False)

  def summary(self, counts: dict | None = None, limit: int = 20) -> str:
    lines = [f"my_images build report ({self.layout}, {len(self.class_names)}"
             " classes)"]
    left_out = self.left_out(counts)
    for split, c in (counts or {}).items():
      note = " (left out of the dataset)" if split in left_out else ""
      lines.append(f"  {split}: {c['found']} found, {c['written']} written,"
                   f" {c['rejected']} rejected{note}")
    for kind in ("rejected", "changed", "converted", "warning"):
      items = [p for p in self.problems if p.kind == kind]
      if not items:
        continue
      lines.append(f"  {len(items)} {kind}:")
      lines.extend(f"    {self.portable(str(p))}" for p in items[:limit])
      if len(items) > limit:
        lines.append(f"    ... and {len(items) - limit} more: see {REPORT_FILE}")
    return "\n".join(lines)
