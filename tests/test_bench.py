"""The benchmark runs end to end at a tiny size (never a timed test)."""

from __future__ import annotations

import json
import sys

import pytest

import helpers


@pytest.mark.slow
def test_benchmark_runs_at_tiny_size(tmp_path):
  table = tmp_path / "table.md"
  result = helpers.run([
      sys.executable, str(helpers.REPO / "bench" / "run.py"),
      "--sizes", "60", "--repeats", "1", "--scan-files", "300",
      "--read-size", "60", "--work", str(tmp_path / "work"),
      "--contenders", "copy,plain,my_images",
      "--markdown", str(table)])
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  results = json.loads((tmp_path / "work" / "results.json").read_text())
  builds = results["builds"]["60"]
  assert set(builds) == {"copy", "plain", "my_images"}
  for s in builds.values():
    assert s["wall"] > 0 and s["images_per_s"] > 0 and s["peak_rss"] >= 0
  assert builds["plain"]["ratio_to_plain"] == 1.0
  assert results["scan"]["files"] == 300 and results["scan"]["find"] > 0
  assert 0 < results["import"]["import"] < 60
  assert results["fixed"]["my_images_10"] > 0
  assert set(results["read"]) == {"classification", "detection", "keypoints"}
  for kind, r in results["read"].items():
    assert r["schema"]["kind"] == kind
    for what in ("decode", "bytes"):
      assert r[f"tfds_{what}"] > 0 and r[f"raw_{what}"] > 0
  text = table.read_text()
  assert "| 60 | my_images |" in text and "find DIR -type f" in text
  assert "| keypoints | 12 |" in text


@pytest.mark.slow
def test_reader_scale_benchmark_runs_at_tiny_size(tmp_path):
  """bench/reader_scale.py writes every format, detects it as that format and
  finds every image, with the baselines beside it (a row per format)."""
  sys.path.insert(0, str(helpers.REPO / "bench"))
  try:
    import reader_scale  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  table = tmp_path / "table.md"
  result = helpers.run([
      sys.executable, str(helpers.REPO / "bench" / "reader_scale.py"),
      "--images", "50", "--repeats", "1", "--dir", str(tmp_path / "work"),
      "--json", str(tmp_path / "results.json"), "--markdown", str(table)])
  assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
  rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")
          for line in table.read_text().splitlines()[2:]}
  assert list(rows) == ["folders", *reader_scale.FORMATS]
  assert {"coco", "yolo", "cvat", "labelme", "label_studio", "metadata",
          "label_csv", "unlabeled", "tfrecord", "voc"} <= set(rows)
  assert all(row[3] == "50" for row in rows.values())  # found
  results = json.loads((tmp_path / "results.json").read_text())
  for fmt, s in results["formats"].items():
    assert s["found"] == [50] and s["rejected"] == 0, fmt
    assert s["layout"].split(":")[0].split(" ")[0] == fmt
    if fmt in ("folders", "unlabeled"):
      assert s["files"] == 0 and "cat_cpu" not in s
    else:  # cat, the scan and the floor all measured.
      assert s["files"] >= 1 and s["mb"] > 0, fmt
      assert s["cat_wall"] > 0 and s["scan_wall"] > 0 and s["wall_over_cat"] > 0
      assert s["runs"][0]["floor"]["found"] > 0, fmt


def test_synthetic_data_is_deterministic(tmp_path):
  sys.path.insert(0, str(helpers.REPO / "bench"))
  try:
    import data  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  a = data.make_dataset(str(tmp_path / "a"), 60)
  b = data.make_dataset(str(tmp_path / "b"), 60)
  assert a["bytes"] == b["bytes"] and a["images"] == 60
  names = [rel for _, rel in data.file_names(60)]
  assert sum(n.endswith(".png") for n in names) == 60 // data.PNG_EVERY
  for rel in names:
    assert (tmp_path / "a" / "folders" / rel).read_bytes() == (
        tmp_path / "b" / "folders" / rel).read_bytes()
  coco = json.loads(
      (tmp_path / "a" / "coco" / "annotations" / "instances_train2017.json")
      .read_text())
  assert len(coco["images"]) == len(coco["annotations"]) == 60
  seed = json.loads((tmp_path / "a" / "seed001" / "annotations.json").read_text())
  assert len(seed) == 60 and (tmp_path / "a" / "seed001" / seed[0]["filename"]).exists()
