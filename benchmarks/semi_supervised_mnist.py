"""Improved GAN's semi-supervised MNIST table (arXiv:1606.03498, Table 1): test errors over seeds.

    python benchmarks/semi_supervised_mnist.py --labels=100 --seeds=3 --epochs=300 \
        --out=ssgan_mnist_100.json --data_dir=/work/shared/data/tensorflow_datasets

Trains ``configs/ssgan_mnist.py`` (override any field with ``--config.<field>=...``) once per
seed ``first_seed, ..., first_seed + seeds - 1`` for ``--epochs`` epochs of ``60000 //
batch_size`` steps (``train.num_steps``; the trainer counts steps, on the one driver
``jaxgan.train.drive``) and counts the errors on the 10,000 MNIST test images after every epoch
(``train.log_every = train.eval_every`` = an epoch), with D's own and with its averaged
parameters (the paper's protocol). ``--out`` gets a JSON file, rewritten after every epoch so a
run cut short keeps its curve: per seed the error-vs-epoch curve and timings, and the summary
mean +- sample std over seeds. Paper, 100 labels: 93 +- 6.5.

A curve row has the fields of the rows before the one driver: ``epoch``, ``step``,
``test_errors``, ``test_errors_avg``, each step metric's mean over the epoch under its own name
(``loss_lab``, ``loss_unl``, ``loss_gen``, ...: the trainer's ``chunk_mean/<name>``, a chunk
being an epoch), ``epoch_seconds`` and, on the first row a process trains, ``compile_seconds``;
the metrics of the epoch's last step are under ``last/<name>``, and ``steps_per_sec`` is the
driver's. The timings are derived here: ``epoch_seconds`` is the epoch's steps over the driver's
``steps_per_sec`` (wall time between rows, D's testing excluded) less the seconds JAX spent
tracing, lowering and compiling the training chunk (``jaxgan.loop.make_chunk``'s ``chunk``)
meanwhile, which are the row's ``compile_seconds`` (from ``jax.monitoring``), so that, as before,
it counts training alone. Rows before the one driver also had ``eval_seconds`` and
``nonfinite_steps``; the driver measures neither (skipped steps show as ``d_nonfinite`` and
``g_nonfinite`` means above 0). A seed's ``train_seconds`` is the sum of its ``epoch_seconds``.
"""

import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from jax import monitoring  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxgan import loop  # noqa: E402
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

# The events of jax.monitoring that make up compiling a jitted function, and the name of the
# training chunk's (jaxgan.loop.make_chunk's inner function, jitted by the driver).
_COMPILE_EVENTS = ('/jax/core/compile/jaxpr_trace_duration',
                   '/jax/core/compile/jaxpr_to_mlir_module_duration',
                   '/jax/core/compile/backend_compile_duration')
_CHUNK_NAMES = ('chunk', 'jit(chunk)')
_MEAN = 'chunk_mean/'
_NOT_METRICS = ('step', 'steps_per_sec', 'test_errors', 'test_errors_avg')


class _ChunkCompileClock:
  """Seconds JAX spent compiling the training chunk since the last :meth:`take`."""

  def __init__(self):
    self.seconds = 0.0
    monitoring.register_event_duration_secs_listener(self._listen)

  def _listen(self, event, duration, **kwargs):
    if event in _COMPILE_EVENTS and kwargs.get('fun_name') in _CHUNK_NAMES:
      self.seconds += duration

  def take(self) -> float:
    seconds, self.seconds = self.seconds, 0.0
    return seconds


