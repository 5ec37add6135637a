r"""How long each notebook of ``colab/`` takes in quick mode, as the tests run it.

    python benchmarks/notebook_time.py --out=benchmarks/results/notebook_time_cpu.json

Each notebook runs ``--repeats`` times, each time in a fresh kernel on this interpreter with
``JAXGAN_QUICK=1``, the repository on ``PYTHONPATH`` and its working directory a temporary
directory (the environment of ``tests/test_notebooks.py``; notebook 01 on 2 CPU devices, the
others on 1, as there). ``seconds`` is the median wall time of executing every cell (the
kernel's start included); each run also records every code cell's own seconds (``cells_s``, in
order, from the cells' execution timestamps), and the row names its ``slowest_cells``
(median seconds and the cell's first line). Prints a table and writes JSON with the load
average at the start and end. Run it alone: every figure is a time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLAB = os.path.join(REPO, 'colab')
DEVICES = {'01_bilinear_dynamics.ipynb': 2}  # As tests/test_notebooks.py runs them.


def _environment(num_devices: int) -> dict[str, str]:
  env = dict(os.environ)
  flags = re.sub(r'--xla_force_host_platform_device_count=\S+', '', env.get('XLA_FLAGS', ''))
  env.update(JAXGAN_QUICK='1', JAXGAN_REPO=REPO, JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=os.pathsep.join([REPO, env.get('PYTHONPATH', '')]).rstrip(os.pathsep),
             XLA_FLAGS=f'{flags} --xla_force_host_platform_device_count={num_devices}'.strip())
  return env


def _stamp(cell, name: str) -> datetime.datetime:
  return datetime.datetime.fromisoformat(
      cell.metadata['execution'][name].replace('Z', '+00:00'))


def time_notebook(name: str) -> dict:
  """One quick-mode execution of ``colab/<name>``: its wall seconds and each code cell's."""
  with open(os.path.join(COLAB, name)) as f:
    nb = nbformat.read(f, as_version=4)
  with tempfile.TemporaryDirectory() as cwd:
    client = NotebookClient(nb, timeout=600, kernel_name='python3', record_timing=True,
                            resources={'metadata': {'path': cwd}})
    tick = time.perf_counter()
    client.execute(env=_environment(DEVICES.get(name, 1)))
    seconds = time.perf_counter() - tick
  code = [c for c in nb.cells if c.cell_type == 'code']
  cells = [(_stamp(c, 'shell.execute_reply') - _stamp(c, 'iopub.execute_input')).total_seconds()
           for c in code]
  return {'seconds': seconds, 'cells_s': cells,
          'first_lines': [c.source.splitlines()[0] if c.source else '' for c in code]}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--notebooks', default=None,
                      help='Comma-separated notebook names (default: every notebook).')
  parser.add_argument('--out', default=None)
  args = parser.parse_args()
  result = {'command': 'python benchmarks/notebook_time.py ' + ' '.join(sys.argv[1:]),
            'load_average_start': list(os.getloadavg()),
            'machine': machine.host(),
            'repeats': args.repeats, 'rows': []}
  names = (args.notebooks.split(',') if args.notebooks else
           sorted(n for n in os.listdir(COLAB) if n.endswith('.ipynb')))
  print(f'{"notebook":40s} {"seconds (median)":>17s}  slowest cells (s)')
  for name in names:
    runs = [time_notebook(name) for _ in range(args.repeats)]
    cells = [statistics.median(r['cells_s'][i] for r in runs)
             for i in range(len(runs[0]['cells_s']))]
    slowest = sorted(range(len(cells)), key=lambda i: -cells[i])[:3]
    row = {'notebook': name, 'num_devices': DEVICES.get(name, 1),
           'seconds': statistics.median(r['seconds'] for r in runs),
           'slowest_cells': [{'cell': i, 'seconds': cells[i],
                              'first_line': runs[0]['first_lines'][i]} for i in slowest],
           'runs': [{k: r[k] for k in ('seconds', 'cells_s')} for r in runs]}
    result['rows'].append(row)
    print(f'{name:40s} {row["seconds"]:17.1f}  ' + ', '.join(
        f'cell {c["cell"]}: {c["seconds"]:.1f}' for c in row['slowest_cells']), flush=True)
  result['load_average_end'] = list(os.getloadavg())
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(result, f, indent=1)


if __name__ == '__main__':
  main()
