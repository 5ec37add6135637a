"""What a gradient inside ``lax.cond`` costs on this XLA:CPU, and what it does to the style steps.

StyleGAN2's lazy regularizers (R1 every 16 steps, path length every 4) and PGGAN's choice of the
current stage's networks depend on the step's number. Chosen by a ``lax.cond`` or ``lax.switch``
on ``state.step`` inside one compiled step, they put the gradients of both players inside a
conditional; :mod:`jaxgan.style_train` instead compiles one step per stage and per lazy-term
pattern, chosen on the host (:class:`jaxgan.loop.Switched`), because on XLA:CPU (jax 0.10.2
here) the convolutions of a gradient that sits inside a conditional run tens of times slower
than the same gradient outside one, while forward convolutions inside a conditional do not slow
down. This script measures it, as medians of repeated calls after one
warm-up call (compile excluded):

* ``conv``: the kernel gradient of two 3x3 convolutions (32x32x64, batch 32): plain, computed
  inside a taken ``lax.cond``, and the gradient of a ``lax.cond`` (the R1 pattern); the forward
  pass plain and inside the conditional.
* ``r1``: the gradient of R1 (:func:`jaxgan.penalties.r1_penalty`) of ``stylegan2_mnist``'s
  discriminator with respect to D's parameters: plain, under a taken ``lax.cond`` (the lazy step)
  and under ``jnp.where`` (both computed).
* ``step``: the compiled steps of :func:`jaxgan.style_train.build_train_step` (its
  ``Switched`` variants, no conditional) of ``stylegan2_mnist`` on a step with no lazy term, a
  path-length step (``step % 4 == 0``) and an R1 + path-length step (``step % 16 == 0``); and of
  ``pggan_mnist`` in its first stage and its last stage.

Run alone on an idle machine (it times on two cores)::

    python benchmarks/cond_gradients.py --out=benchmarks/results/cond_gradients_cpu.json

Writes ``--out`` (JSON: the command, seconds per call, the ratios rounded as printed, the
machine and ``os.getloadavg()`` at the start and the end) and prints a Markdown table.
"""

import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from jax import lax

from jaxgan import penalties, style_train

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import machine  # noqa: E402


