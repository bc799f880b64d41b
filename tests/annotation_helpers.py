"""Helpers of the annotation tests: read objects back, compare with inputs."""

from __future__ import annotations

import json
import pathlib

import numpy as np
from PIL import Image, ImageOps

import helpers

TOL = 1e-6


def display_size(path) -> tuple[int, int]:
  """(width, height) of an image as displayed (EXIF orientation applied)."""
  with Image.open(path) as img:
    return ImageOps.exif_transpose(img).size


def _list(value):
  return value.to_list() if hasattr(value, "to_list") else list(value)


# What an object's optional field reads as when the dataset does not store it
# (schema 2 stores it only when some object has a value: README "What is
# stored"); the same values the readers give for "not given".
_OBJECT_DEFAULTS = {"score": -1.0, "conf": -1.0, "area": -1.0, "id": b"",
                    "is_crowd": False}
PAD = (0.0, 0.0, 0, -1.0)  # A padding keypoint: not labelled, at (0, 0).


def objects(example, names=None) -> list[dict]:
  """The objects of a read-back example as plain dicts, in stored order.

  `box` is (xmin, ymin, xmax, ymax) like the inputs; `keypoints` is a list of
  (x, y, v, score), without the padding of schema 2's dense arrays. `text` is
  the class name: stored in schema 1, from `names` (the class names) in
  schema 2, which derives it from the label.
  """
  if "objects" not in example:  # A classification dataset.
    return []
  o = example["objects"]
  n = len(o["label"])
  kp = o.get("keypoints")
  if kp is not None:
    xs, ys, vs = (_list(kp[k]) for k in ("x", "y", "v"))
    scores = _list(kp["score"]) if "score" in kp else [
        [-1.0] * len(row) for row in xs]
  out = []
  for i in range(n):
    ymin, xmin, ymax, xmax = (float(v) for v in o["bbox"][i])
    label = int(o["label"][i])
    field = lambda key: o[key][i] if key in o else _OBJECT_DEFAULTS[key]  # noqa: E731
    if "text" in o:
      text = o["text"][i].decode()
    else:
      text = names[label] if names is not None and label >= 0 else None
    points = [] if kp is None else [
        (float(x), float(y), int(v), float(s))
        for x, y, v, s in zip(xs[i], ys[i], vs[i], scores[i])]
    got = {
        "box": (xmin, ymin, xmax, ymax),
        "label": label,
        "score": float(field("score")),
        "conf": float(field("conf")),
        "area": float(field("area")),
        "id": field("id").decode(),
        "is_crowd": bool(field("is_crowd")),
        "keypoints": unpad(points),
    }
    if text is not None:
      got["text"] = text
    out.append(got)
  return out


def unpad(points) -> list:
  """Keypoints without trailing not-labelled points at (0, 0).

  Schema 2 pads every object to the dataset's number of keypoints with such
  points; a given one reads the same, so both sides of a comparison drop them.
  """
  points = list(points)
  while points and (points[-1][0], points[-1][1], points[-1][2]) == (0, 0, 0) \
      and (len(points[-1]) < 4 or points[-1][3] == -1.0):
    points.pop()
  return points


def assert_object(got: dict, want: dict, where: str) -> None:
  """Every field of `want` equals `got`'s, numbers within `TOL`."""
  for key, value in want.items():
    if key == "text" and "text" not in got:
      continue  # Schema 2 derives it from the label, compared on its own.
    if key == "keypoints":
      value = unpad(value)
      assert len(got[key]) == len(value), (where, key, got[key], value)
      for g, w in zip(got[key], value):
        np.testing.assert_allclose(
            [g[0], g[1], g[3]], [w[0], w[1], w[3]], atol=TOL,
            err_msg=f"{where} keypoint")
        assert g[2] == w[2], (where, "keypoint v", g, w)
    elif isinstance(value, (tuple, list)):
      np.testing.assert_allclose(got[key], value, atol=TOL,
                                 err_msg=f"{where} {key}")
    elif isinstance(value, float):
      assert abs(got[key] - value) <= TOL, (where, key, got[key], value)
    else:
      assert got[key] == value, (where, key, got[key], value)


def class_names(builder) -> list[str]:
  """The dataset's class names (of `label` or `objects/label`)."""
  from image_folder_tfds import features  # pylint: disable=g-import-not-at-top
  return features.class_names(builder.info.features)


def problems(report: dict, kind: str | None = None) -> list[dict]:
  """The report's problems about files (`helpers.file_problems`)."""
  return [p for p in helpers.file_problems(report)
          if kind is None or p["kind"] == kind]


def find_problem(report: dict, *needles: str, kind: str | None = None) -> dict:
  """The one problem whose file, item and reason contain every needle."""
  found = [
      p for p in problems(report, kind)
      if all(n in f"{p['file']} {p['item']} {p['reason']}" for n in needles)
  ]
  assert len(found) == 1, (needles, kind, json.dumps(report["problems"],
                                                     indent=1))
  return found[0]


def write_json(path, value) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(value))
  return path


def load_all(data_dir) -> dict[str, dict]:
  """{file_name: example} of every split, read with `tfds.load`."""
  import tensorflow_datasets as tfds

  names = tfds.builder("my_images", data_dir=str(data_dir)).info.splits
  out = {}
  for split in names:
    ds = tfds.load("my_images", split=split, data_dir=str(data_dir),
                   shuffle_files=False)
    for ex in tfds.as_numpy(ds):
      ex["split"] = split
      out[ex["file_name"].decode()] = ex
  return out
