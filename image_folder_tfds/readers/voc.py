"""Pascal VOC: `Annotations/*.xml`, `JPEGImages/`, `ImageSets/Main/<split>.txt`.

The splits come from `ImageSets/Main/train.txt`, `val.txt` and `test.txt`
(`trainval.txt` is read as train when neither train.txt nor val.txt exists);
without `ImageSets/Main`, each image gets a stable hash split. An image is
`JPEGImages/<filename>` (the XML's `<filename>`, else `<xml name>.jpg`).

Box corners are pixel coordinates taken as written and divided by the image
size, as TFDS's own `voc` dataset and the TF Object Detection API do. Object
fields without a feature of their own (`pose`, `truncated`, `difficult`,
`occluded`, `part`, ...) and the image's other fields (`folder`, `source`,
`segmented`, ...) are kept in `extra` as JSON.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "voc"
_COORDS = ("xmin", "ymin", "xmax", "ymax")


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Likely: an `Annotations/` folder holding `.xml` files."""
  if options.annotations:
    return None
  folder = os.path.join(root, "Annotations")
  try:
    xml = next((n for n in sorted(os.listdir(folder))
                if n.lower().endswith(".xml") and not common.is_hidden(n)),
               None)
  except OSError:
    return None
  if xml is None:
    return None
  return common.Claim(NAME, common.LIKELY,
                      (os.path.join("Annotations", xml),))


def _split_lists(root: str, problems) -> dict[str, list[str]] | None:
  """{split: [image ids]} from ImageSets/Main, or None when there is none."""
  folder = os.path.join(root, "ImageSets", "Main")
  if not os.path.isdir(folder):
    return None
  files = {}
  for name in sorted(os.listdir(folder)):
    stem, ext = os.path.splitext(name)
    if ext == ".txt" and stem in ("train", "val", "test", "trainval"):
      files[stem] = os.path.join(folder, name)
  if "trainval" in files and ("train" in files or "val" in files):
    del files["trainval"]  # The union of train and val.
  out = {}
  for stem, path in files.items():
    split = "train" if stem == "trainval" else splits_lib.canonical_split(stem)
    ids = []
    with open(path, encoding="utf-8") as f:
      for line in f:
        if line.strip():
          ids.append(line.split()[0])
    out[split] = (path, ids)
  if not out:
    problems.append(records.Problem(
        file=folder, kind="warning", counts_as_input=False,
        reason="no train.txt, val.txt, test.txt or trainval.txt: images get"
        " hash splits"))
    return None
  return out


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  ann_dir = os.path.join(root, "Annotations")
  if not os.path.isdir(ann_dir):
    raise records.InputError(f"{ann_dir}: no Annotations folder (Pascal VOC)")
  problems: list[records.Problem] = []
  xml_files = {os.path.splitext(n)[0]: os.path.join(ann_dir, n)
               for n in sorted(os.listdir(ann_dir))
               if n.lower().endswith(".xml") and not common.is_hidden(n)}
  lists = _split_lists(root, problems)
  todo: list[tuple[str | None, str, str]] = []  # (split, xml path, source)
  if lists is None:
    todo = [(None, p, p) for p in xml_files.values()]
  else:
    listed = set()
    for split, (list_path, ids) in lists.items():
      for image_id in ids:
        listed.add(image_id)
        path = xml_files.get(image_id)
        if path is None:
          problems.append(annotated.input_problem(
              list_path, f"listed image id {image_id!r} has no"
              f" Annotations/{image_id}.xml", split=split, item=image_id))
          continue
        todo.append((split, path, path))
    unlisted = sorted(set(xml_files) - listed)
    if unlisted:
      problems.append(records.Problem(
          file=os.path.join(root, "ImageSets", "Main"), kind="warning",
          counts_as_input=False,
          reason=f"{len(unlisted)} annotation file(s) are in no split list"
          f" and are not used, first: Annotations/{unlisted[0]}.xml"))

  classes = annotated.classes_for(root, options)
  drafts = []
  for split, path, source in todo:
    try:
      rec = _record(path, split, root, options, problems)
    except (annotated.FieldError, annotated.PathError) as e:
      problems.append(annotated.input_problem(
          source, str(e), split=split or ""))
      continue
    annotated.observe_labels(classes, rec)
    drafts.append(rec)
  classes.finish()
  recs = annotated.resolve_labels(drafts, classes, problems)
  return common.ScanResult(
      layout="voc: Annotations/*.xml, JPEGImages/", class_names=classes.names,
      records=recs, problems=problems)


