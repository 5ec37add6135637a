r"""The floors of ``python -m jaxgan.eval``'s metrics: real data scored against real data.

    python benchmarks/eval_floors.py --data_dir=../shared/data/tensorflow_datasets \
        --out=benchmarks/results/eval_floors.json

For MNIST and Fashion-MNIST, with jaxgan's shipped classifier as the extractor
(:func:`jaxgan.eval.classifier.shipped_extractor`, 64 features), every metric of the command
(``fid``, ``kid`` ± ``kid_std``, ``is``, ``precision``, ``recall``), scored by the command's own
code (:func:`jaxgan.eval.run.score`, the reference's statistics by
:func:`jaxgan.metrics.gaussian_statistics` as :mod:`jaxgan.eval.reference` computes them), so
these are the numbers the command would print for a perfect generator:

* ``test_vs_train``: the first ``n`` test images (as "samples") against the first ``n`` train
  images (the command's reference: the first ``num_samples`` of the train split), ``n <= 10,000``;
* ``train_halves``: the train split shuffled (``--seed``) and split into two halves of 30,000;
  the first ``n`` of one half against the first ``n`` of the other, ``n <= 30,000``.

At ``--sizes=1000,5000,10000,30000`` (the default) the sample-size bias shows: FID of two samples
of one distribution is biased upwards by ``O(1/n)`` (it falls with ``n``), KID is unbiased (its
mean stays near 0 at every ``n``; its std falls). ``is`` is the Inception score of the "sample"
set's classifier probabilities (real data's, the score a generator would aim for).

Cost: features are computed once per split (70,000 images, one forward pass each). Precision and
recall (:func:`jaxgan.metrics.precision_recall`) work in row blocks of at most 2^24 distances, so
memory is ``O(n D)`` at every ``n`` (no ``n x n`` matrix) and no size is capped; time is
``3 n^2 D`` multiply-adds (1.7e11 at ``n = 30,000``, ``D = 64``: minutes on 2 CPU cores). KID
is 100 subsets of ``min(1000, n)`` rows at every ``n``. The JSON says so under ``notes``.

Writes ``--out`` (JSON: the command, the results, the machine, ``os.getloadavg()`` at the start
and the end, the seconds of each row and of the whole run) and prints a Markdown table.
"""

from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import machine  # noqa: E402
import numpy as np  # noqa: E402

from jaxgan import data as data_lib  # noqa: E402
from jaxgan import metrics  # noqa: E402
from jaxgan.eval import classifier, reference, run  # noqa: E402

COMPARISONS = ('test_vs_train', 'train_halves')
HALF = 30_000  # rows of each train half
TEST_SIZE = 10_000
COLUMNS = ('fid', 'kid', 'kid_std', 'is', 'precision', 'recall')


def _define_flags() -> None:
  flags.DEFINE_list('datasets', ['mnist', 'fashion_mnist'], 'Datasets with a shipped classifier.')
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir holding the prepared datasets.')
  flags.DEFINE_list('sizes', ['1000', '5000', '10000', '30000'],
                    'Sample sizes n (test_vs_train only those <= 10,000).')
  flags.DEFINE_integer('seed', 0, 'Seeds the shuffle of the train split into halves.')
  flags.DEFINE_string('out', None, 'JSON results file.')


def as_reference(features: np.ndarray) -> reference.Reference:
  """``features`` as the command's reference: the same statistics :mod:`jaxgan.eval.reference`
  caches (no file: ``path=''``, ``cached=False``)."""
  mu, sigma = metrics.gaussian_statistics(features)
  return reference.Reference(features=features, mu=mu, sigma=sigma, key={}, path='',
                             cached=False)


def pairs(comparison: str, n: int, train: dict, test: dict, *, seed: int):
  """``(sample_features, sample_probs, reference_features)`` of ``n`` rows, or None when the
  comparison has fewer than ``n`` rows (see the module docstring)."""
  if comparison == 'test_vs_train':
    if n > TEST_SIZE:
      return None
    return test['features'][:n], test['probs'][:n], train['features'][:n]
  if n > HALF:
    return None
  order = np.random.default_rng(seed).permutation(train['features'].shape[0])
  a, b = order[:HALF][:n], order[HALF:2 * HALF][:n]
  return train['features'][b], train['probs'][b], train['features'][a]


def floors(dataset: str, *, data_dir: str | None, sizes, seed: int) -> list[dict]:
  """One row per (comparison, n) of ``dataset``: ``{'dataset', 'comparison', 'n', 'metrics',
  'seconds'}``."""
  extractor = classifier.shipped_extractor(dataset)
  if extractor is None:
    raise ValueError(f'jaxgan ships no classifier for dataset {dataset!r}')
  splits = {}
  for split in ('train', 'test'):
    x = data_lib.image_arrays(dataset, split=split, data_dir=data_dir, download=False)['x']
    splits[split] = {'features': extractor.features(x), 'probs': extractor.probs(x)}
  rows = []
  for comparison in COMPARISONS:
    for n in sizes:
      chosen = pairs(comparison, n, splits['train'], splits['test'], seed=seed)
      if chosen is None:
        continue
      fake_features, probs, real_features = chosen
      start = time.perf_counter()
      scores = run.score(fake_features, as_reference(real_features), names=run.METRICS,
                         probs=probs)
      rows.append({'dataset': dataset, 'comparison': comparison, 'n': n, 'metrics': scores,
                   'seconds': round(time.perf_counter() - start, 2)})
      print(f'{dataset} {comparison} n={n}: {scores}', flush=True)
  return rows


def markdown_table(rows: list[dict]) -> str:
  lines = ['| dataset | comparison | n | FID | KID ± std | IS | precision | recall |',
           '|---|---|---:|---:|---:|---:|---:|---:|']
  for r in rows:
    m = r['metrics']
    lines.append(f"| {r['dataset']} | {r['comparison']} | {r['n']:,} | {m['fid']:.4g} | "
                 f"{m['kid']:.2e} ± {m['kid_std']:.1e} | {m['is']:.3f} | "
                 f"{m['precision']:.3f} | {m['recall']:.3f} |")
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  sizes = sorted(int(s) for s in f.sizes)
  if not sizes or sizes[0] < 4:
    raise app.UsageError(f'--sizes must be >= 4 (k-NN precision/recall, k = 3), got {sizes}')
  load_start, start = os.getloadavg(), time.perf_counter()
  rows = []
  for dataset in f.datasets:
    rows += floors(dataset, data_dir=f.data_dir, sizes=sizes, seed=f.seed)
  table = markdown_table(rows)
  print(table)
  if f.out:
    os.makedirs(os.path.dirname(os.path.abspath(f.out)), exist_ok=True)
    with open(f.out, 'w') as out:
      json.dump({
          'command': ' '.join(['python', *sys.argv]),
          'extractor': 'classifier',
          'results': rows,
          'table': table,
          'notes': {
              'test_vs_train': f'first n test images vs first n train images, n <= {TEST_SIZE}',
              'train_halves': f'train split shuffled (seed {f.seed}) into halves of {HALF}; '
                              'first n of the second half vs first n of the first',
              'precision_recall_cap': 'none: jaxgan.metrics.precision_recall works in row '
                                      'blocks (O(n D) memory); time 3 n^2 D multiply-adds',
              'kid': '100 subsets of min(1000, n) rows (the command\'s defaults)',
              'is': "Inception score of the 'sample' set's classifier probabilities, 1 split"},
          'machine': machine.describe(),
          'load_average_start': load_start, 'load_average_end': os.getloadavg(),
          'seconds': round(time.perf_counter() - start, 1)}, out, indent=2)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
