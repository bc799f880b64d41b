"""The check cache (issue 15): reused checks, byte-identical releases, faults."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import sqlite3
import struct
import subprocess
import sys
import tomllib

import pytest

import helpers
from image_folder_tfds import check_cache
from image_folder_tfds import images as images_lib
from image_folder_tfds import pipeline
from image_folder_tfds import records

OPTIONS = images_lib.ImageOptions()
NOTES = {"1.0.0": "First release.", "1.1.0": "More images."}


def padded_jpeg(seed: int, size: int) -> bytes:
  """A valid JPEG of exactly `size` bytes (a COM segment pads it)."""
  data = helpers.encode(helpers.photo(seed))
  pad = size - len(data) - 4
  assert 0 <= pad < 65000, (len(data), size)
  return data[:2] + b"\xff\xfe" + struct.pack(">H", pad + 2) + b"p" * pad + data[2:]


def open_cache(directory, options=OPTIONS, output_format="tfds"):
  ns, description = check_cache.namespace_of(options, output_format)
  return check_cache.Cache(os.fspath(directory), ns, description)


def record_for(path: pathlib.Path) -> records.ImageRecord:
  return records.ImageRecord(key=path.name, path=str(path), file_name=path.name,
                             split="train", source=str(path))


def checked_twice(files, directory, options=OPTIONS):
  """Outcomes without a cache, then a filling run, then a reusing run."""
  recs = [record_for(f) for f in files]
  plain = [pipeline.process(r, options) for r in recs]
  runs = []
  for _ in range(2):
    cache = open_cache(directory, options)
    lookup = check_cache.Lookup(cache.spec)
    outcomes = [pipeline.process(r, options, lookup) for r in recs]
    for o in outcomes:
      cache.record(o.cache)
    lookup.close()
    cache.close()  # The last connection: SQLite checkpoints its log.
    runs.append((outcomes, cache))
  return plain, runs


def same_result(a: pipeline.Outcome, b: pipeline.Outcome) -> bool:
  return (a.image, a.objects, a.problems) == (b.image, b.objects, b.problems)


def mixed_files(root: pathlib.Path) -> list[pathlib.Path]:
  from PIL import Image
  root.mkdir(parents=True, exist_ok=True)
  files = {
      "a.jpg": helpers.encode(helpers.photo(1)),
      "b.png": helpers.encode(helpers.photo(2), "PNG"),
      "gray.png": helpers.encode(helpers.photo(3).convert("L"), "PNG"),
      "c.bmp": helpers.encode(helpers.photo(4), "BMP"),  # Converted.
      "p.png": helpers.encode(helpers.photo(5).convert("P"), "PNG"),
      "cut.jpg": helpers.encode(helpers.photo(6))[:300],  # Corrupt.
      "text.jpg": b"not an image at all",
      "empty.jpg": b"",
      "big.png": helpers.encode(Image.new("RGB", (300, 200)), "PNG"),
  }
  for name, data in files.items():
    (root / name).write_bytes(data)
  return [root / name for name in files]


# --- The key and the entries --------------------------------------------------


def test_namespace_changes_with_every_option_and_the_format():
  base, _ = check_cache.namespace_of(OPTIONS, "tfds")
  assert check_cache.namespace_of(OPTIONS, "tfds")[0] == base
  changed = [
      images_lib.ImageOptions(max_side=64),
      images_lib.ImageOptions(max_image_pixels=1000),
      images_lib.ImageOptions(keep_bytes=False),
  ]
  seen = {base} | {check_cache.namespace_of(o, "tfds")[0] for o in changed}
  seen.add(check_cache.namespace_of(OPTIONS, "model_garden")[0])
  assert len(seen) == 5
  # Every ImageOptions field is in the key (a new option joins it by itself).
  _, text = check_cache.namespace_of(OPTIONS, "tfds")
  assert set(json.loads(text)["options"]) == {
      f.name for f in dataclasses.fields(images_lib.ImageOptions)}


def test_package_version_is_the_released_one():
  import image_folder_tfds
  project = tomllib.loads((helpers.REPO / "pyproject.toml").read_text())
  assert check_cache.PACKAGE_VERSION == project["project"]["version"]
  assert check_cache.PACKAGE_VERSION == image_folder_tfds.__version__


@pytest.mark.parametrize("keep_bytes", [True, False])
def test_reused_results_equal_fresh_checks(tmp_path, keep_bytes):
  options = images_lib.ImageOptions(keep_bytes=keep_bytes, max_side=256)
  files = mixed_files(tmp_path / "in")
  plain, [(first, cache1), (second, cache2)] = checked_twice(
      files, tmp_path / "cache", options)
  for a, b, c in zip(plain, first, second, strict=True):
    assert same_result(a, b) and same_result(a, c), a.record.path
  assert cache1.reused == 0 and cache1.checked == len(files)
  # Converted images (BMP, palette, resized) are checked again when their
  # converted bytes are stored; without bytes every result is reused.
  converted = {"c.bmp", "p.png", "big.png"}
  assert cache2.reused == len(files) - (len(converted) if keep_bytes else 0)
  for o in second:
    assert o.cache.reused == (not keep_bytes or o.record.key not in converted)
  assert cache1.warnings == cache2.warnings == []


def test_changed_bytes_are_checked_again(tmp_path):
  files = mixed_files(tmp_path / "in")
  checked_twice(files, tmp_path / "cache")
  # Same name, same size, same mtime, same inode: new content.
  target = files[0]
  st = target.stat()
  with open(target, "r+b") as f:
    f.write(b"x" * st.st_size)
  os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
  assert target.stat().st_ino == st.st_ino and target.stat().st_size == st.st_size
  cache = open_cache(tmp_path / "cache")
  outcome = pipeline.process(record_for(target), OPTIONS,
                             check_cache.Lookup(cache.spec))
  assert outcome.image is None and not outcome.cache.reused
  assert "not an image" in outcome.problems[0].reason


# --- Faults -----------------------------------------------------------------


def filled_cache(tmp_path) -> tuple[list[pathlib.Path], pathlib.Path]:
  files = mixed_files(tmp_path / "in")
  checked_twice(files, tmp_path / "cache")
  return files, tmp_path / "cache" / check_cache.FILE_NAME


def reuse_count(files, directory) -> tuple[int, check_cache.Cache]:
  cache = open_cache(directory)
  lookup = cache.spec and check_cache.Lookup(cache.spec)
  for f in files:
    o = pipeline.process(record_for(f), OPTIONS, lookup)
    assert same_result(o, pipeline.process(record_for(f), OPTIONS)), f
    cache.record(o.cache)
  if lookup:
    lookup.close()
  cache.close()
  return cache.reused, cache


@pytest.mark.parametrize("damage", ["truncated", "garbage", "zeroed_middle"])
def test_damaged_file_is_ignored_with_a_warning(tmp_path, damage, capsys):
  files, path = filled_cache(tmp_path)
  data = path.read_bytes()
  assert len(data) >= 8192, len(data)
  if damage == "truncated":
    path.write_bytes(data[:len(data) // 2 + 100])
  elif damage == "garbage":
    path.write_bytes(b"this is no database " * 100)
  else:
    path.write_bytes(data[:4096] + b"\x00" * 4096 + data[8192:])
  reused, cache = reuse_count(files, tmp_path / "cache")
  assert reused == 0 and cache.spec is None
  assert len(cache.warnings) == 1 and "is not usable" in cache.warnings[0]
  assert "WARNING: check cache" in capsys.readouterr().err


def test_damaged_entry_is_a_miss_with_a_warning(tmp_path):
  files, path = filled_cache(tmp_path)
  with sqlite3.connect(path) as conn:
    (n,) = conn.execute("SELECT count(*) FROM checks").fetchone()
    # A flipped verdict, and a valid-looking value under a wrong checksum.
    conn.execute("UPDATE checks SET value = ? WHERE digest = (SELECT digest"
                 " FROM checks LIMIT 1)", (b'{"rejected": "lie"}',))
  reused, cache = reuse_count(files, tmp_path / "cache")
  assert reused == n - 1
  assert any("failed its checksum" in w for w in cache.warnings)


def test_other_cache_format_is_ignored(tmp_path):
  files, path = filled_cache(tmp_path)
  with sqlite3.connect(path) as conn:
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
  reused, cache = reuse_count(files, tmp_path / "cache")
  assert reused == 0 and cache.spec is None
  assert "cache format 99" in cache.warnings[0]


def test_other_package_version_is_not_used(tmp_path, monkeypatch):
  files, _ = filled_cache(tmp_path)
  monkeypatch.setattr(check_cache, "PACKAGE_VERSION", "9.9.9")
  reused, cache = reuse_count(files, tmp_path / "cache")
  assert reused == 0 and cache.spec is not None
  assert "other options or another version" in cache.warnings[0]
  assert '"image_folder_tfds": "0.1.0"' in cache.warnings[0]
  # Its own results are added beside the old ones, and reused next time.
  assert reuse_count(files, tmp_path / "cache")[0] > 0


def test_unreadable_mid_build_turns_the_lookup_off(tmp_path):
  files, path = filled_cache(tmp_path)
  cache = open_cache(tmp_path / "cache")
  lookup = check_cache.Lookup(cache.spec)
  cache.close()
  path.write_bytes(b"\x00" * path.stat().st_size)  # Broken under the build.
  outcomes = [pipeline.process(record_for(f), OPTIONS, lookup) for f in files]
  assert not any(o.cache.reused for o in outcomes)
  assert "unreadable" in outcomes[0].cache.fault
  for o, f in zip(outcomes, files):
    assert same_result(o, pipeline.process(record_for(f), OPTIONS))


_WRITER = """
import sys
from image_folder_tfds import check_cache, images
ns, text = check_cache.namespace_of(images.ImageOptions(), "tfds")
cache = check_cache.Cache(sys.argv[1], ns, text)
assert cache.spec is not None, cache.warnings
for i in range(int(sys.argv[2])):
  key = check_cache.digest(f"image {i % 3000}".encode())
  cache.record(check_cache.Result(
      reused=False, key=key, value=b'{"rejected": "%d"}' % (i % 3000)))
  if i % 500 == 0:
    cache.flush()
