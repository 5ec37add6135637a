"""Pictures from a trained image GAN: ``python -m jaxgan.sample --workdir=DIR --mode=MODE``.

Rebuilds the models from ``DIR/config.json`` (written by ``train_and_evaluate``), restores the
latest checkpoint of ``DIR/checkpoints`` and writes one PNG (default ``DIR/samples/<mode>.png``):

* ``--mode=grid``: ``rows x columns`` samples.
* ``--mode=interpolate``: ``rows`` strips, each walking in ``columns`` steps from one random
  latent to another ("walking on the manifold", seed 004; ``--method=slerp`` or ``linear``).
  A conditional G keeps one class per strip (row ``i`` shows class ``i mod K``).
* ``--mode=class_grid`` (conditional models): one row per class, one column per latent, so each
  column shows every class in the same "style".

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

from jaxgan import checkpoint, experiment, game, gan, latent, visualize
from jaxgan import data as data_lib

MODES = ('grid', 'interpolate', 'class_grid')


def load_run(workdir: str) -> tuple[ml_collections.ConfigDict, object, game.GANState]:
  """``(config, generator, state)`` of the latest checkpoint in ``workdir``."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise ValueError(f'no config.json in workdir={workdir!r}; is it a jaxgan training run?')
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  generator, discriminator = experiment.build_models(config)
  # The state's structure, shapes and dtypes only (traced, not compiled): the checkpoint fills it.
  like = jax.eval_shape(lambda key: experiment.init_state(config, key, generator, discriminator),
                        jax.random.PRNGKey(0))
  manager = checkpoint.manager(workdir, keep=config.train.keep_checkpoints)
  if manager.latest_step() is None:
    raise ValueError(f'no checkpoint in {os.path.join(workdir, "checkpoints")!r}')
  state = checkpoint.restore_latest(manager, like)
  manager.close()
  return config, generator, state


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


def write(workdir: str, mode: str, *, out: str | None = None, rows: int = 8, columns: int = 10,
          method: str = 'slerp', seed: int = 0) -> str:
  """Draws ``mode`` from the run in ``workdir`` into a PNG; returns its path."""
  if mode not in MODES:
    raise ValueError(f'unknown mode {mode!r}; expected one of {list(MODES)}')
  config, generator, state = load_run(workdir)
  if config.data.name not in data_lib.IMAGE_SHAPES:
    raise ValueError(f'jaxgan.sample draws image GANs; config.data.name={config.data.name!r}')
  key = jax.random.PRNGKey(seed)
  if mode == 'grid':
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
  flags.mark_flag_as_required('workdir')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  print(write(f.workdir, f.mode, out=f.out, rows=f.rows, columns=f.columns, method=f.method,
              seed=f.seed))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
