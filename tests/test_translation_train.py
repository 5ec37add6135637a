"""pix2pix and CycleGAN on the one driver: objectives against hand-computed values, exact
resume, and one-line errors for bad configs (tiny models, ``tfds.testing.mock_data``)."""

import json
import os
import runpy

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan import cyclegan, game, losses, pix2pix, translation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(name: str, **train):
  config = runpy.run_path(os.path.join(ROOT, 'configs', f'{name}.py'))['get_config']()
  m = config.model
  m.features, m.d_features = 4, 4
  if config.trainer == 'cyclegan':
    m.num_blocks, m.pool_size = 1, 3
    config.task.split = 32
  config.train.update({'batch_size': 4, 'num_steps': 4, 'log_every': 1, 'sample_every': 2,
                       'checkpoint_every': 2, 'num_samples': 2, **train})
  return config


class Scale(nn.Module):
  """``x -> w x`` with one parameter ``w`` (init 1): a generator whose outputs are known."""

  @nn.compact
  def __call__(self, x, *, train):
    return self.param('w', nn.initializers.ones, ()) * x


class Mean(nn.Module):
  """``x -> v mean(x)`` per image, ``(B, 1, 1, 1)``: a discriminator whose logits are known."""

  @nn.compact
  def __call__(self, x, *, train):
    return self.param('v', nn.initializers.ones, ()) * jnp.mean(x, axis=(1, 2, 3), keepdims=True)


def _state(g_params, d_params, d_model_state=None):
  return game.GANState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
                       g_opt_state={}, d_opt_state={}, g_batch_stats={},
                       d_batch_stats=d_model_state or {})


def test_cyclegan_generator_objective_by_hand():
  a = jnp.full((2, 4, 4, 1), 0.5)
  b = jnp.full((2, 4, 4, 1), -0.25)
  g = {'a_to_b': {'w': jnp.asarray(2.0)}, 'b_to_a': {'w': jnp.asarray(0.5)}}  # F = G^-1.
  d = {'a': {'v': jnp.asarray(1.0)}, 'b': {'v': jnp.asarray(3.0)}}
  objective = cyclegan.generator_objective(Scale(), Mean(), cycle_weight=10.0,
                                           identity_weight=0.5, gan_weight=1.0)
  loss, (_, metrics) = objective(g, _state(g, d), {'a': a, 'b': b}, key=None, shared_key=None)
  # G(a) = 1, D_B = 3 -> (3 - 1)^2 = 4; F(b) = -0.125, D_A = -0.125 -> (1.125)^2.
  gan = 4.0 + 1.125**2
  identity = 0.25 + 0.25  # |G(b) - b| = |-0.5 + 0.25|, |F(a) - a| = |0.25 - 0.5|.
  np.testing.assert_allclose(metrics['g_gan'], gan, rtol=1e-6)
  np.testing.assert_allclose(metrics['cycle'], 0.0, atol=1e-7)  # F(G(a)) = a exactly.
  np.testing.assert_allclose(metrics['identity'], identity, rtol=1e-6)
  np.testing.assert_allclose(loss, gan + 10 * 0.5 * identity, rtol=1e-6)
  # Cycle broken: G = 2x, F = 1x -> |F(G(a)) - a| = 0.5, |G(F(b)) - b| = 0.25.
  g['b_to_a']['w'] = jnp.asarray(1.0)
  _, (_, metrics) = objective(g, _state(g, d), {'a': a, 'b': b}, key=None, shared_key=None)
  np.testing.assert_allclose(metrics['cycle'], 0.75, rtol=1e-6)
  np.testing.assert_allclose(losses.cycle_consistency_loss(a, 2 * a), 0.5, rtol=1e-6)


def test_cyclegan_discriminator_objective_by_hand_and_pool_in_model_state():
  a = jnp.full((2, 4, 4, 1), 0.5)
  b = jnp.full((2, 4, 4, 1), -0.25)
  g = {'a_to_b': {'w': jnp.asarray(2.0)}, 'b_to_a': {'w': jnp.asarray(0.5)}}
  d = {'a': {'v': jnp.asarray(1.0)}, 'b': {'v': jnp.asarray(3.0)}}
  pools = {k: cyclegan.pool_init(4, (4, 4, 1)) for k in ('a', 'b')}
  objective = cyclegan.discriminator_objective(Scale(), Mean())
  loss, (new_pools, metrics) = objective(d, _state(g, d, pools), {'a': a, 'b': b},
                                         key=jax.random.PRNGKey(0), shared_key=None)
  # Filling pools return the fakes themselves: D_A: real 0.5, fake F(b) = -0.125;
  # D_B: real 3 * -0.25 = -0.75, fake 3 * G(a) = 3.
  want = 0.5 * ((0.5 - 1)**2 + 0.125**2) + 0.5 * ((-0.75 - 1)**2 + 3.0**2)
  np.testing.assert_allclose(loss, want, rtol=1e-6)
  np.testing.assert_allclose(metrics['d_fake'], (-0.125 + 3.0) / 2, rtol=1e-6)
  assert int(new_pools['b']['count']) == 2
  np.testing.assert_allclose(new_pools['b']['images'][:2], 2 * a)
  np.testing.assert_allclose(new_pools['a']['images'][:2], 0.5 * b)


