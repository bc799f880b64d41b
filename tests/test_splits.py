"""The hash split of a flat folder: fast, and the same as it always was."""

import random
import sys

import pytest

from image_folder_tfds import splits

FRACTIONS = [
    {"train": 0.8, "validation": 0.1, "test": 0.1},
    {"train": 0.5, "test": 0.5},
    {"train": 1.0},
    {"validation": 0.3, "train": 0.7},
    {"train": 0.1, "validation": 0.2, "test": 0.7},
    {"train": 0.7, "validation": 0.2, "test": 0.1},  # Sums to 0.9999999999999999.
]


def reference_split(path: str, fractions) -> str:
  """The definition: the first split whose running sum is above the hash."""
  h = splits.hash_fraction(path)
  upper, last = 0.0, None
  for split in splits.CANONICAL_SPLITS:
    if fractions.get(split):
      upper += fractions[split]
      last = split
      if h < upper:
        return split
  return last


@pytest.mark.parametrize("fractions", FRACTIONS)
def test_assign_splits_matches_the_float_definition(fractions):
  rng = random.Random(7)
  paths = [f"c{rng.randrange(50)}/{rng.random()}.jpg" for _ in range(20_000)]
  paths += ["", "é/名前.png", "a" * 500]
  got = splits.assign_splits(paths, fractions)
  assert got == [reference_split(p, fractions) for p in paths]
  assert got == [splits.assign_split(p, fractions) for p in paths]


@pytest.mark.parametrize("upper", [0.1, 0.8, 0.9, 0.8 + 0.1, 0.7 + 0.2 + 0.1,
                                   1.0, 1e-300, 0.5 + 2**-60])
def test_threshold_is_exactly_where_the_float_test_flips(upper):
  n = splits.fraction_threshold(upper)
  assert n / 2**64 >= upper
  if n > 0:
    assert (n - 1) / 2**64 < upper


def test_splits_of_known_paths_never_change():
  # Computed by the first release: a change here moves users' images
  # between splits of their next version.
  paths = ["dog/photo1.jpg", "cat/0001.png", "flowers/daisy/a b.jpg",
           "ünïcode/名前.jpg", "c0000/0000000.jpg", "x.jpg"]
  assert splits.assign_splits(paths, FRACTIONS[0]) == [
      "train", "validation", "train", "train", "train", "train"]
  assert splits.assign_splits(paths, FRACTIONS[1]) == [
      "train", "test", "test", "train", "train", "test"]


def _batches():
  rng = random.Random(3)
  return [[f"c{b}/{rng.random()}.jpg" for _ in range(rng.randrange(0, 40))]
          for b in range(30)]


def _check_assigner(fractions, helper_expected):
  """`_batches()` through one `SplitAssigner`: the splits `assign_splits` gives."""
  batches = _batches()
  with splits.SplitAssigner(fractions) as assigner:
    for batch in batches:
      assigner.add(batch)
    assert (assigner._helper is not None) == helper_expected  # pylint: disable=protected-access
    assert assigner.results() == [
        splits.assign_splits(b, fractions) for b in batches]
  return assigner


def test_split_assigner_helper_process_gives_the_same_splits(monkeypatch):
  monkeypatch.setattr(splits.SplitAssigner, "HELPER_AFTER", 25)
  assigner = _check_assigner(FRACTIONS[0], helper_expected=True)
  assert assigner._helper.returncode == 0  # pylint: disable=protected-access


def test_split_assigner_small_input_needs_no_helper():
  _check_assigner(FRACTIONS[4], helper_expected=False)


@pytest.mark.parametrize("helper", ["false", "echo"])
def test_split_assigner_falls_back_when_the_helper_fails(monkeypatch, helper):
  # A helper that dies, or answers garbage: the splits are hashed here.
  monkeypatch.setattr(splits.SplitAssigner, "HELPER_AFTER", 1)
  monkeypatch.setattr(sys, "executable", f"/bin/{helper}")
  _check_assigner(FRACTIONS[1], helper_expected=True)


def test_split_assigner_stops_its_helper_on_error(monkeypatch):
  monkeypatch.setattr(splits.SplitAssigner, "HELPER_AFTER", 1)
  with pytest.raises(KeyError):
    with splits.SplitAssigner(FRACTIONS[0]) as assigner:
      assigner.add(["a/b.jpg"])
      raise KeyError("the walk failed")
  assert assigner._helper.returncode is not None  # pylint: disable=protected-access
