"""`label_map.pbtxt` for the Object Detection API and Model Garden.

The OD API's `label_map_util` reads a `StringIntLabelMap` text proto:

    item {
      id: 1
      name: "cat"
      display_name: "cat"
    }

Ids start at 1 there: 0 is the background class. Our datasets number classes
from 0 (TFDS `ClassLabel`), so id = class index + `offset` (default 1). The
plain class list (`labels.txt`, one name per line, line number from 0 = class
index) is written next to it: it is also the labels file `my_images` reads.

Model Garden's `TfExampleDecoderLabelMap`
(official/vision/dataloaders/tf_example_label_map_decoder.py) reads neither:
it takes a `.csv` file read with `csv.reader`, one `id,name` row per class and
no header (`int(row[0])`, exactly two cells a row), and maps each object's
`image/object/class/text` to that id. `label_map.csv` is that file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence

LABEL_MAP_FILE = "label_map.pbtxt"
LABELS_FILE = "labels.txt"
LABEL_MAP_CSV_FILE = "label_map.csv"  # Model Garden's TfExampleDecoderLabelMap.
# OD API and Model Garden detection: 0 is background, classes start at 1.
DEFAULT_OFFSET = 1


def _quote(text: str) -> str:
  """A text-proto string literal (JSON escaping is valid text-proto escaping)."""
  return json.dumps(text, ensure_ascii=False)


def to_pbtxt(
    class_names: Sequence[str],
    offset: int = DEFAULT_OFFSET,
    keypoint_names: Mapping[str, Sequence[str]] | None = None,
) -> str:
  """The label map text of `class_names`: `id` = index + `offset`.

  `keypoint_names` ({class: names}, as COCO categories give them) become the
  item's `keypoints { id label }`, the id being the keypoint's position in
  the object's keypoint list (what the OD API's keypoint tasks index with).
  """
  if offset < 0:
    raise ValueError(f"label map offset {offset} must be >= 0")
  if offset == 0:
    # Not refused: some users train without a background class. Said in the
    # file so a reader of the label map knows id 0 is a class.
    header = "# ids = class index (offset 0): id 0 is a class, not background.\n"
  else:
    header = (f"# ids = class index + {offset}; ids below {offset} are"
              " reserved (0 = background).\n")
  items = []
  for index, name in enumerate(class_names):
    if not name:
      raise ValueError(f"class {index} has an empty name")
    keypoints = "".join(
        f"  keypoints {{\n    id: {k}\n    label: {_quote(label)}\n  }}\n"
        for k, label in enumerate((keypoint_names or {}).get(name, ())))
    items.append(
        "item {\n"
        f"  id: {index + offset}\n"
        f"  name: {_quote(name)}\n"
        f"  display_name: {_quote(name)}\n"
        f"{keypoints}"
        "}\n")
  return header + "".join(items)


def to_csv(class_names: Sequence[str], offset: int = DEFAULT_OFFSET) -> str:
  """`id,name` rows (no header) as Model Garden's `_process_csv` reads them.

  Names are quoted by `csv` where needed (a comma in a name), which
  `csv.reader` reads back as one cell.
  """
  if offset < 0:
    raise ValueError(f"label map offset {offset} must be >= 0")
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  for index, name in enumerate(class_names):
    if not name:
      raise ValueError(f"class {index} has an empty name")
    if "\n" in name or "\r" in name:
      raise ValueError(f"class name {name!r} has a line break")
    writer.writerow([index + offset, name])
  return out.getvalue()


def to_labels_txt(class_names: Sequence[str]) -> str:
  for name in class_names:
    if "\n" in name or "\r" in name:
      raise ValueError(f"class name {name!r} has a line break")
  return "".join(f"{name}\n" for name in class_names)


def write(
    directory: str | os.PathLike,
    class_names: Sequence[str],
    offset: int = DEFAULT_OFFSET,
    keypoint_names: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, str, str]:
  """Writes `label_map.pbtxt`, `label_map.csv` and `labels.txt` into
  `directory`.

  Returns their paths. `directory` may be any path `tf.io.gfile` accepts
  (local or a bucket), as dataset folders are.
  """
  from etils import epath  # pylint: disable=g-import-not-at-top

  directory = epath.Path(directory)
  pbtxt = directory / LABEL_MAP_FILE
  labels = directory / LABELS_FILE
  label_csv = directory / LABEL_MAP_CSV_FILE
  pbtxt.write_text(to_pbtxt(class_names, offset, keypoint_names))
  label_csv.write_text(to_csv(class_names, offset))
  labels.write_text(to_labels_txt(class_names))
  return os.fspath(pbtxt), os.fspath(label_csv), os.fspath(labels)

