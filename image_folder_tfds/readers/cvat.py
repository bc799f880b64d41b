"""CVAT for images 1.1: the `annotations.xml` of a task, job or project export.

    DIR/annotations.xml  DIR/images/<name>            (a task or job export)
    DIR/annotations.xml  DIR/images/<subset>/<name>   (a project export)

This is the layout CVAT's own exporter writes
(`cvat/apps/dataset_manager/formats/cvat.py`): `<annotations>` holds
`<version>`, `<meta>` (the task's, job's or project's `<labels>`, in CVAT's
order, skeleton sublabels after their `<parent>`), then one `<image id name
width height>` per frame (a project's also `subset` and `task_id`) with its
shapes and tags. Coordinates are pixels.

What each element becomes (docs/formats.md, "CVAT"):

* `<box>`: an object with its box; a non-zero `rotation` is stored as the
  axis-aligned box around the rotated one and reported as "changed".
* `<polygon>`: an object whose mask is the polygon (`masks.pack_polygons`,
  decoded by the workers at the image's `width`/`height`), its box the
  polygon's extent. `<mask>` (CVAT's row-major RLE of the box `left`, `top`,
  `width`, `height`) becomes the same kind of mask, as COCO RLE counts.
* `<points>` and `<skeleton>`: keypoints (`outside` -> v 0, `occluded` -> 1,
  else 2); a skeleton's points in the order of its sublabels in `<meta>`,
  whose edges (the `<svg>` of the label) become `ScanResult.skeletons`.
* `<tag>`: the image's `labels`. `<ellipse>`: its bounding box (a warning
  per file says how many). `<polyline>` and `<cuboid>`: reported, not stored.
* Every other XML attribute of a shape (`occluded`, `z_order`, `source`,
  `group_id`, ...) and its `<attribute name=...>` values go to `extra`, per
  object under "objects" (by the object's id: its place among the image's
  elements), as VOC keeps object fields.

The file is untrusted: it is parsed with `defusedxml` (no entities, no
external references) and streamed (`iterparse`), each `<image>` dropped once
read, so a 200k-image file never sits in memory; the records are kept packed
(`records.PackedRecords`) and the masks spilled (`masks.LazyStore`).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import xml.etree.ElementTree as ET

import defusedxml
import defusedxml.ElementTree as DET
import numpy as np

from image_folder_tfds import masks
from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "cvat"
FILE_NAME = "annotations.xml"
ROOT_TAG = "annotations"
# CVAT's subset for a task that has none (datumaro's DEFAULT_SUBSET_NAME).
DEFAULT_SUBSET = "default"
# The XML attributes that the stored features hold, per shape; the others
# are kept in `extra`.
_STORED = {
    "box": {"label", "xtl", "ytl", "xbr", "ybr"},
    "polygon": {"label", "points"},
    "points": {"label", "points"},
    "skeleton": {"label"},
    "mask": {"label", "rle", "left", "top", "width", "height"},
    "ellipse": {"label"},
    "tag": {"label"},
}
_NOT_STORED = {
    "polyline": "a polyline is a line, not a region, box or keypoints: no"
                " feature holds it",
    "cuboid": "a cuboid (two faces of 4 points) has no feature of its own",
}
_IMAGE_STORED = {"id", "name", "width", "height", "subset"}
# A <mask> larger than this (pixels of its box) is refused before it is
# expanded: an image of 16k x 16k.
_MAX_MASK_PIXELS = 1 << 28


# --- Detection ----------------------------------------------------------------------


def root_tag(path: str) -> str | None:
  """The tag of the first element of the XML file `path` (its root), or None
  for a file that is not XML, or that defusedxml refuses, or cannot be read.

  Only the first element is parsed (one 16 KB read, for most files).
  """
  return _root(path)[0]


def _root(path: str) -> tuple[str | None, str]:
  """(root tag or None, why there is none)."""
  try:
    for _, elem in DET.iterparse(path, events=("start",)):
      return elem.tag, ""
  except (ET.ParseError, defusedxml.DefusedXmlException) as e:
    return None, _xml_error(e)
  except (OSError, UnicodeError, ValueError) as e:
    return None, str(e)
  return None, "no element"


def is_cvat_file(path: str) -> bool:
  """Root element `<annotations>`; or named `annotations.xml` and refused by
  defusedxml (entities, external references): read, so that the report says
  why, rather than left to be found by name as an unread annotation file."""
  tag, why = _root(path)
  return tag == ROOT_TAG or (
      os.path.basename(path).lower() == FILE_NAME
      and why.startswith("refused by defusedxml"))


def find_files(root: str, options: common.ReadOptions) -> list[str]:
  """`options.annotations` when it is a CVAT file (`is_cvat_file`), else
  the `.xml` files at the top of `root` that are, `annotations.xml` first.

  An `.xml` named like an image beside it (`a.xml` next to `a.jpg`: a
  per-image annotation, VOC's or LabelImg's) is not opened.
  """
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    return [path] if is_cvat_file(path) else []
  try:
    names = [n for n in common.names(root) if not common.is_hidden(n)]
  except OSError:
    return []
  stems = {os.path.splitext(n)[0] for n in names if common.is_image_name(n)}
  candidates = [n for n in names if n.lower().endswith(".xml")
                and os.path.splitext(n)[0] not in stems]
  candidates.sort(key=lambda n: (n.lower() != FILE_NAME, n))
  return [os.path.join(root, n) for n in candidates
          if os.path.isfile(os.path.join(root, n))
          and is_cvat_file(os.path.join(root, n))]


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: `annotations.xml` (or another `.xml` at the top, or the
  `annotations` option's file) whose root element is `<annotations>`."""
  files = find_files(root, options)
  return common.Claim(NAME, common.CERTAIN, tuple(files)) if files else None


