"""Progressive growing (arXiv:1710.10196): the fade-in's exact continuity, growable parameters,
the schedule and the drift term.

Parameters are filled from numpy (shapes from ``jax.eval_shape``; no XLA-compiled random
numbers) with non-zero biases; widths are tiny.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxgan import penalties, pggan

TINY = dict(channel_base=64, channel_max=8)
LATENT = 8


def _normal(seed: int, shape) -> np.ndarray:
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _params(module, x, seed: int):
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x))['params']
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: rng.standard_normal(s.shape).astype(s.dtype), shapes)


def _names(params) -> dict:
  return {k: np.shape(v) for k, v in traverse_util.flatten_dict(params, sep='/').items()}


def _models(resolution):
  return (pggan.ProgressiveGenerator(resolution=resolution, **TINY),
          pggan.ProgressiveDiscriminator(resolution=resolution, **TINY))


def _images(seed, resolution, batch=4):
  return _normal(seed, (batch, resolution, resolution, 1))


@pytest.mark.parametrize('resolution', [4, 8, 16])
def test_growing_a_stage_adds_parameters_and_keeps_the_old_ones(resolution):
  z = jnp.zeros((2, LATENT))
  (g_old, d_old), (g_new, d_new) = _models(resolution), _models(2 * resolution)
  shapes = lambda m, x: _names(jax.eval_shape(lambda: m.init(jax.random.key(0), x))['params'])
  for old, new, x_old, x_new, added in (
      (g_old, g_new, z, z, {f'block_{2 * resolution}', f'to_rgb_{2 * resolution}'}),
      (d_old, d_new, jnp.zeros((2, resolution, resolution, 1)),
       jnp.zeros((2, 2 * resolution, 2 * resolution, 1)),
       {f'block_{2 * resolution}', f'from_rgb_{2 * resolution}'})):
    before, after = shapes(old, x_old), shapes(new, x_new)
    assert set(before) < set(after)
    assert all(after[name] == shape for name, shape in before.items())
    assert {name.split('/')[0] for name in set(after) - set(before)} == added


@pytest.mark.parametrize('resolution', [8, 16])
def test_grown_generator_at_alpha_0_is_the_previous_stage_upsampled(resolution):
  (g_old, _), (g_new, _) = _models(resolution // 2), _models(resolution)
  z = _normal(0, (3, LATENT))
  old = _params(g_old, z, seed=1)
  grown = pggan.grow_params(old, _params(g_new, z, seed=2))
  new_at, old_at = jax.jit(lambda p, q, a: (g_new.apply({'params': p}, z, alpha=a),
                                            g_old.apply({'params': q}, z, alpha=1.0)))(
      grown, old, 0.0)
  assert new_at.shape == (3, resolution, resolution, 1)
  np.testing.assert_array_equal(new_at, pggan.upsample_nearest(old_at))


@pytest.mark.parametrize('resolution', [8, 16])
def test_grown_discriminator_at_alpha_0_is_the_previous_stage_on_pooled_images(resolution):
  (_, d_old), (_, d_new) = _models(resolution // 2), _models(resolution)
  x = _images(3, resolution)
  old = _params(d_old, pggan.downsample_average(x), seed=4)
  grown = pggan.grow_params(old, _params(d_new, x, seed=5))
  new_at, old_at = jax.jit(lambda p, q: (
      d_new.apply({'params': p}, x, alpha=0.0),
      d_old.apply({'params': q}, pggan.downsample_average(x), alpha=1.0)))(grown, old)
  assert new_at.shape == (4,)
  np.testing.assert_array_equal(new_at, old_at)
  # The faded reals at alpha = 0 are the pooled image upsampled: the same critic value.
  faded = jax.jit(lambda p: d_new.apply({'params': p}, pggan.fade_real_images(x, 0.0),
                                        alpha=0.0))(grown)
  np.testing.assert_allclose(faded, old_at, rtol=1e-5, atol=1e-5)


def _perturb(params, prefix, seed):
  return {k: (jax.tree.map(lambda a: a + _normal(seed, np.shape(a)), v) if k == prefix else v)
          for k, v in params.items()}


def test_alpha_1_uses_only_the_new_blocks_and_the_fade_is_linear():
  g, d = _models(16)
  z, x = _normal(6, (4, LATENT)), _images(7, 16)
  g_params, d_params = _params(g, z, seed=8), _params(d, x, seed=9)
  g_moved, d_moved = _perturb(g_params, 'to_rgb_8', 10), _perturb(d_params, 'from_rgb_8', 11)

  @jax.jit
  def run(g_params, d_params, alpha):
    return g.apply({'params': g_params}, z, alpha=alpha), d.apply({'params': d_params}, x,
                                                                  alpha=alpha)
  g_1, d_1 = run(g_params, d_params, 1.0)
  np.testing.assert_array_equal(run(g_moved, d_moved, 1.0)[0], g_1)
  np.testing.assert_array_equal(run(g_moved, d_moved, 1.0)[1], d_1)
  g_half, d_half = run(g_params, d_params, 0.5)
  g_half_moved, d_half_moved = run(g_moved, d_moved, 0.5)
  assert np.max(np.abs(g_half_moved - g_half)) > 1e-3
  assert np.max(np.abs(d_half_moved - d_half)) > 1e-6
  # G's image is linear in alpha: (1 - a) G(0) + a G(1).
  g_0, _ = run(g_params, d_params, 0.0)
  g_quarter, _ = run(g_params, d_params, 0.25)
  np.testing.assert_allclose(g_quarter, 0.75 * g_0 + 0.25 * g_1, rtol=1e-5, atol=1e-5)


def test_grow_params_keeps_old_arrays_and_refuses_mismatches():
  old = {'a': {'kernel': np.ones((2, 3))}, 'b': np.zeros(4)}
  new = {'a': {'kernel': np.zeros((2, 3))}, 'b': np.ones(4), 'c': np.full(2, 7.0)}
  grown = pggan.grow_params(old, new)
  np.testing.assert_array_equal(grown['a']['kernel'], 1.0)
  np.testing.assert_array_equal(grown['b'], 0.0)
  np.testing.assert_array_equal(grown['c'], 7.0)
  with pytest.raises(ValueError, match='a/kernel has shape'):
    pggan.grow_params(old, {**new, 'a': {'kernel': np.zeros((3, 3))}})
  with pytest.raises(ValueError, match='b of the old stage is not in the new one'):
    pggan.grow_params(old, {'a': new['a']})


def test_pixel_norm_after_every_generator_convolution():
  """Each of G's hidden feature vectors has unit mean square (Section 4.2)."""
  g, _ = _models(8)
  z = _normal(12, (2, LATENT))
  params = _params(g, z, seed=13)
  _, inter = jax.jit(lambda p: g.apply({'params': p}, z, capture_intermediates=True))(params)
  features = [v for path, v in traverse_util.flatten_dict(inter['intermediates']).items()
              if path[0].startswith('block_') and len(path) == 2]
  assert len(features) == 2  # block_4 and block_8 outputs
  for (h,) in features:
    np.testing.assert_allclose(np.mean(np.square(h), axis=-1), 1.0, rtol=1e-4)