def test_pix2pix_objectives_by_hand():
  x = jnp.full((2, 4, 4, 1), 0.5)
  y = jnp.full((2, 4, 4, 1), 0.25)
  g, d = {'w': jnp.asarray(2.0)}, {'v': jnp.asarray(2.0)}
  state = _state(g, d)
  batch = {'x': x, 'y': y}
  objective = pix2pix.generator_objective(Scale(), Mean(), l1_weight=100.0, gan_weight=1.0)
  loss, (_, metrics) = objective(g, state, batch, key=jax.random.PRNGKey(0), shared_key=None)
  # G(x) = 1; D sees mean(concat(x, G(x))) = 0.75 times 2 = 1.5 -> softplus(-1.5).
  np.testing.assert_allclose(metrics['l1'], 0.75, rtol=1e-6)
  np.testing.assert_allclose(metrics['g_gan'], np.log1p(np.exp(-1.5)), rtol=1e-6)
  np.testing.assert_allclose(loss, 75.0 + np.log1p(np.exp(-1.5)), rtol=1e-6)
  d_loss, (_, d_metrics) = pix2pix.discriminator_objective(Scale(), Mean())(
      d, state, batch, key=None, shared_key=jax.random.PRNGKey(0))
  # Real pair mean 0.375 -> logit 0.75; fake pair logit 1.5; D's loss halved.
  want = 0.5 * (np.log1p(np.exp(-0.75)) + np.log1p(np.exp(1.5)))
  np.testing.assert_allclose(d_loss, want, rtol=1e-6)
  np.testing.assert_allclose(d_metrics['d_real'], 1 / (1 + np.exp(-0.75)), rtol=1e-6)
  # L1 alone: D's parameters do not enter G's loss.
  l1_only = pix2pix.generator_objective(Scale(), Mean(), l1_weight=100.0, gan_weight=0.0)
  grad = jax.grad(lambda dp: l1_only(g, _state(g, dp), batch, key=jax.random.PRNGKey(0),
                                     shared_key=None)[0])(d)
  assert float(grad['v']) == 0.0


# pix2pix's run is slow-marked (60 s on 2 cores): its resume is the driver's, tested fast for
# every config in tests/test_end_to_end.py; CycleGAN's keeps its image pools in the default run.
@pytest.mark.parametrize('name', [pytest.param('pix2pix_mnist_halves', marks=pytest.mark.slow),
                                  'cyclegan_mnist_thick'])
def test_trains_from_config_and_resumes_exactly(name, tmp_path):
  system = {'pix2pix': pix2pix, 'cyclegan': cyclegan}[_config(name).trainer]
  with tfds.testing.mock_data(num_examples=64):
    straight = system.train_and_evaluate(_config(name), str(tmp_path / 'a'))
    system.train_and_evaluate(_config(name, num_steps=2), str(tmp_path / 'b'))
    resumed = system.train_and_evaluate(_config(name), str(tmp_path / 'b'))
  assert int(straight.step) == 4
  chex.assert_trees_all_equal(straight, resumed)
  with open(tmp_path / 'b' / 'metrics.jsonl') as f:
    rows = [json.loads(line) for line in f]
  assert [r['step'] for r in rows] == [1, 2, 3, 4]
  assert all(np.isfinite([r['d_loss'], r['g_loss']]).all() for r in rows)
  assert os.path.exists(tmp_path / 'b' / 'samples' / 'step_4.png')
  if name.startswith('cyclegan'):  # The pools filled from the four steps' fakes.
    assert int(resumed.d_batch_stats['a']['count']) == 3


@pytest.mark.parametrize('change, message', [
    (lambda c: c.loss.update(cycle_weight=-1.0), r'config.loss.cycle_weight=-1.0 must be >= 0'),
    (lambda c: c.model.update(pool_size=-1), r'config.model.pool_size=-1 must be >= 0'),
    (lambda c: c.data.update(name_b='cifar10'), r'different image shapes.*\(32, 32, 3\)'),
    (lambda c: c.task.update(transform='blur'), r"unknown transform 'blur'"),
])
def test_bad_cyclegan_config_fails_in_one_line(change, message, tmp_path):
  config = _config('cyclegan_mnist_thick')
  change(config)
  with pytest.raises(ValueError, match=message) as e:
    cyclegan.train_and_evaluate(config, str(tmp_path))
  assert '\n' not in str(e.value)
  assert not os.path.exists(tmp_path / 'checkpoints')


def test_pix2pix_refuses_unpaired_data_and_negative_weights():
  config = _config('pix2pix_fashion_edges')
  config.data.name_b = 'mnist'
  with pytest.raises(ValueError, match=r"name_b='mnist': pix2pix trains on pairs"):
    translation.validate(config)
  config = _config('pix2pix_fashion_edges')
  config.loss.l1_weight = -100.0
  with pytest.raises(ValueError, match=r'config.loss.l1_weight=-100.0 must be >= 0'):
    translation.validate(config)


def test_unpaired_source_shuffles_each_domain_on_its_own():
  arrays = {'a': np.arange(8, dtype=np.uint8).reshape(8, 1, 1, 1),
            'b': (100 + np.arange(12, dtype=np.uint8)).reshape(12, 1, 1, 1)}
  source = translation.source(arrays, jax.random.PRNGKey(0), 4, paired=False)
  plan = source.plan(0, 3)
  batch = jax.jit(source.batch)(source.data, jax.tree.map(lambda p: p[1], plan))
  # Rows come from each domain only, and an epoch of 'b' (3 batches) holds 12 distinct images.
  assert set(np.asarray(jnp.round((batch['a'] + 1) * 127.5)).ravel()) <= set(range(8))
  rows_b = np.asarray(plan['b']).ravel()
  assert sorted(rows_b) == list(range(12))
  paired = translation.source({'x': arrays['a'], 'y': arrays['a']}, jax.random.PRNGKey(0), 4,
                              paired=True).plan(0, 2)
  np.testing.assert_array_equal(paired['x'], paired['y'])
