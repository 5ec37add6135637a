r"""The command line against the bare train step: steps/s, start-up, resume, import time.

For each config, side by side in one run:

* ``bare``: the train step alone on one fixed batch (no data, no I/O), state donated, timed two
  ways after a compile: ``log_every`` jitted steps dispatched one by one (``bare_jit``), and one
  jitted ``lax.scan`` over them (``bare_scan``; DCGAN: 4 steps, see ``SCAN_STEPS``); steps/s is
  steps over the median of ``--repeats`` timed calls, and the bare step is the faster way.
* ``cli``: ``python -m jaxgan.main --config=configs/<name>.py`` in a fresh process, as a user runs
  it (logging, samples, checkpoints and the TensorBoard writer included). Its steps/s is the
  median of the ``steps_per_sec`` the driver logged in ``metrics.jsonl`` (each covers
  ``log_every`` steps, and the intervals that held a sample picture or a checkpoint write too);
  ``cli_wall_s`` is the whole command, ``first_row_s`` the time from launch to the first
  ``metrics.jsonl`` row (imports, data loading, compiling, the first ``log_every`` steps).
* ``resume``: the run's last checkpoint copied and relabelled as step 100 and step 50,000, each
  resumed by the command line for one chunk: ``resume_at_100_s`` and ``resume_at_50000_s`` (the
  whole command). With the data a function of the step, both cost the same.

Plus ``python -c "import jaxgan"`` against ``python -c "import jax"`` (medians of 5 fresh
processes).

    python benchmarks/loop_speed.py --data_dir=../shared/data/tensorflow_datasets \
        --out=benchmarks/results/loop_speed_cpu.json

Image configs train on real MNIST (``--data_dir``). ``--steps`` sets each config's run length
(long enough for several log rows, short enough for the 2-core budget). Run it alone: every
figure is a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# config -> (steps of the command-line run, log_every); sample/checkpoint intervals as the config.
RUNS = {'gaussian_1d': (10_000, 100), 'mog_ring': (5000, 100), 'mlp_mnist': (2000, 100),
        'dcgan_mnist': (400, 50)}


# Steps of the scanned bare measurement: XLA:CPU runs DCGAN's step in a scan ~20x slower than
# alone, so its scan is timed on a few steps only.
SCAN_STEPS = {'dcgan_mnist': 4}


def _bare(name: str, data_dir: str | None, chunk: int, repeats: int) -> dict:
  """The step alone on a fixed batch, in this process: ``chunk`` jitted steps dispatched one by
  one, and ``lax.scan`` over them in one jitted call (the faster of the two is the bare step)."""
  import jax
  from jax import lax

  from jaxgan import experiment, train
  config = _config(name, data_dir)
  generator, discriminator = experiment.build_models(config)
  step = experiment.build_train_step(config, generator, discriminator)
  keys = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  state = experiment.init_state(config, keys[0], generator, discriminator)
  source = train._source(config, keys[2])
  batch = jax.device_put(train._host_batch(source, 0))
  one = jax.jit(lambda s: step(s, batch, keys[1]), donate_argnums=0)
  n_scan = SCAN_STEPS.get(name, chunk)
  scanned = jax.jit(lambda s: lax.scan(lambda s, _: one(s), s, None, length=n_scan),
                    donate_argnums=0)

  def steps(state):
    for _ in range(chunk):
      state, metrics = one(state)
    return state, metrics

  row = {'bare_chunk': chunk, 'bare_scan_steps': n_scan}
  for label, run, n in (('jit', steps, chunk), ('scan', scanned, n_scan)):
    tick = time.perf_counter()
    state, _ = jax.block_until_ready(run(state))
    row[f'bare_{label}_compile_and_first_s'] = time.perf_counter() - tick
    times = []
    for _ in range(repeats if label == 'jit' or n == chunk else 1):
      tick = time.perf_counter()
      state, _ = jax.block_until_ready(run(state))
      times.append(time.perf_counter() - tick)
    row[f'bare_{label}_steps_per_sec'] = n / statistics.median(times)
  row['bare_steps_per_sec'] = max(row['bare_jit_steps_per_sec'], row['bare_scan_steps_per_sec'])
  return row


def _config(name: str, data_dir: str | None):
  import importlib.util
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  if data_dir:
    config.data.data_dir = data_dir
  steps, log_every = RUNS[name]
  config.train.num_steps, config.train.log_every = steps, log_every
  return config


def _cli(name: str, workdir: str, data_dir: str | None, num_steps: int) -> dict:
  log_every = RUNS[name][1]
  command = [sys.executable, '-m', 'jaxgan.main', f'--config={REPO}/configs/{name}.py',
             f'--workdir={workdir}', f'--config.train.num_steps={num_steps}',
             f'--config.train.log_every={log_every}']
  if data_dir:
    command.append(f'--config.data.data_dir={data_dir}')
  metrics = os.path.join(workdir, 'metrics.jsonl')
  before = os.path.getsize(metrics) if os.path.exists(metrics) else 0
  tick = time.perf_counter()
  proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
  first_row = None
  while proc.poll() is None:
    if first_row is None and os.path.exists(metrics) and os.path.getsize(metrics) > before:
      first_row = time.perf_counter() - tick
    time.sleep(0.01)
  wall = time.perf_counter() - tick
  if proc.returncode:
    raise RuntimeError(f'{" ".join(command)} failed:\n{proc.stderr.read()[-3000:]}')
  return {'wall_s': wall, 'first_row_s': first_row if first_row is not None else wall,
          'command': ' '.join(command[1:])}


def _relabel(workdir: str, step: int, name: str, data_dir: str | None, out_dir: str) -> None:
  """A copy of ``workdir`` whose only checkpoint is its last state, saved as step ``step``."""
  import jax

  from jaxgan import checkpoint, experiment
  config = _config(name, data_dir)
  generator, discriminator = experiment.build_models(config)
  like = experiment.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
  mgr = checkpoint.manager(workdir, keep=config.train.keep_checkpoints)
  state = checkpoint.restore_latest(mgr, like, config=config)
  mgr.close()
  os.makedirs(out_dir)
  shutil.copy(os.path.join(workdir, 'config.json'), out_dir)
  mgr = checkpoint.manager(out_dir, keep=config.train.keep_checkpoints)
  mgr.save(step, args=checkpoint.save_args(state.replace(step=jax.numpy.int32(step))))
  mgr.wait_until_finished()
  mgr.close()


def _import_times(repeats: int = 5) -> dict:
  def median_of(code):
    times = []
    for _ in range(repeats):
      tick = time.perf_counter()
      subprocess.run([sys.executable, '-c', code], check=True, cwd=REPO)
      times.append(time.perf_counter() - tick)
    return statistics.median(times)
  jax_s, jaxgan_s = median_of('import jax'), median_of('import jax, jaxgan')
  return {'import_jax_s': jax_s, 'import_jax_and_jaxgan_s': jaxgan_s,
          'jaxgan_beyond_jax_s': jaxgan_s - jax_s}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--configs', default=','.join(RUNS))
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--out', default=None)
  args = parser.parse_args(argv)
  report = {'command': ' '.join(['python', 'benchmarks/loop_speed.py',
                                 *(sys.argv[1:] if argv is None else argv)]),
            'load_average_start': os.getloadavg(), 'rows': [],
            'machine': machine.host()}
  report['imports'] = _import_times()
  print(report['imports'], flush=True)
  for name in args.configs.split(','):
    steps, log_every = RUNS[name]
    row = {'config': name, 'steps': steps, 'log_every': log_every}
    row.update(_bare(name, args.data_dir, log_every, args.repeats))
    with tempfile.TemporaryDirectory() as tmp:
      run = _cli(name, os.path.join(tmp, 'run'), args.data_dir, steps)
      with open(os.path.join(tmp, 'run', 'metrics.jsonl')) as f:
        rates = [json.loads(line).get('steps_per_sec') for line in f]
      rates = [r for r in rates if r is not None][1:]  # The first row's interval compiles.
      row.update({'cli_steps_per_sec': statistics.median(rates), 'cli_wall_s': run['wall_s'],
                  'first_row_s': run['first_row_s'], 'cli_command': run['command']})
      row['ratio'] = row['cli_steps_per_sec'] / row['bare_steps_per_sec']
      for at in (100, 50_000):
        where = os.path.join(tmp, f'resume_{at}')
        _relabel(os.path.join(tmp, 'run'), at, name, args.data_dir, where)
        row[f'resume_at_{at}_s'] = _cli(name, where, args.data_dir, at + log_every)['wall_s']
    print(json.dumps(row), flush=True)
    report['rows'].append(row)
    _write(report, args.out)
  report['load_average_end'] = os.getloadavg()
  header = ('| config | bare step, jit (steps/s) | bare step, scan (steps/s) | '
            'command line (steps/s) | ratio | first row (s) | command (s) | resume at 100 (s) | '
            'resume at 50,000 (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  lines = [header] + [
      f"| `{r['config']}` | {r['bare_jit_steps_per_sec']:.1f} | "
      f"{r['bare_scan_steps_per_sec']:.1f} | {r['cli_steps_per_sec']:.1f} | "
      f"{r['ratio']:.2f} | {r['first_row_s']:.1f} | {r['cli_wall_s']:.1f} | "
      f"{r['resume_at_100_s']:.1f} | {r['resume_at_50000_s']:.1f} |" for r in report['rows']]
  report['table'] = '\n'.join(lines)
  print(report['table'])
  _write(report, args.out)
  return report


def _write(report: dict, path: str | None) -> None:
  """Rewritten after every row, so that a run stopped early keeps what it measured."""
  if path:
    with open(path, 'w') as f:
      json.dump(report, f, indent=1)


if __name__ == '__main__':
  main()
