"""COCO: `instances_*.json` and `person_keypoints_*.json` (or a Roboflow
export's `<split>/_annotations.coco.json`).

Each file's name gives its split (`instances_train2017.json` -> train,
`person_keypoints_val2017.json` -> validation); a file without a split name
gives each image a stable hash split. Files of one split are merged by image
id and annotation id, so `instances_*` and `person_keypoints_*` of the same
split give one set of objects, the persons with their keypoints.

The class names are the category names in category-id order (ids need not be
contiguous); the stored label is the index into that list. With a labels file
the category names are looked up in it instead. Images without annotations
are kept with zero objects. The files are streamed with `ijson`: only the
records built from them are kept in memory, and the objects' segmentations
(polygons, RLE) are checked and spilled to a temporary file
(`masks.SegmentationStore`), each object keeping its offset there.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import json
import os
import pickle
import re

import ijson
import numpy as np

from image_folder_tfds import masks
from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "coco"
_NAME = re.compile(r"^(instances|person_keypoints)_(.+)\.json$")
_ANNOTATION_FIELDS = {"id", "image_id", "category_id", "bbox", "area",
                      "iscrowd", "keypoints", "num_keypoints", "score",
                      "segmentation"}
_IMAGE_FIELDS = {"id", "file_name", "width", "height"}
ROBOFLOW_FILE = "_annotations.coco.json"
# The keys of a COCO file (a seed-001 entry starts with none of them).
TOP_LEVEL_KEYS = {"info", "licenses", "images", "annotations", "categories"}


def is_coco_file(name: str) -> bool:
  return bool(_NAME.match(os.path.basename(name)))


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: `instances_*.json` / `person_keypoints_*.json`, a Roboflow
  `<split>/_annotations.coco.json`, or a JSON file whose first key is one of
  COCO's (`images`, `annotations`, `categories`, ...)."""
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    if (is_coco_file(path) or path.lower().endswith(".coco.json")
        or (path.lower().endswith(".json")
            and common.first_key(path) in TOP_LEVEL_KEYS)):
      return common.Claim(NAME, common.CERTAIN, (path,))
    return None
  files = find_files(root, options)
  return common.Claim(NAME, common.CERTAIN, tuple(files)) if files else None


def _split_of(path: str) -> str | None:
  """From the file name (`instances_val2017.json`), else, for a Roboflow
  export (`valid/_annotations.coco.json`), from its split-named folder."""
  split = annotated.split_of_file(path)
  if split is None and path.endswith(".coco.json"):
    split = splits_lib.canonical_split(
        os.path.basename(os.path.dirname(path)))
  return split


def find_files(root: str, options: common.ReadOptions) -> list[str]:
  """`options.annotations`, else `instances_*.json` and
  `person_keypoints_*.json` in `root/annotations/` or `root`, else a
  Roboflow export's `<split>/_annotations.coco.json`, else the JSON files
  there whose first key is one of COCO's."""
  if options.annotations:
    return [annotated.annotation_path(root, options.annotations)]
  out = []
  for folder in (os.path.join(root, "annotations"), root):
    if os.path.isdir(folder):
      out.extend(os.path.join(folder, n) for n in common.names(folder)
                 if is_coco_file(n) and not common.is_hidden(n))
  if not out:  # A Roboflow export: `<split>/_annotations.coco.json`.
    for name in common.names(root):
      path = os.path.join(root, name, ROBOFLOW_FILE)
      if splits_lib.canonical_split(name) and os.path.isfile(path):
        out.append(path)
  if not out:  # Any other name (`train.json`): COCO's own keys.
    for folder in (os.path.join(root, "annotations"), root):
      if os.path.isdir(folder):
        out.extend(
            os.path.join(folder, n) for n in common.names(folder)
            if n.lower().endswith(".json") and not common.is_hidden(n)
            and os.path.isfile(os.path.join(folder, n))
            and common.first_key(os.path.join(folder, n)) in TOP_LEVEL_KEYS)
  return out


def _items(path: str, prefix: str):
  """The items of the top-level array `prefix`, parsed one at a time."""
  with open(path, "rb") as f:
    try:
      yield from ijson.items(f, f"{prefix}.item", use_float=True)
    except ijson.JSONError as e:
      raise records.InputError(
          f"{path}: not valid JSON (reading {prefix!r}): {e}") from None