def median_seconds(fn, *args, repeats: int = 5) -> float:
  """Median wall seconds of ``fn(*args)`` over ``repeats`` calls after one warm-up call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def conv_rows(repeats: int) -> dict[str, float]:
  """Two 3x3 convolutions (tanh between), batch 32 at 32x32x64: forward and kernel gradient,
  plain and inside a taken ``lax.cond``."""
  h = jax.random.normal(jax.random.PRNGKey(2), (32, 32, 32, 64))
  k = jax.random.normal(jax.random.PRNGKey(3), (3, 3, 64, 64))
  conv = lambda x, k: lax.conv_general_dilated(x, k, (1, 1), 'SAME',
                                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  f = lambda k: jnp.sum(jnp.tanh(conv(jnp.tanh(conv(h, k)), k)))
  g = jax.grad(f)
  on = jnp.int32(1)
  return {
      'forward': median_seconds(jax.jit(f), k, repeats=repeats),
      'forward_in_cond': median_seconds(
          jax.jit(lambda k, s: lax.cond(s > 0, f, lambda k: 0.0, k)), k, on, repeats=repeats),
      'grad': median_seconds(jax.jit(g), k, repeats=repeats),
      'grad_in_cond': median_seconds(
          jax.jit(lambda k, s: lax.cond(s > 0, g, jnp.zeros_like, k)), k, on, repeats=repeats),
      'grad_of_cond': median_seconds(
          jax.jit(jax.grad(lambda k, s: lax.cond(s > 0, f, lambda k: 0.0, k))), k, on,
          repeats=repeats)}


def r1_rows(repeats: int) -> dict[str, float]:
  """The gradient of R1 of ``stylegan2_mnist``'s D (batch 32, 32x32): plain, under a taken
  ``lax.cond`` (the lazy step's form) and under ``jnp.where``."""
  config = style_train.base_config('stylegan2', 'mnist')
  generator, discriminator = style_train.build_models(config)
  state = style_train.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
  x = jax.random.normal(jax.random.PRNGKey(1), (config.train.batch_size, 32, 32, 1))
  r1 = lambda p: penalties.r1_penalty(lambda y: discriminator.apply({'params': p}, y), x)
  lazy = lambda p, s: lax.cond(s % 16 == 0, lambda: r1(p), lambda: jnp.zeros(()))
  both = lambda p, s: jnp.where(s % 16 == 0, r1(p), 0.0)
  p, s = state.d_params, jnp.int32(16)
  return {'grad': median_seconds(jax.jit(jax.grad(r1)), p, repeats=repeats),
          'grad_under_cond': median_seconds(jax.jit(jax.grad(lazy)), p, s, repeats=repeats),
          'grad_under_where': median_seconds(jax.jit(jax.grad(both)), p, s, repeats=repeats)}


def step_rows(repeats: int) -> dict[str, float]:
  """Seconds per train step of the style systems at chosen steps (batch of zeros)."""
  rows = {}
  for system, steps in (('stylegan2', {'no_lazy_term': 1, 'path_length': 4,
                                       'r1_and_path_length': 16}),
                        ('pggan', None)):
    config = style_train.base_config(system, 'mnist')
    generator, discriminator = style_train.build_models(config)
    state = style_train.init_state(config, jax.random.PRNGKey(0), generator, discriminator)
    switched = style_train.build_train_step(config, generator, discriminator)
    if steps is None:  # PGGAN: a step of the first stage (4x4) and of the last (32x32).
      steps = {'first_stage': 1, 'last_stage': style_train.phase_starts(config)[-1] + 1}
    resolution = config.model.resolution
    batch = {'x': jnp.zeros((config.train.batch_size, resolution, resolution, 1))}
    for name, at in steps.items():
      at_state = state.replace(step=jnp.asarray(at, state.step.dtype))
      step = jax.jit(switched.train_step(switched.variant(at)))
      rows[f'{system}_{name}'] = median_seconds(step, at_state, batch, jax.random.PRNGKey(2),
                                                repeats=repeats)
  return rows


def markdown_table(results: dict) -> str:
  c, r, s = results['conv'], results['r1'], results['step']
  lines = ['| what | seconds per call | against its plain form |', '|---|---:|---:|',
           f"| conv forward | {c['forward']:.4f} | 1 |",
           f"| conv forward inside lax.cond | {c['forward_in_cond']:.4f} | "
           f"{c['forward_in_cond'] / c['forward']:.1f}x |",
           f"| conv kernel gradient | {c['grad']:.4f} | 1 |",
           f"| conv kernel gradient inside lax.cond | {c['grad_in_cond']:.4f} | "
           f"{c['grad_in_cond'] / c['grad']:.1f}x |",
           f"| gradient of a lax.cond of the convs | {c['grad_of_cond']:.4f} | "
           f"{c['grad_of_cond'] / c['grad']:.1f}x |",
           f"| StyleGAN2 D: R1 gradient | {r['grad']:.4f} | 1 |",
           f"| StyleGAN2 D: R1 gradient under lax.cond (lazy) | {r['grad_under_cond']:.4f} | "
           f"{r['grad_under_cond'] / r['grad']:.1f}x |",
           f"| StyleGAN2 D: R1 gradient under jnp.where | {r['grad_under_where']:.4f} | "
           f"{r['grad_under_where'] / r['grad']:.1f}x |"]
  base = s['stylegan2_no_lazy_term']
  for name in ('stylegan2_no_lazy_term', 'stylegan2_path_length', 'stylegan2_r1_and_path_length'):
    lines.append(f"| step: {name} | {s[name]:.3f} | {s[name] / base:.1f}x |")
  first = s['pggan_first_stage']
  for name in ('pggan_first_stage', 'pggan_last_stage'):
    lines.append(f"| step: {name} | {s[name]:.3f} | {s[name] / first:.1f}x of its first |")
  return '\n'.join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  load_start, start = os.getloadavg(), time.perf_counter()
  results = {'conv': conv_rows(f.repeats), 'r1': r1_rows(f.repeats),
             'step': step_rows(f.step_repeats)}
  c, r, s = results['conv'], results['r1'], results['step']
  ratios = {'conv_forward_in_cond': c['forward_in_cond'] / c['forward'],
            'conv_grad_in_cond': c['grad_in_cond'] / c['grad'],
            'conv_grad_of_cond': c['grad_of_cond'] / c['grad'],
            'r1_grad_under_cond': r['grad_under_cond'] / r['grad'],
            'r1_grad_under_where': r['grad_under_where'] / r['grad'],
            **{name: s[name] / s['stylegan2_no_lazy_term'] for name in s if 'stylegan2' in name},
            **{name: s[name] / s['pggan_first_stage'] for name in s if 'pggan' in name}}
  results['ratios'] = {name: round(x, 1) for name, x in ratios.items()}
  table = markdown_table(results)
  print(table)
  if f.out:
    os.makedirs(os.path.dirname(os.path.abspath(f.out)), exist_ok=True)
    with open(f.out, 'w') as out:
      json.dump({'command': ' '.join(['python', *sys.argv]), 'results': results,
                 'table': table, 'repeats': f.repeats, 'step_repeats': f.step_repeats,
                 'machine': machine.describe(),
                 'load_average_start': load_start, 'load_average_end': os.getloadavg(),
                 'seconds': round(time.perf_counter() - start, 1)}, out, indent=2)


if __name__ == '__main__':
  flags.DEFINE_string('out', None, 'JSON output path.')
  flags.DEFINE_integer('repeats', 5, 'Timed calls per kernel/R1 row (after one warm-up).')
  flags.DEFINE_integer('step_repeats', 3, 'Timed calls per train-step row (after one warm-up).')
  app.run(main)
