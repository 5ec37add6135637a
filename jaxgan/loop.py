"""Many train steps in one jitted call: a ``lax.scan`` over steps, with the data drawn inside.

A Python loop that dispatches one step at a time, moves one batch from the host and fetches one
metrics pytree per step spends most of a small model's time outside the step. A *chunk* runs
``length`` steps in one call instead, and the driver (:func:`jaxgan.train.train_and_evaluate`)
logs, samples, evaluates and checkpoints between chunks.

The data of a chunk comes from a :class:`Source`: arrays placed on the device once (``data``), a
*plan* of the chunk's steps computed before it (the step numbers, or the example indices of
each batch) and a pure function that makes a step's batch from ``data`` and its entry of the
plan. Every batch is a function of its step, so a resumed run finds its place in O(1):

* toy distributions draw batch ``t`` from ``fold_in(data_key, t)`` (:func:`toy_source`), on the
  device, a chunk's batches at a time;
* datasets that fit in device memory are kept there as uint8 and gathered by
  :func:`jaxgan.data.batch_indices` (:func:`image_source`, ``data.loader='device'``);
* ``data.loader='host'`` keeps the arrays in host memory and sends each chunk's batches (the
  same indices, the same batches) with the chunk.

Non-finite steps: a chunk reports every step's flags (:data:`jaxgan.faults.WATCHED_METRICS`) for
:class:`jaxgan.faults.NonFiniteMonitor`, and runs nothing per step but the step itself (a guard
per step costs a third of a small model's speed). With ``train.on_nonfinite='skip'`` the step
keeps the state from before a flagged update; with ``'stop'`` the driver keeps the chunk's
initial state and, when a step is flagged, reruns the chunk's good steps (:func:`head`) to get
the state after the last good one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgan import data as data_lib
from jaxgan import faults, models

LOADERS = ('device', 'host')


class Source(NamedTuple):
  """Where a chunk's batches come from.

  Attributes:
    data: a pytree of arrays the chunk reads (placed on the devices once), e.g. a PRNG key or a
      whole uint8 dataset.
    plan: ``plan(start, length) -> xs``, called on the host before a chunk of steps
      ``start, ..., start + length - 1`` (0-based batch numbers): a pytree with leading axis
      ``length`` (numpy or device arrays), scanned over with the steps.
    batch: ``batch(data, x) -> {'x': (B, ...), ...}``, traced inside the chunk: the global batch
      of one step from ``data`` and that step's entry ``x`` of the plan.
    rowwise: whether every leaf of a step's plan entry has the batch as its first axis and
      ``batch`` makes row ``i`` of the batch from row ``i`` of the entry alone: then several
      processes each feed only their rows of the plan (:func:`jaxgan.parallel.parallelize_chunk`);
      otherwise every process feeds the whole plan and every device takes its rows of the batch.
  """

  data: Any
  plan: Callable[[int, int], Any]
  batch: Callable[[Any, Any], dict]
  rowwise: bool = False


def toy_source(name: str, key: jax.Array, batch_size: int, *, scale: float = 1.0) -> Source:
  """Batch ``t`` is :func:`jaxgan.data.toy_batch` ``(name, key, t)``, drawn on the device.

  The plan draws the chunk's batches in a jitted call of their own, so each is materialized
  bit for bit as the per-step loop drew it: drawn inside the train step, XLA would fuse the
  sampler into D's first layer and may round a batch's last bit differently.
  """
  draw = jax.jit(jax.vmap(lambda t: data_lib.toy_batch(name, key, t, batch_size, scale=scale)))
  return Source(data={}, plan=lambda start, length: draw(jnp.arange(start, start + length)),
                batch=lambda data, x: {'x': x}, rowwise=True)


def image_source(images: dict[str, np.ndarray], key: jax.Array, batch_size: int, *,
                 loader: str = 'device') -> Source:
  """Shuffled batches of ``images`` (``{'image': (N, ...) uint8, 'label': (N,)}``).

  Batch ``t`` holds examples :func:`jaxgan.data.batch_indices` ``(key, t)``, scaled to [-1, 1]
  (:func:`jaxgan.data.to_unit_range`): ``{'x': (B, H, W, C) float32, 'label': (B,) int32}``.
  ``loader='device'`` keeps ``images`` on the device and gathers there; ``'host'`` gathers on
  the host and sends the chunk's uint8 batches with it (for data too large for the device).
  """
  if loader not in LOADERS:
    raise ValueError(f'config.data.loader={loader!r} is not allowed; expected one of '
                     f'{list(LOADERS)}')
  n = images['image'].shape[0]
  data_lib.steps_per_epoch(n, batch_size)  # A clear error for a dataset smaller than a batch.
  indices = jax.jit(lambda start, length: data_lib.batch_indices(
      key, start, length, num_examples=n, batch_size=batch_size), static_argnums=1)
  scale = lambda ex: {'x': data_lib.to_unit_range(ex['image']), 'label': ex['label']}
  if loader == 'device':
    return Source(data=images, plan=lambda start, length: indices(start, length),
                  batch=lambda data, idx: scale(jax.tree.map(lambda a: a[idx], data)),
                  rowwise=True)

  def host_plan(start, length):
    idx = np.asarray(indices(start, length))
    return {k: v[idx] for k, v in images.items()}

  return Source(data={}, plan=host_plan, batch=lambda data, ex: scale(ex), rowwise=True)


def chunk_length(config) -> int:
  """Steps per chunk: the greatest common divisor of the intervals at which the driver acts.

  Logging, sampling, checkpointing and evaluation then fall on chunk ends. Intervals longer
  than the run (``train.num_steps``) only act at its last step and are left out; the last chunk
  of a run ends at ``train.num_steps`` and may be shorter.
  """
  t = config.train
  intervals = [t.log_every, t.sample_every, t.checkpoint_every, t.get('eval_every', 0)]
  return math.gcd(*[i for i in intervals if 0 < i <= t.num_steps]) or t.num_steps


def chunk_ends(start: int, stop: int, length: int) -> list[tuple[int, int]]:
  """``[(first, n), ...]``: chunks covering steps ``start + 1 .. stop`` that end on multiples of
  ``length`` (or at ``stop``)."""
  out, step = [], start
  while step < stop:
    end = min(stop, (step // length + 1) * length)
    out.append((step, end - step))
    step = end
  return out


def _local(batch: dict, axis_name: str | None) -> dict:
  """This device's rows of a global batch (row ``i`` to device ``i // (B / N)``)."""
  if axis_name is None:
    return batch
  n = lax.axis_size(axis_name)

  def rows(a):
    size = a.shape[0] // n
    return lax.dynamic_slice_in_dim(a, lax.axis_index(axis_name) * size, size)

  return jax.tree.map(rows, batch)


