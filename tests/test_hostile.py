"""The hostile input corpus (tests/hostile/corpus.py), built case by case.

Every case ends in a built dataset or a clean error naming the file and the
problem; never an unhandled exception, a hang (each build runs under an alarm)
or a silently wrong value (examples are read back and compared).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import resource
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import helpers
from hostile import corpus
from image_folder_tfds import images
from image_folder_tfds import pipeline
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds.config import MyImagesConfig


class Hang(Exception):
  pass


@contextlib.contextmanager
def deadline(seconds):
  """Fails a build that takes longer than `seconds` (a hang)."""
  def fire(*_):
    raise Hang(f"no result after {seconds}s")
  old = signal.signal(signal.SIGALRM, fire)
  signal.alarm(int(seconds))
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def build_case(root, out, expect):
  with deadline(expect.timeout):
    return helpers.build(root, out, config=MyImagesConfig(**expect.config))


def check_outcome(expect, root, out, run):
  """Runs `run()` (a build) and checks it against `expect`."""
  if expect.outcome == "error":
    with pytest.raises(expect.error_type) as e:
      run()
    for part in expect.error:
      assert part in str(e.value), str(e.value)
    assert not helpers.incomplete_dirs(out)
    return None
  builder = run()
  examples = helpers.read_all(builder)
  assert set(examples) == expect.written
  report = helpers.report(builder)
  for file_part, reason_part in expect.problems:
    assert any(file_part in p["file"] and reason_part in p["reason"]
               for p in report["problems"]), (file_part, reason_part,
                                              report["problems"])
  for split, c in report["counts"].items():  # Nothing lost.
    assert c["found"] == c["written"] + c["rejected"], split
  if expect.check:
    expect.check(examples)
  return builder


FAST = [name for name in corpus.CASES if name not in ("million_objects",)]


@pytest.mark.parametrize("name", FAST)
def test_hostile_case(name, tmp_path):
  root = tmp_path / "in"
  root.mkdir()
  expect = corpus.CASES[name](root)
  check_outcome(expect, root, tmp_path / "out",
                lambda: build_case(root, tmp_path / "out", expect))


MILLION = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[3])
    import helpers
    from image_folder_tfds import MyImagesConfig
    start = time.monotonic()
    builder = helpers.build(sys.argv[1], sys.argv[2], config=MyImagesConfig(
        name="hostile", split_fractions={"train": 1.0}))
    (example,) = helpers.read_split(builder, "train")
    boxes = example["objects"]["bbox"]
    assert boxes.shape == (1_000_000, 4), boxes.shape
    assert (boxes == [0.25, 0.25, 0.75, 0.75]).all()
    print(f"RESULT built and read back in {time.monotonic() - start:.1f} s")
""")


