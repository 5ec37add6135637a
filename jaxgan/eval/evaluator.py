"""Sample-quality evaluation of a GAN state: the scoring code of ``python -m jaxgan.eval`` and of
periodic evaluation.

:func:`score` turns the features of generated samples into FID, KID, IS, precision/recall and
label accuracy against a reference (:class:`jaxgan.eval.reference.Reference`); it is the one
implementation of those metrics that :func:`jaxgan.eval.run.evaluate_run` (the command) and
:func:`image_metrics` (periodic evaluation, benchmarks) call. :func:`make_evaluator` builds the
``evaluate(state) -> dict`` that :func:`jaxgan.train.train_and_evaluate` calls every
``config.train.eval_every`` steps, writing the result to ``metrics.jsonl``:

* every dataset: ``sliced_wasserstein`` (on pixels or points);
* toy data: ``squared_mmd`` (Gaussian kernels of widths 0.1 and 1);
* datasets with a classifier (jaxgan ships MNIST and Fashion-MNIST ones, or pass ``extractor``):
  ``classifier_fid`` (:func:`score`'s ``fid`` of the classifier's penultimate features against the
  first ``eval_num_samples`` images of the train split), ``classifier_score`` (its ``is``, the
  Inception-style score of the softmax) and, for conditional models, ``label_accuracy`` (how often
  it recognizes the class G was asked for). The names say "classifier" because the features are
  not Inception's (:data:`PERIODIC_NAMES`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import data as data_lib
from jaxgan import experiment, gan, metrics
from jaxgan.eval import classifier, reference

METRICS = ('fid', 'kid', 'is', 'pr')
# score's names -> the names periodic evaluation writes to metrics.jsonl (kept from before the
# command existed; tests, benchmarks and their results files read them).
PERIODIC_NAMES = {'fid': 'classifier_fid', 'is': 'classifier_score',
                  'label_accuracy': 'label_accuracy'}


def check_metrics(names: Sequence[str]) -> tuple[str, ...]:
  """``names`` as a tuple if they are some of :data:`METRICS`; else a ValueError naming them."""
  names = tuple(names)
  unknown = [m for m in names if m not in METRICS]
  if unknown or not names:
    raise ValueError(f'unknown metrics {unknown or names}; expected some of {list(METRICS)}')
  return names


def score(fake_features: np.ndarray, real: reference.Reference | None, *,
          names: Sequence[str] = METRICS, probs: np.ndarray | None = None,
          labels: np.ndarray | None = None) -> dict[str, float]:
  """The metrics of ``fake_features`` ``(N, D)`` against a reference's ``(M, D)`` features.

  * ``fid``: :func:`jaxgan.metrics.frechet_distance` of the Gaussian fitted to ``fake_features``
    and the reference's ``mu``, ``sigma`` (arXiv:1706.08500);
  * ``kid``, ``kid_std``: :func:`jaxgan.metrics.kernel_inception_distance` of the reference's
    ``features`` and ``fake_features``, its pinned defaults (arXiv:1801.01401);
  * ``is``: :func:`jaxgan.metrics.inception_score` of ``probs`` ``(N, K)``, the extractor's class
    probabilities of the same samples (arXiv:1606.03498), one split;
  * ``precision``, ``recall``: :func:`jaxgan.metrics.precision_recall`, ``k = 3``
    (arXiv:1904.06991);
  * ``label_accuracy``, with ``probs`` and ``labels`` ``(N,)``: how often the arg-max class is
    the label.

  ``real`` may be None when ``names`` asks for none of ``fid``, ``kid``, ``pr``.
  """
  names = check_metrics(names)
  fake_features = np.asarray(fake_features, np.float64)
  out = {}
  if 'fid' in names:
    out['fid'] = metrics.frechet_distance(*metrics.gaussian_statistics(fake_features), real.mu,
                                          real.sigma)
  if 'kid' in names:
    out['kid'], out['kid_std'] = metrics.kernel_inception_distance(real.features, fake_features)
  if 'is' in names and probs is not None:
    out['is'] = metrics.inception_score(probs)
  if 'pr' in names:
    out['precision'], out['recall'] = metrics.precision_recall(real.features, fake_features)
  if labels is not None and probs is not None:
    out['label_accuracy'] = metrics.label_accuracy(probs, labels)
  return out


def image_metrics(fake: np.ndarray, *, extractor: classifier.FeatureExtractor | None,
                  reference_stats: tuple[np.ndarray, np.ndarray] | None = None,
                  labels: np.ndarray | None = None, real: np.ndarray | None = None,
                  key: jax.Array | None = None) -> dict[str, float]:
  """Periodic evaluation's metrics of generated ``fake`` images ``(N, H, W, C)`` in [-1, 1].

  The extractor's metrics are :func:`score`'s ``fid`` and ``is`` (and ``label_accuracy``) of
  ``extractor.features(fake)`` and ``extractor.probs(fake)``, under :data:`PERIODIC_NAMES`.

  Args:
    fake: generated samples.
    extractor: gives ``classifier_fid`` (with ``reference_stats``), ``classifier_score`` and
      ``label_accuracy`` (with ``labels``); None skips them.
    reference_stats: ``(mu, sigma)`` of the extractor's features on real data
      (:func:`jaxgan.metrics.gaussian_statistics`, as a
      :class:`jaxgan.eval.reference.Reference` holds them).
    labels: ``(N,)`` the classes a conditional G was given.
    real: real samples for ``sliced_wasserstein`` (the first ``min(N, len(real))`` of each).
    key: the projections of ``sliced_wasserstein``.
  """
  out = {}
  if real is not None and key is not None:
    n = min(len(fake), len(real))
    out['sliced_wasserstein'] = float(metrics.sliced_wasserstein_distance(
        key, jnp.asarray(fake[:n]), jnp.asarray(real[:n])))
  if extractor is not None:
    names, stats = ('is',), None
    if reference_stats is not None:
      # FID reads the reference's statistics only (KID and precision/recall, its features).
      names = ('fid', 'is')
      stats = reference.Reference(features=None, mu=reference_stats[0], sigma=reference_stats[1],
                                  key={}, path='', cached=False)
    scores = score(extractor.features(fake), stats, names=names, probs=extractor.probs(fake),
                   labels=labels)
    out.update({PERIODIC_NAMES[name]: value for name, value in scores.items()})
  return out


def make_generate(config: ml_collections.ConfigDict, generator, *, batch_size: int = 500
                  ) -> Callable[..., tuple[np.ndarray, np.ndarray | None]]:
  """``generate(state, key, num) -> (samples, labels)``, compiled once, in batches.

  Uses the EMA weights, with their own standing batch-norm statistics, when
  ``config.train.ema_decay > 0`` (:func:`jaxgan.experiment.sampling_variables`); a
  conditional G gets the labels ``i % K`` (returned), an unconditional one None.
  """
  num_classes = config.model.get('num_classes', 0)
  variables = jax.jit(lambda state: experiment.sampling_variables(config, generator, state))
  run = jax.jit(lambda state, variables, z, y: experiment.sample(
      config, generator, state, None, z.shape[0], labels=y, z=z, variables=variables))

  def generate(state, key: jax.Array, num: int):
    labels = np.arange(num) % num_classes if num_classes else None
    z = gan.sample_latent(key, num, config.model.latent_dim, config.model.latent_distribution)
    sampling = variables(state)
    parts = []
    for start in range(0, num, batch_size):
      y = None if labels is None else jnp.asarray(labels[start:start + batch_size])
      parts.append(np.asarray(run(state, sampling, z[start:start + batch_size], y)))
    return np.concatenate(parts), labels

  return generate


def make_evaluator(config: ml_collections.ConfigDict, generator, *, key: jax.Array,
                   extractor: classifier.FeatureExtractor | None = None
                   ) -> Callable[..., dict[str, float]]:
  """``evaluate(state) -> {name: float}`` on ``config.train.eval_num_samples`` samples.

  Real data is drawn once here: toy samples from ``key``, or the first
  ``eval_num_samples`` images of the train split (and their classifier statistics).
  ``extractor`` defaults to jaxgan's shipped classifier for the dataset, if there is one.
  Images are scored by :func:`image_metrics`, so by :func:`score`, as ``python -m jaxgan.eval``
  scores them. The statistics equal those :func:`jaxgan.eval.reference.reference_features`
  caches for the same images (:func:`jaxgan.metrics.gaussian_statistics` of the same features;
  the shipped classifier's are float32, as the cache stores them), but are computed here and not
  cached: the images are loaded anyway (``sliced_wasserstein``), a plugged-in extractor has no
  weights digest to key them by, and the key does not tell TFDS's mock data from the real split
  (tests that train with periodic evaluation would leave wrong statistics in the user's cache).
  """
  num = config.train.eval_num_samples
  name = config.data.name
  k_real, k_fake, k_proj = jax.random.split(key, 3)
  generate = make_generate(config, generator)
  if name in data_lib.TOY_DATASETS:
    real = np.asarray(data_lib.TOY_DATASETS[name](k_real, num))

    def evaluate_toy(state) -> dict[str, float]:
      fake, _ = generate(state, k_fake, num)
      return {'sliced_wasserstein': float(metrics.sliced_wasserstein_distance(k_proj, fake, real)),
              'squared_mmd': float(metrics.squared_mmd(fake, real, bandwidths=(0.1, 1.0)))}

    return evaluate_toy

  real = data_lib.image_arrays(name, split='train', data_dir=config.data.data_dir,
                               download=config.data.download, max_examples=num)['x']
  if extractor is None:
    extractor = classifier.shipped_extractor(name)
  real_stats = (metrics.gaussian_statistics(extractor.features(real))
                if extractor is not None else None)

  def evaluate_images(state) -> dict[str, float]:
    fake, labels = generate(state, k_fake, num)
    return image_metrics(fake, extractor=extractor, reference_stats=real_stats, labels=labels,
                         real=real, key=k_proj)

  return evaluate_images
