"""Faults: kill it, corrupt it, feed it garbage; it resumes exactly and says what is wrong.

Every comparison of parameters is bit-for-bit (``np.array_equal`` on the raw arrays, every leaf
of the state: step, both players' parameters and Adam moments), on CPU, against an
uninterrupted in-process run of the same config (``REF_STEPS`` steps of
``configs/gaussian_1d.py``; the checkpoint and log intervals don't enter the arithmetic, so
runs that differ only in them must agree exactly).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import checkpoint, data, faults, gan, loop, train
from jaxgan import config as config_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF_STEPS = 100
# Fields that change no arithmetic, only what is written when.
QUIET = {'log_every': 5, 'sample_every': 10**6, 'checkpoint_every': 25, 'num_samples': 64}


def gaussian_config(**train_fields):
  """configs/gaussian_1d.py for ``REF_STEPS`` steps with ``train_fields`` overriding."""
  spec = importlib.util.spec_from_file_location('gaussian_1d',
                                                os.path.join(ROOT, 'configs', 'gaussian_1d.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.train.update({'num_steps': REF_STEPS, 'keep_checkpoints': 3, **QUIET, **train_fields})
  return config


def cli(workdir, **train_fields) -> list[str]:
  """The command that trains ``gaussian_config(**train_fields)`` into ``workdir``."""
  fields = {'num_steps': REF_STEPS, 'keep_checkpoints': 3, **QUIET, **train_fields}
  return [sys.executable, '-m', 'jaxgan.main', f'--config={ROOT}/configs/gaussian_1d.py',
          f'--workdir={workdir}', *(f'--config.train.{k}={v}' for k, v in fields.items())]


def assert_bit_equal(a, b):
  """Same tree, and every leaf the same dtype, shape and bytes."""
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    x, y = np.asarray(x), np.asarray(y)
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes(), 'leaves differ'


def metric_rows(workdir) -> list[dict]:
  """metrics.jsonl without the wall-clock column."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return [{k: v for k, v in row.items() if k != 'steps_per_sec'} for row in rows]


def fresh_state(config):
  generator, discriminator = train.build_models(config)
  g_optimizer, d_optimizer = train.optimizers(config)
  return train.init_state(jax.random.PRNGKey(123), generator=generator,
                          discriminator=discriminator, g_optimizer=g_optimizer,
                          d_optimizer=d_optimizer, latent_dim=config.model.latent_dim,
                          data_shape=data.data_shape(config.data.name))


def restore(workdir, config):
  mgr = checkpoint.manager(workdir, keep=config.train.keep_checkpoints)
  try:
    return checkpoint.restore_latest(mgr, fresh_state(config), config=config)
  finally:
    mgr.close()


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """An uninterrupted run: (workdir, final state)."""
  workdir = str(tmp_path_factory.mktemp('reference'))
  return workdir, train.train_and_evaluate(gaussian_config(), workdir)


# --- Determinism and exact resume -------------------------------------------------------------


def test_same_config_and_seed_give_bit_identical_params(reference, tmp_path):
  ref_dir, ref_state = reference
  again = train.train_and_evaluate(gaussian_config(checkpoint_every=50, log_every=20),
                                   str(tmp_path / 'again'))
  assert int(again.step) == REF_STEPS
  assert_bit_equal(again, ref_state)
  with pytest.raises(AssertionError, match='leaves differ'):  # The comparison can fail.
    assert_bit_equal(again.replace(step=jnp.zeros((), jnp.int32)), fresh_state(gaussian_config()))


# 22 s on 2 cores. Its claims stay in the default run, each on a cheaper or equal case:
# test_damaged_checkpoint_and_killed_save_end_to_end resumes this reference from step 75 to the
# same state bit for bit and the same metric rows; tests/test_preemption.py resumes a run stopped
# at step 45 to the reference's state and rows (and restores its checkpoint bit for bit);
# test_same_config_and_seed_give_bit_identical_params runs in other chunks to the same bits.
@pytest.mark.slow
def test_resume_is_bit_exact_and_metrics_read_as_one_run(reference, tmp_path):
  ref_dir, ref_state = reference
  workdir = str(tmp_path / 'resumed')
  train.train_and_evaluate(gaussian_config(num_steps=37), workdir)  # Final checkpoint at 37.
  resumed = train.train_and_evaluate(gaussian_config(), workdir)
  assert_bit_equal(resumed, ref_state)
  assert_bit_equal(restore(workdir, gaussian_config()), ref_state)
  # 37 is logged only by the short run; everything else row for row as in the reference.
  rows = [r for r in metric_rows(workdir) if r['step'] != 37]
  assert rows == metric_rows(ref_dir)


