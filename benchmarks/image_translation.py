"""Image-to-image translation where the right answer is known: pix2pix and CycleGAN on MNIST.

    python benchmarks/image_translation.py --data_dir=../shared/data/tensorflow_datasets \
        --task=dilate --out=benchmarks/results/image_translation_dilate.json \
        --samples_dir=benchmarks/results

The task is a fixed transform ``T`` (:mod:`jaxgan.translation`; ``dilate``: MNIST <-> thick
MNIST). CycleGAN trains on unpaired domains, ``A = train[:30000]`` and ``B = T(train[30000:])``
(``configs/cyclegan_mnist_thick.py`` with ``task.transform=T``); on the test split the true
pairs ``(x, T(x))`` are known, so each row is scored on the first ``--num_test`` test digits:

* ``psnr_ab``/``ssim_ab``: ``G(x)`` against the truth ``T(x)`` (:func:`jaxgan.metrics.psnr`,
  :func:`jaxgan.metrics.ssim`, images in [-1, 1]); ``psnr_ba``/``ssim_ba``: ``F(T(x))`` against
  ``x`` (rows with a map back). An image reproduced exactly has an infinite PSNR; each image's
  PSNR is capped at 100 dB before the mean, so the ``exact`` row reads 100;
* ``accuracy_ab``: the shipped MNIST classifier's accuracy on ``G(x)`` against the labels of
  ``x`` and its 10x10 confusion matrix (rows: true digit, columns: predicted), which catches a
  consistent permutation of digits that a small cycle loss would hide; ``accuracy_ba`` on
  ``F(T(x))``;
* the CPU and wall seconds of training.

Rows (``--rows``): ``identity`` (``G(x) = x``), ``exact`` (``G = T``, and ``F = T^-1`` where it
exists: the ceiling), ``pix2pix`` (trained on the pairs ``(x, T(x))`` of the whole training
split: the supervised ceiling), ``cyclegan`` (full), and the ablations of the CycleGAN paper's
Table 4: ``gan_alone`` (``cycle_weight=0``), ``cycle_alone`` (``gan_weight=0``),
``no_identity`` (``identity_weight=0``). Each trained row runs ``--cyclegan_steps`` or
``--pix2pix_steps`` steps from seed ``--seed`` through the system's ``train_and_evaluate`` (the
one driver), in a temporary workdir. The JSON is rewritten after every row, with the load
average at the start and end.
"""

from __future__ import annotations

import functools
import json
import os
import runpy
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

from jaxgan import cyclegan, metrics, pix2pix, translation, visualize  # noqa: E402
from jaxgan import data as data_lib  # noqa: E402
from jaxgan.eval import classifier  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
ROWS = ('identity', 'exact', 'pix2pix', 'cyclegan', 'gan_alone', 'cycle_alone', 'no_identity')
ABLATIONS = {'cyclegan': {}, 'gan_alone': {'cycle_weight': 0.0},
             'cycle_alone': {'gan_weight': 0.0}, 'no_identity': {'identity_weight': 0.0}}
INVERSES = {'invert': translation.invert,
            'rotate90': lambda x: translation.rotate90(translation.rotate90(
                translation.rotate90(x)))}
FLAGS = flags.FLAGS


def _config(name: str):
  return runpy.run_path(os.path.join(ROOT, 'configs', f'{name}.py'))['get_config']()


