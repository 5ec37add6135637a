"""The generative families side by side on MNIST: likelihood, sample quality, blur and CPU time.

    python benchmarks/generative_families.py --data_dir=../shared/data/tensorflow_datasets \
        --cpu_budget_s=1800 --out=benchmarks/results/generative_families.json \
        --samples_dir=benchmarks/results

trains each of ``--models`` on this machine for ``--cpu_budget_s`` CPU seconds of training (or
its config's ``train.num_steps``), then measures it:

* ``vae``, ``pixelcnn``, ``realnvp``, ``rbm``: ``configs/<model>_mnist.py`` through the GANs'
  driver (:func:`jaxgan.train.drive` on :func:`jaxgan.density_train.build`'s pieces), with the
  test-set evaluation of :func:`jaxgan.density_train.make_evaluator` every ``train.eval_every``
  steps (the learning curve, its CPU time not counted in the budget) and its final form at the
  end: the VAE's ELBO and IWAE bound (``--iwae_k``, 5,000), PixelCNN's exact NLL, Real NVP's
  bits/dim of the dequantized pixels, the RBM's AIS log-likelihood (14,501 temperatures);
* ``dcgan``: ``configs/dcgan_mnist.py``, and ``dcgan_ema``: the same with a moving average of G's
  weights (decay 0.999; the recipe that brought ``cgan_mnist`` to classifier FID 11.3), trained
  by ``benchmarks/image_quality.py``'s :func:`train_for_budget`, or read from a finished run
  with ``--gan_workdirs=dcgan=runs/dcgan_mnist``. GANs have no likelihood.

For every model, ``--num_samples`` samples (10,000; PixelCNN 1,000 by default, since ancestral
sampling costs 784 forward passes per batch: ``--num_samples_per_model``) are scored with
jaxgan's MNIST classifier: classifier FID against the train split and classifier score
(:func:`jaxgan.eval.evaluator.image_metrics`), and the *blur* statistic, the fraction of pixels
strictly between 0.1 and 0.9 after mapping the samples to [0, 1], against the test images'. The
samples are each family's picture: the VAE's Bernoulli means, PixelCNN's binary draws, Real NVP's
quantized levels, the RBM's visible probabilities after 1,000 Gibbs sweeps, the GANs' tanh
outputs. The ``reference`` holds the floors at each sample size: the test split's FID against
train, and of the test split binarized once (what a perfect binary model would score).

Writes ``--out`` (JSON: per model the metrics, training and evaluation CPU seconds, steps,
learning curve, the published figure and its budget, load averages; rewritten after each
model) and a 64-sample grid per model, ``--samples_dir/generative_<model>.png``; prints a
Markdown table. The budget is ``should_stop``, asked after each chunk (``train.log_every``
steps), so a run overshoots by up to one chunk. Smoke run (seconds per model)::

    python benchmarks/generative_families.py --data_dir=../shared/data/tensorflow_datasets \
        --cpu_budget_s=3 --num_samples=200 --num_test=200 --iwae_k=5 \
        --overrides=rbm_mnist.eval.final_ais_num_betas=101,rbm_mnist.eval.sample_gibbs_steps=20 \
        --out=/tmp/generative_families.json --samples_dir=/tmp
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import image_quality  # noqa: E402
import jax  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import data as data_lib  # noqa: E402
from jaxgan import density_train, metrics, sample, train, visualize  # noqa: E402
from jaxgan.eval import classifier, evaluator  # noqa: E402

FLAGS = flags.FLAGS
DENSITY_MODELS = ('vae', 'pixelcnn', 'realnvp', 'rbm')
# GAN rows: (config, overrides).
GANS = {'dcgan': ('dcgan_mnist', {}), 'dcgan_ema': ('dcgan_mnist', {'train.ema_decay': 0.999})}
MODELS = (*DENSITY_MODELS, *GANS)
# Samples scored per model unless --num_samples_per_model says otherwise.
DEFAULT_NUM_SAMPLES = {'pixelcnn': 1000}
# The published test figures the issue compares with, and the budget each took.
PUBLISHED = {
    'vae': {'metric': 'test NLL (nats), IWAE bound with k = 5,000', 'value': 86.76,
            'source': 'Burda et al. 2015 (arXiv:1509.00519), Table 1: VAE, one stochastic '
                      'layer, trained with k = 1',
            'budget': '3,280 passes over the training set at batch 20 (the paper, Section 5)'},
    'pixelcnn': {'metric': 'test NLL (nats), exact', 'value': 81.30,
                 'source': 'van den Oord et al. 2016 (arXiv:1601.06759), Table 4: PixelCNN on '
                           'binarized MNIST',
                 'budget': "the paper's architecture (Table 1), GPU-trained; the training "
                           'time is not given with the table'},
    'realnvp': {'metric': 'test bits/dim of dequantized pixels', 'value': 1.06,
                'source': 'Real NVP on MNIST as tabulated in FFJORD (arXiv:1810.01367), '
                          'Table 2',
                'budget': 'a GPU-trained network many times the config\'s size; the training '
                          'time is not given with the table'},
    'rbm': {'metric': 'test log-likelihood (nats), AIS', 'value': -86.34,
            'source': 'Salakhutdinov & Murray 2008, Table 2: RBM with 500 hidden units, CD-25',
            'budget': 'the paper\'s long CD schedule (the number of CD steps raised gradually to '
                      '25); AIS with 14,500 intermediate temperatures'},
}


def _define_flags() -> None:
  """The script's flags; defined only when it runs as a program (importing it defines none)."""
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir with prepared MNIST.')
  flags.DEFINE_list('models', list(MODELS), f'Models to measure, of {list(MODELS)}.')
  flags.DEFINE_float('cpu_budget_s', 1800.0, 'CPU seconds of training per model.')
  flags.DEFINE_list('budgets', [], 'Per-model budgets, MODEL=SECONDS, e.g. pixelcnn=3600.')
  flags.DEFINE_integer('num_samples', 10_000, 'Samples per model for FID, score and blur.')
  flags.DEFINE_list('num_samples_per_model', [],
                    'Per-model sample counts, MODEL=N (default pixelcnn=1000).')
  flags.DEFINE_integer('num_test', 10_000, 'Test images for the likelihoods (eval.num_examples).')
  flags.DEFINE_integer('iwae_k', 5000, "Importance samples of the VAE's final IWAE bound.")
  flags.DEFINE_list('overrides', [], 'Config fields, CONFIG.FIELD=VALUE, e.g. '
                    'rbm_mnist.model.persistent=True,dcgan_mnist.train.batch_size=128.')
  flags.DEFINE_list('gan_workdirs', [], 'Read a GAN from a finished run instead of training it, '
                    'NAME=WORKDIR, e.g. dcgan=runs/dcgan_mnist.')
  flags.DEFINE_string('out', None, 'JSON output path.')
  flags.DEFINE_string('samples_dir', None, 'Where to write generative_<model>.png.')
  flags.DEFINE_string('workdir', None, 'Train each model in WORKDIR/<model> (must be empty); by '
                      'default a temporary directory, removed after.')


