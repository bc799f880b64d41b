"""Seed 001's annotation schema: a JSON list of per-image dicts, or JSON Lines.

Each dict is one image (every field optional except `filename`):

    {"filename": "img/1.jpg", "id": "0", "width": 640, "height": 480,
     "class": {"label": 1, "text": "Indigo Bunting", "conf": 0.9},
     "object": {"count": 1, "area": [.49], "id": ["1"],
                "bbox": {"xmin": [.1], "xmax": [.8], "ymin": [.2], "ymax": [.9],
                         "label": [1], "text": ["Indigo Bunting"],
                         "score": [.8], "conf": [.9]},
                "parts": {"x": [.2, .5], "y": [.3, .6], "v": [2, 1],
                          "score": [1., 1.]}},
     "extra": {...}}

Coordinates and areas are normalized, origin top left. `parts` holds the
keypoints of all objects one after the other: with n objects and k entries,
each object has k / n keypoints. A JSON list is parsed with `ijson`, one
image at a time; JSON Lines is read line by line: neither holds the file's
text in memory.
"""

from __future__ import annotations

import json
import os

import ijson

from image_folder_tfds import records
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import coco
from image_folder_tfds.readers import common
from image_folder_tfds.readers import hf_metadata

NAME = "seed001"
EXTENSIONS = (".json", ".jsonl", ".ndjson")
_TOP_FIELDS = {"filename", "id", "class", "object", "extra", "width", "height",
               # Taken from the image itself, so accepted and not needed.
               "format", "colorspace", "channels"}
_CLASS_FIELDS = {"label", "text", "conf"}
_OBJECT_FIELDS = {"count", "area", "id", "bbox", "parts"}
_BBOX_FIELDS = {"xmin", "xmax", "ymin", "ymax", "label", "text", "score", "conf"}
_PARTS_FIELDS = {"x", "y", "v", "score"}
_COORDS = ("xmin", "ymin", "xmax", "ymax")


