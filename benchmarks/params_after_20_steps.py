"""The parameters after 20 train steps of every config and every mode-coverage method.

The redesign check of the "one update rule" issue: run before and after a change to the train
step, the two JSONs must agree (bit for bit where the arithmetic did not change). Each entry is
the SHA-256 of the state's parameter leaves (G, D, G's moving average, both batch-norm
statistics) and their float64 sums, after 20 steps on fixed synthetic batches (configs) or the
benchmark's own data (``benchmarks/mode_coverage.py::train_seeds``, seeds 0 and 1).

    python benchmarks/params_after_20_steps.py --out=benchmarks/results/params_20_steps.json

``--compare=FILE`` prints which entries differ from an earlier run's JSON (exit status 1 if
any parameter sum differs by more than 1e-5 relative).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))
import mode_coverage  # noqa: E402

from jaxgan import data, experiment  # noqa: E402

NUM_STEPS = 20
# Variants beyond the configs, so that every part of the GAN objective is exercised.
VARIANTS = {
    'mog_ring+wgan_clip': {'loss.name': 'wasserstein', 'loss.weight_clip': 0.01},
    'mog_ring+simultaneous': {'train.update_rule': 'simultaneous'},
    'mog_ring+instance_noise': {'train.instance_noise': 0.1},
    'mog_ring+label_smoothing': {'loss.name': 'minimax', 'loss.label_smoothing': 0.1},
    'mog_ring+gp_3_d_steps': {'loss.name': 'wasserstein', 'loss.gradient_penalty_weight': 10.0,
                              'train.num_d_steps': 3},
    'mog_ring+feature_matching_pack': {'loss.feature_matching': True, 'train.pack': 2},
    'mog_ring+unrolled': {'train.unrolled_steps': 3},
    'mog_ring+lazy_r1': {'loss.r1_gamma': 0.1, 'loss.r1_every': 4},
    'mog_ring+ema': {'train.ema_decay': 0.9},
    'cgan_mnist+projection': {'model.label_conditioning': 'projection', 'train.batch_size': 16},
    'cgan_mnist+every_layer': {'model.label_conditioning': 'every_layer',
                               'train.batch_size': 16},
    'dcgan_mnist+2_d_steps': {'train.num_d_steps': 2, 'train.batch_size': 16},
}


def load_config(name: str):
  spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def summary(state) -> dict:
  trees = {'g_params': state.g_params, 'd_params': state.d_params,
           'ema_g_params': state.ema_g_params, 'g_batch_stats': state.g_batch_stats,
           'd_batch_stats': state.d_batch_stats}
  out = {}
  for name, tree in trees.items():
    leaves = [np.asarray(x) for x in jax.tree.leaves(tree)]
    digest = hashlib.sha256(b''.join(x.tobytes() for x in leaves)).hexdigest()[:16]
    out[name] = {'sha256': digest, 'sum': float(sum(np.sum(x, dtype=np.float64) for x in leaves)),
                 'abs_sum': float(sum(np.sum(np.abs(x), dtype=np.float64) for x in leaves))}
  return out


def run_config(config) -> dict:
  generator, discriminator = experiment.build_models(config)
  step = jax.jit(experiment.build_train_step(config, generator, discriminator))
  state = experiment.init_state(config, jax.random.PRNGKey(config.seed), generator,
                                discriminator)
  shape = data.data_shape(config.data.name)
  size = config.train.batch_size * config.train.num_d_steps
  rng = np.random.default_rng(0)
  key = jax.random.PRNGKey(1)
  for _ in range(NUM_STEPS):
    batch = {'x': jnp.asarray(np.tanh(rng.normal(size=(size, *shape))), jnp.float32)}
    if config.model.get('num_classes', 0):
      batch['label'] = jnp.asarray(rng.integers(0, 10, size), jnp.int32)
    state, _ = step(state, batch, key)
  return summary(state)


def run_method(name: str, dataset: str) -> dict:
  method = mode_coverage.METHODS[name].for_dataset(dataset)
  states, _, _ = mode_coverage.train_seeds(method, dataset, [0, 1], num_steps=NUM_STEPS,
                                           chunk=NUM_STEPS)
  return {f'seed{i}': summary(mode_coverage.seed_state(states, i)) for i in range(2)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default=None)
  parser.add_argument('--compare', default=None)
  parser.add_argument('--only', default='', help='comma-separated entry names')
  args = parser.parse_args()
  only = set(filter(None, args.only.split(',')))
  results = {}
  names = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, 'configs')) if f.endswith('.py'))
  for name in names:
    config = load_config(name)
    if config.get('trainer', 'gan') != 'gan' or (only and name not in only):
      continue
    results[f'config:{name}'] = run_config(config)
    print(name, results[f'config:{name}']['g_params'], flush=True)
  for name, overrides in VARIANTS.items():
    if only and name not in only:
      continue
    config = load_config(name.split('+')[0])
    for field, value in overrides.items():
      section, key = field.split('.')
      config[section][key] = value
    results[f'variant:{name}'] = run_config(config)
    print(name, results[f'variant:{name}']['g_params'], flush=True)
  for name in mode_coverage.METHODS:
    for dataset in mode_coverage.DATASETS:
      entry = f'mode_coverage:{name}:{dataset}'
      if only and entry not in only:
        continue
      results[entry] = run_method(name, dataset)
      print(entry, results[entry]['seed0']['g_params'], flush=True)
  if args.out:
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
      json.dump({'command': ' '.join(['python', *sys.argv]), 'num_steps': NUM_STEPS,
                 'jax': jax.__version__, 'results': results}, f, indent=1, sort_keys=True)
  if args.compare:
    with open(args.compare) as f:
      before = json.load(f)['results']
    bad = compare(before, results)
    sys.exit(1 if bad else 0)


def _leaves(entry, prefix=''):
  for k, v in entry.items():
    if isinstance(v, dict):
      yield from _leaves(v, f'{prefix}{k}.')
    else:
      yield f'{prefix}{k}', v


def compare(before: dict, after: dict) -> list[str]:
  """Prints each entry as identical / close / different; returns the different ones."""
  bad = []
  for name in sorted(set(before) & set(after)):
    b, a = dict(_leaves(before[name])), dict(_leaves(after[name]))
    hashes = [k for k in b if k.endswith('sha256') and b[k] != a.get(k)]
    far = [k for k in b if not k.endswith('sha256') and not np.isclose(b[k], a[k], rtol=1e-5,
                                                                        atol=1e-6)]
    verdict = 'identical' if not hashes else ('close' if not far else 'DIFFERENT')
    print(f'{verdict:10s} {name}' + (f'  ({", ".join(far or hashes)})' if hashes else ''))
    if far:
      bad.append(name)
  for name in sorted(set(before) ^ set(after)):
    print(f'{"missing":10s} {name}')
  return bad


if __name__ == '__main__':
  main()
