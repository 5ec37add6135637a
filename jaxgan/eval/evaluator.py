"""Sample-quality evaluation of a GAN state, for periodic evaluation and benchmarks.

:func:`image_metrics` scores generated images against real ones; :func:`make_evaluator` builds
the ``evaluate(state) -> dict`` that :func:`jaxgan.train.train_and_evaluate` calls every
``config.train.eval_every`` steps, writing the result to ``metrics.jsonl``:

* every dataset: ``sliced_wasserstein`` (on pixels or points);
* toy data: ``squared_mmd`` (Gaussian kernels of widths 0.1 and 1);
* datasets with a classifier (jaxgan ships MNIST and Fashion-MNIST ones, or pass ``extractor``):
  ``classifier_fid`` (Fréchet distance of the classifier's penultimate features against the
  train split), ``classifier_score`` (the Inception-style score of its softmax) and, for
  conditional models, ``label_accuracy`` (how often it recognizes the class G was asked for).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import data as data_lib
from jaxgan import experiment, gan, metrics
from jaxgan.eval import classifier


def image_metrics(fake: np.ndarray, *, extractor: classifier.FeatureExtractor | None,
                  reference_stats: tuple[np.ndarray, np.ndarray] | None = None,
                  labels: np.ndarray | None = None, real: np.ndarray | None = None,
                  key: jax.Array | None = None) -> dict[str, float]:
  """Metrics of generated ``fake`` images ``(N, H, W, C)`` in [-1, 1].

  Args:
    fake: generated samples.
    extractor: gives ``classifier_fid`` (with ``reference_stats``), ``classifier_score`` and
      ``label_accuracy`` (with ``labels``); None skips them.
    reference_stats: ``(mu, sigma)`` of the extractor's features on real data.
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
    if reference_stats is not None:
      out['classifier_fid'] = metrics.frechet_distance(
          *metrics.gaussian_statistics(extractor.features(fake)), *reference_stats)
    probs = extractor.probs(fake)
    out['classifier_score'] = metrics.inception_score(probs)
    if labels is not None:
      out['label_accuracy'] = metrics.label_accuracy(probs, labels)
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
  reference = (metrics.gaussian_statistics(extractor.features(real))
               if extractor is not None else None)

  def evaluate_images(state) -> dict[str, float]:
    fake, labels = generate(state, k_fake, num)
    return image_metrics(fake, extractor=extractor, reference_stats=reference, labels=labels,
                         real=real, key=k_proj)

  return evaluate_images