def _epoch_row(row, *, steps_per_epoch, previous_step, compile_seconds=None):
  """A driver row (``metrics.jsonl``) as a curve row of the format before the one driver."""
  out = {'epoch': row['step'] // steps_per_epoch, 'step': row['step']}
  for key in ('test_errors', 'test_errors_avg'):
    if key in row:
      out[key] = row[key]
  out.update({k[len(_MEAN):]: v for k, v in row.items() if k.startswith(_MEAN)})
  out.update({f'last/{k}': v for k, v in row.items()
              if k not in _NOT_METRICS and not k.startswith(_MEAN)})
  if 'steps_per_sec' in row:
    seconds = (row['step'] - previous_step) / row['steps_per_sec']
    out['steps_per_sec'] = row['steps_per_sec']
    out['epoch_seconds'] = seconds - (compile_seconds or 0.0)
    if compile_seconds:
      out['compile_seconds'] = compile_seconds
  return out


def _summary(runs, key):
  finished = [r[key] for r in runs if r.get('done')]
  return sst.summarize_errors(finished) if finished else None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.INFO)
  config = _CONFIG.value
  config.data.num_labels = _LABELS.value
  if _DATA_DIR.value:
    config.data.data_dir = _DATA_DIR.value
  started = time.perf_counter()
  mnist = sst.load_mnist(data_dir=config.data.data_dir, download=config.data.download)
  steps_per_epoch = mnist['x_train'].shape[0] // config.train.batch_size
  # In steps, the trainer's unit: a row and D's test errors every epoch.
  config.train.num_steps = _EPOCHS.value * steps_per_epoch
  config.train.num_epochs = None
  config.train.log_every = config.train.eval_every = steps_per_epoch
  sst.validate(config)
  if loop.chunk_length(config) != steps_per_epoch:  # chunk_mean/<name> must be epoch means.
    raise app.UsageError(
        f'train.checkpoint_every={config.train.checkpoint_every} and train.sample_every='
        f'{config.train.sample_every} must be multiples of an epoch ({steps_per_epoch} steps)')
  compile_clock = _ChunkCompileClock()
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
    compile_clock.take()
    seen = {}  # This process's rows by step, with the compile seconds only it can measure.

    def on_row(row, run=run, seen=seen, workdir=workdir):
      previous = run['curve'][-1]['step'] if run['curve'] else None
      if previous is None and workdir:
        # Resumed: the driver counts from its checkpoint, the last row before (checkpoints
        # fall on epochs), which is in metrics.jsonl.
        previous = _last_logged_step(workdir, before=row['step'])
      seen[row['step']] = _epoch_row(row, steps_per_epoch=steps_per_epoch,
                                     previous_step=previous or 0,
                                     compile_seconds=compile_clock.take())
      run['curve'].append(seen[row['step']])
      write()

    sst.train_and_evaluate(config, workdir, mnist=mnist, on_row=on_row)
    if workdir:  # A resumed run reports its earlier epochs too (their compile time unknown).
      with open(os.path.join(workdir, 'metrics.jsonl')) as f:
        rows = [json.loads(line) for line in f if line.strip()]
      steps = [0] + [r['step'] for r in rows]
      run['curve'] = [seen.get(r['step']) or _epoch_row(r, steps_per_epoch=steps_per_epoch,
                                                        previous_step=steps[i])
                      for i, r in enumerate(rows)]
    last = run['curve'][-1]
    first_compile = next((r['compile_seconds'] for r in run['curve'] if 'compile_seconds' in r),
                         None)
    run.update(test_errors=last['test_errors'], test_errors_avg=last['test_errors_avg'],
               train_seconds=sum(r.get('epoch_seconds', 0.0) for r in run['curve']),
               compile_seconds=first_compile, done=True)
    write()
    logging.info('seed %d: %d test errors (averaged D: %d) after %d epochs, %.0fs training',
                 seed, run['test_errors'], run['test_errors_avg'], _EPOCHS.value,
                 run['train_seconds'])
  write()
  for key in ('test_errors', 'test_errors_avg'):
    s = report['summary'][key]
    print(f'{key}: {s["mean"]:.1f} +- {s["std"]:.1f} of 10000 over {s["n"]} seeds, '
          f'{_EPOCHS.value} epochs, {report["wall_seconds"]:.0f}s wall')


def _last_logged_step(workdir: str, *, before: int) -> int:
  """The step of the last ``metrics.jsonl`` row of ``workdir`` before step ``before`` (0: none):
  where a resumed run's first epoch began."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    steps = [json.loads(line)['step'] for line in f if line.strip()]
  return max([s for s in steps if s < before], default=0)


if __name__ == '__main__':
  app.run(main)
