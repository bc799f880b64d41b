"""Remote archive sources: downloaded by TFDS from a local HTTP server,
checksums registered and checked, unsafe archives refused."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile

import pytest

import helpers
import image_folder_tfds
from image_folder_tfds import records
from image_folder_tfds import release
from image_folder_tfds import remote

CLASSES = ("daisy", "roses", "tulips")


class _Handler(http.server.BaseHTTPRequestHandler):
  """Serves `server.files[path]`; `server.truncate[path]` bytes cut the body."""

  timeout = 10  # Seconds a stuck client may hold a handler thread.

  def do_GET(self):  # pylint: disable=invalid-name
    data = self.server.files.get(self.path)
    if data is None:
      self.send_error(404)
      return
    self.send_response(200)
    self.send_header("Content-Type", "application/octet-stream")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    cut = self.server.truncate.get(self.path)
    self.wfile.write(data[:cut] if cut else data)
    if cut:
      self.close_connection = True

  def log_message(self, *args):  # Quiet test output.
    del args


@pytest.fixture
def server():
  """A threaded HTTP server on 127.0.0.1, shut down after the test."""
  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
  httpd.daemon_threads = True
  httpd.files, httpd.truncate = {}, {}
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  httpd.url = lambda path: f"http://127.0.0.1:{httpd.server_port}{path}"
  yield httpd
  httpd.shutdown()
  httpd.server_close()
  thread.join(timeout=10)
  assert not thread.is_alive()


@pytest.fixture
def checksums_dir(tmp_path, monkeypatch):
  """Checksums go to a temporary folder, not the checkout's `checksums/`."""
  path = tmp_path / "checksums"
  path.mkdir()
  monkeypatch.setenv(remote.CHECKSUMS_DIR_ENV, str(path))
  monkeypatch.setenv("NO_PROXY", "127.0.0.1")
  return path


def flower_files(per_class: int = 3, seed: int = 0) -> dict[str, bytes]:
  """`flower_photos/<class>/<i>.jpg` -> bytes, like seed 004's archive."""
  out = {}
  for c, cls in enumerate(CLASSES):
    for i in range(per_class):
      img = helpers.photo(seed + 100 * c + i)
      out[f"flower_photos/{cls}/{cls}_{i}.jpg"] = helpers.encode(img)
  out["flower_photos/LICENSE.txt"] = b"CC-BY"
  return out


def make_tgz(files: dict[str, bytes], links: dict[str, str] | None = None,
             hard_links: dict[str, str] | None = None) -> bytes:
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode="w:gz") as tar:
    for name, data in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
    for name, target in (links or {}).items():
      info = tarfile.TarInfo(name)
      info.type, info.linkname = tarfile.SYMTYPE, target
      tar.addfile(info)
    for name, target in (hard_links or {}).items():
      info = tarfile.TarInfo(name)
      info.type, info.linkname = tarfile.LNKTYPE, target
      tar.addfile(info)
  return buf.getvalue()


def make_zip(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, "w") as z:
    for name, data in files.items():
      z.writestr(name, data)
    for name, target in (links or {}).items():
      info = zipfile.ZipInfo(name)
      info.external_attr = (0o120777 << 16)
      z.writestr(info, target)
  return buf.getvalue()


def remote_config(url):
  return image_folder_tfds.MyImagesConfig(name="flowers", source_url=url,
                                          num_workers=0)


def build_remote(tmp_path, url, out_name="out", **kwargs):
  empty = tmp_path / "no_manual_dir"
  empty.mkdir(exist_ok=True)
  return helpers.build(empty, tmp_path / out_name, config=remote_config(url),
                       **kwargs)


