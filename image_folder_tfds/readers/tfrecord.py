"""TFRecords of `tf.train.Example`s, as the old conversion scripts wrote them.

Teams that used `build_image_data.py` or `create_tf_record.py` for years hold
their data as TFRecords; this reader turns them into a checked release. Four
key layouts ("schemes") are read, each as its script writes it:

* `inception`: `build_image_data.py` of tensorflow/models' inception
  (`image/encoded`, `image/filename` (the base name), `image/class/label`
  counted from 1, 0 being its background class, `image/class/text`, and
  `image/height|width|colorspace|channels|format`); `build_imagenet_data.py`
  adds `image/object/bbox/*` and `image/object/bbox/label`.
* `od_api`: the Object Detection API's `create_*_tf_record.py`, the
  tutorials' `generate_tfrecord.py`, and Model Garden (`image/source_id`,
  normalized `image/object/bbox/*`, `image/object/class/label` with ids from
  1 as in `label_map.pbtxt`, `image/object/class/text`, `image/object/area`
  in pixels, `image/object/is_crowd`, `image/object/keypoint/x|y|visibility`).
* `seed001`: seed 001's `create_tfrecords.py` (`image/id`, `image/class/*`,
  `image/object/bbox/*`, `image/object/parts/*`, ...), the image in the
  record or, written with `store_images=False`, only its path in
  `image/filename` (then the image is read from DIR).
* `flowers`: the flowers tutorial's `encoded`, `label` (from 0) and `text`.

A record of any other layout is refused, naming its keys. Each file is
streamed one record at a time: the framing (length, masked CRC-32C of the
length, data, masked CRC-32C of the data) is read and checked here with
`google-crc32c`, and each record is parsed by the small protobuf wire-format
parser below (no TensorFlow), which gives the offset of the image bytes in
the file: the record's image is `ImageRecord.data_range` of the TFRecord
file, read again by the image workers. The scan keeps its records packed on
disk (`records.PackedRecords`), never the image bytes.
"""

from __future__ import annotations

import array
import codecs
import collections
import dataclasses
import hashlib
import math
import os
import re
import struct
from collections.abc import Iterator

import google_crc32c
import numpy as np

from image_folder_tfds import records
from image_folder_tfds import splits as splits_lib
from image_folder_tfds.readers import annotated
from image_folder_tfds.readers import common

NAME = "tfrecord"
EXTENSIONS = (".tfrecord", ".tfrecords", ".record")
# `train-00000-of-01024`, `coco_train.record-00003-of-00100`.
_SHARD = re.compile(r"-\d{5,}-of-\d{5,}$")
LABEL_MAP_FILE = "label_map.pbtxt"


def is_tfrecord_name(name: str) -> bool:
  lower = os.path.basename(name).lower()
  return lower.endswith(EXTENSIONS) or bool(_SHARD.search(lower))


# --- Framing ------------------------------------------------------------------
#
# A TFRecord file is a sequence of records, each
#   uint64 length (little endian), uint32 masked_crc32c(length bytes),
#   data (length bytes), uint32 masked_crc32c(data),
# as tensorflow/core/lib/io/record_writer.cc writes them (no compression).

# A record larger than this is reported and not read: it would be held in
# memory whole, and no image a build accepts is that large.
MAX_RECORD_BYTES = 1 << 30
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
  """TensorFlow's masked CRC-32C (crc32c.h: rotate right by 15, add a
  constant), so that a CRC of data holding CRCs stays well spread."""
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclasses.dataclass(frozen=True)
class Frame:
  """One record of a TFRecord file, or what went wrong reading it.

  `offset` is where the record's data starts in the file. `data` is None
  when the record cannot be used (`error` says why); `fatal` when the file
  cannot be read past it (the framing is lost, or the file is cut short).
  """

  index: int
  offset: int
  data: bytes | None
  error: str = ""
  fatal: bool = False


def frames(path: str) -> Iterator[Frame]:
  """The records of the TFRecord file `path`, one at a time, CRCs checked.

  A record whose data fails its CRC is reported and the next one is read
  (its length was sound). A length that fails its CRC, or a file that ends
  inside a record, ends the file: the records before it are kept.
  """
  with open(path, "rb", buffering=1 << 20) as f:
    size = os.fstat(f.fileno()).st_size
    pos = 0
    index = 0
    while pos < size:
      header = f.read(_HEADER.size)
      if len(header) < _HEADER.size:
        yield Frame(index, pos, None, fatal=True, error=(
            f"the file ends inside the header of record {index} ({len(header)}"
            f" of {_HEADER.size} bytes): cut short"))
        return
      length, length_crc = _HEADER.unpack(header)
      if masked_crc(header[:8]) != length_crc:
        yield Frame(index, pos, None, fatal=True, error=(
            f"the length of record {index} (at byte {pos:,}) fails its CRC:"
            " the record boundaries are lost there, so the rest of the file"
            f" ({size - pos:,} bytes) is not read; the {index} record(s)"
            " before it are kept"))
        return
      start = pos + _HEADER.size
      if length + _FOOTER.size > size - start:
        yield Frame(index, start, None, fatal=True, error=(
            f"the file ends inside record {index}: it needs"
            f" {length + _FOOTER.size:,} bytes after its header,"
            f" {size - start:,} are left (cut short); the {index} record(s)"
            " before it are kept"))
        return
      if length > MAX_RECORD_BYTES:
        # Not read (nor its CRC checked): the next record is found anyway.
        f.seek(length + _FOOTER.size, os.SEEK_CUR)
        yield Frame(index, start, None, error=(
            f"record {index} is {length:,} bytes, more than"
            f" {MAX_RECORD_BYTES:,} (an image of max_image_pixels is far"
            " less): not read"))
        pos = start + length + _FOOTER.size
        index += 1
        continue
      data = f.read(length)
      footer = f.read(_FOOTER.size)
      if len(data) != length or len(footer) != _FOOTER.size:
        yield Frame(index, start, None, fatal=True, error=(
            f"the file ends inside record {index} (it shrank while read)"))
        return
      if masked_crc(data) != _FOOTER.unpack(footer)[0]:
        yield Frame(index, start, None, error=(
            f"record {index} fails its data CRC (damaged): not used"))
      else:
        yield Frame(index, start, data)
      pos = start + length + _FOOTER.size
      index += 1


# --- tf.train.Example, from the protobuf wire format --------------------------
#
#   Example { Features features = 1; }
#   Features { map<string, Feature> feature = 1; }   (entries: key 1, value 2)
#   Feature { oneof { BytesList bytes_list = 1; FloatList float_list = 2;
#                     Int64List int64_list = 3; } }
#   BytesList { repeated bytes value = 1; }
#   FloatList { repeated float value = 1 [packed]; }
#   Int64List { repeated int64 value = 1 [packed]; }
#
# tensorflow/core/example/{example,feature}.proto. Parsed here rather than
# with the protobuf classes: `tensorflow.core.example.example_pb2` imports all
# of TensorFlow, and a parsed message copies the image bytes where this gives
# their offset in the record.


class WireError(ValueError):
  """The bytes are not a well-formed tf.train.Example."""


