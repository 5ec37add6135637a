"""The GAN train step's time in two checkouts of jaxgan, side by side (A/B), on this machine.

For a change to the train step: each round runs checkout A, then B, each in a fresh process
that builds the alternating step of ``models.mnist_mlp_models`` and of DCGAN (28x28x1, 64
features; Adam 2e-4 / b1 0.5, batch 64), jits it with the state donated, compiles, warms up
and times ``--chunks`` chunks of ``--steps`` steps. Prints and writes the median ms/step of each
checkout and the median of the per-round ratios B / A, with the load average before and after.

    python benchmarks/step_time_ab.py --a=/path/to/old/checkout --b=. \\
        --out=benchmarks/results/step_time_redesign.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

WORKER = r'''
import sys, time, json
sys.path.insert(0, sys.argv[1])
import jax, jax.numpy as jnp, numpy as np, optax
import os
from jaxgan import models, train
if os.path.exists(os.path.join(sys.argv[1], 'jaxgan', 'gan.py')):
  from jaxgan import gan
  make = gan.make_train_step
else:  # checkouts before jaxgan.gan
  make = train.make_train_step
assert train.__file__.startswith(sys.argv[1]), train.__file__
model, steps, chunks = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if model == 'mnist_mlp':
  g, d = models.mnist_mlp_models()
  latent, shape = 100, (28, 28, 1)
else:
  g = models.DCGANGenerator(image_shape=(28, 28, 1), features=64)
  d = models.DCGANDiscriminator(image_shape=(28, 28, 1), features=64)
  latent, shape = 100, (28, 28, 1)
tx = optax.adam(2e-4, b1=0.5)
state = train.init_state(jax.random.PRNGKey(0), generator=g, discriminator=d, g_optimizer=tx,
                         d_optimizer=tx, latent_dim=latent, data_shape=shape)
step = jax.jit(make(generator=g, discriminator=d, g_optimizer=tx, d_optimizer=tx,
                    latent_dim=latent), donate_argnums=0)
batch = {'x': jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (64, *shape)), jnp.float32)}
key = jax.random.PRNGKey(1)
state, m = step(state, batch, key)
for _ in range(5):
  state, m = step(state, batch, key)
jax.block_until_ready(m)
times = []
for _ in range(chunks):
  t = time.perf_counter()
  for _ in range(steps):
    state, m = step(state, batch, key)
  jax.block_until_ready((state, m))
  times.append((time.perf_counter() - t) / steps)
print(json.dumps({'ms_per_step': 1e3 * sorted(times)[len(times) // 2]}))
'''

STEPS = {'mnist_mlp': 100, 'dcgan': 20}


def run(checkout: str, model: str, chunks: int) -> float:
  out = subprocess.run([sys.executable, '-c', WORKER, os.path.abspath(checkout), model,
                        str(STEPS[model]), str(chunks)], capture_output=True, text=True,
                       check=True, env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2'})
  return json.loads(out.stdout.strip().splitlines()[-1])['ms_per_step']


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--a', required=True, help='checkout A (before)')
  parser.add_argument('--b', default='.', help='checkout B (after)')
  parser.add_argument('--rounds', type=int, default=3)
  parser.add_argument('--chunks', type=int, default=5)
  parser.add_argument('--out', default='')
  args = parser.parse_args()
  load_before = os.getloadavg()
  results = {}
  for model in STEPS:
    a, b = [], []
    for _ in range(args.rounds):
      a.append(run(args.a, model, args.chunks))
      b.append(run(args.b, model, args.chunks))
    results[model] = {'a_ms': a, 'b_ms': b, 'a_median_ms': statistics.median(a),
                      'b_median_ms': statistics.median(b),
                      'median_ratio_b_over_a': statistics.median(
                          y / x for x, y in zip(a, b, strict=True))}
    print(f'{model:10s} A {results[model]["a_median_ms"]:.2f} ms  B '
          f'{results[model]["b_median_ms"]:.2f} ms  B/A '
          f'{results[model]["median_ratio_b_over_a"]:.3f}', flush=True)
  summary = {'command': ' '.join(['python', *sys.argv]), 'a': args.a, 'b': args.b,
             'results': results, 'load_average_before': load_before,
             'load_average_after': os.getloadavg(), 'time': time.strftime('%Y-%m-%d %H:%M')}
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(summary, f, indent=1)


if __name__ == '__main__':
  main()
