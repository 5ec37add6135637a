"""Exact tests of the PixelCNN (arXiv:1601.06759): masks, causality, likelihood, sampling.

The reference distribution is a binary Markov chain along the raster order of a 4x4 image:
``x_1 ~ Bernoulli(pi)`` with ``pi`` the stationary probability, then
``p(x_i = 1 | x_{i-1}) = (A, B)[x_{i-1}]``. Its entropy has the closed form
``H = h(pi) + (D - 1) (pi h(B) + (1 - pi) h(A))`` (``h`` the binary entropy), and a PixelCNN
whose 7x7 type-A layer sees the previous raster pixel (the left neighbour, or for a row's first
pixel the last pixel of the row above, offset (-1, +3) on a 4-wide image) can realize it exactly.
"""

from __future__ import annotations

import doctest
import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import density_train, pixelcnn

# The chain: p(1 | 0) = A, p(1 | 1) = B, stationary p(1) = A / (1 - B + A) = 1/3.
A, B = 0.1, 0.8
PI = A / (1.0 - B + A)
SIDE = 4
D = SIDE * SIDE


def binary_entropy(p: float) -> float:
  return -p * math.log(p) - (1 - p) * math.log(1 - p)


# h(1/3) + 15 (1/3 h(0.8) + 2/3 h(0.1)) = 0.636514 + 15 * 0.383523 = 6.389356 nats.
CHAIN_ENTROPY = binary_entropy(PI) + (D - 1) * (PI * binary_entropy(B)
                                                + (1 - PI) * binary_entropy(A))


def logit(p: float) -> float:
  return math.log(p / (1 - p))


def chain_nll(images: np.ndarray) -> np.ndarray:
  """Exact -log p(x) of (N, 4, 4, 1) binary images under the chain, along the raster order."""
  x = images.reshape(len(images), -1)
  p_first = np.where(x[:, 0] == 1, PI, 1 - PI)
  p_one = np.where(x[:, :-1] == 1, B, A)
  p_next = np.where(x[:, 1:] == 1, p_one, 1 - p_one)
  return -np.log(p_first) - np.sum(np.log(p_next), axis=1)


def sample_chain(rng: np.random.Generator, n: int) -> np.ndarray:
  x = np.zeros((n, D), np.float32)
  x[:, 0] = rng.random(n) < PI
  for i in range(1, D):
    x[:, i] = rng.random(n) < np.where(x[:, i - 1] == 1, B, A)
  return x.reshape(n, SIDE, SIDE, 1)


# The NLL compiled once per model (eager flax runs op by op, several times slower here).
jit_nll = jax.jit(pixelcnn.nll, static_argnums=0)


def all_binary_images(side: int) -> jax.Array:
  values = np.array(list(itertools.product([0.0, 1.0], repeat=side * side)), np.float32)
  return jnp.asarray(values.reshape(-1, side, side, 1))


def random_params(model, shape, seed: int):
  """``model``'s parameters for inputs ``(1, *shape)``, drawn with numpy (a compiled or eager flax
  init costs seconds here): kernels N(0, 1 / fan_in), masked taps included, and biases
  N(0, 0.3^2), so no weight is special."""
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *shape)))['params']
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    if path[-1].key == 'kernel':
      value = rng.normal(size=leaf.shape) / math.sqrt(math.prod(leaf.shape[:-1]))
    else:
      value = 0.3 * rng.normal(size=leaf.shape)
    return value.astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


# The chain's conditional, set by hand in PixelCNN(features=2, num_blocks=0, hidden_features=2):
# input_conv's two channels read s = x'_left + x'_(-1,+3) with x' = 2x - 1 (one of the two taps
# falls in the padding, so s = 2 x_prev - 1, or 0 for the first pixel) with signs +1 and -1;
# after ReLU they are (relu(s), relu(-s)), passed through hidden_conv unchanged; output_conv adds
# logit(B) - logit(pi) for x_prev = 1 and logit(A) - logit(pi) for x_prev = 0 to logit(pi).
CHAIN_MODEL = pixelcnn.PixelCNN(features=2, num_blocks=0, hidden_features=2, first_kernel_size=7)


def chain_params():
  kernel = np.zeros((7, 7, 1, 2), np.float32)
  for tap in ((3, 2), (2, 6)):  # offsets (0, -1) and (-1, +3) from the centre (3, 3)
    kernel[tap + (0, 0)] = 1.0
    kernel[tap + (0, 1)] = -1.0
  l0, la, lb = logit(PI), logit(A), logit(B)
  return {
      'input_conv': {'kernel': jnp.asarray(kernel), 'bias': jnp.zeros(2)},
      'hidden_conv': {'kernel': jnp.eye(2).reshape(1, 1, 2, 2), 'bias': jnp.zeros(2)},
      'output_conv': {'kernel': jnp.array([lb - l0, la - l0]).reshape(1, 1, 2, 1),
                      'bias': jnp.array([l0])},
  }


