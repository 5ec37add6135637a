"""Test setup: 8 fake CPU devices for the data-parallel tests (set before JAX initializes)."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# XLA:CPU aborts the whole process (no Python error, the pytest-xdist worker just dies) when the
# 8 device threads of a pmap/shard_map collective do not all reach it within its termination
# timeout; the likely cause of the one CI run that lost a worker on 2 loaded cores
# (test_data_parallel_step_equals_single_device under pmap; not reproduced on purpose). Waiting
# longer is harmless: a real deadlock still ends at the CI's time limit.
os.environ['XLA_FLAGS'] = ' '.join([
    os.environ.get('XLA_FLAGS', ''), '--xla_cpu_collective_call_terminate_timeout_seconds=1800',
    '--xla_cpu_collective_call_warn_stuck_timeout_seconds=300',
    '--xla_cpu_collective_timeout_seconds=1800']).strip()

import chex  # noqa: E402

chex.set_n_cpu_devices(8)
