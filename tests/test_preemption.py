"""Preemption: SIGTERM/SIGINT end a run after its chunk with a checkpoint; the same command resumes
bit for bit (every leaf of the state compared as bytes against an uninterrupted run, on CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import pytest
from test_faults import (
  ROOT,
  _rows_or_empty,
  assert_bit_equal,
  cli,
  gaussian_config,
  metric_rows,
  restore,
)

from jaxgan import checkpoint, distributed, train

STEPS = 100  # Chunks of 5 steps (log_every=5, the other intervals longer than the run).
FIELDS = {'num_steps': STEPS, 'checkpoint_every': 10**6}


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """An uninterrupted run of gaussian_config(**FIELDS): (workdir, final state)."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  return workdir, train.train_and_evaluate(gaussian_config(**FIELDS), workdir)


@pytest.mark.parametrize('signum', [signal.SIGTERM, pytest.param(signal.SIGINT,
                                                                  marks=pytest.mark.slow)],
                         ids=['SIGTERM', 'SIGINT'])  # 15 s each on 2 cores (compiling).
def test_signal_stops_after_the_chunk_checkpoints_and_resumes_bit_exact(reference, tmp_path,
                                                                         signum, caplog):
  ref_dir, ref_state = reference
  workdir = str(tmp_path / 'preempted')
  before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

  def signal_at_40(step):  # Asked after each chunk: the signal lands between chunks 40 and 45.
    if step == 40:
      os.kill(os.getpid(), signum)
    return False

  with caplog.at_level('WARNING'):
    stopped = train.train_and_evaluate(gaussian_config(**FIELDS), workdir,
                                       should_stop=signal_at_40)
  # The chunk after the signal (41-45) ran; the run stopped there with a checkpoint.
  assert int(stopped.step) == 45
  assert checkpoint.load(workdir)[0] == 45
  assert_bit_equal(restore(workdir, gaussian_config(**FIELDS)), stopped)
  name = signal.Signals(signum).name
  assert f'{name} received: stopped after step 45 of {STEPS}' in caplog.text
  assert 'run the same command to resume from step 45' in caplog.text
  # The process's handlers are its own again.
  assert {s: signal.getsignal(s) for s in before} == before
  resumed = train.train_and_evaluate(gaussian_config(**FIELDS), workdir)
  assert_bit_equal(resumed, ref_state)
  assert metric_rows(workdir) == metric_rows(ref_dir)  # No extra row at the stop.


def test_guard_installs_its_handlers_and_puts_the_previous_ones_back():
  before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
  with distributed.preemption_guard() as preemption:
    assert all(signal.getsignal(s) != h for s, h in before.items())
    assert not preemption.requested
    os.kill(os.getpid(), signal.SIGTERM)
    assert preemption.requested and preemption.signal == 'SIGTERM'
    # The first signal already restores the previous handlers (a second Ctrl-C acts at once).
    assert {s: signal.getsignal(s) for s in before} == before
  assert {s: signal.getsignal(s) for s in before} == before


def _start(command, log_path):
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '3'}
  with open(log_path, 'a') as log:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.slow  # 60 s on 2 cores; the in-process signal test above is in the default run.
def test_sigterm_at_an_arbitrary_step_exits_0_and_the_same_command_resumes_bit_exact(tmp_path):
  steps = 4000  # Long enough (a few seconds) to be running when the signal comes.
  target = int(np.random.default_rng(1).integers(200, 1500))
  ref_dir, workdir = str(tmp_path / 'ref'), str(tmp_path / 'preempted')
  train.train_and_evaluate(gaussian_config(num_steps=steps, checkpoint_every=10**6), ref_dir)
  command = cli(workdir, num_steps=steps, checkpoint_every=10**6)
  log_path = f'{workdir}.log'
  proc = _start(command, log_path)
  deadline = time.time() + 240
  while not any(r['step'] >= target for r in _rows_or_empty(workdir)):
    assert proc.poll() is None, open(log_path).read()[-3000:]
    assert time.time() < deadline, f'step {target} not reached'
    time.sleep(0.01)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == 0, open(log_path).read()[-3000:]
  output = open(log_path).read()
  stopped = checkpoint.load(workdir)[0]
  assert target <= stopped < steps
  assert (f'SIGTERM received: stopped after step {stopped} of {steps} with a checkpoint in '
          f'{workdir}/checkpoints; run the same command to resume from step {stopped}.') in output
  assert _start(command, log_path).wait(timeout=240) == 0, open(log_path).read()[-3000:]
  assert f'Resuming from the checkpoint of step {stopped}' in open(log_path).read()
  step, arrays = checkpoint.load(workdir)
  assert step == steps
  assert_bit_equal(arrays, checkpoint.load(ref_dir)[1])
  assert metric_rows(workdir) == metric_rows(ref_dir)