def test_schedule():
  kw = dict(fade_steps=10, stable_steps=20, num_stages=4)
  # Stage 0: steps 0..19; stage 1: fade 20..29, stable 30..49; stage 2 from 50; stage 3 from 80.
  expect = {0: (0, 1.0), 19: (0, 1.0), 20: (1, 0.0), 25: (1, 0.5), 29: (1, 0.9), 30: (1, 1.0),
            49: (1, 1.0), 50: (2, 0.0), 53: (2, 0.3), 80: (3, 0.0), 90: (3, 1.0),
            10_000: (3, 1.0)}
  alpha = jax.jit(lambda s: pggan.alpha_at(s, **kw))
  for step, (stage, a) in expect.items():
    assert pggan.stage_at(step, **kw) == stage, step
    assert float(pggan.alpha_at(step, **kw)) == pytest.approx(a, abs=1e-6), step
    assert float(alpha(jnp.int32(step))) == pytest.approx(a, abs=1e-6), step
  assert float(pggan.alpha_at(5, fade_steps=3, stable_steps=2, num_stages=1)) == 1.0


def test_drift_term_and_wgan_gp_closed_forms():
  """For a linear critic D(x) = x . w: GP = (|w| - 1)^2 and the drift 1e-3 mean((x . w)^2)."""
  w = np.array([3.0, 4.0], np.float32)
  d_fn = lambda x: x @ w
  real, fake = _normal(14, (16, 2)), _normal(15, (16, 2))
  drift = 1e-3 * np.mean((real @ w) ** 2)
  np.testing.assert_allclose(pggan.drift_penalty(real @ w), drift, rtol=1e-6)
  np.testing.assert_allclose(pggan.drift_term()(d_fn, real, fake, None, 0), drift, rtol=1e-6)
  gp, drift_part = (term(d_fn, real, fake, jax.random.key(0), 0)
                    for term in pggan.discriminator_terms())
  np.testing.assert_allclose(gp, 10 * (5 - 1) ** 2, rtol=1e-5)
  np.testing.assert_allclose(drift_part, drift, rtol=1e-6)
  np.testing.assert_allclose(
      gp, 10 * penalties.gradient_penalty(d_fn, real, fake, jax.random.key(0)), rtol=1e-6)


def test_pad_and_downsample():
  x = _normal(16, (2, 28, 28, 1))
  padded = pggan.pad_to(x, 32)
  assert padded.shape == (2, 32, 32, 1)
  np.testing.assert_array_equal(padded[:, 2:30, 2:30], x)
  assert np.all(padded[:, :2] == -1) and np.all(padded[:, :, 30:] == -1)
  y = _normal(17, (1, 16, 16, 1))
  np.testing.assert_allclose(pggan.downsample_to(y, 4)[0, 1, 0, 0], np.mean(y[0, 4:8, :4]),
                             rtol=1e-5)
  np.testing.assert_allclose(pggan.downsample_to(y, 8), pggan.downsample_average(y), rtol=1e-6)
  np.testing.assert_array_equal(pggan.downsample_to(y, 16), y)


@pytest.mark.parametrize('make, match', [
    (lambda: pggan.ProgressiveGenerator(resolution=12), 'power of two >= 4'),
    (lambda: pggan.ProgressiveDiscriminator(resolution=2), 'power of two >= 4'),
    (lambda: pggan.ProgressiveGenerator(resolution=8, **TINY).apply(
        {}, jnp.zeros((1, LATENT)), alpha=1.5), r'alpha must be in \[0, 1\]'),
    (lambda: pggan.fade_real_images(jnp.zeros((1, 4, 4, 1)), -0.1), r'alpha must be in \[0, 1\]'),
    (lambda: pggan.stage_at(3, fade_steps=0, stable_steps=1, num_stages=2), 'fade_steps >= 1'),
])
def test_bad_input_raises_one_line_value_errors(make, match):
  with pytest.raises(ValueError, match=match) as error:
    make()
  assert '\n' not in str(error.value)


def test_channels_follow_the_paper_rule():
  assert [pggan.channels_at(r, channel_base=8192, channel_max=512) for r in (4, 16, 32, 1024)] \
      == [512, 512, 256, 8]
  assert math.isclose(pggan.DRIFT_EPSILON, 1e-3)
