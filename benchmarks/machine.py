"""The machine a benchmark ran on, for its results JSON: ``describe()``.

Every benchmark records where its figures came from (the README's "Numbers are our product"):
the platform, the CPU count, Python's and JAX's versions, the backend and the devices. A sibling
module: each script puts its own folder on ``sys.path`` before ``import machine`` (as
``eval_sample_size`` imports ``eval_floors``), so a test that loads a script by its path finds it
too.
"""

import os
import platform

import jax


def describe() -> dict:
  """``{'platform', 'cpu_count', 'python', 'jax', 'backend', 'devices'}`` of this process."""
  return {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
          'python': platform.python_version(), 'jax': jax.__version__,
          'backend': jax.default_backend(), 'devices': [str(d) for d in jax.devices()]}
