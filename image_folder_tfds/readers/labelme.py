"""LabelMe: one `.json` per image, beside it, at any folder depth.

Each JSON file (LabelMe's `label_file.py`: `version`, `flags`, `shapes`,
`imagePath`, `imageData`, `imageHeight`, `imageWidth`) gives one example. Its
image is `imagePath` resolved from the JSON file's folder (backslashes read as
`/`, as LabelMe 6 does; then the name alone beside the JSON, as LabelMe 5
does); names leading outside the data folder are refused
(`annotated.resolve_image`). When no such file exists and `imageData` is
given, the embedded image is decoded and spilled to a temporary file
(`records.SpillFile`), and its example's key is `<json path>/<image name>`
(a path no real file can have). When both exist, the file is used and
`imageData` is not decoded.

Shapes (pixel coordinates):

* `rectangle`: two corners in any order, the box;
* `polygon` (and LabelMe 6's `oriented_rectangle`): the box is its extent,
  the polygon its instance mask (`masks.pack_polygons`);
* `circle`: center and a point on the circle, its box (clipped to the image
  with a "changed" report when it leaves it);
* `mask`: LabelMe 5's base64 PNG of the region between two corner pixels,
  an instance mask of the image's size;
* `point`: a keypoint of the object with the same `group_id`, named by its
  label. Each class's keypoint names are in the order first seen in the
  dataset (files in sorted path order), so an object's keypoints are a
  prefix of its class's list, missing ones not labelled (v=0).
* `line`, `linestrip`, `ellipse`, `points` and any other type: reported,
  not stored.

Shapes with the same label and `group_id` in one file are one object
(LabelMe's instance convention, as its `labelme2coco.py`): its box is their
extent, its mask their union. The image's `flags` that are true become
image-level labels (`labels_text`). Everything else (`version`, the flags,
each shape's `flags`, `description`, `group_id` and unknown keys, unknown
top-level keys) is kept in `extra` as JSON.

Splits: the top-level folder when it is a split name (`train/`, `val/`,
`test/`, ...), else the stable hash of the image path. An image file that no
JSON file names is left out, with a warning: LabelMe writes a JSON file only
for images that were annotated.
"""

from __future__ import annotations

import array
import base64
import binascii
import dataclasses
import io
import itertools
import json
import math
import os
import pickle

import ijson
import numpy as np

from image_folder_tfds import masks
from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "labelme"
_TOP_KEYS = {"version", "flags", "shapes", "imagePath", "imageData",
             "imageHeight", "imageWidth"}
_SHAPE_KEYS = {"label", "points", "group_id", "shape_type", "flags",
               "description", "mask"}
_REGIONS = {"polygon", "oriented_rectangle", "rectangle", "circle", "mask"}
_UNSUPPORTED = {"line": "a line", "linestrip": "a line strip",
                "ellipse": "an ellipse", "points": "a set of prompt points"}