@pytest.mark.slow  # 35 s on 2 cores; the toy run's resume (below) is in the default run.
def test_image_run_resumed_anywhere_is_bit_exact_and_reads_no_earlier_batch(tmp_path):
  """An image run on device-resident data (mock MNIST, MLP GAN) stopped at a checkpoint and
  resumed gives the uninterrupted run's parameters bit for bit; the resumed run never computes
  the indices of a batch before its start (O(1) resume)."""
  import tensorflow_datasets as tfds

  def config(steps):
    c = config_lib.default_config()
    c.data.name, c.model.name, c.model.latent_dim = 'mnist', 'mnist_mlp', 8
    c.train.update({'num_steps': steps, 'batch_size': 8, 'log_every': 3, 'sample_every': 10**6,
                    'checkpoint_every': 3, 'num_samples': 8})
    return c

  with tfds.testing.mock_data(num_examples=40):  # 5 batches an epoch: the run crosses epochs.
    straight = train.train_and_evaluate(config(9), str(tmp_path / 'straight'))
    train.train_and_evaluate(config(6), str(tmp_path / 'resumed'))
    starts = []
    original = loop.image_source

    def spying_source(*args, **kwargs):
      source = original(*args, **kwargs)
      return source._replace(plan=lambda start, n: starts.append(start) or source.plan(start, n))

    loop.image_source = spying_source
    try:
      resumed = train.train_and_evaluate(config(9), str(tmp_path / 'resumed'))
    finally:
      loop.image_source = original
  assert_bit_equal(resumed, straight)
  # Step 0: the real images that the sample pictures show beside the fakes; step 6: the first
  # batch's check and the one chunk 6..9. Nothing from steps 1-5 is recomputed.
  assert starts == [0, 6, 6]
  assert metric_rows(str(tmp_path / 'resumed')) == metric_rows(str(tmp_path / 'straight'))


def test_toy_stream_and_step_key_depend_only_on_the_step():
  """Batch t is sampled from fold_in(data_key, t): a stream started at k is the tail."""
  key = jax.random.PRNGKey(5)
  straight = data.toy_batches('ring', key, 16)
  batches = [next(straight)['x'] for _ in range(6)]
  resumed = data.toy_batches('ring', key, 16, start_step=4)
  np.testing.assert_array_equal(next(resumed)['x'], batches[4])
  np.testing.assert_array_equal(next(resumed)['x'], batches[5])


def _wait_for(predicate, proc, timeout=120.0, what=''):
  deadline = time.monotonic() + timeout
  while not predicate():
    if proc.poll() is not None:
      raise AssertionError(f'training ended (rc {proc.returncode}) before {what}:\n'
                           f'{_log_tail(proc.args)}')
    if time.monotonic() > deadline:
      proc.kill()
      raise AssertionError(f'timed out waiting for {what}')
    time.sleep(0.001)


def _listdir(path):
  try:
    return os.listdir(path)
  except FileNotFoundError:
    return []


def _finished_steps(ckpt_dir):
  return sorted(int(n) for n in _listdir(ckpt_dir) if n.isdigit())


def _temporary(ckpt_dir):
  return [n for n in _listdir(ckpt_dir) if 'orbax-checkpoint-tmp' in n]


def _start(command):
  """Runs ``command``, its output appended to ``<workdir>.log`` (a pipe could fill and block)."""
  workdir = next(a for a in command if a.startswith('--workdir=')).split('=', 1)[1]
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu', 'TF_CPP_MIN_LOG_LEVEL': '3'}
  with open(f'{workdir}.log', 'a') as log:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _log_tail(command) -> str:
  workdir = next(a for a in command if a.startswith('--workdir=')).split('=', 1)[1]
  with open(f'{workdir}.log') as f:
    return f.read()[-3000:]


