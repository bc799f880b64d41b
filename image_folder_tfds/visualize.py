"""Pictures of a built dataset: an example grid and a per-class bar chart.

TFDS's `show_examples` draws detection data as plain tiles. `show_grid` draws
each image with its masks (instance masks tinted in their object's class
colour, label images in each pixel's class colour, class 0 left as it is),
boxes, class names, keypoints and (given a COCO skeleton) the limbs between
them; `stats_chart` draws how many examples each class has
in each split. Both work on either output format (`tfds`, `model_garden`)
and draw with Pillow only.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from image_folder_tfds import features

# Distinct, saturated colours (class i uses PALETTE[i % len]).
PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
)
BACKGROUND = (32, 32, 32)
TEXT = (240, 240, 240)


def class_color(label: int) -> tuple[int, int, int]:
  """The colour boxes, names and keypoints of class `label` are drawn in."""
  if label < 0:
    return (255, 255, 255)
  return PALETTE[label % len(PALETTE)]


def _font(size: int):
  return ImageFont.load_default(size=size)


@dataclasses.dataclass(frozen=True)
class Obj:
  """One object to draw; box is normalized (xmin, ymin, xmax, ymax) or None."""

  box: tuple[float, float, float, float] | None
  label: int
  name: str
  keypoints: tuple[tuple[float, float, int], ...] = ()  # Normalized x, y, v.
  mask: np.ndarray | None = None  # HxW, nonzero inside the object.


@dataclasses.dataclass(frozen=True)
class View:
  """One example, whatever its output format."""

  image: np.ndarray  # HxWx3 uint8.
  caption: str
  objects: tuple[Obj, ...]
  segmentation: np.ndarray | None = None  # HxW class indices (folder pairs).


def view_of(example: Mapping, class_names: Sequence[str],
            num_keypoints: int = 0) -> View:
  """A decoded example (numpy) of either output format, as a `View`."""
  if features.is_model_garden(example):
    return _view_model_garden(example, class_names, num_keypoints)
  return _view_tfds(example, class_names)


def _name(names: Sequence[str], label: int) -> str:
  return names[label] if 0 <= label < len(names) else f"#{label}"


def _text(value) -> str:
  return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _view_tfds(ex: Mapping, names: Sequence[str]) -> View:
  if features.IMAGE not in ex:
    raise ValueError(
        "this dataset stores image paths only (store_images=False): nothing"
        " to draw")
  objs = []
  # Schema 2 stores objects and keypoints only in datasets that have them.
  o = ex.get(features.OBJECTS, {})
  labels = np.asarray(o.get(features.OBJ_LABEL, ())).reshape(-1)
  boxes = np.asarray(o.get(features.BBOX, ())).reshape(-1, 4)
  kps = o.get(features.KEYPOINTS)
  masks = o.get(features.OBJ_MASK)
  for i, label in enumerate(labels):
    ymin, xmin, ymax, xmax = (float(v) for v in boxes[i])
    box = (xmin, ymin, xmax, ymax)
    if box == (0.0, 0.0, 0.0, 0.0):  # Stored for an object without a box.
      box = None
    points = () if kps is None else tuple(
        (float(x), float(y), int(v)) for x, y, v in zip(
            _row(kps[features.KP_X], i), _row(kps[features.KP_Y], i),
            _row(kps[features.KP_V], i)))
    mask = None if masks is None else np.asarray(masks[i])[..., 0]
    objs.append(Obj(box, int(label), _name(names, int(label)), points, mask))
  caption = _text(ex[features.FILE_NAME])
  image_labels = _image_labels(ex)
  if image_labels:
    caption += f"  [{', '.join(_name(names, i) for i in image_labels)}]"
  segmentation = None
  if features.SEGMENTATION_MASK in ex:
    segmentation = np.asarray(ex[features.SEGMENTATION_MASK])[..., 0]
  return View(np.asarray(ex[features.IMAGE]), caption, tuple(objs),
              segmentation)


def _png_array(data) -> np.ndarray:
  """A PNG (Model Garden's masks are PNG bytes) as an HxW array."""
  with Image.open(io.BytesIO(bytes(data))) as img:
    return np.asarray(img.convert("L"))


def _row(values, i: int):
  """Row `i` of a per-object array of keypoint values (ragged in schema 1)."""
  if hasattr(values, "to_list"):  # tf.RaggedTensor
    return values[i].numpy()
  return np.asarray(values[i]).reshape(-1)


def _view_model_garden(ex: Mapping, names: Sequence[str], num_keypoints: int
                       ) -> View:
  offset = features.MG_LABEL_OFFSET
  get = lambda key: np.asarray(features.get_flat(ex, key))  # noqa: E731
  labels = get(features.MG_OBJ_LABEL)
  xmin, xmax = get(features.MG_XMIN), get(features.MG_XMAX)
  ymin, ymax = get(features.MG_YMIN), get(features.MG_YMAX)
  kx, ky = get(features.MG_KP_X), get(features.MG_KP_Y)
  kv = get(features.MG_KP_VISIBILITY)
  masks = (features.get_flat(ex, features.MG_MASK)
           if features.has_flat(ex, features.MG_MASK) else None)
  objs = []
  for i, label in enumerate(labels):
    points = ()
    if num_keypoints:
      sl = slice(i * num_keypoints, (i + 1) * num_keypoints)
      points = tuple(
          (float(x), float(y), int(v)) for x, y, v in zip(kx[sl], ky[sl], kv[sl]))
    box = (float(xmin[i]), float(ymin[i]), float(xmax[i]), float(ymax[i]))
    if box == (0.0, 0.0, 0.0, 0.0):
      box = None
    index = int(label) - offset
    mask = None if masks is None else _png_array(masks[i])
    objs.append(Obj(box, index, _name(names, index), points, mask))
  caption = _text(features.get_flat(ex, features.MG_FILENAME))
  class_labels = get(features.MG_CLASS_LABEL)
  if class_labels.size:
    caption += "  [" + ", ".join(
        _name(names, int(v) - offset) for v in class_labels) + "]"
  segmentation = None
  if features.has_flat(ex, features.MG_SEGMENTATION):
    segmentation = _png_array(features.get_flat(ex, features.MG_SEGMENTATION))
  return View(np.asarray(features.get_flat(ex, features.MG_ENCODED)), caption,
              tuple(objs), segmentation)


MASK_ALPHA = 0.45  # Opacity of the mask tint.


def _tinted(view: View) -> np.ndarray:
  """The view's image (HxWx3) with its masks blended in."""
  pixels = view.image
  if pixels.ndim == 3 and pixels.shape[-1] == 1:
    pixels = pixels[..., 0]
  if pixels.ndim == 2:
    pixels = np.stack([pixels] * 3, axis=-1)
  pixels = pixels[..., :3]
  layers = []  # (boolean HxW, colour)
  if view.segmentation is not None:
    for value in np.unique(view.segmentation):
      if value:
        layers.append((view.segmentation == value, class_color(int(value))))
  layers.extend((o.mask > 0, class_color(o.label)) for o in view.objects
                if o.mask is not None)
  if not layers:
    return pixels
  out = pixels.astype(np.float32)
  for where, color in layers:
    if where.shape != out.shape[:2]:
      raise ValueError(
          f"{view.caption}: a mask of {where.shape[1]}x{where.shape[0]} on an"
          f" image of {out.shape[1]}x{out.shape[0]}")
    out[where] = (1 - MASK_ALPHA) * out[where] + MASK_ALPHA * np.asarray(
        color, np.float32)
  return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --- The grid -----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Grid:
  """Where each tile goes: `tile` x `tile` image area, caption below."""

  count: int
  tile: int = 256
  pad: int = 8
  caption: int = 18

  @property
  def cols(self) -> int:
    return max(1, math.ceil(math.sqrt(self.count)))

  @property
  def rows(self) -> int:
    return max(1, math.ceil(self.count / self.cols))

  @property
  def size(self) -> tuple[int, int]:
    return (self.cols * (self.tile + self.pad) + self.pad,
            self.rows * (self.tile + self.caption + self.pad) + self.pad)

  def origin(self, index: int) -> tuple[int, int]:
    row, col = divmod(index, self.cols)
    return (self.pad + col * (self.tile + self.pad),
            self.pad + row * (self.tile + self.caption + self.pad))

  def placement(self, index: int, width: int, height: int
                ) -> tuple[int, int, int, int]:
    """(x, y, w, h) of an image of `width` x `height` in tile `index`."""
    scale = self.tile / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    x0, y0 = self.origin(index)
    return x0 + (self.tile - w) // 2, y0 + (self.tile - h) // 2, w, h


def show_grid(
    views: Sequence[View],
    *,
    tile: int = 256,
    skeletons: Mapping[str, Sequence[tuple[int, int]]] | None = None,
) -> Image.Image:
  """One image with every view drawn in its tile.

  `skeletons`: {class name: [(a, b), ...]} keypoint links, numbered from 1 as
  in COCO's `categories[].skeleton`.
  """
  if not views:
    raise ValueError("no examples to draw")
  grid = Grid(len(views), tile=tile)
  canvas = Image.new("RGB", grid.size, BACKGROUND)
  draw = ImageDraw.Draw(canvas)
  font = _font(12)
  line = max(2, tile // 128)
  radius = max(2, tile // 80)
  for index, view in enumerate(views):
    img = Image.fromarray(_tinted(view)).convert("RGB")
    x0, y0, w, h = grid.placement(index, img.width, img.height)
    canvas.paste(img.resize((w, h), Image.Resampling.BILINEAR), (x0, y0))

    def at(x, y, x0=x0, y0=y0, w=w, h=h):
      return x0 + x * w, y0 + y * h

    for obj in view.objects:
      color = class_color(obj.label)
      if obj.box is not None:
        xmin, ymin, xmax, ymax = obj.box
        (ax, ay), (bx, by) = at(xmin, ymin), at(xmax, ymax)
        draw.rectangle((ax, ay, bx, by), outline=color, width=line)
        left, top, right, bottom = draw.textbbox((0, 0), obj.name, font=font)
        th = bottom - top + 2
        ty = ay - th if ay - th >= y0 else ay + line
        draw.rectangle((ax, ty, ax + right - left + 4, ty + th), fill=color)
        draw.text((ax + 2, ty + 1 - top), obj.name, fill=(0, 0, 0), font=font)
      links = (skeletons or {}).get(obj.name, ())
      for a, b in links:
        if not (1 <= a <= len(obj.keypoints) and 1 <= b <= len(obj.keypoints)):
          continue
        pa, pb = obj.keypoints[a - 1], obj.keypoints[b - 1]
        if pa[2] > 0 and pb[2] > 0:
          draw.line((at(pa[0], pa[1]), at(pb[0], pb[1])), fill=color,
                    width=line)
      for x, y, v in obj.keypoints:
        if v <= 0:
          continue  # Not labelled.
        cx, cy = at(x, y)
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        if v == 1:  # Labelled but occluded: hollow.
          draw.ellipse(box, outline=color, width=2)
        else:
          draw.ellipse(box, fill=color, outline=(255, 255, 255))
    gx, gy = grid.origin(index)
    draw.text((gx, gy + tile + 2), _fit(draw, view.caption, font, tile),
              fill=TEXT, font=font)
  return canvas


def _fit(draw, text: str, font, width: int) -> str:
  if draw.textlength(text, font=font) <= width:
    return text
  while text and draw.textlength("..." + text, font=font) > width:
    text = text[1:]
  return "..." + text


# --- Statistics -----------------------------------------------------------------


def count_examples(
    examples_by_split: Mapping[str, Iterable[Mapping]],
    class_names: Sequence[str],
    progress=None,
) -> dict[str, dict[str, dict[str, int]]]:
  """{split: {"examples": {class: n}, "objects": {class: n}}}.

  An example counts once for each class it has: its image label (or each of
  its image labels, multi-label), or any of its objects' labels. Objects are
  counted one by one.
  """
  out = {}
  for split, examples in examples_by_split.items():
    ex_counts: collections.Counter[str] = collections.Counter()
    obj_counts: collections.Counter[str] = collections.Counter()
    for ex in (progress(examples, split) if progress else examples):
      image_labels, object_labels = _labels(ex)
      for label in object_labels:
        obj_counts[_name(class_names, label)] += 1
      present = set(object_labels) | set(image_labels)
      for label in present:
        ex_counts[_name(class_names, label)] += 1
    out[split] = {"examples": dict(ex_counts), "objects": dict(obj_counts)}
  return out


def _labels(ex: Mapping) -> tuple[list[int], list[int]]:
  """(the image's classes, its objects' classes)."""
  if not features.is_model_garden(ex):
    objs = np.asarray(ex.get(features.OBJECTS, {}).get(
        features.OBJ_LABEL, ())).reshape(-1)
    return _image_labels(ex), [int(v) for v in objs]
  offset = features.MG_LABEL_OFFSET
  objs = np.asarray(features.get_flat(ex, features.MG_OBJ_LABEL)).reshape(-1)
  image = np.asarray(features.get_flat(ex, features.MG_CLASS_LABEL)).reshape(-1)
  return [int(v) - offset for v in image], [int(v) - offset for v in objs]


def _image_labels(ex: Mapping) -> list[int]:
  """The image's class (`label`), or its classes (`labels`, multi-label)."""
  label = int(ex.get(features.LABEL, -1))
  if label >= 0:
    return [label]
  return [int(v) for v in np.asarray(ex.get(features.LABELS, ())).reshape(-1)]


def stats_chart(
    counts: Mapping[str, Mapping[str, Mapping[str, int]]],
    class_names: Sequence[str],
    *,
    what: str = "examples",
) -> Image.Image:
  """Horizontal bars: for each class, one bar per split (`what` per class)."""
  splits = list(counts)
  names = list(class_names)
  for split in splits:  # Labels outside the class list are shown too.
    names.extend(n for n in counts[split][what] if n not in names)
  font, small = _font(13), _font(11)
  bar, gap = 14, 10
  label_w = max([120] + [int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(
      n, font=font)) + 16 for n in names])
  chart_w = 520
  top = 40
  legend = 24
  height = top + len(names) * (len(splits) * bar + gap) + legend + 20
  width = label_w + chart_w + 80
  img = Image.new("RGB", (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(img)
  largest = max([1] + [c for s in splits for c in counts[s][what].values()])
  draw.text((10, 10), f"{what} per class and split", fill=(0, 0, 0), font=font)
  y = top
  for name in names:
    draw.text((10, y + (len(splits) * bar) // 2 - 7), name, fill=(0, 0, 0),
              font=font)
    for s, split in enumerate(splits):
      n = counts[split][what].get(name, 0)
      w = round(chart_w * n / largest)
      color = PALETTE[s % len(PALETTE)]
      if w:
        draw.rectangle((label_w, y, label_w + w, y + bar - 2), fill=color)
      draw.text((label_w + w + 4, y), str(n), fill=(0, 0, 0), font=small)
      y += bar
    y += gap
  x = label_w
  for s, split in enumerate(splits):
    color = PALETTE[s % len(PALETTE)]
    draw.rectangle((x, y + 4, x + 12, y + 16), fill=color)
    draw.text((x + 16, y + 3), split, fill=(0, 0, 0), font=small)
    x += 30 + int(draw.textlength(split, font=small))
  return img


def png_bytes(img: Image.Image) -> bytes:
  buf = io.BytesIO()
  img.save(buf, "PNG")
  return buf.getvalue()
