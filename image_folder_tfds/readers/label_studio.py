"""Label Studio's JSON export: the full export (tasks) or JSON-MIN (rows).

The full export is a list of tasks; the annotation tool's own regions are in
each annotation's `result`:

    [{"id": 17, "data": {"image": "/data/upload/3/1a2b3c4d-cat.jpg"},
      "annotations": [{"id": 5, "was_cancelled": false, "ground_truth": false,
                       "updated_at": "2024-05-01T10:00:00.000000Z",
                       "result": [{"id": "r1", "type": "rectanglelabels",
                                   "from_name": "label", "to_name": "image",
                                   "original_width": 640,
                                   "original_height": 480,
                                   "value": {"x": 10.0, "y": 20.0,
                                             "width": 30.0, "height": 40.0,
                                             "rotation": 0,
                                             "rectanglelabels": ["cat"]}}]}],
      "predictions": [...]}]

JSON-MIN (Label Studio's converter, `convert_to_json_min`) writes one flat row
per annotation: the task's data, `id` (the task's), one key per control tag
(its `from_name`) holding the regions' values, and `annotator`,
`annotation_id`, `created_at`, `updated_at`, `lead_time`. A tag with a single
`Choices` result is written as its bare choice (`"choice": "cat"`), several
choices as `{"choices": [...]}`.

Coordinates are percentages of the image's width and height: they are stored
divided by 100 (normalized). Rectangles are boxes; a rotated rectangle
(`rotation`, degrees clockwise around its top left corner, in pixels of
`original_width` x `original_height`) is stored as the axis-aligned box around
it. Polygons are instance masks (`masks.pack_polygons`, normalized) with their
extent as the box. A keypoint whose `parentID` names a rectangle or polygon
of the same annotation is a keypoint of that object, named by its label; any
other keypoint is an object of its own class with that one point and no box.
`choices` are the image's classes: `label` when no image has more than one,
`labels` (several per image) otherwise.

Of several annotations of one task, one is read: a `ground_truth` one if
there is one, then the latest `updated_at`, then the highest `id`. Cancelled
(skipped) annotations and predictions are not read. Every such decision is
in the build report. Class names are the labels seen, sorted (or a labels
file); each class's keypoint names are sorted too.

The file is streamed with `ijson` (`seed001.iter_entries`), and the records
are kept packed in temporary files (`records.PackedRecords`), so a 200k-task
export is read in bounded memory.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import math
import os
import re
import urllib.parse

import ijson

from image_folder_tfds import masks
from image_folder_tfds import records
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common
from image_folder_tfds.readers import seed001

NAME = "label_studio"

# Result types read, by the key of their labels in `value`.
_REGION_TYPES = {"rectanglelabels": "rectangle", "polygonlabels": "polygon",
                 "keypointlabels": "keypoint"}
# Keys of a region's value that say what it is (JSON-MIN values have no
# `type`): the labelled regions above, `choices`, and the others Label Studio
# writes, which are reported as not read.
_VALUE_KEYS = ("rectanglelabels", "polygonlabels", "keypointlabels", "labels",
               "choices", "brushlabels", "ellipselabels", "taxonomy",
               "textarea", "text", "rating", "number", "datetime",
               "paragraphlabels", "timeserieslabels", "hypertextlabels",
               "relation")
# JSON-MIN keys that are not the task's data or a tag's results.
_MIN_META = {"id", "annotator", "annotation_id", "created_at", "updated_at",
             "lead_time", "agreement", "history", "was_cancelled"}
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")
# An uploaded file is stored as `<8 hex digits>-<its name>`.
_UPLOADED = re.compile(r"^[0-9a-fA-F]{8}-(.+)$")
_MIN_TIME = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)


# --- Detection ------------------------------------------------------------------


def first_item(path: str):
  """The first item of the JSON list in `path`, parsed alone, or None (not a
  list, an empty list, not JSON, nested deeper than `MAX_JSON_DEPTH`).

  Cheap on a big export: only the first item's events are parsed.
  """
  try:
    with open(path, "rb") as f:
      events = ijson.basic_parse(f, use_float=True)
      start = next(events, None)
      if start is None or start[0] != "start_array":
        return None
      builder = ijson.ObjectBuilder()
      depth = 0
      for event, value in events:
        if depth == 0 and event == "end_array":
          return None  # An empty list.
        builder.event(event, value)
        if event in ("start_map", "start_array"):
          depth += 1
          if depth > common.MAX_JSON_DEPTH:
            return None
        elif event in ("end_map", "end_array"):
          depth -= 1
        if depth == 0:
          return builder.value
  except (ijson.JSONError, OSError, UnicodeDecodeError):
    return None
  return None


# The keys of a task in an export or an import file, other than its
# annotations and predictions.
_TASK_KEYS = {"id", "data", "meta", "created_at", "updated_at", "inner_id",
              "total_annotations", "cancelled_annotations",
              "total_predictions", "comment_count", "unresolved_comment_count",
              "last_comment_updated_at", "project", "updated_by",
              "file_upload", "comment_authors", "drafts", "is_labeled",
              "overlap", "allow_skip"}


def is_task(item) -> bool:
  """A task of the full export: `data` and its `annotations` (`completions`
  before Label Studio 1.0) or `predictions`; or, as Label Studio's import
  files have it, task keys only, with an image in `data`. A seed-001 entry
  (`filename`) is not."""
  if (not isinstance(item, dict) or not isinstance(item.get("data"), dict)
      or "filename" in item):
    return False
  if any(isinstance(item.get(k), list)
         for k in ("annotations", "completions", "predictions")):
    return True
  return item.keys() <= _TASK_KEYS and any(
      isinstance(v, str) and _looks_like_image(v)
      for v in item["data"].values())


# The keys of a region's value that only Label Studio writes: how a JSON-MIN
# row is told from other JSON with an `image` (an OCR file's `text`).
_OWN_KEYS = ("rectanglelabels", "polygonlabels", "keypointlabels",
             "brushlabels", "ellipselabels", "choices")


def _looks_like_results(value) -> bool:
  """A JSON-MIN tag's value: regions (dicts with a Label Studio labels key)
  or several choices (`{"choices": [...]}`)."""
  if isinstance(value, dict):
    return isinstance(value.get("choices"), list)
  return (isinstance(value, list) and bool(value) and all(
      isinstance(v, dict) and any(k in v for k in _OWN_KEYS)
      for v in value))


def is_min_row(item) -> bool:
  """A JSON-MIN row: an `image` and a tag's results, or the annotation keys
  Label Studio's converter adds (`annotator`, `annotation_id`). A seed-001
  entry (`filename`) is not."""
  if not isinstance(item, dict) or "filename" in item or not isinstance(
      item.get("image"), str):
    return False
  return ({"annotator", "annotation_id"} <= item.keys() or any(
      _looks_like_results(v) for k, v in item.items()
      if k not in _MIN_META and k != "image"))


def _kind(path: str) -> str | None:
  """"full", "min", or None (not a Label Studio export)."""
  item = first_item(path)
  if is_task(item):
    return "full"
  if is_min_row(item):
    return "min"
  return None


def find_files(root: str, options: common.ReadOptions) -> list[str]:
  """`options.annotations`, else the `.json` files at the top of `root` or in
  `root/annotations/` whose first item is a Label Studio task or JSON-MIN
  row."""
  if options.annotations:
    return [annotated.annotation_path(root, options.annotations)]
  return [p for p in _json_files(root) if _kind(p)]


def _json_files(root: str) -> list[str]:
  """The `.json` files at the top of `root` and in `root/annotations/`."""
  out = []
  for folder in (root, os.path.join(root, "annotations")):
    if not os.path.isdir(folder):
      continue
    for name in sorted(os.listdir(folder)):
      path = os.path.join(folder, name)
      if (name.lower().endswith(".json") and not common.is_hidden(name)
          and name not in common.KNOWN_METADATA_FILES
          and os.path.isfile(path)):
        out.append(path)
  return out


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: a `.json` list whose first item is a task with `data` and
  `annotations`, or a JSON-MIN row (an `image` and Label Studio results)."""
  files = find_files(root, options)
  if options.annotations and not _kind(files[0]):
    return None
  return common.Claim(NAME, common.CERTAIN, tuple(files)) if files else None


