"""Mode collapse on the 2-D ring and grid: every technique, 10 seeds each, one compiled program.

The protocol of PacGAN (arXiv:1712.04086, Table 1), which VEEGAN's table also follows:

* ring: 8 Gaussians on the unit circle, std 0.01; grid: 25 Gaussians at {-4,...,4}^2, std 0.05;
* 2,500 generated samples per trained generator, scored by :func:`jaxgan.metrics.mode_coverage`
  (modes covered, % high-quality samples within 3 std of their mode, reverse KL of the mode
  histogram against uniform).

Each method trains ``--seeds`` seeds at once with the driver's chunk (:mod:`jaxgan.loop`):
``init_state`` is ``jax.vmap``-ed over the seeds' keys (:func:`jaxgan.loop.init_seeds`), and
so is the ``lax.scan`` over a chunk of steps with the data drawn inside it
(:func:`jaxgan.loop.make_chunk`), over the seeds' states, data keys and step keys
(:func:`jaxgan.loop.over_seeds`): one compiled program that the host calls repeatedly. The
seed axis is sharded over the devices (:func:`jaxgan.loop.seed_devices`); run as a script on a
CPU, the benchmark makes one JAX CPU device per core, so that every core trains its share of
the seeds (1.7x a single device's speed on 2 cores: XLA's own threads keep only ~1.4 cores
busy here).

    python benchmarks/mode_coverage.py --out=benchmarks/results/mode_coverage.json \\
        --plots=benchmarks/results

prints a table of mean ± standard error over the seeds (and the wall time of each row) and
writes the JSON and one scatter plot per method (seed 0's samples on the ring and the grid).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

if __name__ == '__main__' and 'device_count' not in os.environ.get('XLA_FLAGS', ''):
  # Before JAX starts: one CPU device per core, each training its share of the seeds. (A no-op
  # on GPU/TPU, whose devices are the accelerators.)
  _cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
  os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                             f' --xla_force_host_platform_device_count={_cores}').strip()
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from jaxgan import data, game, gan, loop, losses, metrics, mode_collapse, models  # noqa: E402

NUM_EVAL_SAMPLES = 2500


@dataclasses.dataclass(frozen=True)
class Dataset:
  sample: Callable[[jax.Array, int], jax.Array]
  centers: np.ndarray
  std: float  # of each mixture component
  scale: float  # of each coordinate of the whole mixture: what standardizing divides by


DATASETS = {
    # Coordinates cos(2 pi k / 8): variance 1/2. Coordinates in {-4, -2, 0, 2, 4}: variance 8.
    'ring': Dataset(data.ring, np.asarray(data.ring_centers()), 0.01, data.TOY_SCALES['ring']),
    'grid': Dataset(data.grid, np.asarray(data.grid_centers()), 0.05, data.TOY_SCALES['grid']),
}


@dataclasses.dataclass(frozen=True)
class Method:
  """One row of the table: the models, losses and :func:`make_train_step` options it uses.

  ``step`` holds keyword arguments of :func:`jaxgan.gan.make_train_step`; ``d`` those of
  :class:`jaxgan.mode_collapse.StabilizedMLPDiscriminator`; ``per_dataset`` overrides any field
  for one dataset (e.g. ``{'grid': {'num_steps': 4000}}``).
  """

  label: str
  loss: str = 'non_saturating'
  g_hidden: tuple[int, ...] = (128, 128)
  d_hidden: tuple[int, ...] = (128, 128)
  # Biases start U(+-bias_scale / sqrt(fan_in)) (1: PyTorch's default; 0: flax's zeros).
  bias_scale: float = 1.0
  g_activation: str = 'relu'
  d_activation: str = 'relu'
  latent_dim: int = 2
  latent_distribution: str = 'normal'
  batch_size: int = 128
  num_steps: int = 3000
  g_lr: float = 1e-3
  d_lr: float = 1e-3
  b1: float = 0.5
  b2: float = 0.999
  # Train on data / dataset.scale (unit variance per coordinate) and scale samples back.
  standardize: bool = True
  # Cosine decay of both learning rates to this fraction of their peak; 1.0 is constant.
  final_lr_fraction: float = 1.0
  # Decay of the moving average of G's weights (jaxgan.game.update_ema); > 0 evaluates the average.
  ema_decay: float = 0.0
  step: dict = dataclasses.field(default_factory=dict)
  d: dict = dataclasses.field(default_factory=dict)
  per_dataset: dict = dataclasses.field(default_factory=dict)

  def for_dataset(self, dataset: str) -> Method:
    return dataclasses.replace(self, per_dataset={}, **self.per_dataset.get(dataset, {}))


# Every row but 'best' and its ablation shares the models (G 2-128-128-2, D 2-128-128-1, ReLU,
# PyTorch-style biases), N(0, I) 2-D latents, standardized data, batch 128 and Adam(b1=0.5). The
# baselines take 2,000 steps at a constant 1e-3 (unrolled and WGAN-GP, several times the work
# per step, 1,000). 'best' is tuned and long: narrower models (G 2-96-96-2, D 2-96-96-1: 0.6x
# the FLOPs per step, which pays for 30,000 steps), batches of 512, and it evaluates the moving
# average of G's weights. Its R1 weight is per dataset, tuned on seeds 0-9 only (README, "Mode
# collapse", tuning notes) and reported on seeds 10-19: on the ring, whose modes are twice as
# narrow relative to their spacing (std / spacing 0.013, the grid's 0.025), gamma 0.001 covered
# 7.8 modes on seeds 10-19; gamma 0.003 and 0.01 cover all 8 on every tuning seed with 98.48 and
# 98.13 % high quality (benchmarks/results/tune_best_ring.json): 0.003, the larger margin over the
# 98 % target. On the grid 0.003 was worse than 0.01.
BASELINE_STEPS = 2000
METHODS: dict[str, Method] = {
    'best': Method('best: R1 0.01 (ring 0.003), 96 units, lr 3e-3 cosine, 30k steps, batch 512, '
                   'EMA', step={'r1_gamma': 0.01}, g_hidden=(96, 96), d_hidden=(96, 96),
                   g_lr=3e-3, d_lr=3e-3, final_lr_fraction=0.01, num_steps=30_000,
                   batch_size=512, ema_decay=0.999,
                   per_dataset={'ring': {'step': {'r1_gamma': 0.003}}}),
    'vanilla': Method('GAN (non-saturating)', num_steps=BASELINE_STEPS),
    'minimax': Method('GAN (minimax)', loss='minimax', num_steps=BASELINE_STEPS),
    'feature_matching': Method('feature matching', step={'feature_matching': True},
                               num_steps=BASELINE_STEPS),
    'minibatch_discrimination': Method(
        'minibatch discrimination', d={'minibatch_kernels': 8, 'minibatch_kernel_dim': 4},
        num_steps=BASELINE_STEPS),
    'pacgan2': Method('PacGAN2', step={'pack': 2}, num_steps=BASELINE_STEPS),
    'r1': Method('R1 (gamma 0.1)', step={'r1_gamma': 0.1}, num_steps=BASELINE_STEPS),
    'unrolled': Method('unrolled (k=5)', step={'unrolled_steps': 5},
                       num_steps=BASELINE_STEPS // 2),
    'wgan_gp': Method('WGAN-GP (lambda 10, 5 critic steps)', loss='wasserstein', b2=0.9,
                      step={'gradient_penalty_weight': 10.0, 'num_d_steps': 5},
                      num_steps=BASELINE_STEPS // 2),
}
# The ablation: 'best' exactly, without R1.
METHODS['best_without_r1'] = dataclasses.replace(
    METHODS['best'], label='ablation: best without R1', step={}, per_dataset={})
# The table: every method but the ablation, which has its own command (README).
TABLE = tuple(name for name in METHODS if name != 'best_without_r1')


def build(method: Method, dataset: str):
  """``(generator, discriminator, train_step, g_optimizer, d_optimizer)`` for one row."""
  generator = models.MLPGenerator(hidden=method.g_hidden, data_shape=(2,),
                                  activation=method.g_activation, bias_scale=method.bias_scale)
  if method.d:
    discriminator = mode_collapse.StabilizedMLPDiscriminator(
        hidden=method.d_hidden, activation=method.d_activation, bias_scale=method.bias_scale,
        **method.d)
  else:
    discriminator = models.MLPDiscriminator(hidden=method.d_hidden, activation=method.d_activation,
                                            bias_scale=method.bias_scale)

  def adam(lr):
    if method.final_lr_fraction != 1.0:
      lr = optax.cosine_decay_schedule(lr, method.num_steps, alpha=method.final_lr_fraction)
    # eps_root keeps G's gradient through unrolled Adam updates finite (see make_train_step).
    eps_root = 1e-8 if method.step.get('unrolled_steps') else 0.0
    return optax.adam(lr, b1=method.b1, b2=method.b2, eps_root=eps_root)

  g_optimizer, d_optimizer = adam(method.g_lr), adam(method.d_lr)
  d_loss_fn, g_loss_fn = losses.get_loss_pair(method.loss)
  step = gan.make_train_step(
      generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
      d_optimizer=d_optimizer, d_loss_fn=d_loss_fn, g_loss_fn=g_loss_fn,
      latent_dim=method.latent_dim, latent_distribution=method.latent_distribution,
      ema_decay=method.ema_decay, **method.step)
  return generator, discriminator, step, g_optimizer, d_optimizer


# The seed helpers are the driver's (jaxgan.loop); the benchmark's names for them stay.
seed_devices = loop.seed_devices
seed_state = loop.seed_state


def train_seeds(method: Method, dataset: str, seeds, *, num_steps: int | None = None,
                chunk: int = 250, devices=None) -> tuple[game.GANState, Any, dict[str, float]]:
  """Trains one generator per seed, all seeds at once; returns ``(states, samples, timing)``.

  Seed ``s`` derives everything from ``PRNGKey(s)``: its init, step, data and evaluation keys.
  The driver's chunk (:func:`jaxgan.loop.make_chunk` over :func:`jaxgan.loop.toy_source`) runs
  ``chunk`` steps per call, vmapped over the seeds (:func:`jaxgan.loop.over_seeds`). States are
  stacked along a leading seed axis (all but ``step``, which the seeds share; see
  :func:`seed_state`), which is sharded over ``seed_devices(len(seeds), devices)`` (the seeds
  never interact, so each device runs its seeds' steps alone); ``samples`` is
  ``(S, 2500, 2)``. ``timing`` has ``compile_s``, ``total_s`` (compile, training and sampling)
  and ``num_devices``.
  """
  num_steps = method.num_steps if num_steps is None else num_steps
  chunk = min(chunk, num_steps)
  if num_steps % chunk:
    raise ValueError(f'num_steps={num_steps} must be a multiple of chunk={chunk}')
  generator, discriminator, step, g_optimizer, d_optimizer = build(method, dataset)
  scale = DATASETS[dataset].scale if method.standardize else 1.0
  keys = jax.vmap(lambda s: jnp.stack(jax.random.split(jax.random.PRNGKey(s), 4)))(
      jnp.asarray(seeds))
  states = loop.init_seeds(lambda k: gan.init_state(
      k, generator=generator, discriminator=discriminator, g_optimizer=g_optimizer,
      d_optimizer=d_optimizer, latent_dim=method.latent_dim, data_shape=(2,),
      pack=method.step.get('pack', 1), ema=bool(method.ema_decay)), keys[:, 0])
  mesh_devices = seed_devices(len(seeds), devices)
  by_seed, replicated = loop.seed_shardings(mesh_devices)
  states = jax.device_put(states, loop.seed_axes(states, by_seed, replicated))
  keys = jax.device_put(keys, by_seed)
  step_keys, data_keys, eval_keys = (keys[:, i] for i in range(1, 4))
  # Seed i draws batch t from fold_in(data_keys[i], t); num_d_steps D steps take a batch each.
  batch = method.batch_size * method.step.get('num_d_steps', 1)
  source = loop.seeds_source(dataset, data_keys, batch, scale=scale)
  axes = loop.seed_axes(states)
  run_chunk = jax.jit(loop.over_seeds(
      loop.make_chunk(step, source.batch), axes), donate_argnums=0)

  @jax.jit
  def evaluate(states):
    def one(state, key):
      z = gan.sample_latent(key, NUM_EVAL_SAMPLES, method.latent_dim,
                              method.latent_distribution)
      g_params = state.ema_g_params if method.ema_decay else state.g_params
      return scale * gan.apply_model(generator, g_params, state.g_batch_stats, z,
                                       train=False)[0]
    return jax.vmap(one, in_axes=(axes, 0))(states, eval_keys)

  start = time.perf_counter()
  compiled = run_chunk.lower(states, source.data, source.plan(0, chunk), step_keys).compile()
  compile_s = time.perf_counter() - start
  for first, length in loop.chunk_ends(0, num_steps, chunk):
    states, _ = compiled(states, source.data, source.plan(first, length), step_keys)
  samples = evaluate(states)
  samples.block_until_ready()
  return states, samples, {'compile_s': compile_s, 'total_s': time.perf_counter() - start,
                           'num_devices': len(mesh_devices)}


def score(samples, dataset: str) -> dict[str, np.ndarray]:
  """:func:`jaxgan.metrics.mode_coverage` of each seed's samples, as numpy arrays."""
  d = DATASETS[dataset]
  scores = jax.vmap(lambda s: metrics.mode_coverage(s, d.centers, d.std))(samples)
  return jax.tree.map(np.asarray, scores)


def summarize(values) -> dict[str, float]:
  """Mean and standard error over the seeds with a finite value, and how many were infinite.

  The reverse KL is ``+inf`` for a seed without any high-quality sample; such seeds are counted
  in ``num_infinite`` and left out of the mean (``nan`` if every seed is infinite).
  """
  values = np.asarray(values, np.float64)
  finite = values[np.isfinite(values)]
  mean = float(finite.mean()) if finite.size else float('nan')
  se = float(finite.std(ddof=1) / np.sqrt(finite.size)) if finite.size > 1 else 0.0
  return {'mean': mean, 'se': se, 'num_infinite': int(values.size - finite.size)}


def scatter_plot(path: str, label: str, samples: dict[str, np.ndarray],
                 rows: dict[str, dict]) -> None:
  """Seed 0's samples on each dataset, with the mixture's centers."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, len(samples), figsize=(3.2 * len(samples), 3.4))
  axes = np.atleast_1d(axes)
  for ax, (dataset, points) in zip(axes, samples.items(), strict=True):
    d, s0 = DATASETS[dataset], rows[dataset]['per_seed']
    ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.25, c='tab:blue', linewidths=0)
    ax.scatter(d.centers[:, 0], d.centers[:, 1], s=12, marker='x', c='tab:red', linewidths=0.8)
    lim = 1.5 if dataset == 'ring' else 5.5
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect('equal')
    ax.tick_params(labelsize=6)
    ax.set_title(f'{dataset}, seed 0: {s0["modes"][0]:.0f} modes, '
                 f'{100 * s0["high_quality"][0]:.1f}% HQ', fontsize=7)
  fig.suptitle(label, fontsize=9)
  fig.tight_layout()
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  fig.savefig(path, dpi=80)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--methods', default=','.join(TABLE),
                      help=f'comma-separated subset of {list(METHODS)}; the default is the '
                      'table (every method but the ablation)')
  parser.add_argument('--datasets', default='ring,grid')
  parser.add_argument('--seeds', type=int, default=10, help='number of seeds')
  parser.add_argument('--first_seed', type=int, default=0,
                      help='seeds first_seed, ..., first_seed + seeds - 1; `best` was tuned on '
                      '0-9, so report it on 10-19')
  parser.add_argument('--num_steps', type=int, default=None,
                      help="override every method's number of G steps (for quick tries)")
  parser.add_argument('--out', default=None, help='write the results as JSON here')
  parser.add_argument('--plots', default=None, help='write <method>.png scatter plots here')
  args = parser.parse_args(argv)
  names = args.methods.split(',')
  datasets = args.datasets.split(',')
  for name in names:
    if name not in METHODS:
      raise ValueError(f'unknown method {name!r}; expected one of {list(METHODS)}')
  seeds = list(range(args.first_seed, args.first_seed + args.seeds))
  command = ['python', 'benchmarks/mode_coverage.py', *(sys.argv[1:] if argv is None else argv)]
  results = {'command': ' '.join(command),
             'seeds': seeds, 'num_eval_samples': NUM_EVAL_SAMPLES,
             'devices': [str(d) for d in jax.devices()], 'load_average_start': os.getloadavg(),
             'methods': {}}
  header = (f'{"method":<44} {"data":<5} {"modes":>13} {"high quality %":>15} '
            f'{"reverse KL":>14} {"wall s":>7}')
  print(header)
  print('-' * len(header))
  start_all = time.perf_counter()
  for name in names:
    rows, plot_samples = {}, {}
    for dataset in datasets:
      method = METHODS[name].for_dataset(dataset)
      _, samples, timing = train_seeds(method, dataset, seeds, num_steps=args.num_steps)
      scores = score(samples, dataset)
      row = {
          'modes': summarize(scores['modes']),
          'high_quality_percent': summarize(100 * scores['high_quality']),
          'reverse_kl': summarize(scores['reverse_kl']),
          # null where a seed's reverse KL is +inf (no high-quality sample): JSON has no inf.
          'per_seed': {k: [x if np.isfinite(x) else None for x in v.tolist()]
                       for k, v in scores.items() if k != 'counts'},
          'counts': scores['counts'].tolist(),
          'wall_s': timing['total_s'], 'compile_s': timing['compile_s'],
          'num_devices': timing['num_devices'],
          'num_steps': args.num_steps or method.num_steps,
          'config': {k: v for k, v in dataclasses.asdict(method).items() if k != 'per_dataset'},
      }
      rows[dataset] = row
      plot_samples[dataset] = np.asarray(samples[0])
      print(f'{method.label[:44]:<44} {dataset:<5} '
            f'{row["modes"]["mean"]:6.2f} ± {row["modes"]["se"]:4.2f} '
            f'{row["high_quality_percent"]["mean"]:7.1f} ± '
            f'{row["high_quality_percent"]["se"]:4.1f} '
            f'{row["reverse_kl"]["mean"]:7.3f} ± {row["reverse_kl"]["se"]:5.3f}'
            f'{"*" * bool(row["reverse_kl"]["num_infinite"])} '
            f'{timing["total_s"]:7.1f}', flush=True)
    results['methods'][name] = {'label': METHODS[name].label, **rows}
    if args.plots:
      scatter_plot(os.path.join(args.plots, f'{name}.png'), METHODS[name].label, plot_samples,
                   rows)
    results['total_wall_s'] = time.perf_counter() - start_all
    results['load_average_last'] = os.getloadavg()  # 1, 5, 15 minutes.
    if args.out:  # After every method, so that an interrupted run keeps what it finished.
      os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
      with open(args.out, 'w') as f:
        json.dump(results, f, indent=1)
  print(f'total wall time {results["total_wall_s"]:.0f} s')
  return results


if __name__ == '__main__':
  main()