# How many entries `claim` looks at, at most, before it gives up: class
# folders without any JSON file are listed in full only this far.
_CLAIM_ENTRIES = 200_000
_CLAIM_JSON_FILES = 5  # JSON files that are not LabelMe's before giving up.
_CHUNK = 1 << 16
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"GIF8", ".gif"),
          (b"BM", ".bmp"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


def is_labelme_file(path: str) -> bool:
  """The JSON object in `path` has LabelMe's `shapes` and `imagePath` keys.

  Reads the top-level keys only (ijson's basic parser, depth counted), and
  stops as soon as both are seen.
  """
  seen = set()
  depth = 0
  try:
    with open(path, "rb") as f:
      for event, value in ijson.basic_parse(f, use_float=True):
        if event in ("start_map", "start_array"):
          if depth == 0 and event != "start_map":
            return False
          depth += 1
          if depth > common.MAX_JSON_DEPTH:
            return False
        elif event in ("end_map", "end_array"):
          depth -= 1
        elif event == "map_key" and depth == 1:
          seen.add(value)
          if {"shapes", "imagePath"} <= seen:
            return True
  except (ijson.JSONError, OSError, UnicodeDecodeError):
    return False
  return False


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: a `.json` file (at any depth) whose top-level keys include
  LabelMe's `shapes` and `imagePath`. Folders are looked at top first, at
  most `_CLAIM_ENTRIES` entries, and up to `_CLAIM_JSON_FILES` JSON files
  that are not LabelMe's."""
  if options.annotations:
    return None
  found: list[str] = []
  others = 0
  looked = 0
  queue = [root]
  real_root = os.path.realpath(root)
  while queue and looked < _CLAIM_ENTRIES:
    folder = queue.pop(0)
    try:
      entries = common.names(folder)  # Sorted, and kept for other readers.
    except OSError:
      continue
    dirs = set(common.subfolders(folder))
    looked += len(entries)
    for name in entries:
      if name in dirs:
        path = os.path.join(folder, name)
        # A linked folder is followed only inside the data folder.
        try:
          if not os.path.islink(path) or os.path.commonpath(
              [os.path.realpath(path), real_root]) == real_root:
            queue.append(path)
        except (OSError, ValueError):
          pass
        continue
      if name[-5:].lower() != ".json" or common.is_hidden(name):
        continue
      if folder == root and name in common.KNOWN_METADATA_FILES:
        continue
      path = os.path.join(folder, name)
      if is_labelme_file(path):
        found.append(os.path.relpath(path, root))
        if len(found) == 3:
          return common.Claim(NAME, common.CERTAIN, tuple(found))
      else:
        others += 1
        if others >= _CLAIM_JSON_FILES and not found:
          return None
  return common.Claim(NAME, common.CERTAIN, tuple(found)) if found else None


# --- Reading ------------------------------------------------------------------


@dataclasses.dataclass
class _Instance:
  """One object being formed from the shapes of one label and group."""

  label: str
  group: int | None
  first: int  # Index of its first shape.
  box: list[float]  # xmin, ymin, xmax, ymax
  # ("polygon", flat) | ("rectangle", box) | ("circle", cx, cy, r) |
  # ("mask", x0, y0, array)
  regions: list[tuple] = dataclasses.field(default_factory=list)
  shapes: list[int] = dataclasses.field(default_factory=list)
  keypoints: dict[str, tuple[float, float, int]] = dataclasses.field(
      default_factory=dict)


class _ShapeError(ValueError):
  """A shape that is not stored; the message says why."""


@dataclasses.dataclass
class _Scan:
  """What one read keeps across files."""

  root: str
  options: common.ReadOptions
  files: set[str]  # Every file found, relative, posix separators.
  problems: list[records.Problem]
  # Image -> the JSON file whose example it is.
  taken: dict[str, str] = dataclasses.field(default_factory=dict)
  # Images beside a JSON file of their name that was rejected (reported
  # there, not again as images without a JSON file).
  accounted: set[str] = dataclasses.field(default_factory=set)
  keypoint_names: dict[str, list[str]] = dataclasses.field(
      default_factory=dict)
  store: masks.LazyStore = dataclasses.field(default_factory=masks.LazyStore)
  embedded: records.SpillFile | None = None
  with_mask: int = 0  # Objects with a mask, and
  without_mask: int = 0  # without, when some have one.


def _split_folders(rels: list[str]) -> bool:
  return any(splits_lib.canonical_split(r.split("/", 1)[0])
             for r in rels if "/" in r)


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  problems: list[records.Problem] = []
  rels = common.walk_files(root, root, problems, None)
  if os.sep != "/":
    rels = [r.replace(os.sep, "/") for r in rels]
  json_rels = [r for r in rels if r.lower().endswith(".json")
               and r not in common.KNOWN_METADATA_FILES]
  scan = _Scan(root=root, options=options, files=set(rels), problems=problems)
  by_folders = _split_folders(json_rels)
  classes = annotated.classes_for(root, options)
  # Drafts (labels as names, `_read_file`) kept pickled in a temporary file
  # until the class names are known; then each is made a record once.
  drafts = records.SpillFile("my_images_labelme_drafts_")
  offsets = array.array("q")
  outside = 0
  for rel in json_rels:
    top = rel.split("/", 1)[0] if "/" in rel else ""
    folder_split = splits_lib.canonical_split(top) if by_folders else None
    if by_folders and folder_split is None:
      outside += 1
    draft = _read_file(scan, rel, folder_split)
    if draft is not None:
      for name in draft[6]:
        classes.observe(None, name)
      for obj in draft[9]:
        classes.observe(None, obj[1])
      offsets.append(drafts.add(pickle.dumps(
          draft, protocol=pickle.HIGHEST_PROTOCOL)))
  drafts.finish()
  if outside:
    problems.append(records.Problem(
        file=root, kind="warning", counts_as_input=False,
        reason=f"{outside} LabelMe file(s) are outside the split folders"
        " (train/, val/, test/): their images get hash splits"))
  if scan.with_mask and scan.without_mask:
    problems.append(records.Problem(
        file=root, kind="warning", counts_as_input=False,
        reason=f"{scan.without_mask} of {scan.with_mask + scan.without_mask}"
        " objects have no mask (rectangles, circles): their masks are stored"
        " empty (all 0)"))
  _report_unused_images(scan, rels, by_folders)
  classes.finish()
  scan.store.finish()
  if scan.embedded is not None:
    scan.embedded.finish()
  recs = records.PackedRecords()
  resolve = _Resolver(classes)
  for offset in offsets:
    recs.append(_record(scan, pickle.loads(drafts.get(offset)), resolve))
  recs.extend(())
  keypoint_names = {c: names for c, names in sorted(
      scan.keypoint_names.items()) if c in classes.names}
  return common.ScanResult(
      layout="labelme: a .json file beside each image",
      class_names=list(classes.names), records=recs, problems=problems,
      keypoint_names=keypoint_names)


def _report_unused_images(scan: _Scan, rels: list[str], by_folders: bool
                          ) -> None:
  """A warning for each image no JSON file names (not annotated)."""
  for rel in rels:
    if (rel in scan.taken or rel in scan.accounted
        or not common.is_image_name(rel)):
      continue
    top = rel.split("/", 1)[0] if "/" in rel else ""
    split = (splits_lib.canonical_split(top) if by_folders else None) or ""
    scan.problems.append(records.Problem(
        file=os.path.join(scan.root, rel), split=split, kind="warning",
        counts_as_input=False,
        reason="no LabelMe JSON file names this image (not annotated): left"
        " out"))


def _read_file(scan: _Scan, rel: str, folder_split: str | None
               ) -> tuple | None:
  """The draft of one JSON file's record, or None (reported): labels are
  names (the classes are known once every file is read), objects are tuples
  (box, label, id, keypoints, segmentation offset); `_record` makes it a
  record."""
  path = os.path.join(scan.root, rel)
  split = folder_split or ""
  try:
    data = json.loads(_read_bytes(path))
  except (ValueError, RecursionError) as e:
    scan.accounted.update(_stem_images(scan, rel))
    scan.problems.append(annotated.input_problem(
        path, f"not a valid JSON file: {e}", split=split))
    return None
  if not isinstance(data, dict) or "shapes" not in data:
    scan.accounted.update(_stem_images(scan, rel))
    what = ("has no `shapes` key" if isinstance(data, dict)
            else f"holds a JSON {type(data).__name__}, not an object")
    scan.problems.append(annotated.input_problem(
        path, f"not a LabelMe file: {what}", split=split))
    return None
  try:
    image_rel, data_range, embedded = _image(scan, rel, data)
  except annotated.PathError as e:
    scan.accounted.update(_stem_images(scan, rel))
    scan.problems.append(annotated.input_problem(path, str(e), split=split))
    return None
  split = annotated.assign_split(folder_split, image_rel, scan.options)
  known = scan.taken.get(image_rel)
  if known is not None:
    scan.problems.append(annotated.input_problem(
        path, f"its image {image_rel} is already the image of {known}: not"
        " used twice", split=split))
    return None
  scan.taken[image_rel] = rel
  size = annotated.declared_size(
      data.get("imageWidth"), data.get("imageHeight"), path, image_rel, split,
      scan.problems)
  objects, extra = _objects(scan, data, path, image_rel, split, size)
  labels = _flags(data.get("flags"), path, image_rel, split, scan.problems)
  for key, value in data.items():
    if key not in _TOP_KEYS or key in ("version", "flags"):
      if value not in (None, {}, ""):
        extra[key] = value
  return (image_rel, embedded, split, path, rel, size, labels, data_range,
          json.dumps(extra, sort_keys=True, ensure_ascii=False)
          if extra else "", objects)


class _Resolver:
  """Each label name checked against the classes once: (index, name), or
  the `FieldError` to report (a labels file that lacks the name)."""

  def __init__(self, classes: annotated.Classes):
    self._classes = classes
    self._known: dict[tuple[str, str],
                      tuple[int, str] | annotated.FieldError] = {}

  def __call__(self, name: str, field: str):
    found = self._known.get((name, field))
    if found is None:
      try:
        found = self._classes.resolve(None, name, field)
      except annotated.FieldError as e:
        found = e
      self._known[name, field] = found
    if isinstance(found, annotated.FieldError):
      raise found
    return found


def _record(scan: _Scan, draft: tuple, resolve: _Resolver
            ) -> records.ImageRecord:
  """The record of a draft (`_read_file`), its labels checked against the
  classes as `annotated.resolve_labels` does."""
  (image_rel, embedded, split, source, rel, size, label_names, data_range,
   extra, drafted) = draft
  labels, labels_text = [], []
  for name in label_names:
    try:
      index, name = resolve(name, "image label")
    except annotated.FieldError as e:
      scan.problems.append(annotated.annotation_problem(
          source, f"{e}: label not written", split=split,
          item=f"{image_rel}: labels"))
      continue
    labels.append(index)
    labels_text.append(name)
  objects = []
  for box, name, oid, keypoints, segmentation in drafted:
    try:
      index, name = resolve(name, "object label")
    except annotated.FieldError as e:
      scan.problems.append(annotated.annotation_problem(
          source, f"{e}: object not written", split=split,
          item=f"{image_rel}: object {oid}"))
      continue
    objects.append(records.ObjectRecord(
        box=box, label=index, text=name, id=oid, segmentation=segmentation,
        keypoints=tuple(records.Keypoint(x=x, y=y, v=v)
                        for x, y, v in keypoints)))
  return records.ImageRecord(
      key=image_rel, file_name=image_rel, split=split, source=source, id=rel,
      path=scan.embedded.path if embedded else os.path.join(scan.root,
                                                            image_rel),
      objects=tuple(objects), coords="pixel", size=size,
      labels=tuple(labels), labels_text=tuple(labels_text),
      data_range=data_range, extra=extra,
      segmentation_file=scan.store.path if any(
          o.segmentation >= 0 for o in objects) else "")


def _read_bytes(path: str) -> bytes:
  """The whole file: one `read` for most LabelMe files (no `open` object)."""
  fd = os.open(path, os.O_RDONLY)
  try:
    chunks = [os.read(fd, _CHUNK)]
    while len(chunks[-1]) == _CHUNK or (len(chunks) > 1 and chunks[-1]):
      chunks.append(os.read(fd, _CHUNK << 4))
  finally:
    os.close(fd)
  return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _stem_images(scan: _Scan, rel: str) -> list[str]:
  """The images beside the JSON file `rel` with its name (`a.json`: `a.jpg`)."""
  stem = rel[:-len(".json")]
  return [stem + ext for ext in (".jpg", ".jpeg", ".png", ".JPG", ".JPEG",
                                 ".PNG", ".bmp", ".gif", ".tif", ".tiff",
                                 ".webp") if stem + ext in scan.files]


def _image(scan: _Scan, rel: str, data: dict):
  """(key, data_range, embedded) of the image of the file `rel`: the path
  relative to the root, or the key of an image in `scan.embedded`.

  Raises `annotated.PathError` when there is neither a file nor `imageData`.
  """
  folder = rel.rpartition("/")[0]
  name = data.get("imagePath")
  refused = None
  escapes = False
  if name is not None:
    if not isinstance(name, str) or not name.strip():
      refused = f"imagePath must be a non-empty string, got {name!r}"
    else:
      name = name.replace("\\", "/")
      candidates = [name]
      base = name.rsplit("/", 1)[-1]
      if base != name:
        candidates.append(base)
      for candidate in candidates:
        joined = os.path.normpath(os.path.join(folder, candidate)).replace(
            os.sep, "/")
        if joined in scan.files:  # Found by the walk: inside, a file.
          return joined, None, False
      try:
        _, image_rel = annotated.resolve_image(
            name, [os.path.join(scan.root, folder)], scan.root)
        return image_rel, None, False
      except annotated.PathError as e:
        refused = str(e)
      # Refused, not merely absent: said when imageData stands in.
      target = os.path.normpath(os.path.join(scan.root, folder, name))
      escapes = not (target.startswith(scan.root + os.sep)
                     and not os.path.lexists(target))
  blob = data.get("imageData")
  if blob is None or blob == "":
    if name is None:
      raise annotated.PathError("no imagePath and no imageData")
    raise annotated.PathError(f"{refused}, and no imageData")
  if not isinstance(blob, str):
    raise annotated.PathError(
        f"imageData must be a base64 string, got {type(blob).__name__}")
  try:
    image = base64.b64decode(blob, validate=True)
  except (binascii.Error, ValueError) as e:
    raise annotated.PathError(f"imageData is not valid base64: {e}") from None
  if not image:
    raise annotated.PathError("imageData is empty")
  if escapes:
    scan.problems.append(records.Problem(
        file=os.path.join(scan.root, rel), kind="warning",
        counts_as_input=False,
        reason=f"imagePath: {refused}; the embedded imageData is used"))
  if scan.embedded is None:
    scan.embedded = records.SpillFile("my_images_labelme_images_")
  offset = scan.embedded.add(image)
  if isinstance(name, str) and name.strip():
    image_name = name.replace("\\", "/").rsplit("/", 1)[-1]
  else:
    ext = next((e for m, e in _MAGIC if image.startswith(m)),
               ".webp" if image[8:12] == b"WEBP" else ".img")
    image_name = rel.rpartition("/")[2][:-len(".json")] + ext
  return f"{rel}/{image_name}", (offset + 4, len(image)), True


def _flags(flags, path, image_rel, split, problems) -> tuple[str, ...]:
  """The names of the image's flags that are true."""
  if flags is None:
    return ()
  if not isinstance(flags, dict):
    problems.append(annotated.annotation_problem(
        path, f"flags must be an object, got {flags!r}: not read",
        split=split, item=f"{image_rel}: flags"))
    return ()
  out = []
  for name, value in flags.items():
    if not isinstance(value, bool):
      problems.append(annotated.annotation_problem(
          path, f"flag {name!r} is {value!r}, not true or false: not a label",
          split=split, item=f"{image_rel}: flags"))
    elif value and name.strip():
      out.append(name)
  return tuple(out)


def _points(raw) -> list[tuple[float, float]]:
  """A shape's points as (x, y) floats; raises `_ShapeError` naming the
  first bad one."""
  if not isinstance(raw, list):
    raise _ShapeError(f"points must be a list of [x, y], got {raw!r}")
  try:  # The common case, checked at once; the slow path says what is bad.
    pts = [(x + 0.0, y + 0.0) for x, y in raw]
    if (math.isfinite(sum(map(sum, pts)))
        and bool not in set(map(type, itertools.chain.from_iterable(raw)))):
      return pts
  except (TypeError, ValueError):
    pass
  return [_point(p, f"points[{j}]") for j, p in enumerate(raw)]


def _point(value, field) -> tuple[float, float]:
  if (not isinstance(value, list) or len(value) != 2):
    raise _ShapeError(f"{field} must be two numbers [x, y], got {value!r}")
  try:
    return (annotated.number(value[0], f"{field} x"),
            annotated.number(value[1], f"{field} y"))
  except annotated.FieldError as e:
    raise _ShapeError(str(e)) from None


def _objects(scan: _Scan, data: dict, path: str, image_rel: str, split: str,
             size: tuple[int, int] | None):
  """(objects, extra) of one file's shapes; every shape not stored is
  reported with its index."""
  shapes = data["shapes"]
  extra: dict = {}
  if not isinstance(shapes, list):
    scan.problems.append(annotated.annotation_problem(
        path, f"shapes must be a list, got {type(shapes).__name__}: no shape"
        " read", split=split, item=f"{image_rel}: shapes"))
    return [], extra

  def report(i, reason, kind="rejected"):
    scan.problems.append(annotated.annotation_problem(
        path, reason, split=split, item=f"{image_rel}: shapes[{i}]",
        kind=kind))

  instances: dict[object, _Instance] = {}  # (label, group) or index.
  points: list[tuple[int, str, int | None, tuple[float, float]]] = []
  shape_extra: dict[str, dict] = {}
  for i, shape in enumerate(shapes):
    try:
      if not isinstance(shape, dict):
        raise _ShapeError(f"a shape must be an object, got {shape!r}")
      kind = shape.get("shape_type") or "polygon"  # LabelMe's default.
      if not isinstance(kind, str):
        raise _ShapeError(f"shape_type must be a string, got {kind!r}")
      label = shape.get("label")
      if not isinstance(label, str) or not label.strip():
        raise _ShapeError(f"label must be a non-empty string, got {label!r}")
      group = shape.get("group_id")
      if group is not None and (isinstance(group, bool)
                                or not isinstance(group, int)):
        raise _ShapeError(f"group_id must be an integer or null, got {group!r}")
      pts = _points(shape.get("points"))
      if kind == "point":
        if len(pts) != 1:
          raise _ShapeError(f"a point has 1 point, this one {len(pts)}")
        points.append((i, label, group, pts[0]))
      elif kind in _REGIONS:
        region, box = _region(kind, pts, shape, size, i, report)
        key = (label, group) if group is not None else i
        inst = instances.get(key)
        if inst is None:
          inst = instances[key] = _Instance(label, group, i, list(box))
        else:
          inst.box = [min(inst.box[0], box[0]), min(inst.box[1], box[1]),
                      max(inst.box[2], box[2]), max(inst.box[3], box[3])]
        inst.regions.append(region)
        inst.shapes.append(i)
      else:
        what = _UNSUPPORTED.get(kind, f"of the unknown type {kind!r}")
        raise _ShapeError(
            f"shape_type {kind!r}: {what}, which this dataset cannot store"
            " (rectangle, polygon, circle, mask and point are read): shape"
            " not written")
    except _ShapeError as e:
      reason = str(e)
      report(i, reason if "not written" in reason
             else f"{reason}: shape not written")
      continue
    if (group is not None or shape.get("flags") or shape.get("description")
        or not shape.keys() <= _SHAPE_KEYS):
      kept = {k: v for k, v in shape.items()
              if k not in ("label", "points", "shape_type", "mask")
              and v not in (None, {}, "")}
      if kept:
        shape_extra[str(i)] = kept
  if shape_extra:
    extra["shapes"] = shape_extra
  by_group: dict[int, list[_Instance]] = {}
  for inst in instances.values():
    if inst.group is not None:
      by_group.setdefault(inst.group, []).append(inst)
  for i, name, group, (x, y) in points:
    if group is None:
      report(i, f"point {name!r} has no group_id, so no object it belongs to:"
             " not written")
      continue
    owners = by_group.get(group, [])
    if len(owners) != 1:
      what = ("no rectangle, polygon, circle or mask has it" if not owners
              else "several objects have it ("
              + ", ".join(sorted(o.label for o in owners)) + ")")
      report(i, f"point {name!r} has group_id {group}, and {what}: not"
             " written")
      continue
    inst = owners[0]
    if name in inst.keypoints:
      report(i, f"point {name!r} is given twice for the object of group_id"
             f" {group}: the second is not written")
      continue
    inst.keypoints[name] = (x, y, 2)
  objects = []
  for inst in instances.values():
    segmentation = -1
    try:
      blob = _segmentation(inst, size)
    except masks.MaskError as e:
      report(inst.first, f"{e}: object not written")
      continue
    if blob is not None:
      segmentation = scan.store.add(blob)
      scan.with_mask += 1
    else:
      scan.without_mask += 1
    keypoints = ()
    if inst.keypoints:
      names = scan.keypoint_names.setdefault(inst.label, [])
      names.extend(n for n in inst.keypoints if n not in names)
      missing = (0.0, 0.0, 0)  # Not labelled.
      keypoints = tuple(inst.keypoints.get(n, missing) for n in names)
    objects.append((tuple(inst.box), inst.label, str(inst.first), keypoints,
                    segmentation))
    if len(inst.shapes) > 1:
      extra.setdefault("objects", {})[str(inst.first)] = {
          "shapes": inst.shapes}
  return objects, extra


def _region(kind, pts, shape, size, i, report):
  """(region, box) of one shape of an object."""
  if kind in ("polygon", "oriented_rectangle"):
    if kind == "oriented_rectangle" and len(pts) != 4:
      raise _ShapeError(
          f"an oriented rectangle has 4 points, this one {len(pts)}")
    flat = [v for p in pts for v in p]
    try:
      masks.check_polygons([flat], "points")
    except masks.MaskError as e:
      raise _ShapeError(str(e)) from None
    xs, ys = flat[0::2], flat[1::2]
    return ("polygon", flat), (min(xs), min(ys), max(xs), max(ys))
  if len(pts) != 2:
    what = {"rectangle": "two corners", "circle": "a center and a point on"
            " the circle", "mask": "two corners"}[kind]
    raise _ShapeError(f"a {kind} has {what}, this one {len(pts)} point(s)")
  (x0, y0), (x1, y1) = pts
  if kind == "rectangle":
    box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    return ("rectangle", box), box
  if kind == "circle":
    r = math.hypot(x1 - x0, y1 - y0)
    if r == 0:
      raise _ShapeError("the circle's radius is 0")
    box = (x0 - r, y0 - r, x0 + r, y0 + r)
    if size is not None:
      w, h = size
      clipped = (max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(w)),
                 min(box[3], float(h)))
      if clipped != box:
        if clipped[0] >= clipped[2] or clipped[1] >= clipped[3]:
          raise _ShapeError(f"the circle's box {list(box)} is outside the"
                            f" {w}x{h} image")
        report(i, f"the circle's box {[round(v, 3) for v in box]} leaves the"
               f" {w}x{h} image: clipped to it", kind="changed")
        box = clipped
    return ("circle", x0, y0, r), box
  # mask: the PNG's pixels from the corner (x0, y0), as LabelMe draws them.
  arr = _mask_array(shape.get("mask"))
  left, top = int(min(x0, x1)), int(min(y0, y1))
  right, bottom = int(max(x0, x1)), int(max(y0, y1))
  h, w = arr.shape
  if (h, w) not in ((bottom - top + 1, right - left + 1),
                    (bottom - top, right - left)):
    raise _ShapeError(
        f"the mask is {w}x{h} pixels, but its corners {[left, top]},"
        f" {[right, bottom]} span {right - left + 1}x{bottom - top + 1}")
  if size is None:
    raise _ShapeError("a mask needs imageWidth and imageHeight to be placed")
  if left < 0 or top < 0 or left + w > size[0] or top + h > size[1]:
    raise _ShapeError(
        f"the mask ({w}x{h} at {[left, top]}) leaves the {size[0]}x{size[1]}"
        " image")
  if not arr.any():
    raise _ShapeError("the mask is empty (no pixel set)")
  return ("mask", left, top, arr), (float(left), float(top), float(left + w),
                                    float(top + h))