# --- Reading ----------------------------------------------------------------------


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  files = find_files(root, options)
  if not files:
    empty = [os.path.relpath(p, root) for p in _json_files(root)
             if _is_empty_list(p)]
    raise records.InputError(
        f"{root}: no Label Studio export (a `.json` list of tasks, or"
        " JSON-MIN) found" + (f"; {', '.join(empty)} hold(s) an empty list"
                              if empty else ""))
  scan = _Scan(root, options)
  drafts = records.PackedRecords()
  for path in files:
    drafts.extend(scan.read_file(path))
  scan.store.finish()
  recs = scan.finish(drafts)
  return common.ScanResult(
      layout="label_studio: " + ", ".join(
          os.path.relpath(f, root) for f in files),
      class_names=list(scan.class_names), records=recs,
      problems=scan.problems, keypoint_names=scan.keypoint_names)


@dataclasses.dataclass(slots=True)
class _Annotation:
  """One annotation of a task (a JSON-MIN row is one)."""

  where: str  # "annotation 2 (id 7)", for messages.
  id: object
  ground_truth: bool
  updated_at: object  # As given; `_choose` reads it as a time.
  position: int
  results: list


@dataclasses.dataclass
class _Counts:
  """What a file had that is not read, reported once per file."""

  cancelled: int = 0
  cancelled_tasks: int = 0
  unannotated: int = 0
  predicted: int = 0
  predicted_only: int = 0
  not_read: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  image_rotation: int = 0
  multi_label: int = 0
  min_choice_keys: set = dataclasses.field(default_factory=set)
  min_other_keys: set = dataclasses.field(default_factory=set)


