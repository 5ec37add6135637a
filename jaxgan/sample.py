"""Pictures from a trained image GAN: ``python -m jaxgan.sample --workdir=DIR --mode=MODE``.

Rebuilds the models from ``DIR/config.json`` (written by ``train_and_evaluate``), restores the
latest checkpoint of ``DIR/checkpoints`` and writes one PNG (default ``DIR/samples/<mode>.png``):

* ``--mode=grid``: ``rows x columns`` samples.
* ``--mode=interpolate``: ``rows`` strips, each walking in ``columns`` steps from one random
  latent to another ("walking on the manifold", seed 004; ``--method=slerp`` or ``linear``).
  A conditional G keeps one class per strip (row ``i`` shows class ``i mod K``).
* ``--mode=class_grid`` (conditional models): one row per class, one column per latent, so each
  column shows every class in the same "style".
* ``--mode=style_mix`` (StyleGAN2 runs, :mod:`jaxgan.style_train`): the style-mixing grid of
  arXiv:1812.04948, Figure 3. The top row holds ``columns`` sources whose *coarse* styles (the
  first ``--mix_cutoff`` style inputs, default half of them: 4x4 and 8x8 at 32x32) each column
  keeps; the left column holds ``rows`` sources whose *fine* styles (the rest) each row keeps.
  Noise is off, so that the cells differ by their styles alone (:func:`style_mix_images`).

``--truncation=psi`` (StyleGAN2 runs) draws every image from ``w_avg + psi (w - w_avg)``
(arXiv:1812.04948, Eq. 2): 1 is none, 0 every latent's ``w_avg``. StyleGAN2 and PGGAN runs draw
``grid`` at their last resolution (PGGAN: the stage and fade-in of the run's last step).
Samples use the moving average of G's weights when the run kept one.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

from jaxgan import checkpoint, experiment, game, gan, latent, style_train, stylegan2, visualize
from jaxgan import data as data_lib

MODES = ('grid', 'interpolate', 'class_grid', 'style_mix')


def load_run(workdir: str) -> tuple[ml_collections.ConfigDict, object, game.GANState]:
  """``(config, generator, state)`` of the latest checkpoint in ``workdir``."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise ValueError(f'no config.json in workdir={workdir!r}; is it a jaxgan training run?')
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  builder = style_train if _style_run(config) else experiment
  generator, discriminator = builder.build_models(config)
  # The state's structure, shapes and dtypes only (traced, not compiled): the checkpoint fills it.
  like = jax.eval_shape(lambda key: builder.init_state(config, key, generator, discriminator),
                        jax.random.PRNGKey(0))
  manager = checkpoint.manager(workdir, keep=config.train.keep_checkpoints)
  if manager.latest_step() is None:
    raise ValueError(f'no checkpoint in {os.path.join(workdir, "checkpoints")!r}')
  state = checkpoint.restore_latest(manager, like)
  manager.close()
  return config, generator, state


def _style_run(config) -> bool:
  return config.get('trainer') in style_train.SYSTEMS


def _generate(config, generator, state, z, labels=None) -> np.ndarray:
  return np.asarray(experiment.sample(config, generator, state, None, z.shape[0], labels=labels,
                                      z=z))


def _latents(config, key, num):
  return gan.sample_latent(key, num, config.model.latent_dim, config.model.latent_distribution)


def grid_images(config, generator, state, key, *, rows: int, columns: int) -> np.ndarray:
  """``rows * columns`` samples, shape ``(rows * columns, H, W, C)``."""
  return _generate(config, generator, state, _latents(config, key, rows * columns))


def interpolation_images(config, generator, state, key, *, rows: int, columns: int,
                         method: str = 'slerp') -> np.ndarray:
  """``rows`` interpolation strips of ``columns`` images, row-major ``(rows * columns, ...)``."""
  ends = _latents(config, key, 2 * rows).reshape((rows, 2, -1))
  z = jax.vmap(lambda pair: latent.interpolate(pair[0], pair[1], columns, method=method))(ends)
  num_classes = config.model.get('num_classes', 0)
  labels = jnp.repeat(jnp.arange(rows) % num_classes, columns) if num_classes else None
  return _generate(config, generator, state, z.reshape((rows * columns, -1)), labels)


def class_grid_images(config, generator, state, key, *, columns: int) -> np.ndarray:
  """Row ``k`` is class ``k``, column ``j`` latent ``j``: shape ``(K * columns, H, W, C)``."""
  num_classes = config.model.get('num_classes', 0)
  if not num_classes:
    raise ValueError("mode 'class_grid' needs a conditional model (config.model.num_classes > 0)")
  z = jnp.tile(_latents(config, key, columns), (num_classes, 1))
  labels = jnp.repeat(jnp.arange(num_classes), columns)
  return _generate(config, generator, state, z, labels)