# --- <meta> ---------------------------------------------------------------------------


@dataclasses.dataclass
class Meta:
  """What one file's `<meta>` says."""

  labels: list[str] | None = None  # Top-level labels; None: no <labels>.
  sublabels: dict[str, list[str]] = dataclasses.field(default_factory=dict)
  edges: dict[str, list[list[int]]] = dataclasses.field(default_factory=dict)
  subset: str = ""  # A task's or job's subset (its images have none).


def read_meta(path: str, problems: list[records.Problem]) -> Meta:
  """The `<meta>` of `path` (read up to its end, or the first `<image>`).

  Raises `records.InputError` for labels CVAT cannot have made (a name
  given twice, a label without a name), since the class ids depend on them.
  """
  meta_elem = None
  depth = 0
  for event, elem in DET.iterparse(path, events=("start", "end")):
    if event == "start":
      depth += 1
      if depth == 2 and elem.tag in ("image", "track"):
        break
      continue
    depth -= 1
    if depth == 1 and elem.tag == "meta":
      meta_elem = elem
      break
  meta = Meta()
  if meta_elem is None:
    return meta
  labels_elem = None
  for top in meta_elem:  # <task>, <job> or <project>.
    if top.tag in ("task", "job", "project"):
      if top.find("labels") is not None and labels_elem is None:
        labels_elem = top.find("labels")
      if top.tag in ("task", "job"):
        meta.subset = (top.findtext("subset") or "").strip()
  if labels_elem is None:
    return meta
  labels: list[str] = []
  svgs: dict[str, ET.Element] = {}
  for n, label in enumerate(labels_elem.findall("label")):
    name = label.findtext("name")
    if not name:
      raise records.InputError(
          f"{path}: <meta> label #{n} has no <name>: the class names cannot"
          " be known")
    parent = label.findtext("parent") or ""
    if parent:
      meta.sublabels.setdefault(parent, []).append(name)
      continue
    if name in labels:
      raise records.InputError(
          f"{path}: <meta> lists the label {name!r} twice; class names must"
          " be unique")
    labels.append(name)
    svg = label.find("svg")
    if svg is not None:
      svgs[name] = svg
  meta.labels = labels
  for name, svg in svgs.items():
    edges = _edges(svg, meta.sublabels.get(name, []), path, name, problems)
    if edges:
      meta.edges[name] = edges
  return meta


