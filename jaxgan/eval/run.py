"""Evaluation of a training run's latest checkpoint: FID, KID, IS and precision/recall.

``python -m jaxgan.eval --workdir=DIR`` (:mod:`jaxgan.eval.__main__`) calls
:func:`evaluate_run`, which

1. restores the run as :mod:`jaxgan.sample` does (``DIR/config.json``, the latest checkpoint of
   ``DIR/checkpoints``; :func:`jaxgan.sample.load_run`);
2. draws ``num_samples`` images with the weights samples are drawn with (G's moving average and
   its standing batch-norm statistics when ``config.train.ema_decay > 0``;
   :func:`jaxgan.eval.evaluator.make_generate`, the code periodic evaluation uses; a conditional
   G gets the labels ``i mod K``), from ``PRNGKey(seed)``; StyleGAN2 and PGGAN runs
   (``config.trainer`` in :data:`jaxgan.style_train.SYSTEMS`) draw with their own sampler and
   are cropped back to 28x28 (:func:`make_style_generate`); other trainers are refused;
3. computes the extractor's features of them and of the first ``num_samples`` images of the
   dataset's ``split`` (cached on disk, :func:`jaxgan.eval.reference.reference_features`, keyed
   by the extractor's weight digest);
4. scores them with :func:`jaxgan.eval.evaluator.score` (the code periodic evaluation scores
   with, ``score`` here too) and returns, prints as Markdown and writes to ``DIR/eval.json``
   (beside ``metrics.jsonl``):

* ``fid``: the Fréchet distance of Gaussians fitted to the two feature sets (arXiv:1706.08500);
* ``kid``, ``kid_std``: KID (arXiv:1801.01401), :func:`jaxgan.metrics.kernel_inception_distance`
  with its pinned defaults (100 subsets of ``min(1000, n)`` rows);
* ``is``: the Inception score (arXiv:1606.03498) of the extractor's class probabilities, one split;
* ``precision``, ``recall``: k-NN precision and recall, ``k = 3`` (arXiv:1904.06991);
* ``label_accuracy`` for conditional runs (how often the extractor sees the class G was given;
  classifier extractor only).

Extractors: ``'classifier'``, jaxgan's shipped classifier of the dataset (64 features, offline;
"classifier FID" is not comparable with published FIDs), or ``'inception'``, FID's Inception-v3
(:mod:`jaxgan.eval.inception`, 2048 pool features; needs the converted weights).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import jax
import numpy as np

from jaxgan import data as data_lib
from jaxgan import sample, style_train
from jaxgan.eval import classifier, evaluator, inception, reference

# The command's metrics and its scoring are periodic evaluation's (jaxgan.eval.evaluator owns
# them: jaxgan.train imports it, and this module imports jaxgan.style_train, which imports
# jaxgan.train); named here too, as the command's.
METRICS = evaluator.METRICS
score = evaluator.score
EXTRACTORS = ('classifier', 'inception')
EVAL_FILE = 'eval.json'


def load_extractor(name: str, dataset: str, *, inception_weights: str | None = None
                   ) -> tuple[classifier.FeatureExtractor, str]:
  """``(extractor, weights_digest)`` of ``'classifier'`` (jaxgan's for ``dataset``) or
  ``'inception'`` (converted weights at ``inception_weights``, default
  :func:`jaxgan.eval.inception.default_weights_path`).

  Raises:
    ValueError: an unknown name, or no shipped classifier for ``dataset``.
    FileNotFoundError: no converted Inception weights (the message says how to make them).
  """
  if name == 'classifier':
    path = classifier.weights_dir(dataset)
    if not classifier.is_shipped(dataset):
      raise ValueError(f'jaxgan ships no classifier for dataset {dataset!r} (only for '
                       f'{sorted(os.listdir(classifier.WEIGHTS_ROOT))}); use '
                       f'--extractor=inception')
    model, params, _ = classifier.load(path)
    return classifier.extractor(model, params), reference.params_digest(params)
  if name == 'inception':
    return inception.load_extractor(inception_weights)
  raise ValueError(f'unknown extractor {name!r}; expected one of {list(EXTRACTORS)}')


def make_style_generate(config, generator, *, batch_size: int = 500
                        ) -> Callable[..., tuple[np.ndarray, None]]:
  """``generate(state, key, num) -> (samples, None)`` of a StyleGAN2/PGGAN run.

  :func:`jaxgan.style_train.make_sampler` (G's moving average; StyleGAN2 at the config's
  ``train.truncation_psi``, PGGAN at the stage and ``alpha`` of the last step), batch ``i`` of
  ``batch_size`` from ``fold_in(key, i)``; the 32x32 zero-padded samples cropped back to the
  data's 28x28 (:func:`jaxgan.style_train.to_data_size`), the shape the classifier and the
  reference images have. Unconditional: no labels.
  """
  draw = style_train.make_sampler(config, generator)

  def generate(state, key: jax.Array, num: int):
    parts = [draw(state, jax.random.fold_in(key, i), min(batch_size, num - start))
             for i, start in enumerate(range(0, num, batch_size))]
    return style_train.to_data_size(np.concatenate(parts)), None

  return generate


def _trainer_of(workdir: str) -> str | None:
  """``config.trainer`` of the run in ``workdir`` (None: jaxgan.train's GANs, or no
  ``config.json``, which :func:`jaxgan.sample.load_run` then reports)."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f).get('trainer')


def evaluate_run(workdir: str, *, metric_names: Sequence[str] = METRICS,
                 extractor: str = 'classifier', inception_weights: str | None = None,
                 num_samples: int = 50_000, seed: int = 0, split: str = 'train',
                 data_dir: str | None = None, download: bool | None = None,
                 cache_dir: str | None = None, write: bool = True) -> dict:
  """Evaluates the latest checkpoint of ``workdir`` (see the module docstring).

  Args:
    workdir: a run of ``jaxgan.main`` (``config.json``, ``checkpoints/``).
    metric_names: some of :data:`METRICS`.
    extractor, inception_weights: see :func:`load_extractor`.
    num_samples: generated samples, and real images (the first of ``split``).
    seed: ``PRNGKey(seed)`` draws the latents.
    split: the real images' split.
    data_dir, download: where TFDS finds the data (default: the run's ``config.data``).
    cache_dir: the reference-feature cache (default :func:`jaxgan.eval.reference.cache_root`).
    write: write ``workdir/eval.json``.

  Returns:
    ``{'step', 'dataset', 'extractor', 'weights_digest', 'num_samples', 'seed', 'split', 'ema',
    'reference': {'path', 'cached', 'num_examples'}, 'metrics': {name: float}}``.

  Raises:
    ValueError: unknown metrics or extractor, ``num_samples < 4`` (precision/recall need
      ``k + 1``), a dataset without images, a ``config.trainer`` other than StyleGAN2's and
      PGGAN's (pix2pix, CycleGAN, SRGAN, the density families, semi-supervised: named).
  """
  names = evaluator.check_metrics(metric_names)
  if num_samples < 4:
    raise ValueError(f'num_samples must be >= 4 (k-NN precision/recall with k=3 needs 4), got '
                     f'{num_samples}')
  trainer = _trainer_of(workdir)  # Before load_run: other trainers' models are built otherwise.
  if trainer and trainer not in style_train.SYSTEMS:
    raise ValueError(f'jaxgan.eval evaluates image GANs of jaxgan.train and '
                     f'{"/".join(style_train.SYSTEMS)} runs; config.trainer={trainer!r} is not '
                     f'supported')
  config, generator, state = sample.load_run(workdir)
  dataset = config.data.name
  if dataset not in data_lib.IMAGE_SHAPES:
    raise ValueError(f'jaxgan.eval evaluates image GANs; config.data.name={dataset!r}')
  features_of, digest = load_extractor(extractor, dataset, inception_weights=inception_weights)
  real = reference.reference_features(
      dataset, extractor=features_of, extractor_name=extractor, weights_digest=digest,
      split=split, num_examples=num_samples,
      data_dir=config.data.get('data_dir') if data_dir is None else data_dir,
      download=bool(config.data.get('download', False)) if download is None else download,
      cache_dir=cache_dir)
  generate = (make_style_generate(config, generator) if trainer
              else evaluator.make_generate(config, generator))
  fake, labels = generate(state, jax.random.PRNGKey(seed), num_samples)
  fake_features = features_of.features(fake)
  probs = features_of.probs(fake) if ('is' in names or labels is not None) else None
  results = {
      'step': int(state.step), 'dataset': dataset, 'extractor': extractor,
      'weights_digest': digest, 'num_samples': num_samples, 'seed': seed, 'split': split,
      'ema': bool(config.train.get('ema_decay', 0.0)),
      'reference': {'path': real.path, 'cached': real.cached,
                    'num_examples': int(real.features.shape[0])},
      'metrics': evaluator.score(fake_features, real, names=names, probs=probs,
                       labels=labels if extractor == 'classifier' else None)}
  if write:
    with open(os.path.join(workdir, EVAL_FILE), 'w') as f:
      json.dump(results, f, indent=2)
  return results


def markdown_table(results: dict) -> str:
  """One Markdown row per metric: ``| metric | value |``, then the run it came from."""
  lines = ['| metric | value |', '|---|---:|']
  lines += [f'| {name} | {value:.6g} |' for name, value in results['metrics'].items()]
  lines.append('')
  lines.append(f"step {results['step']}, {results['num_samples']} samples, extractor "
               f"{results['extractor']}, {results['dataset']}/{results['split']} reference"
               f"{' (cached)' if results['reference']['cached'] else ''}")
  return '\n'.join(lines)
