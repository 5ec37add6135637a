"""Improved GAN's semi-supervised MNIST table (arXiv:1606.03498, Table 1): test errors over seeds.

    python benchmarks/semi_supervised_mnist.py --labels=100 --seeds=3 --epochs=300 \
        --out=ssgan_mnist_100.json --data_dir=/work/shared/data/tensorflow_datasets

Trains ``configs/ssgan_mnist.py`` (override any field with ``--config.<field>=...``) once per
seed ``first_seed, ..., first_seed + seeds - 1`` and counts the errors on the 10,000 MNIST test
images after every epoch, with D's own and with its averaged parameters (the paper's protocol).
``--out`` gets a JSON file, rewritten after every epoch so a run cut short keeps its curve: per
seed the error-vs-epoch curve and timings, and the summary mean +- sample std over seeds.
Paper, 100 labels: 93 +- 6.5.
"""

import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxgan import semi_supervised_train as sst  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(os.path.dirname(__file__), '..', 'configs', 'ssgan_mnist.py'),
    'SSGAN config.')
_LABELS = flags.DEFINE_integer('labels', 100, 'Labeled examples (balanced over the classes).')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Number of seeds.')
_FIRST_SEED = flags.DEFINE_integer('first_seed', 0, 'First seed.')
_EPOCHS = flags.DEFINE_integer('epochs', 300, 'Epochs per seed.')
_OUT = flags.DEFINE_string('out', 'semi_supervised_mnist.json', 'Output JSON file.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data_dir with prepared MNIST.')
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Optional: checkpoints under WORKDIR/seed_<s>; reruns resume.')


def _summary(runs, key):
  finished = [r[key] for r in runs if r.get('done')]
  return sst.summarize_errors(finished) if finished else None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.INFO)
  config = _CONFIG.value
  config.data.num_labels = _LABELS.value
  config.train.num_epochs = _EPOCHS.value
  if _DATA_DIR.value:
    config.data.data_dir = _DATA_DIR.value
  sst.validate(config)
  started = time.perf_counter()
  mnist = sst.load_mnist(data_dir=config.data.data_dir, download=config.data.download)
  report = {'command': ' '.join(sys.argv), 'config': json.loads(config.to_json_best_effort()),
            'device': str(jax.devices()[0].device_kind), 'platform': platform.platform(),
            'paper_100_labels': '93 +- 6.5', 'load_average_start': os.getloadavg(),
            'runs': []}

  def write():
    report['wall_seconds'] = time.perf_counter() - started
    report['load_average_last'] = os.getloadavg()  # 1, 5, 15 minutes; 2 cores here.
    report['summary'] = {'test_errors': _summary(report['runs'], 'test_errors'),
                         'test_errors_avg': _summary(report['runs'], 'test_errors_avg')}
    with open(_OUT.value + '.tmp', 'w') as f:
      json.dump(report, f, indent=1)
    os.replace(_OUT.value + '.tmp', _OUT.value)

  for seed in range(_FIRST_SEED.value, _FIRST_SEED.value + _SEEDS.value):
    config.seed = seed
    run = {'seed': seed, 'curve': [], 'done': False}
    report['runs'].append(run)
    workdir = os.path.join(_WORKDIR.value, f'seed_{seed}') if _WORKDIR.value else None

    def on_epoch(row, run=run):
      run['curve'].append(row)
      write()

    sst.train_and_evaluate(config, workdir, mnist=mnist, on_epoch=on_epoch)
    if workdir:  # A resumed run reports its earlier epochs too.
      with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        run['curve'] = [json.loads(line) for line in f if line.strip()]
    last = run['curve'][-1]
    run.update(test_errors=last['test_errors'], test_errors_avg=last['test_errors_avg'],
               train_seconds=sum(r['epoch_seconds'] for r in run['curve']),
               compile_seconds=run['curve'][0].get('compile_seconds'), done=True)
    write()
    logging.info('seed %d: %d test errors (averaged D: %d) after %d epochs, %.0fs training',
                 seed, run['test_errors'], run['test_errors_avg'], config.train.num_epochs,
                 run['train_seconds'])
  write()
  for key in ('test_errors', 'test_errors_avg'):
    s = report['summary'][key]
    print(f'{key}: {s["mean"]:.1f} +- {s["std"]:.1f} of 10000 over {s["n"]} seeds, '
          f'{config.train.num_epochs} epochs, {report["wall_seconds"]:.0f}s wall')


if __name__ == '__main__':
  app.run(main)