# ------------------------------------------------------------------------------- masks


@pytest.mark.parametrize('kernel_size, mask_type, expected', [
    (3, 'A', [[1, 1, 1],
              [1, 0, 0],
              [0, 0, 0]]),
    (3, 'B', [[1, 1, 1],
              [1, 1, 0],
              [0, 0, 0]]),
    (5, 'A', [[1, 1, 1, 1, 1],
              [1, 1, 1, 1, 1],
              [1, 1, 0, 0, 0],
              [0, 0, 0, 0, 0],
              [0, 0, 0, 0, 0]]),
    (5, 'B', [[1, 1, 1, 1, 1],
              [1, 1, 1, 1, 1],
              [1, 1, 1, 0, 0],
              [0, 0, 0, 0, 0],
              [0, 0, 0, 0, 0]]),
    (1, 'A', [[0]]),
    (1, 'B', [[1]]),
])
def test_masks_match_hand_written(kernel_size, mask_type, expected):
  mask = pixelcnn.causal_mask((kernel_size, kernel_size), mask_type=mask_type)
  np.testing.assert_array_equal(mask, np.array(expected, np.float32))


def test_mask_rejects_even_kernels_and_unknown_types():
  with pytest.raises(ValueError, match='odd kernel'):
    pixelcnn.causal_mask((4, 3), mask_type='A')
  with pytest.raises(ValueError, match='mask_type'):
    pixelcnn.causal_mask((3, 3), mask_type='C')


@pytest.mark.parametrize('mask_type', ['A', 'B'])
def test_masked_conv_jacobian_is_the_mask(mask_type):
  # With an all-ones kernel, output (r, c) is the sum of the inputs at the unmasked taps, so
  # d out(r, c) / d in(r + dr, c + dc) = mask[1 + dr, 1 + dc] (0 outside the image): the
  # Jacobian is the mask, placed by hand, which checks both the mask and the kernel's orientation.
  layer = pixelcnn.MaskedConv(1, (3, 3), mask_type, use_bias=False)
  params = {'kernel': jnp.ones((3, 3, 1, 1))}
  f = lambda x: layer.apply({'params': params}, x.reshape(1, SIDE, SIDE, 1)).reshape(-1)
  jacobian = jax.jacrev(f)(jnp.zeros(D))
  mask = pixelcnn.causal_mask((3, 3), mask_type=mask_type)
  expected = np.zeros((D, D), np.float32)
  for r, c, dr, dc in itertools.product(range(SIDE), range(SIDE), (-1, 0, 1), (-1, 0, 1)):
    if 0 <= r + dr < SIDE and 0 <= c + dc < SIDE:
      expected[r * SIDE + c, (r + dr) * SIDE + c + dc] = mask[1 + dr, 1 + dc]
  np.testing.assert_array_equal(jacobian, expected)
  assert np.trace(expected) == (mask_type == 'B') * D  # type B sees its centre, type A does not


# --------------------------------------------------------------------------- causality


@pytest.mark.parametrize('num_levels, shape', [(2, (5, 5, 1)), (4, (4, 3, 2))])
def test_type_a_stack_is_causal(num_levels, shape):
  # The output at raster position i (every channel, every level's logit) has exactly zero
  # gradient with respect to every input at raster positions j >= i, for random weights and
  # random inputs; it does depend on the left neighbour and the pixel above (for at least one of
  # the 3 inputs: a ReLU may be off at one).
  h, w, c = shape
  n = 3
  model = pixelcnn.PixelCNN(features=8, num_blocks=2, hidden_features=8, first_kernel_size=5,
                            num_levels=num_levels)
  params = random_params(model, shape, seed=0)
  x = np.random.default_rng(1).uniform(0, num_levels - 1, (n, h * w * c)).astype(np.float32)
  # Images are independent, so the Jacobian of the batch sum holds each image's own Jacobian.
  f = lambda x: model.apply({'params': params}, x.reshape(n, *shape)).sum(0).reshape(h * w, -1)
  jacobian = jax.jit(jax.jacrev(f))(x).reshape(h * w, -1, n, h * w, c)
  per_pixel = np.abs(np.asarray(jacobian)).max(axis=(1, 2, 4))  # (out pixel i, in pixel j)
  i, j = np.indices(per_pixel.shape)
  assert np.all(per_pixel[j >= i] == 0.0)
  rows, cols = np.divmod(np.arange(h * w), w)
  pixels = np.arange(h * w)
  assert np.all(per_pixel[pixels[cols > 0], pixels[cols > 0] - 1] > 0)
  assert np.all(per_pixel[pixels[rows > 0], pixels[rows > 0] - w] > 0)


