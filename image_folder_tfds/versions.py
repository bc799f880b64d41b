"""What a version and its release notes must look like.

Used by `config.py` (the `version` and `release_notes` options) and by
`release.py` (the release file, the notes of prepared versions). Kept apart
so that neither needs the other: `release` may import `config`, `config`
never imports `release`.
"""

from __future__ import annotations

import tensorflow_datasets as tfds


class ReleaseError(ValueError):
  """A release file, version or release note is inconsistent."""


def check_version(version, where: str) -> None:
  if not isinstance(version, str) or not tfds.core.Version.is_valid(version):
    raise ReleaseError(
        f"{where}={version!r}: expected a version 'MAJOR.MINOR.PATCH', for"
        " example '1.1.0'")


def check_release_notes(notes, where: str) -> None:
  if not isinstance(notes, dict):
    raise ReleaseError(
        f"{where}: expected an object {{version: note}}, got {notes!r}")
  for version, note in notes.items():
    check_version(version, f"{where} key")
    if not isinstance(note, str):
      raise ReleaseError(f"{where}[{version!r}]={note!r}: expected text")