def find_files(root: str, options: common.ReadOptions) -> list[str]:
  """`options.annotations`, else the JSON/JSON Lines files at the top of
  `root` or in `root/annotations/`."""
  if options.annotations:
    return [annotated.annotation_path(root, options.annotations)]
  out = []
  for folder in (root, os.path.join(root, "annotations")):
    if not os.path.isdir(folder):
      continue
    for name in common.names(folder):
      path = os.path.join(folder, name)
      if (common.is_hidden(name) or name in common.KNOWN_METADATA_FILES
          or not name.lower().endswith(EXTENSIONS) or not os.path.isfile(path)
          or coco.is_coco_file(name)):
        continue
      out.append(path)
  return out


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: a JSON list or JSON Lines file whose first entry is an object
  with a `filename` (a COCO file, or a stray JSON file, is not).

  Another JSON file given as the `annotations` option is claimed as likely,
  so that, unless another reader knows its content (a Label Studio export),
  the error names the fields it lacks.
  """
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    lower = path.lower()
    if (coco.is_coco_file(path) or lower.endswith(".coco.json")
        or not lower.endswith(EXTENSIONS)):
      return None
    if lower.endswith(".json") and common.first_key(path) in coco.TOP_LEVEL_KEYS:
      return None
    if os.path.basename(path) in hf_metadata.FILENAMES and not looks_like(path):
      return None  # Hugging Face's metadata.jsonl (`file_name`, not `filename`).
    certainty = common.CERTAIN if looks_like(path) else common.LIKELY
    return common.Claim(NAME, certainty, (path,))
  files = [p for p in find_files(root, options)
           if common.first_key(p) not in coco.TOP_LEVEL_KEYS and looks_like(p)]
  return common.Claim(NAME, common.CERTAIN, tuple(files)) if files else None


def looks_like(path: str) -> bool:
  """Whether the first entry of `path` is an object with a `filename`: how a
  stray JSON file next to class folders is told from seed-001 annotations."""
  try:
    for _, entry in iter_entries(path, "", []):
      return isinstance(entry, dict) and "filename" in entry
  except (records.InputError, UnicodeDecodeError):  # An unreadable file
    # (OSError) is not taken for a stray one: `scan` reports it.
    return False
  return False


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  files = find_files(root, options)
  if not files:
    raise records.InputError(
        f"{root}: no seed-001 annotation file (*.json, *.jsonl) found")
  classes = annotated.classes_for(root, options)
  problems: list[records.Problem] = []
  drafts: list[records.ImageRecord] = []
  for path in files:
    file_split = annotated.split_of_file(path)
    unknown: set[str] = set()
    for where, entry in iter_entries(path, file_split or "", problems):
      rec = _record(entry, path, where, file_split, root, options, unknown,
                    problems)
      if rec is not None:
        annotated.observe_labels(classes, rec)
        drafts.append(rec)
    if unknown:
      problems.append(records.Problem(
          file=path, kind="warning", counts_as_input=False,
          reason="fields that are not in seed 001's schema are not stored: "
          + ", ".join(sorted(unknown))))
  classes.finish()
  recs = annotated.resolve_labels(drafts, classes, problems)
  names = ", ".join(os.path.relpath(f, root) for f in files)
  return common.ScanResult(
      layout=f"seed001: {names}", class_names=classes.names, records=recs,
      problems=problems)


def iter_entries(path: str, split: str, problems: list[records.Problem]):
  """(where, entry) for each image entry of `path`, streamed.

  A JSON Lines line that is not valid JSON is reported and skipped; a JSON
  list that is not valid JSON stops the build (where the list ends is lost).
  """
  # ijson reads strict JSON only, but Python's `json.dump` writes NaN and
  # Infinity by default: such a list is read again with the `json` module
  # (one copy of the file in memory, for those files only), so that a NaN
  # rejects its own object, as in JSON Lines, not the whole file.
  with open(path, "rb") as f:
    head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
  if head.startswith(b"["):
    common.check_json_depth(path)  # Before ijson.items: see there.
    with open(path, "rb") as f:
      count = 0  # Entries read so far.
      try:
        for entry in ijson.items(f, "item", use_float=True):
          yield f"entry {count}", entry
          count += 1
      except ijson.JSONError as e:
        entries = _load_with_python_json(path, f"after {count} entries: {e}")
        for index in range(count, len(entries)):
          yield f"entry {index}", entries[index]
    return
  if head and not head.startswith(b"{"):
    raise records.InputError(
        f"{path}: expected a JSON list of per-image objects, or JSON Lines"
        " (one object per line)")
  # Bytes, decoded line by line: one line that is not UTF-8 is reported, not
  # a UnicodeDecodeError that ends the build (or hides the file from
  # layout detection).
  with open(path, "rb") as f:
    for number, raw in enumerate(f, start=1):
      try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
      except UnicodeDecodeError as e:
        problems.append(annotated.input_problem(
            path, f"not UTF-8 text: {e}", split=split, item=f"line {number}"))
        continue
      if not line.strip():
        continue
      try:
        entry = json.loads(line)
      except RecursionError:
        problems.append(annotated.input_problem(
            path, "JSON nested too deeply to read", split=split,
            item=f"line {number}"))
        continue
      except ValueError as e:
        problems.append(annotated.input_problem(
            path, f"not valid JSON: {e}", split=split, item=f"line {number}"))
        continue
      yield f"line {number}", entry


def _load_with_python_json(path: str, strict_error: str) -> list:
  try:
    with open(path, encoding="utf-8-sig") as f:
      entries = json.load(f)
  except (ValueError, RecursionError):
    raise records.InputError(
        f"{path}: not valid JSON ({strict_error})") from None
  if not isinstance(entries, list):
    raise records.InputError(f"{path}: expected a JSON list of per-image objects")
  return entries


def _record(entry, path, where, file_split, root, options, unknown, problems):
  """A draft record of one entry, or None (reported) when it is refused."""
  split = file_split or ""
  try:
    entry = annotated.mapping(entry, "the entry")
    unknown.update(k for k in entry if k not in _TOP_FIELDS)
    if "filename" not in entry:
      raise annotated.FieldError("no `filename`: the image cannot be found")
    abs_path, rel = annotated.resolve_image(
        entry["filename"], [os.path.dirname(path), root], root)
    split = annotated.assign_split(file_split, rel, options)
    image_id = (annotated.identifier(entry["id"], "id") if "id" in entry
                else rel)
    size = annotated.declared_size(entry.get("width"), entry.get("height"),
                                   path, where, split, problems)
    extra = _extra_text(entry.get("extra"))
    objects = _objects(entry.get("object"), path, where, rel, split, unknown,
                       problems)
  except (annotated.FieldError, annotated.PathError) as e:
    problems.append(annotated.input_problem(path, str(e), split=split,
                                            item=where))
    return None
  label, label_text, label_conf = -1, "", -1.0
  if entry.get("class") is not None:
    try:
      label, label_text, label_conf = _class(entry["class"], unknown)
    except annotated.FieldError as e:
      problems.append(annotated.annotation_problem(
          path, f"{e}: image kept without a class", split=split,
          item=f"{where}: {rel}: class"))
      label, label_text, label_conf = -1, "", -1.0
  return records.ImageRecord(
      key=rel, path=abs_path, file_name=rel, split=split,
      source=f"{path}:{where.split()[-1]}" if where.startswith("line")
      else f"{path}[{where.split()[-1]}]",
      id=image_id, label=label, label_text=label_text, label_conf=label_conf,
      objects=objects, coords="normalized", extra=extra, size=size)


def _extra_text(extra) -> str:
  """`extra`: kept as given when text, else as canonical JSON."""
  if extra is None:
    return ""
  if isinstance(extra, str):
    return extra
  return json.dumps(extra, sort_keys=True, ensure_ascii=False)


def _class(value, unknown):
  value = annotated.mapping(value, "class")
  unknown.update(f"class.{k}" for k in value if k not in _CLASS_FIELDS)
  label = (annotated.label_id(value["label"], "class.label")
           if value.get("label") is not None else -1)
  text = (annotated.text(value["text"], "class.text")
          if value.get("text") is not None else "")
  conf = (annotated.number(value["conf"], "class.conf")
          if value.get("conf") is not None else -1.0)
  return label, text, conf


def _objects(value, path, where, rel, split, unknown, problems):
  """The objects of one entry. Structural errors raise `FieldError` (the entry
  is refused); a bad value drops only its object (reported)."""
  if value is None:
    return ()
  value = annotated.mapping(value, "object")
  unknown.update(f"object.{k}" for k in value if k not in _OBJECT_FIELDS)
  bbox = annotated.mapping(value.get("bbox") or {}, "object.bbox")
  unknown.update(f"object.bbox.{k}" for k in bbox if k not in _BBOX_FIELDS)
  parts = annotated.mapping(value.get("parts") or {}, "object.parts")
  unknown.update(f"object.parts.{k}" for k in parts if k not in _PARTS_FIELDS)

  arrays = {}  # field -> list, every per-object array.
  for name in ("area", "id"):
    if value.get(name) is not None:
      arrays[f"object.{name}"] = annotated.array(value[name], f"object.{name}")
  for name in ("xmin", "xmax", "ymin", "ymax", "label", "text", "score",
               "conf"):
    if bbox.get(name) is not None:
      arrays[f"object.bbox.{name}"] = annotated.array(
          bbox[name], f"object.bbox.{name}")
  given = [c for c in _COORDS if f"object.bbox.{c}" in arrays]
  if given and len(given) != 4:
    missing = [c for c in _COORDS if c not in given]
    raise annotated.FieldError(
        f"object.bbox has {', '.join(given)} but not {', '.join(missing)}")
  lengths = {k: len(v) for k, v in arrays.items()}
  if len(set(lengths.values())) > 1:
    raise annotated.FieldError(
        "object arrays have different lengths: "
        + ", ".join(f"{k} {n}" for k, n in lengths.items()))

  kp = {}
  for name in ("x", "y", "v", "score"):
    if parts.get(name) is not None:
      kp[name] = annotated.array(parts[name], f"object.parts.{name}")
  if kp and not ("x" in kp and "y" in kp):
    raise annotated.FieldError("object.parts needs both x and y")
  kp_lengths = {k: len(v) for k, v in kp.items()}
  if len(set(kp_lengths.values())) > 1:
    raise annotated.FieldError(
        "object.parts arrays have unequal lengths: "
        + ", ".join(f"{k} {n}" for k, n in kp_lengths.items()))
  n_parts = kp_lengths.get("x", 0)

  if lengths:
    n = next(iter(lengths.values()))
  elif value.get("count") is not None:
    n = None  # Set from the count below.
  else:
    n = 1 if n_parts else 0
  if value.get("count") is not None:
    count = annotated.integer(value["count"], "object.count")
    if count < 0:
      raise annotated.FieldError(f"object.count is {count}")
    if n is not None and count != n:
      first = next(iter(lengths), "object.parts")
      raise annotated.FieldError(
          f"object.count is {count}, but {first} has {n} entries")
    n = count
  if n_parts and (n == 0 or n_parts % n):
    raise annotated.FieldError(
        f"object.parts has {n_parts} keypoints, which cannot be shared evenly"
        f" among {n} objects")
  per_object = n_parts // n if n else 0

  objects = []
  for i in range(n):
    obj_id = ""
    try:
      if "object.id" in arrays:
        obj_id = annotated.identifier(arrays["object.id"][i], f"object.id[{i}]")
      objects.append(_object(i, arrays, kp, per_object, obj_id))
    except annotated.FieldError as e:
      what = f"object {obj_id}" if obj_id else f"object #{i}"
      problems.append(annotated.annotation_problem(
          path, f"{e}: object not written", split=split,
          item=f"{where}: {rel}: {what}"))
  return tuple(objects)


def _object(i, arrays, kp, per_object, obj_id):
  def get(field, check, default):
    values = arrays.get(field)
    if values is None or values[i] is None:
      return default
    return check(values[i], f"{field}[{i}]")

  box = None
  if "object.bbox.xmin" in arrays:
    box = tuple(annotated.number(arrays[f"object.bbox.{c}"][i],
                                 f"object.bbox.{c}[{i}]") for c in _COORDS)
  area = get("object.area", annotated.number, -1.0)
  if area != -1.0 and area < 0:
    raise annotated.FieldError(f"object.area[{i}] is {area}: negative")
  keypoints = []
  has_score = "score" in kp
  for j in range(i * per_object, (i + 1) * per_object):
    v = kp["v"][j] if "v" in kp else 2
    v = annotated.integer(v, f"object.parts.v[{j}]")
    if v not in (0, 1, 2):
      raise annotated.FieldError(
          f"object.parts.v[{j}] is {v}: visibility must be 0, 1 or 2")
    keypoints.append(records.Keypoint(
        x=annotated.number(kp["x"][j], f"object.parts.x[{j}]"),
        y=annotated.number(kp["y"][j], f"object.parts.y[{j}]"),
        v=v,
        score=(annotated.number(kp["score"][j], f"object.parts.score[{j}]")
               if has_score else -1.0)))
  return records.ObjectRecord(
      box=box,
      label=get("object.bbox.label", annotated.label_id, -1),
      text=get("object.bbox.text", annotated.text, ""),
      score=get("object.bbox.score", annotated.number, -1.0),
      conf=get("object.bbox.conf", annotated.number, -1.0),
      area=area,
      id=obj_id,
      keypoints=tuple(keypoints),
      keypoint_score_given=has_score,
  )