@pytest.mark.parametrize('model, shape', [
    (pixelcnn.PixelCNN(features=6, num_blocks=1, hidden_features=6), (3, 3, 1)),
    (pixelcnn.PixelCNN(features=6, num_blocks=1, hidden_features=6, num_levels=3), (2, 2, 1)),
])
def test_probabilities_of_all_images_sum_to_one(model, shape):
  # sum_x exp(-nll(x)) over all 2^9 binary 3x3 images (or 3^4 ternary 2x2 ones) is 1 for any
  # weights: the product of the conditionals is a normalized distribution only if the model is
  # causal and the NLL is the exact one.
  params = random_params(model, shape, seed=2)
  values = np.arange(model.num_levels, dtype=np.float32)
  images = np.array(list(itertools.product(values, repeat=math.prod(shape))), np.float32)
  nll = jit_nll(model, params, jnp.asarray(images.reshape(-1, *shape)))
  chex.assert_shape(nll, (model.num_levels ** math.prod(shape),))
  chex.assert_trees_all_close(jnp.sum(jnp.exp(-nll)), 1.0, atol=1e-5)


# -------------------------------------------------------------------------- likelihood


def test_bernoulli_nll_hand_values():
  # Image 1, logits (0, ln 3; -ln 3, 2), pixels (1, 0; 0, 1):
  #   -log sigma(0) - log(1 - 3/4) - log(1 - 1/4) - log sigma(2)
  #   = ln 2 + ln 4 + ln(4/3) + ln(1 + e^-2) = 2.494052...
  # Image 2, the same logits, pixels (0, 1; 1, 0): ln 2 + ln(4/3) + ln 4 + ln(1 + e^2) = 4.494052
  logits = jnp.array([[0.0, math.log(3.0)], [-math.log(3.0), 2.0]]).reshape(1, 2, 2, 1)
  logits = jnp.concatenate([logits, logits])
  images = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]).reshape(2, 2, 2, 1)
  expected = [math.log(2) + math.log(4) + math.log(4 / 3) + math.log(1 + math.exp(-2)),
              math.log(2) + math.log(4 / 3) + math.log(4) + math.log(1 + math.exp(2))]
  chex.assert_trees_all_close(pixelcnn.bernoulli_nll(logits, images), jnp.array(expected),
                              rtol=1e-6)
  chex.assert_trees_all_close(pixelcnn.bits_per_dim(jnp.array(expected), num_dims=4),
                              jnp.array(expected) / (4 * math.log(2)), rtol=1e-6)


def test_categorical_nll_hand_value():
  # Pixel 1: uniform over 3 levels, x = 2: ln 3. Pixel 2: softmax(ln 1, ln 2, ln 5) = (1, 2, 5)/8,
  # x = 1: -ln(2/8) = ln 4. Total ln 12.
  logits = jnp.log(jnp.array([[1.0, 1.0, 1.0], [1.0, 2.0, 5.0]])).reshape(1, 1, 2, 1, 3)
  images = jnp.array([2.0, 1.0]).reshape(1, 1, 2, 1)
  chex.assert_trees_all_close(pixelcnn.categorical_nll(logits, images), jnp.array([math.log(12)]),
                              rtol=1e-6)


def test_non_binary_data_is_an_error():
  model = pixelcnn.PixelCNN(features=4, num_blocks=0, hidden_features=4)
  params = random_params(model, (2, 2, 1), seed=0)
  with pytest.raises(ValueError, match=r'binary images with values in \{0, 1\}'):
    pixelcnn.nll(model, params, jnp.full((1, 2, 2, 1), 0.5))
  with pytest.raises(ValueError, match=r'integer levels in \{0, \.\.\., 2\}'):
    pixelcnn.check_images(jnp.full((1, 2, 2, 1), 3.0), num_levels=3)
  with pytest.raises(ValueError, match='dynamic_binarization'):
    pixelcnn.objective(pixelcnn.PixelCNN(num_levels=3), dynamic_binarization=True)


def test_hand_set_chain_model_nll_is_the_chain_entropy():
  # All 2^16 binary 4x4 images: the hand-set model's NLL equals the chain's exact -log p(x) for
  # every image, the model's probabilities sum to 1, and the chain-weighted mean NLL is the
  # closed-form entropy 6.389356 nats.
  images = all_binary_images(SIDE)
  nll = np.asarray(jit_nll(CHAIN_MODEL, chain_params(), images), np.float64)
  exact = chain_nll(np.asarray(images))
  np.testing.assert_allclose(nll, exact, atol=2e-5)
  np.testing.assert_allclose(np.sum(np.exp(-nll)), 1.0, atol=1e-4)
  np.testing.assert_allclose(np.sum(np.exp(-exact) * nll), CHAIN_ENTROPY, atol=1e-4)
  assert abs(CHAIN_ENTROPY - 6.389356) < 1e-6