def _to_json(elem: ET.Element):
  """An XML element as JSON: text for a leaf, else a dict of its children
  (lists where a tag repeats)."""
  children = list(elem)
  if not children:
    return (elem.text or "").strip()
  out: dict = {}
  for child in children:
    value = _to_json(child)
    if child.tag in out:
      if not isinstance(out[child.tag], list):
        out[child.tag] = [out[child.tag]]
      out[child.tag].append(value)
    else:
      out[child.tag] = value
  return out


def _number(elem, field) -> float:
  if elem is None or elem.text is None or not elem.text.strip():
    raise annotated.FieldError(f"{field} is missing")
  try:
    value = float(elem.text)
  except ValueError:
    raise annotated.FieldError(
        f"{field} must be a number, got {elem.text.strip()!r}") from None
  return annotated.number(value, field)


def _record(path, split, root, options, problems) -> records.ImageRecord:
  try:
    tree = ET.parse(path)
  except (ET.ParseError, OSError) as e:
    raise annotated.FieldError(f"not a readable XML file: {e}") from None
  top = tree.getroot()
  if top.tag != "annotation":
    raise annotated.FieldError(
        f"root element is <{top.tag}>, expected <annotation>")
  stem = os.path.splitext(os.path.basename(path))[0]
  name = (top.findtext("filename") or "").strip() or f"{stem}.jpg"
  abs_path, rel = annotated.resolve_image(
      name, [os.path.join(root, "JPEGImages")], root)
  split = annotated.assign_split(split, rel, options)
  size = None
  if top.find("size") is not None:
    try:
      size = (int(_number(top.find("size/width"), "size/width")),
              int(_number(top.find("size/height"), "size/height")))
    except annotated.FieldError as e:  # Only used to warn of a mismatch.
      problems.append(records.Problem(
          file=path, kind="warning", counts_as_input=False, split=split,
          reason=f"{e}: <size> not checked against the image"))
  extra = {}
  for child in top:
    if child.tag not in ("filename", "size", "object"):
      extra[child.tag] = _to_json(child)
  objects, object_extra = [], {}
  for i, obj in enumerate(top.findall("object")):
    obj_id = str(i)
    try:
      objects.append(_object(obj, obj_id))
    except annotated.FieldError as e:
      problems.append(annotated.annotation_problem(
          path, f"{e}: object not written", split=split,
          item=f"{rel}: object {obj_id}"))
      continue
    rest = {c.tag: _to_json(c) for c in obj if c.tag not in ("name", "bndbox")}
    if rest:
      object_extra[obj_id] = rest
  if object_extra:
    extra["objects"] = object_extra
  return records.ImageRecord(
      key=rel, path=abs_path, file_name=rel, split=split, source=path,
      id=stem, objects=tuple(objects), coords="pixel", size=size,
      extra=json.dumps(extra, sort_keys=True, ensure_ascii=False)
      if extra else "")


def _object(obj: ET.Element, obj_id: str) -> records.ObjectRecord:
  name = (obj.findtext("name") or "").strip()
  if not name:
    raise annotated.FieldError("object has no <name>")
  box = None
  bndbox = obj.find("bndbox")
  if bndbox is not None:
    box = tuple(_number(bndbox.find(c), f"bndbox/{c}") for c in _COORDS)
  return records.ObjectRecord(box=box, text=name, id=obj_id)
