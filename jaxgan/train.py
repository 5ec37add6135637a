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
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
from absl import logging

from jaxgan import checkpoint, distributed, experiment, faults, loop, visualize
from jaxgan import config as config_lib
from jaxgan import data as data_lib
from jaxgan import parallel as parallel_lib
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


def _source(config: ml_collections.ConfigDict, key: jax.Array) -> loop.Source:
  """The run's batches: toy data drawn from ``key``, or the training split shuffled by ``key``."""
  size = config.train.batch_size * config.train.num_d_steps
  if config.data.name in data_lib.TOY_DATASETS:
    return loop.toy_source(config.data.name, key, size, scale=data_scale(config))
  images = data_lib.load_images(config.data.name, split='train', data_dir=config.data.data_dir,
                                download=config.data.download)
  faults.check_images(images, data_shape=data_lib.data_shape(config.data.name),
                      num_classes=data_lib.NUM_CLASSES.get(config.data.name, 0),
                      name=config.data.name)
  return loop.image_source(images, key, size, loader=config.data.get('loader', 'device'))


def _host_batch(source: loop.Source, step: int) -> dict[str, np.ndarray]:
  """Batch ``step`` (0-based) of ``source`` on the host."""
  x = jax.tree.map(lambda a: a[0], source.plan(step, 1))
  return jax.device_get(jax.jit(source.batch)(source.data, x))


def _real_for_plots(config: ml_collections.ConfigDict, source: loop.Source,
                    key: jax.Array) -> np.ndarray:
  """``train.num_samples`` real toy points to draw beside the generated ones (images: a batch)."""
  if config.data.name in data_lib.TOY_DATASETS:
    return np.asarray(data_lib.TOY_DATASETS[config.data.name](key, config.train.num_samples))
  return _host_batch(source, 0)['x']


def _scalars(metrics) -> dict[str, float]:
  """Device metrics (already averaged over devices) -> plain floats."""
  return {k: float(np.asarray(v).reshape(-1)[0]) for k, v in jax.device_get(metrics).items()}


class _Progress:
  """A tqdm bar with steps/s, ETA and the latest losses on a terminal; log lines otherwise."""

  def __init__(self, total: int, start: int):
    self.bar = None
    if sys.stderr.isatty():
      from tqdm import tqdm
      self.bar = tqdm(total=total, initial=start, unit='step', dynamic_ncols=True)
    self.total, self.last = total, start

  def update(self, step: int, steps_per_sec: float, metrics: dict[str, float]) -> None:
    if self.bar is None:
      logging.info('step %d/%d  %.1f steps/s  d_loss %.4f  g_loss %.4f', step, self.total,
                   steps_per_sec, metrics['d_loss'], metrics['g_loss'])
      return
    self.bar.update(step - self.last)
    self.bar.set_postfix(d_loss=f'{metrics["d_loss"]:.4f}', g_loss=f'{metrics["g_loss"]:.4f}')
    self.last = step

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       should_stop: Callable[[int], bool] | None = None) -> GANState:
  """Trains the GAN that ``config`` describes, writing everything into ``workdir``.

  Writes ``checkpoints/`` (orbax, every ``train.checkpoint_every`` steps and at the end, the last
  ``train.keep_checkpoints`` kept), ``metrics.jsonl`` (one JSON object per logged step with
  ``step``, ``d_loss``, ``g_loss``, ``d_real``, ``d_fake``, gradient norms and ``steps_per_sec``),
  TensorBoard event files, ``samples/step_<N>.png`` and ``config.json``. With
  ``train.eval_every > 0``, sample-quality metrics (:mod:`jaxgan.eval.evaluator`) join the
  ``metrics.jsonl`` row of every ``eval_every``-th step and of the last (a row of their own if
  that step is not logged), and TensorBoard as ``eval/<name>``. Run again with the same
  workdir, it resumes from the latest checkpoint and continues to ``train.num_steps``.

  The steps run in jitted chunks (:mod:`jaxgan.loop`) of :func:`jaxgan.loop.chunk_length`
  steps, with the data on the device; logging, sampling, evaluation and checkpoints happen
  between chunks. ``should_stop(step)``, asked after each chunk, ends the run there as if that
  step were ``train.num_steps`` (logged, sampled and checkpointed): e.g. a time budget.

  Faults (see the README, :mod:`jaxgan.faults` and :mod:`jaxgan.checkpoint`): a damaged
  checkpoint is skipped for the previous one, a killed run's extra ``metrics.jsonl`` rows are
  dropped on resume, and the data are checked before anything compiles.

  Returns:
    The final state (on the host, one copy).

  Raises:
    ValueError: a bad config (before anything is built) or a bad batch (naming the step).
    jaxgan.faults.NonFiniteError: a NaN/inf step with ``train.on_nonfinite='stop'``.
    jaxgan.checkpoint.CheckpointMismatchError: the workdir holds another config's checkpoints.
  """
  parallel = config.train.parallel
  # Before the processes load or build anything (the rowwise source would fail first, with a
  # less clear message); :func:`drive` checks again for the trainers that come to it directly.
  distributed.check_same_config(config)
  distributed.check_global_batch(config.train.batch_size)
  config_lib.validate(config, num_devices=1 if parallel == 'none' else len(_devices()))
  axis_name = None if parallel == 'none' else AXIS_NAME
  generator, discriminator = build_models(config, axis_name=axis_name)
  # Samples and evaluation run outside the device axis: G's batch norm without it (the same
  # parameters), since standing statistics run G in training mode.
  sampler = build_models(config)[0]
  train_step = build_train_step(config, generator, discriminator, axis_name=axis_name)
  init_key, step_key, data_key, sample_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
  state = experiment.init_state(config, init_key, generator, discriminator)
  source = _source(config, data_key)
  real_for_plots = _real_for_plots(config, source, jax.random.fold_in(data_key, 2**31 - 1))
  evaluate = None
  if config.train.get('eval_every', 0):
    evaluate = evaluator.make_evaluator(config, sampler, key=jax.random.fold_in(sample_key, 1))
  t = config.train

  def save_samples(state: GANState, path: str, step: int) -> None:
    num = min(t.num_samples, 64) if real_for_plots.ndim == 4 else t.num_samples
    fake = sample(config, sampler, state, sample_key, num)
    visualize.save_samples(path, real_for_plots, np.asarray(fake), title=f'step {step}')

  def check_batch(batch, step: int) -> None:
    faults.check_batch(batch, **faults.batch_spec(config), step=step)

  return drive(config, workdir, state=state, train_step=train_step, source=source,
               step_key=step_key, save_samples=save_samples, check_batch=check_batch,
               evaluate=evaluate, axis_name=axis_name, should_stop=should_stop)