def kill_while_saving(command, ckpt_dir, *, attempts=3) -> int:
  """Starts ``command`` and SIGKILLs it while it writes a checkpoint after its first one.

  Returns the number of finished checkpoints that existed at the kill. Retries (a restart
  resumes) if the save happened to finish between seeing it and the kill.
  """
  for _ in range(attempts):
    proc = _start(command)
    before = len(_finished_steps(ckpt_dir))
    saving = lambda before=before: len(_finished_steps(ckpt_dir)) > before and _temporary(
        ckpt_dir)
    _wait_for(saving, proc, what='a checkpoint write after the first one')
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if _temporary(ckpt_dir):  # Killed mid-write: a temporary directory stays behind.
      return len(_finished_steps(ckpt_dir))
  raise AssertionError(f'no kill landed inside a checkpoint write in {attempts} tries')


@pytest.mark.slow  # 40 s on 2 cores; test_damaged_checkpoint_and_killed_save_end_to_end is fast.
def test_sigkill_during_checkpoint_write_resumes_bit_exact(reference, tmp_path):
  ref_dir, ref_state = reference
  workdir = str(tmp_path / 'killed')
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  command = cli(workdir)
  assert kill_while_saving(command, ckpt_dir) >= 1
  half = _temporary(ckpt_dir)
  # Restarted with the same command, it ignores and deletes the half-written step.
  proc = _start(command)
  assert proc.wait(timeout=300) == 0, _log_tail(command)
  assert not set(half) & set(_listdir(ckpt_dir))
  step, arrays = checkpoint.load(workdir)
  ref_step, ref_arrays = checkpoint.load(ref_dir)
  assert step == ref_step == REF_STEPS
  assert_bit_equal(arrays, ref_arrays)
  assert metric_rows(workdir) == metric_rows(ref_dir)


@pytest.mark.slow
def test_repeated_sigkill_at_arbitrary_steps_resumes_bit_exact(tmp_path):
  """Kills at steps drawn at random (seeded) and once mid-write; against a CLI reference."""
  rng = np.random.default_rng(0)
  steps = 300
  ref_dir, workdir = str(tmp_path / 'ref'), str(tmp_path / 'killed')
  assert _start(cli(ref_dir, num_steps=steps)).wait(timeout=600) == 0
  command = cli(workdir, num_steps=steps, checkpoint_every=20)
  kill_while_saving(command, os.path.join(workdir, 'checkpoints'))
  for target in sorted(rng.integers(30, steps - 20, size=3)):
    proc = _start(command)
    logged = lambda t=target: any(r['step'] >= t for r in _rows_or_empty(workdir))
    _wait_for(logged, proc, what=f'step {target}')
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  assert _start(command).wait(timeout=600) == 0, _log_tail(command)
  assert_bit_equal(checkpoint.load(workdir)[1], checkpoint.load(ref_dir)[1])
  assert metric_rows(workdir) == metric_rows(ref_dir)


def _rows_or_empty(workdir):
  try:
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      return [json.loads(line) for line in f if line.endswith('\n')]
  except (FileNotFoundError, ValueError):
    return []


def test_rewind_metrics_drops_rows_after_the_checkpoint_and_half_lines(tmp_path):
  path = str(tmp_path / 'metrics.jsonl')
  with open(path, 'w') as f:
    f.write(''.join(json.dumps({'step': s, 'd_loss': s / 10}) + '\n' for s in (10, 20, 30, 40)))
    f.write('{"step": 50, "d_lo')  # Killed mid-write.
  assert faults.rewind_metrics(path, 20) == 3
  assert [json.loads(line)['step'] for line in open(path)] == [10, 20]
  assert faults.rewind_metrics(path, 20) == 0


# --- Damaged checkpoints ---------------------------------------------------------------------


def _data_files(step_dir):
  """The array chunk files of one checkpoint, largest first."""
  files = []
  for root, _, names in os.walk(step_dir):
    files += [os.path.join(root, n) for n in names if os.path.basename(root) == 'd']
  return sorted(files, key=os.path.getsize, reverse=True)


