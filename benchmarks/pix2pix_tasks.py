r"""pix2pix's paired tasks: L1 alone against L1 + cGAN on the same inputs (lecture 001's "blur").

    python benchmarks/pix2pix_tasks.py --data_dir=../shared/data/tensorflow_datasets \
        --tasks=halves,edges --out=benchmarks/results/pix2pix_tasks.json \
        --samples_dir=benchmarks/results

Tasks: ``halves`` (``configs/pix2pix_mnist_halves.py``: the whole MNIST digit from its top half)
and ``edges`` (``configs/pix2pix_fashion_edges.py``: the Fashion-MNIST item from its edge map).
Each is trained twice from the same seed for ``--steps`` steps through the config's
``train_and_evaluate`` (the one driver): ``l1_alone`` (``loss.gan_weight=0``: G regresses the
L1-optimal, per-pixel median completion) and ``pix2pix`` (the config: cGAN + 100 L1). On the
first ``--num_test`` test images, G's output against the truth:

* ``psnr``, ``ssim`` (:func:`jaxgan.metrics.psnr`, :func:`jaxgan.metrics.ssim`, [-1, 1]);
* ``grey_fraction``: the fraction of pixels of intermediate intensity (between 64 and 191 of
  255, ``|x| < 0.5`` in [-1, 1]), the blur the L1 loss leaves where many completions fit one
  input; the truth's own fraction is ``truth_grey_fraction``. On ``halves`` only the bottom
  half (rows 14-27, the part G must invent) is counted;
* ``accuracy`` (``halves``): the shipped MNIST classifier's accuracy on the completed digits
  against the labels (a completion of the wrong digit, or an unreadable one, lowers it);
  ``truth_accuracy`` is its accuracy on the real digits.

``--samples_dir`` gets ``pix2pix_<task>.png``: rows of input | L1 alone | L1 + cGAN | truth on
the same test inputs. The JSON is rewritten after every row, with the load average at the start
and the end.
"""

from __future__ import annotations

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

from jaxgan import data as data_lib  # noqa: E402
from jaxgan import metrics, pix2pix, translation, visualize  # noqa: E402
from jaxgan.eval import classifier  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
TASKS = {'halves': 'pix2pix_mnist_halves', 'edges': 'pix2pix_fashion_edges'}
ROWS = {'l1_alone': {'gan_weight': 0.0}, 'pix2pix': {}}
GREY = 0.5  # |x| < GREY in [-1, 1]: intensities 64..191 of 255.
FLAGS = flags.FLAGS


def task_config(task: str, row: str, *, steps: int, seed: int, data_dir: str | None):
  config = runpy.run_path(os.path.join(ROOT, 'configs', f'{TASKS[task]}.py'))['get_config']()
  config.loss.update(ROWS[row])
  config.seed = seed
  config.data.data_dir = data_dir
  t = config.train
  t.num_steps = steps
  t.sample_every = t.checkpoint_every = t.log_every * -(-steps // t.log_every)
  return config


def grey_fraction(x: np.ndarray, rows: slice) -> float:
  """The fraction of pixels of ``x[:, rows]`` (images in [-1, 1]) with ``|x| < GREY``."""
  return float(np.mean(np.abs(x[:, rows]) < GREY))


def main(argv):
  del argv
  for task in FLAGS.tasks:
    if task not in TASKS:
      raise ValueError(f'--tasks: unknown task {task!r}; expected some of {list(TASKS)}')
  extractor = classifier.shipped_extractor('mnist')
  result = {'command': ' '.join(['python', 'benchmarks/pix2pix_tasks.py', *sys.argv[1:]]),
            'steps': FLAGS.steps, 'num_test': FLAGS.num_test, 'seed': FLAGS.seed,
            'machine': machine.describe(),
            'load_average_start': list(os.getloadavg()), 'rows': []}
  for task in FLAGS.tasks:
    base = task_config(task, 'pix2pix', steps=FLAGS.steps, seed=FLAGS.seed,
                       data_dir=FLAGS.data_dir)
    images = data_lib.load_images(base.data.name, split='test', data_dir=FLAGS.data_dir,
                                  download=False)
    labels = np.asarray(images['label'][:FLAGS.num_test])
    test = translation.pairs(images['image'][:FLAGS.num_test], base.task.transform,
                             direction=base.task.direction)
    test = {k: np.asarray(data_lib.to_unit_range(v)) for k, v in test.items()}
    rows = slice(14, 28) if task == 'halves' else slice(None)
    outputs = {}
    for row in ROWS:
      config = task_config(task, row, steps=FLAGS.steps, seed=FLAGS.seed,
                           data_dir=FLAGS.data_dir)
      run_dir = tempfile.mkdtemp(prefix=f'pix2pix_{task}_{row}_')
      try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        state = pix2pix.train_and_evaluate(config, run_dir)
        wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
      finally:
        shutil.rmtree(run_dir, ignore_errors=True)
      generator = pix2pix.build_models(config)[0]
      forward = jax.jit(lambda x, p=state.g_params, g=generator: pix2pix.translate(
          g, p, x, jax.random.PRNGKey(1)))
      made = np.concatenate([np.asarray(forward(test['x'][i:i + 500]))
                             for i in range(0, FLAGS.num_test, 500)])
      outputs[row] = made
      entry = {'task': task, 'row': row, 'config': TASKS[task], 'loss': config.loss.to_dict(),
               'steps': int(state.step), 'cpu_s': cpu_s, 'wall_s': wall_s,
               'psnr': float(np.mean(np.minimum(metrics.psnr(made, test['y']), 100.0))),
               'ssim': float(np.mean(metrics.ssim(made, test['y']))),
               'grey_fraction': grey_fraction(made, rows),
               'truth_grey_fraction': grey_fraction(test['y'], rows)}
      if task == 'halves':
        entry['accuracy'] = float(np.mean(
            np.argmax(extractor.probs(made), axis=-1) == labels))
        entry['truth_accuracy'] = float(np.mean(
            np.argmax(extractor.probs(test['y']), axis=-1) == labels))
      result['rows'].append(entry)
      print(f"{task:7s} {row:9s} psnr {entry['psnr']:6.2f}  ssim {entry['ssim']:.3f}  grey "
            f"{entry['grey_fraction']:.3f} (truth {entry['truth_grey_fraction']:.3f})  "
            + (f"acc {entry['accuracy']:.4f} (truth {entry['truth_accuracy']:.4f})"
               if 'accuracy' in entry else '') + f"  cpu {cpu_s:.0f}s", flush=True)
      result['load_average_end'] = list(os.getloadavg())
      if FLAGS.out:
        os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
        with open(FLAGS.out, 'w') as f:
          json.dump(result, f, indent=2)
    if FLAGS.samples_dir and len(outputs) == len(ROWS):
      visualize.save_strips(os.path.join(FLAGS.samples_dir, f'pix2pix_{task}.png'),
                            [test['x'][:8], outputs['l1_alone'][:8], outputs['pix2pix'][:8],
                             test['y'][:8]])


if __name__ == '__main__':
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir with prepared MNIST and Fashion-MNIST.')
  flags.DEFINE_list('tasks', list(TASKS), f'Tasks, from {list(TASKS)}.')
  flags.DEFINE_integer('steps', 3000, 'Train steps of every row.')
  flags.DEFINE_integer('num_test', 2000, 'Test images scored per row.')
  flags.DEFINE_integer('seed', 0, 'Seed of every row.')
  flags.DEFINE_string('out', None, 'JSON output path.')
  flags.DEFINE_string('samples_dir', None, 'Where to write the strips of each task.')
  app.run(main)
