"""Discriminator regularizers: gradient penalties and WGAN weight clipping.

Unlike the losses in :mod:`jaxgan.losses`, the gradient penalties need the discriminator as a
function of its input, ``d_fn(x) -> outputs``, mapping a batch ``(B, ...)`` to outputs of shape
``(B,)`` or ``(B, 1)``. Close over the parameters to build one, e.g.
``d_fn = lambda x: d_model.apply({'params': d_params}, x)``; the penalty is then differentiable
with respect to ``d_params`` like any loss.

Both penalties take the gradient of ``sum(d_fn(x))`` with respect to the whole batch, which equals
the per-example gradients stacked only when examples do not interact inside D: no batch norm in
the discriminator (the WGAN-GP paper uses layer norm instead).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxgan import rng

# Added to the squared norm before the square root: sqrt is not differentiable at 0, and without
# it the penalty's gradient is NaN wherever D's input gradient vanishes (e.g. a constant D).
_NORM_EPSILON = 1e-12


def _input_gradients(d_fn: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Returns grad_x sum(d_fn(x)), the per-example input gradients, shape ``x.shape``."""
  return jax.grad(lambda x: jnp.sum(d_fn(x)))(x)


def _squared_norms(grads: jax.Array) -> jax.Array:
  """Returns the squared L2 norm over all non-batch axes, shape ``(B,)``."""
  return jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim)))


def gradient_penalty(
    d_fn: Callable[[jax.Array], jax.Array],
    real: ArrayLike,
    fake: ArrayLike,
    key: jax.Array,
    *,
    target: float = 1.0,
    axis_name: str | None = None,
) -> jax.Array:
  r"""WGAN-GP two-sided gradient penalty on random interpolates of real and fake data.

  .. math::
    \hat x_i = \epsilon_i x_i + (1 - \epsilon_i) \tilde x_i, \quad \epsilon_i \sim U[0, 1],
    \qquad \text{GP} = \frac1B \sum_i (\lVert \nabla_{x} D(\hat x_i) \rVert_2 - \text{target})^2

  One ``epsilon`` per example, drawn as
  ``jax.random.uniform(key, (B,) + (1,) * (real.ndim - 1))`` and broadcast over the non-batch
  axes. The norm runs over all non-batch axes, computed as ``sqrt(sum(g**2) + 1e-12)`` so that the
  penalty's own gradient stays finite where D's input gradient is zero. The penalty is ``>= 0``;
  ADD ``weight * gradient_penalty(...)`` to the critic's loss (the paper uses weight 10,
  ``target=1``). Differentiating it with respect to D's parameters is a double backward pass.

  Paper: Gulrajani et al. 2017, arXiv:1704.00028.

  Args:
    d_fn: the discriminator, mapping ``(B, ...)`` to ``(B,)`` or ``(B, 1)``. Examples must not
      interact inside it (no batch norm).
    real: a batch of real data, shape ``(B, ...)``.
    fake: a batch of generated data, the same shape as ``real``.
    key: PRNG key for the interpolation coefficients.
    target: the gradient norm the penalty pulls towards (1 for a 1-Lipschitz critic).
    axis_name: under ``pmap``/``shard_map``, the device axis: ``epsilon`` is drawn for the
      global batch and each device keeps its rows (:func:`jaxgan.rng.local_rows`), so the penalty
      does not depend on the number of devices. (Its mean is then the local batch's; the train
      step averages over devices.)

  Returns:
    A scalar, the batch mean of ``(||grad|| - target)^2``.

  Raises:
    ValueError: if ``real`` and ``fake`` have different shapes.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> w = jnp.array([3.0, 4.0])  # D(x) = w.x has gradient norm ||w|| = 5 everywhere
    >>> real, fake = jnp.ones((8, 2)), jnp.zeros((8, 2))
    >>> gp = gradient_penalty(lambda x: x @ w, real, fake, jax.random.key(0))
    >>> print(f"{gp:.3f}")  # (5 - 1)^2
    16.000
  """
  real = jnp.asarray(real)
  fake = jnp.asarray(fake)
  if real.shape != fake.shape:
    raise ValueError(
        f"real and fake must have the same shape; got real.shape={real.shape} and "
        f"fake.shape={fake.shape}"
    )
  eps = rng.local_rows(
      key, lambda k, n: jax.random.uniform(k, (n,) + (1,) * (real.ndim - 1), dtype=real.dtype),
      real.shape[0], axis_name)
  interpolates = eps * real + (1.0 - eps) * fake
  grads = _input_gradients(d_fn, interpolates)
  norms = jnp.sqrt(_squared_norms(grads) + _NORM_EPSILON)
  return jnp.mean(jnp.square(norms - target))


