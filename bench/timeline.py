"""Timeline of one `tfds build`: wall and CPU time at each phase of the build.

Runs the `tfds` command in this process with a few TFDS and image_folder_tfds
functions wrapped to print when they begin and end, with the CPU time of the
build process and of its (finished) children so far:

    python bench/timeline.py build my_images --imports image_folder_tfds \\
        --manual_dir /tmp/ift_bench/d50000/folders --data_dir /tmp/out

Worker CPU shows up once a split's workers have exited.
"""

from __future__ import annotations

import resource
import sys
import time

T0 = time.perf_counter()


def mark(what: str) -> None:
  own = resource.getrusage(resource.RUSAGE_SELF)
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  print(f"PHASE {time.perf_counter() - T0:7.2f} s"
        f"  parent cpu {own.ru_utime + own.ru_stime:6.2f}"
        f"  children cpu {children.ru_utime + children.ru_stime:6.2f}  {what}",
        file=sys.stderr, flush=True)


def wrap(obj, name: str, label: str) -> None:
  original = getattr(obj, name)

  def timed(*args, **kwargs):
    mark(f"{label} begins")
    try:
      return original(*args, **kwargs)
    finally:
      mark(f"{label} ends")
  setattr(obj, name, timed)


def main() -> None:
  mark("start")
  from tensorflow_datasets.scripts.cli import main as cli_main  # pylint: disable=g-import-not-at-top
  mark("tfds CLI imported (TF, Beam, mlcroissant)")
  from image_folder_tfds import builder, readers, release, shards  # pylint: disable=g-import-not-at-top
  mark("image_folder_tfds imported")
  wrap(readers, "scan", "scan")
  wrap(shards, "write_split", "a split checked, made and written")
  wrap(release, "write_manifest", "manifest (sha256 of shards)")
  wrap(builder.MyImages, "_write_card", "card")
  sys.argv = ["tfds"] + sys.argv[1:]
  try:
    cli_main.launch_cli()
  finally:
    mark("end")


if __name__ == "__main__":
  main()
