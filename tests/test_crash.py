"""`kill -9` of a real `tfds build`, then the same command again (issue 5).

The kill points are spread over a build measured first (an uninterrupted
`tfds build`, also the reference result): each is a marker (this run's
`incomplete.*` folder appears, the build logs "Generating <split> examples"
and, once the split's shards are written, "Done writing <split>",
`dataset_info.json` appears)
plus a fraction of the reference's time to the next marker, so the points
follow the build's phases even on a loaded machine. After each kill the phase
it hit is read from what was on disk and in the log; `tfds.load` must then fail with
"not prepared" or give the complete data, never part of it. The next run is
the rerun of the killed one; the last run finishes, and its shards must equal
the reference build's byte for byte (deterministic serialization, issue 6),
its decoded examples too.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time

import pytest
import tensorflow_datasets as tfds

import helpers

# The default config: image worker processes (issue 4) run beside the build,
# and must not outlive it.
CONFIG_NAME = "default"
NUM_IMAGES = 1500
POLL = 0.005
# TFDS's log lines, in build order, that mark where the build is.
MARKERS = {
    "folder": None,  # This run's `incomplete.*` folder appeared: scanning.
    "gen test": r"Generating test examples",
    "done test": r"Done writing \S+my_images-test",
    "gen train": r"Generating train examples",
    "done train": r"Done writing \S+my_images-train",
    "gen validation": r"Generating validation examples",
    "done validation": r"Done writing \S+my_images-validation",
}
# Kill points: (marker, then this fraction of the reference build's time
# from that marker to the next one). Plus one during start-up (importing
# TensorFlow) and one when `dataset_info.json` appears (finalizing).
KILL_POINTS = [
    ("startup", 0.5), ("folder", 0.0), ("gen train", 0.3), ("gen train", 0.8),
    ("done train", 0.0), ("done validation", 0.0), ("dataset_info", 0.0),
]
# Phase of the build after each marker, as the report names it: a split's
# images are checked and its shards written at once (`shards.py`).
PHASES = {
    "folder": "scanning", "gen test": "writing", "done test": "writing",
    "gen train": "writing", "done train": "writing",
    "gen validation": "writing", "done validation": "finalizing",
}


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("crash_in")
  for i in range(NUM_IMAGES):
    helpers.write_image(root / f"class_{i % 5}" / f"img_{i:05d}.jpg", seed=i,
                        width=48, height=32)
  return root


def command(manual_dir, data_dir):
  return helpers.build_command(manual_dir, data_dir)


class Run:
  """One `tfds build` process, watched through its files and its log."""

  def __init__(self, cmd, data_dir, log_path):
    self.config_dir = pathlib.Path(data_dir) / "my_images" / CONFIG_NAME
    self.final = self.config_dir / "2.1.0"
    self.log_path = log_path
    self.before = {p.name for p in self._incomplete()}
    self.log = open(log_path, "w")  # pylint: disable=consider-using-with
    self.start = time.monotonic()
    self.proc = subprocess.Popen(
        cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))

  def _incomplete(self):
    if not self.config_dir.is_dir():
      return []
    return [p for p in self.config_dir.iterdir()
            if p.name.startswith("incomplete.")]

  def new_folder(self):
    """This run's own `incomplete.*` folder (not a crashed run's)."""
    for p in self._incomplete():
      if p.name not in self.before:
        return p
    return None

  def wait_until(self, predicate, timeout=120.0) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
      if self.proc.poll() is not None:
        raise AssertionError(
            f"build ended (exit {self.proc.returncode}) before the kill"
            f" point:\n{self.text()[-3000:]}")
      if time.monotonic() > deadline:
        raise AssertionError(f"no kill point within {timeout}s")
      time.sleep(POLL)
    return time.monotonic() - self.start

  def files(self, name_part):
    folder = self.new_folder()
    if folder is None:
      return []
    try:
      return [p for p in folder.iterdir() if name_part in p.name]
    except FileNotFoundError:  # Renamed to the final folder meanwhile.
      return []

  def seen(self, marker) -> bool:
    if marker == "folder":
      return self.new_folder() is not None
    if marker == "dataset_info":
      return bool(self.files("dataset_info.json")) or self.final.is_dir()
    return re.search(MARKERS[marker], self.text()) is not None

  def last_marker(self) -> str | None:
    text = self.text()
    last = "folder" if self.new_folder() is not None else None
    for name, pattern in MARKERS.items():
      if pattern and re.search(pattern, text):
        last = name
    return last

  def kill(self) -> str:
    """`kill -9`, then the phase it hit, from what is on disk and logged
    once the build is dead (read before the kill, a rename that lands
    between the look and the kill was missed: "finalizing", yet complete)."""
    os.kill(self.proc.pid, signal.SIGKILL)
    self.proc.wait()
    self.log.close()
    finished = self.final.is_dir()
    info = bool(self.files("dataset_info.json"))
    marker = self.last_marker()
    if finished:
      return "done"
    if marker is None:
      return "startup"
    if info:
      return "finalizing (dataset_info.json written)"
    return f"{PHASES[marker]} (after: {marker})"

  def finish(self, timeout=300):
    code = self.proc.wait(timeout=timeout)
    self.log.close()
    return code

  def text(self):
    return pathlib.Path(self.log_path).read_text(errors="replace")

  def timeline(self) -> dict[str, float]:
    """Runs to the end; seconds from start at which each marker appeared."""
    times = {}
    for name in [*MARKERS, "dataset_info"]:
      times[name] = self.wait_until(lambda name=name: self.seen(name))
    return times


def session_processes(pid):
  out = subprocess.run(["pgrep", "-s", str(pid)], capture_output=True,
                       text=True).stdout
  return out.split()


def shard_digests(version_dir):
  return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(pathlib.Path(version_dir).glob("*.tfrecord-*"))}


def decoded(data_dir):
  builder = tfds.builder(f"my_images/{CONFIG_NAME}",
                         data_dir=os.fspath(data_dir))
  out = {}
  for split in sorted(builder.info.splits):
    rows = helpers.read_split(builder, split)
    out[split] = sorted(
        (ex["file_name"].decode(), int(ex["label"]),
         hashlib.sha256(ex["image"].tobytes()).hexdigest()) for ex in rows)
  return out


def load_state(data_dir, reference):
  """What `tfds.load` sees: "not prepared", or the complete dataset."""
  try:
    tfds.load(f"my_images/{CONFIG_NAME}", data_dir=os.fspath(data_dir),
              download=False)
  except Exception as e:  # pylint: disable=broad-except
    message = str(e)
    assert ("not found" in message or "could not find" in message.lower()
            or "not prepared" in message), message
    return "not prepared"
  assert decoded(data_dir) == reference  # Complete, never partial.
  return "complete"


@pytest.mark.slow
def test_kill_minus_nine_at_many_points_then_rerun(manual_dir, tmp_path):
  ref = Run(command(manual_dir, tmp_path / "reference"), tmp_path / "reference",
            tmp_path / "reference.log")
  times = ref.timeline()
  assert ref.finish() == 0, ref.text()[-3000:]
  order = [*MARKERS, "dataset_info"]
  gaps = {m: times[order[i + 1]] - times[m] for i, m in enumerate(order[:-1])}
  reference = decoded(tmp_path / "reference")
  reference_shards = shard_digests(ref.final)
  assert sum(len(rows) for rows in reference.values()) == NUM_IMAGES

  out = tmp_path / "out"
  cmd = command(manual_dir, out)
  hits = []
  orphans = set()  # Unfinished folders left by the kills.
  for i, (marker, fraction) in enumerate(KILL_POINTS):
    run = Run(cmd, out, tmp_path / f"run{i}.log")
    if marker == "startup":
      time.sleep(fraction * times["folder"])
    else:
      run.wait_until(lambda run=run, marker=marker: run.seen(marker))
      if fraction:
        time.sleep(fraction * gaps[marker])
    at = time.monotonic() - run.start
    phase = run.kill()
    # No process of the build lives on (its image workers see their pipe
    # close and exit by themselves).
    deadline = time.monotonic() + 30
    while session_processes(run.proc.pid) and time.monotonic() < deadline:
      time.sleep(0.1)
    assert not session_processes(run.proc.pid)
    orphans.update(p.name for p in helpers.incomplete_dirs(out))
    seen = load_state(out, reference)
    assert (seen == "complete") == (phase == "done"), (phase, seen)
    hits.append({"point": f"{marker} +{fraction:.0%}", "seconds": round(at, 3),
                 "phase": phase, "load": seen})
    if phase == "done":  # Killed after the rename: keep the chain going.
      shutil.rmtree(run.final)

  final = Run(cmd, out, tmp_path / "final.log")
  # While the rerun builds, readers see no dataset or all of it.
  looks = []
  while final.proc.poll() is None:
    looks.append(load_state(out, reference))
    time.sleep(0.02)
  assert final.finish() == 0, final.text()[-3000:]
  looks.append(load_state(out, reference))
  assert looks[-1] == "complete" and set(looks) <= {"not prepared", "complete"}
  removed = sum(
      int(m) for log in tmp_path.glob("*.log") if log.name != "reference.log"
      for m in re.findall(r"removed (\d+) unfinished folder",
                          log.read_text(errors="replace")))
  assert orphans and removed == len(orphans)  # Each removed, exactly once.
  assert not helpers.incomplete_dirs(out)
  assert shard_digests(final.final) == reference_shards
  assert decoded(out) == reference
  report = json.loads((final.final / "build_report.json").read_text())
  assert sum(c["written"] for c in report["counts"].values()) == NUM_IMAGES

  phases = {h["phase"].split(" ")[0] for h in hits}
  print("\nkill points:", json.dumps(hits, indent=1))
  (pathlib.Path(os.environ.get("CRASH_REPORT", tmp_path / "hits.json"))
   .write_text(json.dumps({"reference": times, "hits": hits,
                           "loads_during_rerun": len(looks)}, indent=1)))
  assert len(hits) == len(KILL_POINTS)
  assert "writing" in phases, hits
  assert len(phases & {"scanning", "writing", "finalizing"}) >= 3
