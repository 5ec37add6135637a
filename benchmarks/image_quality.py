"""Image-GAN quality on real MNIST for a fixed CPU budget: MLP GAN vs DCGAN vs conditional DCGAN.

    python benchmarks/image_quality.py --data_dir=../shared/data/tensorflow_datasets \
        --cpu_budget_s=900 --out=benchmarks/results/image_quality.json \
        --samples_dir=benchmarks/results

Each of ``configs/mlp_mnist.py``, ``configs/dcgan_mnist.py`` and ``configs/cgan_mnist.py`` trains
(from scratch, as its config says, on one device) until this process has spent
``--cpu_budget_s`` CPU seconds on it (CPU time, not wall time: the machine may be shared) or its
``train.num_steps`` are done. Then ``--num_samples`` samples (EMA weights where the config keeps
them) are scored with jaxgan's MNIST classifier (``jaxgan/eval/weights/mnist``):

* classifier FID against the train split's features (all 60,000 images); the floor is the test
  split's own FID against train (what a perfect generator would score, up to sample size);
* classifier score (Inception-style; the test split's is the reference);
* label accuracy (conditional models): how often the classifier sees the digit G was asked for.

Prints a Markdown table, writes the numbers to ``--out`` and a sample grid per model (a class
grid for the conditional model) to ``--samples_dir``.

Training is :func:`jaxgan.train.train_and_evaluate` itself (its chunks, the whole split on the
device), in a temporary workdir (or ``--workdir/<config>``), with the budget as its
``should_stop``: asked after each chunk (``train.log_every`` steps here), so a run may overshoot
the budget by up to one chunk, and the budget counts everything the call does (loading the split
onto the device, compiling, the final sample grid and checkpoint). Periodic sampling,
checkpointing and evaluation are turned off for the run (the benchmark scores the model itself);
the last step still samples and checkpoints once.

StyleGAN2 and PGGAN (``--configs=dcgan_mnist,pggan_mnist,stylegan2_mnist``, the issue's table):
trained by :func:`jaxgan.style_train.train_and_evaluate` under the same budget; their 32x32
samples (a PGGAN stopped at a lower stage: nearest-upsampled to 32x32) are cropped back to the
digits' 28x28 (:func:`jaxgan.style_train.to_data_size`) before scoring. StyleGAN2's row also gets
:func:`stylegan2_extras`: classifier FID at truncations ``--psis``, the fraction of style-mixed
images (coarse styles from one source, fine from another; noise off) that the classifier assigns
to the coarse source's digit and to the fine source's, and the perceptual path length in Z and in
W (arXiv:1812.04948, Section 4.2) with the classifier's features.

Data order: the image batches now come from the device-resident shuffle
(:func:`jaxgan.data.batch_indices`), not from the ``tf.data`` stream
(:func:`jaxgan.data.image_batches`) that the results files written before the chunked driver
were trained on: the same seed gives a different order of batches, so a rerun's numbers can
differ from those files by run-to-run noise.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import jax  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import data as data_lib  # noqa: E402
from jaxgan import (  # noqa: E402
  latent,
  loop,
  metrics,
  sample,
  style_train,
  stylegan2,
  train,
  visualize,
)
from jaxgan.eval import classifier, evaluator  # noqa: E402

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'configs')

FLAGS = flags.FLAGS


def load_config(name: str):
  spec = importlib.util.spec_from_file_location(name, os.path.join(CONFIG_DIR, f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def apply_overrides(name: str, config, overrides) -> None:
  """Sets ``config`` fields from ``NAME.FIELD=VALUE`` strings addressed to config ``name``."""
  for item in overrides:
    target, sep, value = item.partition('=')
    config_name, _, field = target.partition('.')
    if not sep or not field:
      raise ValueError(f'--overrides entry {item!r} is not CONFIG.FIELD=VALUE')
    if config_name == name:
      try:
        value = ast.literal_eval(value)
      except (ValueError, SyntaxError):
        pass  # a plain string
      config.update_from_flattened_dict({field: value})


def budget_config(config):
  """A copy of ``config`` that samples and checkpoints only at its last step and never evaluates.

  Those are the driver's periodic actions; here they would only cost CPU time out of the budget
  (the benchmark samples and scores the final model itself). The new intervals are multiples of
  ``train.log_every`` past ``train.num_steps``, so the chunks stay ``log_every`` steps long
  (:func:`jaxgan.loop.chunk_length`) and the budget is checked that often.
  """
  config = config.copy_and_resolve_references()
  t = config.train
  past_end = t.log_every * -(-t.num_steps // t.log_every)
  t.sample_every = t.checkpoint_every = past_end
  t.eval_every = 0
  assert loop.chunk_length(config) == t.log_every
  return config


def train_for_budget(config, cpu_budget_s: float, *, workdir: str | None = None):
  """Runs ``train.train_and_evaluate`` until ``cpu_budget_s`` CPU seconds or its num_steps.

  The budget is ``should_stop``: the run ends after the first chunk at which this process has
  spent ``cpu_budget_s`` CPU seconds since the call began. ``workdir`` (default: a temporary
  directory, removed afterwards) must not hold an earlier run, which would be resumed.

  Returns ``(generator, state, steps, wall_s, cpu_s)``: ``steps`` is the trained state's step,
  ``wall_s`` and ``cpu_s`` the whole call's wall and CPU time.
  """
  config = budget_config(config)
  if workdir is not None and os.path.isdir(workdir) and os.listdir(workdir):
    raise ValueError(f'{workdir} is not empty: train_and_evaluate would resume the run in it')
  run_dir = workdir or tempfile.mkdtemp(prefix='image_quality_')
  try:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    trainer = style_train if is_style(config) else train
    state = trainer.train_and_evaluate(
        config, run_dir, should_stop=lambda step: time.process_time() - cpu0 >= cpu_budget_s)
    wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
  finally:
    if workdir is None:
      shutil.rmtree(run_dir, ignore_errors=True)
  generator = (style_train if is_style(config) else train).build_models(config)[0]
  return generator, state, int(state.step), wall_s, cpu_s


def is_style(config) -> bool:
  """A StyleGAN2 or PGGAN config (:mod:`jaxgan.style_train`)."""
  return config.get('trainer') in style_train.SYSTEMS


def style_samples(config, generator, state, key, num: int, *, psi=None,
                  batch_size: int = 500) -> np.ndarray:
  """``num`` samples of a StyleGAN2/PGGAN run (:func:`jaxgan.style_train.make_sampler`, batch
  ``i`` from ``fold_in(key, i)``), as the classifier's 28x28 inputs."""
  draw = style_train.make_sampler(config, generator)
  parts = [draw(state, jax.random.fold_in(key, i), min(batch_size, num - start), psi=psi)
           for i, start in enumerate(range(0, num, batch_size))]
  return style_train.to_data_size(np.concatenate(parts))


