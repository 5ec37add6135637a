"""GAN losses as pure functions of discriminator logits.

Every family follows one naming contract (TF-GAN style):

* ``<family>_discriminator_loss(real_logits, fake_logits, *, ...)`` is what D minimizes;
* ``<family>_generator_loss(fake_logits, *, ...)`` is what G minimizes.

Logits are the raw, pre-sigmoid outputs of D, of any shape: one per example ``(B,)`` or
``(B, 1)``, or patch-shaped ``(B, H, W)``. Every loss returns a scalar, the mean over all
elements. A discriminator loss is the SUM of its mean over the real logits and its mean over the
fake logits, so the two batches may have different sizes and shapes. Penalties, which need D as a
function rather than its outputs, live in :mod:`jaxgan.penalties`. One image loss sits at the
end: CycleGAN's :func:`cycle_consistency_loss`, a function of images, not logits.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

LossFn = Callable[..., jax.Array]


def minimax_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    label_smoothing: float = 0.0,
) -> jax.Array:
  r"""Binary cross-entropy discriminator loss of the original GAN.

  .. math::
    L_D = -\mathbb{E}_x[t \log \sigma(D(x)) + (1 - t) \log(1 - \sigma(D(x)))]
          - \mathbb{E}_z[\log(1 - \sigma(D(G(z))))], \qquad t = 1 - \text{label\_smoothing}

  D minimizes ``L_D``, i.e. it maximizes the log-likelihood of calling real data real and fakes
  fake. One-sided label smoothing (Salimans et al. 2016, arXiv:1606.03498) lowers only the real
  targets to ``1 - label_smoothing``; fake targets stay 0. Computed with
  ``optax.sigmoid_binary_cross_entropy``, which is finite for any finite logits.

  Paper: Goodfellow et al. 2014, arXiv:1406.2661.

  Args:
    real_logits: D's logits on real data, any shape, e.g. ``(B,)`` or ``(B, H, W)``.
    fake_logits: D's logits on generated data, any shape (batch size may differ from real).
    label_smoothing: a Python float in ``[0, 1)``; the real target is ``1 - label_smoothing``.

  Returns:
    A scalar: mean BCE over real elements plus mean BCE over fake elements.

  Raises:
    ValueError: if ``label_smoothing`` is not in ``[0, 1)``.

  Example:
    >>> import jax.numpy as jnp
    >>> # D(x) = 0.8 and D(G(z)) = 0.2: -log 0.8 - log(1 - 0.2)
    >>> loss = minimax_discriminator_loss(jnp.log(4.0), -jnp.log(4.0))
    >>> print(f"{loss:.4f}")
    0.4463
  """
  if not 0.0 <= label_smoothing < 1.0:
    raise ValueError(f"label_smoothing must be in [0, 1); got label_smoothing={label_smoothing!r}")
  real_logits = jnp.asarray(real_logits)
  fake_logits = jnp.asarray(fake_logits)
  real_targets = jnp.full_like(real_logits, 1.0 - label_smoothing)
  fake_targets = jnp.zeros_like(fake_logits)
  real_loss = optax.sigmoid_binary_cross_entropy(real_logits, real_targets)
  fake_loss = optax.sigmoid_binary_cross_entropy(fake_logits, fake_targets)
  return jnp.mean(real_loss) + jnp.mean(fake_loss)


def minimax_generator_loss(fake_logits: ArrayLike) -> jax.Array:
  r"""Saturating (original minimax) generator loss.

  .. math::
    L_G = \mathbb{E}_z[\log(1 - \sigma(D(G(z))))] = -\mathbb{E}_z[\operatorname{softplus}(D(G(z)))]

  G minimizes ``L_G``: it is the generator's side of the zero-sum game, ``L_G = -`` (the fake half
  of ``minimax_discriminator_loss``). Its gradient ``-\sigma(l)`` vanishes when D confidently
  rejects fakes (``l \to -\infty``), which is why ``non_saturating_generator_loss`` is usually
  preferred in practice. Written as ``-softplus(l)`` so that it is finite for any finite logit.

  Paper: Goodfellow et al. 2014, arXiv:1406.2661 (Algorithm 1).

  Args:
    fake_logits: D's logits on generated data, any shape.

  Returns:
    A scalar, the mean over all elements; always ``<= 0``.

  Example:
    >>> import jax.numpy as jnp
    >>> # D(G(z)) = 0.2: log(1 - 0.2)
    >>> print(f"{minimax_generator_loss(-jnp.log(4.0)):.4f}")
    -0.2231
  """
  return -jnp.mean(jax.nn.softplus(jnp.asarray(fake_logits)))


def non_saturating_generator_loss(fake_logits: ArrayLike) -> jax.Array:
  r"""Non-saturating generator loss (the "-log D trick").

  .. math::
    L_G = -\mathbb{E}_z[\log \sigma(D(G(z)))] = \mathbb{E}_z[\operatorname{softplus}(-D(G(z)))]

  G minimizes ``L_G``, i.e. it maximizes the probability D assigns to fakes being real. Same fixed
  point as the minimax loss but strong gradients early in training, when D rejects fakes easily.
  Pair it with ``minimax_discriminator_loss``.

  Paper: Goodfellow et al. 2014, arXiv:1406.2661 (Section 3).

  Args:
    fake_logits: D's logits on generated data, any shape.

  Returns:
    A scalar, the mean over all elements; always ``>= 0``.

  Example:
    >>> import jax.numpy as jnp
    >>> # D(G(z)) = 0.2: -log 0.2
    >>> print(f"{non_saturating_generator_loss(-jnp.log(4.0)):.4f}")
    1.6094
  """
  return jnp.mean(jax.nn.softplus(-jnp.asarray(fake_logits)))


def wasserstein_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike) -> jax.Array:
  r"""Wasserstein critic loss.

  .. math::
    L_D = \mathbb{E}_z[D(G(z))] - \mathbb{E}_x[D(x)]

  The critic minimizes ``L_D``, i.e. it maximizes ``E D(x) - E D(G(z))``, an estimate of the
  Wasserstein-1 distance when D is 1-Lipschitz. Enforce that with
  ``jaxgan.penalties.clip_weights`` (WGAN) or ``jaxgan.penalties.gradient_penalty`` (WGAN-GP).
  The "logits" here are unbounded critic scores, no sigmoid involved.

  Paper: Arjovsky et al. 2017, arXiv:1701.07875.

  Args:
    real_logits: critic scores on real data, any shape.
    fake_logits: critic scores on generated data, any shape (batch size may differ from real).

  Returns:
    A scalar: mean over fake elements minus mean over real elements.

  Example:
    >>> import jax.numpy as jnp
    >>> print(wasserstein_discriminator_loss(jnp.array([1.0, 3.0]), jnp.array([0.5])))
    -1.5
  """
  return jnp.mean(jnp.asarray(fake_logits)) - jnp.mean(jnp.asarray(real_logits))


def wasserstein_generator_loss(fake_logits: ArrayLike) -> jax.Array:
  r"""Wasserstein generator loss.

  .. math::
    L_G = -\mathbb{E}_z[D(G(z))]

  G minimizes ``L_G``, i.e. it raises the critic's score of its samples.

  Paper: Arjovsky et al. 2017, arXiv:1701.07875.

  Args:
    fake_logits: critic scores on generated data, any shape.

  Returns:
    A scalar, minus the mean over all elements.

  Example:
    >>> import jax.numpy as jnp
    >>> print(wasserstein_generator_loss(jnp.array([-2.0, 0.5])))
    0.75
  """
  return -jnp.mean(jnp.asarray(fake_logits))


def least_squares_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    real_label: float = 1.0,
    fake_label: float = 0.0,
) -> jax.Array:
  r"""Least-squares (LSGAN) discriminator loss.

  .. math::
    L_D = \tfrac12 \mathbb{E}_x[(D(x) - b)^2] + \tfrac12 \mathbb{E}_z[(D(G(z)) - a)^2]

  with ``b = real_label`` and ``a = fake_label``. D minimizes ``L_D``, regressing its raw output
  (no sigmoid) to ``b`` on real data and ``a`` on fakes. The paper's defaults are ``a=0, b=1``
  (used here) or ``a=-1, b=1, c=0`` (the Pearson chi-squared setting).

  Paper: Mao et al. 2017, arXiv:1611.04076.

  Args:
    real_logits: D's outputs on real data, any shape.
    fake_logits: D's outputs on generated data, any shape (batch size may differ from real).
    real_label: target ``b`` for real data.
    fake_label: target ``a`` for generated data.

  Returns:
    A scalar: half the mean squared error on real plus half the mean squared error on fake.

  Example:
    >>> import jax.numpy as jnp
    >>> print(least_squares_discriminator_loss(jnp.array([0.0]), jnp.array([1.0])))
    1.0
  """
  real_loss = 0.5 * jnp.mean(jnp.square(jnp.asarray(real_logits) - real_label))
  fake_loss = 0.5 * jnp.mean(jnp.square(jnp.asarray(fake_logits) - fake_label))
  return real_loss + fake_loss


def least_squares_generator_loss(fake_logits: ArrayLike, *, real_label: float = 1.0) -> jax.Array:
  r"""Least-squares (LSGAN) generator loss.

  .. math::
    L_G = \tfrac12 \mathbb{E}_z[(D(G(z)) - c)^2]

  with ``c = real_label``, the value G wants D to believe for its samples. G minimizes ``L_G``.

  Paper: Mao et al. 2017, arXiv:1611.04076.

  Args:
    fake_logits: D's outputs on generated data, any shape.
    real_label: target ``c`` for generated data.

  Returns:
    A scalar: half the mean squared error over all elements.

  Example:
    >>> import jax.numpy as jnp
    >>> print(least_squares_generator_loss(jnp.array([0.0, -1.0])))
    1.25
  """
  return 0.5 * jnp.mean(jnp.square(jnp.asarray(fake_logits) - real_label))


def hinge_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike) -> jax.Array:
  r"""Hinge discriminator loss.

  .. math::
    L_D = \mathbb{E}_x[\max(0, 1 - D(x))] + \mathbb{E}_z[\max(0, 1 + D(G(z)))]

  D minimizes ``L_D``: real scores are pushed above +1 and fake scores below -1, with no loss
  once they are past the margin.

  Papers: Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018, arXiv:1802.05957.

  Args:
    real_logits: D's outputs on real data, any shape.
    fake_logits: D's outputs on generated data, any shape (batch size may differ from real).

  Returns:
    A scalar: mean hinge over real elements plus mean hinge over fake elements.

  Example:
    >>> import jax.numpy as jnp
    >>> print(hinge_discriminator_loss(jnp.array([0.5, 2.0]), jnp.array([-2.0, 0.5])))
    1.0
  """
  real_loss = jax.nn.relu(1.0 - jnp.asarray(real_logits))
  fake_loss = jax.nn.relu(1.0 + jnp.asarray(fake_logits))
  return jnp.mean(real_loss) + jnp.mean(fake_loss)


def hinge_generator_loss(fake_logits: ArrayLike) -> jax.Array:
  r"""Hinge generator loss.

  .. math::
    L_G = -\mathbb{E}_z[D(G(z))]

  G minimizes ``L_G``; the same as the Wasserstein generator loss, with no margin on G's side.

  Papers: Lim & Ye 2017, arXiv:1705.02894; Miyato et al. 2018, arXiv:1802.05957.

  Args:
    fake_logits: D's outputs on generated data, any shape.

  Returns:
    A scalar, minus the mean over all elements.

  Example:
    >>> import jax.numpy as jnp
    >>> print(hinge_generator_loss(jnp.array([-2.0, 0.5])))
    0.75
  """
  return wasserstein_generator_loss(fake_logits)



def loss_sensitive_discriminator_loss(
    real_logits: ArrayLike,
    fake_logits: ArrayLike,
    *,
    margin: ArrayLike = 1.0,
    hinge_weight: float = 1.0,
) -> jax.Array:
  r"""Loss-sensitive GAN (LS-GAN) discriminator loss.

  LS-GAN learns a loss function ``L_theta(x)`` that should be lower on real data than on
  generated data by at least a data-dependent margin ``Delta(x, G(z))``. jaxgan keeps D's sign
  convention (higher logit = more real) by reading ``L_theta(x) = -D(x)``:

  .. math::
    L_D = \mathbb{E}_x[L_\theta(x)]
          + \lambda\, \mathbb{E}_{x, z}\big[\Delta(x, G(z)) + L_\theta(x) - L_\theta(G(z))\big]_+
        = -\mathbb{E}_x[D(x)] + \lambda\, \mathbb{E}_{x, z}
          \big[\Delta(x, G(z)) - D(x) + D(G(z))\big]_+

  D minimizes ``L_D``. Because ``x`` and ``z`` are independent, the hinge term is averaged over
  **all** (real element, fake element) pairs, an unbiased estimate that also accepts unequal
  batches. ``L_theta`` should be Lipschitz (the paper's analysis needs it): add weight decay or
  a gradient penalty.

  Signature deviation from the other families: the paper's margin is a distance between samples,
  which the logits do not carry. Pass it as ``margin``: a scalar (a constant margin, the default
  1.0) or an array that broadcasts to ``(real_logits.size, fake_logits.size)``, e.g.
  ``loss_sensitive_margin(real, fake)`` for the paper's L1 distance. For the same reason, and
  because the hinge couples real and fake logits (``L_D`` is not a real term plus a fake term),
  this family is not in :data:`LOSS_PAIRS`.

  Paper: Qi 2017, arXiv:1701.06264 (Eq. 5 and 6).

  Args:
    real_logits: D's outputs on real data, any shape (flattened).
    fake_logits: D's outputs on generated data, any shape (flattened).
    margin: ``Delta``, a scalar or an array broadcastable to ``(R, F)``, R and F the numbers of
      real and fake elements.
    hinge_weight: ``lambda > 0``, the weight of the hinge term.

  Returns:
    A scalar.

  Raises:
    ValueError: if ``hinge_weight`` is not positive.

  Example:
    >>> import jax.numpy as jnp
    >>> # -mean(1, 3) + mean([1 - 1 + 0, 1 - 3 + 0]_+) = -2 + mean(0, 0) = -2
    >>> print(loss_sensitive_discriminator_loss(jnp.array([1.0, 3.0]), jnp.array([0.0])))
    -2.0
  """
  if not hinge_weight > 0:
    raise ValueError(f"hinge_weight must be positive; got hinge_weight={hinge_weight!r}")
  real = jnp.ravel(jnp.asarray(real_logits))
  fake = jnp.ravel(jnp.asarray(fake_logits))
  hinge = jax.nn.relu(jnp.asarray(margin) - real[:, None] + fake[None, :])
  return -jnp.mean(real) + hinge_weight * jnp.mean(hinge)


def loss_sensitive_generator_loss(fake_logits: ArrayLike) -> jax.Array:
  r"""Loss-sensitive GAN (LS-GAN) generator loss.

  .. math::
    L_G = \mathbb{E}_z[L_\theta(G(z))] = -\mathbb{E}_z[D(G(z))]

  G minimizes the learned loss of its samples (with ``L_theta = -D``, as in
  :func:`loss_sensitive_discriminator_loss`).

  Paper: Qi 2017, arXiv:1701.06264 (Eq. 7).

  Args:
    fake_logits: D's outputs on generated data, any shape.

  Returns:
    A scalar, minus the mean over all elements.

  Example:
    >>> import jax.numpy as jnp
    >>> print(loss_sensitive_generator_loss(jnp.array([-2.0, 0.5])))
    0.75
  """
  return wasserstein_generator_loss(fake_logits)


def loss_sensitive_margin(real: ArrayLike, fake: ArrayLike, *, scale: float = 1.0) -> jax.Array:
  r"""The LS-GAN margin ``Delta(x_i, G(z_j)) = scale * ||x_i - G(z_j)||_1`` for every pair.

  Args:
    real: ``(R, ...)`` real samples.
    fake: ``(F, ...)`` generated samples of the same per-example shape.
    scale: multiplies the L1 distance (the paper averages over pixels for images).

  Returns:
    ``(R, F)`` margins, the ``margin`` argument of :func:`loss_sensitive_discriminator_loss`
    for per-example logits of shapes ``(R,)`` and ``(F,)``.

  Example:
    >>> import jax.numpy as jnp
    >>> loss_sensitive_margin(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, -2.0], [0.0, 0.5]]))
    Array([[3. , 0.5]], dtype=float32)
  """
  real = jnp.asarray(real)
  fake = jnp.asarray(fake)
  if real.shape[1:] != fake.shape[1:]:
    raise ValueError(f'real and fake examples must have one shape; got {real.shape[1:]} and '
                     f'{fake.shape[1:]}')
  diff = real.reshape((real.shape[0], 1, -1)) - fake.reshape((1, fake.shape[0], -1))
  return scale * jnp.sum(jnp.abs(diff), axis=-1)

# Each entry is (discriminator loss, generator loss); the names are what configs refer to.
LOSS_PAIRS: dict[str, tuple[LossFn, LossFn]] = {
    'minimax': (minimax_discriminator_loss, minimax_generator_loss),
    'non_saturating': (minimax_discriminator_loss, non_saturating_generator_loss),
    'wasserstein': (wasserstein_discriminator_loss, wasserstein_generator_loss),
    'least_squares': (least_squares_discriminator_loss, least_squares_generator_loss),
    'hinge': (hinge_discriminator_loss, hinge_generator_loss),
}


def get_loss_pair(name: str) -> tuple[LossFn, LossFn]:
  """Returns ``(d_loss_fn, g_loss_fn)`` for a loss family named in ``LOSS_PAIRS``.

  Args:
    name: one of ``'minimax'``, ``'non_saturating'``, ``'wasserstein'``, ``'least_squares'``,
      ``'hinge'``.

  Returns:
    The discriminator and generator loss functions of that family.

  Raises:
    ValueError: if ``name`` is not a key of ``LOSS_PAIRS``.

  Example:
    >>> d_loss_fn, g_loss_fn = get_loss_pair('non_saturating')
    >>> g_loss_fn.__name__
    'non_saturating_generator_loss'
  """
  if name not in LOSS_PAIRS:
    expected = ', '.join(repr(n) for n in LOSS_PAIRS)
    raise ValueError(f"unknown loss {name!r}; expected one of {expected}")
  return LOSS_PAIRS[name]


# The semi-supervised (K+1)-class GAN of Salimans et al. 2016 (arXiv:1606.03498, Section 5).
# D outputs K class logits l(x) of shape (B, K); the logit of class K+1 ("fake") is fixed to 0, so
# D(x) = p(real | x) = Z(x) / (Z(x) + 1) with Z(x) = sum_k exp(l_k(x)), i.e. the binary logit of
# "real" is lse(l(x)) = log Z(x). These losses do not fit LOSS_PAIRS (their logits are (B, K)).


def semi_supervised_classification_loss(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
  r"""Supervised part of the (K+1)-class GAN loss: cross-entropy over the K real classes.

  .. math::
    L_\text{sup} = -\mathbb{E}_{x, y}[\log p(y \mid x, y < K + 1)]
                 = \mathbb{E}_{x, y}[\operatorname{lse}(l(x)) - l_y(x)]

  D minimizes it on the labeled examples. Conditioning on ``y < K + 1`` makes it the ordinary
  K-class softmax cross-entropy: the fixed fake logit drops out.

  Paper: Salimans et al. 2016, arXiv:1606.03498 (Section 5).

  Args:
    logits: D's K class logits on labeled data, shape ``(B, K)``.
    labels: integer classes in ``[0, K)``, shape ``(B,)``.

  Returns:
    A scalar, the mean cross-entropy over the batch.

  Example:
    >>> import jax.numpy as jnp
    >>> # p(y=1 | x) = 3 / (1 + 3): -log(3/4)
    >>> loss = semi_supervised_classification_loss(jnp.log(jnp.array([[1.0, 3.0]])), jnp.array([1]))
    >>> print(f"{loss:.4f}")
    0.2877
  """
  logits = jnp.asarray(logits)
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, jnp.asarray(labels)))


def semi_supervised_discriminator_loss(real_logits: ArrayLike, fake_logits: ArrayLike) -> jax.Array:
  r"""Unsupervised part of the (K+1)-class GAN loss: real vs. fake with the fake logit fixed to 0.

  .. math::
    L_\text{unsup} = -\mathbb{E}_x[\log D(x)] - \mathbb{E}_z[\log(1 - D(G(z)))],
    \qquad D(x) = \frac{Z(x)}{Z(x) + 1},\ Z(x) = \textstyle\sum_k e^{l_k(x)}

  computed stably as ``-E_x[lse(l) - softplus(lse(l))] - E_z[-softplus(lse(l))]``, since
  ``log D = lse - softplus(lse)`` and ``log(1 - D) = -softplus(lse)``. D minimizes it on
  unlabeled real data and on fakes. It is :func:`minimax_discriminator_loss` applied to the
  binary logit ``lse(l)``. The public MNIST code of the paper weights this term by 0.5 against
  the supervised one (choose that weight in the trainer).

  Paper: Salimans et al. 2016, arXiv:1606.03498 (Section 5).

  Args:
    real_logits: D's K class logits on unlabeled real data, shape ``(B, K)``.
    fake_logits: D's K class logits on generated data, shape ``(B', K)``.

  Returns:
    A scalar: ``-mean log D(x)`` over real rows plus ``-mean log(1 - D(G(z)))`` over fake rows.

  Example:
    >>> import jax.numpy as jnp
    >>> # Z = 2 on real (D = 2/3), Z = 3 on fake (D = 3/4): -log(2/3) - log(1/4)
    >>> loss = semi_supervised_discriminator_loss(jnp.zeros((1, 2)), jnp.log(jnp.array([[1., 2.]])))
    >>> print(f"{loss:.4f}")
    1.7918
  """
  real_lse = jax.nn.logsumexp(jnp.asarray(real_logits), axis=-1)
  fake_lse = jax.nn.logsumexp(jnp.asarray(fake_logits), axis=-1)
  real_loss = -(real_lse - jax.nn.softplus(real_lse))
  fake_loss = jax.nn.softplus(fake_lse)
  return jnp.mean(real_loss) + jnp.mean(fake_loss)


def semi_supervised_generator_loss(fake_logits: ArrayLike) -> jax.Array:
  r"""Non-saturating generator loss of the (K+1)-class GAN.

  .. math::
    L_G = -\mathbb{E}_z[\log D(G(z))] = \mathbb{E}_z[\operatorname{softplus}(-\mathrm{lse}(l))]

  G minimizes it. The paper trains G on MNIST with feature matching instead
  (:func:`jaxgan.semi_supervised.generator_objective`); this is the plain alternative.

  Paper: Salimans et al. 2016, arXiv:1606.03498 (Section 5).

  Args:
    fake_logits: D's K class logits on generated data, shape ``(B, K)``.

  Returns:
    A scalar, the mean over the batch; always ``>= 0``.

  Example:
    >>> import jax.numpy as jnp
    >>> # Z = 3, D = 3/4: -log(3/4)
    >>> print(f"{semi_supervised_generator_loss(jnp.log(jnp.array([[1., 2.]]))):.4f}")
    0.2877
  """
  return jnp.mean(jax.nn.softplus(-jax.nn.logsumexp(jnp.asarray(fake_logits), axis=-1)))


# Image-to-image translation (CycleGAN). Not a function of logits: it compares images.


def cycle_consistency_loss(real: ArrayLike, reconstructed: ArrayLike) -> jax.Array:
  r"""One direction of CycleGAN's cycle-consistency loss: the mean absolute reconstruction error.

  .. math::
    L_\text{cyc} = \mathbb{E}_x \lVert F(G(x)) - x \rVert_1
                 + \mathbb{E}_y \lVert G(F(y)) - y \rVert_1

  For mappings ``G: X -> Y`` and ``F: Y -> X`` (eq. 2), this function is one of the two terms:
  ``mean |real - reconstructed|`` over all elements, with ``reconstructed = F(G(real))`` (or
  ``G(F(real))``), the per-element mean of the authors' ``nn.L1Loss``. Call it once per
  direction and add both to the generators' adversarial losses with weight ``lambda`` (eq. 3;
  10 in the paper's experiments). Both G and F minimize it; gradients flow into ``reconstructed``.

  Paper: Zhu et al. 2017, arXiv:1703.10593 (Section 3.2, eq. 2).

  Args:
    real: images from one domain, any shape, e.g. ``(B, H, W, C)``.
    reconstructed: their round trip through both generators, the same shape.

  Returns:
    A scalar, the mean over all elements; always ``>= 0``, 0 for a perfect reconstruction.

  Raises:
    ValueError: if the shapes differ.

  Example:
    >>> import jax.numpy as jnp
    >>> # |0 - 0.5| and |1 - 0|: (0.5 + 1) / 2
    >>> print(f"{cycle_consistency_loss(jnp.array([0.0, 1.0]), jnp.array([0.5, 0.0])):.2f}")
    0.75
  """
  real = jnp.asarray(real)
  reconstructed = jnp.asarray(reconstructed)
  if real.shape != reconstructed.shape:
    raise ValueError(f'real and reconstructed must have the same shape; got {real.shape} and '
                     f'{reconstructed.shape}')
  return jnp.mean(jnp.abs(real - reconstructed))
