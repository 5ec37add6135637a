r"""The Bernoulli-Bernoulli restricted Boltzmann machine: a Markov-chain baseline.

Binary visible units ``v in {0, 1}^V`` and hidden units ``h in {0, 1}^H`` with the energy and
joint distribution

.. math::

   E(v, h) = -v^\top W h - b^\top v - c^\top h, \qquad p(v, h) = e^{-E(v, h)} / Z,

so that the hidden units are independent given the visible ones and vice versa,
``p(h_j = 1 | v) = sigmoid(c_j + (v W)_j)``, ``p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)``, and the
visible marginal is ``p(v) = e^{-F(v)} / Z`` with the *free energy*

.. math::

   F(v) = -b^\top v - \sum_j \operatorname{softplus}(c_j + (v W)_j).

The log-likelihood gradient is a difference of two expectations of ``-dF/dtheta``, under the
data and under the model; the model term is estimated with Gibbs chains:

* CD-k (Hinton 2002, "Training products of experts by minimizing contrastive divergence"):
  each chain starts at a data vector and runs ``k`` steps;
* persistent CD (Tieleman 2008, "Training restricted Boltzmann machines using approximations
  to the likelihood gradient"): the chains carry over from one update to the next.

``Z`` is intractable for large models: :func:`log_partition_exact` sums over the ``2^H`` hidden
states (``H <= 20``), and :func:`ais_log_partition` estimates it by annealed importance sampling
from a base-rate model (Salakhutdinov & Murray 2008, "On the quantitative analysis of deep
belief networks"), whose MNIST RBM (500 hidden units, CD-25) reaches -86.34 nats.

Parameters are a dict ``{'W': (V, H), 'b': (V,), 'c': (H,)}``; data are flattened to ``(B, V)``.
Keys: :func:`gibbs_step` splits its key into ``(h_key, v_key)``; step ``t`` of a chain uses
``fold_in(key, t)``; the training :func:`objective` splits the key its step gives it (the
one-player step of :func:`jaxgan.density_train.make_train_step` folds in the step number).

Bad input: :func:`cd_gradient`, :func:`log_likelihood` and the objective's batch (through
:func:`cd_gradient`) are checked on the host to be binary when they are concrete arrays (eager
calls); under ``jax.jit`` values are tracers and go unchecked, so check batches on the host
(e.g. ``jaxgan.vae.check_binary``) or train with ``binarize=True``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxgan import game

# log_partition_exact enumerates 2^H hidden states; beyond this it would take minutes.
MAX_EXACT_HIDDEN = 20
# Hidden states summed at once by log_partition_exact: 2^12 x V values in memory.
_ENUMERATION_BLOCK_BITS = 12


def _host_values(x) -> np.ndarray | None:
  try:
    return np.asarray(x)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return None


def _check_binary(x, what: str) -> None:
  """``ValueError`` unless the concrete ``x`` is all 0s and 1s; a no-op for tracers."""
  values = _host_values(x)
  if values is None:
    return
  bad = (values != 0) & (values != 1)
  if bad.any():
    raise ValueError(
        f'{what} must be binary (every value 0 or 1) for a Bernoulli RBM; got {int(bad.sum())} '
        f'of {values.size} values that are not, e.g. {values[bad].flat[0]!r}. Binarize '
        'intensities in [0, 1] first (e.g. jaxgan.vae.dynamic_binarize).')


def _flatten(x: ArrayLike) -> jax.Array:
  x = jnp.asarray(x)
  return x.reshape(x.shape[0], -1) if x.ndim > 2 else x


def init_params(key: jax.Array, num_visible: int, num_hidden: int, *,
                weight_scale: float = 0.01, visible_bias: ArrayLike | None = None) -> dict:
  """Hinton's recipe ("A practical guide to training RBMs", 2010, Section 8): ``W ~ N(0,
  weight_scale^2)``, hidden biases 0, visible biases ``visible_bias`` (e.g.
  :func:`base_rate_visible_bias` of the training data) or 0."""
  b = jnp.zeros((num_visible,)) if visible_bias is None else jnp.asarray(visible_bias)
  if b.shape != (num_visible,):
    raise ValueError(f'visible_bias must have shape ({num_visible},); got {b.shape}')
  return {'W': weight_scale * jax.random.normal(key, (num_visible, num_hidden)),
          'b': b, 'c': jnp.zeros((num_hidden,))}


def energy(params, v: ArrayLike, h: ArrayLike) -> jax.Array:
  """``E(v, h) = -v^T W h - b^T v - c^T h`` per pair: ``v (..., V)``, ``h (..., H)`` -> ``(...)``.
  """
  v, h = jnp.asarray(v), jnp.asarray(h)
  return -(jnp.einsum('...i,ij,...j->...', v, params['W'], h) + v @ params['b']
           + h @ params['c'])


def free_energy(params, v: ArrayLike) -> jax.Array:
  r"""``F(v) = -log sum_h exp(-E(v, h)) = -b^T v - sum_j softplus(c_j + (v W)_j)``.

  Args:
    params: ``{'W': (V, H), 'b': (V,), 'c': (H,)}``.
    v: ``(..., V)``, binary (any real values are accepted: the formula is the same).

  Returns:
    ``(...)``; ``log p(v) = -F(v) - log Z``.

  Example:
    >>> import jax.numpy as jnp
    >>> p = {'W': jnp.array([[1.], [-2.]]), 'b': jnp.array([.5, -1.]), 'c': jnp.array([.25])}
    >>> # -(0.5 - 1) - softplus(0.25 + 1 - 2) = 0.5 - log(1 + e^-0.75)
    >>> print(f"{free_energy(p, jnp.array([1., 1.])):.4f}")
    0.1131
  """
  v = jnp.asarray(v)
  return -(v @ params['b']) - jnp.sum(jax.nn.softplus(v @ params['W'] + params['c']), -1)


def hidden_probabilities(params, v: ArrayLike) -> jax.Array:
  """``p(h_j = 1 | v) = sigmoid(c_j + (v W)_j)``: ``(..., V) -> (..., H)``."""
  return jax.nn.sigmoid(jnp.asarray(v) @ params['W'] + params['c'])


def visible_probabilities(params, h: ArrayLike) -> jax.Array:
  """``p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)``: ``(..., H) -> (..., V)``."""
  return jax.nn.sigmoid(jnp.asarray(h) @ params['W'].T + params['b'])


def gibbs_step(params, v: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """One block-Gibbs sweep ``v -> h ~ p(h | v) -> v' ~ p(v | h)``.

  ``split(key) = (h_key, v_key)`` draw ``h`` and ``v'``. Returns ``(v', p(v' = 1 | h))``, both
  ``(B, V)``; the probabilities are the noise-free picture of the sample.
  """
  h_key, v_key = jax.random.split(key)
  h = jax.random.bernoulli(h_key, hidden_probabilities(params, v)).astype(v.dtype)
  v_probs = visible_probabilities(params, h)
  return jax.random.bernoulli(v_key, v_probs).astype(v.dtype), v_probs


def gibbs_chain(params, v: jax.Array, key: jax.Array, *, num_steps: int
                ) -> tuple[jax.Array, jax.Array]:
  """``num_steps`` (``>= 1``) Gibbs sweeps from ``v (B, V)``, step ``t`` with ``fold_in(key, t)``;
  returns the last :func:`gibbs_step`'s ``(v, v_probs)``."""
  if num_steps < 1:
    raise ValueError(f'num_steps must be >= 1; got {num_steps}')

  def body(t, carry):
    return gibbs_step(params, carry[0], jax.random.fold_in(key, t))

  v = jnp.asarray(v, params['W'].dtype)
  return lax.fori_loop(0, num_steps, body, (v, jnp.zeros_like(v)))


def contrastive_gradient(params, v_data: ArrayLike, v_model: ArrayLike) -> dict:
  r"""``grad_theta [mean F(v_data) - mean F(v_model)]``: the negative log-likelihood gradient
  with the model's expectation replaced by the average over ``v_model``.

  .. math::
    \frac{\partial F}{\partial W} = -v\, p(h | v)^\top, \quad
    \frac{\partial F}{\partial b} = -v, \quad \frac{\partial F}{\partial c} = -p(h | v),

  so ``dW = <v p(h|v)^T>_model - <v p(h|v)^T>_data``, ``db = <v>_model - <v>_data``,
  ``dc = <p(h|v)>_model - <p(h|v)>_data``, using the hidden *probabilities*, not samples
  (Hinton's practical guide, Section 3.3: less noise, same expectation). With the exact model
  distribution in place of ``v_model`` this is the exact gradient of the mean negative
  log-likelihood ``mean(F(v_data)) + log Z``; optax minimizes it as is (``params - lr * grad``).

  Args:
    params: ``{'W': (V, H), 'b': (V,), 'c': (H,)}``.
    v_data: the positive phase, ``(B, V)``.
    v_model: the negative phase (the chains' states), ``(N, V)``; ``N`` may differ from ``B``.

  Returns:
    A dict like ``params``.
  """

  def term(v):
    v = jnp.asarray(v, params['W'].dtype)
    p = hidden_probabilities(params, v)
    return {'W': v.T @ p / v.shape[0], 'b': jnp.mean(v, 0), 'c': jnp.mean(p, 0)}

  data, model = term(v_data), term(v_model)
  return jax.tree.map(lambda d, m: m - d, data, model)


def cd_gradient(params, v_data: ArrayLike, key: jax.Array, *, num_steps: int = 1,
                chains: ArrayLike | None = None) -> tuple[dict, jax.Array]:
  """The CD-k or persistent-CD estimate of the negative log-likelihood gradient.

  The negative phase runs ``num_steps`` Gibbs sweeps (:func:`gibbs_chain` with ``key``) from
  ``v_data`` itself (CD-k, ``chains=None``; Hinton 2002) or from the persistent ``chains``
  (PCD; Tieleman 2008), then returns :func:`contrastive_gradient` of ``v_data`` against the
  chains' new states, and those states (PCD's next chains).

  Args:
    params: ``{'W': (V, H), 'b': (V,), 'c': (H,)}``.
    v_data: binary data ``(B, V)`` (flattened from ``(B, ...)``).
    key: the chains' randomness.
    num_steps: ``k``, Gibbs sweeps per estimate (``>= 1``).
    chains: ``(N, V)`` persistent states, or None for CD-k.

  Returns:
    ``(grads, v_model)``: a dict like ``params``, and the ``(N, V)`` (CD: ``(B, V)``) states.

  Raises:
    ValueError: if ``v_data`` (or ``chains``) is concrete and not binary.
  """
  v_data = _flatten(v_data)
  _check_binary(v_data, 'v_data given to cd_gradient')
  if chains is None:
    start = v_data
  else:
    _check_binary(chains, 'chains given to cd_gradient')
    start = _flatten(chains)
  v_model, _ = gibbs_chain(params, start, key, num_steps=num_steps)
  return contrastive_gradient(params, v_data, v_model), v_model


def init_chains(key: jax.Array, params, num_chains: int) -> jax.Array:
  """PCD's ``num_chains`` persistent chains at step 0: ``v ~ Bernoulli(sigmoid(b))`` (the
  visible biases' own distribution: data-like pixel means when ``b`` is the base rate),
  ``(num_chains, V)``."""
  num_visible = params['b'].shape[0]
  chains = jax.random.bernoulli(key, jax.nn.sigmoid(params['b']), (num_chains, num_visible))
  return chains.astype(params['b'].dtype)


def objective(*, num_gibbs_steps: int = 1, persistent: bool = False,
              binarize: bool = True) -> game.Objective:
  r"""CD-k or PCD as the one player of :func:`jaxgan.game.make_train_step`.

  The log-likelihood has no tractable value to differentiate, but its CD/PCD gradient estimate
  is the gradient of a *surrogate*: with the negative samples ``v_model`` held fixed,

  .. math::
    \mathcal{L}_{\mathrm{CD}}(\theta) = \operatorname{mean}_b F_\theta(x_b)
                                   - \operatorname{mean}_n F_\theta(v_{\mathrm{model}, n}),
    \qquad \nabla_\theta \mathcal{L}_{\mathrm{CD}} = \text{contrastive\_gradient}(\theta, x,
    v_{\mathrm{model}}),

  since ``-dF/dtheta`` is ``(v p(h|v)^T, v, p(h|v))`` (:func:`contrastive_gradient`). So
  ``objective(params, state, batch, *, key, shared_key) -> (loss, (model_state, metrics))``
  returns that surrogate (the free-energy gap, whose gradient the optimizer follows; it is not
  a likelihood). ``key`` splits into ``(bin_key, chain_key)``: ``batch['x'] (B, ...)`` is
  flattened to ``(B, V)`` and, with ``binarize=True``, binarized as ``Bernoulli(x)`` with
  ``bin_key`` (intensities in [0, 1]; binary data pass unchanged); the negative phase is
  :func:`cd_gradient`'s, ``num_gibbs_steps`` sweeps with ``chain_key`` from the data (CD-k) or
  from the persistent chains ``state.g_batch_stats['chains']`` (PCD), run on the parameters
  with their gradient stopped. The model state is ``{'chains': v_model}`` for PCD (the next
  step's chains) and ``{}`` for CD-k.

  Metrics (scalars, before the update): ``reconstruction_error``, the mean squared error of
  the mean-field reconstruction ``p(v | p(h | x))`` (Hinton's guide's monitor, not the
  objective); ``free_energy_data`` and ``free_energy_model``, the mean free energies of the
  batch and of the negative samples (their gap is the loss); the step adds ``g_loss`` and
  ``g_grad_norm``.
  """

  def loss_fn(params, state, batch, *, key, shared_key):
    del shared_key
    bin_key, chain_key = jax.random.split(key)
    frozen = lax.stop_gradient(params)
    x = _flatten(batch['x'])
    if binarize:
      x = jax.random.bernoulli(bin_key, x).astype(params['W'].dtype)
    chains = state.g_batch_stats['chains'] if persistent else None
    _, v_model = cd_gradient(frozen, x, chain_key, num_steps=num_gibbs_steps, chains=chains)
    v_model = lax.stop_gradient(v_model)
    data_energy = jnp.mean(free_energy(params, x))
    model_energy = jnp.mean(free_energy(params, v_model))
    reconstruction = visible_probabilities(frozen, hidden_probabilities(frozen, x))
    metrics = {'reconstruction_error': jnp.mean((x - reconstruction)**2),
               'free_energy_data': data_energy, 'free_energy_model': model_energy}
    return data_energy - model_energy, ({'chains': v_model} if persistent else {}, metrics)

  return loss_fn


def sample(params, key: jax.Array, num_samples: int, *, num_steps: int = 1000,
           init: ArrayLike | None = None) -> tuple[jax.Array, jax.Array]:
  """``num_samples`` draws by a Gibbs chain of ``num_steps`` sweeps each.

  Chains start at ``init (num_samples, V)`` or, by default, at ``v ~ Bernoulli(sigmoid(b))``
  drawn with ``split(key)[0]``; the sweeps use ``split(key)[1]``. Returns ``(v, v_probs)``:
  the binary samples and the visible probabilities they were drawn from (the smoother picture
  for a grid), both ``(num_samples, V)``.
  """
  init_key, chain_key = jax.random.split(key)
  if init is None:
    init = jax.random.bernoulli(init_key, jax.nn.sigmoid(params['b']),
                                (num_samples, params['b'].shape[0]))
  return gibbs_chain(params, jnp.asarray(init, params['b'].dtype), chain_key,
                     num_steps=num_steps)


def log_partition_exact(params) -> jax.Array:
  r"""``log Z`` by summing over all ``2^H`` hidden states (``H <= 20``).

  .. math::
    \log Z = \operatorname{logsumexp}_{h \in \{0,1\}^H}
             \Big[c^\top h + \sum_i \operatorname{softplus}(b_i + (W h)_i)\Big],

  the visible units summed out analytically (the mirror image of :func:`free_energy`). States
  are summed ``2^12`` at a time under ``lax.map``; ``H = 20`` with ``V = 784`` takes seconds.

  Raises:
    ValueError: if ``H > 20`` (use :func:`ais_log_partition`).
  """
  num_hidden = params['c'].shape[0]
  if num_hidden > MAX_EXACT_HIDDEN:
    raise ValueError(f'log_partition_exact enumerates 2^H hidden states and allows H <= '
                     f'{MAX_EXACT_HIDDEN}; got H = {num_hidden}. Use ais_log_partition.')
  block_bits = min(num_hidden, _ENUMERATION_BLOCK_BITS)
  bits = jnp.arange(num_hidden)

  def block_terms(block):  # the 2^block_bits states block * 2^block_bits + [0, 2^block_bits)
    states = block * 2**block_bits + jnp.arange(2**block_bits)
    h = ((states[:, None] >> bits) & 1).astype(params['c'].dtype)
    return h @ params['c'] + jnp.sum(jax.nn.softplus(h @ params['W'].T + params['b']), -1)

  terms = lax.map(block_terms, jnp.arange(2**(num_hidden - block_bits)))
  return jax.nn.logsumexp(terms)


def log_likelihood(params, x: ArrayLike, log_z: ArrayLike) -> jax.Array:
  """``log p(x) = -F(x) - log Z`` per example, ``(B, ...) -> (B,)``, with ``log_z`` exact
  (:func:`log_partition_exact`) or estimated (:func:`ais_log_partition`).

  Raises:
    ValueError: if ``x`` is concrete and not binary.
  """
  x = _flatten(x)
  _check_binary(x, 'x given to rbm.log_likelihood')
  return -free_energy(params, x) - log_z


def base_rate_visible_bias(x: ArrayLike, *, pseudocount: float = 0.05) -> jax.Array:
  """The base-rate model's visible biases: ``logit(p)`` of the smoothed pixel means
  ``p = (mean(x) + pseudocount) / (1 + 2 pseudocount)`` (so a pixel that is always 0 gets a
  finite bias), as the AIS base model of Salakhutdinov & Murray 2008. ``x (N, ...)`` in [0, 1].
  """
  x = _flatten(x)
  p = (jnp.mean(x, 0) + pseudocount) / (1.0 + 2.0 * pseudocount)
  return jnp.log(p) - jnp.log1p(-p)


def paper_betas(num_betas: int = 14_501) -> np.ndarray:
  """Salakhutdinov & Murray's inverse temperatures: ``0 -> 0.5`` in steps of 1e-3, ``0.5 ->
  0.9`` in 1e-4, ``0.9 -> 1`` in 1e-5; 14,501 values, 14,500 intermediate transitions.

  ``num_betas`` other than 14,501 scales the schedule: the three segments keep their shares of
  the transitions (500, 4,000 and 10,000 of 14,500, rounded; at least one each), evenly spaced
  within each, so a cheaper estimate anneals the same way (``num_betas >= 4``)."""
  if num_betas < 4:
    raise ValueError(f'paper_betas needs num_betas >= 4 (one transition per segment); got '
                     f'{num_betas}')
  transitions = num_betas - 1
  first = max(1, round(transitions * 500 / 14_500))
  second = max(1, round(transitions * 4_000 / 14_500))
  third = transitions - first - second
  return np.concatenate([np.linspace(0.0, 0.5, first + 1)[:-1],
                         np.linspace(0.5, 0.9, second + 1)[:-1],
                         np.linspace(0.9, 1.0, third + 1)])


def ais_log_partition(params, key: jax.Array, *, num_chains: int, betas: ArrayLike,
                      base_visible_bias: ArrayLike | None = None
                      ) -> tuple[jax.Array, jax.Array]:
  r"""Annealed importance sampling estimate of ``log Z`` (Salakhutdinov & Murray 2008).

  The base model A is the RBM with ``W = 0``, ``c = 0`` and visible biases ``b_A``
  (``base_visible_bias``, e.g. :func:`base_rate_visible_bias` of the training data; zeros by
  default), so ``log Z_A = H log 2 + sum_i softplus(b_A,i)`` and it is sampled exactly. The
  intermediate distributions ``p_k(v) ∝ p*_k(v)`` interpolate the two models' *energies*:

  .. math::
    \log p^*_\beta(v) = (1 - \beta) b_A^\top v + \beta b^\top v
                        + \sum_j \operatorname{softplus}(\beta (c_j + (v W)_j)),

  an RBM with parameters ``(beta W, (1 - beta) b_A + beta b, beta c)``. Each chain draws
  ``v_1 ~ p_A`` and, for ``k = 1..K``, adds ``log p*_k(v_k) - log p*_{k-1}(v_k)`` to its log
  weight, then moves ``v_{k+1} ~ T_k(v_k)``, one Gibbs sweep that leaves ``p_k`` invariant. Then
  ``Z_B / Z_A ≈ mean_m w_m`` (unbiased in ``Z``, so ``log Z`` is slightly underestimated on
  average: Jensen), and

  .. math::
    \widehat{\log Z} = \log Z_A + \operatorname{logmeanexp}_m \log w_m, \qquad
    \mathrm{se} = \frac{\operatorname{std}(w)}{\sqrt{M}\, \operatorname{mean}(w)}

  (the standard error of ``log mean w`` by the delta method; the paper reports
  ``log(Ẑ ± 3σ)``).

  The increments are computed as differences (``(beta_k - beta_{k-1}) (b - b_A)^T v`` plus the
  softplus difference), not as differences of the large ``log p*``, so float32 keeps its
  accuracy over the paper's 14,500 steps (:func:`paper_betas`).

  Args:
    params: ``{'W': (V, H), 'b': (V,), 'c': (H,)}``.
    key: the chains' randomness.
    num_chains: ``M >= 2`` independent AIS runs (the paper's 100).
    betas: ``(K + 1,)`` inverse temperatures, non-decreasing from 0 to 1.
    base_visible_bias: ``b_A``, ``(V,)``, or None for zeros (the uniform base model).

  Returns:
    ``(log_z, std_error)``: scalars, in nats.

  Raises:
    ValueError: if ``num_chains < 2``, or ``betas`` (when concrete) is not a 1-D array of at
      least two values, non-decreasing from 0 to 1.
  """
  if num_chains < 2:
    raise ValueError(f'ais_log_partition needs num_chains >= 2 for its error; got {num_chains}')
  values = _host_values(betas)
  if values is not None:
    if (values.ndim != 1 or values.size < 2 or values[0] != 0 or values[-1] != 1
        or np.any(np.diff(values) < 0)):
      raise ValueError('betas must be a 1-D array of >= 2 inverse temperatures, non-decreasing '
                       f'from 0 to 1; got shape {values.shape}, values from '
                       f'{values.flat[0] if values.size else None} to '
                       f'{values.flat[-1] if values.size else None}')
  w, b, c = params['W'], params['b'], params['c']
  betas = jnp.asarray(betas, w.dtype)
  b_a = jnp.zeros_like(b) if base_visible_bias is None else jnp.asarray(base_visible_bias, b.dtype)
  init_key, chain_key = jax.random.split(key)
  v = jax.random.bernoulli(init_key, jax.nn.sigmoid(b_a), (num_chains, b.shape[0])).astype(w.dtype)

  def step(carry, inputs):
    v, log_w = carry
    beta_prev, beta, t = inputs
    activation = v @ w + c
    log_w += ((beta - beta_prev) * (v @ (b - b_a))
              + jnp.sum(jax.nn.softplus(beta * activation)
                        - jax.nn.softplus(beta_prev * activation), -1))
    h_key, v_key = jax.random.split(jax.random.fold_in(chain_key, t))
    h = jax.random.bernoulli(h_key, jax.nn.sigmoid(beta * activation)).astype(w.dtype)
    v_logits = (1.0 - beta) * b_a + beta * (b + h @ w.T)
    v = jax.random.bernoulli(v_key, jax.nn.sigmoid(v_logits)).astype(w.dtype)
    return (v, log_w), None

  num_steps = betas.shape[0] - 1
  (_, log_w), _ = lax.scan(step, (v, jnp.zeros((num_chains,), w.dtype)),
                           (betas[:-1], betas[1:], jnp.arange(num_steps)))
  log_z_a = c.shape[0] * math.log(2.0) + jnp.sum(jax.nn.softplus(b_a))
  log_mean_w = jax.nn.logsumexp(log_w) - math.log(num_chains)
  scaled = jnp.exp(log_w - jnp.max(log_w))
  std_error = jnp.std(scaled, ddof=1) / (math.sqrt(num_chains) * jnp.mean(scaled))
  return log_z_a + log_mean_w, std_error