def _flip_a_byte(path):
  with open(path, 'r+b') as f:
    content = bytearray(f.read())
    content[len(content) // 2] ^= 0x01
    f.seek(0)
    f.write(content)


def _truncate(path):
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def _empty_dir(step_dir):
  shutil.rmtree(step_dir)
  os.makedirs(step_dir)


def _garbage_metadata(step_dir):
  with open(os.path.join(step_dir, 'default', '_METADATA'), 'w') as f:
    f.write('{"tree_metadata": {"step": ')


DAMAGE = {
    'flipped_bit_in_array': lambda d: [_flip_a_byte(f) for f in _data_files(d)],
    'truncated_arrays': lambda d: [_truncate(f) for f in _data_files(d)],
    'empty_step_dir': _empty_dir,
    'half_written_metadata': _garbage_metadata,
}


@pytest.fixture
def three_checkpoints(reference, tmp_path):
  """A copy of the reference workdir: checkpoints of steps 50, 75 and 100."""
  workdir = str(tmp_path / 'copy')
  shutil.copytree(reference[0], workdir)
  assert _finished_steps(os.path.join(workdir, 'checkpoints')) == [50, 75, 100]
  return workdir


@pytest.mark.parametrize('damage', sorted(DAMAGE))
def test_damaged_latest_checkpoint_falls_back_to_the_previous(three_checkpoints, damage,
                                                              caplog):
  workdir, config = three_checkpoints, gaussian_config()
  DAMAGE[damage](os.path.join(workdir, 'checkpoints', '100'))
  with caplog.at_level(logging.WARNING):
    state = restore(workdir, config)
  assert int(state.step) == 75
  assert 'Resuming from step 75, the last good checkpoint' in caplog.text
  assert 'step 100 is damaged' in caplog.text
  names = _listdir(os.path.join(workdir, 'checkpoints'))
  assert '100' not in names and any(n.startswith('100.corrupt-') for n in names)


def test_damaged_checkpoint_and_killed_save_end_to_end(reference, three_checkpoints, caplog):
  """Latest step corrupted, a later save half-written: training redoes 76..100 exactly."""
  workdir, config = three_checkpoints, gaussian_config()
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  DAMAGE['flipped_bit_in_array'](os.path.join(ckpt_dir, '100'))
  half = os.path.join(ckpt_dir, '125.orbax-checkpoint-tmp')  # A save killed half way.
  shutil.copytree(os.path.join(ckpt_dir, '75'), half)
  os.remove(os.path.join(half, 'default', '_METADATA'))
  with caplog.at_level(logging.WARNING):
    state = train.train_and_evaluate(config, workdir)
  assert 'Resuming from step 75' in caplog.text
  assert not os.path.exists(half)
  assert_bit_equal(state, reference[1])
  assert metric_rows(workdir) == metric_rows(reference[0])


def test_every_checkpoint_damaged_is_an_error_not_a_fresh_start(three_checkpoints):
  for step in ('50', '75', '100'):
    _empty_dir(os.path.join(three_checkpoints, 'checkpoints', step))
  with pytest.raises(checkpoint.CorruptCheckpointError, match=r'steps \[100, 75, 50\]'):
    restore(three_checkpoints, gaussian_config())


def test_checkpoints_of_another_config_are_a_clear_error(three_checkpoints):
  config = gaussian_config()
  config.model.latent_dim = 3  # G's first kernel becomes (3, 5).
  before = open(os.path.join(three_checkpoints, 'config.json')).read()
  with pytest.raises(checkpoint.CheckpointMismatchError) as info:
    train.train_and_evaluate(config, three_checkpoints)
  message = str(info.value)
  assert 'step 100' in message and 'different config' in message
  assert 'g_params/Dense_0/kernel: checkpoint float32(1, 5), config float32(3, 5)' in message
  assert 'model.latent_dim: 1 -> 3' in message
  assert '\n' not in message
  # Nothing was moved aside or overwritten.
  assert _finished_steps(os.path.join(three_checkpoints, 'checkpoints')) == [50, 75, 100]
  assert open(os.path.join(three_checkpoints, 'config.json')).read() == before


# --- Checkpoints hold arrays, never pickles ----------------------------------------------------

PICKLE_OPCODE_PROTO = 0x80


def test_checkpoint_files_are_not_pickles_and_restore_never_unpickles(three_checkpoints,
                                                                      monkeypatch):
  ckpt_dir = os.path.join(three_checkpoints, 'checkpoints')
  for root, _, names in os.walk(ckpt_dir):
    for name in names:
      with open(os.path.join(root, name), 'rb') as f:
        head = f.read(2)
      # Every pickle since protocol 2 starts with PROTO (0x80) and the protocol number.
      assert not (len(head) == 2 and head[0] == PICKLE_OPCODE_PROTO and 2 <= head[1] <= 5), name
      assert not name.endswith(('.pkl', '.pickle', '.npy'))

  def refuse(*args, **kwargs):
    raise AssertionError('restoring a checkpoint unpickled something')

  for name in ('load', 'loads', 'Unpickler'):
    monkeypatch.setattr(pickle, name, refuse)
  monkeypatch.setattr(np, 'load', refuse)
  state = restore(three_checkpoints, gaussian_config())
  step, arrays = checkpoint.load(three_checkpoints)
  assert int(state.step) == step == 100
  for leaf in jax.tree.leaves(arrays):
    assert isinstance(leaf, np.ndarray) and leaf.dtype.kind in 'fiu'


class _Exploit:
  """Unpickling this runs ``open(marker, 'w')``: proof that code was executed."""

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (open, (self.marker, 'w'))


def test_a_pickle_planted_in_a_checkpoint_is_never_executed(three_checkpoints, caplog):
  marker = os.path.join(three_checkpoints, 'pwned')
  payload = pickle.dumps(_Exploit(marker))
  step_dir = os.path.join(three_checkpoints, 'checkpoints', '100')
  for root, _, names in os.walk(step_dir):  # Every metadata file of step 100 is now a pickle.
    for name in names:
      if not os.path.basename(root) == 'd':
        with open(os.path.join(root, name), 'wb') as f:
          f.write(payload)
  with caplog.at_level(logging.WARNING):
    state = restore(three_checkpoints, gaussian_config())
  assert not os.path.exists(marker)
  assert int(state.step) == 75  # Step 100 is damaged, not executed.


# --- Non-finite steps ------------------------------------------------------------------------


def _ring_setup(*, skip_nonfinite):
  config = config_lib.default_config()
  config.model.g_hidden, config.model.d_hidden = (8,), (8,)
  generator, discriminator = train.build_models(config)
  g_optimizer, d_optimizer = train.optimizers(config)
  step = jax.jit(gan.make_train_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
      d_optimizer=d_optimizer, latent_dim=2, skip_nonfinite=skip_nonfinite))
  state = train.init_state(jax.random.PRNGKey(0), generator=generator,
                           discriminator=discriminator, g_optimizer=g_optimizer,
                           d_optimizer=d_optimizer, latent_dim=2, data_shape=(2,))
  return step, state


