"""One set of images and objects, exported to every detection format, builds
one dataset (issue 25, point 7).

The reference is COCO (`instances_train.json`). The same images and objects are
written as YOLO (Ultralytics, Roboflow, Darknet and labelImg layouts; detect,
segment and pose), CVAT for images XML, LabelMe JSON, Label Studio JSON and
Pascal VOC, by hand as each tool writes them, and by the tools themselves
where a pip package writes the format from COCO (globox: YOLO, CVAT, LabelMe,
VOC; Label Studio's converter: Label Studio tasks). Every build is read back
with `tfds.load` and compared with the COCO build of the same content: class
names, boxes to 1e-6, instance masks at IoU >= 0.99, keypoints to 1e-6.

Formats carry different parts of the data (VOC has boxes only, YOLO one task
per file, CVAT a box, a polygon and a skeleton as three shapes), so there are
three references: boxes, boxes with polygon masks, boxes with keypoints.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import helpers
from image_folder_tfds import MyImagesConfig

CLASSES = ("cat", "dog", "bird")
KEYPOINTS = ("k1", "k2", "k3")
# name: (width, height, [(class, (x0, y0, x1, y1)), ...]); corners in pixels.
IMAGES = {
    "a.jpg": (64, 48, [("cat", (4, 6, 30, 40)), ("dog", (34, 2, 62, 22))]),
    "b.jpg": (80, 60, [("bird", (10, 10, 50, 30))]),
    "c.jpg": (50, 50, []),  # A background image: no object.
    "d.jpg": (64, 48, [("dog", (0, 0, 20, 16)), ("cat", (20, 16, 44, 40)),
                       ("cat", (44, 8, 64, 48))]),
    "é.jpg": (40, 40, [("bird", (8, 4, 32, 36))]),
}
CONFIG = MyImagesConfig(name="same", split_fractions={"train": 1.0},
                        num_workers=0)


def polygon(box) -> list[float]:
  """A hexagon inside the box whose extent is the box: x1, y1, x2, y2, ...
  (six points: a YOLO dataset whose every polygon has four points, some
  turned, is taken for oriented boxes)."""
  x0, y0, x1, y1 = box
  q, yc = (x1 - x0) / 4, (y0 + y1) / 2
  return [x0, yc, x0 + q, y0, x1 - q, y0, x1, yc, x1 - q, y1, x0 + q, y1]


def keypoints(box) -> list[tuple[float, float]]:
  """Three keypoints inside the box (all visible)."""
  x0, y0, x1, y1 = box
  return [(x0 + 1.5, y0 + 2.0), ((x0 + x1) / 2, (y0 + y1) / 2),
          (x1 - 2.0, y1 - 1.5)]


def objects():
  """(image name, width, height, index, class, box) of every object."""
  for name, (w, h, objs) in IMAGES.items():
    for i, (cls, box) in enumerate(objs):
      yield name, w, h, i, cls, box


def write_images(folder: pathlib.Path, names=None) -> None:
  for seed, (name, (w, h, _)) in enumerate(IMAGES.items()):
    if names is None or name in names:
      helpers.write_image(folder / name, seed=seed, width=w, height=h)


def write_json(path: pathlib.Path, value) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")


# --- COCO, the reference -----------------------------------------------------


def write_coco(root: pathlib.Path, *, masks=False, points=False) -> pathlib.Path:
  write_images(root / "images")
  cats = []
  for cid, name in enumerate(CLASSES, start=1):
    cat = {"id": cid, "name": name, "supercategory": "animal"}
    if points:
      cat["keypoints"] = list(KEYPOINTS)
      cat["skeleton"] = [[1, 2], [2, 3]]
    cats.append(cat)
  images, annotations = [], []
  for iid, (name, (w, h, _)) in enumerate(IMAGES.items(), start=1):
    images.append({"id": iid, "file_name": name, "width": w, "height": h})
  ids = {name: iid for iid, name in enumerate(IMAGES, start=1)}
  for aid, (name, _, _, _, cls, box) in enumerate(objects(), start=1):
    x0, y0, x1, y1 = box
    ann = {"id": aid, "image_id": ids[name],
           "category_id": CLASSES.index(cls) + 1,
           "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0}
    if masks:
      ann["segmentation"] = [polygon(box)]
    if points:
      ann["keypoints"] = [v for x, y in keypoints(box) for v in (x, y, 2)]
      ann["num_keypoints"] = len(KEYPOINTS)
    annotations.append(ann)
  path = root / "annotations" / "instances_train.json"
  write_json(path, {"images": images, "annotations": annotations,
                    "categories": cats})
  return path


# --- YOLO ---------------------------------------------------------------------


def _yolo_line(cls, box, w, h, task) -> str:
  x0, y0, x1, y1 = box
  cid = CLASSES.index(cls)
  if task == "segment":
    coords = polygon(box)
    values = [coords[i] / (w if i % 2 == 0 else h) for i in range(len(coords))]
    return " ".join([str(cid)] + [repr(v) for v in values])
  values = [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h]
  if task == "pose":
    for x, y in keypoints(box):
      values += [x / w, y / h, 2]
  return " ".join([str(cid)] + [repr(v) for v in values])


def _yolo_labels(task) -> dict[str, str]:
  """{image name: label file text}; the background image gets an empty file."""
  out = {name: "" for name in IMAGES}
  for name, w, h, _, cls, box in objects():
    out[name] += _yolo_line(cls, box, w, h, task) + "\n"
  return out


def _stem(name: str) -> str:
  return name.rsplit(".", 1)[0]


def write_ultralytics(root: pathlib.Path, task="detect") -> None:
  """`data.yaml`, `images/train/`, `labels/train/`; names as a dict."""
  write_images(root / "images" / "train")
  for name, text in _yolo_labels(task).items():
    (root / "labels" / "train").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "train" / f"{_stem(name)}.txt").write_text(text)
  lines = ["path: .", "train: images/train", "names:"]
  lines += [f"  {i}: {name}" for i, name in enumerate(CLASSES)]
  if task == "pose":
    lines += ["kpt_shape: [3, 3]", "flip_idx: [2, 1, 0]"]
  (root / "data.yaml").write_text("\n".join(lines) + "\n")


def write_roboflow_yolo(root: pathlib.Path) -> None:
  """`train/images`, `train/labels`, `data.yaml` with `../train/images`."""
  write_images(root / "train" / "images")
  (root / "train" / "labels").mkdir(parents=True)
  for name, text in _yolo_labels("detect").items():
    (root / "train" / "labels" / f"{_stem(name)}.txt").write_text(text)
  (root / "data.yaml").write_text(
      "train: ../train/images\nnc: 3\nnames: ['cat', 'dog', 'bird']\n")
  (root / "README.roboflow.txt").write_text("Exported from roboflow.com\n")


def write_darknet(root: pathlib.Path) -> None:
  """CVAT's "YOLO 1.1": `obj.data`, `obj.names`, `train.txt`, labels beside
  the images in `obj_train_data/`."""
  folder = root / "obj_train_data"
  write_images(folder)
  for name, text in _yolo_labels("detect").items():
    (folder / f"{_stem(name)}.txt").write_text(text)
  (root / "obj.names").write_text("\n".join(CLASSES) + "\n")
  (root / "obj.data").write_text(
      "classes = 3\ntrain = data/train.txt\nnames = data/obj.names\n"
      "backup = backup/\n")
  (root / "train.txt").write_text(
      "".join(f"data/obj_train_data/{name}\n" for name in IMAGES))


def write_labelimg(root: pathlib.Path) -> None:
  """labelImg's YOLO output: one folder, `classes.txt`, a .txt per image."""
  write_images(root)
  for name, text in _yolo_labels("detect").items():
    (root / f"{_stem(name)}.txt").write_text(text)
  (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")


# --- CVAT ---------------------------------------------------------------------


def write_cvat(root: pathlib.Path, shape: str) -> None:
  """A CVAT for images 1.1 task export; `shape`: box, polygon or skeleton."""
  write_images(root / "images")
  labels = []
  for cls in CLASSES:
    if shape == "skeleton":
      labels.append(f"<label><name>{cls}</name><type>skeleton</type>"
                    "<attributes/></label>")
      labels += [f"<label><name>{k}</name><type>points</type>"
                 f"<parent>{cls}</parent><attributes/></label>"
                 for k in KEYPOINTS]
    else:
      labels.append(f"<label><name>{cls}</name><type>{shape}</type>"
                    "<attributes/></label>")
  xml = ['<?xml version="1.0" encoding="utf-8"?>', "<annotations>",
         "<version>1.1</version>",
         "<meta><task><name>same</name><labels>" + "".join(labels)
         + "</labels></task></meta>"]
  for iid, (name, (w, h, objs)) in enumerate(IMAGES.items()):
    xml.append(f'<image id="{iid}" name="{name}" width="{w}" height="{h}">')
    for cls, box in objs:
      x0, y0, x1, y1 = box
      if shape == "box":
        xml.append(f'<box label="{cls}" occluded="0" source="manual"'
                   f' xtl="{x0:.2f}" ytl="{y0:.2f}" xbr="{x1:.2f}"'
                   f' ybr="{y1:.2f}" z_order="0"></box>')
      elif shape == "polygon":
        coords = polygon(box)
        points = ";".join(f"{coords[i]:.2f},{coords[i + 1]:.2f}"
                          for i in range(0, len(coords), 2))
        xml.append(f'<polygon label="{cls}" occluded="0" source="manual"'
                   f' points="{points}" z_order="0"></polygon>')
      else:
        xml.append(f'<skeleton label="{cls}" source="manual" z_order="0">')
        for k, (x, y) in zip(KEYPOINTS, keypoints(box)):
          xml.append(f'<points label="{k}" source="manual" outside="0"'
                     f' occluded="0" points="{x:.2f},{y:.2f}"></points>')
        xml.append("</skeleton>")
    xml.append("</image>")
  xml.append("</annotations>")
  (root / "annotations.xml").write_text("\n".join(xml), encoding="utf-8")


# --- LabelMe ------------------------------------------------------------------


def write_labelme(root: pathlib.Path, shape: str) -> None:
  """One JSON beside each image; `shape`: rectangle, polygon, or rectangle
  with its keypoints as `point`s of the same `group_id`."""
  write_images(root)
  for name, (w, h, objs) in IMAGES.items():
    shapes = []
    for group, (cls, box) in enumerate(objs):
      x0, y0, x1, y1 = box
      if shape == "polygon":
        coords = polygon(box)
        shapes.append({"label": cls, "shape_type": "polygon", "flags": {},
                       "group_id": None, "description": "",
                       "points": [[coords[i], coords[i + 1]]
                                  for i in range(0, len(coords), 2)]})
        continue
      shapes.append({"label": cls, "shape_type": "rectangle", "flags": {},
                     "group_id": group if shape == "points" else None,
                     "description": "", "points": [[x1, y1], [x0, y0]]})
      if shape == "points":
        shapes += [{"label": k, "shape_type": "point", "flags": {},
                    "group_id": group, "description": "", "points": [[x, y]]}
                   for k, (x, y) in zip(KEYPOINTS, keypoints(box))]
    write_json(root / f"{_stem(name)}.json", {
        "version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": name,
        "imageData": None, "imageHeight": h, "imageWidth": w})


# --- Label Studio ---------------------------------------------------------------


def write_label_studio(root: pathlib.Path, shape: str) -> None:
  """Label Studio's full JSON export (`train.json`), images in DIR/images,
  named `/data/local-files/?d=images/<name>`."""
  write_images(root / "images")
  tasks = []
  for tid, (name, (w, h, objs)) in enumerate(IMAGES.items(), start=1):
    result = []
    for i, (cls, box) in enumerate(objs):
      x0, y0, x1, y1 = box
      common = {"original_width": w, "original_height": h,
                "image_rotation": 0, "from_name": "label", "to_name": "image",
                "origin": "manual"}
      rid = f"r{tid}_{i}"
      if shape == "polygon":
        coords = polygon(box)
        result.append({**common, "id": rid, "type": "polygonlabels", "value": {
            "points": [[coords[j] / w * 100, coords[j + 1] / h * 100]
                       for j in range(0, len(coords), 2)],
            "closed": True, "polygonlabels": [cls]}})
        continue
      result.append({**common, "id": rid, "type": "rectanglelabels", "value": {
          "x": x0 / w * 100, "y": y0 / h * 100, "width": (x1 - x0) / w * 100,
          "height": (y1 - y0) / h * 100, "rotation": 0,
          "rectanglelabels": [cls]}})
      if shape == "points":
        for k, (x, y) in zip(KEYPOINTS, keypoints(box)):
          result.append({**common, "id": f"{rid}_{k}", "parentID": rid,
                         "from_name": "kp", "type": "keypointlabels",
                         "value": {"x": x / w * 100, "y": y / h * 100,
                                   "width": 0.5, "keypointlabels": [k]}})
    tasks.append({
        "id": tid, "data": {"image": f"/data/local-files/?d=images/{name}"},
        "annotations": [{"id": tid, "result": result, "was_cancelled": False,
                         "ground_truth": False, "completed_by": 1,
                         "created_at": "2026-12-01T10:00:00.000000Z",
                         "updated_at": "2026-12-01T10:00:00.000000Z"}],
        "predictions": [], "meta": {}, "file_upload": name})
  write_json(root / "train.json", tasks)


# --- Pascal VOC -------------------------------------------------------------------


def write_voc(root: pathlib.Path) -> None:
  """`Annotations/`, `JPEGImages/`, `ImageSets/Main/train.txt`; corners as
  COCO's (the reader takes them as written, as TFDS's `voc` does)."""
  write_images(root / "JPEGImages")
  (root / "Annotations").mkdir(parents=True)
  (root / "ImageSets" / "Main").mkdir(parents=True)
  for name, (w, h, objs) in IMAGES.items():
    xml = [f"<annotation><folder>JPEGImages</folder><filename>{name}</filename>"
           f"<size><width>{w}</width><height>{h}</height><depth>3</depth></size>"]
    for cls, (x0, y0, x1, y1) in objs:
      xml.append(f"<object><name>{cls}</name><difficult>0</difficult><bndbox>"
                 f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax>"
                 f"<ymax>{y1}</ymax></bndbox></object>")
    xml.append("</annotation>")
    (root / "Annotations" / f"{_stem(name)}.xml").write_text(
        "".join(xml), encoding="utf-8")
  (root / "ImageSets" / "Main" / "train.txt").write_text(
      "".join(f"{_stem(name)}\n" for name in IMAGES), encoding="utf-8")


# --- Exports written by the tools themselves ------------------------------------


def globox_exports(coco_root: pathlib.Path, out: pathlib.Path) -> dict:
  """globox reads the COCO reference and writes YOLO, CVAT, LabelMe, VOC."""
  from globox import AnnotationSet  # pylint: disable=g-import-not-at-top

  annotations = AnnotationSet.from_coco(
      coco_root / "annotations" / "instances_train.json")
  made = {}
  yolo = out / "globox_yolo"
  write_images(yolo / "images")
  annotations.save_yolo_v5(yolo / "labels",
                           label_to_id={c: i for i, c in enumerate(CLASSES)})
  (yolo / "data.yaml").write_text(
      "train: images\nnames: [" + ", ".join(CLASSES) + "]\n")
  made["globox_yolo"] = yolo
  cvat = out / "globox_cvat"
  write_images(cvat / "images")
  annotations.save_cvat(cvat / "annotations.xml")
  made["globox_cvat"] = cvat
  labelme = out / "globox_labelme"
  write_images(labelme)
  annotations.save_labelme(labelme)
  made["globox_labelme"] = labelme
  voc = out / "globox_voc"
  write_images(voc)
  annotations.save_pascal_voc(voc)
  made["globox_voc"] = voc
  return made


def label_studio_export(coco_root: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
  """Label Studio's converter imports the COCO reference as tasks."""
  from label_studio_converter.imports import coco as ls_coco  # pylint: disable=g-import-not-at-top

  root = out / "ls_converter"
  write_images(root / "images")
  ls_coco.convert_coco_to_ls(
      str(coco_root / "annotations" / "instances_train.json"),
      str(root / "train.json"), image_root_url="/data/local-files/?d=images/")
  return root


# --- Reading back -----------------------------------------------------------------


def build(root: pathlib.Path, data_dir: pathlib.Path) -> list[dict]:
  """Builds `root` with the default detection and reads it with tfds.load:
  per image (by name), its objects as (class, box, mask, keypoints)."""
  builder = helpers.build(root, data_dir, config=CONFIG)
  report = helpers.report(builder)
  assert report["counts"]["train"]["found"] == len(IMAGES), report["counts"]
  assert report["counts"]["train"]["written"] == len(IMAGES), [
      p for p in report["problems"] if p["kind"] == "rejected"]
  info = builder.info
  names = list(info.features["objects"].feature["label"].names)
  ds = tfds.load("my_images/same", split="train", data_dir=str(data_dir),
                 shuffle_files=False)
  out = {}
  for ex in tfds.as_numpy(ds):
    o = ex["objects"]
    objs = []
    for i in range(len(o["label"])):
      ymin, xmin, ymax, xmax = (float(v) for v in o["bbox"][i])
      obj = {"class": names[int(o["label"][i])],
             "box": (xmin, ymin, xmax, ymax)}
      if "mask" in o:
        obj["mask"] = np.asarray(o["mask"][i])[..., 0]
      if "keypoints" in o:
        kp = o["keypoints"]
        obj["keypoints"] = [(float(x), float(y), int(v)) for x, y, v in zip(
            kp["x"][i], kp["y"][i], kp["v"][i])]
      objs.append(obj)
    name = ex["file_name"].decode().rsplit("/", 1)[-1]
    out[name] = objs
  return out


def _key(obj):
  return (obj["class"], tuple(round(v, 4) for v in obj["box"]))


def assert_same(got: dict, want: dict, *, masks=False, points=False,
                boxes=True, where="") -> None:
  assert sorted(got) == sorted(want), where
  for name in want:
    g = sorted(got[name], key=_key if boxes else _points_key)
    w = sorted(want[name], key=_key if boxes else _points_key)
    assert [o["class"] for o in g] == [o["class"] for o in w], (where, name)
    for a, b in zip(g, w):
      if boxes:
        np.testing.assert_allclose(a["box"], b["box"], atol=1e-6,
                                   err_msg=f"{where} {name}")
      if masks:
        inter = np.logical_and(a["mask"], b["mask"]).sum()
        union = np.logical_or(a["mask"], b["mask"]).sum()
        assert union and inter / union >= 0.99, (where, name, inter / union)
      if points:
        assert [p[2] for p in a["keypoints"]] == [p[2] for p in b["keypoints"]]
        np.testing.assert_allclose(
            [p[:2] for p in a["keypoints"]], [p[:2] for p in b["keypoints"]],
            atol=1e-6, err_msg=f"{where} {name}")


def _points_key(obj):
  return (obj["class"], tuple(round(v, 4) for p in obj["keypoints"]
                              for v in p[:2]))


# --- The tests ------------------------------------------------------------------


@pytest.fixture(scope="module")
def references(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("coco")
  out = {}
  for kind, kwargs in (("boxes", {}), ("masks", {"masks": True}),
                       ("points", {"points": True})):
    write_coco(tmp / kind, **kwargs)
    out[kind] = build(tmp / kind, tmp / f"out_{kind}")
  out["root"] = tmp / "boxes"
  return out


def test_the_reference_holds_what_was_written(references):
  boxes = references["boxes"]
  assert sorted(boxes) == sorted(IMAGES)
  for name, (w, h, objs) in IMAGES.items():
    want = sorted((cls, (x0 / w, y0 / h, x1 / w, y1 / h))
                  for cls, (x0, y0, x1, y1) in objs)
    got = sorted((o["class"], o["box"]) for o in boxes[name])
    assert [g[0] for g in got] == [c for c, _ in want]
    for (_, a), (_, b) in zip(got, want):
      np.testing.assert_allclose(a, b, atol=1e-6)
  for obj in (o for objs in references["masks"].values() for o in objs):
    assert obj["mask"].any()
  for objs in references["points"].values():
    for obj in objs:
      assert [p[2] for p in obj["keypoints"]] == [2, 2, 2]


BOX_EXPORTS = {
    "yolo_ultralytics": lambda root: write_ultralytics(root),
    "yolo_roboflow": write_roboflow_yolo,
    "yolo_darknet": write_darknet,
    "yolo_labelimg": write_labelimg,
    "cvat_box": lambda root: write_cvat(root, "box"),
    "labelme_rectangle": lambda root: write_labelme(root, "rectangle"),
    "label_studio_rectangle": lambda root: write_label_studio(root, "rectangle"),
    "voc": write_voc,
}


@pytest.mark.parametrize("export", sorted(BOX_EXPORTS))
def test_boxes_are_the_same_from_every_format(references, tmp_path, export):
  BOX_EXPORTS[export](tmp_path / export)
  got = build(tmp_path / export, tmp_path / "out")
  assert_same(got, references["boxes"], where=export)


MASK_EXPORTS = {
    "yolo_segment": lambda root: write_ultralytics(root, "segment"),
    "cvat_polygon": lambda root: write_cvat(root, "polygon"),
    "labelme_polygon": lambda root: write_labelme(root, "polygon"),
    "label_studio_polygon": lambda root: write_label_studio(root, "polygon"),
}


@pytest.mark.parametrize("export", sorted(MASK_EXPORTS))
def test_masks_are_the_same_from_every_format(references, tmp_path, export):
  MASK_EXPORTS[export](tmp_path / export)
  got = build(tmp_path / export, tmp_path / "out")
  assert_same(got, references["masks"], masks=True, where=export)


POINT_EXPORTS = {
    "yolo_pose": (lambda root: write_ultralytics(root, "pose"), True),
    "labelme_points": (lambda root: write_labelme(root, "points"), True),
    "label_studio_keypoints": (lambda root: write_label_studio(root, "points"),
                               True),
    # A CVAT skeleton is a shape of its own, without a box.
    "cvat_skeleton": (lambda root: write_cvat(root, "skeleton"), False),
}


@pytest.mark.parametrize("export", sorted(POINT_EXPORTS))
def test_keypoints_are_the_same_from_every_format(references, tmp_path, export):
  write, with_boxes = POINT_EXPORTS[export]
  write(tmp_path / export)
  got = build(tmp_path / export, tmp_path / "out")
  assert_same(got, references["points"], points=True, boxes=with_boxes,
              where=export)


def test_exports_written_by_the_tools_build_the_same_boxes(
    references, tmp_path):
  """globox and Label Studio's converter turn the COCO reference into YOLO,
  CVAT, LabelMe, VOC and Label Studio tasks: each builds the same boxes."""
  made = globox_exports(references["root"], tmp_path)
  made["ls_converter"] = label_studio_export(references["root"], tmp_path)
  for export, root in made.items():
    got = build(root, tmp_path / f"out_{export}")
    assert_same(got, references["boxes"], where=export)


@pytest.mark.parametrize("export, layout", [
    ("yolo_ultralytics", "yolo: data.yaml (train: images/train)"),
    ("yolo_darknet", "yolo: obj.data (Darknet: train.txt)"),
    ("yolo_labelimg", "yolo: classes.txt + a .txt beside each image"),
    ("cvat_box", "cvat: annotations.xml"),
    ("labelme_rectangle", "labelme: a .json file beside each image"),
    ("label_studio_rectangle", "label_studio: train.json"),
])
def test_inspect_names_the_layout_and_its_files(tmp_path, capsys, export,
                                                layout):
  from image_folder_tfds import cli  # pylint: disable=g-import-not-at-top

  BOX_EXPORTS[export](tmp_path / export)
  code = cli.main(["inspect", str(tmp_path / export), "--workers", "0"])
  out = capsys.readouterr().out
  assert f"layout: {layout}" in out.splitlines(), out
  assert code in (cli.EXIT_OK, cli.EXIT_PROBLEMS)
