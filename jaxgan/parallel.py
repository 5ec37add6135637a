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
                      donate: bool = True, split_plan: bool = False) -> DataParallel:
  """Places a chunk ``chunk(state, data, xs, key) -> (state, out)`` (:mod:`jaxgan.loop`).

  As :func:`parallelize`, except that the chunk's data and plan are replicated, not split:
  every device reads the global batch of each step and trains on its own rows of it.
  ``put_batch`` places the data. ``step(state, data, xs, key)`` runs the chunk (the state is
  donated unless ``donate=False``, which keeps the state a chunk started from valid); ``xs``
  may be host arrays.

  ``devices`` of several processes (``jax.devices()`` after :func:`jaxgan.distributed.initialize`;
  ``parallel='shard_map'`` only) make a mesh over all of them, and every process runs the same
  calls with the same host values (state, data, plan, key), which become global arrays
  (:func:`jax.make_array_from_process_local_data`). With ``split_plan`` (a
  :attr:`jaxgan.loop.Source.rowwise` source) the plan's second axis (the batch) is split over
  the devices instead, and each process feeds only its devices' rows of it: the chunk must then
  be built to take a device's rows as its batch (``make_chunk(..., axis_name=None)``). Rows go
  to devices in ``devices`` order, as in one process, so the global batch order is unchanged.
  ``get_state`` then gives this process's copy of the replicated state.
  """
  donate_argnums = (0,) if donate else ()
  if parallel not in PARALLEL_MODES:
    raise ValueError(f'unknown parallel mode {parallel!r}; expected one of '
                     f'{list(PARALLEL_MODES)}')
  devices = list(devices if devices is not None else jax.local_devices())
  if len({d.process_index for d in devices}) > 1:
    return _across_processes(chunk, parallel, devices, donate_argnums, split_plan)
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


def _across_processes(chunk: Callable, parallel: str, devices: list, donate_argnums: tuple,
                      split_plan: bool) -> DataParallel:
  """:func:`parallelize_chunk` over the devices of several processes (one global mesh)."""
  if parallel != 'shard_map':
    raise ValueError(f"config.train.parallel={parallel!r} runs within one process; with "
                     f"{jax.process_count()} processes use config.train.parallel='shard_map'")
  mesh = jax.sharding.Mesh(np.array(devices), (AXIS_NAME,),
                           axis_types=(jax.sharding.AxisType.Explicit,))
  replicated, by_row = NamedSharding(mesh, P()), NamedSharding(mesh, P(None, AXIS_NAME))
  plan_spec = P(None, AXIS_NAME) if split_plan else P()
  run = jax.jit(jax.shard_map(chunk, mesh=mesh, in_specs=(P(), P(), plan_spec, P()),
                              out_specs=(P(), P()), check_vma=False),
                donate_argnums=donate_argnums)
  n = len(devices)
  mine = [i for i, d in enumerate(devices) if d.process_index == jax.process_index()]
  if mine != list(range(mine[0], mine[-1] + 1)):
    raise ValueError(f'the devices of process {jax.process_index()} are at positions {mine} of '
                     f'the mesh; each process must hold consecutive positions')

  def put(tree):
    """The same host values on every process -> global arrays, replicated on every device."""
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(
        replicated, np.asarray(x), np.shape(x)), tree)

  def put_plan(xs):
    """Every process's whole plan -> a global plan of which this process feeds only its rows."""
    if not split_plan:
      return put(xs)

    def rows(x):
      x = np.asarray(x)
      if x.shape[1] % n:
        raise ValueError(f'global batch of {x.shape[1]} examples is not divisible by the {n} '
                         f'devices of {jax.process_count()} processes')
      size = x.shape[1] // n
      local = x[:, mine[0] * size:(mine[-1] + 1) * size]
      return jax.make_array_from_process_local_data(by_row, local, x.shape)

    return jax.tree.map(rows, xs)

  def local_copy(state):
    return jax.tree.map(lambda x: x.addressable_data(0), state)

  return DataParallel(lambda s, d, xs, k: run(s, d, put_plan(xs), put(k)),
                      lambda s: put(jax.device_get(s)), put, local_copy, n)