class _Scan:
  """The state of one read: classes and keypoint names met so far, the
  problems, the polygons' store."""

  def __init__(self, root: str, options: common.ReadOptions):
    self.root = root
    self.options = options
    self.classes = annotated.classes_for(root, options)
    # Without a labels file, each name gets a provisional index when first
    # met; `finish` sorts them. With one, the index is the final one.
    self._provisional: dict[str, int] = {}
    self._met: list[str] = []  # The names, by provisional index.
    # Keypoint names of each (provisional) class, in the order met.
    self._kp_names: dict[int, dict[str, int]] = {}
    self.most_choices = 0
    self.problems: list[records.Problem] = []
    self.store = masks.LazyStore()
    self.class_names: list[str] = []
    self.keypoint_names: dict[str, list[str]] = {}
    self._by_name: dict[str, list[str]] | None = None  # basename -> rels.

  # -- Classes.

  def _index(self, name, field: str) -> int:
    index = self._provisional.get(name) if type(name) is str else None
    if index is not None:
      return index
    name = annotated.text(name, field)
    if self.classes.fixed is not None:
      index = self.classes.resolve(None, name, field)[0]
      self._provisional[name] = index  # Known good: the next is a lookup.
      return index
    index = self._provisional.get(name)
    if index is None:
      index = self._provisional[name] = len(self._met)
      self._met.append(name)
    return index

  def _names(self) -> list[str]:
    """Class names by provisional index."""
    return self.classes.names if self.classes.fixed is not None else self._met

  def _kp_index(self, label: int, name: str) -> int:
    names = self._kp_names.setdefault(label, {})
    index = names.get(name)
    if index is None:
      index = names[name] = len(names)
    return index

  # -- One file.

  def read_file(self, path: str):
    """The draft records of one export file (labels as provisional
    indices); its problems go to `self.problems`."""
    file_split = annotated.split_of_file(path)
    split = file_split or ""
    kind = _kind(path)
    if kind is None:
      if first_item(path) is None and _is_empty_list(path):
        self.problems.append(records.Problem(
            file=path, kind="warning", counts_as_input=False,
            reason="the export holds no task: nothing read from it"))
        return
      raise records.InputError(
          f"{path}: not a Label Studio export: expected a JSON list of tasks"
          " (each with `data` and `annotations`) or of JSON-MIN rows (each"
          " with `image` and the labels)")
    counts = _Counts()
    entries = seed001.iter_entries(path, split, self.problems)
    tasks = (_min_tasks(entries, counts) if kind == "min"
             else _full_tasks(entries))
    seen_min: set = set()
    for where, task, task_annotations in tasks:
      if kind == "min":
        tid = task.get("id") if isinstance(task, dict) else None
        if tid is not None and not isinstance(tid, (dict, list)):
          key = repr(tid)
          if key in seen_min:
            self.problems.append(annotated.annotation_problem(
                path, f"rows of task {tid} are not next to each other: this"
                " row's annotation is not used (the task was read from its"
                " first rows)", split=split, item=where))
            continue
          seen_min.add(key)
      rec = self._task(path, where, task, task_annotations, file_split,
                       counts)
      if rec is not None:
        yield rec
    self._report(path, split, counts)

  def _task(self, path, where, task, annotations, file_split, counts):
    """The draft record of one task, or None (reported)."""
    split = file_split or ""
    try:
      task = annotated.mapping(task, "the task")
      if annotations is None:  # The full export.
        data = task.get("data")
        if not isinstance(data, dict):
          raise annotated.FieldError(
              "the task has no `data` object (where the image is named)")
        ref = _image_ref(data)
      else:
        ref = _image_ref({k: v for k, v in task.items()
                          if k not in _MIN_META})
      abs_path, rel = self._resolve(ref, path)
      split = annotated.assign_split(file_split, rel, self.options)
      if annotations is None:
        annotations = self._annotations(task, path, where, split, counts)
    except (annotated.FieldError, annotated.PathError) as e:
      self.problems.append(annotated.input_problem(
          path, str(e), split=split, item=where))
      return None
    if annotations is _ALL_CANCELLED:
      self.problems.append(annotated.input_problem(
          path, "every annotation of the task was cancelled (skipped by the"
          " annotator): the image is not written", split=split, item=where))
      return None
    chosen = self._choose(annotations, path, where, split, counts)
    size = None
    labels: list[int] = []
    objects: tuple = ()
    if chosen is not None:
      try:
        results = annotated.array(chosen.results, f"{chosen.where}: result")
      except annotated.FieldError as e:
        self.problems.append(annotated.input_problem(
            path, f"{e}: the image is not written", split=split, item=where))
        return None
      size, labels, objects = self._results(
          results, path, f"{where}: {rel}", split, counts)
    if labels:
      self.most_choices = max(self.most_choices, len(labels))
    names = self._names() if labels else []
    tid = task.get("id")
    return records.ImageRecord(
        key=rel, path=abs_path, file_name=rel, split=split,
        source=f"{path}[{where.split()[1]}]", id=(
            str(tid) if isinstance(tid, (str, int)) and not isinstance(
                tid, bool) else rel),
        labels=tuple(labels), labels_text=tuple(names[i] for i in labels),
        objects=objects, coords="normalized", size=size,
        segmentation_file=self.store.path if any(
            o.segmentation >= 0 for o in objects) else "")

  def _annotations(self, task, path, where, split, counts):
    """The annotations of a full-export task that can be read."""
    anns = task.get("annotations", task.get("completions"))
    if anns is None:
      anns = []
    anns = annotated.array(anns, "annotations")
    predictions = task.get("predictions")
    if isinstance(predictions, list) and predictions:
      counts.predicted += 1
    out = []
    cancelled = 0
    for j, ann in enumerate(anns):
      if not isinstance(ann, dict):
        self.problems.append(annotated.annotation_problem(
            path, f"annotation {j} must be an object, got {ann!r}: not read",
            split=split, item=where))
        continue
      aid = ann.get("id")
      label = f"annotation {j}" + (f" (id {aid})" if aid is not None else "")
      if ann.get("was_cancelled") or ann.get("skipped"):
        cancelled += 1
        continue
      out.append(_Annotation(
          where=label, id=aid, ground_truth=ann.get("ground_truth") is True,
          updated_at=ann.get("updated_at"), position=j,
          results=ann.get("result")))
    counts.cancelled += cancelled
    if cancelled and not out:
      counts.cancelled_tasks += 1
      return _ALL_CANCELLED
    if anns and not out:
      raise annotated.FieldError("no annotation of the task can be read")
    if not out:
      counts.unannotated += 1
      if isinstance(predictions, list) and predictions:
        counts.predicted_only += 1
    return out

  def _choose(self, annotations, path, where, split, counts):
    """The annotation read of several: ground truth, then the latest
    `updated_at`, then the highest id. Reports the others."""
    if not annotations:
      return None
    if len(annotations) == 1:
      return annotations[0]
    annotations = [dataclasses.replace(a, updated_at=_time(a.updated_at))
                   for a in annotations]

    def rank(a: _Annotation):
      aid = a.id if isinstance(a.id, int) and not isinstance(a.id, bool) else -1
      return (a.ground_truth, a.updated_at or _MIN_TIME, aid, a.position)

    chosen = max(annotations, key=rank)
    others = [a for a in annotations if a is not chosen]
    if chosen.ground_truth and not any(a.ground_truth for a in others):
      why = "the ground truth"
    elif chosen.updated_at is not None and all(
        (a.updated_at or _MIN_TIME) < chosen.updated_at
        for a in others if a.ground_truth == chosen.ground_truth):
      why = f"updated last, {chosen.updated_at.isoformat()}"
    else:
      why = "the highest id"
    self.problems.append(annotated.annotation_problem(
        path, f"{len(annotations)} annotations: {chosen.where} is read"
        f" ({why}); not read: " + ", ".join(a.where for a in others),
        split=split, item=where, kind="warning"))
    return chosen

  # -- Results.

  def _results(self, results, path, where, split, counts):
    """(size, image classes, objects) of one annotation's results."""
    problems = self.problems
    size = None
    regions: dict[str, list[records.ObjectRecord]] = {}  # id -> objects.
    objects: list[records.ObjectRecord] = []
    keypoints: list[tuple[str, object, str, dict]] = []  # parent, ...
    choices: list[tuple[str, object, list]] = []  # (item, id, names)
    parsed = []
    labelled_ids = set()  # Ids of the labelled regions.
    region_ids = set()  # Ids of every result that is not choices.
    for k, r in enumerate(results):
      rid = r.get("id") if isinstance(r, dict) else None
      item = (where, k, rid)
      if not isinstance(r, dict):
        problems.append(annotated.annotation_problem(
            path, f"a result must be an object, got {r!r}: not read",
            split=split, item=_item(item)))
        continue
      value = r.get("value")
      rtype = r.get("type")
      if not isinstance(value, dict):
        problems.append(annotated.annotation_problem(
            path, f"`value` must be an object, got {value!r}: not read",
            split=split, item=_item(item)))
        continue
      kind = _region_kind(rtype, value)
      if rid is not None and not isinstance(rid, (dict, list)):
        if kind is not None:
          labelled_ids.add(rid)
        if not (rtype == "choices" or (rtype is None and "choices" in value)):
          region_ids.add(rid)
      parsed.append((item, r, rtype, value, kind))
    for item, r, rtype, value, kind in parsed:
      rid = r.get("id")
      if r.get("image_rotation"):
        counts.image_rotation += 1
      if size is None:
        size = _size(r)
      if kind is None:
        if rtype == "choices" or (rtype is None and "choices" in value):
          choices.append((item, rid, value))
        elif (rtype in ("rectangle", "polygon", "keypoint")
              and _key(rid) in labelled_ids):
          continue  # The shape of a `labels` result with the same id.
        else:
          counts.not_read[str(rtype or _value_kind(value))] += 1
        continue
      try:
        if kind == "keypoint" and r.get("parentID") is not None:
          keypoints.append((item, r, value, _labels_of(value, rtype)))
          continue
        made = self._region(kind, r, rtype, value, path, item, split, counts)
      except (annotated.FieldError, masks.MaskError) as e:
        problems.append(annotated.annotation_problem(
            path, f"{e}: object not written", split=split, item=_item(item)))
        continue
      objects.extend(made)
      if made and kind != "keypoint" and rid is not None:
        regions.setdefault(_key(rid), []).extend(made)
    # Keypoints of a region: its objects' keypoints, by name.
    attached: dict[int, dict[int, records.Keypoint]] = {}  # id(obj) -> ...
    for item, r, value, names in keypoints:
      parent = regions.get(_key(r.get("parentID")))
      try:
        if parent is None:
          raise annotated.FieldError(
              f"parentID {r.get('parentID')!r} names no rectangle or polygon"
              " of this annotation")
        point = _point(value)
        for name in names:
          name = annotated.text(name, "keypointlabels[]")
          for obj in parent:
            index = self._kp_index(obj.label, name)
            slots = attached.setdefault(id(obj), {})
            if index in slots:
              raise annotated.FieldError(
                  f"a second keypoint {name!r} of region {r.get('parentID')!r}")
            slots[index] = point
      except annotated.FieldError as e:
        problems.append(annotated.annotation_problem(
            path, f"{e}: keypoint not written", split=split, item=_item(item)))
    if attached:
      objects = [_with_keypoints(o, attached.get(id(o))) for o in objects]
    labels: list[int] = []
    for item, rid, value in choices:
      if rid is not None and _key(rid) in region_ids:  # `perRegion` choices.
        counts.not_read["choices of a region"] += 1
        continue
      try:
        names = annotated.array(value.get("choices"), "value.choices")
        for name in names:
          index = self._index(name, "choice")
          if index not in labels:
            labels.append(index)
      except annotated.FieldError as e:
        problems.append(annotated.annotation_problem(
            path, f"{e}: choice not written", split=split, item=_item(item)))
    return size, labels, tuple(objects)

  def _region(self, kind, r, rtype, value, path, item, split, counts):
    """The objects of one labelled region: one per label."""
    names = _labels_of(value, rtype)
    box, segmentation, keypoints = None, -1, ()
    if kind == "rectangle":
      box = self._box(r, value, path, item, split)
    elif kind == "polygon":
      flat = _polygon(value)
      parts = masks.check_polygons([flat], field="value.points")
      xs, ys = flat[0::2], flat[1::2]
      box = (min(xs), min(ys), max(xs), max(ys))
      segmentation = self.store.add(masks.pack_polygons(parts,
                                                        normalized=True))
    else:
      keypoints = (_point(value),)
    rid = r.get("id")
    oid = rid if type(rid) is str else str(rid) if type(rid) is int else ""
    out = []
    for name in names:
      try:
        label = self._index(name, _LABEL_FIELDS.get(rtype, "label"))
      except annotated.FieldError as e:
        self.problems.append(annotated.annotation_problem(
            path, f"{e}: object not written", split=split, item=_item(item)))
        continue
      out.append(records.ObjectRecord(
          box=box, label=label, text=name, id=oid, keypoints=keypoints,
          segmentation=segmentation))
    if len(names) > 1:
      counts.multi_label += 1
    return out

  def _box(self, r, value, path, item, split):
    x, y, w, h = (_number(value, "x"), _number(value, "y"),
                  _number(value, "width"), _number(value, "height"))
    if w < 0 or h < 0:
      raise annotated.FieldError(
          f"value.width and value.height must not be negative, got {w}, {h}")
    rotation = _number(value, "rotation") if value.get("rotation") else 0
    if rotation % 360 == 0:
      return (x / 100, y / 100, (x + w) / 100, (y + h) / 100)
    size = _size(r)
    if size is None:
      raise annotated.FieldError(
          f"rotated by {rotation} degrees, without original_width and"
          " original_height to turn it in pixels")
    box = rotated_box(x, y, w, h, rotation, *size)
    if rotation % 90:
      self.problems.append(annotated.annotation_problem(
          path, f"rectangle rotated by {rotation:g} degrees: stored as the"
          " axis-aligned box around it (larger than the rectangle)",
          split=split, item=_item(item), kind="changed"))
    return box

  # -- Images.

  def _resolve(self, ref, path) -> tuple[str, str]:
    """(absolute path, relative path) of a task's image, inside the root."""
    if not isinstance(ref, str) or not ref.strip():
      raise annotated.PathError(
          f"image must be a non-empty string, got {ref!r}")
    bases = list(dict.fromkeys((os.path.dirname(path), self.root)))
    if "/data/local-files" in ref.partition("?")[0] and "?d=" in ref:
      # As Label Studio reads it: the rest of the URL is the path below its
      # LOCAL_FILES_DOCUMENT_ROOT (percent-encoded or not).
      raw = ref.split("?d=", 1)[1]
      return self._find(ref, [raw, urllib.parse.unquote(raw)], bases,
                        suffixes=True)
    parts = urllib.parse.urlsplit(ref)
    m = re.match(r"^/?(?:data/)?upload/(\d+)/([^/]+)$", parts.path)
    if m and not parts.query:
      stored = urllib.parse.unquote(m.group(2))
      names = [f"upload/{m.group(1)}/{stored}",
               f"media/upload/{m.group(1)}/{stored}", stored]
      original = _UPLOADED.match(stored)
      if original:
        names.append(original.group(1))
      return self._find(ref, names, bases, suffixes=False)
    if _URL.match(ref) or ref.startswith("data:"):
      shown = ref if len(ref) < 120 else ref[:117] + "..."
      raise annotated.PathError(
          f"image {shown!r} is a URL: nothing is downloaded. Download the"
          " images into the data folder and name them by their path there"
          " (or export with local files)")
    return annotated.resolve_image(ref, bases, self.root)

  def _find(self, ref, names, bases, suffixes) -> tuple[str, str]:
    """The first of `names` (and, with `suffixes`, their trailing parts) that
    exists inside the root; else the one file of that name below it."""
    tried: list[str] = []
    for name in dict.fromkeys(names):
      segments = [s for s in name.replace("\\", "/").split("/")
                  if s and s != "."]
      if ".." in segments:
        raise annotated.PathError(
            f"image {ref!r} leads outside the data folder {self.root}"
            " (`..`): refused")
      starts = range(len(segments)) if suffixes else [0]
      for start in starts:
        rel = "/".join(segments[start:])
        if not rel:
          continue
        tried.append(rel)
        for base in bases:
          candidate = os.path.join(base, rel)
          if os.path.lexists(candidate):
            return annotated.resolve_image(candidate, [], self.root)
    basenames = {os.path.basename(t) for t in tried}
    found = sorted({rel for b in basenames for rel in self._named(b)})
    if len(found) == 1:
      return annotated.resolve_image(found[0], [self.root], self.root)
    if found:
      raise annotated.PathError(
          f"image {ref!r}: several files of that name in the data folder ("
          + ", ".join(found[:4]) + (" ..." if len(found) > 4 else "")
          + "): which one is meant is not known")
    raise annotated.PathError(
        f"image {ref!r} not found in the data folder {self.root} (looked for "
        + ", ".join(dict.fromkeys(tried)) + ", and for a file named "
        + " or ".join(sorted(basenames)) + " anywhere below it)")

  def _named(self, basename: str) -> list[str]:
    """The files called `basename` anywhere below the root (one walk)."""
    if self._by_name is None:
      self._by_name = collections.defaultdict(list)
      for rel in common.walk_files(self.root, self.root, [], None):
        rel = rel.replace(os.sep, "/")
        self._by_name[rel.rpartition("/")[2]].append(rel)
    return self._by_name.get(basename, [])

  # -- Reports and the end.

  def _report(self, path, split, counts: _Counts) -> None:
    def warn(reason):
      self.problems.append(records.Problem(
          file=path, kind="warning", counts_as_input=False, split=split,
          reason=reason))

    if counts.cancelled:
      warn(f"{counts.cancelled} cancelled (skipped) annotation(s) not read;"
           f" {counts.cancelled_tasks} task(s) had no other and are not"
           " written (each reported)")
    if counts.unannotated:
      warn(f"{counts.unannotated} task(s) have no annotation: their images"
           " are written without classes or objects")
    if counts.predicted:
      warn(f"predictions of {counts.predicted} task(s) are not read (model"
           " output, not annotations); "
           f"{counts.predicted_only} of them have no annotation")
    if counts.not_read:
      warn("results not read (only rectanglelabels, polygonlabels,"
           " keypointlabels, labels and choices are): " + ", ".join(
               f"{k} ({n})" for k, n in sorted(counts.not_read.items())))
    if counts.image_rotation:
      warn(f"{counts.image_rotation} result(s) were drawn on an image turned"
           " in the editor (`image_rotation`): their coordinates are taken"
           " on the image as stored")
    if counts.multi_label:
      warn(f"{counts.multi_label} region(s) have several labels: each label"
           " is an object of its own, with the same shape")
    if counts.min_choice_keys:
      warn("JSON-MIN keys read as image classes (a text value is a single"
           " choice): " + ", ".join(sorted(counts.min_choice_keys)))
    if counts.min_other_keys:
      warn("JSON-MIN keys not read: " + ", ".join(
          sorted(counts.min_other_keys)))

  def finish(self, drafts: records.PackedRecords):
    """The records with their final labels: class names sorted (unless a
    labels file fixed them), keypoints in each class's sorted names, and
    the choices as `label` when no image has more than one."""
    provisional = list(self._names())
    names = (provisional if self.classes.fixed is not None
             else sorted(provisional))
    self.class_names = names
    order = {n: i for i, n in enumerate(names)}
    remap = [order[n] for n in provisional]
    kp_maps: dict[int, list[int]] = {}
    for label, met in sorted(self._kp_names.items()):
      sorted_names = sorted(met)
      self.keypoint_names[provisional[label]] = sorted_names
      rank = {n: i for i, n in enumerate(sorted_names)}
      kp_maps[label] = [rank[n] for n in sorted(met, key=met.get)]
    single = self.most_choices == 1
    if (remap == list(range(len(remap))) and not single
        and all(m == list(range(len(m))) for m in kp_maps.values())):
      return drafts
    # Unpacked records hold the spill file's path as a plain `str`; the
    # store's own path (`records.SpillPath`) keeps the file alive.
    store = self.store.path
    return records.PackedRecords(
        _final(r, remap, names, kp_maps, single, store) for r in drafts)


