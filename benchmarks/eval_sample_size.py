r"""FID and KID of a trained cGAN at 1k, 5k, 10k and 50k samples: FID's bias falls, KID's not.

    python benchmarks/eval_sample_size.py --data_dir=../shared/data/tensorflow_datasets \
        --workdir=runs/eval_sample_size_cgan --out=benchmarks/results/eval_sample_size.json

The model: ``configs/cgan_mnist.py``, trained by :func:`jaxgan.train.train_and_evaluate` (what
``python -m jaxgan.main --config=configs/cgan_mnist.py`` runs) for ``--train_cpu_s`` CPU seconds
or its ``train.num_steps``, whichever ends first, as ``benchmarks/image_quality.py`` trains
(:func:`image_quality.train_for_budget`: the budget is ``should_stop``, asked every
``train.log_every`` steps; no periodic samples, checkpoints or evaluation; one checkpoint at
the last step). ``--workdir`` says where: a run that already holds a checkpoint (e.g. one of
``python -m jaxgan.main``, 8,000 steps) is scored as it is, without training; an empty or
missing one is trained into and kept; without ``--workdir`` the run lives in a temporary
directory, removed at the end. The full 8,000 steps took 2,005 CPU seconds on this 2-core
machine (``benchmarks/results/image_quality_cgan_mnist.json``); the default budget of 600 gets
a partly trained cGAN, which shows the bias as well.

Scoring is ``python -m jaxgan.eval``'s (:mod:`jaxgan.eval.run`), with jaxgan's shipped MNIST
classifier as the extractor (64 features): the latest checkpoint is restored
(:func:`jaxgan.sample.load_run`), samples are drawn with the weights the command draws with
(G's moving average and its standing batch-norm statistics, ``train.ema_decay = 0.999`` here;
:func:`jaxgan.eval.evaluator.make_generate`, labels ``i mod 10``), the reference is the first
images of the train split (:func:`jaxgan.eval.reference.reference_features`, cached), and each
score is :func:`jaxgan.eval.run.score` with ``names=('fid', 'kid')`` (KID: 100 subsets of
``min(1000, n)`` rows, mean and std over the subsets).

**Nested prefixes of one draw.** ``N = max(--num_samples)`` samples (50,000) are drawn once,
from ``PRNGKey(--seed)`` as the command draws them, and the row of size ``n`` scores the first
``n`` of them against the first ``n`` train images (the command's reference at
``--num_samples=n``). So the row ``n = N`` is exactly what ``python -m jaxgan.eval
--metrics=fid,kid --num_samples=50000 --seed=SEED`` prints for the run, and the smaller rows
differ from each other only by ``n``; they are not the command's numbers at ``--num_samples=n``
(which draws ``n`` other latents from the same key), but the same in distribution. Since
``n`` is a multiple of 10, every prefix (and every block below) holds each digit equally often.

**The spread across disjoint sets.** For ``n < N`` the draw splits into ``N // n`` disjoint
blocks (50 of 1,000, 10 of 5,000, 5 of 10,000), each scored against the same first ``n`` train
images; the mean and standard deviation (``ddof=1``) of their FIDs and KIDs say how much a
score of ``n`` samples moves from one draw to the next (what a change of ``--seed`` would do),
and the FID mean shows the bias free of the one prefix's luck. Cheap: FID of 64-d features is a
64x64 matrix square root, KID 100 subsets of 1,000 rows (about 1 s), so 65 blocks add about a
minute.

Expected: FID falls with ``n`` towards its ``n = N`` value, by a term of order ``1/n`` (the
floors, ``benchmarks/eval_floors.py``: real against real, 7.7 at 1,000 and 0.30 at 30,000);
KID's mean stays within its spread at every ``n`` (it is unbiased), only the spread across
blocks falls. The classifier's features are not normalised, so KID is in their units.

Cost: training ``--train_cpu_s`` (plus up to one chunk), then one pass of G over ``N`` latents
and of the classifier over ``N`` samples and ``N`` train images (a minute or two), and the
scores (about a minute). Writes ``--out`` (JSON: the command, the run (steps, CPU and wall
seconds of training), the rows, the machine, ``os.getloadavg()`` at the start and the end, the
seconds of each stage and of the whole run) and prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import eval_floors  # noqa: E402
import image_quality  # noqa: E402
import jax  # noqa: E402
import machine  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import sample, style_train  # noqa: E402
from jaxgan.eval import evaluator, reference, run  # noqa: E402

METRICS = ('fid', 'kid')
EXTRACTOR = 'classifier'


def _define_flags() -> None:
  """The script's flags; defined only when it runs as a program, so importing it defines none."""
  flags.DEFINE_string('workdir', None,
                      'The run to score. Holding a checkpoint: scored as it is (no training). '
                      'Empty or missing: --config is trained into it first (and kept). '
                      'Default: a temporary directory, trained into and removed at the end.')
  flags.DEFINE_string('config', 'cgan_mnist', 'Config (configs/<name>.py) to train when '
                      '--workdir holds no checkpoint.')
  flags.DEFINE_list('overrides', [], 'Fields of --config to change before training, as '
                    'CONFIG.FIELD=VALUE (benchmarks/image_quality.py\'s --overrides).')
  flags.DEFINE_float('train_cpu_s', 600.0, 'CPU seconds of training (or the config\'s '
                     'train.num_steps, whichever ends first); unused for a trained --workdir.')
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir holding the prepared MNIST (default for '
                      'scoring a trained --workdir: its config.data.data_dir).')
  flags.DEFINE_list('num_samples', ['1000', '5000', '10000', '50000'],
                    'Sample sizes n; the largest is drawn once and the others are its prefixes.')
  flags.DEFINE_integer('seed', 0, 'PRNGKey(seed) draws the latents (the eval command\'s --seed).')
  flags.DEFINE_string('out', None, 'JSON results file.')