cache.close()
assert not cache.warnings, cache.warnings
"""


def test_two_builds_share_a_cache(tmp_path):
  env = dict(os.environ, PYTHONPATH=str(helpers.REPO))
  procs = [subprocess.Popen([sys.executable, "-c", _WRITER,
                             str(tmp_path / "cache"), str(n)], env=env,
                            stderr=subprocess.PIPE, text=True)
           for n in (6000, 6000, 3000)]
  for p in procs:
    assert p.wait(timeout=120) == 0, p.stderr.read()
  cache = open_cache(tmp_path / "cache")
  lookup = check_cache.Lookup(cache.spec)
  for i in range(3000):
    value, fault = lookup.get(check_cache.digest(f"image {i}".encode()))
    assert value == b'{"rejected": "%d"}' % i and not fault
  assert cache.warnings == []


# --- Builds -----------------------------------------------------------------


def release_files(builder) -> dict[str, bytes]:
  """Every file of a release; the report without its build-specific part."""
  out = {}
  for path in sorted(pathlib.Path(builder.data_path).iterdir()):
    data = path.read_bytes()
    if path.name == "build_report.json":
      report = json.loads(data)
      assert "check_cache" in report
      report.pop("check_cache")
      data = json.dumps(report).encode()
    out[path.name] = data
  return out


def v1_data(root: pathlib.Path) -> dict[str, bytes]:
  out = {}
  for i in range(96):
    cls = ("cat", "dog", "eel")[i % 3]
    rel = f"{cls}/{cls}_{i:03d}.jpg"
    out[rel] = padded_jpeg(i, 2500) if i < 4 else helpers.encode(
        helpers.photo(i))
    (root / cls).mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(out[rel])
  (root / "dog" / "broken.jpg").write_bytes(b"broken")
  return out


def make_v2(root: pathlib.Path) -> dict[str, int]:
  """Adds, removes, replaces in place (size and mtime kept) and moves."""
  for i in range(96, 104):  # Added.
    (root / "eel" / f"new_{i}.jpg").write_bytes(helpers.encode(helpers.photo(i)))
  (root / "cat" / "cat_009.jpg").unlink()  # Removed.
  (root / "dog" / "dog_010.jpg").unlink()
  for rel, new in (("cat/cat_000.jpg", padded_jpeg(500, 2500)),
                   ("dog/dog_001.jpg", b"x" * 2500)):  # Replaced in place.
    path = root / rel
    st = path.stat()
    with open(path, "r+b") as f:
      f.write(new)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size
  # Moved between class folders (new label, same bytes).
  (root / "eel" / "eel_005.jpg").rename(root / "cat" / "eel_005.jpg")
  (root / "cat" / "cat_012.jpg").rename(root / "dog" / "cat_012.jpg")
  return {"added": 8, "replaced": 2}


def v_config(version: str, **kwargs):
  from image_folder_tfds import MyImagesConfig
  return MyImagesConfig(version=version, release_notes=NOTES, **kwargs)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_v2_with_cache_equals_a_clean_v2(tmp_path, num_workers):
  data = tmp_path / "data"
  v1_data(data)
  v1 = helpers.build(data, tmp_path / "out",
                     config=v_config("1.0.0", num_workers=num_workers))
  stats1 = helpers.report(v1)["check_cache"]
  assert stats1["reused"] == 0 and stats1["checked"] == 97
  assert check_cache.verify(str(tmp_path / "out" / "my_images" / "default"
                                / check_cache.DIR_NAME / check_cache.FILE_NAME)) == []
  changes = make_v2(data)
  v2 = helpers.build(data, tmp_path / "out",
                     config=v_config("1.1.0", num_workers=num_workers))
  clean = helpers.build(data, tmp_path / "clean", config=v_config(
      "1.1.0", num_workers=num_workers, check_cache=False))
  assert not (tmp_path / "clean" / "my_images" / "default"
              / check_cache.DIR_NAME).exists()
  # Byte for byte: shards, manifest, card, dataset info, report.
  assert release_files(v2) == release_files(clean)
  stats = helpers.report(v2)["check_cache"]
  assert helpers.report(clean)["check_cache"] is None
  new = changes["added"] + changes["replaced"]
  assert stats["checked"] == new and stats["reused"] == 97 - 2 - 2
  assert stats["warnings"] == []
  # And the data is the input's: every stored image is today's file's bytes.
  import tensorflow_datasets as tfds
  for split in v2.info.splits:
    for ex in tfds.as_numpy(v2.as_dataset(
        split=split, decoders={"image": tfds.decode.SkipDecoding()})):
      name = ex["file_name"].decode()
      assert ex["image"] == (data / name).read_bytes(), name
  examples = helpers.read_all(v2)
  assert examples["cat/cat_000.jpg"]["image"].shape == (30, 40, 3)
  assert "dog/dog_001.jpg" not in examples  # Now not an image: rejected.
  assert any(p["file"].endswith("dog_001.jpg") and "not an image" in p["reason"]
             for p in helpers.report(v2)["problems"])
  names = v2.info.features["label"].names
  assert names[examples["cat/eel_005.jpg"]["label"]] == "cat"
  assert names[examples["dog/cat_012.jpg"]["label"]] == "dog"
  # The card says nothing of the cache (it is the same as the clean one).
  card = (pathlib.Path(v2.data_path) / "dataset_card.md").read_text()
  assert "check cache" not in card and "reused" not in card



def verify_all(directory) -> None:
  assert check_cache.verify(str(directory / check_cache.FILE_NAME)) == []
  cache = open_cache(directory)
  assert cache.spec is not None and cache.warnings == [], cache.warnings
  cache.close()


def _cli(manual_dir, data_dir, config: dict) -> list[str]:
  return helpers.build_command(manual_dir, data_dir,
                               "--config", json.dumps(config))


# `tfds` with every image check 10 ms slower, in the build process
# (`num_workers=0`).
_SLOW_CLI = r"""
import sys, time
from image_folder_tfds import pipeline
process = pipeline.process
def slow(f):
  return lambda *a, **k: (time.sleep(0.01), f(*a, **k))[1]
