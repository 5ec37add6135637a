"""The chunked driver's pieces: toy batches pinned to the per-step loop's, image batches as a
function of the step, chunk boundaries, non-finite steps inside a chunk, devices."""

import hashlib
import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import config as config_lib
from jaxgan import data, faults, loop, parallel

DATA_KEY = jax.random.split(jax.random.PRNGKey(0), 4)[2]  # A run's data key for seed 0.

# sha256 (first 16 hex digits) of the float32 bytes of batches 0, 1, 2, computed with the
# per-step loop's data.toy_batches at commit b10e7f6, before the driver drew them in chunks.
PINNED = {
    ('gaussian_1d', 128, 1.0): ['205978a215cf815f', 'c9393311099b323f', '81e0985071d787b5'],
    ('ring', 128, math.sqrt(0.5)): ['739d8b9bc8be89df', '5ca9f4c739d02ab3', '7df38a1bfe582327'],
    ('grid', 64, math.sqrt(8.0)): ['bbf552e10fb45b95', '4b58ddf402e2d512', '5a15a951ae42d6bf'],
    ('sine', 64, 1.0): ['b10dba88673c0ce4', '4f364f3d8c4dad16', 'cc190ba17d107cdd'],
}


def _digest(x) -> str:
  return hashlib.sha256(np.ascontiguousarray(x, np.float32).tobytes()).hexdigest()[:16]


def _recording_step(state, batch, key):
  """A stand-in train step that counts and reports the batch it was given."""
  del key
  metrics = {'x': batch['x'], 'd_nonfinite': jnp.float32(0), 'g_nonfinite': jnp.float32(0)}
  return {'step': state['step'] + 1}, metrics


def _chunk_batches(source, start, length):
  chunk = jax.jit(loop.make_chunk(_recording_step, source.batch))
  batches = []
  for t in range(start, start + length):  # Chunks of one step: 'last' is that step's batch.
    _, out = chunk({'step': jnp.int32(t)}, source.data, source.plan(t, 1), DATA_KEY)
    batches.append(np.asarray(out['last']['x']))
  return batches


@pytest.mark.parametrize('name,size,scale', list(PINNED))
def test_toy_batches_drawn_inside_a_chunk_are_those_of_the_per_step_loop(name, size, scale):
  source = loop.toy_source(name, DATA_KEY, size, scale=scale)
  assert [_digest(b) for b in _chunk_batches(source, 0, 3)] == PINNED[(name, size, scale)]
  host = data.toy_batches(name, DATA_KEY, size, scale=scale)
  assert [_digest(next(host)['x']) for _ in range(3)] == PINNED[(name, size, scale)]


def test_a_chunk_of_many_steps_sees_the_batches_of_chunks_of_one():
  source = loop.toy_source('ring', DATA_KEY, 16)

  def step(state, batch, key):
    del key
    return state + jnp.sum(batch['x'] ** 2), {'d_nonfinite': 0.0, 'g_nonfinite': 0.0,
                                               'x00': batch['x'][0, 0]}

  chunk = jax.jit(loop.make_chunk(step, source.batch))
  total, out = chunk(jnp.float32(0), source.data, source.plan(5, 4), DATA_KEY)
  draw = jax.jit(lambda t: data.toy_batch('ring', DATA_KEY, t, 16))  # As data.toy_batches.
  singles = [draw(t) for t in range(5, 9)]
  np.testing.assert_allclose(total, sum(float(jnp.sum(b ** 2)) for b in singles), rtol=1e-6)
  assert float(out['last']['x00']) == float(singles[-1][0, 0])  # Bit for bit.
  np.testing.assert_allclose(out['mean']['x00'], np.mean([b[0, 0] for b in singles]), rtol=1e-6)


def test_batch_indices_are_epoch_permutations_and_a_function_of_the_step():
  n, b = 50, 8  # 6 batches per epoch; 2 examples of each epoch sit it out.
  everything = np.asarray(data.batch_indices(DATA_KEY, 0, 30, num_examples=n, batch_size=b))
  assert everything.shape == (30, 8)
  for e in range(5):
    epoch = everything[6 * e:6 * e + 6].ravel()
    assert len(set(epoch.tolist())) == 48 and epoch.min() >= 0 and epoch.max() < n
    want = np.asarray(jax.random.permutation(jax.random.fold_in(DATA_KEY, e), n))[:48]
    np.testing.assert_array_equal(epoch, want)
  assert not np.array_equal(everything[:6], everything[6:12])  # Epochs are reshuffled.
  for start in (0, 5, 6, 17, 29):  # Resuming anywhere: the same rows, O(1).
    np.testing.assert_array_equal(
        data.batch_indices(DATA_KEY, start, 1, num_examples=n, batch_size=b)[0],
        everything[start])
  np.testing.assert_array_equal(
      data.batch_indices(DATA_KEY, 4, 20, num_examples=n, batch_size=b), everything[4:24])