def _mask_array(value) -> np.ndarray:
  """LabelMe's `mask`: a base64 PNG, as a boolean array."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if not isinstance(value, str) or not value:
    raise _ShapeError(f"a mask shape needs a base64 PNG `mask`, got {value!r}")
  try:
    with Image.open(io.BytesIO(base64.b64decode(value, validate=True))) as img:
      arr = np.asarray(img)
  except (binascii.Error, ValueError, OSError) as e:
    raise _ShapeError(f"mask is not a base64 image: {e}") from None
  if arr.ndim == 3:
    arr = arr[..., 0]
  if arr.ndim != 2:
    raise _ShapeError(f"mask has shape {arr.shape}, not one channel")
  return arr != 0


def _circle_polygon(cx, cy, r) -> list[float]:
  """The circle as a polygon, as LabelMe's `labelme2coco.py` makes it."""
  n = max(int(math.pi / math.acos(1 - 1 / r)) if r > 1 else 12, 12)
  t = 2 * math.pi * np.arange(n) / n
  return np.column_stack((cx + r * np.sin(t), cy + r * np.cos(t))).ravel(
  ).tolist()


def _segmentation(inst: _Instance, size) -> bytes | None:
  """The instance mask blob of an object, None when it has no region with
  a mask (only rectangles and circles)."""
  if len(inst.regions) == 1:  # The common case.
    region = inst.regions[0]
    if region[0] == "polygon":
      return masks.pack_polygons([region[1]])
    if region[0] != "mask":
      return None
  kinds = {r[0] for r in inst.regions}
  if not kinds & {"polygon", "mask"}:
    return None
  parts = []
  for region in inst.regions:
    if region[0] == "polygon":
      parts.append(region[1])
    elif region[0] == "rectangle":
      x0, y0, x1, y1 = region[1]
      parts.append([x0, y0, x1, y0, x1, y1, x0, y1])
    elif region[0] == "circle":
      parts.append(_circle_polygon(*region[1:]))
  if "mask" not in kinds:
    return masks.pack_polygons(parts)
  w, h = size
  full = np.zeros((h, w), np.uint8)
  if parts:
    full |= masks.decode(masks.pack_polygons(parts), h, w)
  for region in inst.regions:
    if region[0] == "mask":
      _, left, top, arr = region
      full[top:top + arr.shape[0], left:left + arr.shape[1]] |= arr
  flat = full.ravel(order="F")
  changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
  counts = np.diff(np.concatenate(([0], changes, [flat.size])))
  if flat[0]:
    counts = np.concatenate(([0], counts))
  return masks.pack_rle_counts(h, w, counts)