def test_step_flags_nonfinite_and_skip_keeps_the_state_bit_for_bit():
  good = {'x': np.asarray(data.ring(jax.random.PRNGKey(1), 16))}
  bad = {'x': good['x'].copy()}
  bad['x'][3, 0] = np.nan
  key = jax.random.PRNGKey(2)
  plain, state = _ring_setup(skip_nonfinite=False)
  skipping, _ = _ring_setup(skip_nonfinite=True)

  # A finite step: flags 0 and skipping changes nothing.
  s_plain, m_plain = plain(state, good, key)
  s_skip, m_skip = skipping(state, good, key)
  assert float(m_plain['d_nonfinite']) == float(m_plain['g_nonfinite']) == 0.0
  assert_bit_equal(s_skip, s_plain)

  # A NaN in the data: D's loss and gradients go NaN, then G's (it plays the updated D).
  s_plain, m_plain = plain(state, bad, key)
  assert float(m_plain['d_nonfinite']) == 1.0 and float(m_plain['g_nonfinite']) == 1.0
  assert np.isnan(np.asarray(s_plain.d_params['Dense_0']['kernel'])).any()
  s_skip, m_skip = skipping(state, bad, key)
  assert float(m_skip['d_nonfinite']) == 1.0
  assert int(s_skip.step) == int(state.step) + 1
  assert_bit_equal(s_skip.replace(step=state.step), state)


