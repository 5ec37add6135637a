"""Runs the slow-marked checks (``@pytest.mark.slow``), which the default test run leaves out.

    python benchmarks/slow_tests.py --out=benchmarks/results/slow_tests.json

The default run (``python -m pytest -n 2``, the command ``.ci/run`` calls) deselects them with
``-m 'not slow'`` (pyproject.toml) to stay within ~10 minutes on 2 cores; they are the long
end-to-end runs (a config trained and resumed, a notebook executed, SIGKILL at random steps, the
torch comparisons where torch is installed). This script runs exactly those, one pytest process
(``-n 2``), and writes each test's outcome and duration, the totals, and the load average
before and after, so that the record says on what machine they last passed.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks', 'results',
                                                    'slow_tests.json'))
  parser.add_argument('--workers', type=int, default=2, help='pytest-xdist workers')
  parser.add_argument('pytest_args', nargs='*', help='more arguments for pytest (e.g. a file)')
  args = parser.parse_args()
  load_start = os.getloadavg()
  with tempfile.TemporaryDirectory() as tmp:
    report = os.path.join(tmp, 'junit.xml')
    command = [sys.executable, '-m', 'pytest', '-m', 'slow', '-n', str(args.workers), '-q',
               f'--junitxml={report}', *args.pytest_args]
    start = time.perf_counter()
    rc = subprocess.call(command, cwd=ROOT)
    wall = time.perf_counter() - start
    tests = []
    for case in ET.parse(report).getroot().iter('testcase'):
      outcome = 'passed'
      for tag in ('failure', 'error', 'skipped'):
        if case.find(tag) is not None:
          outcome = {'failure': 'failed', 'error': 'error', 'skipped': 'skipped'}[tag]
      tests.append({'test': f"{case.get('classname')}::{case.get('name')}",
                    'outcome': outcome, 'seconds': float(case.get('time', 0.0))})
  counts = {o: sum(t['outcome'] == o for t in tests)
            for o in ('passed', 'failed', 'error', 'skipped')}
  result = {'command': 'python benchmarks/slow_tests.py ' + ' '.join(sys.argv[1:]),
            'pytest_command': ' '.join(command[1:]), 'returncode': rc, 'wall_seconds': wall,
            **counts, 'platform': platform.platform(), 'cpu_count': os.cpu_count(),
            'load_average_start': load_start, 'load_average_end': os.getloadavg(),
            'tests': sorted(tests, key=lambda t: -t['seconds'])}
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, 'w') as f:
    json.dump(result, f, indent=2)
  print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
        f"{counts['skipped']} skipped in {wall:.0f} s -> {args.out}")
  sys.exit(rc)


if __name__ == '__main__':
  main()
