"""Penalties against closed forms.

For a linear critic D(x) = w . x (x flattened per example) the input gradient is w at every point,
so gradient_penalty = (||w|| - target)^2 and r1_penalty = ||w||^2 exactly, whatever the data and
the interpolation coefficients. For D(x) = ||x||^2 / 2 the gradient is x itself, which exposes
the interpolates and checks that eps is drawn per example.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxgan import penalties


@pytest.fixture
def x64():
  """Float64 for finite differences, scoped to one test so it never leaks into other files."""
  with jax.enable_x64(True):
    yield


def linear_d(w, *, keepdims=False):
  """D(x) = w . flatten(x), with outputs of shape (B,) or, with keepdims, (B, 1)."""

  def d_fn(x):
    out = x.reshape(x.shape[0], -1) @ w
    return out[:, None] if keepdims else out

  return d_fn


def quadratic_d(x):
  """D(x) = ||x||^2 / 2 per example, so grad_x D(x) = x."""
  return 0.5 * jnp.sum(jnp.square(x.reshape(x.shape[0], -1)), axis=-1)


def random_batches(shape, seed=0):
  real_key, fake_key = jax.random.split(jax.random.key(seed))
  return jax.random.normal(real_key, shape), jax.random.normal(fake_key, shape)


# (data shape, w, ||w||^2):  [1, 2, 2] has norm 3;  32 entries of 0.5 have squared norm 32/4 = 8.
LINEAR_CASES = [
    pytest.param((5, 3), jnp.array([1.0, 2.0, 2.0]), 9.0, id='vectors'),
    pytest.param((5, 4, 4, 2), jnp.full((32,), 0.5), 8.0, id='images'),
]


@pytest.mark.parametrize('keepdims', [False, True], ids=['out_B', 'out_B1'])
@pytest.mark.parametrize('shape, w, w_sq_norm', LINEAR_CASES)
@pytest.mark.parametrize('target', [1.0, 0.0, 2.5])
def test_gradient_penalty_linear_closed_form(shape, w, w_sq_norm, target, keepdims):
  # vectors: (3 - 1)^2 = 4, (3 - 0)^2 = 9, (3 - 2.5)^2 = 0.25
  # images:  (sqrt 8 - 1)^2 = 9 - 4 sqrt 2 = 3.3431458, 8, (sqrt 8 - 2.5)^2 = 0.1078644
  real, fake = random_batches(shape)
  gp = penalties.gradient_penalty(
      linear_d(w, keepdims=keepdims), real, fake, jax.random.key(2), target=target
  )
  chex.assert_shape(gp, ())
  chex.assert_trees_all_close(gp, (math.sqrt(w_sq_norm) - target) ** 2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('keepdims', [False, True], ids=['out_B', 'out_B1'])
@pytest.mark.parametrize('shape, w, w_sq_norm', LINEAR_CASES)
def test_r1_penalty_linear_closed_form(shape, w, w_sq_norm, keepdims):
  real, _ = random_batches(shape)
  r1 = penalties.r1_penalty(linear_d(w, keepdims=keepdims), real)
  chex.assert_shape(r1, ())
  chex.assert_trees_all_close(r1, w_sq_norm, rtol=1e-6)


def test_r1_penalty_quadratic_closed_form():
  # grad = x: mean(||(1, 2, 2)||^2, ||(0, 3, 4)||^2) = mean(9, 25) = 17
  real = jnp.array([[1.0, 2.0, 2.0], [0.0, 3.0, 4.0]])
  chex.assert_trees_all_close(penalties.r1_penalty(quadratic_d, real), 17.0, rtol=1e-6)


def test_gradient_penalty_quadratic_with_real_equal_to_fake():
  # x_hat = x whatever eps is, and grad = x: mean((3 - 1)^2, (5 - 1)^2) = mean(4, 16) = 10
  real = jnp.array([[1.0, 2.0, 2.0], [0.0, 3.0, 4.0]])
  gp = penalties.gradient_penalty(quadratic_d, real, real, jax.random.key(3))
  chex.assert_trees_all_close(gp, 10.0, rtol=1e-6)


@pytest.mark.parametrize('shape', [(6, 3), (6, 4, 4, 2)])
def test_gradient_penalty_draws_one_eps_per_example(shape):
  real, fake = random_batches(shape, seed=4)
  key = jax.random.key(5)
  gp = penalties.gradient_penalty(quadratic_d, real, fake, key)
  # The documented draw: one eps per example, broadcast over the non-batch axes.
  eps = jax.random.uniform(key, (shape[0],) + (1,) * (len(shape) - 1))
  x_hat = eps * real + (1 - eps) * fake  # = grad D(x_hat) for the quadratic D
  norms = jnp.sqrt(jnp.sum(jnp.square(x_hat.reshape(shape[0], -1)), axis=-1))
  chex.assert_trees_all_close(gp, jnp.mean((norms - 1.0) ** 2), rtol=1e-5)
  # A single eps shared by the batch gives a different value.
  shared_hat = eps[0] * real + (1 - eps[0]) * fake
  shared_norms = jnp.sqrt(jnp.sum(jnp.square(shared_hat.reshape(shape[0], -1)), axis=-1))
  assert not np.isclose(gp, jnp.mean((shared_norms - 1.0) ** 2), rtol=1e-3)


def test_gradient_penalty_jit_matches_eager():
  real, fake = random_batches((4, 3))
  key = jax.random.key(6)
  eager = penalties.gradient_penalty(quadratic_d, real, fake, key)
  gp_fn = jax.jit(lambda r, f, k: penalties.gradient_penalty(quadratic_d, r, f, k))
  jitted = gp_fn(real, fake, key)
  chex.assert_trees_all_close(jitted, eager, rtol=1e-6)


def test_gradient_penalty_gradient_finite_at_zero_input_gradient():
  # w = 0: D's input gradient vanishes; GP = (sqrt(1e-12) - 1)^2 ~= 1, and its gradient with
  # respect to w is 0 rather than NaN thanks to the epsilon inside the square root.
  real, fake = random_batches((4, 3))

  def gp_of_w(w):
    return penalties.gradient_penalty(linear_d(w), real, fake, jax.random.key(7))

  gp, grad = jax.value_and_grad(gp_of_w)(jnp.zeros(3))
  chex.assert_trees_all_close(gp, 1.0, atol=1e-5)
  chex.assert_tree_all_finite(grad)
  chex.assert_trees_all_close(grad, jnp.zeros(3), atol=1e-6)


def mlp_d(params):
  """A tiny tanh critic (B, 3) -> (B,), smooth so third derivatives exist."""
  return lambda x: jnp.tanh(x @ params['w1'] + params['b1']) @ params['w2']


def test_penalty_gradients_wrt_d_params_match_finite_differences(x64):
  keys = jax.random.split(jax.random.key(8), 6)
  params = {
      'w1': jax.random.normal(keys[0], (3, 4)),
      'b1': jax.random.normal(keys[1], (4,)),
      'w2': jax.random.normal(keys[2], (4,)),
  }
  real = jax.random.normal(keys[3], (5, 3))
  fake = jax.random.normal(keys[4], (5, 3))
  check_grads(
      lambda p: penalties.gradient_penalty(mlp_d(p), real, fake, keys[5]),
      (params,),
      order=2,
      modes=['rev'],
  )
  check_grads(lambda p: penalties.r1_penalty(mlp_d(p), real), (params,), order=2, modes=['rev'])


def test_gradient_penalty_shape_mismatch():
  with pytest.raises(ValueError, match=r'real\.shape=\(2, 3\).*fake\.shape=\(3, 3\)'):
    penalties.gradient_penalty(quadratic_d, jnp.zeros((2, 3)), jnp.zeros((3, 3)), jax.random.key(0))


def test_clip_weights_closed_form():
  params = {
      'dense': {'kernel': jnp.array([[-0.5, 0.005], [0.02, -0.01]]), 'bias': jnp.array([0.003])},
      'out': jnp.array([1.0, -1e-4]),
  }
  expected = {
      'dense': {'kernel': jnp.array([[-0.01, 0.005], [0.01, -0.01]]), 'bias': jnp.array([0.003])},
      'out': jnp.array([0.01, -1e-4]),
  }
  clipped = penalties.clip_weights(params, 0.01)
  chex.assert_trees_all_equal_structs(clipped, params)
  chex.assert_trees_all_close(clipped, expected)
  # Pure: the input is untouched.
  chex.assert_trees_all_close(params['out'], jnp.array([1.0, -1e-4]))


@pytest.mark.parametrize('clip_value', [0.0, -0.01])
def test_clip_weights_rejects_non_positive_bound(clip_value):
  with pytest.raises(ValueError, match=rf'clip_value={clip_value}'):
    penalties.clip_weights({'w': jnp.ones(2)}, clip_value)
