"""Nothing lost, nothing half-written (issue 5): counts, locks, full disks.

Crash tests (`kill -9` of `tfds build`) are in test_crash.py, bad input in
test_hostile.py, property-based tests in test_properties.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow_datasets as tfds

import helpers
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds import report as report_lib
from image_folder_tfds import safety


@pytest.fixture
def folders(tmp_path):
  root = tmp_path / "in"
  files = helpers.make_class_folders(root, classes=("cat", "dog"), per_class=8)
  return root, files


def fresh_builder(data_dir, config="default"):
  """A new builder that reads what is on disk (as `tfds.load` does)."""
  return tfds.builder(f"my_images/{config}", data_dir=os.fspath(data_dir))


def assert_no_dataset(data_dir, config="default"):
  """Loading finds nothing: no partial dataset, no unfinished folder."""
  assert not helpers.incomplete_dirs(data_dir)
  with pytest.raises(Exception, match="(?i)not (been )?(prepared|found)|could"
                     " not find|no such|does not exist"):
    tfds.load(f"my_images/{config}", data_dir=os.fspath(data_dir),
              download=False)


# 1. Count reconciliation ----------------------------------------------------


@pytest.mark.parametrize("writer", ["shards", "tfds"])
def test_lost_example_fails_the_build_and_nothing_is_kept(
    folders, tmp_path, monkeypatch, writer):
  """The engine drops one example silently: the build must not pass.

  "shards": our writer (`shards.write_split`) never gets one example;
  "tfds": TFDS's `Writer` (the builder without a maker) drops one.
  """
  from image_folder_tfds import builder as builder_lib  # pylint: disable=g-import-not-at-top
  from image_folder_tfds import shards  # pylint: disable=g-import-not-at-top
  root, _ = folders
  dropped = []
  if writer == "shards":
    original = shards.write_split

    def lossy_split(examples, *args):
      def without_one():
        for key, example in examples:
          if example is not None and not dropped:
            dropped.append(key)  # Lost, as Beam's DirectRunner lost examples.
            continue
          yield key, example
      return original(without_one(), *args)
    monkeypatch.setattr(shards, "write_split", lossy_split)
  else:
    monkeypatch.setattr(builder_lib.MyImages, "_maker", lambda self, *args: None)
    original = tfds.core.writer.Writer.write

    def lossy_write(self, key, example):
      if not dropped:
        dropped.append(key)
        return None  # Lost, as Beam's DirectRunner lost examples (issue 5).
      return original(self, key, example)
    monkeypatch.setattr(tfds.core.writer.Writer, "write", lossy_write)
  with pytest.raises(report_lib.CountMismatchError) as e:
    helpers.build(root, tmp_path / "out")
  message = str(e.value)
  assert "lost track of inputs, so it is not kept" in message
  assert "inputs found, but" in message and "examples written" in message
  assert dropped
  assert_no_dataset(tmp_path / "out")


def test_counts_are_recorded_with_the_dataset(folders, tmp_path):
  root, files = folders
  (root / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
  (root / "dog" / "empty.png").write_bytes(b"")
  helpers.build(root, tmp_path / "out")

  builder = fresh_builder(tmp_path / "out")  # From disk, not from memory.
  counts = builder.info.metadata["counts"]
  examples = helpers.read_all(builder)
  assert sum(c["found"] for c in counts.values()) == len(files) + 2
  assert sum(c["rejected"] for c in counts.values()) == 2
  for split, c in counts.items():
    assert c["found"] == c["written"] + c["rejected"], split
    assert c["written"] == builder.info.splits[split].num_examples
    assert c["written"] == sum(1 for ex in examples.values()
                               if ex["split"] == split)
  assert sorted(examples) == sorted(files)  # Every good file, each once.
  assert helpers.report(builder)["counts"] == counts


# 3. Early duplicate detection -------------------------------------------------


def test_duplicate_keys_fail_before_any_image_is_read(tmp_path, monkeypatch):
  """The same image listed twice (spelled differently): the scan fails,
  naming both entries, before a single image is read or anything written."""
  root = tmp_path / "in"
  for i in range(3):
    helpers.write_image(root / "img" / f"{i}.jpg", seed=i)
  (root / "train.json").write_text(json.dumps([
      {"filename": "img/0.jpg"}, {"filename": "img/1.jpg"},
      {"filename": "img/2.jpg"}, {"filename": "./img/1.jpg", "id": "again"}]))
  reads = []
  from image_folder_tfds import images
  real_read = images.read_file
  monkeypatch.setattr(images, "read_file",
                      lambda path, data_range=None: reads.append(path)
                      or real_read(path, data_range))
  with pytest.raises(records.InputError) as e:
    helpers.build(root, tmp_path / "out")
  message = str(e.value)
  assert "duplicate example key 'img/1.jpg' in split 'train'" in message
  assert f"{root / 'train.json'}[1]" in message  # First source.
  assert f"{root / 'train.json'}[3]" in message  # Second source.
  assert reads == []  # Found while scanning: no image was read.
  assert_no_dataset(tmp_path / "out")


def test_duplicate_keys_are_checked_per_split_only(tmp_path):
  """One image in two splits is two examples (different splits): allowed."""
  root = tmp_path / "in"
  helpers.write_image(root / "img" / "0.jpg")
  (root / "train.json").write_text(json.dumps([{"filename": "img/0.jpg"}]))
  (root / "test.json").write_text(json.dumps([{"filename": "img/0.jpg"}]))
  builder = helpers.build(root, tmp_path / "out")
  assert {s: i.num_examples for s, i in builder.info.splits.items()} == {
      "train": 1, "test": 1}


def _record(key, split="train", source="a.json"):
  return records.ImageRecord(
      key=key, path=f"/data/{key}", file_name=key, split=split, source=source,
      objects=(records.ObjectRecord(box=(0.1, 0.2, 0.3, 0.4), label=1),))


def _key_error(recs) -> str | None:
  try:
    readers.check_unique_keys(recs)
  except records.InputError as e:
    return str(e)
  return None


def test_packed_records_find_the_same_duplicate_as_a_list():
  """`PackedRecords` are checked on their key hashes: the error is the one
  the plain check gives (the first repeat in input order, both sources)."""
  cases = [
      [("a", "train"), ("b", "train"), ("a", "test"), ("c", "train")],
      [("a", "train"), ("b", "train"), ("b", "train"), ("a", "train")],
      [("a", "train"), ("b", "train"), ("c", "train"), ("b", "train"),
       ("a", "train"), ("b", "train")],
      [("x", "test"), ("y", "train"), ("y", "test"), ("x", "test")],
  ]
  for case in cases:
    recs = [_record(k, s, source=f"f.json[{i}]")
            for i, (k, s) in enumerate(case)]
    assert _key_error(records.PackedRecords(recs)) == _key_error(recs), case
  assert _key_error(recs) == (
      "duplicate example key 'x' in split 'test': from f.json[0] and from"
      " f.json[3]")
  parts = records.PackedRecords(recs).by_split()  # Hashes follow the split.
  assert _key_error(parts["train"]) is None
  assert _key_error(parts["test"]) == _key_error(recs)


def test_a_key_hash_collision_is_not_a_duplicate(monkeypatch):
  """Equal hashes are only candidates: the records are read and compared."""
  monkeypatch.setattr(records, "key_hash", lambda split, key: 7)
  recs = records.PackedRecords(
      _record(f"{i}.jpg", "train" if i % 3 else "test") for i in range(50))
  assert set(recs.key_hashes()) == {7}
  readers.check_unique_keys(recs)  # 50 keys, one hash: no error.
  readers.check_unique_keys(records.PackedRecords(
      [_record("a.jpg", "train"), _record("a.jpg", "test")]))
  recs.append(_record("4.jpg", "train", source="b.json"))
  with pytest.raises(records.InputError, match=(
      r"^duplicate example key '4.jpg' in split 'train': from a.json and from"
      r" b.json$")):
    readers.check_unique_keys(recs)


# 2. Orphaned `incomplete.*` folders and the build lock ------------------------

HOLD_LOCK = """
import sys, time
from image_folder_tfds import safety
with safety.build_lock(sys.argv[1]):
  print("locked", flush=True)
  time.sleep(60)
