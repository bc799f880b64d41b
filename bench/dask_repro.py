"""Why Beam's DaskRunner (2.77, 2.78) cannot run TFDS's Beam pipeline: Beam alone.

    pip install -e '.[beam-dask]'
    python bench/dask_repro.py            # DaskRunner on a LocalCluster
    python bench/dask_repro.py --direct   # the same pipeline on DirectRunner

Starts a `dask.distributed.LocalCluster` of 2 worker processes on 127.0.0.1
and runs one pipeline with the three shapes TFDS's Beam pipeline has (and
`my_images`'s `Check` step, `image_folder_tfds/beam.py`):

1. a `ParDo` with a tagged output (`with_outputs`): our `Check` step sends
   one line per input to the side, the examples on the main output;
2. two sinks in one pipeline: TFDS writes each split in its own branch, and
   our step writes its side output in another;
3. a side input computed once and read by every bundle: TFDS's `BeamWriter`
   assigns shards with the split's example count as a side input, and
   `WriteToText` finalizes with its temp folder as one.

Each sink writes one file per element (no Beam file sink involved), named by
the element, so what arrives is counted exactly. With DaskRunner:

1. the main output also holds the tagged elements: its translation
   (`runners/dask/transform_evaluator.py`, `ParDo`) appends every output to
   one list, and the visitor (`dask_runner.py`) keeps one bag per transform,
   not per output, so each consumer reads all of them;
2. only one sink runs: `run_pipeline` computes
   `list(dask_visitor.bags.values())[-1]`, the bag of the last transform
   visited, and nothing that does not lead to it;
3. the side input is computed again inside every task that reads it
   (`DaskBagWindowedIterator.__iter__` calls `list(self.bag)`, a new
   `compute()` of its whole graph, per bundle): a value that must be made
   once (a temp folder name, or all the upstream work) is made once per
   bundle.

In `tfds build`, (1) is what fails first: TFDS's `Encode` step
(`split_builder`, `_encode_example`) receives our side-output JSON lines as
examples ("TypeError: string indices must be integers"). Prints RESULT lines;
exit code 0 when everything arrived as Beam's model says.

Seen on this machine, dask and distributed 2026.8.0, with Beam 2.77 and with
Beam 2.78 alike (2.78: 5 runs in a venv with only `apache-beam[dask]==2.78.0`):

    RESULT 1. main output: 1200 elements (600 expected), 600 of them from the tagged output
    RESULT 2. side sink: 0 elements (600 expected), 0 of them from the main output
    RESULT 3. side input computed 5 time(s) (1 expected)

(2.78: also `RESULT WRONG`, exit code 1.) `--direct`: 600, 0; 600, 0;
1 time. In 2.78, (3) goes through `DaskBagWindowedIterator._compute`
(`worker_client` in a worker) instead of `list(self.bag)`: still one
compute per task. Its new opt-in `--dask_lazy_side_inputs` (added by hand
to a copy of this script) left (1) and (2) the same, and computed the side
input 1, 2, 2 and 2 times in 4 runs. See docs/benchmark.md, "Beam on Dask".
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid


def _sink(folder: str):
  def write(x):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, str(x)), "w") as f:
      f.write(str(x))
  return write


def main() -> int:
  p = argparse.ArgumentParser()
  p.add_argument("--direct", action="store_true",
                 help="DirectRunner (multi_processing, 2 workers) instead")
  p.add_argument("-n", type=int, default=600)
  a = p.parse_args()
  import apache_beam as beam  # pylint: disable=g-import-not-at-top
  from apache_beam.options.pipeline_options import PipelineOptions  # pylint: disable=g-import-not-at-top

  out = tempfile.mkdtemp(prefix="dask_repro_")
  cluster = None
  if a.direct:
    flags = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
             "--direct_num_workers=2"]
  else:
    from dask.distributed import LocalCluster  # pylint: disable=g-import-not-at-top
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    flags = ["--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
             f"--dask_client_address={cluster.scheduler_address}"]

  def split(x):
    yield beam.pvalue.TaggedOutput("side", f"side-{x}")
    yield x

  def with_token(x, token):
    return f"{x}-{token}"

  try:
    with beam.Pipeline(options=PipelineOptions(flags)) as pipeline:
      parts = (pipeline
               | "Numbers" >> beam.Create(list(range(a.n)))
               | "Split" >> beam.FlatMap(split).with_outputs("side",
                                                             main="main"))
      token = (pipeline | "One" >> beam.Create([None])
               | "Token" >> beam.Map(lambda _: uuid.uuid4().hex))
      _ = parts.side | "WriteSide" >> beam.Map(_sink(os.path.join(out, "side")))
      _ = (parts.main
           | "WithToken" >> beam.Map(with_token,
                                     beam.pvalue.AsSingleton(token))
           | "WriteMain" >> beam.Map(_sink(os.path.join(out, "main"))))
  finally:
    if cluster is not None:
      cluster.close()

  def names(sub):
    folder = os.path.join(out, sub)
    return os.listdir(folder) if os.path.isdir(folder) else []

  main_names, side_names = names("main"), names("side")
  tagged = sum(n.startswith("side-") for n in main_names)
  tokens = {n.rsplit("-", 1)[1] for n in main_names}
  untagged = sum(not n.startswith("side-") for n in side_names)
  print(f"RESULT runner: {flags[0]}")
  print(f"RESULT 1. main output: {len(main_names)} elements"
        f" ({a.n} expected), {tagged} of them from the tagged output")
  print(f"RESULT 2. side sink: {len(side_names)} elements ({a.n} expected),"
        f" {untagged} of them from the main output")
  print(f"RESULT 3. side input computed {len(tokens)} time(s) (1 expected)")
  ok = (len(main_names) == a.n and not tagged and len(side_names) == a.n
        and not untagged and len(tokens) == 1)
  print("RESULT " + ("as Beam's model says" if ok else "WRONG"))
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main())