def test_good_archive_is_registered_then_checked(tmp_path, server, checksums_dir):
  files = flower_files()
  archive = make_tgz(files)
  server.files["/flower_photos.tgz"] = archive
  url = server.url("/flower_photos.tgz")

  builder = build_remote(tmp_path, url, register_checksums=True)
  tsv = (checksums_dir / "checksums.tsv").read_text().split("\n")
  row = [line.split("\t") for line in tsv if line.startswith(url)]
  assert row and row[0][:3] == [url, str(len(archive)),
                                hashlib.sha256(archive).hexdigest()]
  examples = helpers.read_all(builder)
  images = {k.removeprefix("flower_photos/"): v for k, v in files.items()
            if k.endswith(".jpg")}
  assert sorted(examples) == sorted(images)
  for name, ex in examples.items():
    assert ex["image"].shape == (30, 40, 3)
    assert builder.info.features["label"].int2str(ex["label"]) == name.split("/")[0]
  assert builder.info.features["label"].names == list(CLASSES)
  card = (builder.data_path / "dataset_card.md").read_text()
  assert f"{url} ({len(archive)} bytes, sha256 {hashlib.sha256(archive).hexdigest()})" in card
  # A later build (new data_dir, nothing cached) checks and passes.
  again = build_remote(tmp_path, url, out_name="out2")
  assert len(helpers.read_all(again)) == 9
  assert release.verify(again.data_path) == []


def test_zip_archive_without_registered_checksum_builds_with_a_warning(
    tmp_path, server, checksums_dir, capsys):
  del checksums_dir
  server.files["/photos.zip"] = make_zip(flower_files(per_class=2))
  url = server.url("/photos.zip")
  builder = build_remote(tmp_path, url)
  assert len(helpers.read_all(builder)) == 6
  assert f"no checksum registered for {url}" in capsys.readouterr().err
  card = (builder.data_path / "dataset_card.md").read_text()
  assert "checksum not registered" in card


def test_tampered_archive_fails_naming_both_checksums(
    tmp_path, server, checksums_dir):
  from tensorflow_datasets.core.download import download_manager
  good = make_tgz(flower_files())
  server.files["/flower_photos.tgz"] = good
  url = server.url("/flower_photos.tgz")
  build_remote(tmp_path, url, register_checksums=True)
  files = flower_files()
  files["flower_photos/roses/roses_0.jpg"] = helpers.encode(helpers.photo(999))
  tampered = make_tgz(files)
  server.files["/flower_photos.tgz"] = tampered
  with pytest.raises(download_manager.NonMatchingChecksumError) as e:
    build_remote(tmp_path, url, out_name="out2")
  msg = str(e.value)
  assert hashlib.sha256(good).hexdigest() in msg
  assert hashlib.sha256(tampered).hexdigest() in msg
  assert url in msg
  assert not (tmp_path / "out2" / "my_images" / "flowers" / "2.1.0").exists()


def test_truncated_download_fails(tmp_path, server, checksums_dir):
  archive = make_tgz(flower_files())
  server.files["/flower_photos.tgz"] = archive
  url = server.url("/flower_photos.tgz")
  build_remote(tmp_path, url, register_checksums=True)
  server.truncate["/flower_photos.tgz"] = len(archive) // 2
  with pytest.raises(records.InputError) as e:
    build_remote(tmp_path, url, out_name="out2")
  assert f"{url}: download failed" in str(e.value)
  assert "IncompleteRead" in str(e.value)
  assert not (tmp_path / "out2" / "my_images" / "flowers" / "2.1.0").exists()