_ALL_CANCELLED = object()  # `_annotations`: every annotation was cancelled.
_LABEL_FIELDS = {t: f"{t} label" for t in (*_REGION_TYPES, "labels")}


def _item(parts) -> str:
  """`task 3 (id 17): a.jpg: result 2 (id r1)` from (where, index, id),
  made only when a problem names a result (most have none)."""
  where, index, rid = parts
  return f"{where}: result {index}" + (f" (id {rid})" if rid is not None
                                       else "")


def _final(r: records.ImageRecord, remap, names, kp_maps, single, store):
  objects = []
  for o in r.objects:
    keypoints = o.keypoints
    kp_map = kp_maps.get(o.label)
    if kp_map is not None and o.box is not None:
      slots = [records.Keypoint(x=0.0, y=0.0, v=0)] * len(kp_map)
      for i, kp in enumerate(keypoints):
        slots[kp_map[i]] = kp
      keypoints = tuple(slots)
    label = remap[o.label]
    objects.append(dataclasses.replace(
        o, label=label, text=names[label], keypoints=keypoints))
  labels = tuple(remap[i] for i in r.labels)
  changes = {"objects": tuple(objects), "labels": labels,
             "labels_text": tuple(names[i] for i in labels),
             "segmentation_file": store if r.segmentation_file else ""}
  if single and labels:
    changes.update(label=labels[0], label_text=names[labels[0]], labels=(),
                   labels_text=())
  return dataclasses.replace(r, **changes)


