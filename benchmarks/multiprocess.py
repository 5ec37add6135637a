"""Several processes train as one: 2 processes x 2 CPU devices against 1 x 4 and 1 x 1.

    python benchmarks/multiprocess.py --out=benchmarks/results/multiprocess.json

For the MLP GAN (``configs/mog_ring.py``) and DCGAN with synchronized batch norm
(``configs/dcgan_mnist.py`` on 64 mock MNIST examples), 4 steps on a global batch of 8 in each
layout (the runs of ``tests/test_multiprocess.py``: localhost, free ports, gloo collectives),
and writes the largest difference between their final states (every leaf), each run's wall
time, and whether every difference is under the test's tolerance. Then runs the slow-marked
tests of ``tests/test_multiprocess.py`` (the same equality, and SIGTERM to both processes of a
run and its resume) and records their outcome.
"""

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYOUTS = [(2, 2, 'shard_map'), (1, 4, 'shard_map'), (1, 1, 'none')]


def _tests():
  path = os.path.join(ROOT, 'tests', 'test_multiprocess.py')
  spec = importlib.util.spec_from_file_location('test_multiprocess', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                    'multiprocess.json'))
  parser.add_argument('--skip_tests', action='store_true', help='only the comparisons')
  args = parser.parse_args()
  tests = _tests()
  load_start = os.getloadavg()
  comparisons = []
  with tempfile.TemporaryDirectory() as tmp:
    for name, mock in [('mog_ring', False), ('dcgan_mnist', True)]:
      leaves, seconds = {}, {}
      for processes, devices, parallel in LAYOUTS:
        start = time.perf_counter()
        codes, logs, leaves[processes, devices], _ = tests.run(
            Path(tmp), name, processes=processes, devices=devices, parallel=parallel, mock=mock)
        seconds[f'{processes}x{devices}'] = time.perf_counter() - start
        if codes != [0] * processes:
          raise SystemExit(f'{name} {processes}x{devices} failed:\n{logs[0][-3000:]}')
      differences = {f'{a[0]}x{a[1]} vs {b[0]}x{b[1]}': tests.max_difference(leaves[a], leaves[b])
                     for a, b in [((2, 2), (1, 4)), ((2, 2), (1, 1)), ((1, 4), (1, 1))]}
      comparisons.append({'config': name, 'num_steps': 4, 'global_batch': 8,
                          'max_abs_difference': differences, 'tolerance': tests.ATOL,
                          'within_tolerance': all(d < tests.ATOL for d in differences.values()),
                          'seconds': seconds})
      print(name, differences)
    result = {'command': 'python benchmarks/multiprocess.py ' + ' '.join(sys.argv[1:]),
              'comparisons': comparisons}
    if not args.skip_tests:
      command = [sys.executable, '-m', 'pytest', '-q', '-m', 'slow', '-p', 'no:cacheprovider',
                 'tests/test_multiprocess.py']
      start = time.perf_counter()
      rc = subprocess.call(command, cwd=ROOT)
      result['slow_tests'] = {'command': ' '.join(command[1:]), 'returncode': rc,
                              'seconds': time.perf_counter() - start}
  result.update(platform=platform.platform(), cpu_count=os.cpu_count(),
                load_average_start=load_start, load_average_end=os.getloadavg())
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, 'w') as f:
    json.dump(result, f, indent=2)
  print(f'-> {args.out}')


if __name__ == '__main__':
  main()