def _synthesis(generator, state):
  """``(mapping(z), synthesize(ws))`` of G's moving average, jitted, no noise."""
  params = state.ema_g_params if state.ema_g_params else state.g_params
  variables = {'params': params, 'batch_stats': {'w_avg': state.g_batch_stats['w_avg']}}
  mapping = jax.jit(lambda z: generator.apply(variables, z, method=stylegan2.Generator.mapping))
  synthesize = jax.jit(lambda ws: generator.apply(variables, ws,
                                                  method=stylegan2.Generator.synthesize))
  return mapping, synthesize


def mixing_fractions(extractor, generator, state, key, num: int, *, latent_dim: int,
                     cutoff: int | None = None) -> dict[str, float]:
  """Style mixing read by the classifier: ``num`` pairs of sources, the mixed image taking
  style inputs ``[0, cutoff)`` (default half: 4x4 and 8x8) from the coarse source and the rest
  from the fine one (noise off). Returns the fractions of mixed images whose predicted digit is
  the coarse source's and the fine source's (a digit's identity lives in its coarse styles if
  the first is high)."""
  mapping, synthesize = _synthesis(generator, state)
  cutoff = generator.num_ws // 2 if cutoff is None else cutoff
  k_coarse, k_fine = jax.random.split(key)
  ws_coarse = mapping(jax.random.normal(k_coarse, (num, latent_dim)))
  ws_fine = mapping(jax.random.normal(k_fine, (num, latent_dim)))
  label = lambda ws: np.argmax(extractor.probs(style_train.to_data_size(synthesize(ws))), axis=-1)
  mixed = label(stylegan2.style_mix(ws_coarse, ws_fine, cutoff))
  return {'mix_coarse_fraction': float(np.mean(mixed == label(ws_coarse))),
          'mix_fine_fraction': float(np.mean(mixed == label(ws_fine)))}