def _image_folder(path: str) -> str:
  """`train2017` for `instances_train2017.json`."""
  m = _NAME.match(os.path.basename(path))
  return m.group(2) if m else os.path.basename(path).rsplit(".", 1)[0]


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  files = find_files(root, options)
  if not files:
    raise records.InputError(
        f"{root}: no COCO annotation file (annotations/instances_*.json or"
        " annotations/person_keypoints_*.json) found")
  problems: list[records.Problem] = []

  # 1. Categories of every file: one class list for the whole dataset.
  categories: dict[int, dict] = {}
  for path in files:
    common.check_json_depth(path)  # Before ijson.items: see there.
    for cat in _items(path, "categories"):
      try:
        cat = annotated.mapping(cat, "categories[]")
        cid = annotated.integer(cat.get("id"), "categories[].id")
        name = annotated.text(cat.get("name"), f"category {cid} name")
      except annotated.FieldError as e:
        raise records.InputError(f"{path}: {e}") from None
      kp_names = _keypoint_names(cat, cid, name, path, problems)
      known = categories.get(cid)
      if known and known["name"] != name:
        raise records.InputError(
            f"{path}: category {cid} is {name!r} here but {known['name']!r} in"
            f" {known['file']}")
      if known is None or (kp_names and not known["keypoints"]):
        categories[cid] = {
            "name": name, "keypoints": kp_names, "file": path,
            "skeleton": cat.get("skeleton"),
            "supercategory": cat.get("supercategory"),
            # Keypoints per annotation: {count: annotations}, from the data.
            "counts": collections.Counter()}
  _leave_out_roboflow_roots(categories, files, problems)
  by_name = collections.Counter(c["name"] for c in categories.values())
  twice = sorted(n for n, k in by_name.items() if k > 1)
  if twice:
    raise records.InputError(
        f"{files[0]}: category name(s) {twice} are used by several category"
        " ids; class names must be unique")
  category_names = [categories[i]["name"] for i in sorted(categories)]
  labels = common.read_labels_file(root, options.labels_file)
  if labels is not None:
    classes = annotated.Classes(fixed=labels.names, source=labels.path)
  else:
    classes = annotated.Classes(fixed=category_names,
                                source="the COCO categories")
  keypoint_names = {c["name"]: c["keypoints"]
                    for _, c in sorted(categories.items()) if c["keypoints"]}

  # 2. Images, per split, merged by image id.
  groups: dict[str | None, list[str]] = collections.defaultdict(list)
  for path in files:
    groups[_split_of(path)].append(path)
  # Kept packed (`records.PackedRecords`): ~0.55 KB an image with 4 objects
  # instead of ~3 KB as objects.
  recs = records.PackedRecords()
  store = masks.LazyStore()
  for file_split, paths in groups.items():
    recs.extend(_read_group(paths, file_split, root, options, categories,
                            classes, problems, store))
  store.finish()
  # 3. What the categories say of keypoints, checked against the annotations.
  skeletons = {}
  for cid, cat in sorted(categories.items()):
    _report_unnamed_keypoints(cid, cat, problems)
    if not cat["skeleton"]:
      continue
    # Without names, the annotations say how many keypoints there are.
    num = len(cat["keypoints"]) or max(cat["counts"], default=0)
    try:
      skeletons[cat["name"]] = _skeleton(cat["skeleton"], num)
    except annotated.FieldError as e:
      problems.append(records.Problem(
          file=cat["file"], kind="warning", counts_as_input=False,
          item=f"category {cid} ({cat['name']!r}) skeleton",
          reason=f"{e}: skeleton left out (keypoints are kept; it only draws"
          " their links)"))
  return common.ScanResult(
      layout="coco: " + ", ".join(os.path.relpath(f, root) for f in files),
      class_names=list(classes.names), records=recs, problems=problems,
      keypoint_names=keypoint_names, skeletons=skeletons)


def _keypoint_names(cat, cid, name, path, problems) -> list[str]:
  """The keypoint names of a category; names that are not a list of
  strings are left out with a warning (the annotations then decide how many
  keypoints there are)."""
  try:
    return [annotated.text(k, f"category {cid} keypoints[]")
            for k in annotated.array(cat.get("keypoints") or [],
                                     f"category {cid} keypoints")]
  except annotated.FieldError as e:
    problems.append(records.Problem(
        file=path, kind="warning", counts_as_input=False,
        item=f"category {cid} ({name!r}) keypoints",
        reason=f"{e}: keypoint names left out"))
    return []


