"""Several processes (jax.distributed on localhost, CPU collectives over gloo) train as one.

Each run is a subprocess of :func:`run` (this file as a script): 2 processes x 2 CPU devices,
1 process x 4 devices and 1 process x 1 device train the same config on the same global batch,
and their final parameters (every leaf of the state) must agree to float tolerance; the
reductions over devices add in another order, which moves the last bits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxgan import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = 300


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def worker_config(name: str, num_steps: int, parallel: str):
  """A short run of ``configs/<name>.py``: global batch 8, every interval past the run's end."""
  import importlib.util
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  t = config.train
  t.num_steps, t.batch_size, t.num_samples, t.parallel = num_steps, 8, 16, parallel
  t.log_every = 2
  t.sample_every = t.checkpoint_every = 10**6
  return config


def _worker(args) -> None:
  """One process of a run: trains, and process 0 writes the final state to ``args.out``."""
  import jax
  import tensorflow_datasets as tfds

  from jaxgan import distributed, train
  if args.num_processes > 1:
    distributed.initialize(coordinator_address=f'localhost:{args.port}',
                           num_processes=args.num_processes, process_id=args.process_id,
                           timeout_s=60)
  config = worker_config(args.config, args.num_steps, args.parallel)
  for override in args.set:
    field, value = override.split('=', 1)
    section, name = field.split('.')
    config[section][name] = type(config[section][name])(value)
  mock = tfds.testing.mock_data(num_examples=64) if args.mock else contextlib.nullcontext()
  with mock:
    state = train.train_and_evaluate(config, args.workdir)
  if jax.process_index() == 0:
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    np.savez(args.out, **{jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves})


def run(tmp_path, name: str, *, processes: int, devices: int, parallel: str = 'shard_map',
        num_steps: int = 4, mock: bool = False, overrides=(), per_process=None,
        timeout: float = TIMEOUT_S):
  """Trains ``name`` with ``processes`` x ``devices`` (``overrides``: ``'train.g_lr=0.1'``
  strings for every process, ``per_process[i]`` for process ``i`` alone).

  Returns:
    ``(exit codes, logs, final leaves of process 0 or None, workdir)``.
  """
  tag = f'{name}_{processes}x{devices}_{parallel}'
  workdir, out = str(tmp_path / tag), str(tmp_path / f'{tag}.npz')
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '3',
         'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}
  port = free_port()
  procs = []
  for i in range(processes):
    command = [sys.executable, __file__, f'--config={name}', f'--workdir={workdir}',
               f'--out={out}', f'--num_processes={processes}', f'--process_id={i}',
               f'--port={port}', f'--num_steps={num_steps}', f'--parallel={parallel}',
               *(['--mock'] if mock else []),
               *(f'--set={o}' for o in [*overrides, *(per_process or {}).get(i, ())])]
    log = open(f'{workdir}.{i}.log', 'w')
    procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT))
  try:
    codes = [p.wait(timeout=timeout) for p in procs]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  logs = [open(f'{workdir}.{i}.log').read() for i in range(processes)]
  return codes, logs, (dict(np.load(out)) if os.path.exists(out) else None), workdir


# A step of Adam moves a parameter by up to its learning rate (2e-4 in these configs): 1e-5 is
# 5 % of one step, while another batch order or a missing all-reduce moves every leaf by about
# a step. (DCGAN's parameters differ by up to 5e-6 between 2 x 2 and 1 x 4 devices after 4
# steps: Adam divides gradients near zero by their own size.)
ATOL = 1e-5


def max_difference(a, b) -> float:
  """The largest absolute difference over every leaf of two final states (same tree)."""
  assert a.keys() == b.keys()
  return max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]), initial=0.0)) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize('name,mock', [('mog_ring', False), ('dcgan_mnist', True)])
def test_two_processes_equal_one_process_and_one_device(tmp_path, name, mock):
  results = {}
  for processes, devices, parallel in [(2, 2, 'shard_map'), (1, 4, 'shard_map'), (1, 1, 'none')]:
    codes, logs, leaves, _ = run(tmp_path, name, processes=processes, devices=devices,
                                 parallel=parallel, mock=mock)
    assert codes == [0] * processes, logs[0][-3000:] + logs[-1][-3000:]
    results[processes, devices] = leaves
  assert int(results[2, 2]['.step']) == 4
  assert max_difference(results[2, 2], results[1, 4]) < ATOL
  assert max_difference(results[2, 2], results[1, 1]) < ATOL
  assert max_difference(results[1, 4], results[1, 1]) < ATOL


def test_processes_with_different_configs_fail_on_every_process_before_compiling(tmp_path):
  codes, logs, leaves, workdir = run(tmp_path, 'gaussian_1d', processes=2, devices=1,
                                     per_process={1: ['train.g_lr=0.5']}, timeout=120)
  assert codes == [1, 1] and leaves is None
  for i, log in enumerate(logs):
    assert (f'ValueError: processes [1] were started with a different config than process 0 '
            f'(config digests differ; this is process {i})') in log
  assert not os.path.exists(os.path.join(workdir, 'checkpoints'))


def test_global_batch_not_divisible_by_processes_fails_before_compiling(tmp_path):
  codes, logs, leaves, workdir = run(tmp_path, 'gaussian_1d', processes=2, devices=1,
                                     overrides=['train.batch_size=9'], timeout=120)
  assert codes == [1, 1] and leaves is None
  for log in logs:
    assert ('ValueError: config.train.batch_size=9 is not divisible by the 2 processes '
            '(--num_processes=2)') in log
  assert not os.path.exists(os.path.join(workdir, 'checkpoints'))


