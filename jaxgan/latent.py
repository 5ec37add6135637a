"""Latent-space tools: interpolation ("walking on the manifold") and latent arithmetic.

Seed 004's sanity checks for a trained generator (after DCGAN, arXiv:1511.06434, Sections 6.1 and
6.3): samples along a path between two latents should change smoothly (the model has learned a
manifold and does not memorize), and averaged latents support arithmetic such as
"man with glasses - man + woman = woman with glasses".

All functions are pure and work on latents of shape ``(D,)`` (or stacks of them).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

METHODS = ('linear', 'slerp')


def lerp(z0: jax.Array, z1: jax.Array, t) -> jax.Array:
  """Linear interpolation ``(1 - t) z0 + t z1`` (seed 004's ``m z1 + (1 - m) z2``).

  Args:
    z0, z1: latents of shape ``(D,)``.
    t: a scalar or an array of shape ``(T,)``.

  Returns:
    ``(D,)`` for scalar ``t``, else ``(T, D)``.
  """
  t = jnp.asarray(t, jnp.float32)[..., None]
  return (1 - t) * z0 + t * z1


def slerp(z0: jax.Array, z1: jax.Array, t, *, eps: float = 1e-6) -> jax.Array:
  """Spherical linear interpolation (Shoemake 1985; for GAN latents White 2016, arXiv:1609.04468).

  ``slerp(z0, z1; t) = sin((1 - t) Omega) / sin(Omega) z0 + sin(t Omega) / sin(Omega) z1`` with
  ``Omega`` the angle between ``z0`` and ``z1``. It returns ``z0`` at ``t = 0`` and ``z1`` at
  ``t = 1``; for ``|z0| = |z1|`` every point has that norm and makes the angle ``t Omega`` with
  ``z0`` (constant angular speed). High-dimensional Gaussian latents concentrate on a sphere, where
  linear interpolation would pass through atypically short vectors; slerp stays on it. Falls back
  to :func:`lerp` when ``sin(Omega) < eps`` (parallel or opposite latents).

  Args:
    z0, z1: latents of shape ``(D,)``.
    t: a scalar or an array of shape ``(T,)``.
    eps: threshold on ``sin(Omega)`` below which the linear path is used.

  Returns:
    ``(D,)`` for scalar ``t``, else ``(T, D)``.
  """
  t = jnp.asarray(t, jnp.float32)[..., None]
  cos = jnp.dot(z0, z1) / (jnp.linalg.norm(z0) * jnp.linalg.norm(z1))
  omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
  sin = jnp.sin(omega)
  degenerate = sin < eps
  safe_sin = jnp.where(degenerate, 1.0, sin)
  spherical = (jnp.sin((1 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / safe_sin
  return jnp.where(degenerate, (1 - t) * z0 + t * z1, spherical)


def _path(method: str):
  if method == 'linear':
    return lerp
  if method == 'slerp':
    return slerp
  raise ValueError(f'unknown interpolation method {method!r}; expected one of {list(METHODS)}')


def interpolate(z0: jax.Array, z1: jax.Array, num: int, *, method: str = 'slerp') -> jax.Array:
  """``num`` evenly spaced latents from ``z0`` to ``z1`` inclusive, shape ``(num, D)``."""
  if num < 2:
    raise ValueError(f'num must be >= 2 to include both ends, got {num}')
  return _path(method)(z0, z1, jnp.linspace(0.0, 1.0, num))


def interpolation_grid(corners: jax.Array, *, rows: int, columns: int,
                       method: str = 'slerp') -> jax.Array:
  """A 2-D grid of latents spanned by four corners, shape ``(rows, columns, D)``.

  ``corners`` holds the top-left, top-right, bottom-left and bottom-right latents. The left and
  right edges interpolate top to bottom in ``rows`` steps; each row then interpolates from its
  left to its right edge in ``columns`` steps. With ``method='linear'`` this is bilinear
  interpolation, ``grid[i, j] = (1-u)(1-v) z_tl + (1-u) v z_tr + u (1-v) z_bl + u v z_br`` with
  ``u = i / (rows - 1)``, ``v = j / (columns - 1)``.

  Args:
    corners: ``(4, D)`` latents.
    rows, columns: grid size, each >= 2.
    method: ``'slerp'`` or ``'linear'``.
  """
  if corners.ndim != 2 or corners.shape[0] != 4:
    raise ValueError(f'corners must have shape (4, D), got {corners.shape}')
  left = interpolate(corners[0], corners[2], rows, method=method)
  right = interpolate(corners[1], corners[3], rows, method=method)
  return jax.vmap(lambda a, b: interpolate(a, b, columns, method=method))(left, right)


def latent_arithmetic(group_a: jax.Array, group_b: jax.Array, group_c: jax.Array) -> jax.Array:
  """``mean(A) - mean(B) + mean(C)`` over the rows of three latent groups, shape ``(D,)``.

  DCGAN (arXiv:1511.06434, Section 6.3) averages three latents per concept before the
  arithmetic, because single latents give unstable results: e.g. A = "man with glasses",
  B = "man", C = "woman" gives a latent for "woman with glasses".

  Args:
    group_a, group_b, group_c: ``(n_a, D)``, ``(n_b, D)``, ``(n_c, D)`` latents.
  """
  for name, group in (('group_a', group_a), ('group_b', group_b), ('group_c', group_c)):
    if group.ndim != 2 or group.shape[0] == 0:
      raise ValueError(f'{name} must have shape (n >= 1, D), got {group.shape}')
  if not group_a.shape[1] == group_b.shape[1] == group_c.shape[1]:
    raise ValueError(f'latent dimensions differ: {group_a.shape}, {group_b.shape}, '
                     f'{group_c.shape}')
  return group_a.mean(axis=0) - group_b.mean(axis=0) + group_c.mean(axis=0)