def _leave_out_roboflow_roots(categories, files, problems) -> None:
  """Leaves out Roboflow's root category: Roboflow's COCO export puts the
  project's name first (`{"id": 0, "name": "cells", "supercategory":
  "none"}`) as the supercategory of every class, with no annotation of its
  own. As a class it would be a label no example has (and it may share a
  class's name). Like Roboflow's own trainer (rf-detr), a category is left
  out when another category names it as its supercategory and no annotation
  uses its id; the annotations are read for that only when one is there."""
  parents = {c["supercategory"] for c in categories.values()
             if isinstance(c["supercategory"], str)}
  roots = [cid for cid, c in categories.items() if c["name"] in parents
           and any(o["supercategory"] == c["name"] and other != cid
                   for other, o in categories.items())]
  if not roots:
    return
  used = set()
  for path in files:
    with open(path, "rb") as f:
      try:
        used.update(ijson.items(f, "annotations.item.category_id"))
      except ijson.JSONError as e:
        raise records.InputError(
            f"{path}: not valid JSON (reading 'annotations'): {e}") from None
  for cid in roots:
    if cid in used:
      continue
    cat = categories.pop(cid)
    problems.append(records.Problem(
        file=cat["file"], kind="warning", counts_as_input=False,
        item=f"category {cid} ({cat['name']!r})",
        reason="the supercategory of the other categories, with no"
        " annotation (Roboflow's root category): not a class"))


def _report_unnamed_keypoints(cid, cat, problems) -> None:
  """A warning for a category whose annotations carry keypoints it names
  none of, or differing numbers of them: they are kept, unnamed."""
  counts = cat["counts"]
  if not counts or (cat["keypoints"] and len(counts) == 1):
    return
  found = ", ".join(f"{k} keypoints in {n} annotation(s)"
                    for k, n in sorted(counts.items()))
  if not cat["keypoints"]:
    reason = (f"lists no keypoint names, but its annotations carry keypoints"
              f" ({found}): kept, their names unknown (no keypoint_names for"
              " this class)")
  else:
    reason = f"its annotations carry different numbers of keypoints ({found})"
  if len(counts) > 1:
    reason += ("; objects with fewer are padded with keypoints that are not"
               " labelled (v=0)")
  problems.append(records.Problem(
      file=cat["file"], kind="warning", counts_as_input=False,
      item=f"category {cid} ({cat['name']!r})", reason=reason))


def _skeleton(links, num_keypoints: int) -> list[list[int]]:
  """COCO `categories[].skeleton`: [a, b] links, keypoints numbered from 1
  to `num_keypoints`. Raises `FieldError`, noting a skeleton that looks
  numbered from 0."""
  out = []
  for link in annotated.array(links, "skeleton"):
    pair = annotated.array(link, "skeleton[]")
    if len(pair) != 2:
      raise annotated.FieldError(f"skeleton link {link!r} is not a pair [a, b]")
    out.append([annotated.integer(v, "skeleton[]") for v in pair])
  for a, b in out:
    if not (1 <= a <= num_keypoints and 1 <= b <= num_keypoints):
      ends = [v for link in out for v in link]
      hint = (" (it looks numbered from 0; COCO numbers keypoints from 1)"
              if min(ends) == 0 else "")
      raise annotated.FieldError(
          f"skeleton link {[a, b]} names a keypoint outside 1..{num_keypoints}"
          f"{hint}")
  return out


def _same(a: records.ObjectRecord, b: records.ObjectRecord, store) -> bool:
  """Equal objects, segmentations compared by content, not offset."""
  if (a.segmentation < 0) != (b.segmentation < 0):
    return False
  if a.segmentation >= 0 and store.get(a.segmentation) != store.get(
      b.segmentation):
    return False
  return dataclasses.replace(a, segmentation=-1) == dataclasses.replace(
      b, segmentation=-1)