def row_config(row: str, *, task: str, steps: int, seed: int, data_dir: str | None):
  """The config a trained row runs: CycleGAN (with its ablation) or supervised pix2pix."""
  if row == 'pix2pix':
    config = _config('pix2pix_mnist_halves')  # MNIST pix2pix; the task below replaces halves.
    config.task.direction = 'to_transformed'
  else:
    config = _config('cyclegan_mnist_thick')
    config.loss.update(ABLATIONS[row])
  config.task.transform = task
  config.seed = seed
  config.data.data_dir = data_dir
  t = config.train
  t.num_steps = steps
  t.sample_every = t.checkpoint_every = t.log_every * -(-steps // t.log_every)
  return config


def score(forward, backward, test: dict[str, np.ndarray], labels: np.ndarray, extractor
          ) -> dict:
  """The row's metrics: ``forward(x) ~ T(x)`` and, with ``backward``, ``backward(T(x)) ~ x``."""
  out = {}
  for name, fn, source, target in (('ab', forward, test['x'], test['y']),
                                   ('ba', backward, test['y'], test['x'])):
    if fn is None:
      continue
    made = np.concatenate([np.asarray(fn(source[i:i + 500]))
                           for i in range(0, source.shape[0], 500)])
    predicted = np.argmax(extractor.probs(made), axis=-1)
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    out.update({f'psnr_{name}': float(np.mean(np.minimum(metrics.psnr(made, target), 100.0))),
                f'ssim_{name}': float(np.mean(metrics.ssim(made, target))),
                f'accuracy_{name}': float(np.mean(predicted == labels)),
                f'confusion_{name}': confusion.tolist()})
  return out


def train_row(row: str, config):
  """Trains a row in a temporary workdir; returns ``(forward, backward, steps, cpu_s, wall_s)``."""
  system = pix2pix if config.trainer == 'pix2pix' else cyclegan
  run_dir = tempfile.mkdtemp(prefix=f'translation_{row}_')
  try:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    state = system.train_and_evaluate(config, run_dir)
    wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
  finally:
    shutil.rmtree(run_dir, ignore_errors=True)
  generator = system.build_models(config)[0]
  if system is pix2pix:
    key = jax.random.PRNGKey(1)
    forward = jax.jit(lambda x: pix2pix.translate(generator, state.g_params, x, key))
    return forward, None, int(state.step), cpu_s, wall_s
  apply = jax.jit(lambda p, x: generator.apply({'params': p}, x, train=False))
  return (functools.partial(apply, state.g_params['a_to_b']),
          functools.partial(apply, state.g_params['b_to_a']), int(state.step), cpu_s, wall_s)


def _define_flags() -> None:
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir with prepared MNIST.')
  flags.DEFINE_enum('task', 'dilate', ['dilate', 'invert', 'rotate90'], 'The transform T.')
  flags.DEFINE_list('rows', list(ROWS), f'Rows, from {list(ROWS)}.')
  flags.DEFINE_integer('cyclegan_steps', 4000, 'Train steps of each CycleGAN row.')
  flags.DEFINE_integer('pix2pix_steps', 3000, 'Train steps of the supervised pix2pix row.')
  flags.DEFINE_integer('num_test', 2000, 'Test digits scored per row.')
  flags.DEFINE_integer('seed', 0, 'Seed of every trained row.')
  flags.DEFINE_string('out', None, 'JSON output path.')
  flags.DEFINE_string('samples_dir', None, 'Where to write x | G(x) | T(x) strips per row.')


def main(argv):
  del argv
  for row in FLAGS.rows:
    if row not in ROWS:
      raise ValueError(f'--rows: unknown row {row!r}; expected some of {list(ROWS)}')
  task = FLAGS.task
  images = data_lib.load_images('mnist', split='test', data_dir=FLAGS.data_dir, download=False)
  raw = images['image'][:FLAGS.num_test]
  labels = np.asarray(images['label'][:FLAGS.num_test])
  pairs = translation.pairs(raw, task, direction='to_transformed')
  test = {k: np.asarray(data_lib.to_unit_range(v)) for k, v in pairs.items()}
  extractor = classifier.shipped_extractor('mnist')
  to_unit = lambda u8: np.asarray(data_lib.to_unit_range(u8))
  from_unit = lambda x: np.clip(np.round((np.asarray(x) + 1) * 127.5), 0, 255).astype(np.uint8)
  result = {'command': ' '.join(['python', 'benchmarks/image_translation.py', *sys.argv[1:]]),
            'task': task, 'num_test': FLAGS.num_test, 'seed': FLAGS.seed,
            'machine': machine.describe(),
            'load_average_start': list(os.getloadavg()), 'rows': []}
  transform = translation.get_transform(task)
  for row in FLAGS.rows:
    entry = {'row': row}
    if row == 'identity':
      forward, backward = (lambda x: x), (lambda x: x)
    elif row == 'exact':
      forward = lambda x: to_unit(transform(from_unit(x)))
      inverse = INVERSES.get(task)
      backward = None if inverse is None else (
          lambda x, inverse=inverse: to_unit(inverse(from_unit(x))))
    else:
      steps = FLAGS.pix2pix_steps if row == 'pix2pix' else FLAGS.cyclegan_steps
      config = row_config(row, task=task, steps=steps, seed=FLAGS.seed, data_dir=FLAGS.data_dir)
      forward, backward, steps, cpu_s, wall_s = train_row(row, config)
      entry.update(steps=steps, cpu_s=cpu_s, wall_s=wall_s, loss=config.loss.to_dict())
    entry.update(score(forward, backward, test, labels, extractor))
    result['rows'].append(entry)
    print(f"{row:12s} psnr_ab {entry['psnr_ab']:6.2f}  ssim_ab {entry['ssim_ab']:.3f}  "
          f"acc_ab {entry['accuracy_ab']:.4f}  " + (
              f"psnr_ba {entry['psnr_ba']:6.2f}  acc_ba {entry['accuracy_ba']:.4f}"
              if 'psnr_ba' in entry else ''), flush=True)
    if FLAGS.samples_dir:
      strip = [test['x'][:8], np.asarray(forward(test['x'][:8])), test['y'][:8]]
      if backward is not None:
        strip.append(np.asarray(backward(test['y'][:8])))
      visualize.save_strips(os.path.join(FLAGS.samples_dir, f'translation_{task}_{row}.png'),
                            strip)
    result['load_average_end'] = list(os.getloadavg())
    if FLAGS.out:
      os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
      with open(FLAGS.out, 'w') as f:
        json.dump(result, f, indent=2)
  print('\n| row | steps | PSNR G(x)~T(x) | SSIM | classifier acc. G(x) | PSNR F(T(x))~x | '
        'acc. F(T(x)) | CPU s |')
  print('|---|---|---|---|---|---|---|---|')
  for e in result['rows']:
    back = (f"{e['psnr_ba']:.2f} | {e['accuracy_ba']:.4f}" if 'psnr_ba' in e else '– | –')
    print(f"| {e['row']} | {e.get('steps', '–')} | {e['psnr_ab']:.2f} | {e['ssim_ab']:.3f} | "
          f"{e['accuracy_ab']:.4f} | {back} | {e.get('cpu_s', 0):.0f} |")


if __name__ == '__main__':
  _define_flags()
  app.run(main)
