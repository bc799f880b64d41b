"""Helpers of the annotation tests: read objects back, compare with inputs."""

from __future__ import annotations

import json
import pathlib

import numpy as np
from PIL import Image, ImageOps

TOL = 1e-6


def display_size(path) -> tuple[int, int]:
  """(width, height) of an image as displayed (EXIF orientation applied)."""
  with Image.open(path) as img:
    return ImageOps.exif_transpose(img).size


def _list(value):
  return value.to_list() if hasattr(value, "to_list") else list(value)


def objects(example) -> list[dict]:
  """The objects of a read-back example as plain dicts, in stored order.

  `box` is (xmin, ymin, xmax, ymax) like the inputs; `keypoints` is a list of
  (x, y, v, score).
  """
  o = example["objects"]
  kp = o["keypoints"]
  xs, ys, vs, scores = (_list(kp[k]) for k in ("x", "y", "v", "score"))
  out = []
  for i in range(len(o["label"])):
    ymin, xmin, ymax, xmax = (float(v) for v in o["bbox"][i])
    out.append({
        "box": (xmin, ymin, xmax, ymax),
        "label": int(o["label"][i]),
        "text": o["text"][i].decode(),
        "score": float(o["score"][i]),
        "conf": float(o["conf"][i]),
        "area": float(o["area"][i]),
        "id": o["id"][i].decode(),
        "is_crowd": bool(o["is_crowd"][i]),
        "keypoints": [
            (float(x), float(y), int(v), float(s))
            for x, y, v, s in zip(xs[i], ys[i], vs[i], scores[i])
        ],
    })
  return out


def assert_object(got: dict, want: dict, where: str) -> None:
  """Every field of `want` equals `got`'s, numbers within `TOL`."""
  for key, value in want.items():
    if key == "keypoints":
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


def problems(report: dict, kind: str | None = None) -> list[dict]:
  return [p for p in report["problems"] if kind is None or p["kind"] == kind]


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