BYTES, FLOATS, INTS = "bytes", "float", "int64"
_KINDS = {1: BYTES, 2: FLOATS, 3: INTS}
# Values in one feature's list, at most: a damaged or hostile record of
# 100 MB of two-byte values would otherwise become 50 million Python
# objects (~4 GB). An image has a few thousand objects at most.
MAX_VALUES = 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class Feature:
  """One feature: its list kind (None: no list set) and its values; for
  bytes, the (start, end) of each value in the record."""

  kind: str | None
  values: tuple


_NO_FEATURE = Feature(None, ())


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
  result = 0
  shift = 0
  while True:
    if pos >= end:
      raise WireError("a number runs past the end of its message")
    b = buf[pos]
    pos += 1
    result |= (b & 0x7F) << shift
    if b < 0x80:
      return result, pos
    shift += 7
    if shift > 63:
      raise WireError("a number is longer than 10 bytes")


def _next(buf: bytes, pos: int, end: int) -> tuple[int, int, int, int, int]:
  """The field at `pos` (< end): (number, wire type, a, b, position after).

  A length-delimited field's payload is buf[a:b]; a varint's value is `a`;
  a fixed-width field starts at `a`. One-byte tags and lengths (nearly all
  of an Example's) take the fast path.
  """
  tag = buf[pos]
  if tag < 0x80:
    pos += 1
  else:
    tag, pos = _varint(buf, pos, end)
  number, wire = tag >> 3, tag & 7
  if number == 0:
    raise WireError("field number 0")
  if wire == 2:
    if pos >= end:
      raise WireError(f"field {number} runs past the end of its message")
    n = buf[pos]
    if n < 0x80:
      pos += 1
    else:
      n, pos = _varint(buf, pos, end)
    b = pos + n
    if b > end:
      raise WireError(f"field {number} runs past the end of its message")
    return number, 2, pos, b, b
  if wire == 0:
    value, pos = _varint(buf, pos, end)
    return number, 0, value, 0, pos
  if wire in (1, 5):
    b = pos + (8 if wire == 1 else 4)
    if b > end:
      raise WireError(f"field {number} runs past the end of its message")
    return number, wire, pos, b, b
  raise WireError(f"field {number} has wire type {wire}"
                  + (" (a group)" if wire in (3, 4) else
                     ", which protobuf does not have"))


def _message(wire: int, what: str) -> None:
  if wire != 2:
    raise WireError(f"{what} is not a message (wire type {wire})")


def parse_example(data: bytes) -> dict[str, Feature]:
  """The features of a serialized `tf.train.Example`. Raises `WireError`.

  Unknown fields are skipped, as protobuf does; a key given twice keeps its
  last value (protobuf's map semantics). ~25 us for an Example of 12
  features (pure Python: written for speed, not brevity).
  """
  out: dict[str, Feature] = {}
  end = len(data)
  pos = 0
  while pos < end:
    number, wire, a, b, pos = _next(data, pos, end)
    if number != 1:
      continue
    _message(wire, "Example.features")
    while a < b:  # Features: map entries, field 1.
      n, w, ea, eb, a = _next(data, a, b)
      if n != 1:
        continue
      _message(w, "Features.feature")
      key, feature = "", _NO_FEATURE
      while ea < eb:  # One entry: key (1), value (2).
        n2, w2, va, vb, ea = _next(data, ea, eb)
        if n2 == 1:
          _message(w2, "a feature's key")
          try:
            key = data[va:vb].decode("utf-8")
          except UnicodeDecodeError:
            raise WireError("a feature key is not UTF-8 text") from None
        elif n2 == 2:
          _message(w2, "a feature's value")
          feature = _feature(data, va, vb)
      out[key] = feature
  return out


def _feature(buf: bytes, pos: int, end: int) -> Feature:
  kind, values = None, []
  while pos < end:
    number, wire, a, b, pos = _next(buf, pos, end)
    if number not in _KINDS:
      continue
    _message(wire, f"a {_KINDS[number]} list")
    if _KINDS[number] != kind:  # oneof: a later member replaces the first.
      kind, values = _KINDS[number], []
    if number == 1:
      while a < b:
        n, w, va, vb, a = _next(buf, a, b)
        if n == 1:
          _message(w, "a bytes value")
          values.append((va, vb))
          if len(values) > MAX_VALUES:
            raise WireError(f"a feature holds more than {MAX_VALUES:,} values")
    elif number == 2:
      _floats(buf, a, b, values)
    else:
      _ints(buf, a, b, values)
  return Feature(kind, tuple(values))


def _floats(buf: bytes, pos: int, end: int, out: list) -> None:
  while pos < end:
    number, wire, a, b, pos = _next(buf, pos, end)
    if number != 1:
      continue
    if wire == 2:  # Packed.
      if (b - a) % 4:
        raise WireError("a packed float list is not a multiple of 4 bytes")
      if len(out) + (b - a) // 4 > MAX_VALUES:
        raise WireError(f"a feature holds more than {MAX_VALUES:,} values")
      out.extend(struct.unpack_from(f"<{(b - a) // 4}f", buf, a))
    elif wire == 5:
      out.append(struct.unpack_from("<f", buf, a)[0])
      if len(out) > MAX_VALUES:
        raise WireError(f"a feature holds more than {MAX_VALUES:,} values")
    else:
      raise WireError(f"a float value has wire type {wire}")


def _ints(buf: bytes, pos: int, end: int, out: list) -> None:
  while pos < end:
    number, wire, a, b, pos = _next(buf, pos, end)
    if number != 1:
      continue
    if wire == 2:  # Packed.
      while a < b:
        if len(out) >= MAX_VALUES:
          raise WireError(f"a feature holds more than {MAX_VALUES:,} values")
        v = buf[a]
        if v < 0x80:
          out.append(v)
          a += 1
        else:
          v, a = _varint(buf, a, b)
          out.append(v - (1 << 64) if v >> 63 else v)
    elif wire == 0:
      out.append(a - (1 << 64) if a >> 63 else a)
      if len(out) > MAX_VALUES:
        raise WireError(f"a feature holds more than {MAX_VALUES:,} values")
    else:
      raise WireError(f"an int64 value has wire type {wire}")


# --- label_map.pbtxt (the OD API's StringIntLabelMap text proto) --------------

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n\f\v]+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<word>[-+]?[\w.]+)
  | (?P<punct>[{}<>:;,\[\]])