# ---------------------------------------------------------------------------- sampling


def test_ancestral_samples_follow_the_chain():
  # 2,000 samples of the hand-set model: p(x_1 = 1) = 1/3 and the transition frequencies along
  # the raster order (row boundaries included) are 0.1 and 0.8, each within 4 binomial standard
  # errors (about 20,000 transitions from 0 and 10,000 from 1).
  n = 2000
  samples = pixelcnn.sample(CHAIN_MODEL, chain_params(), jax.random.key(0), num_samples=n,
                            image_shape=(SIDE, SIDE, 1))
  chex.assert_shape(samples, (n, SIDE, SIDE, 1))
  x = np.asarray(samples).reshape(n, D)
  assert set(np.unique(x)) <= {0.0, 1.0}
  assert abs(x[:, 0].mean() - PI) < 4 * math.sqrt(PI * (1 - PI) / n)
  prev, cur = x[:, :-1].ravel(), x[:, 1:].ravel()
  for state, p in ((0.0, A), (1.0, B)):
    following = cur[prev == state]
    assert abs(following.mean() - p) < 4 * math.sqrt(p * (1 - p) / len(following))


# ---------------------------------------------------------------------------- training


def test_train_step_is_one_exact_sgd_step():
  # The step's nll metric is the mean NLL at the old parameters, and with SGD the new parameters
  # are params - lr * grad of that mean; dynamic binarization of data already in {0, 1} changes
  # nothing.
  model = pixelcnn.PixelCNN(features=4, num_blocks=1, hidden_features=4)
  optimizer = optax.sgd(0.1)
  params = random_params(model, (SIDE, SIDE, 1), seed=0)
  state = density_train.init_state(params, optimizer=optimizer)
  images = jnp.asarray(sample_chain(np.random.default_rng(0), 8))
  loss_fn = lambda p: jnp.mean(pixelcnn.nll(model, p, images))
  loss, grads = jax.jit(jax.value_and_grad(loss_fn))(state.g_params)
  for dynamic in (False, True):
    objective = pixelcnn.objective(model, dynamic_binarization=dynamic)
    step = jax.jit(density_train.make_train_step(objective, optimizer=optimizer))
    new_state, metrics = step(state, {'x': images}, jax.random.key(1))
    assert int(new_state.step) == 1
    chex.assert_trees_all_close(metrics['nll'], loss, rtol=1e-5)
    chex.assert_trees_all_close(metrics['g_loss'], loss, rtol=1e-5)
    chex.assert_trees_all_close(metrics['bits_per_dim'], loss / (D * math.log(2)), rtol=1e-5)
    chex.assert_trees_all_close(
        new_state.g_params, jax.tree.map(lambda p, g: p - 0.1 * g, state.g_params, grads),
        rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_learns_the_markov_chain_entropy():
  # Trained on fresh chain samples, a small PixelCNN's test NLL comes within 0.05 nats per image
  # of the chain's own NLL of the same 20,000 test images (their difference estimates the KL,
  # free of the test set's sampling noise), and the chain's test NLL is within 4 standard errors
  # of the closed-form entropy 6.3894.
  steps, batch_size = 800, 128
  rng = np.random.default_rng(0)
  model = pixelcnn.PixelCNN(features=16, num_blocks=1, hidden_features=16)
  optimizer = optax.adam(1e-2)
  params = pixelcnn.init_params(jax.random.key(0), model, image_shape=(SIDE, SIDE, 1))
  state = density_train.init_state(params, optimizer=optimizer)
  step = jax.jit(density_train.make_train_step(pixelcnn.objective(model), optimizer=optimizer))
  data = jnp.asarray(sample_chain(rng, steps * batch_size)).reshape(
      steps, batch_size, SIDE, SIDE, 1)

  def body(state, images):
    return step(state, {'x': images}, jax.random.key(0))

  state, _ = jax.lax.scan(body, state, data)
  test = sample_chain(rng, 20000)
  exact = chain_nll(test)
  model_nll = np.asarray(jit_nll(model, state.g_params, jnp.asarray(test)), np.float64)
  assert abs(exact.mean() - CHAIN_ENTROPY) < 4 * exact.std() / math.sqrt(len(exact))
  gap = model_nll.mean() - exact.mean()
  assert -0.01 < gap < 0.05, gap


def test_docstring_examples():
  runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
  for test in doctest.DocTestFinder().find(pixelcnn.bernoulli_nll, globs=vars(pixelcnn).copy()):
    runner.run(test)
  assert runner.summarize(verbose=False).failed == 0
  assert runner.summarize(verbose=False).attempted > 0
