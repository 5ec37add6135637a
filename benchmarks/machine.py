"""The machine a benchmark ran on, for its results JSON: ``host()`` and ``describe()``.

Every benchmark records where its figures came from (the README's "Numbers are our product").
A sibling module: each script puts its own folder on ``sys.path`` before ``import machine`` (as
``eval_sample_size`` imports ``eval_floors``), so a test that loads a script by its path finds it
too. Importing it does not import JAX: scripts that time other processes (``loop_speed``,
``notebook_time``) call :func:`host` and keep JAX's backend out of their own process.
"""

import os
import platform


def host() -> dict:
  """``{'platform', 'cpu_count', 'python'}``: the machine, without importing JAX."""
  return {'platform': platform.platform(), 'cpu_count': os.cpu_count(),
          'python': platform.python_version()}


def describe() -> dict:
  """:func:`host` plus ``{'jax', 'backend', 'devices'}`` of this process (starts JAX's
  backend)."""
  import jax  # Here, not at the top: host() must not import JAX.
  return {**host(), 'jax': jax.__version__, 'backend': jax.default_backend(),
          'devices': [str(d) for d in jax.devices()]}
