"""Data parallelism at the call site: a train step on one device, under ``pmap`` or ``shard_map``.

The step itself knows nothing about devices (:mod:`jaxgan.game`): built with
``axis_name=AXIS_NAME`` it averages gradients, statistics and metrics over that axis, and
:func:`parallelize` places it, its state and its batches on the devices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxgan import data as data_lib

PARALLEL_MODES = ('none', 'pmap', 'shard_map')
AXIS_NAME = 'batch'


class DataParallel(NamedTuple):
  """A train step placed on devices, with the functions that move state and batches there.

  Attributes:
    step: ``step(state, batch, key) -> (state, metrics)`` on device-placed state and batch; the
      state argument is donated.
    put_state: host state -> device state (replicated on every device), always a copy, since
      ``step`` donates the state it is given: the caller's state stays usable.
    put_batch: a global batch ``(B, ...)`` -> the layout ``step`` takes.
    get_state: device state -> one copy of the state (for checkpoints and sampling).
    num_devices: devices the batch is split over.
  """

  step: Callable
  put_state: Callable
  put_batch: Callable
  get_state: Callable
  num_devices: int


def _copy(tree):
  """New buffers for every leaf: what a donating step may delete is never the caller's."""
  return jax.tree.map(lambda x: jnp.array(x, copy=True), tree)


def parallelize(train_step: Callable, parallel: str, devices=None) -> DataParallel:
  """Runs ``train_step`` on one device (``'none'``) or data-parallel (``'pmap'``/``'shard_map'``).

  For ``'pmap'`` and ``'shard_map'`` the step must have been built with
  ``axis_name=jaxgan.parallel.AXIS_NAME``. The state is replicated; the global batch is split
  along its first axis. ``shard_map`` uses a 1-D mesh with Explicit axes and puts every input on
  it with a ``NamedSharding``.
  """
  if parallel not in PARALLEL_MODES:
    raise ValueError(f'unknown parallel mode {parallel!r}; expected one of '
                     f'{list(PARALLEL_MODES)}')
  devices = list(devices if devices is not None else jax.local_devices())
  if parallel == 'none':
    return DataParallel(jax.jit(train_step, donate_argnums=0),
                        lambda s: jax.device_put(_copy(s), devices[0]), lambda b: b,
                        lambda s: s, 1)
  n = len(devices)
  if parallel == 'pmap':
    step = jax.pmap(train_step, axis_name=AXIS_NAME, in_axes=(0, 0, None), donate_argnums=0,
                    devices=devices)
    # Placed as the step returns its state (one shard per device along a mesh axis named
    # AXIS_NAME), so that the second step does not compile the step again.
    stacked = NamedSharding(jax.sharding.Mesh(np.array(devices), (AXIS_NAME,)), P(AXIS_NAME))
    put_state = lambda s: jax.device_put(
        jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), s), stacked)
    return DataParallel(step, put_state, lambda b: data_lib.shard(b, n),
                        lambda s: jax.tree.map(lambda x: x[0], s), n)
  mesh = jax.sharding.Mesh(np.array(devices), (AXIS_NAME,),
                           axis_types=(jax.sharding.AxisType.Explicit,))
  replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P(AXIS_NAME))
  step = jax.jit(jax.shard_map(train_step, mesh=mesh, in_specs=(P(), P(AXIS_NAME), P()),
                               out_specs=(P(), P()), check_vma=False), donate_argnums=0)

  def put_batch(batch):
    data_lib.shard(batch, n)  # Checks divisibility with a clear error.
    return jax.device_put(batch, split)

  return DataParallel(lambda s, b, k: step(s, b, jax.device_put(k, replicated)),
                      lambda s: jax.device_put(_copy(s), replicated), put_batch, lambda s: s, n)


def parallelize_chunk(chunk: Callable, parallel: str, devices=None, *,
                      donate: bool = True) -> DataParallel:
  """Places a chunk ``chunk(state, data, xs, key) -> (state, out)`` (:mod:`jaxgan.loop`).

  As :func:`parallelize`, except that the chunk's data and plan are replicated, not split:
  every device reads the global batch of each step and trains on its own rows of it.
  ``put_batch`` places the data. ``step(state, data, xs, key)`` runs the chunk (the state is
  donated unless ``donate=False``, which keeps the state a chunk started from valid); ``xs``
  may be host arrays.
  """
  donate_argnums = (0,) if donate else ()
  if parallel not in PARALLEL_MODES:
    raise ValueError(f'unknown parallel mode {parallel!r}; expected one of '
                     f'{list(PARALLEL_MODES)}')
  devices = list(devices if devices is not None else jax.local_devices())
  if parallel == 'none':
    return DataParallel(jax.jit(chunk, donate_argnums=donate_argnums),
                        lambda s: jax.device_put(_copy(s), devices[0]),
                        lambda d: jax.device_put(d, devices[0]), lambda s: s, 1)
  n = len(devices)
  if parallel == 'pmap':
    run = jax.pmap(chunk, axis_name=AXIS_NAME, in_axes=(0, 0, None, None),
                   donate_argnums=donate_argnums, devices=devices)
    stacked = NamedSharding(jax.sharding.Mesh(np.array(devices), (AXIS_NAME,)), P(AXIS_NAME))
    put = lambda s: jax.device_put(
        jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *jnp.shape(x))), s), stacked)
    return DataParallel(run, put, put, lambda s: jax.tree.map(lambda x: x[0], s), n)
  mesh = jax.sharding.Mesh(np.array(devices), (AXIS_NAME,),
                           axis_types=(jax.sharding.AxisType.Explicit,))
  replicated = NamedSharding(mesh, P())
  run = jax.jit(jax.shard_map(chunk, mesh=mesh, in_specs=(P(), P(), P(), P()),
                              out_specs=(P(), P()), check_vma=False),
                donate_argnums=donate_argnums)
  put = lambda tree: jax.device_put(tree, replicated)
  return DataParallel(lambda s, d, xs, k: run(s, d, put(xs), put(k)),
                      lambda s: put(_copy(s)), put, lambda s: s, n)