def r1_penalty(d_fn: Callable[[jax.Array], jax.Array], real: ArrayLike) -> jax.Array:
  r"""R1 gradient penalty on real data.

  .. math::
    R_1 = \frac1B \sum_i \lVert \nabla_x D(x_i) \rVert_2^2

  The squared norm runs over all non-batch axes. This function returns the plain batch mean; the
  paper's regularizer is ``(gamma / 2) * R_1``, so callers ADD ``0.5 * gamma * r1_penalty(...)``
  to the discriminator's loss. It pushes D's gradient to zero on the data manifold, which makes
  training locally convergent.

  Paper: Mescheder et al. 2018, arXiv:1801.04406.

  Args:
    d_fn: the discriminator, mapping ``(B, ...)`` to ``(B,)`` or ``(B, 1)``. Examples must not
      interact inside it (no batch norm).
    real: a batch of real data, shape ``(B, ...)``.

  Returns:
    A scalar, the batch mean of ``||grad_x D(x)||^2``.

  Example:
    >>> import jax.numpy as jnp
    >>> w = jnp.array([3.0, 4.0])
    >>> print(f"{r1_penalty(lambda x: x @ w, jnp.ones((8, 2))):.1f}")  # ||w||^2
    25.0
  """
  grads = _input_gradients(d_fn, jnp.asarray(real))
  return jnp.mean(_squared_norms(grads))


def clip_weights(params, clip_value: float):
  r"""WGAN weight clipping: every parameter clipped to ``[-clip_value, clip_value]``.

  .. math::
    w \leftarrow \operatorname{clip}(w, -c, c)

  A crude way to keep the critic K-Lipschitz. It is a pure function of a parameter pytree, not a
  gradient transformation: the trainer applies it to the critic's parameters after each critic
  update, ``d_params = clip_weights(optax.apply_updates(d_params, updates), c)``. The paper uses
  ``c = 0.01`` with RMSProp. ``gradient_penalty`` is the usual replacement.

  Paper: Arjovsky et al. 2017, arXiv:1701.07875 (Algorithm 1).

  Args:
    params: a pytree of arrays (e.g. the critic's flax params).
    clip_value: the bound ``c > 0``.

  Returns:
    A pytree of the same structure, each leaf clipped elementwise to ``[-c, c]``.

  Raises:
    ValueError: if ``clip_value`` is not positive.

  Example:
    >>> import jax.numpy as jnp
    >>> clip_weights({'w': jnp.array([-0.5, 0.005, 0.02])}, 0.01)['w']
    Array([-0.01 ,  0.005,  0.01 ], dtype=float32)
  """
  if not clip_value > 0:
    raise ValueError(f"clip_value must be positive; got clip_value={clip_value!r}")
  return jax.tree.map(lambda w: jnp.clip(w, -clip_value, clip_value), params)


def gradient_penalty_term(weight: float, *, target: float = 1.0,
                          axis_name: str | None = None) -> Callable:
  """WGAN-GP as a term of D's objective: ``term(d_fn, real, fake, key, step) = weight * GP``.

  The signature of the terms :func:`jaxgan.gan.make_discriminator_loss` adds to D's loss;
  ``step`` is unused. The paper's weight is 10 (arXiv:1704.00028).
  """
  def term(d_fn, real, fake, key, step):
    del step
    return weight * gradient_penalty(d_fn, real, fake, key, target=target, axis_name=axis_name)
  return term


def r1_term(gamma: float, *, every: int = 1) -> Callable:
  r"""R1 as a term of D's objective, optionally lazy: ``term(d_fn, real, fake, key, step)``.

  ``every = 1``: ``gamma / 2 * R1`` on every step (arXiv:1801.04406). ``every = k > 1``: lazy
  regularization (StyleGAN2, arXiv:1912.04958, Section 3.1): ``k * gamma / 2 * R1`` on the steps
  with ``step % k == 0`` and nothing on the others, the same weight per step on average for
  ``1 / k`` of the cost (a ``lax.cond``: under ``jax.vmap`` keep ``step`` unbatched, or both
  branches run). Pair it with :func:`lazy_regularization_correction` on D's optimizer.
  """
  if every < 1:
    raise ValueError(f'every must be >= 1, got {every}')

  def term(d_fn, real, fake, key, step):
    del fake, key
    r1 = lambda: 0.5 * gamma * every * r1_penalty(d_fn, real)
    if every == 1:
      return r1()
    return lax.cond(step % every == 0, r1, lambda: jnp.zeros((), jnp.result_type(real)))
  return term


def lazy_regularization_correction(every: int) -> float:
  r"""StyleGAN2's ``c = k / (k + 1)`` for a regularizer applied every ``k`` steps.

  A lazy regularizer's updates come ``k`` times rarer but ``k`` times heavier. StyleGAN2
  (arXiv:1912.04958, Appendix B) compensates in Adam: ``lr' = c lr``, ``beta_1' = beta_1^c``,
  ``beta_2' = beta_2^c``. ``every = 1`` gives ``c = 1`` (no change).
  """
  if every < 1:
    raise ValueError(f'every must be >= 1, got {every}')
  return 1.0 if every == 1 else every / (every + 1)
