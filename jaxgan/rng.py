"""Random draws that do not depend on the number of devices.

Under ``pmap``/``shard_map`` each device holds ``B / N`` rows of a global batch of ``B``. A draw
made per device (or with a key folded by the device index) gives other numbers for every ``N``;
:func:`local_rows` instead draws for the whole global batch from the same key everywhere and
keeps this device's rows, so N devices see exactly what one device sees. The extra random
numbers cost little next to the models.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax import lax


def local_rows(key: jax.Array, sample: Callable[[jax.Array, int], jax.Array], num_local: int,
               axis_name: str | None = None) -> jax.Array:
  """``sample(key, global_batch)``, restricted to this device's ``num_local`` rows.

  Args:
    key: the same PRNG key on every device.
    sample: ``(key, n) -> (n, ...)`` array; row ``i`` of the global draw goes to device
      ``i // num_local``, as a batch split along its first axis.
    num_local: rows per device.
    axis_name: the device axis under ``pmap``/``shard_map``; None draws ``num_local`` rows.

  Returns:
    ``(num_local, ...)``, equal on one device to ``sample(key, num_local)``.
  """
  if axis_name is None:
    return sample(key, num_local)
  everything = sample(key, num_local * lax.axis_size(axis_name))
  return lax.dynamic_slice_in_dim(everything, lax.axis_index(axis_name) * num_local, num_local)