def has_checkpoint(workdir: str) -> bool:
  """Whether ``workdir`` holds a training run to score: ``config.json`` and a saved step."""
  folder = os.path.join(workdir, 'checkpoints')
  return (os.path.isfile(os.path.join(workdir, 'config.json')) and os.path.isdir(folder)
          and any(name.isdigit() for name in os.listdir(folder)))


def disjoint_blocks(total: int, n: int) -> list[slice]:
  """The ``total // n`` disjoint blocks of ``n`` rows of ``total``, in order (the rest dropped).

  >>> disjoint_blocks(10, 4)
  [slice(0, 4, None), slice(4, 8, None)]
  """
  if n < 1:
    raise ValueError(f'disjoint_blocks: n must be >= 1, got {n}')
  return [slice(i * n, (i + 1) * n) for i in range(total // n)]


def mean_std(values: Sequence[float]) -> dict[str, float]:
  """``{'mean', 'std'}`` of ``values``, the std with ``ddof=1`` (0 for a single value)."""
  values = np.asarray(values, np.float64)
  std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
  return {'mean': float(np.mean(values)), 'std': std}


def sample_size_rows(fake_features: np.ndarray, real_features: np.ndarray,
                     sizes: Sequence[int]) -> list[dict]:
  """One row per ``n`` of ``sizes``: the first ``n`` of ``fake_features`` ``(N, D)`` scored
  against the first ``n`` of ``real_features`` ``(M, D)`` (:func:`jaxgan.eval.run.score`, FID and
  KID), and, where ``N // n > 1``, every disjoint block of ``n`` fake rows against the same
  ``n`` real rows.

  Returns:
    ``[{'n', 'fid', 'kid', 'kid_std', 'seconds', 'disjoint'}]``; ``disjoint`` is None or
    ``{'sets', 'fid': {'mean', 'std'}, 'kid': {'mean', 'std'}, 'fid_values', 'kid_values'}``
    (over the blocks; ``kid_values`` are each block's KID mean over its 100 subsets).
  """
  total = fake_features.shape[0]
  rows = []
  for n in sizes:
    if n > min(total, real_features.shape[0]):
      raise ValueError(f'n={n} is more than the {total} samples or the '
                       f'{real_features.shape[0]} reference rows')
    start = time.perf_counter()
    real = eval_floors.as_reference(real_features[:n])
    scores = run.score(fake_features[:n], real, names=METRICS)
    blocks = disjoint_blocks(total, n)
    disjoint = None
    if len(blocks) > 1:
      per_block = [run.score(fake_features[block], real, names=METRICS) for block in blocks]
      fids, kids = [s['fid'] for s in per_block], [s['kid'] for s in per_block]
      disjoint = {'sets': len(blocks), 'fid': mean_std(fids), 'kid': mean_std(kids),
                  'fid_values': fids, 'kid_values': kids}
    rows.append({'n': n, **scores, 'seconds': round(time.perf_counter() - start, 2),
                 'disjoint': disjoint})
    print(f'n={n}: {scores}' + (f', {len(blocks)} disjoint sets: FID {disjoint["fid"]}, '
                                f'KID {disjoint["kid"]}' if disjoint else ''), flush=True)
  return rows


def markdown_table(rows: list[dict]) -> str:
  lines = ['| n | FID | KID ± std (100 subsets) | disjoint sets | FID over the sets | '
           'KID over the sets |', '|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    d = r['disjoint']
    spread = (f"{d['sets']} | {d['fid']['mean']:.4g} ± {d['fid']['std']:.2g} | "
              f"{d['kid']['mean']:.3g} ± {d['kid']['std']:.2g}" if d else '- | - | -')
    lines.append(f"| {r['n']:,} | {r['fid']:.4g} | {r['kid']:.3g} ± {r['kid_std']:.2g} | "
                 f'{spread} |')
  return '\n'.join(lines)


def train_run(workdir: str, *, config_name: str, overrides, data_dir: str | None,
              cpu_budget_s: float) -> dict:
  """Trains ``configs/<config_name>.py`` into the empty ``workdir`` for ``cpu_budget_s`` CPU
  seconds (:func:`image_quality.train_for_budget`); returns its steps and seconds."""
  config = image_quality.load_config(config_name)
  config.data.data_dir = data_dir
  image_quality.apply_overrides(config_name, config, overrides)
  print(f'{config_name}: training for {cpu_budget_s:.0f} CPU seconds in {workdir}', flush=True)
  _, _, steps, wall_s, cpu_s = image_quality.train_for_budget(config, cpu_budget_s,
                                                              workdir=workdir)
  return {'config': config_name, 'overrides': list(overrides), 'steps': steps,
          'cpu_budget_s': cpu_budget_s, 'wall_s': round(wall_s, 1), 'cpu_s': round(cpu_s, 1)}


def features_of_run(workdir: str, *, num: int, seed: int, data_dir: str | None) -> dict:
  """The classifier features of ``num`` samples of the run's latest checkpoint (drawn as
  :func:`jaxgan.eval.run.evaluate_run` draws them) and of the first ``num`` train images."""
  config, generator, state = sample.load_run(workdir)
  trainer = config.get('trainer')
  if trainer and trainer not in style_train.SYSTEMS:
    raise ValueError(f'config.trainer={trainer!r}: jaxgan.eval scores only image GANs')
  dataset = config.data.name
  extractor, digest = run.load_extractor(EXTRACTOR, dataset)
  real = reference.reference_features(
      dataset, extractor=extractor, extractor_name=EXTRACTOR, weights_digest=digest,
      split='train', num_examples=num,
      data_dir=config.data.get('data_dir') if data_dir is None else data_dir, download=False)
  generate = (run.make_style_generate(config, generator) if trainer
              else evaluator.make_generate(config, generator))
  fake, _ = generate(state, jax.random.PRNGKey(seed), num)
  return {'fake': np.asarray(extractor.features(fake), np.float64), 'real': real.features,
          'step': int(state.step), 'dataset': dataset, 'weights_digest': digest,
          'ema': bool(config.train.get('ema_decay', 0.0)),
          'reference': {'path': real.path, 'cached': real.cached}}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  sizes = sorted(int(s) for s in f.num_samples)
  if not sizes or sizes[0] < 2:
    raise app.UsageError(f'--num_samples must be >= 2 (KID needs 2 rows), got {sizes}')
  load_start, start, cpu_start = os.getloadavg(), time.perf_counter(), time.process_time()
  workdir = f.workdir or tempfile.mkdtemp(prefix='eval_sample_size_')
  try:
    trained = None
    if has_checkpoint(workdir):
      print(f'{workdir} holds a checkpoint: scoring it, no training', flush=True)
    else:
      trained = train_run(workdir, config_name=f.config, overrides=f.overrides,
                          data_dir=f.data_dir, cpu_budget_s=f.train_cpu_s)
    stage = time.perf_counter()
    drawn = features_of_run(workdir, num=sizes[-1], seed=f.seed, data_dir=f.data_dir)
    features_s = time.perf_counter() - stage
    print(f'step {drawn["step"]}: features of {sizes[-1]} samples and train images in '
          f'{features_s:.0f}s', flush=True)
    rows = sample_size_rows(drawn['fake'], drawn['real'], sizes)
  finally:
    if f.workdir is None:
      shutil.rmtree(workdir, ignore_errors=True)
  table = markdown_table(rows)
  print(table)
  print(f"\nstep {drawn['step']}, {'EMA weights, ' if drawn['ema'] else ''}seed {f.seed}, "
        f'extractor {EXTRACTOR}, {drawn["dataset"]}/train reference')
  if f.out:
    os.makedirs(os.path.dirname(os.path.abspath(f.out)), exist_ok=True)
    with open(f.out, 'w') as out:
      json.dump({
          'command': ' '.join(['python', *sys.argv]),
          'run': {'workdir': f.workdir, 'trained_here': trained is not None,
                  'training': trained, 'step': drawn['step'], 'ema': drawn['ema'],
                  'dataset': drawn['dataset']},
          'extractor': EXTRACTOR, 'weights_digest': drawn['weights_digest'],
          'seed': f.seed, 'num_samples': sizes, 'reference': drawn['reference'],
          'results': rows,
          'table': table,
          'notes': {
              'sampling': f'one draw of {sizes[-1]} samples from PRNGKey({f.seed}); the row of '
                          'size n scores its first n against the first n train images',
              'disjoint': 'for n < N: the N // n disjoint blocks of n samples, each against '
                          'the same first n train images; mean and std (ddof=1) over blocks',
              'kid': "100 subsets of min(1000, n) rows (the command's defaults); kid_std is "
                     'the std over those subsets',
              'largest_n': f'the n = {sizes[-1]} row is what python -m jaxgan.eval '
                           f'--metrics=fid,kid --num_samples={sizes[-1]} --seed={f.seed} '
                           'prints for the run'},
          'machine': machine.describe(),
          'load_average_start': load_start, 'load_average_end': os.getloadavg(),
          'features_seconds': round(features_s, 1),
          'cpu_seconds': round(time.process_time() - cpu_start, 1),
          'seconds': round(time.perf_counter() - start, 1)}, out, indent=2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