def _read_group(paths, file_split, root, options, categories, classes,
                problems, store):
  """The records of one split's files, merged by image id and annotation id.

  Held while the files are read, for 200k images and 800k objects: the
  images as packed rows (~0.2 KB each), the objects in a temporary file
  (`records.SpillFile`) with two numbers each in memory (image, offset),
  grouped by image once every file is read (the whole scan +110 MB,
  measured, instead of +780 MB as Python objects).
  """
  index: dict[str, int] = {}  # image id -> its row.
  rows: list[bytes] = []  # Packed (iid, file_name, width, height, extra, file).
  for path in paths:
    for n, image in enumerate(_items(path, "images")):
      where = f"images[{n}]"
      try:
        image = annotated.mapping(image, where)
        iid = annotated.identifier(image.get("id"), f"{where}.id")
      except annotated.FieldError as e:
        problems.append(annotated.input_problem(
            path, str(e), split=file_split or "", item=where))
        continue
      known = index.get(iid)
      if known is not None:
        _, file_name, _, _, _, known_file = pickle.loads(rows[known])
        if file_name != image.get("file_name"):
          problems.append(annotated.input_problem(
              path, f"image id {iid} is {image.get('file_name')!r} here but"
              f" {file_name!r} in {known_file}: the second is not"
              " used", split=file_split or "", item=f"image {iid}"))
        continue
      extra = {k: v for k, v in image.items() if k not in _IMAGE_FIELDS}
      index[iid] = len(rows)
      rows.append(pickle.dumps(
          (iid, image.get("file_name"), image.get("width"), image.get("height"),
           json.dumps(extra, sort_keys=True, ensure_ascii=False)
           if extra else "", path), protocol=pickle.HIGHEST_PROTOCOL))

  spill = records.SpillFile("my_images_objects_")
  of_image = array.array("i")  # Per annotation kept: its image's row,
  offsets = array.array("q")  # and its (key, file, where, object) in `spill`.
  unknown_fields: dict[str, set] = collections.defaultdict(set)
  segmentations = collections.Counter()  # Per file: objects with one.
  without = collections.Counter()  # Per file: objects without one.
  for path in paths:
    for n, ann in enumerate(_items(path, "annotations")):
      item = f"annotations[{n}]"
      try:
        ann = annotated.mapping(ann, item)
        if "id" in ann:
          item = f"object {annotated.identifier(ann['id'], item + '.id')}"
        iid = annotated.identifier(ann.get("image_id"), "image_id")
      except annotated.FieldError as e:
        problems.append(annotated.annotation_problem(
            path, f"{e}: annotation not used", split=file_split or "",
            item=item))
        continue
      unknown_fields[path].update(k for k in ann if k not in _ANNOTATION_FIELDS)
      row = index.get(iid)
      if row is None:
        problems.append(annotated.annotation_problem(
            path, f"image_id {iid} is not among the images: annotation not"
            " used", split=file_split or "", item=item))
        continue
      where = f"{pickle.loads(rows[row])[1]}: {item}"
      try:
        obj = _object(ann, categories, classes, store)
      except masks.MaskError as e:
        problems.append(annotated.annotation_problem(
            path, f"{e}: object not written", split=file_split or "",
            item=where))
        continue
      except annotated.FieldError as e:
        problems.append(annotated.annotation_problem(
            path, f"{e}: object not written", split=file_split or "",
            item=where))
        continue
      if obj.segmentation >= 0:
        segmentations[path] += 1
      else:
        without[path] += 1
      of_image.append(row)
      offsets.append(spill.add(pickle.dumps(
          (obj.id or item, path, where, records.pack_object(obj)),
          protocol=pickle.HIGHEST_PROTOCOL)))
  for path in segmentations:
    if without[path]:
      problems.append(records.Problem(
          file=path, kind="warning", counts_as_input=False,
          reason=f"{without[path]} of {without[path] + segmentations[path]}"
          " annotations have no segmentation: their masks are stored empty"
          " (all 0)"))
  for path, names in unknown_fields.items():
    if names:
      problems.append(records.Problem(
          file=path, kind="warning", counts_as_input=False,
          reason="annotation fields that are not stored: "
          + ", ".join(sorted(names))))

  # The annotations of each image, in the order they were read.
  spill.finish()
  rows_of = np.array(of_image, dtype=np.int32)
  by_image = np.argsort(rows_of, kind="stable")
  counts = np.bincount(rows_of, minlength=len(rows))
  ends = np.cumsum(counts)
  for i, packed in enumerate(rows):
    iid, file_name, width, height, extra, path = pickle.loads(packed)
    folder = _image_folder(path)
    bases = [os.path.join(root, folder), os.path.join(root, "images", folder),
             os.path.join(root, "images"), os.path.dirname(path), root]
    split = file_split or ""
    try:
      abs_path, rel = annotated.resolve_image(file_name, bases, root)
      split = annotated.assign_split(file_split, rel, options)
    except (annotated.FieldError, annotated.PathError) as e:
      problems.append(annotated.input_problem(
          path, str(e), split=split, item=f"image {iid}"))
      continue
    size = annotated.declared_size(width, height, path, f"image {iid}", split,
                                   problems)
    first = int(ends[i] - counts[i])
    objs = _merge((pickle.loads(spill.get(offsets[j]))
                   for j in by_image[first:int(ends[i])]),
                  store, problems, file_split or "")
    yield records.ImageRecord(
        key=rel, path=abs_path, file_name=rel, split=split, source=path,
        id=str(iid), objects=objs, coords="pixel", size=size,
        segmentation_file=store.path if any(
            o.segmentation >= 0 for o in objs) else "",
        extra=extra)