def _with_keypoints(obj, slots):
  """`obj` with its keypoints in provisional order (holes not labelled)."""
  if not slots:
    return obj
  points = [records.Keypoint(x=0.0, y=0.0, v=0)] * (max(slots) + 1)
  for index, point in slots.items():
    points[index] = point
  return dataclasses.replace(obj, keypoints=tuple(points))


def rotated_box(x, y, w, h, rotation, width, height):
  """The normalized axis-aligned box around a Label Studio rectangle: (x, y)
  its top left corner, `w`, `h` its sides (percent of the image's `width`
  and `height`), turned by `rotation` degrees clockwise around (x, y), in
  pixels (the y axis points down)."""
  px, py = x / 100 * width, y / 100 * height
  pw, ph = w / 100 * width, h / 100 * height
  cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
  xs = (px, px + pw * cos, px + pw * cos - ph * sin, px - ph * sin)
  ys = (py, py + pw * sin, py + pw * sin + ph * cos, py + ph * cos)
  return (min(xs) / width, min(ys) / height, max(xs) / width,
          max(ys) / height)


def _region_kind(rtype, value) -> str | None:
  """"rectangle", "polygon", "keypoint" for a labelled region, else None."""
  if rtype in _REGION_TYPES or (rtype is None and any(
      k in value for k in _REGION_TYPES)):
    key = rtype or next(k for k in _REGION_TYPES if k in value)
    return _REGION_TYPES[key]
  if rtype == "labels" or (rtype is None and "labels" in value):
    # The `Labels` tag over a `Rectangle`, `Polygon` or `KeyPoint` tag.
    if "points" in value:
      return "polygon"
    if "height" in value:
      return "rectangle"
    if "x" in value and "y" in value:
      return "keypoint"
  return None


