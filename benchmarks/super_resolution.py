r"""x4 super-resolution: nearest, bicubic, SRResNet (MSE) and SRGAN on one test set (SRGAN Table 2).

    python benchmarks/super_resolution.py --data_dir=../shared/data/tensorflow_datasets \
        --dataset=mnist --out=benchmarks/results/super_resolution_mnist.json \
        --samples_dir=benchmarks/results

The low-resolution input of a test image is its exact ``scale x scale`` box average
(:func:`jaxgan.super_resolution.downsample_box`: 28x28 digits -> 7x7). Each row maps the inputs
of the first ``--num_test`` test images back to full size, and is scored against the originals:

* ``psnr``, ``ssim``: :func:`jaxgan.metrics.psnr` / :func:`jaxgan.metrics.ssim` in the
  super-resolution convention (a border of ``scale`` pixels cropped; the BT.601 luma of RGB);
* ``sharpness``: the mean :func:`jaxgan.metrics.gradient_magnitude` of the outputs divided by
  the originals' (same crop): 1 is the truth's sharpness, below 1 a blurred output;
* on MNIST, ``accuracy``: the shipped classifier's accuracy on the outputs against the test
  labels, and ``classifier_fid``: the Fréchet distance of the outputs' classifier features to
  the training set's (the ``truth`` row, the originals themselves, is the floor at this sample
  size).

Rows (``--rows``): ``truth``, ``nearest`` and ``bicubic`` (:func:`upsample_nearest`,
:func:`upsample_bicubic`: ``jax.image.resize``), ``srresnet`` (``configs/srresnet_mnist.py``:
pixel MSE alone, ``--srresnet_steps``), ``srgan`` (``configs/srgan_mnist.py``: MSE + 1e-3
adversarial, ``--srgan_steps`` more steps started from the trained SRResNet, as the paper does)
and ``srgan_classifier`` (the same with the shipped classifier's ``conv2`` features as the
content loss, the analogue of the paper's VGG54; its classifier FID is measured by the network
it was trained against). ``--dataset=fashion_mnist`` takes those configs' data.name (no
classifier: no accuracy or FID). Each trained row runs from seed ``--seed`` through
:func:`jaxgan.super_resolution.train_and_evaluate` (the one driver) in a temporary workdir; its
CPU seconds are its own (SRGAN's exclude the SRResNet it starts from). ``--samples_dir`` gets
``super_resolution_<dataset>.png``: rows of input (nearest) | bicubic | SRResNet | SRGAN |
original for the first 8 test images. The JSON is rewritten after every row, with the load
average at the start and the end.
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

from jaxgan import data as data_lib  # noqa: E402
from jaxgan import metrics, super_resolution, visualize  # noqa: E402
from jaxgan.eval import classifier  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
ROWS = ('truth', 'nearest', 'bicubic', 'srresnet', 'srgan', 'srgan_classifier')
DATASETS = ('mnist', 'fashion_mnist', 'photos')
STRIP_ROWS = ('nearest', 'bicubic', 'srresnet', 'srgan', 'truth')
FLAGS = flags.FLAGS


def row_config(row: str, *, dataset: str, steps: int, seed: int, data_dir: str | None,
               init_g_from: str = ''):
  """The config of a trained row: ``configs/srresnet_<d>.py`` or ``configs/srgan_<d>.py``
  with ``d = photos`` for the photographs and ``mnist`` (its data.name replaced) for digits."""
  suffix = 'photos' if dataset == 'photos' else 'mnist'
  name = f'srresnet_{suffix}' if row == 'srresnet' else f'srgan_{suffix}'
  config = runpy.run_path(os.path.join(ROOT, 'configs', f'{name}.py'))['get_config']()
  config.data.name = dataset
  config.data.data_dir = data_dir
  if row == 'srgan_classifier':
    config.loss.content = 'classifier'
  config.seed = seed
  t = config.train
  t.num_steps = steps
  t.init_g_from = init_g_from
  t.eval_every = 0
  t.sample_every = t.checkpoint_every = t.log_every * -(-steps // t.log_every)
  return config


def train_row(config, workdir: str):
  """Trains ``config`` in ``workdir``; returns ``(upscale, steps, cpu_s, wall_s)``."""
  wall0, cpu0 = time.perf_counter(), time.process_time()
  state = super_resolution.train_and_evaluate(config, workdir)
  wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
  generator = super_resolution.build_models(config)[0]
  apply = jax.jit(functools.partial(super_resolution.super_resolve, generator))
  upscale = functools.partial(apply, state.g_params, state.g_batch_stats)
  return upscale, int(state.step), cpu_s, wall_s


def score(outputs: list[np.ndarray], truth: list[np.ndarray], *, scale: int, labels=None,
          extractor=None, train_stats=None) -> dict:
  """A row's metrics of ``outputs`` against ``truth``: lists of ``(n, H, W, C)`` groups in
  [-1, 1] (the digits 500 at a time; each photograph alone), means over images."""
  rgb = truth[0].shape[-1] == 3
  per_image = {'psnr': [], 'ssim': [], 'out': [], 'truth': []}
  for made, real in zip(outputs, truth, strict=True):
    kw = {'crop_border': scale, 'y_channel': rgb}
    per_image['psnr'].append(np.minimum(np.asarray(metrics.psnr(made, real, **kw)), 100.0))
    per_image['ssim'].append(np.asarray(metrics.ssim(made, real, **kw)))
    per_image['out'].append(np.asarray(metrics.gradient_magnitude(made, crop_border=scale)))
    per_image['truth'].append(np.asarray(metrics.gradient_magnitude(real, crop_border=scale)))
  mean = {k: float(np.mean(np.concatenate(v))) for k, v in per_image.items()}
  out = {'psnr': mean['psnr'], 'ssim': mean['ssim'], 'gradient_magnitude': mean['out'],
         'sharpness': mean['out'] / mean['truth']}
  if len(truth) > 1 and truth[0].shape[0] == 1:  # Photographs: each one's scores too.
    out['per_image'] = {k: np.concatenate(v).tolist() for k, v in per_image.items()}
  if extractor is not None:
    clipped = np.clip(np.concatenate(outputs), -1.0, 1.0)
    out['accuracy'] = metrics.label_accuracy(extractor.probs(clipped), labels)
    out['classifier_fid'] = metrics.frechet_distance(
        *metrics.gaussian_statistics(extractor.features(clipped)), *train_stats)
  return out


def test_set(dataset: str, *, scale: int, num_test: int, data_dir: str | None):
  """``(truth groups, labels, strip crops)``: digits in groups of 500 with their labels; the
  Set3 photographs whole (:func:`jaxgan.super_resolution.crop_to_multiple`), one group each, no
  labels. ``strip crops`` is a function of a list of same-grouped outputs giving the first 8
  images (digits) or a 96x96 detail of each photograph, for the figure."""
  if dataset == 'photos':
    names = super_resolution.SET3
    photos = super_resolution.load_photos(names)
    truth = [np.asarray(data_lib.to_unit_range(
        super_resolution.crop_to_multiple(photos[n], scale)))[None] for n in names]

    def crops(groups):
      out = []
      for g in groups:
        top, left = g.shape[1] // 3, g.shape[2] // 3  # A detail away from the borders.
        out.append(g[0, top:top + 96, left:left + 96])
      return np.stack(out)

    return truth, None, crops
  test = data_lib.load_images(dataset, split='test', data_dir=data_dir, download=False)
  images = np.asarray(data_lib.to_unit_range(test['image'][:num_test]))
  truth = [images[i:i + 500] for i in range(0, len(images), 500)]
  return truth, np.asarray(test['label'][:num_test]), lambda groups: groups[0][:8]


def _define_flags() -> None:
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir with prepared MNIST / Fashion-MNIST.')
  flags.DEFINE_enum('dataset', 'mnist', list(DATASETS), 'The digits of the test set.')
  flags.DEFINE_list('rows', ['truth', 'nearest', 'bicubic', 'srresnet', 'srgan'],
                    f'Rows, from {list(ROWS)}.')
  flags.DEFINE_integer('srresnet_steps', 3000, 'Train steps of the SRResNet row.')
  flags.DEFINE_integer('srgan_steps', 1000, 'Train steps of an SRGAN row after the SRResNet.')
  flags.DEFINE_integer('num_test', 2000, 'Test images scored per row.')
  flags.DEFINE_integer('seed', 0, 'Seed of every trained row.')
  flags.DEFINE_string('out', None, 'JSON output path.')
  flags.DEFINE_string('samples_dir', None, 'Where to write the strips of the first 8 images.')


def main(argv):
  del argv
  for row in FLAGS.rows:
    if row not in ROWS:
      raise ValueError(f'--rows: unknown row {row!r}; expected some of {list(ROWS)}')
  dataset, scale = FLAGS.dataset, 4
  truth, labels, crops = test_set(dataset, scale=scale, num_test=FLAGS.num_test,
                                  data_dir=FLAGS.data_dir)
  lr = [np.asarray(super_resolution.downsample_box(t, scale)) for t in truth]
  extractor = classifier.shipped_extractor(dataset) if dataset != 'photos' else None
  train_stats = None
  if extractor is not None:
    train = data_lib.image_arrays(dataset, split='train', data_dir=FLAGS.data_dir,
                                  download=False)
    train_stats = metrics.gaussian_statistics(extractor.features(train['x']))
  result = {'command': ' '.join(['python', 'benchmarks/super_resolution.py', *sys.argv[1:]]),
            'dataset': dataset, 'scale': scale, 'num_test': sum(len(t) for t in truth),
            'seed': FLAGS.seed,
            'machine': machine.describe(),
            'load_average_start': list(os.getloadavg()), 'rows': []}
  strips = {}
  srresnet_dir = None
  try:
    for row in FLAGS.rows:
      entry = {'row': row}
      if row == 'truth':
        outputs = truth
      elif row in ('nearest', 'bicubic'):
        upsample = getattr(super_resolution, f'upsample_{row}')
        outputs = [np.asarray(upsample(x, scale)) for x in lr]
      else:
        if row != 'srresnet' and srresnet_dir is None:
          raise ValueError(f'--rows: {row!r} starts from the SRResNet; list srresnet before it')
        steps = FLAGS.srresnet_steps if row == 'srresnet' else FLAGS.srgan_steps
        workdir = tempfile.mkdtemp(prefix=f'super_resolution_{row}_')
        config = row_config(row, dataset=dataset, steps=steps, seed=FLAGS.seed,
                            data_dir=FLAGS.data_dir,
                            init_g_from='' if row == 'srresnet' else srresnet_dir)
        upscale, steps, cpu_s, wall_s = train_row(config, workdir)
        if row == 'srresnet':
          srresnet_dir = workdir
        else:
          shutil.rmtree(workdir, ignore_errors=True)
        outputs = [np.asarray(upscale(x)) for x in lr]
        entry.update(steps=steps, cpu_s=round(cpu_s, 1), wall_s=round(wall_s, 1),
                     steps_per_s=round(steps / wall_s, 2), loss=config.loss.to_dict(),
                     model=config.model.to_dict())
      entry.update(score(outputs, truth, scale=scale, labels=labels, extractor=extractor,
                         train_stats=train_stats))
      strips[row] = crops(outputs)
      result['rows'].append(entry)
      print(f"{row:16s} psnr {entry['psnr']:6.2f}  ssim {entry['ssim']:.3f}  sharpness "
            f"{entry['sharpness']:.3f}" + (
                f"  acc {entry['accuracy']:.4f}  fid {entry['classifier_fid']:.1f}"
                if 'accuracy' in entry else '') + (
                f"  ({entry['steps']} steps, {entry['cpu_s']:.0f} CPU s)"
                if 'steps' in entry else ''), flush=True)
      result['load_average_end'] = list(os.getloadavg())
      if FLAGS.out:
        os.makedirs(os.path.dirname(FLAGS.out) or '.', exist_ok=True)
        with open(FLAGS.out, 'w') as f:
          json.dump(result, f, indent=2)
  finally:
    if srresnet_dir:
      shutil.rmtree(srresnet_dir, ignore_errors=True)
  if FLAGS.samples_dir:
    columns = [strips[r] for r in STRIP_ROWS if r in strips]
    if 'nearest' not in strips:
      columns.insert(0, crops([np.asarray(super_resolution.upsample_nearest(x, scale))
                               for x in lr]))
    visualize.save_strips(os.path.join(FLAGS.samples_dir, f'super_resolution_{dataset}.png'),
                          columns)
  print('\n| row | steps | PSNR (dB) | SSIM | sharpness | classifier acc. | classifier FID | '
        'CPU s |')
  print('|---|---|---|---|---|---|---|---|')
  for e in result['rows']:
    classified = (f"{e['accuracy']:.3f} | {e['classifier_fid']:.1f}" if 'accuracy' in e
                  else '– | –')
    print(f"| {e['row']} | {e.get('steps', '–')} | {e['psnr']:.2f} | {e['ssim']:.3f} | "
          f"{e['sharpness']:.2f} | {classified} | {e.get('cpu_s', 0):.0f} |")


if __name__ == '__main__':
  _define_flags()
  app.run(main)