def test_image_batches_are_the_same_on_device_and_host_and_scaled():
  rng = np.random.default_rng(0)
  images = {'image': rng.integers(0, 256, (40, 4, 4, 1), dtype=np.uint8),
            'label': rng.integers(0, 10, (40,), dtype=np.int32)}
  device = loop.image_source(images, DATA_KEY, 8, loader='device')
  host = loop.image_source(images, DATA_KEY, 8, loader='host')
  a = jax.jit(device.batch)(device.data, jax.tree.map(lambda v: v[2], device.plan(0, 7)))
  b = jax.jit(host.batch)(host.data, jax.tree.map(lambda v: v[2], host.plan(0, 7)))
  chex.assert_trees_all_equal(a, b)
  idx = np.asarray(data.batch_indices(DATA_KEY, 2, 1, num_examples=40, batch_size=8))[0]
  np.testing.assert_array_equal(a['x'], images['image'][idx].astype(np.float32) / 127.5 - 1)
  np.testing.assert_array_equal(a['label'], images['label'][idx])
  assert float(a['x'].min()) >= -1.0 and float(a['x'].max()) <= 1.0
  with pytest.raises(ValueError, match="config.data.loader='disk'"):
    loop.image_source(images, DATA_KEY, 8, loader='disk')
  with pytest.raises(ValueError, match='40 examples, fewer than one batch of 64'):
    loop.image_source(images, DATA_KEY, 64)


def test_chunks_end_on_multiples_and_at_the_last_step():
  config = config_lib.default_config()
  config.train.update({'num_steps': 10_000, 'log_every': 100, 'sample_every': 2500,
                       'checkpoint_every': 10**6, 'eval_every': 0})
  assert loop.chunk_length(config) == 100  # An interval longer than the run is left out.
  config.train.update({'log_every': 30, 'sample_every': 45})
  assert loop.chunk_length(config) == 15
  assert loop.chunk_ends(0, 10, 4) == [(0, 4), (4, 4), (8, 2)]
  assert loop.chunk_ends(6, 10, 4) == [(6, 2), (8, 2)]  # A resume between boundaries.
  assert loop.chunk_ends(10, 10, 4) == []


def _flaky_step(bad_at):
  """Adds the batch number to the state, except at step ``bad_at`` (non-finite, skipped)."""
  def step(state, batch, key):
    del key
    bad = batch['t'] == bad_at
    metrics = {'d_nonfinite': bad.astype(jnp.float32), 'g_nonfinite': jnp.float32(0),
               'd_loss': jnp.where(bad, jnp.nan, 1.0), 'g_loss': jnp.float32(2),
               'd_grad_norm': jnp.where(bad, jnp.inf, 0.5), 'g_grad_norm': jnp.float32(0.5)}
    return jnp.where(bad, state, state + batch['t']), metrics
  return step


def test_flags_of_every_step_come_back_and_the_good_head_of_a_chunk_reruns():
  batch_fn = lambda data, t: {'t': t}
  chunk = jax.jit(loop.make_chunk(_flaky_step(3), batch_fn))
  xs = np.arange(6)
  state, out = chunk(jnp.int32(0), {}, xs, None)
  assert int(state) == 0 + 1 + 2 + 4 + 5  # The step skipped its own flagged update.
  np.testing.assert_array_equal(out['watched']['d_nonfinite'], [0, 0, 0, 1, 0, 0])
  assert faults.NonFiniteMonitor('skip').check_chunk(1, out['watched']) == [4]
  with pytest.raises(faults.NonFiniteError, match=r'step 4: the discriminator went '
                                                   r'non-finite \(d_loss=nan, d_grad_norm=inf\)'
                     ) as info:
    faults.NonFiniteMonitor('stop').check_chunk(1, out['watched'])
  assert info.value.step == 4
  # The driver's 'stop': the chunk's first 3 steps again, from its initial state.
  kept, _ = chunk(jnp.int32(0), {}, loop.head(xs, info.value.step - 1), None)
  assert int(kept) == 0 + 1 + 2