def _pairs(items, cast):
  out = {}
  for item in items:
    name, sep, value = item.partition('=')
    if not sep or name not in MODELS:
      raise ValueError(f'{item!r} is not MODEL=VALUE with MODEL in {list(MODELS)}')
    out[name] = cast(value)
  return out


def blur(images: np.ndarray) -> float:
  """The fraction of pixels strictly between 0.1 and 0.9 of images in [-1, 1] mapped to [0, 1]."""
  x01 = (np.asarray(images, np.float64) + 1.0) / 2.0
  return float(np.mean((x01 > 0.1) & (x01 < 0.9)))


def _fresh_workdir(root: str | None, name: str) -> tuple[str, bool]:
  if root:
    path = os.path.join(root, name)
    if os.path.isdir(path) and os.listdir(path):
      raise ValueError(f'{path} is not empty: the run would resume')
    return path, False
  return tempfile.mkdtemp(prefix=f'generative_{name}_'), True


def _budget_config(config):
  """Samples and checkpoints only at the end (the benchmark samples the model itself); the
  chunks stay ``gcd(log_every, eval_every)`` steps, so the budget is checked that often."""
  config = config.copy_and_resolve_references()
  t = config.train
  past_end = t.log_every * -(-t.num_steps // t.log_every)
  t.sample_every = t.checkpoint_every = past_end
  return config


class _CpuClock:
  """CPU seconds since ``start``, less those spent inside :meth:`excluded` calls."""

  def __init__(self):
    self.start, self.excluded_s = time.process_time(), 0.0

  def excluded(self, fn):
    def wrapped(*args, **kwargs):
      t0 = time.process_time()
      try:
        return fn(*args, **kwargs)
      finally:
        self.excluded_s += time.process_time() - t0
    return wrapped

  def training_s(self) -> float:
    return time.process_time() - self.start - self.excluded_s


def train_density(name: str, budget_s: float, *, data_dir: str | None, num_test: int,
                  iwae_k: int, overrides=(), workdir: str | None = None) -> tuple[dict, tuple]:
  """Trains ``configs/<name>_mnist.py`` for ``budget_s`` CPU seconds of training (evaluation and
  sampling not counted) and evaluates it finally; returns the row (without the sample metrics)
  and ``(run, state)``. ``overrides``: ``CONFIG.FIELD=VALUE`` strings; ``workdir``: train in
  ``workdir/<name>`` (kept) instead of a temporary directory."""
  config_name = f'{name}_mnist'
  config = image_quality.load_config(config_name)
  config.data.data_dir = data_dir
  config.eval.num_examples = num_test
  if name == 'vae':
    config.eval.iwae_k = iwae_k
  image_quality.apply_overrides(config_name, config, overrides)
  config = _budget_config(config)
  run = density_train.build(config)
  clock, curve = _CpuClock(), []

  def evaluate(state):
    out = run.evaluate(state, final=False)
    curve.append({'step': int(state.step), 'train_cpu_s': round(clock.training_s(), 1), **out})
    print(f'{name}: {curve[-1]}', flush=True)
    return out

  def save_samples(state, path, step):
    del step
    visualize.save_image_grid(path, run.sample(state, run.sample_key, 16))

  workdir, temporary = _fresh_workdir(workdir, name)
  load_start = os.getloadavg()
  wall0 = time.perf_counter()
  try:
    state = train.drive(
        config, workdir, state=run.state, train_step=run.train_step, source=run.source,
        step_key=run.step_key, save_samples=clock.excluded(save_samples),
        check_batch=lambda batch, step: density_train.check_batch(config, batch, step),
        evaluate=clock.excluded(evaluate) if config.train.eval_every else None,
        should_stop=lambda step: clock.training_s() >= budget_s)
    train_cpu_s, wall_s = clock.training_s(), time.perf_counter() - wall0
    with open(os.path.join(workdir, 'metrics.jsonl')) as f:
      losses = [{'step': r['step'], 'train_loss': r['g_loss']}
                for r in map(json.loads, f) if 'g_loss' in r]
  finally:
    if temporary:
      shutil.rmtree(workdir, ignore_errors=True)
  eval0 = time.process_time()
  final = run.evaluate(state, final=True)
  row = {'model': name, 'config': config_name,
         'overrides': [o for o in overrides if o.startswith(config_name + '.')],
         'steps': int(state.step), 'batch_size': config.train.batch_size,
         'train_cpu_s': round(train_cpu_s, 1), 'train_wall_s': round(wall_s, 1),
         'final_eval_cpu_s': round(time.process_time() - eval0, 1), 'test': final,
         'learning_curve': {'test': curve, 'train_loss': losses},
         'published': PUBLISHED[name], 'load_average_start': load_start}
  if name == 'vae':
    row['test']['nll_iwae'] = -final['test_iwae']
    row['iwae_k'] = config.eval.iwae_k
  elif name == 'rbm':
    row['test']['nll_ais'] = -final['test_log_likelihood']
  return row, (run, state)


def train_gan(name: str, budget_s: float, *, data_dir: str | None, overrides=(),
              read_from: str | None = None, workdir: str | None = None) -> tuple[dict, tuple]:
  """Trains the GAN ``name`` for ``budget_s`` CPU seconds (or reads the finished run in
  ``read_from``); returns its row and ``(config, generator, state)``."""
  config_name, fields = GANS[name]
  load_start = os.getloadavg()
  if read_from:
    config, generator, state = sample.load_run(read_from)
    row = {'model': name, 'config': config_name, 'read_from': read_from,
           'steps': int(state.step), 'train_cpu_s': None}
  else:
    config = image_quality.load_config(config_name)
    config.data.data_dir = data_dir
    config.update_from_flattened_dict(fields)
    image_quality.apply_overrides(config_name, config, overrides)
    workdir, temporary = _fresh_workdir(workdir, name)
    try:
      generator, state, steps, wall_s, cpu_s = image_quality.train_for_budget(
          config, budget_s, workdir=workdir)
      with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        losses = [{k: r[k] for k in ('step', 'd_loss', 'g_loss')}
                  for r in map(json.loads, f) if 'g_loss' in r]
    finally:
      if temporary:
        shutil.rmtree(workdir, ignore_errors=True)
    row = {'model': name, 'config': config_name,
           'overrides': [f'{k}={v}' for k, v in fields.items()] + [
               o for o in overrides if o.startswith(config_name + '.')],
           'steps': steps, 'batch_size': config.train.batch_size,
           'train_cpu_s': round(cpu_s, 1), 'train_wall_s': round(wall_s, 1),
           'learning_curve': {'train_loss': losses}}
  row.update(test=None, published=None, load_average_start=load_start)
  return row, (config, generator, state)


def _reference(extractor, train_stats, test_x, sizes) -> dict:
  """The floors: the test split's FID against train at each sample size, as grey levels and
  binarized once (seed 0), and its classifier score and blur."""
  binary = 2.0 * np.asarray(jax.random.bernoulli(jax.random.PRNGKey(0), (test_x + 1) / 2),
                            np.float32) - 1.0
  out = {'test_classifier_score': metrics.inception_score(extractor.probs(test_x)),
         'test_blur': blur(test_x), 'fid_floor': {}, 'binarized_fid_floor': {}}
  for n in sorted(set(sizes)):
    n = min(n, len(test_x))
    for key, x in (('fid_floor', test_x), ('binarized_fid_floor', binary)):
      out[key][str(n)] = metrics.frechet_distance(
          *metrics.gaussian_statistics(extractor.features(x[:n])), *train_stats)
  return out


def _table(rows, reference) -> str:
  lines = ['| model | steps | train CPU (s) | test likelihood | published (budget in the JSON) '
           '| classifier FID | classifier score | blur | samples |',
           '|---|---:|---:|---|---|---:|---:|---:|---:|']
  for r in rows:
    test, pub = r.get('test') or {}, r.get('published')
    if 'nll_iwae' in test:
      likelihood = f'NLL {test["nll_iwae"]:.2f} nats (IWAE-{r["iwae_k"]}; ELBO ' \
                   f'{test["test_elbo"]:.2f})'
    elif 'nll_ais' in test:
      likelihood = f'log-lik. {test["test_log_likelihood"]:.2f} nats (AIS ± ' \
                   f'{test["log_z_std_error"]:.2f})'
    elif r['model'] == 'realnvp':
      likelihood = f'{test["test_bits_per_dim"]:.3f} bits/dim'
    elif test:
      likelihood = f'NLL {test["test_nll"]:.2f} nats'
    else:
      likelihood = '-'
    published = f'{pub["value"]}' if pub else '-'
    cpu = f'{r["train_cpu_s"]:.0f}' if r.get('train_cpu_s') is not None else '-'
    lines.append(f'| {r["model"]} | {r["steps"]} | {cpu} | {likelihood} | {published} | '
                 f'{r["classifier_fid"]:.2f} | {r["classifier_score"]:.2f} | {r["blur"]:.3f} | '
                 f'{r["num_samples"]} |')
  n = max(reference['fid_floor'], key=int)
  lines.append(f'| MNIST test set ({n} images; binarized: FID '
               f'{reference["binarized_fid_floor"][n]:.2f}) | - | - | - | - | '
               f'{reference["fid_floor"][n]:.2f} | {reference["test_classifier_score"]:.2f} | '
               f'{reference["test_blur"]:.3f} | {n} |')
  return '\n'.join(lines)


def main(argv):
  del argv
  unknown = [m for m in FLAGS.models if m not in MODELS]
  if unknown:
    raise SystemExit(f'unknown --models {unknown}; expected some of {list(MODELS)}')
  budgets = _pairs(FLAGS.budgets, float)
  gan_workdirs = _pairs(FLAGS.gan_workdirs, str)
  sample_counts = {**DEFAULT_NUM_SAMPLES, **_pairs(FLAGS.num_samples_per_model, int)}
  sample_counts = {m: min(sample_counts.get(m, FLAGS.num_samples), FLAGS.num_samples)
                   for m in FLAGS.models}
  extractor = classifier.shipped_extractor('mnist')
  if extractor is None:
    raise SystemExit('no shipped MNIST classifier; run python -m jaxgan.eval.train_classifier')
  train_x = data_lib.image_arrays('mnist', split='train', data_dir=FLAGS.data_dir,
                                  download=False)['x']
  test_x = data_lib.image_arrays('mnist', split='test', data_dir=FLAGS.data_dir,
                                 download=False)['x']
  train_stats = metrics.gaussian_statistics(extractor.features(train_x))
  reference = _reference(extractor, train_stats, test_x, sample_counts.values())
  print(f'reference: {reference}', flush=True)
  rows = []
  for name in FLAGS.models:
    budget = budgets.get(name, FLAGS.cpu_budget_s)
    print(f'{name}: training for {budget:.0f} CPU seconds', flush=True)
    num = sample_counts[name]
    key = jax.random.PRNGKey(1234)
    if name in DENSITY_MODELS:
      row, (run, state) = train_density(name, budget, data_dir=FLAGS.data_dir,
                                        num_test=FLAGS.num_test, iwae_k=FLAGS.iwae_k,
                                        overrides=FLAGS.overrides, workdir=FLAGS.workdir)
      t0 = time.process_time()
      fake = run.sample(state, key, num)
    else:
      row, (config, generator, state) = train_gan(
          name, budget, data_dir=FLAGS.data_dir, overrides=FLAGS.overrides,
          read_from=gan_workdirs.get(name), workdir=FLAGS.workdir)
      t0 = time.process_time()
      fake, _ = evaluator.make_generate(config, generator)(state, key, num)
    row['sample_cpu_s'] = round(time.process_time() - t0, 1)
    row.update(evaluator.image_metrics(fake, extractor=extractor, reference_stats=train_stats),
               blur=blur(fake), num_samples=num, load_average_end=os.getloadavg())
    print(row, flush=True)
    rows.append(row)
    if FLAGS.samples_dir:
      visualize.save_image_grid(os.path.join(FLAGS.samples_dir, f'generative_{name}.png'),
                                fake[:64], columns=8)
    table = _table(rows, reference)
    if FLAGS.out:
      os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
      with open(FLAGS.out, 'w') as f:
        json.dump({'command': ' '.join(['python', *sys.argv]), 'results': rows,
                   'reference': reference, 'cpu_budget_s': FLAGS.cpu_budget_s,
                   'budgets': budgets, 'machine': machine.describe(),
                   'table': table}, f, indent=2)
  print(table)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
