"""Timeline of one `tfds build`: wall and CPU time at each phase of the build.

Runs the `tfds` command in this process with a few TFDS and image_folder_tfds
functions wrapped to print when they begin and end, with the CPU time of the
build process and of its (finished) children so far:

    python bench/timeline.py build my_images --imports image_folder_tfds \
        --manual_dir /tmp/ift_bench/d50000/folders --data_dir /tmp/out

Worker CPU shows up once a split's workers have exited.
"""
import resource
import sys
import time
T0 = time.perf_counter()
def cpu():
  s = resource.getrusage(resource.RUSAGE_SELF); c = resource.getrusage(resource.RUSAGE_CHILDREN)
  return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime
def mark(what):
  p, c = cpu()
  print(f"PHASE {time.perf_counter() - T0:7.2f} s  parent cpu {p:6.2f}  children cpu {c:6.2f}  {what}", file=sys.stderr, flush=True)
mark("start")
import tensorflow_datasets as tfds
from tensorflow_datasets.scripts.cli import main as cli_main
mark("tfds CLI imported (TF, Beam, mlcroissant)")
import image_folder_tfds
from image_folder_tfds import builder, readers, release, writing
from tensorflow_datasets.core import writer as writer_lib
mark("image_folder_tfds imported")
def wrap(obj, name, label):
  orig = getattr(obj, name)
  def f(*a, **k):
    mark(f"{label} begins")
    try:
      return orig(*a, **k)
    finally:
      mark(f"{label} ends")
  setattr(obj, name, f)
wrap(readers, "scan", "scan")
wrap(writer_lib.Writer, "finalize", "TFDS shuffle + shard write (Writer.finalize)")
wrap(release, "write_manifest", "manifest (sha256 of shards)")
wrap(builder.MyImages, "_write_card", "card")
sys.argv = ["tfds"] + sys.argv[1:]
try:
  cli_main.launch_cli()
finally:
  mark("end")
