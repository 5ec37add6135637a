"""Test setup: 8 fake CPU devices for the data-parallel tests (set before JAX initializes)."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import chex  # noqa: E402

chex.set_n_cpu_devices(8)
