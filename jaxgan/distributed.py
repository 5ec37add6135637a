"""More than one process: ``jax.distributed`` start-up, agreement between processes, preemption.

One process per host (a TPU VM of a pod slice, a GPU host, or several local CPU processes in
tests) runs the same command; :func:`initialize` joins them into one JAX runtime, after which
``jax.devices()`` lists every process's devices and the driver (:func:`jaxgan.train.drive`)
trains over a mesh of all of them. Without the flags and without a cluster JAX can detect,
nothing is initialized and the run is one process, as before.

Preemption: :func:`preemption_guard` turns SIGTERM and SIGINT into a request that the driver
reads between chunks (:func:`any_process`, so that every process stops after the same chunk),
answered by a checkpoint and a clean exit; the same command resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import signal
import threading
from collections.abc import Iterator

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

# Environment variables by which JAX's own cluster detection recognizes a launcher that started
# several processes (SLURM's srun, Open MPI's mpirun); a Cloud TPU VM by its chips and libtpu.
_CLUSTER_VARIABLES = {
    'SLURM': ('SLURM_JOB_ID', 'SLURM_STEP_NODELIST', 'SLURM_NTASKS', 'SLURM_PROCID',
              'SLURM_LOCALID'),
    'Open MPI': ('OMPI_MCA_orte_hnp_uri',),
}


def detected_cluster() -> str | None:
  """The launcher JAX would auto-detect (``'SLURM'``, ``'Open MPI'``, ``'Cloud TPU'``), or None.

  Reads environment variables and files only: nothing connects anywhere, so a plain machine
  (no launcher, no TPU) answers None at once.
  """
  for name, variables in _CLUSTER_VARIABLES.items():
    if all(v in os.environ for v in variables):
      return name
  tpu_chips = os.path.exists('/dev/accel0') or os.path.exists('/dev/vfio/0')
  if os.environ.get('TPU_WORKER_HOSTNAMES') or (
      tpu_chips and importlib.util.find_spec('libtpu') is not None):
    return 'Cloud TPU'
  return None


def initialize(*, coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, timeout_s: int = 60) -> None:
  """Joins this process to a multi-process JAX runtime, or does nothing for a single process.

  With all three of ``coordinator_address`` (``'HOST:PORT'`` of process 0),
  ``num_processes`` and ``process_id``, calls ``jax.distributed.initialize`` with them; with
  none of them, calls it without arguments (JAX's auto-detection) only where
  :func:`detected_cluster` finds a launcher, and otherwise leaves the run a single process. On
  CPU the collectives between processes go through gloo.

  Args:
    coordinator_address, num_processes, process_id: the command line's flags of those names.
    timeout_s: how long to wait for every process to reach the coordinator.

  Raises:
    ValueError: some but not all of the three are given, or they are out of range.
    RuntimeError: joining failed (naming the address). If not every process has joined
      after ``timeout_s`` the process ends at once with status 1 and a one-line message on
      stderr naming the address (XLA offers no way to cancel the wait).
  """
  given = {'coordinator_address': coordinator_address, 'num_processes': num_processes,
           'process_id': process_id}
  if all(v is None for v in given.values()):
    cluster = detected_cluster()
    if cluster is None:
      return
    logging.info('Detected a %s cluster: initializing jax.distributed from it', cluster)
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(initialization_timeout=timeout_s)
    return
  missing = [f'--{k}' for k, v in given.items() if v is None]
  if missing:
    raise ValueError(f'{", ".join(missing)} missing: multi-process training takes all of '
                     f'--coordinator_address, --num_processes and --process_id')
  if num_processes < 1:
    raise ValueError(f'--num_processes={num_processes} must be >= 1')
  if not 0 <= process_id < num_processes:
    raise ValueError(f'--process_id={process_id} must be in [0, {num_processes}) for '
                     f'--num_processes={num_processes}')
  host, _, port = coordinator_address.rpartition(':')
  if not host or not port.isdigit():
    raise ValueError(f'--coordinator_address={coordinator_address!r} must be HOST:PORT')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  # XLA ends a process that misses its deadline with a fatal error and a C++ stack trace; a
  # watchdog says what went wrong instead, a little before XLA's own deadline.
  message = (f'error: process {process_id} of {num_processes}: not every process reached the '
             f'coordinator at {coordinator_address} within {timeout_s} s; start all '
             f'{num_processes} processes (process 0 on that host) with the same '
             f'--coordinator_address and --num_processes')
  watchdog = threading.Timer(timeout_s, _exit_with, args=(message,))
  watchdog.daemon = True
  watchdog.start()
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id,
                               initialization_timeout=timeout_s + 30)
  except Exception as e:  # XLA's errors differ by version; the cause is the same to the user.
    raise RuntimeError(f'{message[len("error: "):]} ({type(e).__name__}: '
                       f'{str(e).splitlines()[0][:200] if str(e) else ""})') from None
  finally:
    watchdog.cancel()


def _exit_with(message: str) -> None:
  """Ends the process at once with ``message`` on stderr (from the watchdog's thread, while the
  main thread waits inside XLA)."""
  os.write(2, (message + '\n').encode())
  os._exit(1)


def is_main_process() -> bool:
  """Whether this process writes the run's logs, TensorBoard, samples and progress bar (0)."""
  return jax.process_index() == 0


def config_digest(config) -> str:
  """SHA-256 (hex) of ``config``'s JSON: equal on two processes iff their configs are."""
  return hashlib.sha256(config.to_json_best_effort(sort_keys=True).encode()).hexdigest()


def check_same_config(config) -> None:
  """Raises ``ValueError`` on every process unless all processes were started with ``config``.

  The processes exchange :func:`config_digest` (every process must call this, as any
  collective). A single process returns at once.
  """
  if jax.process_count() == 1:
    return
  mine = np.frombuffer(bytes.fromhex(config_digest(config)), np.uint8)
  every = np.asarray(multihost_utils.process_allgather(mine))  # (num_processes, 32)
  differ = [i for i in range(every.shape[0]) if not np.array_equal(every[i], every[0])]
  if differ:
    raise ValueError(f'processes {differ} were started with a different config than process 0 '
                     f'(config digests differ; this is process {jax.process_index()}): start '
                     f'every process with the same --config and --config.* overrides')


def check_global_batch(batch_size: int) -> None:
  """``ValueError`` unless the global batch splits evenly over the processes (before compiling)."""
  n = jax.process_count()
  if batch_size % n:
    raise ValueError(f'config.train.batch_size={batch_size} is not divisible by the {n} '
                     f'processes (--num_processes={n})')


def any_process(flag: bool) -> bool:
  """Whether ``flag`` is true on any process (a collective: every process must call it)."""
  if jax.process_count() == 1:
    return bool(flag)
  return bool(np.asarray(multihost_utils.process_allgather(np.int32(flag))).any())


class Preemption:
  """Set by SIGTERM/SIGINT inside :func:`preemption_guard`: ``requested`` and its ``signal``."""

  def __init__(self):
    self.requested = False
    self.signal: str | None = None


@contextlib.contextmanager
def preemption_guard() -> Iterator[Preemption]:
  """SIGTERM and SIGINT set the yielded :class:`Preemption` instead of ending the process.

  The previous handlers come back on exit (a library caller's process keeps its own), and the
  first signal already puts them back: a second Ctrl-C ends the run at once, as usual. Outside
  the main thread (where Python cannot install handlers) the signals keep their handlers and
  nothing is ever requested.
  """
  preemption = Preemption()
  if threading.current_thread() is not threading.main_thread():
    yield preemption
    return
  names = {signal.SIGTERM: 'SIGTERM', signal.SIGINT: 'SIGINT'}
  previous = {s: signal.getsignal(s) for s in names}

  def handler(signum, frame):
    preemption.requested, preemption.signal = True, names[signum]
    for s, h in previous.items():
      signal.signal(s, h)

  for s in names:
    signal.signal(s, handler)
  try:
    yield preemption
  finally:
    for s, h in previous.items():
      signal.signal(s, h)