def make_chunk(train_step: Callable, batch_fn: Callable, *,
               axis_name: str | None = None) -> Callable:
  """Builds ``chunk(state, data, xs, key) -> (state, out)``: ``train_step`` scanned over ``xs``.

  Step ``i`` of the chunk trains on ``batch_fn(data, xs[i])`` (this device's rows of it under
  ``axis_name``) with the step key ``key`` (the step folds in its own counter). Nothing but the
  step runs per step: a non-finite step is the step's business (``skip_nonfinite``) or the
  driver's, which reruns the good part of a flagged chunk (:func:`head`).

  Args:
    train_step: ``(state, batch, key) -> (state, metrics)``, e.g.
      :func:`jaxgan.game.make_train_step`.
    batch_fn: :attr:`Source.batch`.
    axis_name: the device axis under pmap/shard_map, or None.

  Returns:
    ``out`` holds ``last`` (the metrics of the chunk's last step, those a log row shows),
    ``mean`` (each metric's mean over the chunk's steps) and ``watched`` (each of
    :data:`jaxgan.faults.WATCHED_METRICS` the step reports, for every step: ``(length,)``).
  """

  def chunk(state, data, xs, key):
    def body(state, x):
      return train_step(state, _local(batch_fn(data, x), axis_name), key)

    if jax.tree.leaves(xs)[0].shape[0] == 1:  # One step (stepwise): no loop for XLA to run.
      state, metrics = body(state, jax.tree.map(lambda a: a[0], xs))
      metrics = jax.tree.map(lambda m: m[None], metrics)
    else:
      state, metrics = lax.scan(body, state, xs)
    out = {'last': jax.tree.map(lambda m: m[-1], metrics),
           'mean': jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics),
           'watched': {k: metrics[k] for k in faults.WATCHED_METRICS if k in metrics}}
    return state, out

  return chunk