def _edges(svg: ET.Element, names: list[str], path: str, label: str,
           problems: list[records.Problem]) -> list[list[int]]:
  """A skeleton's edges, [a, b] keypoint numbers from 1 in `names` order.

  CVAT keeps the skeleton's drawing as SVG markup, the text of `<svg>`:
  `<circle data-node-id=... data-label-name=...>` per point and
  `<line data-node-from=... data-node-to=...>` per edge.
  """
  if len(svg):
    items = list(svg)
  else:
    try:
      items = list(DET.fromstring(f"<svg>{svg.text or ''}</svg>"))
    except (ET.ParseError, defusedxml.DefusedXmlException) as e:
      problems.append(records.Problem(
          file=path, kind="warning", counts_as_input=False,
          item=f"<meta> label {label!r}",
          reason=f"its <svg> is not readable ({e}): the skeleton's edges are"
          " not stored"))
      return []
  node_names = {c.get("data-node-id"): c.get("data-label-name")
                for c in items if c.tag == "circle"}
  edges = []
  for line in (e for e in items if e.tag == "line"):
    ends = [node_names.get(line.get(k)) for k in ("data-node-from",
                                                  "data-node-to")]
    if not all(e in names for e in ends):
      problems.append(records.Problem(
          file=path, kind="warning", counts_as_input=False,
          item=f"<meta> label {label!r}",
          reason=f"an edge of its <svg> joins nodes {line.get('data-node-from')!r}"
          f" and {line.get('data-node-to')!r}, which are not both among its"
          f" sublabels {names}: the edge is not stored"))
      continue
    edges.append([names.index(ends[0]) + 1, names.index(ends[1]) + 1])
  return edges


def _labels_used(path: str) -> list[str]:
  """The labels of the shapes and tags of `path` (for a file without
  `<labels>` in its `<meta>`), in order of appearance."""
  seen = {}
  depth = 0
  for event, elem in DET.iterparse(path, events=("start", "end")):
    if event == "start":
      depth += 1
      if depth == 1:
        top = elem
      continue
    depth -= 1
    if depth == 2 and elem.get("label") is not None:  # image > shape.
      seen.setdefault(elem.get("label"), None)
    if depth == 1:
      top.clear()
  return list(seen)


# --- Reading ------------------------------------------------------------------------


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  files = find_files(root, options)
  if not files:
    path = (annotated.annotation_path(root, options.annotations)
            if options.annotations else os.path.join(root, FILE_NAME))
    tag, why = _root(path) if os.path.isfile(path) else (None, "")
    if tag is not None:
      why = f"its root element is <{tag}>, not <{ROOT_TAG}>"
    raise records.InputError(
        f"{path}: not a CVAT for images XML file ({why})" if why else
        f"{root}: no CVAT for images XML file ({FILE_NAME}, or an .xml file"
        " at the top whose root element is <annotations>)")
  problems: list[records.Problem] = []
  metas = []
  for path in files:
    try:
      metas.append(read_meta(path, problems))
    except (ET.ParseError, defusedxml.DefusedXmlException) as e:
      problems.append(annotated.input_problem(
          path, f"not a readable XML file: {_xml_error(e)}: not read"))
      metas.append(None)
  readable = [(p, m) for p, m in zip(files, metas) if m is not None]

  labels_file = common.read_labels_file(root, options.labels_file)
  declared = [m.labels for _, m in readable if m.labels is not None]
  if labels_file is not None:
    names, source = labels_file.names, labels_file.path
  elif declared:
    names = list(dict.fromkeys(n for labels in declared for n in labels))
    source = "the labels of <meta>"
  else:
    names = sorted({n for p, _ in readable for n in _labels_used(p)})
    source = "the labels used"
    if readable:
      problems.append(records.Problem(
          file=readable[0][0], kind="warning", counts_as_input=False,
          reason="no <labels> in <meta>: the class names are the labels of"
          " the shapes and tags, sorted (a labels file fixes them)"))
  sublabels, edges = {}, {}
  for _, meta in readable:
    for label, subs in meta.sublabels.items():
      sublabels.setdefault(label, subs)
    for label, links in meta.edges.items():
      edges.setdefault(label, links)

  recs = records.PackedRecords()
  store = masks.LazyStore()
  images_found = 0
  for path, meta in readable:
    reader = _FileReader(path, root, options, meta, names, source, sublabels,
                         store, problems)
    try:
      for rec in reader.records():
        recs.append(rec)
    except (ET.ParseError, defusedxml.DefusedXmlException) as e:
      problems.append(annotated.input_problem(
          path, f"not a readable XML file: {_xml_error(e)}: the rest of the"
          f" file is not read ({reader.images} <image> element(s) read"
          " before)"))
    reader.summarize(several=len(readable) > 1)
    images_found += reader.images
  recs.extend(())  # Flushes the packed records for the other processes.
  store.finish()
  if not images_found and not any(p.kind == "rejected" for p in problems):
    raise records.InputError(
        f"{', '.join(files)}: no <image> element: nothing to build (a 'CVAT"
        " for video' export keeps its shapes in <track> elements: export"
        " the task as 'CVAT for images 1.1')")
  keypoint_names = {k: v for k, v in sublabels.items() if k in names}
  return common.ScanResult(
      layout="cvat: " + ", ".join(os.path.relpath(f, root) for f in files),
      class_names=list(names), records=recs, problems=problems,
      keypoint_names=keypoint_names,
      skeletons={k: v for k, v in edges.items() if k in keypoint_names})


