"""``train_and_evaluate``: the driver that trains the GAN a config describes.

The pieces it drives live in their modules: the two-player game and its train step
(:mod:`jaxgan.game`), the GAN's objectives (:mod:`jaxgan.gan`), the builders from a config
(:mod:`jaxgan.experiment`) and data parallelism (:mod:`jaxgan.parallel`). Their public names are
re-exported here (``jaxgan.train.GANState``, ``make_train_step``, ``parallelize``, ...), where
earlier versions defined them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator

import jax
import ml_collections
import numpy as np
from absl import logging

from jaxgan import checkpoint, experiment, faults, visualize
from jaxgan import config as config_lib
from jaxgan import data as data_lib
from jaxgan.eval import evaluator
from jaxgan.experiment import (
  build_models,
  build_train_step,
  data_scale,
  mode_collapse_discriminator,
  optimizers,
  sample,
  sampling_variables,
)
from jaxgan.game import UPDATE_RULES, GANState, make_train_step, update_ema
from jaxgan.gan import LATENT_DISTRIBUTIONS, apply_model, init_state, sample_labels, sample_latent
from jaxgan.models import MODELS
from jaxgan.parallel import AXIS_NAME, PARALLEL_MODES, DataParallel, parallelize

__all__ = [
    'AXIS_NAME', 'GANState', 'DataParallel', 'LATENT_DISTRIBUTIONS', 'MODELS', 'PARALLEL_MODES',
    'UPDATE_RULES', 'apply_model', 'build_models', 'build_train_step', 'data_scale',
    'init_state', 'make_train_step', 'mode_collapse_discriminator', 'optimizers', 'parallelize',
    'sample', 'sample_labels', 'sample_latent', 'sampling_variables', 'train_and_evaluate',
    'update_ema',
]


def _batches(config: ml_collections.ConfigDict, key: jax.Array, start_step: int
             ) -> Iterator[dict[str, np.ndarray]]:
  size = config.train.batch_size * config.train.num_d_steps
  if config.data.name in data_lib.TOY_DATASETS:
    return data_lib.toy_batches(config.data.name, key, size, start_step=start_step,
                                scale=data_scale(config))
  return data_lib.image_batches(config.data.name, split='train', batch_size=size,
                                seed=config.seed, data_dir=config.data.data_dir,
                                download=config.data.download, start_step=start_step)


def _real_for_plots(config: ml_collections.ConfigDict, key: jax.Array) -> np.ndarray:
  """``train.num_samples`` real toy points to draw beside the generated ones (images: a batch)."""
  if config.data.name in data_lib.TOY_DATASETS:
    return np.asarray(data_lib.TOY_DATASETS[config.data.name](key, config.train.num_samples))
  return next(_batches(config, key, 0))['x']


def _scalars(metrics) -> dict[str, float]:
  """Device metrics (already averaged over devices) -> plain floats."""
  return {k: float(np.asarray(v).reshape(-1)[0]) for k, v in jax.device_get(metrics).items()}


class _Progress:
  """A one-line progress bar on a terminal; plain log lines otherwise."""

  def __init__(self, total: int):
    self.total, self.tty = total, sys.stderr.isatty()

  def update(self, step: int, steps_per_sec: float, metrics: dict[str, float]) -> None:
    text = (f'step {step}/{self.total}  {steps_per_sec:.1f} steps/s  '
            f'd_loss {metrics["d_loss"]:.4f}  g_loss {metrics["g_loss"]:.4f}')
    if self.tty:
      done = int(30 * step / self.total)
      sys.stderr.write(f'\r[{"#" * done}{"." * (30 - done)}] {text}')
      sys.stderr.flush()
      if step == self.total:
        sys.stderr.write('\n')
    else:
      logging.info(text)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> GANState:
  """Trains the GAN that ``config`` describes, writing everything into ``workdir``.

  Writes ``checkpoints/`` (orbax, every ``train.checkpoint_every`` steps and at the end, the last
  ``train.keep_checkpoints`` kept), ``metrics.jsonl`` (one JSON object per logged step with
  ``step``, ``d_loss``, ``g_loss``, ``d_real``, ``d_fake``, gradient norms and ``steps_per_sec``),
  TensorBoard event files, ``samples/step_<N>.png`` and ``config.json``. With
  ``train.eval_every > 0``, sample-quality metrics (:mod:`jaxgan.eval.evaluator`) join the
  ``metrics.jsonl`` row of every ``eval_every``-th step and of the last (a row of their own if
  that step is not logged), and TensorBoard as ``eval/<name>``. Run again with the same
  workdir, it resumes from the latest checkpoint and continues to ``train.num_steps``.

  Faults (see the README, :mod:`jaxgan.faults` and :mod:`jaxgan.checkpoint`): a damaged
  checkpoint is skipped for the previous one, a killed run's extra ``metrics.jsonl`` rows are
  dropped on resume, and each batch is checked before the step.

  Returns:
    The final state (on the host, one copy).

  Raises:
    ValueError: a bad config (before anything is built) or a bad batch (naming the step).
    jaxgan.faults.NonFiniteError: a NaN/inf step with ``train.on_nonfinite='stop'``.
    jaxgan.checkpoint.CheckpointMismatchError: the workdir holds another config's checkpoints.
  """
  parallel = config.train.parallel
  devices = jax.local_devices()
  config_lib.validate(config, num_devices=1 if parallel == 'none' else len(devices))
  axis_name = None if parallel == 'none' else AXIS_NAME
  generator, discriminator = build_models(config, axis_name=axis_name)
  # Samples and evaluation run outside the device axis: G's batch norm without it (the same
  # parameters), since standing statistics run G in training mode.
  sampler = build_models(config)[0]
  dp = parallelize(build_train_step(config, generator, discriminator, axis_name=axis_name),
                   parallel, devices)

  init_key, step_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  state = experiment.init_state(config, init_key, generator, discriminator)
  os.makedirs(workdir, exist_ok=True)
  manager = checkpoint.manager(workdir, keep=config.train.keep_checkpoints)
  state = checkpoint.restore_latest(manager, state, config=config)
  start = int(state.step)
  faults.rewind_metrics(os.path.join(workdir, 'metrics.jsonl'), start)
  if start:
    logging.info('Resuming from the checkpoint of step %d in %s', start, workdir)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort(indent=2))

  from flax.metrics import tensorboard  # Loads TensorFlow: only a training run pays for it.
  writer = tensorboard.SummaryWriter(os.path.join(workdir, 'tensorboard'))
  total = config.train.num_steps
  batches = _batches(config, data_key, start)
  progress = _Progress(total)
  real_for_plots = _real_for_plots(config, jax.random.fold_in(data_key, 2**31 - 1))
  evaluate = None
  if config.train.get('eval_every', 0):
    evaluate = evaluator.make_evaluator(config, sampler, key=jax.random.fold_in(sample_key, 1))
  dp_state = dp.put_state(state)
  tick, ticked_step = time.perf_counter(), start
  monitor = faults.NonFiniteMonitor(config.train.on_nonfinite, manager=manager)
  batch_spec = faults.batch_spec(config)
  for step in range(start + 1, total + 1):
    batch = next(batches)
    faults.check_batch(batch, **batch_spec, step=step)
    dp_state, metrics = dp.step(dp_state, dp.put_batch(batch), step_key)
    monitor.record(step, metrics)
    last = step == total
    if last or not (step % config.train.log_every and step % config.train.sample_every
                    and step % config.train.checkpoint_every):
      monitor.check()  # Stops before anything non-finite is logged, drawn or saved.
    results = {}
    if evaluate is not None and (step % config.train.eval_every == 0 or last):
      monitor.check()
      eval_start = time.perf_counter()
      results = evaluate(dp.get_state(dp_state))
      tick += time.perf_counter() - eval_start  # Evaluating is not training: keep it out of speed.
      for name, value in results.items():
        writer.scalar(f'eval/{name}', value, step)
      logging.info('step %d: %s', step, results)
      if not (step % config.train.log_every == 0 or last):
        with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
          f.write(json.dumps({'step': step, **results}) + '\n')
    if step % config.train.log_every == 0 or last:
      scalars = _scalars(metrics)
      now = time.perf_counter()
      scalars['steps_per_sec'] = (step - ticked_step) / (now - tick)
      tick, ticked_step = now, step
      with open(os.path.join(workdir, 'metrics.jsonl'), 'a') as f:
        f.write(json.dumps({'step': step, **scalars, **results}) + '\n')
      for name, value in scalars.items():
        writer.scalar(name, value, step)
      progress.update(step, scalars['steps_per_sec'], scalars)
    if step % config.train.sample_every == 0 or last:
      fake = sample(config, sampler, dp.get_state(dp_state), sample_key,
                    min(config.train.num_samples, 64) if real_for_plots.ndim == 4
                    else config.train.num_samples)
      visualize.save_samples(os.path.join(workdir, 'samples', f'step_{step}.png'),
                             real_for_plots, np.asarray(fake), title=f'step {step}')
    if step % config.train.checkpoint_every == 0 or last:
      manager.save(step, args=checkpoint.save_args(dp.get_state(dp_state)))
  manager.wait_until_finished()
  manager.close()
  writer.flush()
  return jax.device_get(dp.get_state(dp_state))
