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