def _xml_error(e: Exception) -> str:
  """ParseError's text names the line and column; defusedxml's says what
  it refused (entity declarations, external references)."""
  if isinstance(e, defusedxml.DefusedXmlException):
    return f"refused by defusedxml: {e}"
  return str(e)


class _FileReader:
  """The records of one CVAT XML file, streamed `<image>` by `<image>`."""

  def __init__(self, path, root, options, meta, names, source, sublabels,
               store, problems):
    self.path = path
    self.root = root
    self.options = options
    self.meta = meta
    self.names = names  # The class names, in class id order.
    self.index = {n: i for i, n in enumerate(names)}
    self.source = source  # Where the class names come from, for messages.
    self.sublabels = sublabels
    self.store = store
    self.problems = problems
    folder = os.path.dirname(path)
    self.folders = list(dict.fromkeys([folder, root]))
    self.images = 0  # <image> elements seen.
    self._bases_of: dict[str, list[str]] = {}
    self.other_subsets = collections.Counter()
    self.ellipses = 0
    self.first_ellipse = ""
    self.with_mask = 0
    self.without_mask = 0
    self.ignored = collections.Counter()  # Unknown elements of <annotations>.

  def records(self):
    depth = 0
    top = None
    for event, elem in DET.iterparse(self.path, events=("start", "end")):
      if event == "start":
        depth += 1
        if depth == 1:
          top = elem
        continue
      depth -= 1
      if depth != 1:
        continue
      if elem.tag == "image":
        self.images += 1
        rec = self._image(elem)
        if rec is not None:
          yield rec
      elif elem.tag == "track":
        self.problems.append(annotated.annotation_problem(
            self.path, "a 'CVAT for video' <track> is not read (its shapes"
            " belong to frames, not <image>s): export the task as 'CVAT for"
            " images 1.1'", item=f"<track> id={elem.get('id')!r}"
            f" label={elem.get('label')!r}"))
      elif elem.tag not in ("meta", "version"):
        self.ignored[elem.tag] += 1
      top.clear()  # The elements read so far, and the root's list of them.

  def summarize(self, several: bool) -> None:
    """The warnings that sum up the whole file."""
    def warn(reason):
      self.problems.append(records.Problem(
          file=self.path, reason=reason, kind="warning",
          counts_as_input=False))
    if several and not self.images:
      warn("no <image> element: nothing read from this file")
    for subset, count in sorted(self.other_subsets.items()):
      warn(f"subset {subset!r} ({count} image(s)) is not a split name"
           " (Train, Validation, Test, ...): its images get hash splits"
           " (`split_fractions`); the subset is kept in `extra`")
    if self.ellipses:
      warn(f"{self.ellipses} <ellipse> shape(s) stored as their bounding"
           f" boxes (first: {self.first_ellipse}); cx, cy, rx, ry and"
           " rotation are kept in `extra`")
    if self.with_mask and self.without_mask:
      warn(f"{self.without_mask} of {self.with_mask + self.without_mask}"
           " objects have no polygon or mask: their masks are stored empty"
           " (all 0)")
    for tag, count in sorted(self.ignored.items()):
      warn(f"{count} <{tag}> element(s) in <annotations> are not read (not"
           " part of CVAT for images 1.1)")

  # --- One <image> ---

  def _bases(self, subset: str) -> list[str]:
    """The folders an image of `subset` is looked for in, those that
    exist (known once per subset: each missing one would cost a look per
    image)."""
    bases = self._bases_of.get(subset)
    if bases is None:
      bases = []
      for folder in self.folders:
        if subset:
          bases.append(os.path.join(folder, "images", subset))
        bases += [os.path.join(folder, "images"), folder]
      bases = [b for b in dict.fromkeys(bases) if os.path.isdir(b)] or bases
      self._bases_of[subset] = bases
    return bases

  def _image(self, elem: ET.Element) -> records.ImageRecord | None:
    attrs = elem.attrib
    iid = attrs.get("id", "")
    where = f"<image> id={iid}" if iid else f"<image> #{self.images - 1}"
    name = attrs.get("name")
    subset = attrs.get("subset") or self.meta.subset
    split = splits_lib.canonical_split(subset) if subset else None
    if not name:
      self.problems.append(annotated.input_problem(
          self.path, "<image> has no name: its file cannot be found",
          split=split or "", item=where))
      return None
    try:
      abs_path, rel = annotated.resolve_image(name, self._bases(subset),
                                              self.root)
    except annotated.PathError as e:
      self.problems.append(annotated.input_problem(
          self.path, str(e), split=split or "", item=where))
      return None
    extra = {k: v for k, v in attrs.items() if k not in _IMAGE_STORED}
    if split is None and subset and subset != DEFAULT_SUBSET:
      self.other_subsets[subset] += 1
      extra["subset"] = subset
    split = annotated.assign_split(split, rel, self.options)
    size = annotated.declared_size(
        _int_or_text(attrs.get("width")), _int_or_text(attrs.get("height")),
        self.path, f"{rel}: {where}", split, self.problems)
    objects, object_extra, labels, tags = [], {}, [], []
    for k, child in enumerate(elem):
      problem = _Reporter(self.problems, self.path, split, rel, k, child)
      try:
        if child.tag == "tag":
          label = self._label(child, "tag")
          if label not in labels:
            labels.append(label)
          rest = _rest(child, "tag", problem)
          if rest:
            tags.append({"label": child.get("label"), **rest})
          continue
        obj = self._object(child, k, size, problem)
      except (annotated.FieldError, masks.MaskError) as e:
        problem(f"{e}: not written")
        continue
      if obj is None:
        continue
      objects.append(obj)
      rest = _rest(child, child.tag, problem)
      if rest:
        object_extra[obj.id] = rest
    with_mask = sum(1 for o in objects if o.segmentation >= 0)
    self.with_mask += with_mask
    self.without_mask += len(objects) - with_mask
    if object_extra:
      extra["objects"] = object_extra
    if tags:
      extra["tags"] = tags
    return records.ImageRecord(
        key=rel, path=abs_path, file_name=rel, split=split, source=self.path,
        id=iid, objects=tuple(objects), coords="pixel", size=size,
        segmentation_file=self.store.path if with_mask else "",
        labels=tuple(labels), labels_text=tuple(self.names[i] for i in labels),
        extra=json.dumps(extra, sort_keys=True, ensure_ascii=False)
        if extra else "")

  def _label(self, elem: ET.Element, what: str) -> int:
    label = elem.get("label")
    index = self.index.get(label)
    if index is None:
      if not label:
        raise annotated.FieldError(f"<{what}> has no label")
      raise annotated.FieldError(
          f"label {label!r} is not among the classes ({self.source})")
    return index

  def _object(self, elem, k, size, problem) -> records.ObjectRecord | None:
    """The object of one shape element, or None (reported) when its kind
    is not stored. Raises `FieldError` or `masks.MaskError`."""
    tag = elem.tag
    if tag in _NOT_STORED:
      problem(f"{_NOT_STORED[tag]}: not written")
      return None
    if tag not in _STORED:
      problem(f"<{tag}> is not a CVAT for images shape: not read")
      return None
    label = self._label(elem, tag)
    box, keypoints, segmentation = None, (), -1
    if tag == "box":
      box = _numbers(elem, _BOX)
      if elem.get("rotation") is not None:
        rotation = _numbers(elem, ("rotation",))[0]
        if rotation % 360:
          box = _clip(_rotated_extent(box, rotation), size)
          problem(f"box rotated by {rotation:g} degrees: stored as the"
                  " axis-aligned box around it, inside the image (the"
                  " rotation is kept in `extra`)", kind="changed")
    elif tag == "ellipse":
      cx, cy, rx, ry = _numbers(elem, ("cx", "cy", "rx", "ry"))
      rotation = (_numbers(elem, ("rotation",))[0]
                  if elem.get("rotation") is not None else 0.0)
      box = _clip(_ellipse_extent(cx, cy, rx, ry, rotation), size)
      self.ellipses += 1
      self.first_ellipse = self.first_ellipse or problem.item
    elif tag == "polygon":
      flat = _points(elem)
      parts = masks.check_polygons([flat], field="points")
      xs, ys = flat[0::2], flat[1::2]
      box = (min(xs), min(ys), max(xs), max(ys))
      segmentation = self.store.add(masks.pack_polygons(parts))
    elif tag == "mask":
      blob, box = _cvat_mask(elem, size)
      segmentation = self.store.add(blob)
    elif tag == "points":
      flat = _points(elem)
      v = _visibility(elem)
      keypoints = tuple(records.Keypoint(x=flat[i], y=flat[i + 1], v=v)
                        for i in range(0, len(flat), 2))
    else:  # tag == "skeleton"
      keypoints = self._skeleton(elem, problem)
    return records.ObjectRecord(
        box=box, label=label, text=self.names[label], id=str(k),
        keypoints=keypoints, segmentation=segmentation)

  def _skeleton(self, elem, problem) -> tuple[records.Keypoint, ...]:
    names = self.sublabels.get(elem.get("label"))
    if not names:
      raise annotated.FieldError(
          f"skeleton label {elem.get('label')!r} has no sublabels in <meta>:"
          " the order of its points is unknown")
    points: dict[str, records.Keypoint] = {}
    for element in elem:
      if element.tag == "attribute":
        continue
      sub = element.get("label")
      what = f"point {sub!r}"
      if element.tag != "points":
        problem(f"{what}: a skeleton element must be <points>, got"
                f" <{element.tag}>: not written")
        continue
      if sub not in names:
        problem(f"{what} is not among the sublabels {names} of the skeleton"
                " in <meta>: not written")
        continue
      if sub in points:
        problem(f"{what} appears twice: the second is not written")
        continue
      try:
        flat = _points(element)
        if len(flat) != 2:
          raise annotated.FieldError(
              f"points holds {len(flat) // 2} points, a skeleton point one")
      except annotated.FieldError as e:
        problem(f"{what}: {e}: not written")
        continue
      points[sub] = records.Keypoint(x=flat[0], y=flat[1],
                                     v=_visibility(element))
    missing = records.Keypoint(x=0.0, y=0.0, v=0)
    return tuple(points.get(n, missing) for n in names)


