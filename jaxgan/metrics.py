"""Sample-quality metrics: pure functions of samples, features or class probabilities.

Feature-based (need a feature extractor; see :mod:`jaxgan.eval` for jaxgan's MNIST classifier, or
plug in Inception):

* :func:`frechet_distance` / :func:`feature_frechet_distance`: the Fréchet distance between
  Gaussians fitted to two feature sets (FID, Heusel et al. 2017, arXiv:1706.08500).
* :func:`inception_score`: ``exp E_x KL(p(y|x) || p(y))`` (Salimans et al. 2016, arXiv:1606.03498).
* :func:`label_accuracy`: how often a classifier agrees with the labels a conditional G was given.

Sample-based, usable on any data including the 2-D toys:

* :func:`sliced_wasserstein_distance`: Wasserstein-p averaged over random 1-D projections.
* :func:`squared_mmd`: kernel maximum mean discrepancy (Gretton et al. 2012) with Gaussian kernels.
* :func:`count_near_duplicates` and :func:`birthday_support_size`: the birthday-paradox test of
  Arora & Zhang 2017 (arXiv:1706.08224), by collision counting.
* :func:`mode_coverage`: modes covered, high-quality fraction and reverse KL on a Gaussian mixture
  (the ring/grid protocol of PacGAN, arXiv:1712.04086).

The Fréchet distance, the Inception score and the collision counts are computed in float64 NumPy
(the matrix square root of a covariance product needs the precision); the projections and kernels
are JAX and take explicit keys where random.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def _as_2d(name: str, x) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 2:
    raise ValueError(f'{name} must have shape (N, D), got shape {x.shape}')
  return x


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``(N, D)`` features, N >= 2."""
  features = _as_2d('features', features)
  if features.shape[0] < 2:
    raise ValueError(f'need at least 2 feature vectors for a covariance, got {features.shape[0]}')
  return features.mean(axis=0), np.cov(features, rowvar=False).reshape(
      features.shape[1], features.shape[1])


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (eigh; round-off negatives -> 0)."""
  eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Fréchet (2-Wasserstein squared) distance between N(mu1, sigma1) and N(mu2, sigma2).

  ``FD = ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2))``
  (Dowson & Landau 1982; FID, arXiv:1706.08500). ``sigma1 sigma2`` is not symmetric, but it has
  the eigenvalues of the symmetric PSD ``S = sigma1^(1/2) sigma2 sigma1^(1/2)``, so
  ``tr((sigma1 sigma2)^(1/2)) = sum_i sqrt(lambda_i(S))``: two ``eigh`` calls, no scipy.

  Args:
    mu1, mu2: means, shape ``(D,)``.
    sigma1, sigma2: covariances, shape ``(D, D)``, symmetric positive semi-definite.

  Returns:
    A float >= 0 (up to round-off); 0 exactly when the Gaussians are equal.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  d = mu1.shape[0]
  if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
    raise ValueError(f'shapes do not match: mu1 {mu1.shape}, sigma1 {sigma1.shape}, '
                     f'mu2 {mu2.shape}, sigma2 {sigma2.shape}')
  root1 = _sqrt_psd(sigma1)
  product = root1 @ sigma2 @ root1
  trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
  return float(np.sum((mu1 - mu2)**2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def feature_frechet_distance(features1, features2) -> float:
  """:func:`frechet_distance` between Gaussians fitted to ``(N1, D)`` and ``(N2, D)`` features."""
  return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


def inception_score(probs, *, num_splits: int = 1, eps: float = 1e-12) -> float:
  """Inception-style score ``exp(E_x KL(p(y|x) || p(y)))`` of class probabilities.

  ``p(y)`` is the mean of ``p(y|x)`` over the (split of the) samples. The score lies in
  ``[1, K]``: 1 when every prediction equals the marginal (e.g. all uniform), K when predictions
  are one-hot and the K classes are used equally often. Salimans et al. 2016, arXiv:1606.03498.

  Args:
    probs: ``(N, K)`` class probabilities, rows summing to 1 (e.g. a classifier's softmax).
    num_splits: the samples are split into this many equal parts, the score computed on each and
      averaged (Salimans et al. used 10 splits of 50,000).
    eps: guards ``log 0``.

  Returns:
    The mean score over splits, a float.
  """
  probs = _as_2d('probs', probs)
  if num_splits < 1 or num_splits > probs.shape[0]:
    raise ValueError(f'num_splits must be in [1, {probs.shape[0]}], got {num_splits}')
  scores = []
  for part in np.array_split(probs, num_splits):
    marginal = part.mean(axis=0, keepdims=True)
    kl = np.sum(part * (np.log(part + eps) - np.log(marginal + eps)), axis=1)
    scores.append(math.exp(kl.mean()))
  return float(np.mean(scores))


def label_accuracy(logits_or_probs, labels) -> float:
  """Fraction of rows whose arg-max class equals ``labels``: ``(N, K)``, ``(N,)`` -> float."""
  predictions = np.argmax(np.asarray(logits_or_probs), axis=-1)
  labels = np.asarray(labels)
  if predictions.shape != labels.shape:
    raise ValueError(f'{predictions.shape[0]} predictions but labels of shape {labels.shape}')
  return float(np.mean(predictions == labels))


def sliced_wasserstein_distance(key: jax.Array, x: jax.Array, y: jax.Array, *,
                                num_projections: int = 128, p: float = 2.0) -> jax.Array:
  """Sliced Wasserstein-p distance between two equal-sized samples (seed 001, "projected EMD").

  ``SW_p(x, y) = (E_theta W_p^p(<theta, x>, <theta, y>))^(1/p)`` with ``theta`` uniform on the unit
  sphere, estimated with ``num_projections`` directions. In 1-D, ``W_p`` between two empirical
  measures of n points each is the mean ``|x_(i) - y_(i)|^p`` of the sorted samples, to the 1/p.
  For ``y = x + c`` in one dimension the result is exactly ``|c|``.

  Args:
    key: draws the projection directions.
    x, y: samples of shape ``(n, ...)``, flattened to ``(n, D)``; the same n.
    num_projections: random directions averaged over.
    p: the order, >= 1.

  Returns:
    A scalar >= 0.
  """
  x = jnp.reshape(x, (x.shape[0], -1)).astype(jnp.float32)
  y = jnp.reshape(y, (y.shape[0], -1)).astype(jnp.float32)
  if x.shape != y.shape:
    raise ValueError(f'x and y must have the same number of samples and dimensions, got '
                     f'{x.shape} and {y.shape}')
  if p < 1:
    raise ValueError(f'p must be >= 1, got {p}')
  directions = jax.random.normal(key, (x.shape[1], num_projections))
  directions /= jnp.linalg.norm(directions, axis=0, keepdims=True)
  x_proj = jnp.sort(x @ directions, axis=0)
  y_proj = jnp.sort(y @ directions, axis=0)
  return jnp.mean(jnp.abs(x_proj - y_proj)**p)**(1 / p)


def squared_mmd(x: jax.Array, y: jax.Array, *, bandwidths: Sequence[float] = (1.0,),
                unbiased: bool = False) -> jax.Array:
  """Squared maximum mean discrepancy with a sum of Gaussian kernels (Gretton et al. 2012).

  ``k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2))`` over ``s`` in ``bandwidths``, and
  ``MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y)``. The biased (V-statistic) estimate averages
  over all pairs including ``i = j``; it is >= 0 and 0 for identical sets. The unbiased
  (U-statistic) estimate drops the ``i = j`` terms of the within-set averages; it can be negative.
  For one point on each side, the biased estimate is ``2 k(0) - 2 k(a, b)``.

  Args:
    x: ``(n, ...)`` samples, flattened to ``(n, D)``.
    y: ``(m, ...)`` samples, flattened to ``(m, D)``.
    bandwidths: kernel widths ``s`` (in the units of the data), summed over.
    unbiased: the U-statistic instead of the V-statistic.

  Returns:
    A scalar.
  """
  x = jnp.reshape(x, (x.shape[0], -1)).astype(jnp.float32)
  y = jnp.reshape(y, (y.shape[0], -1)).astype(jnp.float32)
  if x.shape[1] != y.shape[1]:
    raise ValueError(f'x and y must have the same dimension, got {x.shape} and {y.shape}')
  if not bandwidths or min(bandwidths) <= 0:
    raise ValueError(f'bandwidths must be positive, got {tuple(bandwidths)}')

  def kernel(a, b):
    sq = jnp.maximum(jnp.sum(a**2, 1)[:, None] + jnp.sum(b**2, 1)[None, :] - 2 * a @ b.T, 0)
    return sum(jnp.exp(-sq / (2 * s**2)) for s in bandwidths)

  k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
  n, m = x.shape[0], y.shape[0]
  if unbiased:
    if n < 2 or m < 2:
      raise ValueError(f'the unbiased estimate needs >= 2 samples per set, got {n} and {m}')
    within_x = (k_xx.sum() - jnp.trace(k_xx)) / (n * (n - 1))
    within_y = (k_yy.sum() - jnp.trace(k_yy)) / (m * (m - 1))
  else:
    within_x, within_y = k_xx.mean(), k_yy.mean()
  return within_x + within_y - 2 * k_xy.mean()


def count_near_duplicates(samples, *, threshold: float = 0.0, block_size: int = 1024) -> int:
  """Number of pairs ``i < j`` with ``||x_i - x_j||_2 <= threshold`` (exact duplicates for 0).

  Args:
    samples: ``(s, ...)`` samples, flattened to ``(s, D)``.
    threshold: Euclidean distance under which two samples count as a collision, >= 0.
    block_size: rows compared at a time (memory ``block_size * s``).

  Returns:
    The number of colliding pairs, an int.
  """
  if threshold < 0:
    raise ValueError(f'threshold must be >= 0, got {threshold}')
  x = np.asarray(samples, np.float64).reshape(len(samples), -1)
  sq_norms = np.sum(x**2, axis=1)
  count = 0
  for start in range(0, x.shape[0], block_size):
    block = x[start:start + block_size]
    sq = sq_norms[start:start + block_size, None] + sq_norms[None, :] - 2 * block @ x.T
    # Exact arithmetic for equal rows would give 0; allow round-off relative to the norms.
    tol = 1e-9 * (sq_norms[start:start + block_size, None] + sq_norms[None, :] + 1)
    close = sq <= threshold**2 + tol
    rows = np.arange(start, start + block.shape[0])[:, None]
    count += int(np.sum(close & (np.arange(x.shape[0])[None, :] > rows)))
  return count


def birthday_support_size(samples, *, threshold: float = 0.0) -> float:
  """Support-size estimate from collisions in one batch (birthday paradox, arXiv:1706.08224).

  Among ``s`` draws from a distribution ``p`` the expected number of colliding pairs is
  ``C(s, 2) * sum_x p(x)^2``; for the uniform distribution on ``N`` points that is ``C(s, 2) / N``.
  So ``N_hat = C(s, 2) / collisions`` estimates ``N`` (in general ``1 / sum p(x)^2``, the effective
  support). This is the collision counting of seed 001 and the reading of Arora & Zhang: if a
  batch of about ``s`` samples holds a duplicate with probability 1/2, the support is about
  ``s^2`` (exactly ``s^2 / (2 ln 2)`` for uniform). For images, near-duplicates within
  ``threshold`` count as collisions (the paper finds them by eye among the closest pairs).

  Args:
    samples: ``(s, ...)`` samples.
    threshold: see :func:`count_near_duplicates`.

  Returns:
    The estimate, a float; ``inf`` when the batch has no collision (the support is then likely
    larger than about ``s^2``).
  """
  s = len(samples)
  if s < 2:
    raise ValueError(f'need at least 2 samples, got {s}')
  collisions = count_near_duplicates(samples, threshold=threshold)
  return math.inf if collisions == 0 else s * (s - 1) / 2 / collisions


# --- Mode coverage on Gaussian mixtures (PacGAN / VEEGAN protocol) -------------------------------

def mode_coverage(samples: ArrayLike, centers: ArrayLike, std: float, *,
                  threshold: float = 3.0) -> dict[str, jax.Array]:
  r"""Modes covered, fraction of high-quality samples and reverse KL on a Gaussian mixture.

  The protocol of PacGAN (Lin et al. 2018, arXiv:1712.04086, Section 5.1; also VEEGAN's,
  arXiv:1705.07761) for the 2-D ring and grid:

  * each sample is assigned to its nearest center (Euclidean distance);
  * it is **high quality** if that distance is below ``threshold * std`` (3 standard deviations);
  * a mode is **covered** if it is the nearest center of at least one high-quality sample;
  * ``counts[k]`` is the number of high-quality samples assigned to mode ``k``, and the
    **reverse KL** is that histogram, normalized, against the uniform distribution over the
    ``K`` modes:

    .. math::
      \mathrm{KL}(\hat p \,\|\, u) = \sum_{k: \hat p_k > 0} \hat p_k \log(K \hat p_k), \qquad
      \hat p_k = \frac{\text{counts}_k}{\sum_j \text{counts}_j}.

  The histogram counts **high-quality samples only**, as PacGAN's code does
  (``synthetic_data_experiments/PacGAN/pacgan/extensions.py``, ``MetricLogger``: a point is
  counted for its nearest mode only if its distance is under ``dis_thre=3`` standard
  deviations, and the divergences use that histogram normalized). It is 0 for a perfectly
  balanced histogram and ``log K`` when every high-quality sample sits in one mode. With no
  high-quality sample at all the histogram is empty and the reverse KL is ``+inf``.

  Pure ``jax.numpy``: jit- and vmap-able (e.g. over seeds).

  Args:
    samples: ``(N, D)`` generated points.
    centers: ``(K, D)`` mixture means (e.g. :func:`jaxgan.data.ring_centers`).
    std: the mixture components' (isotropic) standard deviation, ``> 0``.
    threshold: how many standard deviations count as high quality.

  Returns:
    A dict of arrays: ``'modes'`` (float scalar, number of covered modes), ``'high_quality'``
    (float scalar, fraction in ``[0, 1]``), ``'reverse_kl'`` (float scalar) and ``'counts'``
    (``(K,)`` int32 histogram of high-quality samples per mode).

  Raises:
    ValueError: for non-2-D inputs, mismatched dimensions or a non-positive ``std``.

  Example:
    >>> import jax.numpy as jnp
    >>> centers = jnp.array([[0.0, 0.0], [10.0, 0.0]])
    >>> samples = jnp.array([[0.1, 0.0], [0.0, 0.2], [5.0, 5.0], [10.0, 0.0]])
    >>> m = mode_coverage(samples, centers, std=0.1)  # radius 0.3: 3 of 4 are high quality
    >>> float(m['modes']), float(m['high_quality']), m['counts'].tolist()
    (2.0, 0.75, [2, 1])
  """
  samples = jnp.asarray(samples)
  centers = jnp.asarray(centers)
  if samples.ndim != 2 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
    raise ValueError(f'mode_coverage takes samples (N, D) and centers (K, D); got shapes '
                     f'{samples.shape} and {centers.shape}')
  if not std > 0:
    raise ValueError(f'std must be > 0, got std={std!r}')
  num_modes = centers.shape[0]
  sq_dist = jnp.sum(jnp.square(samples[:, None, :] - centers[None, :, :]), axis=-1)  # (N, K)
  nearest = jnp.argmin(sq_dist, axis=-1)
  high_quality = jnp.min(sq_dist, axis=-1) < (threshold * std) ** 2
  counts = jnp.zeros(num_modes, jnp.int32).at[nearest].add(high_quality.astype(jnp.int32))
  total = jnp.sum(counts)
  p = counts / jnp.maximum(total, 1)
  kl_terms = jnp.where(counts > 0, p * jnp.log(jnp.where(counts > 0, num_modes * p, 1.0)), 0.0)
  reverse_kl = jnp.where(total > 0, jnp.sum(kl_terms), jnp.inf)
  return {
      'modes': jnp.sum(counts > 0).astype(jnp.float32),
      'high_quality': jnp.mean(high_quality.astype(jnp.float32)),
      'reverse_kl': reverse_kl,
      'counts': counts,
  }
