"""Penalties against closed forms.

For a linear critic D(x) = w . x (x flattened per example) the input gradient is w at every point,
so gradient_penalty = (||w|| - target)^2 and r1_penalty = ||w||^2 exactly, whatever the data and
the interpolation coefficients. For D(x) = ||x||^2 / 2 the gradient is x itself, which exposes
the interpolates: their norms give the moments of eps, which must be U[0, 1] per example.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
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


# Rows of norm 2: (2/3) (1, 2, 2), and 32 entries of 2 / sqrt(32).
NORM_TWO_ROWS = [
    pytest.param(jnp.array([2.0, 4.0, 4.0]) / 3, id='vectors'),
    pytest.param(jnp.full((4, 4, 2), 2 / math.sqrt(32)), id='images'),
]


@pytest.mark.parametrize('row', NORM_TWO_ROWS)
def test_gradient_penalty_eps_is_uniform_and_per_example(row):
  # real = a with ||a|| = 2 in every row, fake = 0, D = ||x||^2 / 2: grad D(x_hat) = x_hat =
  # eps_i a, of norm 2 eps_i. With eps_i ~ U[0, 1] drawn once per example:
  #   target 0: GP = mean 4 eps_i^2       -> E[4 U^2] = 4/3,
  #   target 1: GP = mean (2 eps_i - 1)^2 -> E[(2U - 1)^2] = 1/3.
  # Over n = 4096 rows the standard errors are sqrt(Var 4U^2 / n) = sqrt(64/45) / 64 = 0.019 and
  # sqrt(Var (2U-1)^2 / n) = sqrt(4/45) / 64 = 0.0047; the tolerances are over 5 of them. One eps
  # per element gives norms near 2 sqrt(E U^2) = 1.155 in every row (target 1: GP ~ 0.03), and
  # one eps for the whole batch cannot meet both values (4 e^2 = 4/3 needs e = 0.577, and then
  # (2e - 1)^2 = 0.024).
  n = 4096
  real = jnp.broadcast_to(row, (n, *row.shape))
  fake = jnp.zeros_like(real)
  key = jax.random.key(5)
  gp0 = penalties.gradient_penalty(quadratic_d, real, fake, key, target=0.0)
  gp1 = penalties.gradient_penalty(quadratic_d, real, fake, key, target=1.0)
  chex.assert_trees_all_close(gp0, 4 / 3, atol=0.1)
  chex.assert_trees_all_close(gp1, 1 / 3, atol=0.025)


def test_penalties_under_jit_keep_their_closed_forms():
  # The linear critic of the 'vectors' case: ||w|| = 3, so GP = (3 - 1)^2 = 4 and R1 = 9.
  real, fake = random_batches((4, 3))
  d_fn = linear_d(jnp.array([1.0, 2.0, 2.0]))
  gp = jax.jit(lambda r, f, k: penalties.gradient_penalty(d_fn, r, f, k))(
      real, fake, jax.random.key(6))
  r1 = jax.jit(lambda r: penalties.r1_penalty(d_fn, r))(real)
  chex.assert_trees_all_close(gp, 4.0, rtol=1e-5)
  chex.assert_trees_all_close(r1, 9.0, rtol=1e-6)


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