class _Reporter:
  """Reports problems of one shape (an annotation of a kept image); its
  `item` names the image and the shape, made only when a problem is."""

  def __init__(self, problems, path, split, rel, k, elem):
    self.problems, self.path, self.split = problems, path, split
    self.rel, self.k, self.elem = rel, k, elem

  @property
  def item(self) -> str:
    return (f"{self.rel}: object {self.k} (<{self.elem.tag}>"
            f" {self.elem.get('label')!r})")

  def __call__(self, reason: str, kind: str = "rejected") -> None:
    self.problems.append(annotated.annotation_problem(
        self.path, reason, split=self.split, item=self.item, kind=kind))


# --- Fields -------------------------------------------------------------------------


def _int_or_text(value):
  """An image's width or height: an int when it is one (for
  `annotated.declared_size`, which reports anything else)."""
  if value is None:
    return None
  try:
    return int(value)
  except ValueError:
    return value


_BOX = ("xtl", "ytl", "xbr", "ybr")


def _numbers(elem, names) -> tuple[float, ...]:
  """The attributes `names` of `elem`, finite numbers. Raises `FieldError`
  naming the first that is missing or not one."""
  try:
    values = tuple(float(elem.get(n)) for n in names)
  except (TypeError, ValueError):
    values = None
  if values is not None and all(map(math.isfinite, values)):
    return values
  for name in names:  # Which one, and why.
    annotated.number_text(elem.get(name), name)
  raise AssertionError(f"{names}: no bad value among {elem.attrib}")