""", re.VERBOSE)


@dataclasses.dataclass(frozen=True)
class LabelMap:
  """A label map's classes: `names` in id order (`display_name`, else
  `name`), `ids` (sorted, from 1), and every name and display name of an
  item mapped to its class name (records may give either as their text)."""

  path: str
  ids: tuple[int, ...]
  names: tuple[str, ...]
  aliases: dict[str, str]


def _tokens(text: str, path: str):
  """(kind, value, line) of each token of a text proto."""
  pos, line = 0, 1
  while pos < len(text):
    m = _TOKEN.match(text, pos)
    if m is None:
      raise records.InputError(
          f"{path}:{line}: unexpected {text[pos]!r} (not a text proto)")
    kind = m.lastgroup
    if kind != "space":
      yield kind, m.group(), line
    line += m.group().count("\n")
    pos = m.end()


def _unquote(token: str, path: str, line: int) -> str:
  """A text-proto string literal: C escapes over UTF-8 bytes."""
  try:
    raw = codecs.escape_decode(token[1:-1].encode("utf-8"))[0]
    return raw.decode("utf-8")
  except (ValueError, UnicodeDecodeError) as e:
    raise records.InputError(
        f"{path}:{line}: bad string {token}: {e}") from None


def _parse_message(tokens: list, pos: int, path: str, close: str | None):
  """[(name, value, line)] of the fields up to `close`; a value is a string,
  a word (number or enum), or a nested list of fields."""
  fields = []
  while pos < len(tokens):
    kind, value, line = tokens[pos]
    if close is not None and value == close:
      return fields, pos + 1
    if kind != "word":
      raise records.InputError(
          f"{path}:{line}: expected a field name, got {value!r}")
    name = value
    pos += 1
    if pos < len(tokens) and tokens[pos][1] == ":":
      pos += 1
    if pos >= len(tokens):
      raise records.InputError(f"{path}:{line}: field {name!r} has no value")
    kind, value, line = tokens[pos]
    if value in ("{", "<"):
      inner, pos = _parse_message(tokens, pos + 1, path,
                                  "}" if value == "{" else ">")
      fields.append((name, inner, line))
    elif value == "[":
      pos += 1
      while pos < len(tokens) and tokens[pos][1] != "]":
        if tokens[pos][1] != ",":
          fields.append((name, _scalar(tokens[pos], path), tokens[pos][2]))
        pos += 1
      pos += 1
    elif kind in ("string", "word"):
      text = _scalar(tokens[pos], path)
      pos += 1
      while (kind == "string" and pos < len(tokens)
             and tokens[pos][0] == "string"):
        text += _scalar(tokens[pos], path)  # "a" "b": one string.
        pos += 1
      fields.append((name, text, line))
    else:
      raise records.InputError(f"{path}:{line}: field {name!r} has no value")
    if pos < len(tokens) and tokens[pos][1] in (",", ";"):
      pos += 1
  if close is not None:
    raise records.InputError(
        f"{path}: a message is not closed ({close!r} missing)")
  return fields, pos


def _scalar(token, path):
  kind, value, line = token
  if kind == "string":
    return _unquote(value, path, line)
  if kind == "word":
    return _Word(value)
  raise records.InputError(f"{path}:{line}: unexpected {value!r}")


class _Word(str):
  """An unquoted text-proto value (a number or an enum name)."""


def read_label_map(path: str) -> LabelMap:
  """The classes of a `label_map.pbtxt`: `item { id: 1 name: 'cat' }`, with
  `display_name`, comments, `:` before a message, `,`/`;` separators and
  fields the OD API adds (`keypoints`, `frequency`, ...) accepted.

  As the OD API's `label_map_util` checks it: ids are integers; id 0 is
  the background, allowed only for an item named `background` (which is
  no class); ids and class names are unique.
  """
  try:
    with open(path, encoding="utf-8-sig") as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise records.InputError(
        f"{path}: label map is not UTF-8 text: {e}") from None
  fields, _ = _parse_message(list(_tokens(text, path)), 0, path, None)
  by_id: dict[int, str] = {}
  aliases: dict[str, str] = {}
  for name, value, line in fields:
    if name != "item":
      continue
    if not isinstance(value, list):
      raise records.InputError(f"{path}:{line}: `item` is not a message")
    item = {}
    for key, v, _ in value:
      if key in ("id", "name", "display_name"):
        item[key] = v
    if "id" not in item:
      raise records.InputError(f"{path}:{line}: an item has no id")
    try:
      if not isinstance(item["id"], _Word):
        raise ValueError
      cid = int(item["id"])
    except ValueError:
      raise records.InputError(
          f"{path}:{line}: item id {item['id']!r} is not an integer") from None
    names = [item.get(k) for k in ("display_name", "name")]
    for v in names:
      if v is not None and isinstance(v, _Word):
        raise records.InputError(
            f"{path}:{line}: item {cid}: names are quoted strings, got {v}")
    class_name = next((v for v in names if v), None)
    if cid == 0 and "background" in names:
      continue  # The background: no class.
    if cid <= 0:
      raise records.InputError(
          f"{path}:{line}: item id {cid}: ids start at 1 (0 is the background)")
    if class_name is None:
      raise records.InputError(f"{path}:{line}: item {cid} has no name")
    if cid in by_id:
      raise records.InputError(f"{path}:{line}: item id {cid} is given twice")
    if class_name in by_id.values():
      other = next(i for i, n in by_id.items() if n == class_name)
      raise records.InputError(
          f"{path}:{line}: class {class_name!r} is given to ids {other} and"
          f" {cid}; class names must be unique")
    by_id[cid] = class_name
    for v in names:
      if v:
        aliases.setdefault(v, class_name)
  if not by_id:
    raise records.InputError(f"{path}: label map lists no class (no `item`)")
  ids = tuple(sorted(by_id))
  return LabelMap(path=path, ids=ids, names=tuple(by_id[i] for i in ids),
                  aliases=aliases)


# --- The four key layouts -----------------------------------------------------

INCEPTION, OD_API = "inception", "od_api"
SEED001, FLOWERS = "seed001", "flowers"
SCHEME_TITLES = {
    INCEPTION: "inception build_image_data.py",
    OD_API: "Object Detection API",
    SEED001: "seed 001 create_tfrecords.py",
    FLOWERS: "flowers tutorial",
}
_BOX = ("xmin", "ymin", "xmax", "ymax")


@dataclasses.dataclass(frozen=True)
class _Spec:
  """Where a scheme keeps each value (None: not in this scheme)."""

  image: str
  label_base: int  # The class id of the first class: 1 (0 = background), or 0.
  stored: frozenset[str]  # Keys read into the dataset.
  # Keys read but not stored, on purpose (said in docs/formats.md): the
  # format and colour space come from the image itself; OD API duplicates.
  known: frozenset[str] = frozenset()
  filename: str | None = "image/filename"
  source_id: str | None = None
  image_id: str | None = None
  size: bool = True  # image/width and image/height.
  class_label: str | None = "image/class/label"
  class_text: str | None = "image/class/text"
  class_conf: str | None = None
  several_classes: bool = False  # image/class/label may hold a list.
  extra: str | None = None
  box: str | None = "image/object/bbox/"
  obj_label: str | None = None
  obj_text: str | None = None
  obj_score: str | None = None
  obj_conf: str | None = None
  obj_area: str | None = None
  area_in_pixels: bool = False
  obj_id: str | None = None
  obj_crowd: str | None = None
  obj_count: str | None = None
  kp: str | None = None  # Prefix of x, y and the visibility and score keys.
  kp_v: str = "v"
  kp_score: str | None = None
  kp_names: str | None = None


def _keys(*groups) -> frozenset[str]:
  return frozenset(k for g in groups for k in g)


_BOX_KEYS = tuple(f"image/object/bbox/{c}" for c in _BOX)
SPECS = {
    INCEPTION: _Spec(
        image="image/encoded", label_base=1,
        stored=_keys(("image/encoded", "image/filename", "image/class/label",
                      "image/class/text", "image/height", "image/width",
                      "image/object/bbox/label"), _BOX_KEYS),
        known=frozenset(("image/format", "image/colorspace", "image/channels")),
        obj_label="image/object/bbox/label"),
    OD_API: _Spec(
        image="image/encoded", label_base=1, source_id="image/source_id",
        several_classes=True,
        stored=_keys(("image/encoded", "image/filename", "image/source_id",
                      "image/height", "image/width", "image/class/label",
                      "image/class/text", "image/object/class/label",
                      "image/object/class/text", "image/object/area",
                      "image/object/is_crowd", "image/object/keypoint/x",
                      "image/object/keypoint/y",
                      "image/object/keypoint/visibility"), _BOX_KEYS),
        known=frozenset(("image/format", "image/key/sha256",
                         "image/object/keypoint/num",
                         "image/object/keypoint/text")),
        obj_label="image/object/class/label",
        obj_text="image/object/class/text", obj_area="image/object/area",
        area_in_pixels=True, obj_crowd="image/object/is_crowd",
        kp="image/object/keypoint/", kp_v="visibility",
        kp_names="image/object/keypoint/text"),
    SEED001: _Spec(
        image="image/encoded", label_base=0, image_id="image/id",
        stored=_keys(("image/encoded", "image/filename", "image/id",
                      "image/height", "image/width", "image/extra",
                      "image/class/label", "image/class/text",
                      "image/class/conf", "image/object/bbox/label",
                      "image/object/bbox/text", "image/object/bbox/score",
                      "image/object/bbox/conf", "image/object/area",
                      "image/object/id", "image/object/count",
                      "image/object/is_crowd", "image/object/parts/x",
                      "image/object/parts/y", "image/object/parts/v",
                      "image/object/parts/score"), _BOX_KEYS),
        # The later create_tfrecords.py repeats the id and the box labels in
        # the OD API's keys.
        known=frozenset(("image/format", "image/colorspace", "image/channels",
                         "image/source_id", "image/key/sha256",
                         "image/object/class/label",
                         "image/object/class/text")),
        class_conf="image/class/conf", extra="image/extra",
        obj_label="image/object/bbox/label", obj_text="image/object/bbox/text",
        obj_score="image/object/bbox/score", obj_conf="image/object/bbox/conf",
        obj_area="image/object/area", obj_id="image/object/id",
        obj_crowd="image/object/is_crowd", obj_count="image/object/count",
        kp="image/object/parts/", kp_score="image/object/parts/score"),
    FLOWERS: _Spec(
        image="encoded", label_base=0, filename=None, size=False,
        class_label="label", class_text="text", box=None,
        stored=frozenset(("encoded", "label", "text"))),
}


def scheme_of(keys) -> str | None:
  """The scheme whose keys these are, or None.

  Seed 001's script always writes `image/id`; inception's always writes
  `image/colorspace` and `image/class/text` with its label; the OD API's
  scripts write `image/source_id` or objects; the flowers tutorial writes
  `encoded` beside `label` or `text`. A record with
  `image/encoded` and `image/class/label` alone (TF-slim's and many copied
  scripts) is none of them: its labels may count from 0 or from 1.
  """
  keys = set(keys)
  has_image = bool(keys & {"image/encoded", "image/filename"})
  if "image/id" in keys and has_image:
    return SEED001
  if ("image/encoded" in keys and "image/source_id" not in keys
      and {"image/class/label", "image/class/text",
           "image/colorspace"} <= keys):
    return INCEPTION
  if "image/encoded" in keys and ("image/source_id" in keys or any(
      k.startswith(("image/object/bbox/", "image/object/class/"))
      for k in keys)):
    return OD_API
  if "encoded" in keys and keys & {"label", "text"}:
    return FLOWERS
  return None


def _refusal(path: str, index: int, keys) -> records.InputError:
  keys = sorted(keys)
  hint = ""
  if {"image/encoded", "image/class/label"} <= set(keys):
    hint = (" (`image/class/label` without inception's `image/class/text` and"
            " `image/colorspace`: whether its labels count from 0 or from 1"
            " is not known)")
  return records.InputError(
      f"{path} [record {index}]: a tf.train.Example with the keys {keys}, of"
      " none of the layouts read: inception's build_image_data.py, the Object"
      " Detection API's create_*_tf_record.py, seed 001's create_tfrecords.py,"
      f" the flowers tutorial{hint}. See docs/formats.md, TFRecords.")


class _Fields:
  """Typed access to one record's features; errors name the key."""

  def __init__(self, features: dict[str, Feature], data: bytes):
    self.features = features
    self.data = data

  def _get(self, key: str | None, kind: str) -> tuple:
    if key is None:
      return ()
    feature = self.features.get(key)
    if feature is None or feature.kind is None:
      return ()
    if feature.kind != kind:
      raise annotated.FieldError(
          f"{key} is a {feature.kind} list, expected {kind}")
    return feature.values

  def spans(self, key) -> tuple:
    return self._get(key, BYTES)

  def texts(self, key) -> list[str]:
    out = []
    for a, b in self.spans(key):
      try:
        out.append(self.data[a:b].decode("utf-8"))
      except UnicodeDecodeError:
        raise annotated.FieldError(f"{key} is not UTF-8 text") from None
    return out

  def floats(self, key) -> tuple:
    return self._get(key, FLOATS)

  def ints(self, key) -> tuple:
    return self._get(key, INTS)

  def one(self, values: tuple | list, key: str):
    if len(values) > 1:
      raise annotated.FieldError(
          f"{key} holds {len(values)} values, expected one")
    return values[0] if values else None

  def text(self, key):
    return self.one(self.texts(key), key)

  def int(self, key):
    return self.one(self.ints(key), key)

  def float(self, key):
    return self.one(self.floats(key), key)

  def ids(self, key) -> list[str]:
    """Object ids: text, or integers (the first create_tfrecords.py)."""
    feature = self.features.get(key) if key else None
    if feature is not None and feature.kind == INTS:
      return [str(v) for v in feature.values]
    return self.texts(key)