def _value_kind(value: dict) -> str:
  """A JSON-MIN value's kind, for the report (it has no `type`)."""
  return next((k for k in _VALUE_KEYS if k in value), "unknown")


def _labels_of(value, rtype) -> list:
  key = rtype if rtype in _REGION_TYPES or rtype == "labels" else next(
      (k for k in (*_REGION_TYPES, "labels") if k in value), "labels")
  names = annotated.array(value.get(key), f"value.{key}")
  if not names:
    raise annotated.FieldError(f"value.{key} is empty: the region has no"
                               " label")
  return names


def _polygon(value) -> list[float]:
  """`value.points` ([[x, y], ...] in percent) as a flat normalized list."""
  points = annotated.array(value.get("points"), "value.points")
  flat = []
  for i, point in enumerate(points):
    pair = annotated.array(point, f"value.points[{i}]")
    if len(pair) != 2:
      raise annotated.FieldError(
          f"value.points[{i}] must be [x, y], got {point!r}")
    flat.append(annotated.number(pair[0], f"value.points[{i}][0]") / 100)
    flat.append(annotated.number(pair[1], f"value.points[{i}][1]") / 100)
  return flat


def _key(rid):
  """An id as a set or dict key (an id that is a list or an object, which no
  result has, matches nothing)."""
  return None if isinstance(rid, (dict, list)) else rid


