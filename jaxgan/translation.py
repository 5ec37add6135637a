"""Image-to-image translation tasks on 28x28 MNIST / Fashion-MNIST: fixed operators ``T``.

pix2pix (Isola et al. 2016, arXiv:1611.07004) learns a map from *paired* examples ``(input,
target)``; CycleGAN (Zhu et al. 2017, arXiv:1703.10593) learns maps between two domains ``A`` and
``B`` from *unpaired* sets. Neither dataset here comes with a second domain, so each task is a
deterministic transform ``T`` of the images: pairs are ``(x, T(x))`` (or ``(T(x), x)``), and
CycleGAN's domains are ``A = {x}`` and ``B = {T(x')}`` built from *disjoint* halves of the
training split, so no pair exists in training while the true map ``T`` is known for evaluation.

Every transform takes and returns uint8 images ``(N, H, W, C)`` (as stored on disk and kept on the
device; :func:`jaxgan.data.to_unit_range` maps them to [-1, 1] for training) of the same shape,
and is a pure numpy function: applied once, when the data is loaded.

=============  =======================================================  =============
name           ``T(x)``                                                 inverse
=============  =======================================================  =============
``dilate``     3x3 grey dilation (max over the 3x3 neighbourhood)        none
``invert``     ``255 - x``                                               itself
``rotate90``   rotate 90 degrees counter-clockwise in the (H, W) plane   ``T^3``
``edges``      binary morphological gradient, ``{0, 255}``               none
``top_half``   rows ``H // 2 ..`` set to 0                               none
=============  =======================================================  =============

pix2pix's own tasks map the *transformed* image back (edges -> photo, its "edges2shoes", and
completion of the hidden bottom half): ``pairs(images, 'edges', direction='from_transformed')``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import numpy as np
import optax

from jaxgan import data as data_lib
from jaxgan import faults, loop, train, visualize

# The morphological gradient above which edges() marks a pixel as an edge (out of 255): strokes
# and garment outlines, whose gradient is near 255, pass; faint anti-aliasing and texture do not.
EDGE_THRESHOLD = 64

Transform = Callable[[np.ndarray], np.ndarray]


def _check_images(images: np.ndarray) -> np.ndarray:
  images = np.asarray(images)
  if images.ndim != 4 or images.dtype != np.uint8:
    raise ValueError(f'expected uint8 images of shape (N, H, W, C), got {images.dtype} '
                     f'{images.shape}')
  return images


def _neighbourhood(images: np.ndarray, reduce: Callable) -> np.ndarray:
  """``reduce`` (np.maximum or np.minimum) over the 3x3 (H, W) neighbourhood of each pixel.

  Borders are padded with ``np.pad(mode='symmetric')`` (``d c b a | a b c d | d c b a``), which is
  ``scipy.ndimage``'s ``mode='reflect'``; with a 3x3 window it repeats the edge row and column.
  """
  height, width = images.shape[1:3]
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='symmetric')
  out = images.copy()
  for dy in range(3):
    for dx in range(3):
      out = reduce(out, padded[:, dy:dy + height, dx:dx + width])
  return out


def dilate(images: np.ndarray) -> np.ndarray:
  """3x3 grey dilation: ``T(x)[n, i, j, c] = max_{|di|, |dj| <= 1} x[n, i + di, j + dj, c]``.

  Borders as ``scipy.ndimage.grey_dilation(x, size=(1, 3, 3, 1))`` (its default
  ``mode='reflect'``), computed in numpy. Strokes get about two pixels thicker; a single lit pixel
  becomes a 3x3 block.

  Args:
    images: uint8 ``(N, H, W, C)``.

  Returns:
    uint8 ``(N, H, W, C)``.
  """
  return _neighbourhood(_check_images(images), np.maximum)


def erode(images: np.ndarray) -> np.ndarray:
  """3x3 grey erosion, the min-filter dual of :func:`dilate` (same borders); uint8 in and out."""
  return _neighbourhood(_check_images(images), np.minimum)


def invert(images: np.ndarray) -> np.ndarray:
  """Photographic negative ``T(x) = 255 - x``; an involution, ``T(T(x)) = x``. uint8 in and out."""
  return np.uint8(255) - _check_images(images)


def rotate90(images: np.ndarray) -> np.ndarray:
  """Rotation by 90 degrees counter-clockwise: ``T(x)[n, i, j, c] = x[n, j, W - 1 - i, c]``.

  ``np.rot90(x, k=1, axes=(1, 2))``: the top-right pixel moves to the top-left. Four rotations
  are the identity. Square images only (``H == W``), so the shape is kept. uint8 in and out.
  """
  images = _check_images(images)
  if images.shape[1] != images.shape[2]:
    raise ValueError(f'rotate90 needs square images, got {images.shape}')
  return np.ascontiguousarray(np.rot90(images, k=1, axes=(1, 2)))


def edges(images: np.ndarray) -> np.ndarray:
  """Binary edge map, the input of pix2pix's "edges -> image" task (like its edges2shoes).

  The morphological gradient ``g = dilate(x) - erode(x)`` (3x3, borders as :func:`dilate`),
  thresholded: ``T(x) = 255 where g > EDGE_THRESHOLD (64) else 0``. A fixed operator with no
  parameters. The outline it draws is 2 pixels wide and straddles each boundary: of a filled
  square it keeps the square's outermost ring of pixels and the ring just outside it.

  Args:
    images: uint8 ``(N, H, W, C)``.

  Returns:
    uint8 ``(N, H, W, C)`` with values in ``{0, 255}``.
  """
  images = _check_images(images)
  gradient = dilate(images) - erode(images)  # Dilation >= erosion: no uint8 wrap-around.
  return np.where(gradient > EDGE_THRESHOLD, np.uint8(255), np.uint8(0))


def top_half(images: np.ndarray) -> np.ndarray:
  """The top half kept, the bottom half blacked out: rows ``H // 2 ..`` (14..27 at 28x28) set to 0.

  The input of the "complete the bottom half" task, whose target is the full image
  (``direction='from_transformed'``). uint8 in and out.
  """
  out = _check_images(images).copy()
  out[:, out.shape[1] // 2:] = 0
  return out


TRANSFORMS: dict[str, Transform] = {
    'dilate': dilate,
    'invert': invert,
    'rotate90': rotate90,
    'edges': edges,
    'top_half': top_half,
}
# pairs(): 'to_transformed' maps x -> T(x), 'from_transformed' maps T(x) -> x.
DIRECTIONS = ('to_transformed', 'from_transformed')


def get_transform(name: str) -> Transform:
  """The transform called ``name`` in :data:`TRANSFORMS`."""
  if name not in TRANSFORMS:
    raise ValueError(f'unknown transform {name!r}; expected one of {sorted(TRANSFORMS)}')
  return TRANSFORMS[name]


def _resolve(transform: str | Transform) -> Transform:
  return get_transform(transform) if isinstance(transform, str) else transform


def pairs(images: np.ndarray, transform: str | Transform, *, direction: str
          ) -> dict[str, np.ndarray]:
  """Paired data for pix2pix: row ``n`` of ``x`` (the input) and of ``y`` (the target) match.

  * ``direction='to_transformed'``: ``x = images``, ``y = T(images)``; G learns ``T`` (the
    supervised reference for CycleGAN's ``G: A -> B``).
  * ``direction='from_transformed'``: ``x = T(images)``, ``y = images``; G learns to undo ``T``
    (pix2pix's own tasks: ``'edges'`` -> image, ``'top_half'`` -> image).

  Args:
    images: uint8 ``(N, H, W, C)``.
    transform: a name in :data:`TRANSFORMS` or a function of the same contract.
    direction: one of :data:`DIRECTIONS`.

  Returns:
    ``{'x': (N, H, W, C) uint8, 'y': (N, H, W, C) uint8}``.
  """
  if direction not in DIRECTIONS:
    raise ValueError(f'unknown direction {direction!r}; expected one of {list(DIRECTIONS)}')
  images = _check_images(images)
  transformed = _resolve(transform)(images)
  if direction == 'to_transformed':
    return {'x': images, 'y': transformed}
  return {'x': transformed, 'y': images}


def unpaired(train_images: np.ndarray, transform: str | Transform, *, split: int = 30_000
             ) -> dict[str, np.ndarray]:
  """CycleGAN's unpaired domains from disjoint parts of one training split.

  ``a = train_images[:split]`` (domain A, as stored) and ``b = T(train_images[split:])`` (domain
  B): no image of ``b`` is the transform of an image of ``a``, so training sees no pair. The
  default splits MNIST's 60,000 training images in half. Pairs for evaluation come from another
  split through :func:`pairs`.

  Args:
    train_images: uint8 ``(N, H, W, C)``.
    transform: a name in :data:`TRANSFORMS` or a function of the same contract.
    split: number of images in domain A, ``1 <= split <= N - 1``; B gets the other ``N - split``.

  Returns:
    ``{'a': (split, H, W, C) uint8, 'b': (N - split, H, W, C) uint8}``.
  """
  train_images = _check_images(train_images)
  num = train_images.shape[0]
  if not 1 <= split <= num - 1:
    raise ValueError(f'split must be in [1, {num - 1}] for {num} images, got {split}')
  return {'a': train_images[:split], 'b': _resolve(transform)(train_images[split:])}


# The pieces both translation systems (jaxgan.pix2pix, jaxgan.cyclegan) train with.

SYSTEMS = ('pix2pix', 'cyclegan')


def validate(config) -> None:
  """One-line ``ValueError`` for a bad translation config, before anything is loaded or built.

  Checks ``config.trainer`` (one of :data:`SYSTEMS`), the task's transform and direction, that
  every ``config.loss`` weight is ``>= 0``, ``model.pool_size >= 0``, that a second domain
  (``data.name_b``) has the image shape of the first, that pix2pix (paired data) is not given a
  second dataset (unpaired), the batch size and the step intervals.
  """
  if config.get('trainer') not in SYSTEMS:
    raise ValueError(f'config.trainer={config.get("trainer")!r} is not a translation system; '
                     f'expected one of {list(SYSTEMS)}')
  get_transform(config.task.transform)
  if config.trainer == 'pix2pix' and config.task.direction not in DIRECTIONS:
    raise ValueError(f'config.task.direction={config.task.direction!r} is not allowed; '
                     f'expected one of {list(DIRECTIONS)}')
  for name, value in config.loss.items():
    if isinstance(value, (int, float)) and value < 0:
      raise ValueError(f'config.loss.{name}={value} must be >= 0')
  if config.model.get('pool_size', 0) < 0:
    raise ValueError(f'config.model.pool_size={config.model.pool_size} must be >= 0')
  name_b = config.data.get('name_b', '')
  if name_b:
    if config.trainer == 'pix2pix':
      raise ValueError(f"config.data.name_b={name_b!r}: pix2pix trains on pairs (x, T(x)) of "
                       f"one dataset; unpaired domains are CycleGAN's (config.trainer='cyclegan')")
    shape_a, shape_b = data_lib.data_shape(config.data.name), data_lib.data_shape(name_b)
    if shape_a != shape_b:
      raise ValueError(f'the two domains have different image shapes: config.data.name='
                       f'{config.data.name!r} is {shape_a}, config.data.name_b={name_b!r} is '
                       f'{shape_b}')
  t = config.train
  train.check_driver_fields(config)
  if t.parallel != 'none' and config.trainer == 'cyclegan' and config.model.pool_size:
    raise ValueError(f"config.train.parallel={t.parallel!r}: CycleGAN's history pool is one "
                     "per run; train it with parallel='none' (or model.pool_size=0)")


def _split(config, split: str) -> np.ndarray:
  return data_lib.load_images(config.data.name, split=split, data_dir=config.data.data_dir,
                              download=config.data.download)['image']


def load_task(config, *, split: str = 'train') -> dict[str, np.ndarray]:
  """The uint8 images a translation config trains on (``split='train'``) or is tested on.

  pix2pix, and every test split: :func:`pairs` of ``data.name``'s images under
  ``task.transform`` and ``task.direction`` (``'to_transformed'`` for CycleGAN's tests: ``x`` in
  A, ``y = T(x)`` its true image in B), ``{'x', 'y'}``. CycleGAN's training split:
  :func:`unpaired` with ``task.split`` images in A, ``{'a', 'b'}``.
  """
  images = _split(config, split)
  if config.trainer == 'cyclegan' and split == 'train':
    return unpaired(images, config.task.transform, split=config.task.split)
  direction = config.task.direction if config.trainer == 'pix2pix' else 'to_transformed'
  return pairs(images, config.task.transform, direction=direction)


def source(arrays: dict[str, np.ndarray], key: jax.Array, batch_size: int, *,
           paired: bool) -> loop.Source:
  """Shuffled batches of uint8 ``arrays`` on the device, scaled to [-1, 1]: a
  :class:`jaxgan.loop.Source`.

  ``paired``: every array is indexed by the same :func:`jaxgan.data.batch_indices`
  ``(key, t)`` (row ``n`` of ``x`` goes with row ``n`` of ``y``). Unpaired: array ``i`` (in
  sorted name order) has its own shuffle, ``batch_indices(fold_in(key, i), t)``. Batch ``t`` is a
  function of ``(key, t)``, so a resumed run finds its place in O(1).
  """
  names = sorted(arrays)
  sizes = {k: arrays[k].shape[0] for k in names}
  for k in names:
    data_lib.steps_per_epoch(sizes[k], batch_size)  # A clear error for too few examples.
  if paired and len(set(sizes.values())) != 1:
    raise ValueError(f'paired arrays must have one size, got {sizes}')

  def plan(start, length):
    if paired:
      idx = data_lib.batch_indices(key, start, length, num_examples=sizes[names[0]],
                                   batch_size=batch_size)
      return {k: idx for k in names}
    return {k: data_lib.batch_indices(jax.random.fold_in(key, i), start, length,
                                      num_examples=sizes[k], batch_size=batch_size)
            for i, k in enumerate(names)}

  plan = jax.jit(plan, static_argnums=1)
  return loop.Source(
      data=dict(arrays), plan=plan,
      batch=lambda data, idx: {k: data_lib.to_unit_range(data[k][idx[k]]) for k in names})


def adam_pair(config) -> tuple[optax.GradientTransformation, optax.GradientTransformation]:
  """Adam for G and D with ``train.g_lr``, ``train.d_lr``, ``train.b1``, ``train.b2`` (both
  papers: 2e-4, beta1 = 0.5)."""
  t = config.train
  return (optax.adam(t.g_lr, b1=t.b1, b2=t.b2), optax.adam(t.d_lr, b1=t.b1, b2=t.b2))


def check_batch(batch: dict, step: int, *, batch_size: int, image_shape) -> None:
  """:func:`jaxgan.faults.check_batch` on every array of a translation batch."""
  for name, x in batch.items():
    try:
      faults.check_batch({'x': x}, data_shape=tuple(image_shape), batch_size=batch_size,
                         value_range=(-1.0, 1.0), step=step)
    except ValueError as e:
      raise ValueError(str(e).replace("batch['x']", f'batch[{name!r}]')) from None


def drive(config, workdir: str, *, state, train_step: Callable, strips: Callable,
          data_key: jax.Array, step_key: jax.Array, paired: bool, axis_name: str | None = None,
          should_stop: Callable[[int], bool] | None = None):
  """A translation system trained on its task by the one driver (:func:`jaxgan.train.drive`).

  The training split's task (:func:`load_task`) feeds ``train_step`` (:func:`source` with
  ``data_key``; every batch checked by :func:`check_batch` before anything compiles), and
  ``samples/step_<N>.png`` shows ``strips(state, x, y)`` (a list of ``(N, H, W, C)`` arrays, one
  column of :func:`jaxgan.visualize.save_strips` each) for the first ``train.num_samples`` test
  pairs ``(x, y)`` in [-1, 1]: for pix2pix input and truth, for CycleGAN ``a`` and ``T(a)``.

  Returns:
    The final state, as :func:`jaxgan.train.drive`.
  """
  test = {k: np.asarray(data_lib.to_unit_range(v[:config.train.num_samples]))
          for k, v in load_task(config, split='test').items()}

  def save_samples(state, path, step):
    del step
    visualize.save_strips(path, [np.asarray(a) for a in strips(state, test['x'], test['y'])])

  batch_size = config.train.batch_size
  return train.drive(
      config, workdir, state=state, train_step=train_step,
      source=source(load_task(config), data_key, batch_size, paired=paired), step_key=step_key,
      save_samples=save_samples, axis_name=axis_name, should_stop=should_stop,
      check_batch=functools.partial(check_batch, batch_size=batch_size,
                                    image_shape=data_lib.data_shape(config.data.name)))


def base_config(trainer: str):
  """The fields every translation config has (``configs/pix2pix_*.py``, ``configs/cyclegan_*.py``
  fill in the system's own ``model`` and ``loss``): data, task, and the driver's ``train``."""
  import ml_collections

  config = ml_collections.ConfigDict()
  config.trainer = trainer
  config.seed = 0
  config.data = ml_collections.ConfigDict(
      {'name': 'mnist', 'name_b': '', 'data_dir': None, 'download': False})
  config.data.data_dir = ml_collections.config_dict.placeholder(str)
  config.task = ml_collections.ConfigDict(
      {'transform': 'dilate', 'direction': 'to_transformed', 'split': 30_000})
  config.model = ml_collections.ConfigDict()
  config.loss = ml_collections.ConfigDict()
  config.train = ml_collections.ConfigDict({
      'num_steps': 5000, 'batch_size': 64, 'g_lr': 2e-4, 'd_lr': 2e-4, 'b1': 0.5, 'b2': 0.999,
      'log_every': 100, 'sample_every': 1000, 'checkpoint_every': 1000, 'keep_checkpoints': 2,
      'num_samples': 8, 'parallel': 'none', 'on_nonfinite': 'stop', 'chunk_mode': 'auto'})
  return config