def style_mix_images(config, generator: stylegan2.Generator, state: game.GANState,
                     key: jax.Array, *, rows: int, columns: int, psi: float = 1.0,
                     cutoff: int | None = None) -> np.ndarray:
  """The style-mixing grid, ``((rows + 1) * (columns + 1), R, R, C)`` row-major.

  ``z ~ N(0, I)`` from ``key``: ``columns`` coarse sources, then ``rows`` fine sources, mapped
  to ``w`` (no mixing) and truncated by ``psi``. Row 0 is a blank cell (white) and the coarse
  sources; row ``i + 1`` is fine source ``i`` and then, for each coarse source ``j``, the image
  of :func:`jaxgan.stylegan2.style_mix` ``(ws_coarse_j, ws_fine_i, cutoff)``: style inputs
  ``[0, cutoff)`` from ``j``, ``[cutoff, L)`` from ``i`` (``cutoff`` default ``L // 2``;
  ``cutoff = L`` repeats the top row, ``0`` the left column). No noise (``noise_key=None``).
  G's moving average when the run kept one.
  """
  num_ws = generator.num_ws
  cutoff = num_ws // 2 if cutoff is None else cutoff
  if not 0 <= cutoff <= num_ws:
    raise ValueError(f'mix cutoff must be in [0, {num_ws}] (the generator has {num_ws} style '
                     f'inputs), got {cutoff}')
  stylegan2.check_psi(psi)
  params = state.ema_g_params if state.ema_g_params else state.g_params
  variables = {'params': params, 'batch_stats': {'w_avg': state.g_batch_stats['w_avg']}}
  z = jax.random.normal(key, (columns + rows, config.model.latent_dim))
  ws = generator.apply(variables, z, psi=psi, method=stylegan2.Generator.mapping)
  coarse, fine = ws[:columns], ws[columns:]
  mixed = stylegan2.style_mix(
      jnp.broadcast_to(coarse[None], (rows, *coarse.shape)).reshape((-1, *ws.shape[1:])),
      jnp.broadcast_to(fine[:, None], (rows, columns, *ws.shape[1:])).reshape(
          (-1, *ws.shape[1:])), cutoff)
  synthesize = lambda ws: np.asarray(generator.apply(variables, ws,
                                                     method=stylegan2.Generator.synthesize))
  sources, cells = synthesize(ws), synthesize(mixed)
  shape = sources.shape[1:]
  out = [np.ones(shape, np.float32), *sources[:columns]]
  for i in range(rows):
    out += [sources[columns + i], *cells[i * columns:(i + 1) * columns]]
  return np.stack(out)


def write(workdir: str, mode: str, *, out: str | None = None, rows: int = 8, columns: int = 10,
          method: str = 'slerp', seed: int = 0, truncation: float = 1.0,
          mix_cutoff: int | None = None) -> str:
  """Draws ``mode`` from the run in ``workdir`` into a PNG; returns its path."""
  if mode not in MODES:
    raise ValueError(f'unknown mode {mode!r}; expected one of {list(MODES)}')
  stylegan2.check_psi(truncation)
  config, generator, state = load_run(workdir)
  if config.data.name not in data_lib.IMAGE_SHAPES:
    raise ValueError(f'jaxgan.sample draws image GANs; config.data.name={config.data.name!r}')
  stylegan = config.get('trainer') == 'stylegan2'
  if (mode == 'style_mix' or truncation != 1.0) and not stylegan:
    raise ValueError(f'--mode=style_mix and --truncation need a StyleGAN2 run '
                     f'(config.trainer={config.get("trainer")!r})')
  if _style_run(config) and mode in ('interpolate', 'class_grid'):
    raise ValueError(f'mode {mode!r} is not drawn for config.trainer={config.trainer!r}; use '
                     f'grid' + (' or style_mix' if stylegan else ''))
  key = jax.random.PRNGKey(seed)
  if mode == 'style_mix':
    images = style_mix_images(config, generator, state, key, rows=rows, columns=columns,
                              psi=truncation, cutoff=mix_cutoff)
    columns += 1
  elif mode == 'grid' and _style_run(config):
    images = style_train.make_sampler(config, generator)(state, key, rows * columns,
                                                         psi=truncation)
  elif mode == 'grid':
    images = grid_images(config, generator, state, key, rows=rows, columns=columns)
  elif mode == 'interpolate':
    images = interpolation_images(config, generator, state, key, rows=rows, columns=columns,
                                  method=method)
  else:
    images = class_grid_images(config, generator, state, key, columns=columns)
  out = out or os.path.join(workdir, 'samples', f'{mode}.png')
  visualize.save_image_grid(out, images, columns=columns)
  return out


def _define_flags() -> None:
  """The CLI's flags; defined only when run as a program, so importing defines none."""
  flags.DEFINE_string('workdir', None, 'A training run of jaxgan.main (config.json, checkpoints/).')
  flags.DEFINE_enum('mode', 'grid', MODES, 'What to draw.')
  flags.DEFINE_string('out', None, 'PNG path (default: <workdir>/samples/<mode>.png).')
  flags.DEFINE_integer('rows', 8, 'Rows (grid, interpolate).')
  flags.DEFINE_integer('columns', 10, 'Columns: samples per row / interpolation steps.')
  flags.DEFINE_enum('method', 'slerp', latent.METHODS, 'Interpolation path.')
  flags.DEFINE_integer('seed', 0, 'Seeds the latents.')
  flags.DEFINE_float('truncation', 1.0, 'StyleGAN2: truncation psi >= 0 (1: none).')
  flags.DEFINE_integer('mix_cutoff', None, 'style_mix: the style inputs taken from the coarse '
                       'sources (default: half).')
  flags.mark_flag_as_required('workdir')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  print(write(f.workdir, f.mode, out=f.out, rows=f.rows, columns=f.columns, method=f.method,
              seed=f.seed, truncation=f.truncation, mix_cutoff=f.mix_cutoff))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