def test_step_flags_agree_across_replicas_so_all_skip_together():
  """Only replica 0 sees the NaN; the flags are averaged, so every replica skips.

  Two replicas are simulated with ``vmap`` over the device axis (``pmean`` and ``axis_index``
  behave as under ``pmap``/``shard_map``), so this runs on one CPU device.
  """
  _, state = _ring_setup(skip_nonfinite=True)
  config = config_lib.default_config()
  config.model.g_hidden, config.model.d_hidden = (8,), (8,)
  generator, discriminator = train.build_models(config)
  g_optimizer, d_optimizer = train.optimizers(config)
  step = gan.make_train_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
      d_optimizer=d_optimizer, latent_dim=2, skip_nonfinite=True, axis_name=train.AXIS_NAME)
  replicas = jax.jit(jax.vmap(step, in_axes=(None, 0, None), axis_name=train.AXIS_NAME))
  x = np.array(data.ring(jax.random.PRNGKey(1), 16)).reshape(2, 8, 2)
  new, metrics = replicas(state, {'x': x}, jax.random.PRNGKey(2))
  np.testing.assert_array_equal(metrics['d_nonfinite'], [0.0, 0.0])
  x[0, 0, 0] = np.nan
  new, metrics = replicas(state, {'x': x}, jax.random.PRNGKey(2))
  np.testing.assert_array_equal(metrics['d_nonfinite'], [1.0, 1.0])
  for replica in range(2):
    kept = jax.tree.map(lambda leaf, r=replica: leaf[r], new)
    assert_bit_equal(kept.replace(step=state.step), state)


def _poisoned_source(poison_step):
  """train._source, except that the batch of ``poison_step`` is scaled by 1e20.

  Finite data (the first batch passes check_batch), but D's gradient norm overflows float32:
  the step is flagged non-finite exactly at ``poison_step``, inside a chunk.
  """
  original = train._source

  def source(config, key):
    src = original(config, key)

    def plan(start, length):  # Toy plans are the chunk's batches, (length, B, ...).
      xs, i = src.plan(start, length), poison_step - 1 - start
      return xs.at[i].multiply(1e20) if 0 <= i < length else xs

    return src._replace(plan=plan)

  return source


def _ring_config(**train_fields):
  config = config_lib.default_config()
  config.model.g_hidden, config.model.d_hidden = (8,), (8,)
  config.train.update({'num_steps': 40, 'batch_size': 16, 'log_every': 10,
                       'sample_every': 10**6, 'checkpoint_every': 10, 'num_samples': 64,
                       **train_fields})
  return config


def test_nonfinite_step_stops_naming_step_and_player_keeping_last_good_checkpoint(
    tmp_path, monkeypatch):
  monkeypatch.setattr(train, '_source', _poisoned_source(25))
  workdir = str(tmp_path / 'nan')
  with pytest.raises(faults.NonFiniteError) as info:
    train.train_and_evaluate(_ring_config(), workdir)
  message = str(info.value)
  assert 'step 25: the discriminator went non-finite' in message
  assert 'd_grad_norm=inf' in message and 'generator' not in message.split('(')[0]
  assert 'last good checkpoint (step 20)' in message
  assert _finished_steps(os.path.join(workdir, 'checkpoints')) == [10, 20]
  assert max(row['step'] for row in metric_rows(workdir)) == 20
  kept = restore(workdir, _ring_config())
  assert int(kept.step) == 20
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(kept))
  # The error holds the state after step 24, the last good one: that of a run of 24 steps.
  assert info.value.step == 25
  assert_bit_equal(info.value.state,
                   train.train_and_evaluate(_ring_config(num_steps=24), str(tmp_path / '24')))


def test_nonfinite_step_skipped_by_config_keeps_the_previous_state(tmp_path, monkeypatch,
                                                                   caplog):
  monkeypatch.setattr(train, '_source', _poisoned_source(4))
  workdir = str(tmp_path / 'skip')
  config = _ring_config(on_nonfinite='skip', num_steps=5, checkpoint_every=1)
  with caplog.at_level(logging.WARNING):
    train.train_and_evaluate(config, workdir)
  assert 'Skipped the update of step 4: the discriminator went non-finite' in caplog.text
  after_3, after_4, after_5 = (checkpoint.load(workdir, step=s)[1] for s in (3, 4, 5))
  assert after_4.pop('step') == 4 and after_3.pop('step') == 3
  assert_bit_equal(after_4, after_3)  # Step 4 changed nothing but the counter.
  assert not np.array_equal(after_5['d_params']['Dense_0']['kernel'],
                            after_4['d_params']['Dense_0']['kernel'])


# --- Bad config, bad data ----------------------------------------------------------------------

