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
import platform
import shutil
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import jax  # noqa: E402

from jaxgan import data as data_lib  # noqa: E402
from jaxgan import loop, metrics, sample, train, visualize  # noqa: E402
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
    state = train.train_and_evaluate(
        config, run_dir, should_stop=lambda step: time.process_time() - cpu0 >= cpu_budget_s)
    wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
  finally:
    if workdir is None:
      shutil.rmtree(run_dir, ignore_errors=True)
  generator = train.build_models(config)[0]
  return generator, state, int(state.step), wall_s, cpu_s


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
    generate = evaluator.make_generate(config, generator)
    fake, labels = generate(state, jax.random.PRNGKey(1234), FLAGS.num_samples)
    scores = evaluator.image_metrics(fake, extractor=extractor, reference_stats=train_stats,
                                     labels=labels)
    row = {'config': name, 'overrides': [o for o in FLAGS.overrides if o.startswith(name + '.')],
           'steps': steps, 'wall_s': round(wall_s, 1), 'cpu_s': round(cpu_s, 1),
           'batch_size': config.train.batch_size, 'ema_decay': config.train.ema_decay, **scores}
    print(row, flush=True)
    results.append(row)
    if FLAGS.samples_dir:
      key = jax.random.PRNGKey(0)
      if config.model.num_classes:
        images = sample.class_grid_images(config, generator, state, key, columns=10)
      else:
        images = sample.grid_images(config, generator, state, key, rows=8, columns=8)
      visualize.save_image_grid(os.path.join(FLAGS.samples_dir, f'{name}_samples.png'), images,
                                columns=10 if config.model.num_classes else 8)

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
  table = '\n'.join(lines)
  print(table)
  if FLAGS.out:
    os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
    with open(FLAGS.out, 'w') as f:
      json.dump({'command': ' '.join(['python', *sys.argv]), 'load_average_end': os.getloadavg(),
                 'results': results, 'reference': reference, 'num_samples': FLAGS.num_samples,
                 'cpu_budget_s': FLAGS.cpu_budget_s, 'classifier': classifier_info,
                 'machine': {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
                             'jax': jax.__version__, 'backend': jax.default_backend()},
                 'table': table}, f, indent=2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
