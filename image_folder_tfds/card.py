"""The dataset card: what a release holds, in Markdown, written with each build.

The card is `dataset_card.md` in the dataset folder and also the dataset's
TFDS description (`info.description`), so `tfds.builder(...).info` shows it.
It holds no timestamps: a rebuild of the same release gives the same card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

CARD_FILE = "dataset_card.md"
NO_CLASS = "(no class label)"


def render(
    *,
    name: str,
    version: str,
    description: str,
    source: str,  # Markdown: the URL or the data folder's name, no local path.
    options: Mapping,
    class_names: list[str],
    counts: Mapping[str, Mapping[str, int]],
    class_counts: Mapping[str, Mapping[int, int]],
    release_notes: Mapping[str, str],
    report_summary: str,
) -> str:
  """The card text.

  Args:
    counts: Per split: {"found", "written", "rejected"} (`BuildReport`).
    class_counts: Per split: {class index: examples written}; -1 = no label.
      A multi-label image counts once under each of its labels.
    release_notes: {version: note}, every version known to this build.
    report_summary: `BuildReport.summary(counts)`.
  """
  lines = [f"# {name} {version}", "", description.strip(), ""]
  lines += ["## Source", "", source, ""]
  lines += ["## Splits", "", "| split | examples | inputs found | rejected |",
            "|---|---:|---:|---:|"]
  left_out = []
  for split, c in counts.items():
    if c["found"] and not c["written"] and not split.startswith("("):
      left_out.append(split)  # "(no split)": files without a split.
    lines.append(
        f"| {split} | {c['written']} | {c['found']} | {c['rejected']} |")
  lines.append("")
  if left_out:
    lines += ["Left out of the dataset, every input rejected (files named in"
              " the build report below): "
              + ", ".join(f"`{s}`" for s in left_out), ""]

  splits = sorted(class_counts)
  lines += ["## Classes", "",
            "| index | class | " + " | ".join(splits) + " | total |",
            "|---:|---|" + "---:|" * (len(splits) + 1)]
  indices = list(range(len(class_names)))
  if any(-1 in per for per in class_counts.values()):
    indices.append(-1)
  for i in indices:
    per = [class_counts[s].get(i, 0) for s in splits]
    label = class_names[i] if i >= 0 else NO_CLASS
    index = str(i) if i >= 0 else ""
    lines.append(f"| {index} | {label} | "
                 + " | ".join(str(n) for n in per) + f" | {sum(per)} |")
  lines.append("")

  lines += ["## Version history", ""]
  for v, note in sorted(release_notes.items(), key=lambda kv: _key(kv[0]),
                        reverse=True):
    marker = " (this release)" if v == version else ""
    lines.append(f"* **{v}**{marker}: {note}")
  if version not in release_notes:
    lines.append(f"* **{version}** (this release): no release notes given")
  lines.append("")

  lines += ["## Options", "", "```json",
            json.dumps(dict(options), indent=1, sort_keys=True, default=str),
            "```", ""]
  lines += ["## Build report", "", "```", report_summary.strip(), "```", "",
            "Every rejected or changed input is listed in `build_report.json`;"
            " every shard's sha256 and record count in `manifest.json`"
            " (check with `image-folder-tfds verify DATASET_DIR`).", ""]
  return "\n".join(lines)


def _key(version: str) -> tuple[int, ...]:
  return tuple(int(p) for p in version.split("."))