def _number(value: dict, key: str) -> float:
  """`value[key]`, a finite number (`annotated.number`, faster when it is)."""
  v = value.get(key)
  if type(v) is float and math.isfinite(v) or type(v) is int:
    return v
  return annotated.number(v, f"value.{key}")


def _point(value) -> records.Keypoint:
  """A keypoint: visible, or occluded when Label Studio's COCO import marked
  it `hidden` (COCO visibility below 2)."""
  return records.Keypoint(
      x=_number(value, "x") / 100, y=_number(value, "y") / 100,
      v=1 if value.get("hidden") is True else 2)


def _size(r: dict) -> tuple[int, int] | None:
  w, h = r.get("original_width"), r.get("original_height")
  if (isinstance(w, int) and isinstance(h, int) and not isinstance(w, bool)
      and not isinstance(h, bool) and w > 0 and h > 0):
    return (w, h)
  return None


def _time(value) -> datetime.datetime | None:
  if not isinstance(value, str):
    return None
  try:
    t = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
  except ValueError:
    return None
  return t if t.tzinfo is not None else t.replace(
      tzinfo=datetime.timezone.utc)


def _looks_like_image(value: str) -> bool:
  """A task data value naming an image: a Label Studio file URL, a URL, or a
  name with an image extension."""
  path = urllib.parse.urlsplit(value).path
  return bool(path.startswith(("/data/upload", "/data/local-files",
                               "data/upload", "upload/"))
              or _URL.match(value) or common.is_image_name(path))