@pytest.mark.slow
def test_million_object_image_is_built_within_memory(tmp_path):
  """One image with 1,000,000 boxes (a 20 MB annotation file): built, every
  box read back, in a child process capped at 10 GB of address space
  (TensorFlow alone reserves several) and 5 minutes."""
  root = tmp_path / "in"
  root.mkdir()
  corpus.million_objects_file(root)

  def cap():
    resource.setrlimit(resource.RLIMIT_AS, (10 << 30, 10 << 30))

  before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
  out = subprocess.run(
      [sys.executable, "-c", MILLION, str(root), str(tmp_path / "out"),
       str(pathlib.Path(__file__).parent)],
      capture_output=True, text=True, timeout=300, preexec_fn=cap,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
  assert out.returncode == 0, out.stderr[-3000:]
  peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
  result = [l for l in out.stdout.splitlines() if l.startswith("RESULT")]
  print(f"\nmillion objects: {result}, peak RSS {peak_mb:.0f} MB (largest"
        f" child before: {before / 1024:.0f} MB)")
  assert peak_mb < 4096


# Cases that need the file system to change between scan and read.


def _folder(tmp_path, n=3):
  root = tmp_path / "in"
  for i in range(n):
    helpers.write_image(root / "train" / "cat" / f"{i}.jpg", seed=i)
  return root


def _after_scan(monkeypatch, action):
  """Runs `action(scan_result)` right after the scan, before any image is
  read (the window in which a file can vanish or change)."""
  real_scan = readers.scan

  def scan_then_act(*args, **kwargs):
    result = real_scan(*args, **kwargs)
    action(result)
    return result

  monkeypatch.setattr(readers, "scan", scan_then_act)


def _counts_add_up(builder):
  for split, c in helpers.report(builder)["counts"].items():
    assert c["found"] == c["written"] + c["rejected"], split


def _build_rejects_only_1_jpg(root, out, reason):
  """Builds `_folder`'s images: 1.jpg is the one problem, with `reason`."""
  builder = helpers.build(root, out, config=MyImagesConfig(
      name="hostile", num_workers=0))
  assert sorted(helpers.read_all(builder)) == ["train/cat/0.jpg",
                                               "train/cat/2.jpg"]
  (problem,) = helpers.file_problems(helpers.report(builder))
  assert problem["file"] == "train/cat/1.jpg"  # Relative to the data root.
  assert reason in problem["reason"]
  _counts_add_up(builder)


def test_file_vanishes_between_scan_and_read(tmp_path, monkeypatch):
  root = _folder(tmp_path)
  _after_scan(monkeypatch, lambda _: (root / "train/cat/1.jpg").unlink())
  _build_rejects_only_1_jpg(root, tmp_path / "out", "vanished after the scan")


def test_file_replaced_by_a_fifo_after_the_scan(tmp_path, monkeypatch):
  """Opening a FIFO without a writer blocks for ever: it must be refused."""
  root = _folder(tmp_path)

  def to_fifo(_):
    (root / "train/cat/1.jpg").unlink()
    os.mkfifo(root / "train/cat/1.jpg")

  _after_scan(monkeypatch, to_fifo)
  with deadline(60):
    _build_rejects_only_1_jpg(root, tmp_path / "out", "not a regular file")


def test_file_replaced_by_a_folder_after_the_scan(tmp_path, monkeypatch):
  root = _folder(tmp_path)

  def to_folder(_):
    (root / "train/cat/1.jpg").unlink()
    (root / "train/cat/1.jpg").mkdir()

  _after_scan(monkeypatch, to_folder)
  _build_rejects_only_1_jpg(root, tmp_path / "out", "directory")


def test_file_becomes_unreadable_after_the_scan(tmp_path, monkeypatch):
  """Simulated: tests run as root, who reads a chmod 000 file anyway, so
  the read itself is made to fail as it does for a normal user."""
  root = _folder(tmp_path)
  helpers.deny_read(monkeypatch, "1.jpg")
  _build_rejects_only_1_jpg(root, tmp_path / "out",
                            "unreadable: Permission denied")


def test_read_file_refuses_special_files_without_blocking(tmp_path):
  """`images.read_file` on a FIFO returns at once with a clear error."""
  fifo = tmp_path / "pipe.jpg"
  os.mkfifo(fifo)
  start = time.monotonic()
  with deadline(10):
    outcome = pipeline.process(
        records.ImageRecord(key="k", path=str(fifo), file_name="pipe.jpg",
                            split="train", source=str(fifo)),
        images.ImageOptions())
  assert outcome.image is None
  assert "not a regular file" in outcome.problems[0].reason
  assert time.monotonic() - start < 5


def test_unreadable_annotation_file_is_a_clear_error(tmp_path, monkeypatch):
  """Simulated as above (root reads a chmod 000 file): opening the
  annotation file fails. It must not be taken for a stray file (which would
  build the images as a class folder named `img`)."""
  root = tmp_path / "in"
  helpers.write_image(root / "img" / "a.jpg")
  annotation = root / "train.json"
  annotation.write_text('[{"filename": "img/a.jpg"}]')
  import builtins  # pylint: disable=g-import-not-at-top
  real_open = builtins.open

  def open_denied(file, *args, **kwargs):
    if os.fspath(file) == str(annotation):
      raise PermissionError(13, "Permission denied", os.fspath(file))
    return real_open(file, *args, **kwargs)

  monkeypatch.setattr(builtins, "open", open_denied)
  with pytest.raises(records.InputError) as e:
    helpers.build(root, tmp_path / "out", config=MyImagesConfig(
        name="hostile", split_fractions={"train": 1.0}))
  assert str(e.value) == f"{annotation}: cannot read: Permission denied"
  assert not helpers.incomplete_dirs(tmp_path / "out")
