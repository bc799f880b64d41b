"""Versioned releases: user versions side by side, byte-identical rebuilds,
the shard manifest and `verify`, stable splits across versions, publishing."""

from __future__ import annotations

import json
import pathlib
import shutil
import sys

import pytest

import helpers
from image_folder_tfds import cli
from image_folder_tfds import release

NOTES_1 = {"1.0.0": "First 60 photos."}
NOTES_2 = {"1.1.0": "Added 6 photos (10%)."}
CLASSES = ("cat", "dog", "bird")


def make_data(root: pathlib.Path, per_class: int, first_seed: int = 0):
  """`root/<class>/<class>_<i>.jpg` for i < per_class (same bytes every time)."""
  for c, cls in enumerate(CLASSES):
    for i in range(per_class):
      helpers.write_image(root / cls / f"{cls}_{i:03d}.jpg",
                          seed=first_seed + 1000 * c + i)


def version_config(version: str, notes: dict[str, str]):
  from image_folder_tfds import MyImagesConfig
  return MyImagesConfig(version=version, release_notes=notes, num_workers=0)


def shard_bytes(builder) -> dict[str, bytes]:
  manifest = json.loads((builder.data_path / release.MANIFEST_FILE).read_text())
  return {s["file"]: (builder.data_path / s["file"]).read_bytes()
          for s in manifest["shards"]}


BUILD = """
import sys
sys.path.insert(0, sys.argv[3])
import helpers
from image_folder_tfds import MyImagesConfig
from image_folder_tfds import builder
if sys.argv[4] == "tfds_serializer":
  builder.MyImages._maker = lambda self, *args: None
helpers.build(sys.argv[1], sys.argv[2], config=MyImagesConfig(
    version="1.0.0", release_notes={"1.0.0": "First 60 photos."}, num_workers=0))
"""


# --- Byte-identical rebuilds ---------------------------------------------


def test_canonical_example_sorts_feature_map():
  """Two wire orders of one Example become the same bytes."""
  import tensorflow as tf

  def one(key, value):
    return tf.train.Example(features=tf.train.Features(feature={
        key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))}))
  a, b = one("a", b"x").SerializeToString(), one("b", b"y").SerializeToString()
  # Concatenated messages merge: same Example, entries in either order.
  ab, ba = a + b, b + a
  assert ab != ba
  assert tf.train.Example.FromString(ab) == tf.train.Example.FromString(ba)
  assert release.canonical_example(ab) == release.canonical_example(ba)
  both = tf.train.Example.FromString(ab).SerializeToString(deterministic=True)
  assert release.canonical_example(ab) == both


# "tfds_serializer": examples take TFDS's own writer and serializer (a build
# without a `pipeline.Maker`, as Beam's workers encode), whose map order
# changes from process to process (measured: 0 of 2,000 records identical
# between two builds without a canonical re-serialization); here
# `writing.passthrough` makes each one canonical.
@pytest.mark.parametrize("path", ["ours", "tfds_serializer"])
def test_rebuild_in_another_process_with_other_hash_seed_is_byte_identical(
    tmp_path, monkeypatch, path):
  from image_folder_tfds import builder as builder_lib
  if path == "tfds_serializer":
    monkeypatch.setattr(builder_lib.MyImages, "_maker", lambda self, *args: None)
  data = tmp_path / "data"
  make_data(data, per_class=20)
  first = helpers.build(data, tmp_path / "a",
                        config=version_config("1.0.0", NOTES_1))
  out = helpers.run([sys.executable, "-c", BUILD, str(data),
                     str(tmp_path / "b"), str(helpers.REPO / "tests"), path],
                    env={"PYTHONHASHSEED": "4242"})
  assert out.returncode == 0, out.stderr[-3000:]
  version_dir = pathlib.Path("my_images/default/1.0.0")
  a, b = tmp_path / "a" / version_dir, tmp_path / "b" / version_dir
  shards_a = shard_bytes(first)
  assert len(shards_a) == 3 and sum(len(v) for v in shards_a.values()) > 0
  for name, data_a in shards_a.items():
    assert (b / name).read_bytes() == data_a, name
  # Everything else written with the release is identical too: no timestamps.
  for name in ("manifest.json", "dataset_info.json", "features.json",
               "metadata.json", "build_report.json", "dataset_card.md"):
    assert (a / name).read_bytes() == (b / name).read_bytes(), name
  assert release.verify(a) == [] and release.verify(b) == []


