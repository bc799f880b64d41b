"""my_images: your own images as a versioned, sharded TFDS dataset."""

from __future__ import annotations

import collections
import functools
import itertools
import os
import shutil
import sys
from collections.abc import Iterable, Iterator

import tensorflow_datasets as tfds
from tensorflow_datasets.core import dataset_builder
from tensorflow_datasets.core import file_adapters
from tensorflow_datasets.core import splits as splits_lib

from image_folder_tfds import card as card_lib
from image_folder_tfds import beam as beam_lib
from image_folder_tfds import check_cache
from image_folder_tfds import features
from image_folder_tfds import images
from image_folder_tfds import label_map
from image_folder_tfds import model_garden
from image_folder_tfds import pipeline
from image_folder_tfds import readers
from image_folder_tfds import records
from image_folder_tfds import release
from image_folder_tfds import remote
from image_folder_tfds import report as report_lib
from image_folder_tfds import safety
from image_folder_tfds import shards
from image_folder_tfds import writing
from image_folder_tfds.config import MyImagesConfig

_HOMEPAGE = "https://pypi.org/project/image-folder-tfds/"
# Fewer images than this are checked in the build process (no workers).
MIN_IMAGES_FOR_WORKERS = 64

_DESCRIPTION = """\
Images from a folder of your own: class-named folders
(`DIR/<class>/<image>`, `DIR/<split>/<class>/<image>`) or annotation files,
checked file by file and written by TFDS. See `build_report.json` next to the
dataset for every input that was rejected or changed.
"""
_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Pass your data folder with `--manual_dir DIR` (Python:
`download_config=tfds.download.DownloadConfig(manual_dir=DIR)`). DIR holds
class folders (`DIR/dog/1.jpg`, or `DIR/train/dog/1.jpg`), optionally a
`labels.txt` with one class name per line.
"""


class MyImages(tfds.core.GeneratorBasedBuilder):
  """Your own images, from class folders or annotation files."""

  VERSION = tfds.core.Version("2.1.0")
  RELEASE_NOTES = {
      "1.0.0": "First release.",
      "2.0.0": (
          "Schema 2: the features follow the data (classification,"
          " detection or keypoints; optional fields only when given) and"
          " keypoints are dense (num_keypoints,) arrays per object."
          " Datasets built with 1.x keep their features and still load."),
      "2.1.0": (
          "The exports of annotation tools are read: YOLO (Ultralytics,"
          " Roboflow, Darknet, labelImg; detect, segment, pose), CVAT XML,"
          " LabelMe and Label Studio JSON, Hugging Face imagefolder"
          " metadata, label CSVs, unlabeled folders and the TFRecords of the"
          " old scripts. Schema 2 gains the kind 'images' (no class and no"
          " object: a dataset without a class is no longer 'classification'"
          " with every label -1), the optional `labels` feature (several"
          " image-level classes, Sequence(ClassLabel)) and metadata columns"
          " as features of their own names. Datasets built with 2.0.0 and"
          " 1.x keep their features and still load."),
  }
  BUILDER_CONFIGS = [MyImagesConfig()]
  MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS

  @tfds.core.utils.classproperty
  @classmethod
  def _checksums_path(cls):
    return remote.checksums_path(cls.code_path)

  @tfds.core.utils.classproperty
  @classmethod
  def url_infos(cls):
    # TFDS memoizes `url_infos` per class for the whole process; read the file
    # each time, so checksums registered by an earlier build are checked.
    return remote.load_url_infos(cls._checksums_path)

  def _create_builder_config(self, builder_config, version):
    # TFDS refuses every config object named like one in BUILDER_CONFIGS
    # ("Cannot name a custom BuilderConfig the same as an available
    # BuilderConfig"), even `{"version": "1.1.0"}`: accept it when only the
    # version, release notes or workers differ, which do not change the data
    # (MyImagesConfig itself refuses other changes under the name "default").
    known = self.builder_configs.get(getattr(builder_config, "name", None))
    if (isinstance(builder_config, MyImagesConfig) and known is not None
        and known.options() == builder_config.options()):
      return builder_config
    return super()._create_builder_config(builder_config, version)

  def _pick_version(self, requested_version):
    # The version is the user's (config or release file), not the code's.
    # With no version asked for, TFDS would pick VERSION (2.1.0) and try to
    # build it although the user's 1.1.0 is prepared: pick the latest prepared
    # version instead, as TFDS itself does when it loads from files.
    if not self.builder_config.version and requested_version != "experimental_latest":
      prepared = release.prepared_versions(
          self._original_state["data_dir"], self.name, self.builder_config_name)
      for version in reversed(prepared):
        if requested_version is None or version.match(str(requested_version)):
          self._version_from_disk = requested_version is None
          return version
    return super()._pick_version(requested_version)

  def _example_writer(self):
    # Beam workers serialize with TFDS's own serializer, whose map order
    # varies between processes: re-serialize there. In-process examples are
    # canonical already (`writing.passthrough`), so they are written as is.
    if getattr(self, "_beam", False):
      return release.DeterministicExampleWriter(file_format=self.info.file_format)
    return super()._example_writer()

  def download_and_prepare(self, *, download_config=None, **kwargs):
    # Before TFDS's "already prepared" shortcut: data whose release file names
    # another version must never pass for this version.
    release_file = release.read_release_file(
        download_config and download_config.manual_dir)
    release.publish_with_default_config()  # For `tfds build --publish_dir`.
    release.check_release_file(release_file, str(self.version))
    if getattr(self, "_version_from_disk", False) and download_config and (
        download_config.download_mode.overwrite_dataset):
      # `tfds build --overwrite` without a version would rebuild whichever
      # version is prepared latest (after TFDS deleted it: an older one) from
      # today's data.
      raise release.ReleaseError(
          f"my_images: no version given, and {self.version} is only the latest"
          " version prepared: refusing to overwrite it. Give the version to"
          f" rebuild: --config '{{\"version\": \"{self.version}\"}}'.")
    # Release notes that contradict each other fail here, before any work.
    self._release_notes = release.release_history(self, release_file)
    mode = download_config and download_config.download_mode
    overwrite = bool(mode and mode.overwrite_dataset)
    if self.is_prepared() and not overwrite:
      # Reused as it is (also from read-only media): nothing to lock.
      super().download_and_prepare(download_config=download_config, **kwargs)
      return
    # One build per version and data_dir at a time; unfinished folders of
    # crashed builds removed; a full or read-only data_dir a clear error.
    with safety.exclusive_build(self.data_path, self.data_dir_root) as waited:
      if overwrite and safety.is_local(self.data_dir) and safety.is_release(
          self.data_path):
        self._overwrite_release(download_config, **kwargs)
        return
      super().download_and_prepare(download_config=download_config, **kwargs)
    if waited and self.is_prepared():  # The build we waited for made it.
      self.info.read_from_directory(self.data_path)

  @property
  def data_path(self):
    # `tfds build --overwrite` deletes this folder before any lock is taken,
    # and TFDS's download_and_prepare again: a finished release is kept
    # instead and replaced once its rebuild is complete (_overwrite_release).
    return safety.guard_release(super().data_path)

  def _overwrite_release(self, download_config, **kwargs) -> None:
    """Rebuilds the release beside it, then swaps it in (lock held).

    TFDS builds into `.overwrite-<version>` exactly as into a new version
    folder (its own `incomplete.*` folder, renamed when complete); only then
    is it swapped with the release, atomically. A kill before leaves the old
    release as it was (the next build removes the unfinished folder).
    """
    staged = safety.staging_dir(self.data_dir)
    if os.path.isdir(staged):  # A complete one from a build killed at the swap.
      shutil.rmtree(staged)
    with tfds.core.utils.temporary_assignment(self, "_data_dir", staged):
      super().download_and_prepare(download_config=download_config, **kwargs)
    safety.replace_release(staged, self.data_dir)
    self.info.update_data_dir(self.data_dir)

  def _info(self) -> tfds.core.DatasetInfo:
    config: MyImagesConfig = self.builder_config
    image_key = features.IMAGE if config.store_images else features.IMAGE_PATH
    if config.output_format == "model_garden":
      # Its keys are nested (image/encoded): TFDS's as_supervised reads only
      # top-level keys, so there is no (image, label) pair. Mask keys only
      # once the scan has found masks (`_scan_input`).
      encoder = getattr(self, "_encoder", None)
      feature_dict = (encoder.features_dict() if encoder is not None
                      else features.model_garden_features_dict())
      supervised_keys = None
    elif getattr(self, "_schema", None) is not None:  # Found by the scan.
      feature_dict = self._schema.features_dict()
      supervised_keys = self._schema.supervised_keys()
    elif (stored := self._stored_features()) is not None:
      # A prepared dataset is read with the features it was written with
      # (any schema: 1.x releases too), as TFDS does without the plugin.
      feature_dict = stored
      supervised_keys = (
          (image_key, features.LABEL) if features.LABEL in stored else None)
    else:
      # Not built yet: the features follow the data, and are only known once
      # the build has scanned it (`_scan_input`). Until then, the schema the
      # config's kind gives with no optional field.
      kind = config.kind if config.kind != "auto" else features.CLASSIFICATION
      schema = features.Schema(
          kind=kind, store_images=config.store_images,
          num_keypoints=1 if kind == features.KEYPOINTS_KIND else 0)
      feature_dict, supervised_keys = (
          schema.features_dict(), schema.supervised_keys())
    if config.output_format != "model_garden":
      features.dense_numpy_sequences(feature_dict)
    return tfds.core.DatasetInfo(
        builder=self,
        description=_DESCRIPTION,
        features=feature_dict,
        supervised_keys=supervised_keys,
        homepage=_HOMEPAGE,
        metadata=tfds.core.MetadataDict(),
    )

  def _stored_features(self):
    """The features of the prepared dataset at `data_path`, if there is one."""
    path = self.data_path
    if not ((path / "dataset_info.json").exists()
            and (path / "features.json").exists()):
      return None
    return tfds.features.FeaturesDict.from_config(path)

  def _scan_input(self, dl_manager) -> None:
    """Reads the input once, and fixes the features from what it holds.

    TFDS fixes a builder's features in `_info`, when the builder is made and
    before the data folder is known, and its writer takes them before
    `_split_generators` runs. The data decides the schema here
    (`features.Schema.from_records`), and the features and supervised keys
    of `self.info` are set to it before TFDS's writer is made.
    """
    config: MyImagesConfig = self.builder_config
    self._source = config.source_url and remote.download_and_extract(
        dl_manager, config.source_url, self.url_infos)
    root = self._source.root if self._source else dl_manager.manual_dir
    with readers.common.scan_progress(root):
      scan = readers.scan(root, config.layout, config.read_options())
    self._scan = scan
    self._encoder = None
    self._schema = None
    if config.output_format == "model_garden":
      self._encoder = model_garden.Encoder.from_scan(scan)
    else:
      self._schema = features.Schema.from_records(
          scan.records, store_images=config.store_images, kind=config.kind,
          columns=scan.columns)
    fresh = self._info()
    info = self.info
    info._features = fresh.features  # pylint: disable=protected-access
    info.as_proto.ClearField("supervised_keys")
    if fresh.as_proto.HasField("supervised_keys"):
      info.as_proto.supervised_keys.CopyFrom(fresh.as_proto.supervised_keys)
    if self._schema is not None:
      features.set_class_names(info.features, scan.class_names)
      info.metadata["schema"] = self._schema.to_metadata()
      if self._schema.has(features.SEGMENTATION_MASK):
        # No ClassLabel holds them: mask value i is class_names[i].
        info.metadata["class_names"] = list(scan.class_names)
    self._report = report_lib.BuildReport(
        root=str(root), layout=scan.layout, class_names=scan.class_names,
        options=config.options())
    self._report.add_scan(scan)
    if self._encoder is not None:
      for p in model_garden.dropped_fields(
          scan.records, scan.class_names, str(root)):
        self._report.add(p)

  def _generate_splits(self, dl_manager, download_config):
    """Each split's shards, written as its examples come (`shards.py`).

    TFDS's own writer (through `_split_generators`) writes Beam builds,
    capped debug builds and the file formats `shards.py` cannot read back.
    """
    if not self._writes_shards(download_config):
      return super()._generate_splits(dl_manager, download_config)
    by_split = self._prepare_splits()
    dataset_builder._check_split_names(by_split)  # pylint: disable=protected-access
    return [self._write_split(split, recs, checked, download_config)
            for split, (recs, checked) in by_split.items()]

  def _writes_shards(self, download_config) -> bool:
    """Whether this build writes its shards itself (`shards.write_split`)."""
    file_format = self.info.file_format
    return (self._pool is not None and self._pool.maker is not None
            and download_config.max_examples_per_split is None
            and file_format in shards.FORMATS
            and (file_format == file_adapters.FileFormat.TFRECORD
                 or safety.is_local(self.data_dir)))

  def _frames_records(self, download_config) -> bool:
    """Whether the workers frame each example as its TFRecord record, for
    `shards.TfRecordWriter`: local TFRecord shards that `_write_split`
    writes (a Beam build has no maker; `_writes_shards` holds)."""
    return (download_config.max_examples_per_split is None
            and self.info.file_format == file_adapters.FileFormat.TFRECORD
            and safety.is_local(self.data_dir))

  def _write_split(self, split: str, recs, checked: list[pipeline.Outcome],
                   download_config) -> splits_lib.SplitInfo:
    """Checks and writes one split, in TFDS's order; its `SplitInfo`."""
    if download_config.nondeterministic_order or self.info.disable_shuffling:
      order = list(range(len(recs)))  # TFDS's writer: the order they come.
      hkeys = order
    else:
      order, hkeys = shards.hash_order(records.keys_of(recs), split)
    counts = self._class_counts[split]
    problems: list[tuple[int, records.Problem]] = []

    def examples():
      for i, outcome in self._outcomes_in(order, recs, checked):
        self._take(outcome, (problems, i))
        if outcome.accepted:
          counts.update(records.counted_classes(outcome.record))
        yield hkeys[i], outcome.example

    template = self._get_filename_template(split_name=split)
    shard_lengths, size = shards.write_split(
        tfds.core.utils.tqdm(
            examples(), desc=f"Generating {split} examples...",
            unit=" examples", total=len(recs), leave=False, mininterval=1.0),
        len(recs), template, download_config.get_shard_config(),
        shards.TfRecordWriter() if self._pool.maker.framed
        else self._example_writer())
    # The report lists a split's problems in input order, as they were met
    # when the images were checked in that order.
    for _, problem in sorted(problems, key=lambda item: item[0]):
      self._report.add(problem)
    if self._cache is not None:
      self._cache.flush()  # A build killed later keeps this split's checks.
    return splits_lib.SplitInfo(name=split, shard_lengths=shard_lengths,
                                num_bytes=size, filename_template=template)

  def _outcomes_in(self, order: list[int], recs,
                   checked: list[pipeline.Outcome]):
    """(input index, outcome) of every record, in `order`. `checked`: the
    outcomes of the first records, checked already."""
    rest = (recs[i] for i in order if i >= len(checked))
    outcomes = self._check(rest, len(recs))
    try:
      for i in order:
        yield i, checked[i] if i < len(checked) else next(outcomes)
      for extra in outcomes:  # Runs the map to its end: the workers stay.
        raise RuntimeError(f"{extra.record.path}: checked twice")
    finally:
      outcomes.close()

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    config: MyImagesConfig = self.builder_config
    by_split = self._prepare_splits()
    if getattr(self, "_beam", False):  # `--beam_pipeline_options`: workers report back (beam.py).
      self._sent = {split: len(recs) for split, (recs, _) in by_split.items()}
      encode = functools.partial(_encode_outcome, self._encoder, self._schema)
      return {
          split: beam_lib.split_transform(
              recs, self.data_path / beam_lib.WORK_DIR, self._image_options(),
              encode, config.strict)
          for split, (recs, _) in by_split.items()
      }
    return {
        split: self._generate_examples(recs, checked)
        for split, (recs, checked) in by_split.items()
    }

  def _prepare_splits(self):
    """{split: (records, outcomes checked)} to write; what the scan says of
    the whole dataset goes into the info."""
    config: MyImagesConfig = self.builder_config
    scan = self._scan  # Read by `_scan_input`.
    self._class_counts = collections.defaultdict(collections.Counter)
    if scan.keypoint_names:  # COCO: the names of each class's keypoints.
      self.info.metadata["keypoint_names"] = scan.keypoint_names
    if scan.skeletons:  # COCO: keypoint links, for `image-folder-tfds show`.
      self.info.metadata["skeletons"] = scan.skeletons
    for key, value in scan.metadata.items():  # What else the format says.
      if key in self.info.metadata:
        raise ValueError(f"metadata key {key!r} of the scan is taken")
      self.info.metadata[key] = value
    if config.strict:
      for p in self._report.problems:
        _check_strict(p)
    return self._splits_to_write(scan.by_split(), self._report.root)

  def _splits_to_write(self, by_split, root):
    """{split: (records, outcomes checked)}, leaving out splits with nothing
    to write.

    TFDS cannot write an empty split ("No examples were yielded") and fails
    the whole build, so each split's images are checked here, in order, up
    to the first one that can be written (one image for almost every split).
    A split where none can is left out, its problems reported (the report
    says it is left out, naming the files). The outcomes checked here are
    reused by the generator, not checked twice (Beam re-checks them on its
    workers, which report them).
    """
    pool = getattr(self, "_pool", None)
    if pool is not None:  # In this process, with the check cache if any.
      check = lambda rec: next(pool.map([rec], in_process=True))
    else:
      options = self._image_options()
      check = lambda rec: pipeline.process(rec, options)
    kept = {}
    for split, recs in sorted(by_split.items()):
      checked = []
      for rec in recs:
        checked.append(check(rec))
        if checked[-1].accepted:
          break
      if checked and checked[-1].accepted:
        kept[split] = (recs, checked)
        continue
      for outcome in checked:
        self._take(outcome)
    if not kept:
      rejected = [p for p in self._report.problems
                  if p.kind == "rejected" and p.counts_as_input]
      raise records.InputError(
          f"{root}: no image could be written: all"
          f" {sum(self._report.found.values())} input(s) were rejected;"
          f" first: {rejected[0] if rejected else '-'}")
    return kept

  def _image_options(self) -> images.ImageOptions:
    config: MyImagesConfig = self.builder_config
    return images.ImageOptions(
        max_side=config.max_side,
        max_image_pixels=config.max_image_pixels,
        keep_bytes=config.store_images,
    )

  def _check(self, recs: Iterable[records.ImageRecord], split_size: int
             ) -> Iterator[pipeline.Outcome]:
    """`recs` checked, in order, where it costs least: the pool's workers,
    or this process for a small split (starting processes costs more than
    it saves)."""
    config: MyImagesConfig = self.builder_config
    pool = getattr(self, "_pool", None)
    if split_size < MIN_IMAGES_FOR_WORKERS and not (pool and pool.started):
      return (pool.map(recs, in_process=True) if pool is not None
              else pipeline.process_all(recs, self._image_options(), 0))
    if pool is not None:
      return pool.map(recs)  # Workers kept from split to split.
    return pipeline.process_all(recs, self._image_options(),
                                config.num_workers)

  def _generate_examples(self, recs: list[records.ImageRecord],
                         checked: list[pipeline.Outcome]):
    """The examples of one split, for TFDS's writer (`_generate_splits`);
    `checked`: its first outcomes, checked already by `_splits_to_write` (at
    least one of them written)."""
    rest = itertools.islice(recs, len(checked), None)
    for outcome in itertools.chain(checked, self._check(rest, len(recs))):
      self._take(outcome)
      if not outcome.accepted:
        continue
      self._class_counts[outcome.record.split].update(
          records.counted_classes(outcome.record))
      if outcome.example is not None:  # Made by `pipeline.Maker`.
        if self._pool.maker.framed:  # Never: `_frames_records`.
          raise RuntimeError("framed records given to TFDS's writer")
        yield outcome.record.key, writing.Serialized(outcome.example)
      else:  # No maker: TFDS's own encoding (`writing.passthrough`).
        yield outcome.record.key, self._encode(outcome)
    cache = getattr(self, "_cache", None)
    if cache is not None:
      cache.flush()  # A build killed later keeps this split's checks.

  def _take(self, outcome: pipeline.Outcome,
            later: tuple[list, int] | None = None) -> None:
    """Records a checked image: its cache entry, its problems (strict stops).

    `later`: (a list, the input index): the problems are appended to the
    list as (index, problem), for the caller to add in input order.
    """
    cache = getattr(self, "_cache", None)
    if cache is not None:
      cache.record(outcome.cache)
    for p in outcome.problems:
      if later is None:
        self._report.add(p)
      else:
        later[0].append((later[1], p))
      if self.builder_config.strict:
        _check_strict(p)

  def _maker(self, framed: bool = False) -> pipeline.Maker | None:
    """How the workers make each example's bytes (None under Beam, whose
    workers encode with TFDS); `framed`: as TFRecord records."""
    if self._beam:
      return None
    encode = (self._encoder.encode if self._encoder is not None
              else self._schema.to_example)
    return pipeline.Maker(encode,
                          writing.Serializer.for_features(self.info.features),
                          framed)

  def _encode(self, outcome: pipeline.Outcome) -> dict:
    return _encode_outcome(self._encoder, self._schema, outcome)

  def _download_and_prepare(self, dl_manager, download_config):
    # Our examples arrive serialized from the workers (`pipeline.Maker`) and
    # are written as they come (`_generate_splits`); where TFDS's own writer
    # writes them, its shuffle buffer is capped so memory stays bounded.
    self._pool = None
    self._beam = beam_lib.uses_beam(download_config)
    if self._beam:
      beam_lib.check_runner(download_config)
      beam_lib.fix_runner_output_stream_race()  # Beam's own data loss.
    if warning := beam_lib.direct_runner_warning(download_config):
      print(warning, file=sys.stderr)
    config: MyImagesConfig = self.builder_config
    self._scan_input(dl_manager)  # Before TFDS's writer takes the features.
    self._cache = None if self._beam else self._open_check_cache()
    try:
      with writing.passthrough(self.info.features), \
          writing.bounded_shuffle_memory(), \
          pipeline.Pool(self._image_options(), config.num_workers,
                        self._cache and self._cache.spec,
                        self._maker(self._frames_records(download_config))
                        ) as self._pool:
        super()._download_and_prepare(dl_manager, download_config)
    finally:
      self._pool = None
      if self._cache is not None:
        self._cache.close()
    if self._beam:
      self._add_beam_outcomes()
    release.write_manifest(self.data_path, self.info)
    if self._encoder is not None:
      self.info.metadata.update(self._encoder.metadata())
      label_map.write(self.data_path, self._encoder.class_names,
                      features.MG_LABEL_OFFSET, self._encoder.keypoint_names)
    if download_config.max_examples_per_split is not None:
      return  # A debug build writes a subset on purpose: nothing to reconcile.
    written = {name: info.num_examples for name, info in self.info.splits.items()}
    counts = self._report.reconcile(written)
    self._report.add_split_warnings(counts, config.min_split_examples)
    self.info.metadata["counts"] = counts
    self.info.metadata["layout"] = self._report.layout
    self.info.metadata["problem_counts"] = self._report.to_dict()["problem_counts"]
    # Build-specific (how this build went, not what it built): in the report
    # and the summary printed, never in the card.
    self._report.check_cache = self._cache and self._cache.stats()
    (self.data_path / report_lib.REPORT_FILE).write_text(
        self._report.to_json(counts))
    summary = self._report.summary(counts)
    if self._cache is not None:
      summary += "\n" + self._cache.summary()
    print(f"\ndata folder: {self._report.root}\n" + summary, file=sys.stderr)
    self._write_card(counts)

  def _open_check_cache(self) -> check_cache.Cache | None:
    """The check cache of this build (None when the config turns it off)."""
    config: MyImagesConfig = self.builder_config
    if not config.check_cache:
      return None
    # `data_path` is TFDS's `incomplete.*` folder now; its parent is the
    # config folder, shared by every version.
    directory = config.check_cache_dir or check_cache.default_dir(
        os.fspath(self.data_path.parent))
    ns, description = check_cache.namespace_of(
        self._image_options(), config.output_format)
    return check_cache.Cache(os.fspath(directory), ns, description)

  def _add_beam_outcomes(self) -> None:
    """Problems and counts that Beam's workers sent back (beam.py)."""
    outcomes = beam_lib.read_outcomes(self.data_path / beam_lib.WORK_DIR)
    beam_lib.check_outcomes(self._sent, outcomes)
    beam_lib.check_shards(self.data_path, self.info.splits)
    for p in outcomes.problems:
      self._report.add(p)
    for split, labels in outcomes.labels.items():
      self._class_counts[split].update(labels)

  def _write_card(self, counts) -> None:
    """Release notes into the info; the card, also the TFDS description."""
    config: MyImagesConfig = self.builder_config
    notes = self._release_notes  # Made by `download_and_prepare`.
    self.info.as_proto.release_notes.clear()
    self.info.as_proto.release_notes.update(notes)
    # DatasetInfo has no setter; `info.release_notes` reads its identity.
    self.info._identity.release_notes = notes  # pylint: disable=protected-access
    text = card_lib.render(
        name=self.name, version=str(self.version), description=_DESCRIPTION,
        source=self._source_text(), options=config.options(),
        class_names=self._report.class_names, counts=counts,
        class_counts=self._class_counts, release_notes=notes,
        report_summary=self._report.summary(counts))
    (self.data_path / card_lib.CARD_FILE).write_text(text)
    self.info.as_proto.description = text

  def _source_text(self) -> str:
    """The source for the card: the URL, or the data folder's name only (an
    absolute local path would differ from machine to machine)."""
    if self._source:
      return str(self._source)  # URL, size and sha256.
    return (f"`{self._report.root_name}/` (the `--manual_dir` folder; file"
            " names are relative to it)")


def _encode_outcome(encoder, schema, outcome: pipeline.Outcome) -> dict:
  """The example dict of a checked image (module level: Beam pickles it)."""
  if encoder is not None:
    return encoder.encode(outcome.record, outcome.image, outcome.objects,
                          outcome.masks, outcome.segmentation_mask)
  return schema.to_example(outcome.record, outcome.image, outcome.objects,
                           outcome.masks, outcome.segmentation_mask)


def _check_strict(problem: records.Problem) -> None:
  if problem.kind in ("rejected", "changed"):
    raise records.BadInputError(problem)