def _points(elem) -> list[float]:
  """`points="x1,y1;x2,y2;..."` as a flat [x1, y1, x2, y2, ...] list."""
  text = elem.get("points")
  if not text or not text.strip():
    raise annotated.FieldError("points is missing or empty")
  out = []
  for pair in text.split(";"):
    xy = pair.split(",")
    try:
      if len(xy) != 2:
        raise ValueError
      x, y = float(xy[0]), float(xy[1])
    except ValueError:
      raise annotated.FieldError(
          f"points: {pair.strip()!r} is not a pair x,y of numbers") from None
    if not (math.isfinite(x) and math.isfinite(y)):
      raise annotated.FieldError(
          f"points: {pair.strip()!r} holds a NaN or infinite value")
    out += (x, y)
  return out


def _visibility(elem) -> int:
  """COCO's v of a CVAT point: outside 0, occluded 1, else 2."""
  if elem.get("outside") == "1":
    return 0
  return 1 if elem.get("occluded") == "1" else 2


def _rest(elem, tag: str, problem) -> dict:
  """What of a shape or tag goes to `extra`: its other XML attributes, as
  written, and its `<attribute name=...>` values (text)."""
  rest = {k: v for k, v in elem.attrib.items() if k not in _STORED[tag]}
  if tag != "tag":
    rest["shape"] = tag
  values = _attributes(elem, problem)
  if values:
    rest["attributes"] = values
  if tag == "skeleton":  # The <attribute>s of its points, by sublabel.
    points = {p.get("label"): v for p in elem if p.tag == "points"
              if (v := _attributes(p, problem))}
    if points:
      rest["point_attributes"] = points
  return rest