def _finite(values, key: str) -> list[float]:
  for i, v in enumerate(values):
    if not math.isfinite(v):
      raise annotated.FieldError(f"{key}[{i}] is {v} (NaN or infinite)")
  return list(values)


def _objects(r: _Fields, spec: _Spec, size):
  """(objects, keypoint names of each object) of one record, class ids as
  given (a draft). Raises `FieldError` when the per-object lists do not fit
  together (the record is not used, as seed001.py does for its JSON)."""
  arrays: dict[str, list] = {}
  if spec.box:
    for c in _BOX:
      key = spec.box + c
      values = r.floats(key)
      if values:
        arrays[key] = _finite(values, key)
    given = [k for k in arrays]
    if given and len(given) != 4:
      raise annotated.FieldError(
          f"boxes have {', '.join(given)} but not all four of"
          f" {spec.box}xmin|ymin|xmax|ymax")
  for key, get in ((spec.obj_label, r.ints), (spec.obj_text, r.texts),
                   (spec.obj_score, r.floats), (spec.obj_conf, r.floats),
                   (spec.obj_area, r.floats), (spec.obj_id, r.ids),
                   (spec.obj_crowd, r.ints)):
    values = list(get(key)) if key else []
    if values:
      arrays[key] = values
  lengths = {k: len(v) for k, v in arrays.items()}
  if len(set(lengths.values())) > 1:
    raise annotated.FieldError(
        "object lists have different lengths: "
        + ", ".join(f"{k} {n}" for k, n in lengths.items()))
  kp = {}
  if spec.kp:
    for name in ("x", "y"):
      values = r.floats(spec.kp + name)
      if values:
        kp[name] = list(values)
    v = r.ints(spec.kp + spec.kp_v)
    if v:
      kp["v"] = list(v)
    if spec.kp_score and r.floats(spec.kp_score):
      kp["score"] = list(r.floats(spec.kp_score))
  if kp and not ("x" in kp and "y" in kp):
    raise annotated.FieldError(f"keypoints need both {spec.kp}x and {spec.kp}y")
  kp_lengths = {k: len(v) for k, v in kp.items()}
  if len(set(kp_lengths.values())) > 1:
    raise annotated.FieldError(
        "keypoint lists have different lengths: "
        + ", ".join(f"{spec.kp}{k} {n}" for k, n in kp_lengths.items()))
  n_parts = kp_lengths.get("x", 0)
  n = next(iter(lengths.values()), 0)
  count = r.int(spec.obj_count) if spec.obj_count else None
  # create_tfrecords.py writes a count of 0 when none was given.
  if count:
    if count < 0:
      raise annotated.FieldError(f"{spec.obj_count} is {count}")
    if lengths and count != n:
      raise annotated.FieldError(
          f"{spec.obj_count} is {count}, but {next(iter(lengths))} has {n}"
          " entries")
    n = count
  elif not lengths and n_parts:
    n = 1  # Keypoints of one object without a box (seed 001's rule).
  if n_parts and (n == 0 or n_parts % n):
    raise annotated.FieldError(
        f"{n_parts} keypoints cannot be shared evenly among {n} objects")
  per_object = n_parts // n if n else 0
  names = r.texts(spec.kp_names) if spec.kp_names else []

  def get(key, i, default):
    values = arrays.get(key)
    return default if values is None else values[i]

  out = []
  for i in range(n):
    box = None
    if spec.box and spec.box + "xmin" in arrays:
      box = tuple(arrays[spec.box + c][i] for c in _BOX)
    area = float(get(spec.obj_area, i, -1.0))
    if area != -1.0:
      if not math.isfinite(area) or area < 0:
        raise annotated.FieldError(f"{spec.obj_area}[{i}] is {area}")
      if spec.area_in_pixels:  # The OD API's area is in pixels.
        area = area / (size[0] * size[1]) if size else -1.0
    crowd = get(spec.obj_crowd, i, 0)
    if crowd not in (0, 1):
      raise annotated.FieldError(f"{spec.obj_crowd}[{i}] is {crowd}: 0 or 1")
    keypoints = []
    for j in range(i * per_object, (i + 1) * per_object):
      x, y = kp["x"][j], kp["y"][j]
      if "v" in kp:
        v = kp["v"][j]
      else:  # The OD API: a keypoint without coordinates (NaN) is not labelled.
        v = 2 if math.isfinite(x) and math.isfinite(y) else 0
      if v not in (0, 1, 2):
        raise annotated.FieldError(
            f"{spec.kp}{spec.kp_v}[{j}] is {v}: visibility must be 0, 1 or 2")
      if v == 0 and not (math.isfinite(x) and math.isfinite(y)):
        x = y = 0.0  # Not labelled, at (0, 0), as COCO writes it.
      keypoints.append(records.Keypoint(
          x=x, y=y, v=v,
          score=kp["score"][j] if "score" in kp else -1.0))
    out.append(records.ObjectRecord(
        box=box, label=get(spec.obj_label, i, -1),
        text=get(spec.obj_text, i, ""),
        score=float(get(spec.obj_score, i, -1.0)),
        conf=float(get(spec.obj_conf, i, -1.0)), area=area,
        id=get(spec.obj_id, i, ""), is_crowd=bool(crowd),
        keypoints=tuple(keypoints), keypoint_score_given="score" in kp))
  if names and per_object and len(names) == n * per_object:
    return tuple(out), [tuple(names[i * per_object:(i + 1) * per_object])
                        for i in range(n)]
  return tuple(out), []


