"""Prints the versions of the libraries the suite depends on in its header,
so that a red run on a fresh machine can be traced to a release."""

from __future__ import annotations

from importlib import metadata

# The project's dependencies whose releases have broken the suite before
# (Pillow 13, Apache Beam 2.78), and the ones it builds on.
_REPORTED = ("tensorflow-datasets", "tensorflow", "apache-beam", "pillow",
             "numpy", "protobuf", "pycocotools", "ijson", "etils",
             "mlcroissant", "array-record", "pyyaml", "defusedxml", "pyarrow")


def pytest_report_header(config):
  del config
  versions = []
  for name in _REPORTED:
    try:
      versions.append(f"{name} {metadata.version(name)}")
    except metadata.PackageNotFoundError:
      versions.append(f"{name} -")
  return "image_folder_tfds dependencies: " + ", ".join(versions)