def _attributes(elem, problem) -> dict[str, str]:
  """The `<attribute name=...>value</attribute>` children of `elem`."""
  values = {}
  for child in elem:
    if child.tag != "attribute":
      continue
    name = child.get("name")
    if name is None:
      problem("an <attribute> without a name: not kept", kind="warning")
      continue
    values[name] = child.text or ""
  return values


def _rotated_extent(box, degrees: float):
  """The axis-aligned box around `box` turned by `degrees` about its
  centre (CVAT's `rotation`; the direction does not change the extent)."""
  xmin, ymin, xmax, ymax = box
  cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
  a = math.radians(degrees)
  hw, hh = (xmax - xmin) / 2, (ymax - ymin) / 2
  dx = abs(hw * math.cos(a)) + abs(hh * math.sin(a))
  dy = abs(hw * math.sin(a)) + abs(hh * math.cos(a))
  return (cx - dx, cy - dy, cx + dx, cy + dy)


def _clip(box, size):
  """`box` inside the image of `size` (width, height), when it is known:
  the box around a turned box or an ellipse may leave the image where the
  shape does not."""
  if size is None:
    return box
  w, h = size
  xmin, ymin, xmax, ymax = box
  return (min(max(xmin, 0.0), w), min(max(ymin, 0.0), h),
          min(max(xmax, 0.0), w), min(max(ymax, 0.0), h))