BAD_CONFIGS = [
    # (field, bad value, a piece of the allowed values the message must name)
    ('data.name', 'imagenet', "'mnist'"),
    ('model.name', 'resnet', "'dcgan'"),
    ('loss.name', 'hinge_typo', "'wasserstein'"),
    ('train.g_lr', 0.0, '> 0'),
    ('train.d_lr', -1e-4, '> 0'),
    ('train.num_d_steps', 0, '> 0'),
    ('train.update_rule', 'sequential', "'alternating'"),
    ('train.on_nonfinite', 'ignore', "'skip'"),
    ('model.activation', 'swish', "'leaky_relu'"),
    ('train.b1', 1.0, '[0, 1)'),
    ('model.g_hidden', (0, 8), 'ints > 0'),
]


@pytest.mark.parametrize('field,value,allowed', BAD_CONFIGS)
def test_bad_config_is_a_one_line_error_naming_field_and_allowed_values(field, value, allowed,
                                                                        tmp_path):
  config = config_lib.default_config()
  section, name = field.split('.')
  config[section][name] = value
  workdir = str(tmp_path / 'never')
  with pytest.raises(ValueError) as info:
    train.train_and_evaluate(config, workdir)
  message = str(info.value)
  assert f'config.{field}=' in message and allowed in message and '\n' not in message
  assert not os.path.exists(workdir)  # Rejected before anything was built or written.


def test_batch_not_divisible_by_devices_and_image_shape_model_cannot_take(monkeypatch):
  config = config_lib.default_config()
  config.train.batch_size = 63
  with pytest.raises(ValueError, match=r'config.train.batch_size=63 is not divisible by the 2'):
    config_lib.validate(config, num_devices=2)
  config = config_lib.default_config()
  config.model.name = 'dcgan'
  with pytest.raises(ValueError, match=r"config.model.name='dcgan' needs an image dataset"):
    config_lib.validate(config)
  monkeypatch.setitem(data.IMAGE_SHAPES, 'odd', (30, 30, 1))
  monkeypatch.setattr(data, 'DATASETS', [*data.DATASETS, 'odd'])
  config.data.name = 'odd'
  with pytest.raises(ValueError, match=r"config.data.name='odd' can't be drawn by "
                                       r"config.model.name='dcgan'.*4\*2\^k or 7\*2\^k"):
    config_lib.validate(config)


SPEC = {'data_shape': (28, 28, 1), 'batch_size': 4, 'value_range': (-1.0, 1.0)}
GOOD_IMAGES = np.linspace(-1, 1, 4 * 28 * 28, dtype=np.float32).reshape(4, 28, 28, 1)


@pytest.mark.parametrize('x,message', [
    (GOOD_IMAGES[..., 0], r"rank 3 \(shape \(4, 28, 28\)\); expected rank 4: \(batch, 28, 28, 1\)"),
    (GOOD_IMAGES[:3], r'shape \(3, 28, 28, 1\); expected \(4, 28, 28, 1\)'),
    (((GOOD_IMAGES + 1) * 127.5).astype(np.uint8), r'dtype uint8; expected float32'),
    ((GOOD_IMAGES + 1) * 127.5, r'values in \[0, 255\]; expected \[-1, 1\]'),
    (np.where(GOOD_IMAGES == 1.0, np.inf, GOOD_IMAGES), r'1 non-finite values'),
])
def test_check_batch_rejects_bad_rank_shape_dtype_and_range(x, message):
  faults.check_batch({'x': GOOD_IMAGES}, **SPEC)  # The good batch passes.
  with pytest.raises(ValueError, match=r"batch\['x'\] at step 7 has " + message):
    faults.check_batch({'x': x}, **SPEC, step=7)


def test_bad_data_reaching_the_loop_is_a_clear_error_before_the_step(tmp_path, monkeypatch):
  monkeypatch.setattr(train, '_source', lambda config, key: loop.Source(
      data=key, plan=lambda start, length: np.arange(start, start + length),
      batch=lambda key, t: {'x': jnp.zeros((config.train.batch_size,), jnp.float32)}))
  with pytest.raises(ValueError, match=r"batch\['x'\] at step 1 has rank 1 \(shape \(16,\)\); "
                                       r'expected rank 2: \(batch, 2\)'):
    train.train_and_evaluate(_ring_config(), str(tmp_path / 'bad'))
