"""Pascal VOC: one XML file per image, in either of two layouts.

* **The VOC devkit's**: `Annotations/*.xml`, `JPEGImages/`,
  `ImageSets/Main/<split>.txt`. The splits come from `train.txt`, `val.txt`
  and `test.txt` (`trainval.txt` is read as train when neither train.txt nor
  val.txt exists); without `ImageSets/Main`, each image gets a stable hash
  split. An image is `JPEGImages/<filename>` (the XML's `<filename>`, else
  `<xml name>.jpg`). An image id listed in a split without an XML (VOC 2012's
  test set has none) is an image without objects, `JPEGImages/<id>.jpg`, as
  TFDS's own `voc` dataset keeps it.
* **An XML beside each image** (`a.jpg` + `a.xml`): Roboflow's "Pascal VOC
  XML" export (split folders `train/`, `valid/`, `test/`) and labelImg's
  default output (one folder). The image of an XML is the image beside it
  with the same name (labelImg once wrote `<filename>` without its
  extension, so the name, not `<filename>`, pairs them); an XML without one
  names its image with `<filename>`, in its folder. Found at the top or in
  split folders; read in every folder below. The split is the top folder's
  name when that is a split name, else a stable hash. An image without an
  XML beside it is kept without objects.

Box corners are pixel coordinates taken as written and divided by the image
size, as TFDS's own `voc` dataset and the TF Object Detection API do. Object
fields without a feature of their own (`pose`, `truncated`, `difficult`,
`occluded`, `part`, ...) and the image's other fields (`folder`, `path`,
`source`, `segmented`, ...) are kept in `extra` as JSON.

The XML comes from users' files, so it is parsed with `defusedxml`: a file
that declares entities (the "billion laughs" expansion) or refers to
external ones is refused, never expanded.

The records (drafts, then with their labels resolved) are kept packed in
temporary files (`records.PackedRecords`): as objects, 200k images of 4
boxes held +806 MB above a class-folder scan (bench/reader_scale.py).
"""

from __future__ import annotations

import collections
import json
import os
import xml.etree.ElementTree as ET

import defusedxml
from defusedxml import ElementTree as SafeET

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "voc"
_COORDS = ("xmin", "ymin", "xmax", "ymax")
# The XML files beside images whose root element `claim` reads: enough to
# tell VOC from another XML, few enough to stay cheap on a big folder.
_CHECKED = 3