def test_rebuild_after_deleting_gives_same_manifest(tmp_path):
  data = tmp_path / "data"
  make_data(data, per_class=4)
  builder = helpers.build(data, tmp_path / "out", config=version_config(
      "1.0.0", NOTES_1))
  before = (builder.data_path / release.MANIFEST_FILE).read_text()
  shutil.rmtree(builder.data_path)
  again = helpers.build(data, tmp_path / "out", config=version_config(
      "1.0.0", NOTES_1))
  assert (again.data_path / release.MANIFEST_FILE).read_text() == before


# --- Manifest and verify ----------------------------------------------------


def test_manifest_lists_every_shard_with_records_and_sha256(tmp_path):
  data = tmp_path / "data"
  make_data(data, per_class=4)
  builder = helpers.build(data, tmp_path / "out")
  manifest = json.loads((builder.data_path / release.MANIFEST_FILE).read_text())
  assert manifest["dataset"] == "my_images/default/2.1.0"
  by_split = {}
  for shard in manifest["shards"]:
    digest, size = release.sha256_file(builder.data_path / shard["file"])
    assert (digest, size) == (shard["sha256"], shard["bytes"])
    assert release.count_tfrecords(builder.data_path / shard["file"]) == (
        shard["records"])
    by_split[shard["split"]] = by_split.get(shard["split"], 0) + shard["records"]
  assert by_split == {
      name: len(helpers.read_split(builder, name)) for name in builder.info.splits}
  assert manifest["total_records"] == 12