pipeline.process = slow(process)
from tensorflow_datasets.scripts.cli.main import launch_cli
sys.argv = ["tfds"] + sys.argv[1:]
launch_cli()
"""


def _kill_at(cmd, log_path, marker: str, delay: float) -> None:
  """Runs `cmd`, and `kill -9`s its whole group `delay` s after `marker`
  appears in its log."""
  import signal
  import time
  with open(log_path, "w") as log:
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  deadline = time.monotonic() + 300
  try:
    while marker not in pathlib.Path(log_path).read_text(errors="replace"):
      assert proc.poll() is None, (
          f"build ended before {marker!r}:\n"
          + pathlib.Path(log_path).read_text()[-3000:])
      assert time.monotonic() < deadline, f"no {marker!r} within 300 s"
      time.sleep(0.01)
    time.sleep(delay)
  finally:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
  assert proc.returncode == -signal.SIGKILL, pathlib.Path(log_path).read_text()[-3000:]


@pytest.mark.slow
def test_kill_9_during_cached_builds_never_spoils_the_cache(tmp_path):
  data = tmp_path / "data"
  for i in range(400):
    helpers.write_image(data / f"c{i % 4}" / f"img_{i:04d}.jpg", seed=i,
                        width=48, height=32)
  out = tmp_path / "out"
  cache_dir = out / "my_images" / "default" / check_cache.DIR_NAME
  v1 = helpers.run(_cli(data, out, {"version": "1.0.0",
                                    "release_notes": NOTES}))
  assert v1.returncode == 0, v1.stderr[-3000:]
  for i in range(400, 700):  # v2: 75% more, so v2 has much to add.
    helpers.write_image(data / f"c{i % 4}" / f"img_{i:04d}.jpg", seed=i,
                        width=48, height=32)
  v2 = {"version": "1.1.0", "release_notes": NOTES}
  counts = []
  # Killed while checking and writing train (test's checks were added when
  # it ended), and as validation starts (train's checks just added). The
  # killed builds check each image 10 ms slower (`_SLOW_CLI`, in the build
  # process), so the kill lands inside those phases on a fast machine too.
  slow = [sys.executable, "-c", _SLOW_CLI] + _cli(
      data, out, dict(v2, num_workers=0))[1:]
  for marker, delay in (("Generating train examples", 0.0),
                        ("Generating train examples", 0.4),
                        ("Generating validation examples", 0.0)):
    _kill_at(slow, tmp_path / "log.txt", marker, delay)
    assert not (out / "my_images/default/1.1.0/dataset_info.json").exists()
    verify_all(cache_dir)
    with sqlite3.connect(cache_dir / check_cache.FILE_NAME) as conn:
      counts.append(conn.execute("SELECT count(*) FROM checks").fetchone()[0])
  assert counts[0] >= 400 and counts[-1] > 400, counts  # Kept what it checked.
  final = helpers.run(_cli(data, out, v2))
  assert final.returncode == 0, final.stderr[-3000:]
  verify_all(cache_dir)
  clean = helpers.run(_cli(data, tmp_path / "clean",
                           dict(v2, check_cache=False)))
  assert clean.returncode == 0, clean.stderr[-3000:]
  version = pathlib.Path("my_images/default/1.1.0")
  a, b = out / version, tmp_path / "clean" / version
  names = sorted(p.name for p in a.iterdir())
  assert names == sorted(p.name for p in b.iterdir())
  for name in names:
    if name == "build_report.json":
      ra, rb = (json.loads((d / name).read_text()) for d in (a, b))
      stats = ra.pop("check_cache")
      assert rb.pop("check_cache") is None and ra == rb
      assert stats["reused"] >= counts[-1] and stats["warnings"] == []
      assert stats["reused"] + stats["checked"] == 700
    else:
      assert (a / name).read_bytes() == (b / name).read_bytes(), name
  assert "check cache:" in final.stderr and "images reused" in final.stderr