def stepwise(run_chunk: Callable) -> Callable:
  """A chunk run one step per call: ``run_chunk`` (placed, e.g. by
  :func:`jaxgan.parallel.parallelize_chunk`) on each step's entry of the plan in turn.

  Same arguments and results as ``run_chunk`` on the whole plan (``watched`` concatenated,
  ``mean`` the mean of the steps', ``last`` the last step's), but the steps are separate
  dispatches of a one-step program instead of one ``lax.scan``: XLA:CPU runs convolutional
  steps inside a loop many times slower than alone (DCGAN on MNIST: about 0.6 against 13.8
  steps/s on 2 cores), so image models on a CPU train stepwise (``train.chunk_mode``).
  """

  def run(state, data, xs, key):
    length = jax.tree.leaves(xs)[0].shape[0]
    outs = []
    for i in range(length):
      state, out = run_chunk(state, data, jax.tree.map(lambda a, i=i: a[i:i + 1], xs), key)
      outs.append((1, out))
    return state, join_outs(outs)

  return run


def join_outs(parts: list[tuple[int, dict]]) -> dict:
  """The ``out`` of a chunk run in consecutive parts, from ``[(length, out), ...]`` in order:
  ``last`` the last part's, ``mean`` the mean over the steps (each part's weighted by its
  length), ``watched`` concatenated along the steps (the last axis). One part is returned as
  it is."""
  if len(parts) == 1:
    return parts[0][1]
  total = sum(n for n, _ in parts)
  return {
      'last': parts[-1][1]['last'],
      'mean': jax.tree.map(
          lambda *m: sum(n * x for (n, _), x in zip(parts, m, strict=True)) / total,
          *[o['mean'] for _, o in parts]),
      'watched': jax.tree.map(lambda *w: jnp.concatenate(w, axis=-1),
                              *[o['watched'] for _, o in parts])}


class Switched(NamedTuple):
  """A train step chosen on the host for each step, among a few compiled programs.

  What a step computes may depend on its number: StyleGAN2's lazy regularizers run on every
  ``k``-th step, PGGAN trains the networks of the step's stage. Inside one program that is a
  ``lax.cond`` on ``state.step``, and on XLA:CPU a gradient taken inside a conditional runs its
  convolutions about 40 times slower than the same gradient outside one
  (``benchmarks/cond_gradients.py``). A ``Switched`` step instead names each step's *variant*
  on the host and compiles one conditional-free step per variant; the driver
  (:func:`jaxgan.train.drive`) runs each chunk as runs of equal variants (:func:`segments`).
  The state, the metrics' structure and the batches are the same for every variant, so a
  checkpoint, a resume and ``metrics.jsonl`` do not see the difference.

  Attributes:
    variant: ``variant(step) -> v``, ``step`` the 0-based number of the step (``state.step``
      before it); ``v`` hashable (e.g. ``(True, False)`` or a stage index).
    train_step: ``train_step(v) -> step``, ``step(state, batch, key) -> (state, metrics)``: the
      step of every step whose variant is ``v``.
  """
  variant: Callable[[int], Any]
  train_step: Callable[[Any], Callable]


def switched(train_step) -> Switched:
  """``train_step`` as a :class:`Switched` step (a plain step: one variant, ``None``)."""
  if isinstance(train_step, Switched):
    return train_step
  return Switched(lambda step: None, lambda variant: train_step)


def segments(first: int, length: int, variant: Callable[[int], Any]
             ) -> list[tuple[Any, int, int]]:
  """``[(v, offset, n), ...]``: steps ``first .. first + length - 1`` cut into maximal runs of
  equal ``variant(step)``; run ``(v, offset, n)`` is the steps ``first + offset`` to
  ``first + offset + n - 1``."""
  out = []
  for i in range(length):
    v = variant(first + i)
    if out and out[-1][0] == v:
      out[-1][2] += 1
    else:
      out.append([v, i, 1])
  return [tuple(s) for s in out]


CHUNK_MODES = ('auto', 'scan', 'stepwise')


def use_scan(config) -> bool:
  """Whether the driver scans its chunks (``train.chunk_mode``): ``'auto'`` scans unless the
  backend is a CPU and the model has convolutions (``config.model.name`` not in
  :data:`jaxgan.models.DENSE_MODELS`; the image-to-image systems' models have them), which
  XLA:CPU runs many times slower inside a loop (see :func:`stepwise`)."""
  mode = config.train.get('chunk_mode', 'auto')
  if mode != 'auto':
    return mode == 'scan'
  return (jax.default_backend() != 'cpu'
          or config.get('model', {}).get('name') in models.DENSE_MODELS)


def head(xs, length: int):
  """The first ``length`` steps of a chunk's plan ``xs``: rerun from the chunk's initial state,
  they give the state after its last good step."""
  return jax.tree.map(lambda a: a[:length], xs)


# Many seeds at once: one state per seed, stacked along a leading seed axis.

SEED_AXIS = 'seed'