# --- Class ids ----------------------------------------------------------------


class _ClassIds:
  """How the records' class ids become class indices, and the class names.

  In order: a labels file given as an option (a `.pbtxt` one is a label
  map); for schemes whose ids start at 1 (inception, the OD API),
  `label_map.pbtxt` beside the records or in DIR; `DIR/labels.txt` (line
  number from 0 = class index, so id = index + the scheme's first id);
  else the records' own ids and texts. A label map's ids need not be
  contiguous: class i is its i-th id, in id order, as COCO's categories.
  """

  def __init__(self, root: str, options: common.ReadOptions, spec: _Spec,
               scheme: str, first_file: str, problems: list):
    self.base = spec.label_base
    self.scheme = scheme
    self.rank: dict[int, int] | None = None  # id -> index (label map, data).
    self.aliases: dict[str, str] = {}
    self.source = "the records' class ids"
    self._seen: dict[int, str | None] = {}  # OD API ids from the data.
    self._names_only: set[str] = set()
    label_map = None
    if options.labels_file and options.labels_file.lower().endswith(".pbtxt"):
      path = options.labels_file
      path = path if os.path.isabs(path) else os.path.join(root, path)
      if not os.path.isfile(path):
        raise records.InputError(f"{path}: labels file not found")
      label_map = read_label_map(path)
    elif options.labels_file is None:
      for folder in dict.fromkeys((os.path.dirname(first_file), root)):
        path = os.path.join(folder, LABEL_MAP_FILE)
        if os.path.isfile(path):
          if self.base == 0:
            problems.append(records.Problem(
                file=path, kind="warning", counts_as_input=False,
                reason=f"not used: the class ids of {SCHEME_TITLES[scheme]}"
                " count from 0, a label map's from 1"))
          else:
            label_map = read_label_map(path)
          break
    if label_map is not None:
      self.classes = annotated.Classes(fixed=list(label_map.names),
                                       source=label_map.path)
      self.rank = {cid: i for i, cid in enumerate(label_map.ids)}
      self.aliases = label_map.aliases
      self.source = label_map.path
      self.from_data = False
      return
    self.classes = annotated.classes_for(root, options)
    if self.classes.fixed is not None:
      self.source = self.classes.source
    self.from_data = self.classes.fixed is None

  @property
  def fixed(self) -> bool:
    return self.rank is not None or not self.from_data

  def index(self, raw: int, what: str) -> int:
    """The class index of id `raw` (-1: none given). Raises `FieldError`."""
    if raw == -1:
      return -1
    if self.rank is not None:
      if raw not in self.rank:
        raise annotated.FieldError(
            f"{what} id {raw} is not among the ids of {self.source}")
      return self.rank[raw]
    if raw < 0:
      raise annotated.FieldError(f"{what} id {raw} is negative")
    if raw < self.base:
      raise annotated.FieldError(
          f"{what} id {raw}: {SCHEME_TITLES[self.scheme]} numbers its classes"
          f" from {self.base}, {raw} is its background class")
    n = len(self.classes.names)
    if not self.from_data and raw - self.base >= n:
      raise annotated.FieldError(
          f"{what} id {raw} is not among the ids"
          f" {self.base}..{self.base + n - 1}"
          f" of the {n} classes of {self.source}")
    return raw - self.base

  def name(self, text: str) -> str:
    return self.aliases.get(text, text)

  def observe(self, raw: int, text: str) -> None:
    """A class id and text of the data (before `finish`)."""
    if self.fixed:
      return
    text = text or None
    if self.scheme == OD_API:
      if raw >= 0:
        if self._seen.get(raw) is None:
          self._seen[raw] = text
      elif text is not None:
        self._names_only.add(text)
      return
    try:
      index = self.index(raw, "class")
    except annotated.FieldError:
      return  # Reported when the record is resolved.
    self.classes.observe(index if index >= 0 else None, text)

  def finish(self) -> list[str]:
    """The class names. The OD API's ids from the data: in id order (class i
    is the i-th id), then the texts given without an id, sorted."""
    if self.scheme == OD_API and not self.fixed:
      names = []
      for cid in sorted(self._seen):
        name = self._seen[cid] or str(cid)
        if name in names:
          other = sorted(self._seen)[names.index(name)]
          raise records.InputError(
              f"class text {name!r} is given to ids {other} and {cid} in the"
              " records; give the classes in a label_map.pbtxt")
        names.append(name)
      names += sorted(self._names_only - set(names))
      self.rank = {cid: i for i, cid in enumerate(sorted(self._seen))}
      self.classes = annotated.Classes(
          fixed=names, source="the records' class ids and texts")
      self.source = "the records"
    return self.classes.finish()


