"""README's release workflow with real `tfds build` processes (issue 12):
releases load by their plain name, also from `--publish_dir`; an overwrite
deletes nothing before its replacement is complete, even when killed or run
twice at once."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

import helpers
from image_folder_tfds import safety

NOTES = {"1.0.0": "First 6 photos.", "1.1.0": "Two more photos."}

LOAD = """
import json, sys
import tensorflow_datasets as tfds
data_dir, plugin, names = sys.argv[1], sys.argv[2], sys.argv[3:]
if plugin == "import":
  import image_folder_tfds
out = {}
for name in names:
  ds = tfds.load(name, split="all", data_dir=data_dir)
  out[name] = sorted(ex["file_name"].decode() for ex in tfds.as_numpy(ds))
out["has_plugin"] = "image_folder_tfds" in sys.modules
print(json.dumps(out))
"""


def load(data_dir, names, plugin: bool) -> dict:
  """`tfds.load` of each name in one fresh process."""
  run = helpers.run([sys.executable, "-c", LOAD, str(data_dir),
                     "import" if plugin else "no-import", *names])
  assert run.returncode == 0, run.stderr[-3000:]
  out = json.loads(run.stdout.strip().splitlines()[-1])
  assert out.pop("has_plugin") == plugin
  return out


def release_command(data, out, publish=None, overwrite=False):
  """README "Versioned releases" step 1: the release file as the config."""
  config = (data / "my_images.json").read_text()
  cmd = helpers.build_command(data, out, "--config", config)
  if publish:
    cmd += ["--publish_dir", str(publish)]
  if overwrite:
    cmd += ["--overwrite"]
  return cmd


def write_release_file(data, version):
  (data / "my_images.json").write_text(json.dumps(
      {"version": version,
       "release_notes": {v: n for v, n in NOTES.items() if v <= version}}))


@pytest.mark.slow
def test_releases_load_by_plain_name_from_data_dir_and_publish_dir(tmp_path):
  data, out, shared = tmp_path / "photos", tmp_path / "out", tmp_path / "shared"
  v1 = sorted(helpers.make_class_folders(data, per_class=3))
  write_release_file(data, "1.0.0")
  run = helpers.run(release_command(data, out, publish=shared))
  assert run.returncode == 0, run.stderr[-3000:]
  # Step 2: add data, bump the version, the same command.
  for i in (7, 8):
    helpers.write_image(data / "cat" / f"new_{i}.jpg", seed=100 + i)
  v2 = sorted(v1 + ["cat/new_7.jpg", "cat/new_8.jpg"])
  write_release_file(data, "1.1.0")
  run = helpers.run(release_command(data, out, publish=shared))
  assert run.returncode == 0, run.stderr[-3000:]
  # TFDS copied the version folders; the default config's name came too.
  assert json.loads((shared / "my_images" / ".config" / "metadata.json")
                    .read_text()) == {"default_config_name": "default"}
  names = ["my_images:1.0.0", "my_images:1.1.0", "my_images"]
  want = {"my_images:1.0.0": v1, "my_images:1.1.0": v2, "my_images": v2}
  for where in (out, shared):
    for plugin in (False, True):
      assert load(where, names, plugin) == want, (where, plugin)


def _slow_data(root, n=1000):
  """Enough images that a build takes a few seconds (the kill lands in it)."""
  for i in range(n):
    helpers.write_image(root / f"class_{i % 3}" / f"img_{i:04d}.jpg", seed=i,
                        width=64, height=48)
  write_release_file(root, "1.0.0")


def _only_the_release_left(config_dir: pathlib.Path) -> None:
  """No unfinished build and no staged or replaced release is left."""
  names = sorted(p.name for p in config_dir.iterdir())
  assert "1.0.0" in names
  assert not [n for n in names if n.startswith(("incomplete.", ".overwrite-"))]


def _files(version_dir: pathlib.Path) -> dict[str, bytes]:
  return {p.name: p.read_bytes() for p in sorted(version_dir.iterdir())}


def _start(cmd, log_path):
  log = open(log_path, "w")  # pylint: disable=consider-using-with
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                          start_new_session=True)


def _wait_for(predicate, proc, timeout=300):
  end = time.monotonic() + timeout
  while not predicate():
    assert proc.poll() is None, "the build ended before the point awaited"
    assert time.monotonic() < end, "timed out"
    time.sleep(0.01)


@pytest.mark.slow
def test_killed_overwrite_keeps_the_release_then_reruns(tmp_path):
  data, out = tmp_path / "photos", tmp_path / "out"
  _slow_data(data)
  run = helpers.run(release_command(data, out))
  assert run.returncode == 0, run.stderr[-3000:]
  release_dir = out / "my_images" / "default" / "1.0.0"
  before = _files(release_dir)
  helpers.write_image(data / "class_0" / "added.jpg", seed=999)

  proc = _start(release_command(data, out, overwrite=True), tmp_path / "log")
  config_dir = release_dir.parent
  # The rebuild is under way beside the release: kill it there.
  _wait_for(lambda: any(config_dir.glob("incomplete.*_.overwrite-1.0.0/*.tfrecord*")),
            proc)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  assert _files(release_dir) == before  # Untouched, byte for byte.
  assert len(load(out, ["my_images:1.0.0"], plugin=False)["my_images:1.0.0"]) == 1000
  log = (tmp_path / "log").read_text()
  assert "keeping" in log and "until its replacement is complete" in log

  # The same command again: replaces the release, cleans the killed folder.
  run = helpers.run(release_command(data, out, overwrite=True))
  assert run.returncode == 0, run.stderr[-3000:]
  assert "removed 1 unfinished folder(s)" in run.stderr
  got = load(out, ["my_images:1.0.0"], plugin=False)["my_images:1.0.0"]
  assert len(got) == 1001 and "class_0/added.jpg" in got
  _only_the_release_left(config_dir)


@pytest.mark.slow
def test_two_overwrites_at_once_wait_and_never_remove_the_release(tmp_path):
  data, out = tmp_path / "photos", tmp_path / "out"
  _slow_data(data)
  run = helpers.run(release_command(data, out))
  assert run.returncode == 0, run.stderr[-3000:]
  release_dir = out / "my_images" / "default" / "1.0.0"
  info = release_dir / "dataset_info.json"
  helpers.write_image(data / "class_0" / "added.jpg", seed=999)

  config_dir = release_dir.parent
  before = _files(release_dir)
  # A build holds the lock (this process, with the builds' own lock): both
  # overwrites must wait for it, keeping the release as it is.
  with safety.build_lock(release_dir):
    first = _start(release_command(data, out, overwrite=True), tmp_path / "a")
    second = _start(release_command(data, out, overwrite=True), tmp_path / "b")
    for proc, log in ((first, "a"), (second, "b")):
      _wait_for(lambda log=log: "waiting for it to finish" in (
          tmp_path / log).read_text(), proc)
    assert _files(release_dir) == before
  # Released: the two race for the lock; the loser waits again.
  missing = 0
  while first.poll() is None or second.poll() is None:
    missing += not info.is_file()  # The release is there at every instant.
    time.sleep(0.002)
  assert first.returncode == 0, (tmp_path / "a").read_text()[-3000:]
  assert second.returncode == 0, (tmp_path / "b").read_text()[-3000:]
  assert missing == 0
  logs = [(tmp_path / x).read_text() for x in "ab"]
  assert all("until its replacement is complete" in log for log in logs)
  assert all(log.count("replaced by the new build") == 1 for log in logs)
  got = load(out, ["my_images:1.0.0"], plugin=False)["my_images:1.0.0"]
  assert len(got) == 1001
  _only_the_release_left(config_dir)