def drive(config: ml_collections.ConfigDict, workdir: str, *, state: GANState,
          train_step: Callable, source: loop.Source, step_key: jax.Array,
          save_samples: Callable[[GANState, str, int], None],
          check_batch: Callable[[dict, int], None] | None = None,
          evaluate: Callable[[GANState], dict] | None = None, axis_name: str | None = None,
          should_stop: Callable[[int], bool] | None = None, row_means: bool = False,
          on_row: Callable[[dict], None] | None = None) -> GANState:
  """The driver of every game: ``train_step`` in chunks, and what happens between them.

  :func:`train_and_evaluate` builds a GAN's pieces and calls it; so do the image-to-image
  systems (:mod:`jaxgan.pix2pix`, :mod:`jaxgan.cyclegan`). It restores the latest checkpoint
  of ``workdir`` into ``state`` (the state at step 0), checks the first batch
  (``check_batch(batch, step)`` on the host, before anything compiles), runs the chunks
  (:mod:`jaxgan.loop`; ``config.train`` gives ``num_steps``, the ``*_every`` intervals,
  ``parallel``, ``on_nonfinite``, ``keep_checkpoints`` and ``chunk_mode``) and between them
  logs to ``metrics.jsonl`` and TensorBoard, writes ``save_samples(state, path, step)``,
  ``evaluate(state)``'s metrics and checkpoints, as :func:`train_and_evaluate` describes.
  ``step_key`` is the key every step folds its step number into. ``train_step`` is a step or
  a :class:`jaxgan.loop.Switched` one (a compiled step per variant, chosen on the host for each
  step; a chunk runs as runs of equal variants). With ``row_means`` every
  logged row also holds each metric's mean over the chunk that ends there, as
  ``chunk_mean/<name>`` (a chunk is :func:`jaxgan.loop.chunk_length` steps: the steps since the
  previous row only where that is ``log_every``, as the semi-supervised trainer's per-epoch
  means with its default intervals); ``on_row(row)`` is
  called with each row as it is written to ``metrics.jsonl``.

  Preemption: a SIGTERM or SIGINT during the run (:func:`jaxgan.distributed.preemption_guard`;
  the process's own handlers are back when ``drive`` returns) ends it after the chunk that is
  running: that step is checkpointed (logged, sampled and evaluated only where its intervals
  say, so ``metrics.jsonl`` reads as one run), one line says where to resume, and ``drive``
  returns the state of that step; the same call resumes there, bit for bit.

  Several processes (:func:`jaxgan.distributed.initialize`; ``parallel='shard_map'``): every
  process runs ``drive`` with the same arguments; they check that their configs agree and that
  the global batch splits over them, the step runs over a mesh of every process's devices, each
  process feeds its rows of a :attr:`jaxgan.loop.Source.rowwise` source, a signal on any
  process stops all of them after the same chunk, checkpoints are written by all of them
  (orbax), and only process 0 writes ``metrics.jsonl``, TensorBoard, samples, evaluations,
  ``config.json`` and the progress bar.

  Returns:
    The final state (on the host, one copy).
  """
  parallel = config.train.parallel
  devices = _devices()
  multi = jax.process_count() > 1
  main = distributed.is_main_process()
  distributed.check_same_config(config)
  distributed.check_global_batch(config.train.batch_size)
  stop = config.train.on_nonfinite == 'stop'
  os.makedirs(workdir, exist_ok=True)
  manager = checkpoint.manager(workdir, keep=config.train.keep_checkpoints)
  state = checkpoint.restore_latest(manager, state, config=config)
  start = int(state.step)
  if main:
    faults.rewind_metrics(os.path.join(workdir, 'metrics.jsonl'), start)
  if start:
    logging.info('Resuming from the checkpoint of step %d in %s', start, workdir)
  if main:
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort(indent=2))

  total = config.train.num_steps
  if start < total and check_batch is not None:  # Checked before anything compiles.
    check_batch(_host_batch(source, start), start + 1)
  split_plan = multi and source.rowwise  # Each process feeds only its rows of the batch.
  steps = loop.switched(train_step)
  placed = {}  # One compiled chunk per variant of the step, compiled when first run.

  def place(variant):
    if variant not in placed:
      placed[variant] = parallel_lib.parallelize_chunk(
          loop.make_chunk(steps.train_step(variant), source.batch,
                          axis_name=None if split_plan else axis_name),
          parallel, devices, donate=not stop,  # 'stop' keeps each chunk's initial state.
          split_plan=split_plan)
    return placed[variant]

  dp = place(steps.variant(start))  # Placing the state and data is the same for every variant.
  scanned = loop.use_scan(config)

  def run(state, data, xs, key, first):
    """Steps ``first + 1 ..`` of the plan ``xs``: each run of equal variants one placed chunk
    (scanned, or stepwise)."""
    length = jax.tree.leaves(xs)[0].shape[0]
    parts = loop.segments(first, length, steps.variant)
    outs = []
    for variant, offset, n in parts:
      part = xs if len(parts) == 1 else jax.tree.map(lambda a, o=offset, n=n: a[o:o + n], xs)
      chunk = place(variant).step
      state, out = (chunk if scanned else loop.stepwise(chunk))(state, data, part, key)
      outs.append((n, out))
    return state, loop.join_outs(outs)
  data = dp.put_batch(source.data)
  writer = _writer(workdir) if main else _NullWriter()
  progress = _Progress(total, start) if main else _NullWriter()
  dp_state = dp.put_state(state)
  monitor = faults.NonFiniteMonitor(config.train.on_nonfinite, manager=manager)
  metrics_path = os.path.join(workdir, 'metrics.jsonl')
  t = config.train
  clock = {'tick': time.perf_counter(), 'step': start}  # Where steps/s was last measured.

  def check(first, length, xs, before, out):
    """A chunk's outputs on the host, after its non-finite check (raising for 'stop' with the
    state after the last good step: the chunk's good head rerun from its initial state)."""
    out = jax.device_get(out)  # One transfer: the flags, the logged step's metrics, the means.
    try:
      monitor.check_chunk(first + 1, out['watched'])  # Before anything is logged or saved.
    except faults.NonFiniteError as e:
      good = e.step - 1 - first
      kept = run(before, data, loop.head(xs, good), step_key, first)[0] if good else before
      e.state = jax.device_get(dp.get_state(kept))
      raise
    return out

  def append(row):
    if not main:
      return
    with open(metrics_path, 'a') as f:
      f.write(json.dumps(row) + '\n')
    if on_row is not None:
      on_row(row)

  def log(step, out, results):
    scalars = _scalars(out['last'])
    now = time.perf_counter()
    scalars['steps_per_sec'] = (step - clock['step']) / (now - clock['tick'])
    clock.update(tick=now, step=step)
    means = _scalars(out['mean'] if row_means else
                     {k: out['mean'][k] for k in ('d_loss', 'g_loss')})
    means = {f'chunk_mean/{k}': v for k, v in means.items()}
    append({'step': step, **scalars, **results, **(means if row_means else {})})
    writer.write_scalars(step, {**scalars, **means})
    progress.update(step, scalars['steps_per_sec'], scalars)

  # A scanned chunk whose end needs no state (no sample, checkpoint or evaluation) is read while
  # the next one runs: the host's logging overlaps the device's steps. (Stepwise chunks are not:
  # the CPU runs their steps as they are dispatched, so a pending chunk's steps/s would count
  # the next chunk's time.)
  pending = None
  preempted = None  # The step a SIGTERM/SIGINT stopped the run at.
  with distributed.preemption_guard() as preemption:
    for first, length in loop.chunk_ends(start, total, loop.chunk_length(config)):
      xs = source.plan(first, length)
      before, (dp_state, out) = dp_state, run(dp_state, data, xs, step_key, first)
      if pending is not None:
        pending_step = pending[0] + pending[1]
        host = check(*pending)
        if pending_step % t.log_every == 0:
          log(pending_step, host, {})
        pending = None
      step = first + length
      # Every process asks, after every chunk: they all stop after the same one.
      preempt = step < total and distributed.any_process(preemption.requested)
      if scanned and not (step == total or should_stop is not None or preempt
                          or step % t.sample_every == 0 or step % t.checkpoint_every == 0
                          or (evaluate is not None and step % t.eval_every == 0)):
        pending = (first, length, xs, before, out)
        continue
      host = check(first, length, xs, before, out)
      last = step == total or (should_stop is not None and should_stop(step))
      results = {}
      if evaluate is not None and main and (step % t.eval_every == 0 or last):
        eval_start = time.perf_counter()
        results = evaluate(dp.get_state(dp_state))
        clock['tick'] += time.perf_counter() - eval_start  # Evaluating is not training.
        writer.write_scalars(step, {f'eval/{name}': value for name, value in results.items()})
        logging.info('step %d: %s', step, results)
        if not (step % t.log_every == 0 or last):
          append({'step': step, **results})
      if step % t.log_every == 0 or last:
        log(step, host, results)
      if main and (step % t.sample_every == 0 or last):
        save_samples(dp.get_state(dp_state),
                     os.path.join(workdir, 'samples', f'step_{step}.png'), step)
      if step % t.checkpoint_every == 0 or last or preempt:
        # Several processes save the global state: orbax writes each array once, from all.
        manager.save(step, args=checkpoint.save_args(dp_state if multi else
                                                     dp.get_state(dp_state)))
      if preempt and not last:
        preempted = step
        break
      if last:
        break
  progress.close()
  manager.wait_until_finished()
  manager.close()
  writer.close()
  if preempted is not None:
    logging.warning('%s received: stopped after step %d of %d with a checkpoint in %s; run the '
                    'same command to resume from step %d.', preemption.signal or 'signal',
                    preempted, total, os.path.join(workdir, 'checkpoints'), preempted)
  return jax.device_get(dp.get_state(dp_state))