def init_seeds(init: Callable, keys: jax.Array):
  """``init(key) -> state`` vmapped over ``keys`` (``(S, 2)``), with one ``step`` for all seeds.

  Every leaf gets a leading seed axis except the step counter, which the seeds share (it is
  the same number for all of them): unbatched, it keeps a ``lax.cond`` on the step (lazy R1,
  :func:`jaxgan.penalties.r1_term`) a branch under ``vmap``, instead of both branches and a
  select.
  """
  states = jax.vmap(init)(keys)
  return states.replace(step=states.step[0])


def seed_axes(states, batched: Any = 0, shared: Any = None):
  """``states``' structure with ``batched`` at every leaf and ``shared`` as ``step``.

  ``seed_axes(states)`` is the ``in_axes`` of :func:`init_seeds`' states;
  ``seed_axes(states, by_seed, replicated)`` their shardings (:func:`seed_shardings`).
  """
  return jax.tree.map(lambda _: batched, states.replace(step=None)).replace(step=shared)


def seed_state(states, i: int):
  """Seed ``i``'s state out of :func:`init_seeds`' stacked states (whose ``step`` is shared)."""
  return jax.tree.map(lambda x: x[i], states.replace(step=None)).replace(step=states.step)


def seed_devices(num_seeds: int, devices=None) -> list:
  """The first ``d`` of ``devices`` (default ``jax.devices()``), ``d`` the most that divide the
  number of seeds evenly: for 10 seeds 2 of 2 CPU devices, 5 of 8; for 7 seeds 1 of 2."""
  devices = jax.devices() if devices is None else list(devices)
  count = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
  return devices[:count]


def seed_shardings(devices) -> tuple[jax.sharding.NamedSharding, jax.sharding.NamedSharding]:
  """``(by_seed, replicated)`` on a 1-D mesh of ``devices``: the seed axis split, and copies.

  Place stacked states with ``jax.device_put(states, seed_axes(states, by_seed, replicated))``
  and per-seed keys with ``by_seed``; a jitted :func:`over_seeds` chunk then runs each device's
  seeds there (the seeds never interact, so the devices do not communicate).
  """
  mesh = jax.sharding.Mesh(np.asarray(devices), (SEED_AXIS,))
  spec = jax.sharding.PartitionSpec
  return (jax.sharding.NamedSharding(mesh, spec(SEED_AXIS)),
          jax.sharding.NamedSharding(mesh, spec()))


def seeds_source(name: str, keys: jax.Array, batch_size: int, *, scale: float = 1.0) -> Source:
  """:func:`toy_source` for many seeds: seed ``i`` draws batch ``t`` from ``fold_in(keys[i], t)``.

  The plan is ``(S, length, batch_size, ...)``, row ``i`` the plan of ``toy_source(name,
  keys[i], batch_size)`` (the same batches, drawn in one call for all seeds and placed as
  ``keys`` are: sharded by seed under :func:`seed_shardings`); for :func:`over_seeds` with
  ``plan_axis=0``.
  """
  draw = jax.jit(jax.vmap(jax.vmap(
      lambda key, t: data_lib.toy_batch(name, key, t, batch_size, scale=scale),
      in_axes=(None, 0)), in_axes=(0, None)))
  return Source(data={}, plan=lambda start, length: draw(keys, jnp.arange(start, start + length)),
                batch=lambda data, x: {'x': x})


def over_seeds(chunk: Callable, state_axes, *, data_axis: int | None = None,
               plan_axis: int | None = 0) -> Callable:
  """A chunk of :func:`make_chunk` run for many seeds at once: ``jax.vmap`` over the seeds.

  ``chunk(states, data, xs, keys) -> (states, out)``: seed ``i`` runs ``chunk(state_i, data_i,
  xs_i, key_i)`` with its own state, step key and, where their axis is 0, its own data and
  plan; an axis of None shares ``data`` (e.g. a dataset on the device) or the plan between
  the seeds. With :func:`seeds_source` each seed's plan holds the batches it would draw alone.

  Args:
    chunk: from :func:`make_chunk` (``axis_name=None``).
    state_axes: ``in_axes`` of the states, e.g. :func:`seed_axes` ``(states)``.
    data_axis, plan_axis: the seed axis of ``data`` and of the plan ``xs``, or None.

  Returns:
    The vmapped chunk; each leaf of ``out`` gets a leading seed axis. Jit it (with the states
    placed by :func:`seed_shardings` to spread the seeds over devices).
  """
  return jax.vmap(chunk, in_axes=(state_axes, data_axis, plan_axis, 0),
                  out_axes=(state_axes, 0))
