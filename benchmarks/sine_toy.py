"""What ``configs/sine.py`` reaches: distance to the curve y = sin(x) and coverage of x, per seed.

    python benchmarks/sine_toy.py --seeds=5 --out=benchmarks/results/sine_toy.json

Trains the config as the command line does (``jaxgan.train.train_and_evaluate`` in a temporary
workdir) for each seed ``first_seed, ..., first_seed + seeds - 1``, draws 10,000 samples
``(x, y)`` of the final G and reports

* ``curve_distance``: mean ``|y - sin x|`` (0 on the curve; the data's own value is 0);
* ``x_wasserstein``: the 1-Wasserstein distance between the samples' ``x`` and U[-pi, pi]
  (0 for perfect coverage; all samples at x = 0 give pi / 2 = 1.571);
* ``x_outside``: the fraction of samples with ``|x| > pi``;

and the same numbers for 10,000 points of the data itself (``data``), next to the mean and
standard deviation over the seeds. Prints a table and writes JSON with the load average.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import data as data_lib  # noqa: E402
from jaxgan import experiment, train  # noqa: E402

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'configs', 'sine.py')
NUM_SAMPLES = 10_000


def _load_config():
  spec = importlib.util.spec_from_file_location('sine_config', CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def scores(points: np.ndarray) -> dict[str, float]:
  """``curve_distance``, ``x_wasserstein`` and ``x_outside`` of ``(n, 2)`` points."""
  x, y = np.asarray(points, np.float64).T
  n = x.shape[0]
  # W1 to U[-pi, pi]: the mean |x_(i) - F^-1((i - 1/2) / n)| over the sorted samples.
  quantiles = -math.pi + 2 * math.pi * (np.arange(n) + 0.5) / n
  return {'curve_distance': float(np.mean(np.abs(y - np.sin(x)))),
          'x_wasserstein': float(np.mean(np.abs(np.sort(x) - quantiles))),
          'x_outside': float(np.mean(np.abs(x) > math.pi))}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--seeds', type=int, default=5)
  parser.add_argument('--first_seed', type=int, default=0)
  parser.add_argument('--out', default=None)
  args = parser.parse_args(argv)
  report = {'command': ' '.join(['python', 'benchmarks/sine_toy.py',
                                 *(sys.argv[1:] if argv is None else argv)]),
            'load_average_start': os.getloadavg(), 'runs': []}
  started = time.perf_counter()
  for seed in range(args.first_seed, args.first_seed + args.seeds):
    config = _load_config()
    config.seed = seed
    tick = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
      state = train.train_and_evaluate(config, workdir)
    generator = experiment.build_models(config)[0]
    fake = experiment.sample(config, generator, state, jax.random.PRNGKey(10_000 + seed),
                             NUM_SAMPLES)
    run = {'seed': seed, 'wall_s': time.perf_counter() - tick, **scores(np.asarray(fake))}
    report['runs'].append(run)
    print(f"seed {seed}: |y - sin x| {run['curve_distance']:.4f}  W1(x) "
          f"{run['x_wasserstein']:.4f}  outside {run['x_outside']:.4f}  {run['wall_s']:.0f}s",
          flush=True)
  report['data'] = scores(np.asarray(data_lib.sine(jax.random.PRNGKey(1), NUM_SAMPLES)))
  report['summary'] = {k: {'mean': float(np.mean([r[k] for r in report['runs']])),
                           'std': float(np.std([r[k] for r in report['runs']], ddof=1))
                           if len(report['runs']) > 1 else 0.0}
                       for k in ('curve_distance', 'x_wasserstein', 'x_outside')}
  report['wall_s'] = time.perf_counter() - started
  report['load_average_last'] = os.getloadavg()
  print('summary:', json.dumps(report['summary']), ' data:', json.dumps(report['data']))
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(report, f, indent=1)
  return report


if __name__ == '__main__':
  main()