def perceptual_path_length(extractor, generator, state, key, num: int, *, latent_dim: int,
                           space: str, epsilon: float = 1e-4) -> float:
  r"""Perceptual path length (arXiv:1812.04948, Section 4.2) with the classifier's features.

  .. math::
    l = \mathbb E\Big[\tfrac{1}{\epsilon^2}\,
        \lVert \phi(g(p(t))) - \phi(g(p(t + \epsilon))) \rVert^2\Big], \quad t \sim U(0, 1)

  with ``p`` the slerp between ``z_1, z_2 ~ N(0, I)`` mapped to W (``space='z'``) or the lerp
  between their ``w``\ s (``space='w'``), ``g`` the synthesis network without noise and ``phi``
  the classifier's features (in place of the paper's VGG16 LPIPS). As the paper, the pairs
  outside the 1st-99th percentiles are dropped before the mean.
  """
  mapping, synthesize = _synthesis(generator, state)
  k1, k2, kt = jax.random.split(key, 3)
  z1, z2 = (jax.random.normal(k, (num, latent_dim)) for k in (k1, k2))
  t = jax.random.uniform(kt, (num,))
  if space == 'z':
    path = jax.vmap(latent.slerp)
    a, b = mapping(path(z1, z2, t)), mapping(path(z1, z2, t + epsilon))
  elif space == 'w':
    w1, w2, path = mapping(z1), mapping(z2), jax.vmap(latent.lerp)
    a, b = path(w1, w2, t), path(w1, w2, t + epsilon)
  else:
    raise ValueError(f"space must be 'z' or 'w', got {space!r}")
  features = lambda ws: np.asarray(extractor.features(style_train.to_data_size(synthesize(ws))),
                                   np.float64)
  d = np.sum(np.square(features(a) - features(b)), axis=-1) / epsilon**2
  lo, hi = np.percentile(d, [1, 99])
  return float(np.mean(d[(d >= lo) & (d <= hi)]))


def stylegan2_extras(config, generator, state, *, extractor, train_stats, key, num: int,
                     psis=(0.5, 0.7, 1.0), num_pairs: int = 2000) -> dict:
  """The StyleGAN2 row's extras: ``fid_vs_psi`` (classifier FID of ``num`` samples at each
  truncation), :func:`mixing_fractions` and ``ppl_z``/``ppl_w``
  (:func:`perceptual_path_length`) on ``num_pairs`` pairs."""
  k_fid, k_mix, k_ppl = jax.random.split(key, 3)
  fid = {}
  for psi in psis:
    fake = style_samples(config, generator, state, k_fid, num, psi=psi)
    fid[str(psi)] = metrics.frechet_distance(
        *metrics.gaussian_statistics(extractor.features(fake)), *train_stats)
  z_dim = config.model.latent_dim
  return {'fid_vs_psi': fid,
          **mixing_fractions(extractor, generator, state, k_mix, num_pairs, latent_dim=z_dim),
          'ppl_z': perceptual_path_length(extractor, generator, state, k_ppl, num_pairs,
                                          latent_dim=z_dim, space='z'),
          'ppl_w': perceptual_path_length(extractor, generator, state, k_ppl, num_pairs,
                                          latent_dim=z_dim, space='w')}


def _define_flags() -> None:
  """The script's flags; defined only when it runs as a program, so importing it (the test)
  defines none (``jaxgan.main`` has its own ``--workdir``)."""
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir with prepared MNIST.')
  flags.DEFINE_list('configs', ['mlp_mnist', 'dcgan_mnist', 'cgan_mnist'], 'Configs to train.')
  flags.DEFINE_float('cpu_budget_s', 900.0, 'CPU seconds of training per config.')
  flags.DEFINE_integer('num_samples', 10_000, 'Generated samples per model for the metrics.')
  flags.DEFINE_string('out', None, 'JSON output path.')
  flags.DEFINE_string('samples_dir', None, 'Where to write one sample PNG per config.')
  flags.DEFINE_string('workdir', None, 'Train each config in WORKDIR/<config> (must not hold a '
                      'run: it would resume); by default in a temporary directory, removed after.')
  flags.DEFINE_list('psis', ['0.5', '0.7', '1.0'], 'StyleGAN2: truncations of the FID curve.')
  flags.DEFINE_list('overrides', [], 'Config fields to change, as CONFIG.FIELD=VALUE, e.g. '
                    'cgan_mnist.train.num_steps=8000,cgan_mnist.model.features=64.')