def _merge(annotations, store, problems, split) -> tuple:
  """One image's objects from its annotations (key, file, where, packed
  object), in the order read: one object per key. `person_keypoints_*`
  repeats an `instances_*` annotation with keypoints (they are taken, with
  the segmentation of either); the same key with other values is reported
  and the second is not used."""
  objects: dict[str, records.ObjectRecord] = {}
  for key, path, where, packed in annotations:
    obj = records.unpack_object(packed)
    known = objects.get(key)
    if known is None:
      objects[key] = obj
    elif obj.keypoints and not known.keypoints:
      if obj.segmentation < 0 and known.segmentation >= 0:
        obj = dataclasses.replace(obj, segmentation=known.segmentation)
      objects[key] = obj
    elif known.keypoints or not _same(obj, known, store):
      if known.keypoints and not obj.keypoints:
        continue  # The same annotation without keypoints: nothing new.
      problems.append(annotated.annotation_problem(
          path, "annotation id appears twice with different values: the"
          " second is not used", split=split, item=where))
  return tuple(objects.values())


def _object(ann, categories, classes, store) -> records.ObjectRecord:
  """One COCO annotation as an object (pixel coordinates); its segmentation,
  checked, goes to `store`. Raises `FieldError` or `masks.MaskError`."""
  blob = masks.parse_coco(ann.get("segmentation"))
  cid = annotated.integer(ann.get("category_id"), "category_id")
  if cid not in categories:
    raise annotated.FieldError(
        f"category_id {cid} is not among the categories"
        f" {sorted(categories)}")
  label, name = classes.resolve(None, categories[cid]["name"],
                                f"category {cid}")
  box = None
  if ann.get("bbox") is not None:
    box = annotated.xywh_box(ann["bbox"])
  area = annotated.number(ann.get("area"), "area", allow_none=True)
  if area is not None and area < 0:
    raise annotated.FieldError(f"area is {area}: negative")
  crowd = ann.get("iscrowd", 0)
  if crowd not in (0, 1) or isinstance(crowd, float):
    raise annotated.FieldError(f"iscrowd must be 0 or 1, got {crowd!r}")
  keypoints = ()
  if ann.get("keypoints") is not None:
    keypoints = _keypoints(ann, categories[cid]["keypoints"])
    if keypoints:
      categories[cid]["counts"][len(keypoints)] += 1
  score = annotated.number(ann.get("score"), "score", allow_none=True)
  oid = annotated.identifier(ann["id"], "id") if "id" in ann else ""
  return records.ObjectRecord(
      box=box, label=label, text=name,
      score=-1.0 if score is None else score,
      area=-1.0 if area is None else area,
      id=oid, is_crowd=bool(crowd), keypoints=keypoints,
      segmentation=-1 if blob is None else store.add(blob))


def _keypoints(ann, names) -> tuple[records.Keypoint, ...]:
  flat = annotated.array(ann["keypoints"], "keypoints")
  if len(flat) % 3:
    raise annotated.FieldError(
        f"keypoints has {len(flat)} numbers: expected x, y, v triples")
  if names and len(flat) != 3 * len(names):
    raise annotated.FieldError(
        f"keypoints has {len(flat) // 3} triples, but the category names"
        f" {len(names)} keypoints")
  out = []
  for i in range(0, len(flat), 3):
    k = i // 3
    v = annotated.integer(flat[i + 2], f"keypoints[{i + 2}] (v of keypoint {k})")
    if v not in (0, 1, 2):
      raise annotated.FieldError(
          f"keypoints[{i + 2}] is {v}: visibility must be 0, 1 or 2")
    out.append(records.Keypoint(
        x=annotated.number(flat[i], f"keypoints[{i}] (x of keypoint {k})"),
        y=annotated.number(flat[i + 1], f"keypoints[{i + 1}] (y of keypoint {k})"),
        v=v))
  if ann.get("num_keypoints") is not None:
    labelled = sum(1 for kp in out if kp.v > 0)
    num = annotated.integer(ann["num_keypoints"], "num_keypoints")
    if num != labelled:
      raise annotated.FieldError(
          f"num_keypoints is {num}, but {labelled} keypoints have v > 0")
  return tuple(out)