def _image_ref(data: dict):
  """The image of a task's data: `image`, else its one value naming one."""
  if "image" in data:
    return data["image"]
  found = [k for k, v in data.items()
           if isinstance(v, str) and _looks_like_image(v)]
  if len(found) == 1:
    return data[found[0]]
  if found:
    raise annotated.FieldError(
        "the task names several images (" + ", ".join(found) + "): tasks of"
        " one image are read")
  raise annotated.FieldError(
      "the task names no image (no `image` and no other value that is an"
      " image path or URL; keys: " + ", ".join(map(str, data)) + ")")


def _is_empty_list(path: str) -> bool:
  try:
    with open(path, "rb") as f:
      events = ijson.basic_parse(f, use_float=True)
      return ([e for e, _ in (next(events, (None, None)),
                             next(events, (None, None)))]
              == ["start_array", "end_array"])
  except (ijson.JSONError, OSError, UnicodeDecodeError):
    return False


def _full_tasks(entries):
  """(where, task, None) for each task of a full export."""
  for where, task in entries:
    index = where.split()[-1]
    tid = task.get("id") if isinstance(task, dict) else None
    label = f"task {index}" + (f" (id {tid})" if tid is not None else "")
    yield label, task, None


def _min_tasks(entries, counts: _Counts):
  """(where, row, annotations) for each task of a JSON-MIN file: its rows
  (one per annotation, next to each other), by task `id`."""
  group: list[tuple[int, dict]] = []

  def flush():
    index, first = group[0]
    tid = first.get("id")
    where = f"row {index}" + (f" (task {tid})" if tid is not None else "")
    annotations = []
    for position, (i, row) in enumerate(group):
      aid = row.get("annotation_id")
      results = _min_results(row, counts)
      if aid is None and len(group) == 1 and not results:
        counts.unannotated += 1  # A task without annotation.
        break
      annotations.append(_Annotation(
          where=f"row {i}" + (f" (annotation {aid})" if aid is not None
                              else ""),
          id=aid, ground_truth=False, updated_at=row.get("updated_at"),
          position=position, results=results))
    return where, first, annotations

  for where, row in entries:
    index = int(where.split()[-1])
    if not isinstance(row, dict):
      if group:
        yield flush()
        group = []
      yield f"row {index}", row, []
      continue
    tid = row.get("id")
    if group and (tid is None or isinstance(tid, (dict, list))
                  or tid != group[0][1].get("id")):
      yield flush()
      group = []
    group.append((index, row))
  if group:
    yield flush()


def _min_results(row: dict, counts: _Counts) -> list:
  """A JSON-MIN row's values as full-export results."""
  out = []
  image_key = "image" if "image" in row else None
  for key, value in row.items():
    if key in _MIN_META or key == image_key:
      continue
    if isinstance(value, list) and value and all(
        isinstance(v, dict) for v in value):
      for v in value:
        out.append({"from_name": key, "value": v, "id": v.get("id"),
                    "parentID": v.get("parentID"),
                    "original_width": v.get("original_width"),
                    "original_height": v.get("original_height"),
                    "image_rotation": v.get("image_rotation")})
    elif isinstance(value, dict) and isinstance(value.get("choices"), list):
      out.append({"from_name": key, "type": "choices", "value": value})
    elif isinstance(value, dict) and "text" in value:
      out.append({"from_name": key, "type": "textarea", "value": value})
    elif isinstance(value, str) and not _looks_like_image(value):
      # Label Studio's converter writes a tag's one choice as its text.
      out.append({"from_name": key, "type": "choices",
                  "value": {"choices": [value]}})
      counts.min_choice_keys.add(key)
    elif not (isinstance(value, str) or value is None or value == []):
      counts.min_other_keys.add(key)
  return out