def test_unreachable_coordinator_is_a_one_line_error_after_the_timeout_not_a_hang(tmp_path):
  port = free_port()  # Nothing listens there.
  command = [sys.executable, '-m', 'jaxgan.main', f'--config={ROOT}/configs/gaussian_1d.py',
             f'--workdir={tmp_path}', f'--coordinator_address=localhost:{port}',
             '--num_processes=2', '--process_id=1', '--initialization_timeout=2']
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '3'}
  result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      f'error: process 1 of 2: not every process reached the coordinator at localhost:{port} '
      f'within 2 s; start all 2 processes (process 0 on that host) with the same '
      f'--coordinator_address and --num_processes')


@pytest.mark.parametrize('flags,message', [
    ({'num_processes': 2}, '--coordinator_address, --process_id missing'),
    ({'coordinator_address': 'localhost:1', 'num_processes': 2, 'process_id': 2},
     '--process_id=2 must be in [0, 2)'),
    ({'coordinator_address': 'localhost', 'num_processes': 2, 'process_id': 0},
     "--coordinator_address='localhost' must be HOST:PORT"),
])
def test_incomplete_or_bad_flags_are_one_line_errors(flags, message):
  from jaxgan import distributed
  with pytest.raises(ValueError, match=re.escape(message)):
    distributed.initialize(**flags)


def test_no_flags_and_no_cluster_is_one_process_without_connecting(monkeypatch):
  import jax

  from jaxgan import distributed
  for name in ('SLURM_JOB_ID', 'OMPI_MCA_orte_hnp_uri', 'TPU_WORKER_HOSTNAMES'):
    monkeypatch.delenv(name, raising=False)
  if distributed.detected_cluster() is not None:
    pytest.skip(f'this machine is a {distributed.detected_cluster()} host')

  def fail(*args, **kwargs):
    raise AssertionError('jax.distributed.initialize called')

  monkeypatch.setattr(jax.distributed, 'initialize', fail)
  distributed.initialize()
  assert jax.process_count() == 1


if __name__ == '__main__':
  parser = argparse.ArgumentParser()
  for flag in ('config', 'workdir', 'out', 'parallel'):
    parser.add_argument(f'--{flag}')
  for flag in ('num_processes', 'process_id', 'port', 'num_steps'):
    parser.add_argument(f'--{flag}', type=int)
  parser.add_argument('--mock', action='store_true')
  parser.add_argument('--set', action='append', default=[])
  sys.path.insert(0, ROOT)
  _worker(parser.parse_args())


def _start(tmp_path, tag: str, name: str, *, processes: int, devices: int, num_steps: int,
           port: int, overrides=()):
  """Starts the processes of a run of ``name`` in the background: (procs, workdir, out)."""
  workdir, out = str(tmp_path / tag), str(tmp_path / f'{tag}.npz')
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '3',
         'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices}'}
  procs = []
  for i in range(processes):
    command = [sys.executable, __file__, f'--config={name}', f'--workdir={workdir}',
               f'--out={out}', f'--num_processes={processes}', f'--process_id={i}',
               f'--port={port}', f'--num_steps={num_steps}', '--parallel=shard_map',
               *(f'--set={o}' for o in overrides)]
    with open(f'{workdir}.{i}.log', 'a') as log:
      procs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT))
  return procs, workdir, out


def _rows(workdir):
  try:
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      return [json.loads(line) for line in f if line.endswith('\n')]
  except (FileNotFoundError, ValueError):
    return []


@pytest.mark.slow  # Three 2-process runs: 3-6 minutes on 2 busy cores.
def test_sigterm_to_every_process_stops_at_one_step_and_resumes_bit_exact(tmp_path):
  steps, target = 1000, int(np.random.default_rng(2).integers(100, 500))
  fields = ['train.log_every=5']
  procs, ref_dir, ref_out = _start(tmp_path, 'ref', 'gaussian_1d', processes=2, devices=1,
                                   num_steps=steps, port=free_port(), overrides=fields)
  assert [p.wait(timeout=TIMEOUT_S) for p in procs] == [0, 0]
  procs, workdir, out = _start(tmp_path, 'preempted', 'gaussian_1d', processes=2, devices=1,
                               num_steps=steps, port=free_port(), overrides=fields)
  deadline = time.time() + TIMEOUT_S
  while not any(r['step'] >= target for r in _rows(workdir)):
    assert all(p.poll() is None for p in procs), open(f'{workdir}.0.log').read()[-3000:]
    assert time.time() < deadline, f'step {target} not reached'
    time.sleep(0.01)
  for p in procs:  # One after the other, as a scheduler would: they may see it in other chunks.
    p.send_signal(signal.SIGTERM)
    time.sleep(0.05)
  assert [p.wait(timeout=120) for p in procs] == [0, 0], open(f'{workdir}.1.log').read()[-3000:]
  stopped = checkpoint.load(workdir)[0]
  assert target <= stopped < steps
  for i in range(2):  # Every process stopped after the same step.
    assert f'SIGTERM received: stopped after step {stopped} of {steps}' in open(
        f'{workdir}.{i}.log').read()
  procs, _, _ = _start(tmp_path, 'preempted', 'gaussian_1d', processes=2, devices=1,
                       num_steps=steps, port=free_port(), overrides=fields)
  assert [p.wait(timeout=TIMEOUT_S) for p in procs] == [0, 0]
  resumed, reference = dict(np.load(out)), dict(np.load(ref_out))
  assert resumed.keys() == reference.keys()
  for k in reference:
    assert resumed[k].tobytes() == reference[k].tobytes(), k
  assert checkpoint.load(workdir)[0] == steps
  strip = lambda rows: [{k: v for k, v in r.items() if k != 'steps_per_sec'} for r in rows]
  assert strip(_rows(workdir)) == strip(_rows(ref_dir))