def test_truncated_archive_is_named_when_checksums_are_not_registered(tmp_path):
  archive = make_tgz(flower_files())
  path = tmp_path / "cut.tgz"
  path.write_bytes(archive[: len(archive) // 2])
  with pytest.raises(records.InputError, match="truncated or corrupt") as e:
    remote.check_archive(path, "http://example/cut.tgz")
  assert "http://example/cut.tgz" in str(e.value)


ESCAPES = {
    "parent": (dict(files={"flower_photos/../../evil.jpg": b"x"}),
               "'flower_photos/../../evil.jpg': path outside"),
    "absolute": (dict(files={"/tmp/evil.jpg": b"x"}),
                 "'/tmp/evil.jpg': path outside"),
    "symlink_absolute": (dict(files={}, links={
        "flower_photos/daisy/link.jpg": "/etc/passwd"}),
        "'flower_photos/daisy/link.jpg': symbolic link to '/etc/passwd'"),
    "symlink_parent": (dict(files={}, links={
        "flower_photos/daisy/up": "../../.."}),
        "'flower_photos/daisy/up': symbolic link to '../../..'"),
    "hard_link": (dict(files={}, hard_links={
        "flower_photos/daisy/h.jpg": "../outside.jpg"}),
        "'flower_photos/daisy/h.jpg': hard link"),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_tar_entries_escaping_the_folder_are_refused(
    tmp_path, server, checksums_dir, case):
  del checksums_dir
  kwargs, expected = ESCAPES[case]
  files = {**flower_files(per_class=1), **kwargs.pop("files")}
  server.files["/bad.tgz"] = make_tgz(files, **kwargs)
  url = server.url("/bad.tgz")
  with pytest.raises(remote.UnsafeArchiveError) as e:
    build_remote(tmp_path, url)
  msg = str(e.value)
  assert expected in msg and url in msg and "refused" in msg
  assert not (tmp_path / "evil.jpg").exists()
  assert not list((tmp_path / "out").rglob("extracted/*"))  # Never extracted.


@pytest.mark.parametrize("files, links, expected", [
    ({"../evil.jpg": b"x"}, None, "'../evil.jpg': path outside"),
    ({}, {"flower_photos/daisy/l.jpg": "/etc/passwd"},
     "symbolic link to '/etc/passwd'"),
])
def test_zip_entries_escaping_the_folder_are_refused(tmp_path, files, links,
                                                     expected):
  path = tmp_path / "bad.zip"
  path.write_bytes(make_zip({**flower_files(per_class=1), **files}, links))
  with pytest.raises(remote.UnsafeArchiveError, match="refused") as e:
    remote.check_archive(path)
  assert expected in str(e.value)


def test_links_inside_the_archive_are_allowed(tmp_path):
  path = tmp_path / "ok.tgz"
  path.write_bytes(make_tgz(flower_files(per_class=1), links={
      "flower_photos/roses/same.jpg": "../daisy/daisy_0.jpg"}))
  remote.check_archive(path)


def test_url_must_name_an_archive():
  with pytest.raises(ValueError, match=r"\.tar\.gz"):
    remote_config("http://127.0.0.1/photos.rar")


def test_checksums_go_to_the_checkout_folder(monkeypatch):
  monkeypatch.delenv(remote.CHECKSUMS_DIR_ENV, raising=False)
  path = image_folder_tfds.MyImages._checksums_path  # pylint: disable=protected-access
  assert path == helpers.REPO / "checksums" / "checksums.tsv"


def test_checksums_of_an_installed_package_go_next_to_the_builder(
    tmp_path, monkeypatch):
  monkeypatch.delenv(remote.CHECKSUMS_DIR_ENV, raising=False)
  code = tmp_path / "site-packages" / "image_folder_tfds" / "builder.py"
  assert remote.checksums_path(code) == code.parent / "checksums.tsv"


@pytest.mark.slow
def test_tfds_build_register_checksums_cli(tmp_path, server, checksums_dir):
  archive = make_tgz(flower_files())
  server.files["/flower_photos.tgz"] = archive
  url = server.url("/flower_photos.tgz")
  config = json.dumps({"name": "flowers", "source_url": url})
  env = {remote.CHECKSUMS_DIR_ENV: str(checksums_dir), "NO_PROXY": "127.0.0.1"}

  def tfds_build(out, *extra):
    return helpers.run(helpers.tfds_cli() + [
        "build", "my_images", "--imports", "image_folder_tfds",
        "--data_dir", str(tmp_path / out), "--config", config, *extra], env=env)

  first = tfds_build("out", "--register_checksums")
  assert first.returncode == 0, first.stderr[-3000:]
  assert hashlib.sha256(archive).hexdigest() in (
      checksums_dir / "checksums.tsv").read_text()
  second = tfds_build("out2")
  assert second.returncode == 0, second.stderr[-3000:]
  server.files["/flower_photos.tgz"] = make_tgz(flower_files(seed=7))
  third = tfds_build("out3")
  assert third.returncode != 0
  assert "NonMatchingChecksumError" in third.stderr
  assert hashlib.sha256(archive).hexdigest() in third.stderr
  assert hashlib.sha256(server.files["/flower_photos.tgz"]).hexdigest() in (
      third.stderr)