def test_verify_names_every_shard_that_differs(tmp_path, capsys):
  data = tmp_path / "data"
  make_data(data, per_class=10)
  builder = helpers.build(data, tmp_path / "out")
  folder = builder.data_path
  assert cli.main(["verify", str(folder)]) == 0
  assert "OK" in capsys.readouterr().out
  # `--data_dir` holding one build is accepted too.
  assert cli.main(["verify", str(tmp_path / "out")]) == 0

  shards = sorted(folder.glob("my_images-*.tfrecord-*"))
  tampered, missing = shards[0], shards[1]
  raw = bytearray(tampered.read_bytes())
  raw[len(raw) // 2] ^= 0xFF  # Same size, one byte changed.
  tampered.write_bytes(bytes(raw))
  missing.unlink()
  extra = folder / "my_images-test.tfrecord-00001-of-00002"
  extra.write_bytes(b"")
  problems = release.verify(folder)
  assert len(problems) == 3, problems
  assert f"{tampered}: sha256" in problems[0]
  assert f"{missing}: shard missing" in problems[1]
  assert f"{extra}: shard file not in the manifest" in problems[2]
  assert cli.main(["verify", str(folder)]) == 1
  out = capsys.readouterr().out
  assert "FAILED" in out and tampered.name in out and missing.name in out


def test_verify_counts_records_of_a_cut_shard(tmp_path):
  data = tmp_path / "data"
  make_data(data, per_class=4)
  builder = helpers.build(data, tmp_path / "out")
  shard = sorted(builder.data_path.glob("my_images-train.tfrecord-*"))[0]
  shard.write_bytes(shard.read_bytes()[:-10])
  problems = release.verify(builder.data_path)
  assert any(f"{shard}: size" in p for p in problems), problems
  assert any("truncated record" in p for p in problems), problems


def test_verify_without_manifest_says_so(tmp_path):
  assert "no manifest" in release.verify(tmp_path)[0]


# --- User-owned versions, side by side --------------------------------------


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
  """v1.0.0 from 60 images, 6 more images (10%), v1.1.0 in the same data_dir."""
  root = tmp_path_factory.mktemp("versions")
  data = root / "data"
  make_data(data, per_class=20)
  v1 = helpers.build(data, root / "out", config=version_config("1.0.0", NOTES_1))
  v1_examples = helpers.read_all(v1)
  for c, cls in enumerate(CLASSES):
    for i in range(20, 22):
      helpers.write_image(data / cls / f"{cls}_{i:03d}.jpg", seed=1000 * c + i)
  v2 = helpers.build(data, root / "out", config=version_config("1.1.0", NOTES_2))
  return root / "out", v1, v1_examples, v2


def test_versions_are_built_side_by_side(two_versions):
  out, v1, v1_examples, v2 = two_versions
  assert sorted(p.name for p in (out / "my_images" / "default").iterdir()
                if not p.name.startswith(".")) == [
      "1.0.0", "1.1.0"]
  assert len(v1_examples) == 60
  assert len(helpers.read_all(v2)) == 66
  assert v2.info.release_notes == {**NOTES_1, **NOTES_2}
  assert v1.info.release_notes == NOTES_1
  # The 1.0.0 release is untouched by the 1.1.0 build.
  assert release.verify(v1.data_path) == [] and release.verify(v2.data_path) == []


def test_every_v1_image_keeps_its_split_in_v2(two_versions):
  _, _, v1_examples, v2 = two_versions
  v2_examples = helpers.read_all(v2)
  moved = {f: (ex["split"], v2_examples[f]["split"])
           for f, ex in v1_examples.items()
           if v2_examples[f]["split"] != ex["split"]}
  assert moved == {}
  assert set(v1_examples) < set(v2_examples)
  assert len({ex["split"] for ex in v1_examples.values()}) == 3
  for f, ex in v1_examples.items():
    assert v2_examples[f]["image"].tobytes() == ex["image"].tobytes()


LOAD = """
import json, sys
import tensorflow_datasets as tfds
if sys.argv[2] == "import":
  import image_folder_tfds
out = []
for name in sys.argv[3:]:
  ds, info = tfds.load(name, split="all", data_dir=sys.argv[1], with_info=True)
  out.append({"n": len(list(ds)), "version": str(info.version),
              "notes": dict(info.release_notes)})
print(json.dumps({"loaded": out, "plugin": "image_folder_tfds" in sys.modules}))
"""


def load_fresh(data_dir, names, with_import):
  """Loads each of `names` in one fresh process; their sizes, versions, notes."""
  out = helpers.run([sys.executable, "-c", LOAD, str(data_dir),
                     "import" if with_import else "no", *names])
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["plugin"] == with_import
  return result["loaded"]


@pytest.mark.slow
@pytest.mark.parametrize("with_import", [True, False])
def test_load_either_version_in_a_fresh_process(two_versions, with_import):
  out = two_versions[0]
  v1, v2, latest = load_fresh(
      out, ["my_images:1.0.0", "my_images:1.1.0", "my_images"], with_import)
  assert (v1["n"], v1["version"], v1["notes"]) == (60, "1.0.0", NOTES_1)
  assert (v2["n"], v2["version"]) == (66, "1.1.0")
  assert v2["notes"] == {**NOTES_1, **NOTES_2}
  assert latest == v2  # No version asked: the latest prepared release.


def test_only_a_user_version_prepared_loads_without_a_version(tmp_path):
  """The code's VERSION (1.0.0) is not built: `tfds.load` must not try to."""
  import tensorflow_datasets as tfds
  data = tmp_path / "data"
  make_data(data, per_class=3)
  helpers.build(data, tmp_path / "out", config=version_config(
      "2.0.0", {"2.0.0": "Relabelled."}))
  builder = tfds.builder("my_images", data_dir=tmp_path / "out")
  assert str(builder.version) == "2.0.0" and builder.is_prepared()
  ds = tfds.load("my_images", split="all", data_dir=tmp_path / "out")
  assert len(list(ds)) == 9
  assert builder.info.release_notes["2.0.0"] == "Relabelled."


def test_overwrite_without_a_version_is_refused(tmp_path):
  """`tfds build --overwrite` with no version must not rebuild an old release."""
  import tensorflow_datasets as tfds
  data = tmp_path / "data"
  make_data(data, per_class=2)
  v1 = helpers.build(data, tmp_path / "out", config=version_config(
      "1.0.0", NOTES_1))
  manifest = (v1.data_path / release.MANIFEST_FILE).read_text()
  helpers.write_image(data / "cat" / "cat_new.jpg", seed=99)
  with pytest.raises(release.ReleaseError, match="no version given, and 1.0.0"
                     " is only the latest version prepared"):
    helpers.build(data, tmp_path / "out",
                  download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)
  assert (v1.data_path / release.MANIFEST_FILE).read_text() == manifest
  # With the version given, the overwrite is what the user asked for.
  again = helpers.build(data, tmp_path / "out", config=version_config(
      "1.0.0", NOTES_1),
      download_mode=tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS)
  assert len(helpers.read_all(again)) == 7


# --- The release file in the data folder ------------------------------------


def test_release_file_mismatch_fails_before_anything_is_written(tmp_path):
  data = tmp_path / "data"
  make_data(data, per_class=2)
  (data / release.RELEASE_FILE).write_text(json.dumps(
      {"version": "1.1.0", "release_notes": NOTES_2}))
  with pytest.raises(release.ReleaseError) as e:
    helpers.build(data, tmp_path / "out")  # No version given: 2.1.0.
  msg = str(e.value)
  assert "says this data is version 1.1.0" in msg
  assert "this build is version 2.1.0" in msg
  assert str(data / release.RELEASE_FILE) in msg
  assert not (tmp_path / "out" / "my_images").exists()


def test_release_file_mismatch_is_caught_even_when_a_version_is_prepared(
    tmp_path):
  data = tmp_path / "data"
  make_data(data, per_class=2)
  helpers.build(data, tmp_path / "out")  # 1.0.0, prepared.
  (data / release.RELEASE_FILE).write_text(json.dumps({"version": "1.1.0"}))
  with pytest.raises(release.ReleaseError, match="version 1.1.0"):
    helpers.build(data, tmp_path / "out")


def test_release_file_gives_config_and_notes(tmp_path):
  data = tmp_path / "data"
  make_data(data, per_class=2)
  (data / release.RELEASE_FILE).write_text(json.dumps(
      {"version": "1.0.1", "release_notes": {"1.0.1": "Fixed two labels."}}))
  config = release.config_from_file(data)
  assert (config.name, config.version) == ("default", "1.0.1")
  builder = helpers.build(data, tmp_path / "out", config=config)
  assert builder.info.release_notes == {"1.0.1": "Fixed two labels."}
  assert str(builder.version) == "1.0.1"


def test_release_file_and_config_notes_must_agree(tmp_path):
  data = tmp_path / "data"
  make_data(data, per_class=2)
  (data / release.RELEASE_FILE).write_text(json.dumps(
      {"version": "1.1.0", "release_notes": {"1.1.0": "A"}}))
  with pytest.raises(release.ReleaseError, match="release notes of version"
                     " 1.1.0 differ"):
    helpers.build(data, tmp_path / "out", config=version_config(
        "1.1.0", {"1.1.0": "B"}))
  assert not (tmp_path / "out" / "my_images").exists()  # Failed before work.


@pytest.mark.parametrize("kwargs, error", [
    (dict(version="1.1"), "MyImagesConfig.version='1.1': expected a version"),
    (dict(release_notes={"v2": "x"}), "MyImagesConfig.release_notes key='v2'"),
    (dict(release_notes={"1.0.0": 1}), r"\['1.0.0'\]=1: expected text"),
])
def test_bad_version_or_notes_in_the_config_are_named(kwargs, error):
  from image_folder_tfds import MyImagesConfig
  with pytest.raises(ValueError, match=error):
    MyImagesConfig(**kwargs)


@pytest.mark.parametrize("text, error", [
    ("{", "not valid JSON"),
    ('{"version": "one"}', "expected a version"),
    ('{"version": "1.0.0", "release_notes": ["x"]}', "expected an object"),
])
def test_bad_release_file_is_named(tmp_path, text, error):
  (tmp_path / release.RELEASE_FILE).write_text(text)
  with pytest.raises(release.ReleaseError, match=error) as e:
    release.read_release_file(tmp_path)
  assert str(tmp_path / release.RELEASE_FILE) in str(e.value)


@pytest.mark.slow
def test_tfds_build_cli_release_workflow_and_publish(tmp_path):
  """README's workflow with the real CLI: 1.0.0, add data, 1.1.0, publish."""
  data, out, pub = tmp_path / "data", tmp_path / "out", tmp_path / "pub"
  make_data(data, per_class=3)
  release_file = data / release.RELEASE_FILE

  def tfds_build(*extra):
    result = helpers.run(helpers.build_command(
        data, out, "--config", release_file.read_text(), *extra))
    assert result.returncode == 0, result.stderr[-3000:]

  release_file.write_text(json.dumps({"version": "1.0.0",
                                      "release_notes": NOTES_1}))
  tfds_build()
  for c, cls in enumerate(CLASSES):
    helpers.write_image(data / cls / f"{cls}_new.jpg", seed=500 + c)
  release_file.write_text(json.dumps({"version": "1.1.0",
                                      "release_notes": NOTES_2}))
  tfds_build("--publish_dir", str(pub))
  published = pub / "my_images" / "default" / "1.1.0"
  assert release.verify(published) == []
  assert not (pub / "my_images" / "default" / "1.0.0").exists()
  verify = helpers.run([str(pathlib.Path(sys.executable).parent
                            / "image-folder-tfds"), "verify", str(published)])
  assert verify.returncode == 0, verify.stdout + verify.stderr
  # TFDS's publish_data copies the version folder only, not
  # `my_images/.config/metadata.json` (the default config's name): without
  # the plugin, a published release is loaded with its config named.
  for names, with_import in [
      (["my_images:1.1.0", "my_images/default:1.1.0"], True),
      (["my_images/default:1.1.0"], False)]:
    for loaded in load_fresh(pub, names, with_import):
      assert (loaded["n"], loaded["notes"]) == (12, {**NOTES_1, **NOTES_2})
  assert release.verify(out / "my_images" / "default" / "1.0.0") == []