@pytest.mark.parametrize('mode', ['pmap', 'shard_map'])
def test_a_chunk_on_two_devices_equals_one_device(mode):
  devices = jax.local_devices()[:2]
  source = loop.toy_source('ring', DATA_KEY, 8)

  def step(state, batch, key, axis_name=None):
    del key
    s = jnp.sum(batch['x'] ** 3)
    if axis_name:
      s = jax.lax.psum(s, axis_name)
    return state + s, {'d_nonfinite': 0.0, 'g_nonfinite': 0.0, 'rows': batch['x'].shape[0]}

  one = jax.jit(loop.make_chunk(step, source.batch))
  want, _ = one(jnp.float32(0), source.data, source.plan(3, 5), DATA_KEY)
  dp = parallel.parallelize_chunk(
      loop.make_chunk(lambda s, b, k: step(s, b, k, parallel.AXIS_NAME), source.batch,
                      axis_name=parallel.AXIS_NAME), mode, devices)
  state, out = dp.step(dp.put_state(jnp.float32(0)), dp.put_batch(source.data),
                       source.plan(3, 5), DATA_KEY)
  np.testing.assert_allclose(dp.get_state(state), want, rtol=1e-5)
  assert int(np.asarray(out['last']['rows']).reshape(-1)[0]) == 4  # Each device: its half.


def test_a_stepwise_chunk_equals_the_scanned_chunk():
  source = loop.toy_source('ring', DATA_KEY, 16)

  def step(state, batch, key):
    del key
    s = state + jnp.sum(batch['x'] ** 2)
    return s, {'d_nonfinite': 0.0 * s, 'g_nonfinite': 0.0 * s, 'd_loss': s, 'g_loss': -s}

  chunk = jax.jit(loop.make_chunk(step, source.batch))
  xs = source.plan(2, 5)
  want, want_out = chunk(jnp.float32(1), source.data, xs, DATA_KEY)
  got, got_out = loop.stepwise(chunk)(jnp.float32(1), source.data, xs, DATA_KEY)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  chex.assert_trees_all_close(got_out, want_out, rtol=1e-6)
  assert got_out['watched']['d_loss'].shape == (5,)


@pytest.mark.parametrize('name,mode,want', [
    ('mnist_mlp', 'auto', True), ('mlp', 'auto', True), ('dcgan', 'auto', False),
    ('dcgan', 'scan', True), ('mnist_mlp', 'stepwise', False)])
def test_auto_chunks_scan_dense_models_and_run_convolutions_stepwise_on_a_cpu(name, mode, want):
  assert jax.default_backend() == 'cpu'
  config = config_lib.default_config()
  config.model.name, config.train.chunk_mode = name, mode
  assert loop.use_scan(config) is want


def test_segments_and_join_outs_by_hand():
  """Runs of equal variants cut a chunk; its parts' outs join as the whole chunk's: the last
  step's metrics, the mean over all steps, every step's flags in order."""
  assert loop.segments(5, 6, lambda t: t // 4) == [(1, 0, 3), (2, 3, 3)]
  assert loop.segments(0, 3, lambda t: None) == [(None, 0, 3)]
  assert loop.segments(3, 4, lambda t: t % 2) == [(1, 0, 1), (0, 1, 1), (1, 2, 1), (0, 3, 1)]
  first = {'last': {'m': 2.0}, 'mean': {'m': 1.5}, 'watched': {'f': np.array([0.0, 1.0])}}
  second = {'last': {'m': 6.0}, 'mean': {'m': 5.0}, 'watched': {'f': np.array([0., 0., 1.])}}
  joined = loop.join_outs([(2, first), (3, second)])
  assert joined['last'] == {'m': 6.0}
  np.testing.assert_allclose(joined['mean']['m'], (2 * 1.5 + 3 * 5.0) / 5)
  np.testing.assert_array_equal(joined['watched']['f'], [0, 1, 0, 0, 1])
  assert loop.join_outs([(2, first)]) is first


def test_a_switched_step_drives_the_run_of_the_plain_step_bit_for_bit(tmp_path, monkeypatch):
  """The toy GAN driven with its step as a :class:`jaxgan.loop.Switched` one of three variants
  (``step % 3``, every variant the same step), scanned in chunks of 5 that the variants cut into
  runs of one step: the same final state, bit for bit, and the same ``metrics.jsonl`` as the
  plain step; each variant's step is built once."""
  from jaxgan import train
  config = config_lib.default_config()
  config.train.update({'num_steps': 10, 'log_every': 5, 'sample_every': 10,
                       'checkpoint_every': 10, 'num_samples': 16, 'eval_every': 0})
  plain = train.train_and_evaluate(config, str(tmp_path / 'plain'))
  built = []
  build = train.build_train_step

  def switched_build(*args, **kwargs):
    step = build(*args, **kwargs)
    return loop.Switched(lambda t: t % 3, lambda v: built.append(v) or step)

  monkeypatch.setattr(train, 'build_train_step', switched_build)
  switched = train.train_and_evaluate(config, str(tmp_path / 'switched'))
  assert int(switched.step) == 10 and sorted(built) == [0, 1, 2]
  chex.assert_trees_all_equal(plain, switched)
  rows = lambda run: [{k: v for k, v in json.loads(line).items() if k != 'steps_per_sec'}
                      for line in open(tmp_path / run / 'metrics.jsonl')]
  assert rows('plain') == rows('switched') and len(rows('plain')) == 2