# --- Finding and claiming the files -------------------------------------------


def _is_framed(path: str) -> bool:
  """Whether `path` starts with a TFRecord header whose length CRC holds."""
  try:
    with open(path, "rb") as f:
      header = f.read(_HEADER.size)
  except OSError:
    return False
  return (len(header) == _HEADER.size
          and masked_crc(header[:8]) == _HEADER.unpack(header)[1])


def find_files(root: str, options: common.ReadOptions,
               problems: list[records.Problem] | None = None) -> list[str]:
  """`options.annotations` when it is a TFRecord file (by name, or by a
  sound first header), else the TFRecord files (`*.tfrecord`,
  `*.tfrecords`, `*.record`, `name-00000-of-00010`,
  `name.tfrecord-00000-of-00010`) at the top of `root` and in its folders
  (`train/`, `val/`), sorted."""
  if options.annotations:
    path = annotated.annotation_path(root, options.annotations)
    return [path] if is_tfrecord_name(path) or _is_framed(path) else []
  out = []
  real_root = os.path.realpath(root)
  folders = [root] + [os.path.join(root, n) for n in common.subfolders(root)]
  for folder in folders:
    try:
      names = common.names(folder)
    except OSError as e:
      # Detection goes on (another layout may read the folder); a scan
      # reports it.
      if problems is not None:
        problems.append(records.Problem(
            file=folder, reason=f"cannot list the folder: {e}"))
      continue
    for name in names:
      path = os.path.join(folder, name)
      if (common.is_hidden(name) or not is_tfrecord_name(name)
          or not os.path.isfile(path)):
        continue
      real = os.path.realpath(path)
      if os.path.commonpath([real, real_root]) != real_root:
        # As images are: a link may not lead out of the data folder.
        if problems is not None:
          problems.append(records.Problem(
              file=path, reason=f"symbolic link points outside the data"
              f" folder ({real}): refused"))
        continue
      out.append(path)
  return out


def claim(root: str, options: common.ReadOptions) -> common.Claim | None:
  """Certain: TFRecord files whose first record is a `tf.train.Example` of
  a layout read here (one record is read). Likely: TFRecord files (their
  first header's CRC holds) whose first record is not, so that the build
  stops naming what it found. Files named like TFRecords that are none
  (`train.record` holding text) are no claim: class folders then refuse
  the folder, naming them."""
  files = find_files(root, options)
  for path in files:
    if not _is_framed(path):
      continue  # Empty, or no TFRecord file.
    try:
      first = next(frames(path), None)
    except OSError:
      return common.Claim(NAME, common.LIKELY, tuple(files))
    if (first is not None and first.data is not None
        and _scheme_of_record(first.data) is not None):
      return common.Claim(NAME, common.CERTAIN, tuple(files))
    # Not an Example, or of no layout read: read() says which.
    return common.Claim(NAME, common.LIKELY, tuple(files))
  return None


def _scheme_of_record(data: bytes) -> str | None:
  """The layout of a serialized record; None when it is not an Example."""
  try:
    return scheme_of(parse_example(data))
  except WireError:
    return None


def _describe(files: list[str], root: str) -> str:
  rels = [os.path.relpath(f, root).replace(os.sep, "/") for f in files]
  more = f" and {len(rels) - 3} more" if len(rels) > 3 else ""
  return ", ".join(rels[:3]) + more


def _split_of(path: str, root: str) -> str | None:
  """From the file name, else from a split-named folder (`DIR/val/x.record`)."""
  split = annotated.split_of_file(path)
  folder = os.path.dirname(path)
  if split is None and os.path.normpath(folder) != os.path.normpath(root):
    split = splits_lib.canonical_split(os.path.basename(folder))
  return split


def _key_hash(split: str, key: str) -> int:
  return int.from_bytes(hashlib.blake2b(
      f"{split}\0{key}".encode("utf-8", "surrogatepass"),
      digest_size=8).digest(), "little")


# --- Reading ------------------------------------------------------------------


def read(root: str, options: common.ReadOptions) -> common.ScanResult:
  annotated.start_scan()
  root = os.path.abspath(root)
  problems: list[records.Problem] = []
  files = find_files(root, options, problems)
  if not files:
    raise records.InputError(
        f"{root}: no TFRecord file found (*.tfrecord, *.tfrecords, *.record,"
        " name-00000-of-00010)")
  reader = _Reader(root, options, files)
  reader.problems.extend(problems)
  return reader.run()


