"""docs/make_pictures.py runs, and the pictures in docs/images/ are its own."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parent.parent
IMAGES = REPO / "docs" / "images"


def test_committed_pictures_are_what_the_script_draws(tmp_path):
  env = {**os.environ, "PYTHONPATH": os.fspath(REPO)}
  subprocess.run([sys.executable, os.fspath(REPO / "docs" / "make_pictures.py"),
                  "--out", os.fspath(tmp_path)], check=True, env=env,
                 cwd=tmp_path, capture_output=True)
  made = sorted(p.name for p in tmp_path.glob("*.png"))
  assert made and made == sorted(p.name for p in IMAGES.glob("*.png")), (
      "docs/images/ holds other pictures than docs/make_pictures.py makes")
  for name in made:
    with Image.open(tmp_path / name) as new, Image.open(IMAGES / name) as old:
      assert new.format == old.format == "PNG"
      assert np.array_equal(np.asarray(new), np.asarray(old)), (
          f"docs/images/{name} is not what the code draws today: run"
          " `python docs/make_pictures.py` and commit docs/images/")



def test_every_picture_is_shown_in_the_docs():
  pages = "\n".join(p.read_text(encoding="utf-8")
                    for p in [REPO / "README.md", *REPO.glob("docs/*.md")])
  unused = [p.name for p in IMAGES.glob("*.png")
            if f"images/{p.name}" not in pages]
  assert not unused, f"pictures no page shows: {unused}"
