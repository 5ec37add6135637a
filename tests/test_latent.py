"""Interpolation and latent arithmetic against closed forms."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import latent


def _angle(a, b):
  return jnp.arccos(jnp.clip(jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b)), -1, 1))


class TestSlerp:

  def test_endpoints(self):
    z0, z1 = jax.random.normal(jax.random.PRNGKey(0), (2, 16))
    chex.assert_trees_all_close(latent.slerp(z0, z1, 0.0), z0, atol=1e-5)
    chex.assert_trees_all_close(latent.slerp(z0, z1, 1.0), z1, atol=1e-5)

  def test_quarter_circle_closed_form(self):
    # e1 -> e2 (Omega = pi/2): slerp(t) = (cos(t pi/2), sin(t pi/2)).
    t = jnp.array([0.0, 1 / 3, 0.5, 1.0])
    got = latent.slerp(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), t)
    expected = np.stack([np.cos(t * np.pi / 2), np.sin(t * np.pi / 2)], axis=-1)
    chex.assert_trees_all_close(got, expected, atol=1e-6)

  def test_equal_norms_stay_on_the_sphere_at_constant_angular_speed(self):
    k0, k1 = jax.random.split(jax.random.PRNGKey(1))
    z0 = jax.random.normal(k0, (32,))
    z1 = jax.random.normal(k1, (32,))
    z1 = z1 * jnp.linalg.norm(z0) / jnp.linalg.norm(z1)
    t = jnp.linspace(0.0, 1.0, 11)
    path = latent.slerp(z0, z1, t)
    chex.assert_trees_all_close(jnp.linalg.norm(path, axis=-1),
                                jnp.full((11,), jnp.linalg.norm(z0)), rtol=1e-5)
    omega = _angle(z0, z1)
    angles = jax.vmap(lambda z: _angle(z0, z))(path)
    chex.assert_trees_all_close(angles, t * omega, atol=1e-3)

  def test_parallel_latents_fall_back_to_linear(self):
    z0 = jnp.array([1.0, 2.0, 2.0])
    got = latent.slerp(z0, 3 * z0, jnp.array([0.0, 0.5, 1.0]))
    chex.assert_trees_all_close(got, jnp.stack([z0, 2 * z0, 3 * z0]), atol=1e-5)
    assert np.all(np.isfinite(got))

  def test_jit_closed_forms(self):
    # Compiled, both branches of the jnp.where: the quarter circle (cos(t pi/2), sin(t pi/2))
    # and, for parallel latents, the linear fallback z0 + t (3 z0 - z0).
    slerp = jax.jit(latent.slerp)
    t = jnp.array([0.0, 1 / 3, 0.5, 1.0])
    expected = np.stack([np.cos(t * np.pi / 2), np.sin(t * np.pi / 2)], axis=-1)
    chex.assert_trees_all_close(slerp(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), t), expected,
                                atol=1e-6)
    z0 = jnp.array([1.0, 2.0, 2.0])
    chex.assert_trees_all_close(slerp(z0, 3 * z0, jnp.array([0.0, 0.5, 1.0])),
                                jnp.stack([z0, 2 * z0, 3 * z0]), atol=1e-5)


def test_lerp_hand_values():
  got = latent.lerp(jnp.array([0.0, 2.0]), jnp.array([4.0, -2.0]), jnp.array([0.0, 0.25, 1.0]))
  chex.assert_trees_all_close(got, jnp.array([[0.0, 2.0], [1.0, 1.0], [4.0, -2.0]]))


def test_interpolate_shape_and_ends():
  z0, z1 = jax.random.normal(jax.random.PRNGKey(3), (2, 10))
  for method in latent.METHODS:
    path = latent.interpolate(z0, z1, 7, method=method)
    chex.assert_shape(path, (7, 10))
    chex.assert_trees_all_close(path[0], z0, atol=1e-5)
    chex.assert_trees_all_close(path[-1], z1, atol=1e-5)
  with pytest.raises(ValueError, match='unknown interpolation method'):
    latent.interpolate(z0, z1, 3, method='cubic')
  with pytest.raises(ValueError, match='num must be >= 2'):
    latent.interpolate(z0, z1, 1)


class TestGrid:

  def test_linear_grid_is_bilinear(self):
    corners = jax.random.normal(jax.random.PRNGKey(4), (4, 6))
    grid = latent.interpolation_grid(corners, rows=3, columns=5, method='linear')
    chex.assert_shape(grid, (3, 5, 6))
    for i, u in enumerate([0.0, 0.5, 1.0]):
      for j, v in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):
        expected = ((1 - u) * (1 - v) * corners[0] + (1 - u) * v * corners[1]
                    + u * (1 - v) * corners[2] + u * v * corners[3])
        chex.assert_trees_all_close(grid[i, j], expected, atol=1e-5)

  def test_slerp_grid_corners(self):
    corners = jax.random.normal(jax.random.PRNGKey(5), (4, 6))
    grid = latent.interpolation_grid(corners, rows=4, columns=4)
    chex.assert_trees_all_close(
        jnp.stack([grid[0, 0], grid[0, -1], grid[-1, 0], grid[-1, -1]]), corners, atol=1e-5)

  def test_bad_corners_raise(self):
    with pytest.raises(ValueError, match=r'shape \(4, D\)'):
      latent.interpolation_grid(jnp.zeros((3, 2)), rows=2, columns=2)


def test_latent_arithmetic_hand_values():
  a = jnp.array([[1.0, 1.0], [3.0, 1.0]])  # mean (2, 1)
  b = jnp.array([[0.0, 1.0]])  # mean (0, 1)
  c = jnp.array([[0.0, 5.0], [0.0, 3.0], [3.0, 1.0]])  # mean (1, 3)
  chex.assert_trees_all_close(latent.latent_arithmetic(a, b, c), jnp.array([3.0, 3.0]))
  with pytest.raises(ValueError, match='latent dimensions differ'):
    latent.latent_arithmetic(a, b, jnp.zeros((1, 3)))