def _ellipse_extent(cx, cy, rx, ry, degrees: float):
  """The axis-aligned box around an ellipse (radii rx, ry) turned by
  `degrees`."""
  if rx < 0 or ry < 0:
    raise annotated.FieldError(f"ellipse radii rx={rx}, ry={ry}: negative")
  a = math.radians(degrees)
  dx = math.hypot(rx * math.cos(a), ry * math.sin(a))
  dy = math.hypot(rx * math.sin(a), ry * math.cos(a))
  return (cx - dx, cy - dy, cx + dx, cy + dy)


def _cvat_mask(elem, size) -> tuple[bytes, tuple[float, float, float, float]]:
  """A `<mask>` as a COCO RLE blob of the whole image, and its box.

  CVAT's `rle` is run lengths (0s first) over the `width` x `height` box at
  `left`, `top`, row by row; COCO's counts run over the whole image, column
  by column. The image's `width`/`height` (from `<image>`) place it.
  """
  for name in ("rle", "left", "top", "width", "height"):
    if elem.get(name) is None:
      raise annotated.FieldError(f"{name} is missing")
  try:
    left, top, width, height = (int(elem.get(n)) for n in (
        "left", "top", "width", "height"))
  except ValueError:
    raise annotated.FieldError(
        "left, top, width and height must be integers, got"
        f" {[elem.get(n) for n in ('left', 'top', 'width', 'height')]}"
        ) from None
  if size is None:
    raise annotated.FieldError(
        "the <image> gives no width and height: the mask cannot be placed")
  img_w, img_h = size
  if (left < 0 or top < 0 or width < 1 or height < 1
      or left + width > img_w or top + height > img_h):
    raise annotated.FieldError(
        f"mask box left={left} top={top} width={width} height={height} is"
        f" not inside the {img_w}x{img_h} image")
  if width * height > _MAX_MASK_PIXELS:
    raise annotated.FieldError(
        f"mask box of {width}x{height} pixels: larger than any image read")
  try:
    counts = np.array([int(c) for c in elem.get("rle").split(",")],
                      dtype=np.int64)
  except ValueError:
    raise annotated.FieldError(
        "rle must be comma-separated integers") from None
  if (counts < 0).any():
    raise annotated.FieldError("rle holds a negative count")
  if int(counts.sum()) != width * height:
    raise annotated.FieldError(
        f"rle counts sum to {int(counts.sum())}, not width x height ="
        f" {width} x {height} = {width * height}")
  values = (np.arange(counts.size) % 2).astype(np.uint8)
  tight = np.repeat(values, counts).reshape(height, width)
  cols, rows = np.nonzero(tight.T)  # Column by column, as COCO counts.
  if not cols.size:
    raise annotated.FieldError("the mask is empty (no pixel set)")
  pos = (left + cols.astype(np.int64)) * img_h + top + rows
  breaks = np.flatnonzero(np.diff(pos) != 1) + 1
  starts = pos[np.concatenate(([0], breaks))]
  ends = pos[np.concatenate((breaks - 1, [pos.size - 1]))] + 1
  runs = np.empty(2 * starts.size + 1, dtype=np.int64)
  runs[0] = starts[0]
  runs[1::2] = ends - starts
  runs[2:-1:2] = starts[1:] - ends[:-1]
  runs[-1] = img_w * img_h - ends[-1]
  if runs[-1] == 0:
    runs = runs[:-1]
  box = (float(left + cols.min()), float(top + rows.min()),
         float(left + cols.max() + 1), float(top + rows.max() + 1))
  return masks.pack_rle_counts(img_h, img_w, runs), box