"""


@contextlib.contextmanager
def lock_held_by_other_process(version_dir):
  proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(version_dir)],
                          stdout=subprocess.PIPE, text=True)
  try:
    assert proc.stdout.readline().strip() == "locked"
    yield proc
  finally:
    proc.kill()
    proc.wait()


def test_lock_names_the_live_holder(tmp_path):
  version_dir = tmp_path / "my_images" / "default" / "2.1.0"
  with lock_held_by_other_process(version_dir) as holder:
    with pytest.raises(safety.BuildLockedError) as e:
      with safety.build_lock(version_dir, wait=False):
        pass
    assert f"pid {holder.pid}" in str(e.value)
  # The holder died (killed): the kernel released its lock.
  with safety.build_lock(version_dir, wait=False) as waited:
    assert waited is False


def test_only_orphans_of_dead_builds_are_removed(tmp_path):
  config_dir = tmp_path / "my_images" / "default"
  dead = config_dir / "incomplete.AB12CD_1.0.0"
  dead_other_version = config_dir / "incomplete.ZZ99ZZ_0.9.0"
  live = config_dir / "incomplete.QW34ER_2.1.0"
  for d in (dead, dead_other_version, live):
    (d / "my_images-train.tfrecord-00000-of-00001").parent.mkdir(parents=True)
    (d / "my_images-train.tfrecord-00000-of-00001").write_bytes(b"partial")
  unrelated = config_dir / "incomplete_notes"  # Not a TFDS build folder.
  unrelated.mkdir()
  logged = []
  with lock_held_by_other_process(config_dir / "2.1.0"):
    with safety.build_lock(config_dir / "1.0.0"):
      removed = safety.remove_orphans(config_dir / "1.0.0", log=logged.append)
  assert sorted(removed) == sorted([str(dead), str(dead_other_version)])
  assert live.is_dir() and unrelated.is_dir()
  assert not dead.exists() and not dead_other_version.exists()
  assert "removed 2 unfinished folder(s) of crashed builds" in logged[0]


def test_build_removes_orphans_of_crashed_builds(folders, tmp_path):
  root, files = folders
  orphan = tmp_path / "out" / "my_images" / "default" / "incomplete.DEAD00_2.1.0"
  orphan.mkdir(parents=True)
  (orphan / "my_images-train.tfrecord-00000-of-00001").write_bytes(b"x" * 100)
  builder = helpers.build(root, tmp_path / "out")
  assert not helpers.incomplete_dirs(tmp_path / "out")
  assert sorted(helpers.read_all(builder)) == sorted(files)


# 4. Concurrent builds ----------------------------------------------------------


def _wait_for(predicate, timeout, what):
  deadline = time.monotonic() + timeout
  while not predicate():
    if time.monotonic() > deadline:
      raise AssertionError(f"timed out after {timeout}s waiting for {what}")
    time.sleep(0.05)


def _lock_is_held(lock) -> bool:
  """Whether a process holds the build lock now (the file's content stays
  after a build ends: only `flock` tells)."""
  try:
    fd = os.open(lock, os.O_RDWR)
  except OSError:
    return False
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    return True
  finally:
    os.close(fd)  # Releases the lock if this test took it.
  return False


def _frozen_holding_the_lock(cmd, version_dir, env, log):
  """Starts a build and freezes it (SIGSTOP) while it holds the build lock,
  before its dataset exists; None when it finished first (a fast machine)."""
  lock = safety.lock_path(version_dir)
  first = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)

  def holds_lock():
    if first.poll() is not None:
      return True  # Ended: checked below.
    try:
      pid = json.loads(open(lock).read() or "{}").get("pid")
    except (OSError, ValueError):
      return False
    return pid == first.pid and _lock_is_held(lock)

  try:
    _wait_for(holds_lock, 120, "the first build to take the lock")
    if first.poll() is None:
      first.send_signal(signal.SIGSTOP)
      # Frozen: whether it still holds the lock cannot change now.
      if _lock_is_held(lock) and not os.path.exists(version_dir):
        return first
      first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=300) == 0, open(log.name).read()
  except BaseException:
    first.send_signal(signal.SIGCONT)
    first.kill()
    first.wait()
    raise
  return None


@pytest.mark.slow
def test_concurrent_builds_never_mix(folders, tmp_path):
  """Two real `tfds build` processes, same dataset and version, one data_dir.

  The first is frozen (SIGSTOP) while it holds the lock, so the second is
  sure to arrive during the first build; it must wait, then reuse the
  finished dataset: both succeed, one generation, one complete dataset.
  Where the first build ends before it can be frozen, it is tried again in
  a new data dir.
  """
  root, files = folders
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  for attempt in range(5):
    out = tmp_path / f"out{attempt}"
    cmd = helpers.build_command(root, out)
    version_dir = out / "my_images" / "default" / "2.1.0"
    logs = [open(tmp_path / f"build{attempt}_{i}.log", "w+")  # pylint: disable=consider-using-with
            for i in (1, 2)]
    first = second = None
    try:
      first = _frozen_holding_the_lock(cmd, version_dir, env, logs[0])
      if first is None:
        continue
      second = subprocess.Popen(cmd, stdout=logs[1], stderr=subprocess.STDOUT,
                                env=env)
      _wait_for(lambda: "waiting for it to finish" in
                open(logs[1].name).read(), 120, "the second build to wait")
      assert second.poll() is None  # Waiting, not building, not failed.
      first.send_signal(signal.SIGCONT)
      assert first.wait(timeout=300) == 0, open(logs[0].name).read()
      assert second.wait(timeout=300) == 0, open(logs[1].name).read()
      break
    finally:
      for p in (first, second):
        if p is not None and p.poll() is None:
          p.send_signal(signal.SIGCONT)
          p.kill()
          p.wait()
      for f in logs:
        f.close()
  else:
    pytest.fail("the first build ended before it could be frozen, 5 times")
  log1, log2 = (open(f.name).read() for f in logs)
  assert f"pid {first.pid}" in log2  # Says whom it waits for.
  assert "my_images build report" in log1
  assert "my_images build report" not in log2  # It generated nothing.
  assert not helpers.incomplete_dirs(out)
  builder = fresh_builder(out)
  examples = helpers.read_all(builder)
  assert sorted(examples) == sorted(files)  # Complete, each image once.
  for name, data in files.items():
    assert examples[name]["file_name"].decode() == name
  assert sum(s.num_examples for s in builder.info.splits.values()) == len(files)


# 5. Unwritable or full output ----------------------------------------------------


def test_read_only_data_dir_is_a_clear_error(folders, tmp_path):
  root, _ = folders
  mnt = tmp_path / "ro"
  with helpers.tmpfs(mnt, size="4m", read_only=True):
    with pytest.raises(safety.OutputError) as e:
      helpers.build(root, mnt / "out")
    message = str(e.value)
    assert "read-only" in message and str(mnt / "out") in message
    assert "Nothing was kept" in message
    assert list(mnt.iterdir()) == []


def test_finished_dataset_on_read_only_media_is_reused(folders, tmp_path):
  root, files = folders
  mnt = tmp_path / "media"
  with helpers.tmpfs(mnt, size="8m"):
    helpers.build(root, mnt / "out")
    helpers.remount(mnt, read_only=True)
    builder = helpers.build(root, mnt / "out")  # TFDS reuses it: no lock.
    assert sorted(helpers.read_all(builder)) == sorted(files)


def test_full_disk_is_a_clear_error_then_a_rerun_completes(tmp_path):
  root = tmp_path / "in"
  files = {}
  for i in range(40):  # About 1.3 MB of images: more than the disk holds.
    rel = f"c{i % 2}/noise_{i}.png"
    files[rel] = helpers.write_noise_png(root / rel, seed=i, side=100)
  mnt = tmp_path / "small"
  with helpers.tmpfs(mnt, size="1m"):
    with pytest.raises(safety.OutputError) as e:
      helpers.build(root, mnt / "out")
    message = str(e.value)
    assert "disk is full" in message and str(mnt / "out") in message
    assert "Nothing was kept" in message
    assert_no_dataset(mnt / "out")
    helpers.remount(mnt, size="16m")  # Space freed: the same build again.
    builder = helpers.build(root, mnt / "out")
    examples = helpers.read_all(builder)
    assert sorted(examples) == sorted(files)
    for name, data in files.items():
      assert examples[name]["image"].shape == (100, 100, 3)
    assert not helpers.incomplete_dirs(mnt / "out")


def test_output_error_only_for_output_problems(tmp_path):
  """An unreadable input is not reported as an unwritable data_dir."""
  denied = PermissionError(13, "Permission denied", "/data/in/cat/1.jpg")
  assert safety.output_error(denied, tmp_path / "out", "writing") is None
  denied_out = PermissionError(13, "Permission denied", str(tmp_path / "out/x"))
  assert safety.output_error(denied_out, tmp_path / "out", "writing") is not None
  full = RuntimeError("Failed to finalize writing of split 'train': No space"
                      " left on device")
  error = safety.output_error(full, tmp_path / "out", "writing")
  assert isinstance(error, safety.OutputError) and "disk is full" in str(error)


def test_file_system_without_locks_builds_and_leaves_orphans(folders, tmp_path,
                                                           monkeypatch):
  """Where flock is not supported (ENOLCK), the build goes on with a warning,
  and removes no folder: without a lock, it cannot know that one is dead."""
  import errno  # pylint: disable=g-import-not-at-top
  import fcntl  # pylint: disable=g-import-not-at-top
  root, files = folders
  orphan = tmp_path / "out" / "my_images" / "default" / "incomplete.MAYBE0_2.1.0"
  orphan.mkdir(parents=True)

  def no_locks(fd, op):
    raise OSError(errno.ENOLCK, "No locks available")

  monkeypatch.setattr(fcntl, "flock", no_locks)
  logged = []
  monkeypatch.setattr(safety, "_log", logged.append)
  builder = helpers.build(root, tmp_path / "out")
  assert sorted(helpers.read_all(builder)) == sorted(files)
  assert orphan.is_dir()  # Maybe a live build's: left alone.
  assert any("has no file locks" in m for m in logged), logged