def main(argv):
  del argv
  extractor = classifier.shipped_extractor('mnist')
  if extractor is None:
    raise SystemExit('no shipped MNIST classifier; run python -m jaxgan.eval.train_classifier')
  with open(os.path.join(classifier.weights_dir('mnist'), 'info.json')) as f:
    classifier_info = json.load(f)
  t0 = time.perf_counter()
  train_split = data_lib.image_arrays('mnist', split='train', data_dir=FLAGS.data_dir,
                                      download=False)
  test_split = data_lib.image_arrays('mnist', split='test', data_dir=FLAGS.data_dir,
                                     download=False)
  train_stats = metrics.gaussian_statistics(extractor.features(train_split['x']))
  test_probs = extractor.probs(test_split['x'])
  reference = {
      'test_vs_train_fid': metrics.frechet_distance(
          *metrics.gaussian_statistics(extractor.features(test_split['x'])), *train_stats),
      'test_classifier_score': metrics.inception_score(test_probs),
      'test_label_accuracy': metrics.label_accuracy(test_probs, test_split['label']),
  }
  if FLAGS.num_samples < test_split['x'].shape[0]:
    # The floor of FID at this sample size: num_samples test images against train (with all
    # 10,000 test images it would be test_vs_train_fid itself).
    reference['test_subset_vs_train_fid'] = metrics.frechet_distance(
        *metrics.gaussian_statistics(extractor.features(test_split['x'][:FLAGS.num_samples])),
        *train_stats)
  print(f'reference statistics in {time.perf_counter() - t0:.0f}s: {reference}', flush=True)

  results = []
  for name in FLAGS.configs:
    config = load_config(name)
    config.data.data_dir = FLAGS.data_dir
    apply_overrides(name, config, FLAGS.overrides)
    print(f'{name}: training for {FLAGS.cpu_budget_s:.0f} CPU seconds', flush=True)
    workdir = os.path.join(FLAGS.workdir, name) if FLAGS.workdir else None
    generator, state, steps, wall_s, cpu_s = train_for_budget(config, FLAGS.cpu_budget_s,
                                                              workdir=workdir)
    if is_style(config):
      fake, labels = style_samples(config, generator, state, jax.random.PRNGKey(1234),
                                   FLAGS.num_samples), None
    else:
      generate = evaluator.make_generate(config, generator)
      fake, labels = generate(state, jax.random.PRNGKey(1234), FLAGS.num_samples)
    scores = evaluator.image_metrics(fake, extractor=extractor, reference_stats=train_stats,
                                     labels=labels)
    if config.get('trainer') == 'stylegan2':
      scores.update(stylegan2_extras(config, generator, state, extractor=extractor,
                                     train_stats=train_stats, key=jax.random.PRNGKey(99),
                                     num=FLAGS.num_samples,
                                     psis=[float(p) for p in FLAGS.psis]))
    row = {'config': name, 'overrides': [o for o in FLAGS.overrides if o.startswith(name + '.')],
           'steps': steps, 'wall_s': round(wall_s, 1), 'cpu_s': round(cpu_s, 1),
           'batch_size': config.train.batch_size, 'ema_decay': config.train.ema_decay, **scores}
    print(row, flush=True)
    results.append(row)
    if FLAGS.samples_dir:
      key = jax.random.PRNGKey(0)
      if is_style(config):
        images = style_samples(config, generator, state, key, 64)
      elif config.model.get('num_classes', 0):
        images = sample.class_grid_images(config, generator, state, key, columns=10)
      else:
        images = sample.grid_images(config, generator, state, key, rows=8, columns=8)
      visualize.save_image_grid(os.path.join(FLAGS.samples_dir, f'{name}_samples.png'), images,
                                columns=10 if config.model.get('num_classes', 0) else 8)
      if config.get('trainer') == 'stylegan2':
        images = sample.style_mix_images(config, generator, state, key, rows=6, columns=6)
        visualize.save_image_grid(os.path.join(FLAGS.samples_dir, f'{name}_style_mix.png'),
                                  images, columns=7)

  header = ('| config | steps | wall (s) | CPU (s) | classifier FID | classifier score | '
            'label accuracy |\n|---|---:|---:|---:|---:|---:|---:|')
  lines = [header]
  for r in results:
    accuracy = f'{r["label_accuracy"]:.3f}' if 'label_accuracy' in r else '-'
    lines.append(f'| {r["config"]} | {r["steps"]} | {r["wall_s"]:.0f} | {r["cpu_s"]:.0f} | '
                 f'{r["classifier_fid"]:.2f} | {r["classifier_score"]:.2f} | {accuracy} |')
  lines.append(f'| MNIST test set (reference) | - | - | - | {reference["test_vs_train_fid"]:.2f} '
               f'| {reference["test_classifier_score"]:.2f} | '
               f'{reference["test_label_accuracy"]:.3f} |')
  for r in results:
    if 'ppl_w' in r:
      lines.append(f'\n{r["config"]}: FID vs psi {r["fid_vs_psi"]}, mixed images with the coarse '
                   f'source\'s digit {r["mix_coarse_fraction"]:.3f} (the fine source\'s '
                   f'{r["mix_fine_fraction"]:.3f}), PPL in Z {r["ppl_z"]:.1f}, in W '
                   f'{r["ppl_w"]:.1f}')
  table = '\n'.join(lines)
  print(table)
  if FLAGS.out:
    os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
    with open(FLAGS.out, 'w') as f:
      json.dump({'command': ' '.join(['python', *sys.argv]), 'load_average_end': os.getloadavg(),
                 'results': results, 'reference': reference, 'num_samples': FLAGS.num_samples,
                 'cpu_budget_s': FLAGS.cpu_budget_s, 'classifier': classifier_info,
                 'machine': machine.describe(),
                 'table': table}, f, indent=2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
