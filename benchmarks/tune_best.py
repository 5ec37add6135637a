"""Tuning runs for ``benchmarks/mode_coverage.py``'s ``best`` recipe: R1 weights on given seeds.

    python benchmarks/tune_best.py --dataset=ring --r1_gammas=0.001,0.003,0.01 --seeds=0-9 \
        --out=benchmarks/results/tune_best_ring.json

Trains ``best`` exactly as the benchmark does (``train_seeds``), once per R1 weight, and scores
it (``score``). Tune on seeds 0-9 and report the chosen recipe with the benchmark on seeds 10-19
(``--first_seed=10``), which tuning never saw. Writes per-seed values and the load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
import time

_spec = importlib.util.spec_from_file_location(
    'mode_coverage_benchmark', os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                            'mode_coverage.py'))
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # Its dataclasses look their module up by name.
_spec.loader.exec_module(bench)  # Sets up one CPU device per core before JAX starts.


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dataset', default='ring')
  parser.add_argument('--r1_gammas', default='0.001,0.003,0.01')
  parser.add_argument('--seeds', default='0-9', help='an inclusive range, e.g. 0-9')
  parser.add_argument('--out', default=None)
  args = parser.parse_args(argv)
  first, last = map(int, args.seeds.split('-'))
  seeds = list(range(first, last + 1))
  report = {'command': ' '.join(['python', 'benchmarks/tune_best.py',
                                 *(sys.argv[1:] if argv is None else argv)]),
            'dataset': args.dataset, 'seeds': seeds, 'load_average_start': os.getloadavg(),
            'tries': []}
  for gamma in map(float, args.r1_gammas.split(',')):
    method = dataclasses.replace(bench.METHODS['best'].for_dataset(args.dataset),
                                 step={'r1_gamma': gamma})
    tick = time.perf_counter()
    _, samples, _ = bench.train_seeds(method, args.dataset, seeds)
    scores = bench.score(samples, args.dataset)
    row = {'r1_gamma': gamma, 'wall_s': time.perf_counter() - tick,
           'modes': bench.summarize(scores['modes']),
           'high_quality_percent': bench.summarize(100 * scores['high_quality']),
           'per_seed_modes': scores['modes'].tolist(),
           'per_seed_high_quality_percent': (100 * scores['high_quality']).tolist()}
    report['tries'].append(row)
    print(f"gamma {gamma:g}: modes {row['modes']['mean']:.2f} ± {row['modes']['se']:.2f} "
          f"(per seed {row['per_seed_modes']}), high quality "
          f"{row['high_quality_percent']['mean']:.2f} ± {row['high_quality_percent']['se']:.2f} "
          f"%, {row['wall_s']:.0f} s", flush=True)
    report['load_average_last'] = os.getloadavg()
    if args.out:
      with open(args.out, 'w') as f:
        json.dump(report, f, indent=1)
  return report


if __name__ == '__main__':
  main()