class _Reader:
  """One scan: the records are packed to disk while the files are read.
  When the classes are known before (a label map, a labels file), each is
  resolved as it is read; otherwise drafts (class ids as given) are packed,
  the class list is fixed once every record is seen, and a second pass over
  the drafts resolves them. Keys that repeat make a pass of their own."""

  def __init__(self, root: str, options: common.ReadOptions, files: list[str]):
    self.root = root
    self.options = options
    self.files = files
    self.problems: list[records.Problem] = []
    self.scheme: str | None = None
    self.spec: _Spec | None = None
    self.ids: _ClassIds | None = None
    self.drafts = records.PackedRecords()
    # Per draft: its file (index into `files`) and record number, for the
    # `<file>:<record>` key; and a hash of (split, preferred key).
    self.file_of = array.array("i")
    self.record_of = array.array("q")
    self.key_hashes = array.array("Q")
    self.unknown: collections.Counter[str] = collections.Counter()
    self.unknown_file: dict[str, str] = {}
    self.real_class = False  # Seed 001: some record has a class of its own.
    self.default_class = False  # Seed 001: some record has the default one.
    # Image files named by absolute paths found in DIR by their end: how
    # many, and the first (name as written, path found).
    self.rerooted = 0
    self.first_rerooted: tuple[str, str] | None = None
    self.area_without_size = 0
    self.kp_names: dict[tuple[int, str], tuple[str, ...]] = {}
    self.resolved = False  # Records resolved in the first pass.

  def run(self) -> common.ScanResult:
    for file_index, path in enumerate(self.files):
      self._read_file(file_index, path)
    if self.scheme is None:
      rejected = [p for p in self.problems if p.kind == "rejected"]
      detail = f"; first: {rejected[0]}" if rejected else ""
      raise records.InputError(
          f"{self.root}: no record of the TFRecord files"
          f" ({_describe(self.files, self.root)}) could be read as a"
          f" tf.train.Example{detail}")
    self.drafts.extend(())  # Flushes the spill file for the second pass.
    if self.scheme == SEED001 and self.real_class and self.default_class:
      self.ids.observe(0, "")  # The default class is class 0 after all.
    class_names = self.ids.finish()
    recs = self._resolve_all()
    self._warnings()
    keypoint_names = {}
    for (raw, text), names in self.kp_names.items():
      try:
        index = self.ids.index(raw, "class")
        name = class_names[index] if index >= 0 else self.ids.name(text)
      except (annotated.FieldError, IndexError):
        continue
      if name in class_names:
        keypoint_names.setdefault(name, list(names))
    return common.ScanResult(
        layout=f"tfrecord ({SCHEME_TITLES[self.scheme]}):"
        f" {_describe(self.files, self.root)}",
        class_names=list(class_names), records=recs, problems=self.problems,
        keypoint_names=keypoint_names,
        metadata={"tfrecord_layout": self.scheme})

  # -- Pass 1: the files, record by record.

  def _read_file(self, file_index: int, path: str) -> None:
    file_split = _split_of(path, self.root)
    split = file_split or ""
    rel_file = os.path.relpath(path, self.root).replace(os.sep, "/")
    count = 0
    checked = False  # The file's layout, from its first Example.
    for frame in frames(path):
      count += 1
      item = f"record {frame.index}"
      if frame.data is None:
        self.problems.append(annotated.input_problem(
            path, frame.error, split=split, item=item))
        continue
      try:
        features = parse_example(frame.data)
      except WireError as e:
        self.problems.append(annotated.input_problem(
            path, f"not a tf.train.Example ({e}): not used", split=split,
            item=item))
        continue
      scheme = scheme_of(features)
      if self.scheme is None:
        if scheme is None:
          raise _refusal(path, frame.index, features)
        self._start(scheme, path)
      elif not checked and scheme is not None and scheme != self.scheme:
        raise records.InputError(
            f"{path}: its records are of the layout"
            f" {SCHEME_TITLES[scheme]}, those of {self.first_file} of"
            f" {SCHEME_TITLES[self.scheme]}; build them apart (the"
            " `annotations` option names one file)")
      checked = True
      for key in features:
        if key not in self.spec.stored and key not in self.spec.known:
          self.unknown[key] += 1
          self.unknown_file.setdefault(key, path)
      fields = _Fields(features, frame.data)
      fallback = f"{rel_file}:{frame.index}"
      try:
        draft = self._draft(fields, frame, path, fallback, file_split)
      except (annotated.FieldError, annotated.PathError) as e:
        self.problems.append(annotated.input_problem(
            path, f"{e}: not used", split=split, item=item))
        continue
      self.drafts.append(self._resolve(draft) if self.resolved else draft)
      self.file_of.append(file_index)
      self.record_of.append(frame.index)
      self.key_hashes.append(_key_hash(draft.split, draft.key))
    if count == 0:
      self.problems.append(records.Problem(
          file=path, kind="warning", counts_as_input=False,
          reason="holds no record (an empty shard)"))

  def _start(self, scheme: str, path: str) -> None:
    self.scheme = scheme
    self.spec = SPECS[scheme]
    self.first_file = path
    self.ids = _ClassIds(self.root, self.options, self.spec, scheme, path,
                         self.problems)
    # Classes known before any record (a label map, a labels file): each
    # record is resolved as it is read, in one pass. Seed 001's default
    # class is known only once every record is read.
    self.resolved = self.ids.fixed and scheme != SEED001

  def _draft(self, r: _Fields, frame: Frame, path: str, fallback: str,
             file_split: str | None) -> records.ImageRecord:
    """The record's draft: class ids as written. Raises `FieldError` or
    `PathError` (the record is not used)."""
    spec = self.spec
    spans = r.spans(spec.image)
    if len(spans) > 1:
      raise annotated.FieldError(
          f"{spec.image} holds {len(spans)} values, expected one image")
    filename = r.text(spec.filename) if spec.filename else None
    data_range = None
    rel = None
    if spans and spans[0][1] > spans[0][0]:
      if not self.options.store_images:
        raise records.InputError(
            f"{path} [record {frame.index}]: the image is inside the"
            " TFRecord file, and store_images=False stores the path of an"
            " image file: there is none to store. Build with"
            " store_images=True (the default); see docs/formats.md,"
            " TFRecords")
      start, end = spans[0]
      data_range = (frame.offset + start, end - start)
      image_path = path
    elif self.scheme == SEED001 and filename:
      image_path, rel = self._image_file(filename, path)
    else:
      where = f" or {spec.filename}" if spec.filename else ""
      raise annotated.FieldError(
          f"no image: {spec.image} is empty or missing, and there is no file"
          f" name{where} to read it from (keys: {sorted(r.features)})")
    source_id = r.text(spec.source_id) if spec.source_id else None
    image_id = r.text(spec.image_id) if spec.image_id else None
    key = source_id or rel or filename or fallback
    split = annotated.assign_split(file_split, key, self.options)
    file_name = rel or filename or key
    size = None
    if spec.size:
      width, height = r.int("image/width"), r.int("image/height")
      size = annotated.declared_size(
          width, height, path, f"record {frame.index}", split, self.problems)
    label, text, conf = -1, "", -1.0
    labels, labels_text = (), ()
    ids = list(r.ints(spec.class_label)) if spec.class_label else []
    texts = r.texts(spec.class_text) if spec.class_text else []
    if not spec.several_classes:
      ids = [r.one(ids, spec.class_label)] if ids else []
      texts = [r.one(texts, spec.class_text)] if texts else []
    if ids and texts and len(ids) != len(texts):
      raise annotated.FieldError(
          f"{spec.class_label} holds {len(ids)} ids, {spec.class_text}"
          f" {len(texts)} texts")
    n = max(len(ids), len(texts))
    ids, texts = ids or [-1] * n, texts or [""] * n
    if n == 1:
      label, text = ids[0], texts[0]
    elif n > 1:
      labels, labels_text = tuple(ids), tuple(texts)
    if spec.class_conf:
      given = r.float(spec.class_conf)
      conf = -1.0 if given is None else given
      if not math.isfinite(conf):
        raise annotated.FieldError(f"{spec.class_conf} is {conf}")
    if self.scheme == SEED001 and label >= 0:
      # create_tfrecords.py writes label 0, no text and conf 1.0 for an
      # image without a class: which it is, is decided once all are read.
      if label == 0 and not text and conf in (1.0, -1.0):
        self.default_class = True
      else:
        self.real_class = True
        self.ids.observe(label, text)
    else:
      for raw, t in zip(ids, texts):
        self.ids.observe(raw, t)
    objects, names = _objects(r, spec, size)
    if spec.area_in_pixels and size is None and r.floats(spec.obj_area):
      self.area_without_size += 1
    for i, obj in enumerate(objects):
      self.ids.observe(obj.label, obj.text)
      if names and (obj.label, obj.text) not in self.kp_names:
        self.kp_names[(obj.label, obj.text)] = names[i]
    return records.ImageRecord(
        key=key, path=image_path, file_name=file_name, split=split,
        source=f"{path}[record {frame.index}]",
        id=image_id or source_id or file_name, label=label, label_text=text,
        label_conf=conf, labels=labels, labels_text=labels_text,
        objects=objects, coords="normalized",
        extra=(r.text(spec.extra) or "") if spec.extra else "",
        size=size, data_range=data_range)

  def _image_file(self, name: str, path: str) -> tuple[str, str]:
    """(absolute path, path relative to DIR) of a record's image file
    (seed 001's `store_images=False`): the name relative to the records'
    folder, then to DIR. An absolute name outside DIR (the machine that
    wrote the records) is looked up in DIR by its end: the longest tail of
    the path that is a file in DIR."""
    bases = [os.path.dirname(path), self.root]
    try:
      return annotated.resolve_image(name, bases, self.root)
    except annotated.PathError as error:
      parts = [p for p in name.replace("\\", "/").split("/") if p]
      if not (name.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", name)):
        raise
      for i in range(1, len(parts)):
        try:
          found = annotated.resolve_image("/".join(parts[i:]), bases, self.root)
        except annotated.PathError:
          continue
        self.rerooted += 1
        self.first_rerooted = self.first_rerooted or (name, found[1])
        return found
      raise error

  # -- Pass 2: class ids to classes, keys made unique.

  def _resolve_all(self) -> records.PackedRecords:
    """The records: the drafts resolved, unless resolved as they were read
    (`self.resolved`), keys made `<file>:<record>` if some repeat."""
    hashes = np.frombuffer(self.key_hashes, dtype=np.uint64)
    unique, counts = np.unique(hashes, return_counts=True)
    repeated = set(unique[counts > 1].tolist())
    if self.resolved and not repeated:
      return self.drafts
    first_repeat = None
    out = records.PackedRecords()
    for i, draft in enumerate(self.drafts):
      if repeated:
        if first_repeat is None and self.key_hashes[i] in repeated:
          first_repeat = draft
        rel_file = os.path.relpath(self.files[self.file_of[i]], self.root)
        draft = dataclasses.replace(
            draft, key=f"{rel_file.replace(os.sep, '/')}:{self.record_of[i]}")
      out.append(draft if self.resolved else self._resolve(draft))
    out.extend(())
    if repeated:
      self.problems.append(records.Problem(
          file=first_repeat.source.rpartition("[")[0], kind="warning",
          counts_as_input=False,
          reason="example keys repeat within a split (first:"
          f" {first_repeat.key!r}"
          f" in {first_repeat.split!r}, {len(repeated)} repeated key(s)):"
          " every example's key is `<file>:<record number>` instead"))
    return out

  def _class(self, raw: int, text: str, field: str) -> tuple[int, str]:
    """(index, name) of a class id and text as written, checked against
    the classes ((-1, "") when neither is given): `annotated.Classes.resolve`
    after the id is made an index. Raises `FieldError`."""
    index = self.ids.index(raw, f"{field} class")
    return self.ids.classes.resolve(
        index if index >= 0 else None, self.ids.name(text) or None, field)

  def _resolve(self, draft: records.ImageRecord) -> records.ImageRecord:
    """The draft with its classes resolved, as `annotated.resolve_labels`
    does (a bad image class leaves the image without one, a bad object
    class drops the object, both reported), in one copy of each object: a
    large part of the scan's time."""
    where = draft.file_name
    changes: dict = {}
    if (self.scheme == SEED001 and not self.real_class and draft.label == 0
        and not draft.label_text):
      changes.update(label=-1, label_conf=-1.0)  # The script's default.
    else:
      try:
        changes["label"], changes["label_text"] = self._class(
            draft.label, draft.label_text, "image")
      except annotated.FieldError as e:
        self.problems.append(annotated.annotation_problem(
            draft.source, f"{e}: image kept without a class",
            split=draft.split, item=f"{where}: class"))
        changes.update(label=-1, label_text="")
    if draft.labels or draft.labels_text:
      kept, names = [], []
      n = max(len(draft.labels), len(draft.labels_text))
      for raw, text in zip(draft.labels or (-1,) * n,
                           draft.labels_text or ("",) * n):
        try:
          index, name = self._class(raw, text, "image label")
        except annotated.FieldError as e:
          self.problems.append(annotated.annotation_problem(
              draft.source, f"{e}: label not written", split=draft.split,
              item=f"{where}: labels"))
          continue
        if index >= 0 and index not in kept:  # A class given twice is one.
          kept.append(index)
          names.append(name)
      changes["labels"], changes["labels_text"] = tuple(kept), tuple(names)
    objects = []
    for i, obj in enumerate(draft.objects):
      try:
        label, text = self._class(obj.label, obj.text, "object")
      except annotated.FieldError as e:
        what = f"object {obj.id}" if obj.id else f"object #{i}"
        self.problems.append(annotated.annotation_problem(
            draft.source, f"{e}: object not written", split=draft.split,
            item=f"{where}: {what}"))
        continue
      objects.append(obj if (label, text) == (obj.label, obj.text)
                     else dataclasses.replace(obj, label=label, text=text))
    changes["objects"] = tuple(objects)
    return dataclasses.replace(draft, **changes)

  def _warnings(self) -> None:
    if self.unknown:
      by_file: dict[str, list[str]] = collections.defaultdict(list)
      for key in sorted(self.unknown):
        by_file[self.unknown_file[key]].append(
            f"{key} ({self.unknown[key]} records)")
      for path, keys in by_file.items():
        self.problems.append(records.Problem(
            file=path, kind="warning", counts_as_input=False,
            reason=f"keys that {SCHEME_TITLES[self.scheme]} records do not"
            " store here: " + ", ".join(keys)))
    if self.area_without_size:
      self.problems.append(records.Problem(
          file=self.first_file, kind="warning", counts_as_input=False,
          reason=f"{self.area_without_size} records give"
          f" {self.spec.obj_area} (pixels) without image/width and"
          " image/height: their areas are not stored"))
    if self.rerooted:
      name, found = self.first_rerooted
      self.problems.append(records.Problem(
          file=self.first_file, kind="warning", counts_as_input=False,
          reason=f"{self.rerooted} image file names are absolute paths"
          " outside DIR, found in DIR by the end of their path (first:"
          f" {name} -> {found})"))