def _devices() -> list:
  """The devices a data-parallel run spreads over: this process's, or every process's."""
  return jax.devices() if jax.process_count() > 1 else jax.local_devices()


class _NullWriter:
  """What processes other than 0 write to TensorBoard and the progress bar: nothing."""

  def write_scalars(self, step, scalars) -> None:
    del step, scalars

  def update(self, *args) -> None:
    del args

  def close(self) -> None:
    pass


def check_driver_fields(config: ml_collections.ConfigDict) -> None:
  """One-line ``ValueError`` messages for the ``config.train`` fields :func:`drive` counts with
  (``batch_size``, ``num_steps`` and the ``*_every`` intervals: each >= 1), for the systems'
  own ``validate`` (:mod:`jaxgan.translation`, :mod:`jaxgan.super_resolution`)."""
  t = config.train
  if t.batch_size < 1:
    raise ValueError(f'config.train.batch_size={t.batch_size} must be >= 1')
  for name in ('num_steps', 'log_every', 'sample_every', 'checkpoint_every'):
    if t[name] < 1:
      raise ValueError(f'config.train.{name}={t[name]} must be >= 1')


def _writer(workdir: str):
  """TensorBoard event files in ``workdir/tensorboard``: clu's writer (it loads TensorFlow), in a
  thread of its own so that the next chunk does not wait for the writes."""
  from clu import metric_writers
  return metric_writers.AsyncWriter(metric_writers.SummaryWriter(os.path.join(workdir,
                                                                              'tensorboard')))