# --- Detection ---------------------------------------------------------------


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Likely: the devkit's `Annotations/` holding `.xml` files (or
  `JPEGImages/` with split lists in `ImageSets/Main/`), or `.xml` files
  beside images of the same name, at the top (labelImg) or in split folders
  (Roboflow's `train/`, `valid/`, `test/`), whose root element is
  `<annotation>` (the first few are read) and that annotate at least half
  of the images there. A class folder holding an XML is not claimed:
  `folders` then refuses it, naming `layout: "voc"`, which reads XMLs
  beside images in any folder.
  """
  if options.annotations:
    return None
  xml = _first_xml(os.path.join(root, "Annotations"))
  if xml is not None:
    return common.Claim(NAME, common.LIKELY,
                        (os.path.join("Annotations", xml),))
  lists = _list_files(root)
  if lists and os.path.isdir(os.path.join(root, "JPEGImages")):
    return common.Claim(NAME, common.LIKELY, tuple(
        os.path.relpath(p, root) for p in lists.values()))
  pairs, num_images = _pairs_near_top(root)
  if not pairs or 2 * len(pairs) < num_images:
    return None
  checked = pairs[:_CHECKED]
  tags = [_root_tag(os.path.join(root, rel)) for rel in checked]
  if "annotation" in tags and all(t in (None, "annotation") for t in tags):
    return common.Claim(NAME, common.LIKELY, tuple(checked))
  return None


def _first_xml(folder: str) -> str | None:
  try:
    return next((n for n in sorted(os.listdir(folder))
                 if n.lower().endswith(".xml") and not common.is_hidden(n)),
                None)
  except OSError:
    return None


def _pairs_near_top(root: str) -> tuple[list[str], int]:
  """(the `.xml` files named like an image beside them, relative to root;
  the number of images) in `root` and in its split folders (`train/`,
  `valid/`, `test/`, ...). Class folders are not listed: a million images
  there would cost a second walk of the folder."""
  pairs, num_images = [], 0
  try:
    folders = [""] + sorted(
        e.name for e in os.scandir(root)
        if not common.is_hidden(e.name) and e.is_dir()
        and splits_lib.canonical_split(e.name))
  except OSError:
    return [], 0
  listed = []
  for folder in folders:
    try:
      listed.append((folder, os.listdir(os.path.join(root, folder))))
    except OSError:
      continue
  # Split folders of class folders hold no XML: one search of the joined
  # names says so, without looking at each name.
  if not any(".xml\n" in ("\n".join(names) + "\n").lower()
             for _, names in listed):
    return [], 0
  for folder, names in listed:
    names = sorted(n for n in names if not common.is_hidden(n))
    images = [n for n in names if common.is_image_name(n)]
    stems = {os.path.splitext(n)[0] for n in images}
    num_images += len(images)
    pairs.extend(os.path.join(folder, n) for n in names
                 if n.lower().endswith(".xml")
                 and os.path.splitext(n)[0] in stems)
  return pairs, num_images


def _root_tag(path: str) -> str | None:
  """The root element's tag, read from the start of the file; None for a
  file that is not XML or that `defusedxml` refuses."""
  try:
    with open(path, "rb") as f:
      for _, elem in SafeET.iterparse(f, events=("start",)):
        return elem.tag
  except (ET.ParseError, defusedxml.DefusedXmlException, OSError):
    return None
  return None


# --- Reading -----------------------------------------------------------------


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  problems: list[records.Problem] = []
  classes = annotated.classes_for(root, options)
  devkit = os.path.isdir(os.path.join(root, "Annotations")) or (
      _list_files(root) and os.path.isdir(os.path.join(root, "JPEGImages")))
  if devkit:
    layout = "voc: Annotations/*.xml, JPEGImages/"
    drafts = _read_devkit(root, options, classes, problems)
  else:
    layout = "voc: an .xml beside each image"
    drafts = _read_beside(root, options, classes, problems)
  classes.finish()
  recs = annotated.resolve_labels(drafts, classes, problems,
                                  out=records.PackedRecords())
  return common.ScanResult(
      layout=layout, class_names=classes.names, records=recs,
      problems=problems)


def _list_files(root: str) -> dict[str, str]:
  """{list name: path} of `ImageSets/Main/{train,val,test,trainval}.txt`."""
  folder = os.path.join(root, "ImageSets", "Main")
  try:
    names = sorted(os.listdir(folder))
  except OSError:
    return {}
  out = {}
  for name in names:
    stem, ext = os.path.splitext(name)
    if ext == ".txt" and stem in ("train", "val", "test", "trainval"):
      out[stem] = os.path.join(folder, name)
  return out


def _split_lists(root: str, problems) -> dict[str, tuple[str, list]] | None:
  """{split: (list file, [(line number, image id)])} from ImageSets/Main,
  or None when there is none."""
  folder = os.path.join(root, "ImageSets", "Main")
  if not os.path.isdir(folder):
    return None
  files = _list_files(root)
  if "trainval" in files and ("train" in files or "val" in files):
    del files["trainval"]  # The union of train and val.
  out = {}
  for stem, path in files.items():
    split = "train" if stem == "trainval" else splits_lib.canonical_split(stem)
    ids = []
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, start=1):
        if line.strip():
          ids.append((number, line.split()[0]))
    out[split] = (path, ids)
  if not out:
    problems.append(records.Problem(
        file=folder, kind="warning", counts_as_input=False,
        reason="no train.txt, val.txt, test.txt or trainval.txt: images get"
        " hash splits"))
    return None
  return out


def _read_devkit(root, options, classes, problems) -> records.PackedRecords:
  """The devkit layout: `Annotations/`, `JPEGImages/`, `ImageSets/Main/`."""
  ann_dir = os.path.join(root, "Annotations")
  jpeg_dir = os.path.join(root, "JPEGImages")
  names = sorted(os.listdir(ann_dir)) if os.path.isdir(ann_dir) else []
  xml_files = {os.path.splitext(n)[0]: os.path.join(ann_dir, n) for n in names
               if n.lower().endswith(".xml") and not common.is_hidden(n)}

  def locate(top, stem):
    name = (top.findtext("filename") or "").strip() or f"{stem}.jpg"
    return annotated.resolve_image(name, [jpeg_dir], root)

  lists = _split_lists(root, problems)
  drafts = records.PackedRecords()  # ~0.5 KB an image on disk, 24 B here.
  if lists is None:
    for path in xml_files.values():
      _add(drafts, path, None, root, options, classes, problems, locate)
    return drafts
  listed = set()
  for split, (list_path, ids) in lists.items():
    without_xml = []
    for number, image_id in ids:
      listed.add(image_id)
      path = xml_files.get(image_id)
      if path is not None:
        _add(drafts, path, split, root, options, classes, problems, locate)
        continue
      # No XML (VOC 2012's test set): an image without objects, as TFDS's
      # `voc` dataset reads it.
      try:
        abs_path, rel = annotated.resolve_image(
            f"{image_id}.jpg", [jpeg_dir], root)
      except annotated.PathError as e:
        problems.append(annotated.input_problem(
            list_path, f"listed image id {image_id!r} has no"
            f" Annotations/{image_id}.xml, and its image is missing: {e}",
            split=split, item=f"line {number}: {image_id}"))
        continue
      without_xml.append(rel)
      drafts.append(records.ImageRecord(
          key=rel, path=abs_path, file_name=rel, split=split,
          source=list_path, id=image_id, coords="pixel"))
    if without_xml:
      problems.append(records.Problem(
          file=list_path, kind="warning", counts_as_input=False, split=split,
          reason=f"{len(without_xml)} listed image(s) have no XML in"
          " Annotations/: kept without objects (as a VOC 2012 test set is),"
          f" first: {without_xml[0]}"))
  unlisted = sorted(set(xml_files) - listed)
  if unlisted:
    problems.append(records.Problem(
        file=os.path.join(root, "ImageSets", "Main"), kind="warning",
        counts_as_input=False,
        reason=f"{len(unlisted)} annotation file(s) are in no split list"
        f" and are not used, first: Annotations/{unlisted[0]}.xml"))
  return drafts


def _read_beside(root, options, classes, problems) -> records.PackedRecords:
  """An `.xml` beside each image (Roboflow's export, labelImg), anywhere
  below `root`; the split is the top folder's, when it is a split name."""
  xmls: dict[str, list[str]] = collections.defaultdict(list)  # By folder.
  images: dict[str, list[str]] = collections.defaultdict(list)
  for rel in common.walk_files(root, root, problems, None):
    folder, name = os.path.split(rel)
    if name.lower().endswith(".xml"):
      xmls[folder].append(name)
    elif common.is_image_name(name):
      images[folder].append(name)
  if not xmls:
    raise records.InputError(
        f"{root}: no Pascal VOC annotation found: no Annotations/ folder and"
        " no .xml file beside an image")

  def split_of(folder: str) -> str | None:
    return (splits_lib.canonical_split(folder.split(os.sep, 1)[0])
            if folder else None)

  # Image path -> the XML that annotates it. An image whose XML is refused
  # is not written either: written without objects, it would teach a model
  # that its objects are background.
  taken: dict[str, str] = {}
  drafts = records.PackedRecords()  # ~0.5 KB an image on disk, 24 B here.
  # The XMLs named like an image beside them first, then the others, which
  # name their image with <filename> (and cannot take one already taken).
  for paired in (True, False):
    for folder in sorted(xmls):
      by_stem = collections.defaultdict(list)
      for name in images.get(folder, ()):
        by_stem[os.path.splitext(name)[0]].append(name)
      for name in xmls[folder]:
        stem = os.path.splitext(name)[0]
        if (stem in by_stem) != paired:
          continue
        path = os.path.join(root, folder, name)
        candidates = by_stem.get(stem, [])
        locate = _beside_locator(root, folder, candidates, taken, problems,
                                 path)
        rec = _add(drafts, path, split_of(folder), root, options, classes,
                   problems, locate)
        if rec is not None:
          taken[os.path.normpath(rec.path)] = path
        else:
          for image in candidates:
            image_path = os.path.normpath(os.path.join(root, folder, image))
            taken.setdefault(image_path, path)
  for folder in sorted(images):
    without = []
    for name in images[folder]:
      path = os.path.normpath(os.path.join(root, folder, name))
      if path in taken:
        continue
      rel = os.path.join(folder, name).replace(os.sep, "/")
      without.append(rel)
      drafts.append(records.ImageRecord(
          key=rel, path=path, file_name=rel,
          split=annotated.assign_split(split_of(folder), rel, options),
          source=path, id=os.path.splitext(name)[0], coords="pixel"))
    if without:  # Named by the first: the folder may be the data root.
      problems.append(records.Problem(
          file=os.path.join(root, without[0]), kind="warning",
          counts_as_input=False,
          reason=f"no .xml beside it: kept without objects ({len(without)}"
          f" image(s) in {folder.replace(os.sep, '/') or 'the top folder'}"
          " have none)"))
  return drafts


def _beside_locator(root, folder, candidates, taken, problems, path):
  """How the XML at `path` finds its image: the one image beside it named
  like it (several: the one its <filename> names), else its <filename>."""
  base = os.path.join(root, folder)

  def locate(top, stem):
    given = (top.findtext("filename") or "").strip()
    if candidates:
      if len(candidates) == 1:
        chosen = candidates[0]
      elif given in candidates:
        chosen = given
      else:
        raise annotated.FieldError(
            f"images {candidates} are all named like it, and its <filename>"
            f" {given!r} names none of them")
      abs_path, rel = annotated.resolve_image(chosen, [base], root)
      if given and given not in (chosen, stem):
        problems.append(records.Problem(
            file=path, kind="warning", counts_as_input=False,
            item=rel, reason=f"<filename> is {given!r}, but the image beside"
            f" it named like it is {chosen!r}: {chosen!r} is used"))
      return abs_path, rel
    if not given:
      raise annotated.PathError(
          "no image beside it has its name, and it has no <filename>")
    abs_path, rel = annotated.resolve_image(given, [base], root)
    if os.path.normpath(abs_path) in taken:
      raise annotated.PathError(
          f"its <filename> {given!r} is already the image of"
          f" {taken[os.path.normpath(abs_path)]}: not used")
    return abs_path, rel

  return locate


def _add(drafts, path, split, root, options, classes, problems, locate):
  """The record of the XML at `path` appended to `drafts` (and returned),
  or a problem naming the file."""
  try:
    rec = _record(path, split, options, problems, locate)
  except (annotated.FieldError, annotated.PathError) as e:
    problems.append(annotated.input_problem(path, str(e), split=split or ""))
    return None
  annotated.observe_labels(classes, rec)
  drafts.append(rec)
  return rec


def _parse(path: str) -> ET.Element:
  """The root element of the XML file at `path`, parsed with `defusedxml`."""
  try:
    return SafeET.parse(path).getroot()
  except defusedxml.DefusedXmlException as e:
    raise annotated.FieldError(
        f"not a readable XML file: it declares or refers to entities ({e!r}),"
        " which are refused, not expanded: their expansion (\"billion"
        " laughs\") can take all memory, and VOC annotations need none"
        ) from None
  except (ET.ParseError, OSError) as e:
    raise annotated.FieldError(f"not a readable XML file: {e}") from None


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
  return annotated.number_text(None if elem is None else elem.text, field)


def _record(path, split, options, problems, locate) -> records.ImageRecord:
  top = _parse(path)
  if top.tag != "annotation":
    raise annotated.FieldError(
        f"root element is <{top.tag}>, expected <annotation>")
  stem = os.path.splitext(os.path.basename(path))[0]
  abs_path, rel = locate(top, stem)
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
