"""Beam's DirectRunner with 2 worker processes loses elements: a reproduction.

No TFDS and no image_folder_tfds: the shape of TFDS's `BeamWriter`
(elements with ~20 KB payloads, a side output, a Count of the main output, a
shard assignment with a side input computed from the same PCollection, then
a GroupByKey into 8 shards). Prints the side-output count, the main-output
count and the number of elements that came out of the GroupByKey:

    python bench/beam_loss_repro.py 50000 20000 multi_processing
    python bench/beam_loss_repro.py 50000 20000 in_memory

    python bench/beam_loss_repro.py 50000 20000 multi_processing fixed

Seen on this machine (Beam 2.77): `side 50000`, `main_count 50000`,
`grouped 48580` (1,420 lost, exit code 0); about half the multi_processing
runs lose elements; no loss with 100-byte payloads or in_memory. The cause is
a race in Beam's runner-side data stream (`beam.fix_runner_output_stream_race`);
with `fixed`, that fix-around is applied first. With Beam 2.78 (its
`data_plane.py` streams unchanged from 2.77), 4 runs without `fixed`:
`grouped` 33384, 50000, 50000, 49104 (16,616 and 896 lost; `side` and
`main_count` 50000 and exit code 0 in every run); 4 runs with `fixed`:
`grouped` 50000 in each. See docs/benchmark.md.
"""
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

N = int(sys.argv[1])
PAYLOAD = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
mode = sys.argv[3] if len(sys.argv) > 3 else "multi_processing"
if "fixed" in sys.argv[4:]:  # With image_folder_tfds' fix-around.
  from image_folder_tfds import beam as beam_lib
  assert beam_lib.fix_runner_output_stream_race()


def check(i):
  yield beam.pvalue.TaggedOutput("side", i)
  yield (i * 2654435761) % (1 << 32), bytes(PAYLOAD)


def report(name):
  def f(x):
    print(f"RESULT {name} {x}", flush=True)
  return f


opts = PipelineOptions([f"--direct_running_mode={mode}", "--direct_num_workers=2"])
with beam.Pipeline(options=opts) as p:
  out = (p | beam.Create(list(range(0, N, 1000)))
         | beam.FlatMap(lambda s: range(s, min(s + 1000, N)))
         | beam.Reshuffle()
         | beam.FlatMap(check).with_outputs("side", main="main"))
  _ = out.side | "CountSide" >> beam.combiners.Count.Globally() | "PS" >> beam.Map(report("side"))
  main = out.main
  _ = main | "CountMain" >> beam.combiners.Count.Globally() | "PM" >> beam.Map(report("main_count"))
  largest = beam.pvalue.AsSingleton(main | beam.Keys() | beam.combiners.Top.Largest(1))
  shards = (main
            | "Assign" >> beam.Map(lambda kv, lk: (min(kv[0] * 8 // (lk[0] + 1), 7), kv), lk=largest)
            | "Group" >> beam.GroupByKey()
            | "Len" >> beam.Map(lambda kv: len(list(kv[1])))
            | "Sum" >> beam.CombineGlobally(sum)
            | "PG" >> beam.Map(report("grouped")))
