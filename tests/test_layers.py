"""The fast transposed convolutions against `nn.ConvTranspose`, and DCGAN before and after.

`AdjointConvTranspose` and `PhaseConvTranspose` must equal `nn.ConvTranspose`: the same
parameters from the same key and, with one shared kernel, the same outputs and the same gradients
with respect to the input and the parameters. In float64 "the same" is to 1e-12: only summation
order differs. Then the DCGAN models built on them against the same models built on the flax
layers (the code before the switch), down to whole train steps.
"""

from __future__ import annotations

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from jaxgan import gan, layers, models, train


@pytest.fixture
def x64():
  """Float64 for tight equalities, scoped to one test so it never leaks into other files."""
  with jax.enable_x64(True):
    yield


def _f64(tree):
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)


def _normal(seed: int, shape) -> np.ndarray:
  """Test data from numpy: no XLA compilation for random numbers."""
  return np.random.default_rng(seed).standard_normal(shape)


def _perturbed(params, seed: int):
  """Nonzero biases and kernels of order 1, so every term of the gradient matters."""
  leaves, treedef = jax.tree.flatten(params)
  return treedef.unflatten([np.asarray(a) + _normal(seed + i, a.shape)
                            for i, a in enumerate(leaves)])


def _outputs_and_vjps(module: nn.Module, variables, x, dy):
  """``(module.apply(variables, x), vjp(dy) w.r.t. (variables, x))``."""
  y, vjp = jax.vjp(module.apply, variables, x)
  return y, vjp(dy)


def _assert_same_layers(reference: nn.Module, fast: list[nn.Module], input_shape, atol=1e-12):
  """Same init from one key; same outputs and input/parameter VJPs with one shared kernel."""
  x = _normal(0, input_shape)
  modules = [reference, *fast]
  inits = jax.jit(lambda k: [m.init(k, x) for m in modules])(jax.random.PRNGKey(0))
  for init in inits[1:]:
    chex.assert_trees_all_equal(init, inits[0])  # Same tree, same values.
  variables = _perturbed(_f64(inits[0]), 1)
  dy = _normal(2, jax.eval_shape(reference.apply, variables, x).shape)
  results = jax.jit(lambda v, x, dy: [_outputs_and_vjps(m, v, x, dy) for m in modules])(
      variables, x, dy)
  for y, grads in results[1:]:
    chex.assert_trees_all_close(y, results[0][0], atol=atol, rtol=0)
    chex.assert_trees_all_close(grads, results[0][1], atol=atol, rtol=0)


# (kernel, stride, H, W, C_in, C_out): DCGAN's 4/2 on odd and on non-square even inputs, and other
# kernels the stride divides.
SHAPES = [(4, 2, 7, 7, 3, 5), (4, 2, 6, 9, 2, 3), (6, 3, 5, 4, 2, 3), (3, 1, 4, 5, 2, 3)]


@pytest.mark.parametrize('kernel,stride,height,width,c_in,c_out', SHAPES)
def test_fast_conv_transposes_equal_flax_conv_transpose(x64, kernel, stride, height, width,
                                                        c_in, c_out):
  kwargs = {'kernel_size': (kernel, kernel), 'strides': (stride, stride)}
  _assert_same_layers(nn.ConvTranspose(c_out, padding='SAME', **kwargs),
                      [layers.AdjointConvTranspose(c_out, **kwargs),
                       layers.PhaseConvTranspose(c_out, **kwargs)],
                      (2, height, width, c_in))


# Strides that do not divide the kernel, 'VALID' and explicit (even negative) padding: the
# adjoint form's kernel gradient crops or pads the output cotangent accordingly.
@pytest.mark.parametrize('kernel,stride,padding', [
    (3, 2, 'SAME'), (2, 3, 'SAME'), (4, 2, 'VALID'), (3, 2, 'VALID'), (2, 3, 'VALID'),
    (4, 2, ((1, 2), (0, 3))), (3, 2, ((-1, 1), (2, -1)))])
def test_adjoint_conv_transpose_equals_flax_for_any_stride_and_padding(x64, kernel, stride,
                                                                       padding):
  kwargs = {'kernel_size': (kernel, kernel), 'strides': (stride, stride), 'padding': padding}
  _assert_same_layers(nn.ConvTranspose(3, **kwargs), [layers.AdjointConvTranspose(3, **kwargs)],
                      (2, 5, 4, 2))


def test_phase_conv_transpose_of_one_pixel_is_the_reversed_kernel_centre():
  """By hand: 'SAME', k=4, s=2 gives y[o] = sum_j w[j] x[(o + j - 2) / 2]; with one input pixel
  only j = 2 - o contributes, so the 2x2 output is x * w[2 - o1, 2 - o2]."""
  w = jnp.arange(16.0).reshape(4, 4, 1, 1)
  expected = 3.0 * np.array([[w[2, 2, 0, 0], w[2, 1, 0, 0]], [w[1, 2, 0, 0], w[1, 1, 0, 0]]])
  for layer in (layers.PhaseConvTranspose(1, use_bias=False),
                layers.AdjointConvTranspose(1, use_bias=False)):
    y = layer.apply({'params': {'kernel': w}}, jnp.full((1, 1, 1, 1), 3.0))
    np.testing.assert_array_equal(np.asarray(y[0, :, :, 0]), expected)


def test_adjoint_kernel_gradient_of_one_pixel_by_hand():
  """d/dw of sum(c * y) for one input pixel x: only the taps w[2 - o] are used, so the kernel
  gradient is x * c[o] at [2 - o1, 2 - o2] and zero on the rim."""
  c = jnp.array([[1.0, 2.0], [3.0, 4.0]])
  loss = lambda w: jnp.sum(c * layers.conv_transpose(
      jnp.full((1, 1, 1, 1), 3.0), w, (2, 2), ((2, 2), (2, 2)))[0, :, :, 0])
  grad = jax.grad(loss)(jnp.zeros((4, 4, 1, 1)))[:, :, 0, 0]
  expected = np.zeros((4, 4))
  expected[1:3, 1:3] = 3.0 * np.asarray(c)[::-1, ::-1]
  np.testing.assert_array_equal(np.asarray(grad), expected)


@pytest.mark.parametrize('layer,modes', [
    (layers.AdjointConvTranspose(2), ['fwd', 'rev']),
    (layers.PhaseConvTranspose(2), ['fwd', 'rev'])])
def test_gradients_against_finite_differences_to_second_order(x64, layer, modes):
  """Both modes to second order: the custom JVP is itself differentiable (WGAN-GP, R1 and
  unrolled GANs differentiate through gradients)."""
  x = jnp.asarray(_normal(0, (1, 3, 2, 2)))
  params = _perturbed(_f64(jax.jit(layer.init)(jax.random.PRNGKey(1), x)), 2)
  check_grads(jax.jit(lambda p, x: jnp.sum(jnp.tanh(layer.apply(p, x)))), (params, x), order=2,
              modes=modes)


@pytest.mark.parametrize('make,kwargs,message', [
    (layers.PhaseConvTranspose, {'padding': 'VALID'}, "padding='SAME' only"),
    (layers.PhaseConvTranspose, {'kernel_size': (3, 3)}, 'must be a multiple'),
    (layers.AdjointConvTranspose, {'padding': 'CIRCULAR'}, "got 'CIRCULAR'"),
    (layers.AdjointConvTranspose, {'padding': ((1, 1),)}, r'got \(\(1, 1\),\)'),
    (layers.AdjointConvTranspose, {'strides': (2, 2, 2)}, 'is 2-D'),
    (layers.PhaseConvTranspose, {'strides': (0, 2)}, 'must be >= 1'),
])
def test_bad_arguments_raise(make, kwargs, message):
  with pytest.raises(ValueError, match=message):
    jax.eval_shape(make(4, **kwargs).init, jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 2)))


def test_bad_input_rank_raises():
  with pytest.raises(ValueError, match=r'\(B, H, W, C\)'):
    jax.eval_shape(layers.AdjointConvTranspose(4).init, jax.random.PRNGKey(0),
                   jnp.zeros((4, 4, 2)))


# --- DCGAN before and after: the models as they were, on the flax layers. ----------------------


class PlainDCGANGenerator(nn.Module):
  """`models.DCGANGenerator` on `nn.ConvTranspose` (the code before the switch)."""

  image_shape: tuple = (28, 28, 1)
  features: int = 64

  @nn.compact
  def __call__(self, z, train: bool = False):
    depth = models.dcgan_depth(self.image_shape)
    size = self.image_shape[0] // 2**depth
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
    channels = self.features * 2**(depth - 1)
    h = nn.Dense(size * size * channels, use_bias=False)(z)
    h = h.reshape((z.shape[0], size, size, channels))
    h = nn.relu(norm()(h))
    for stage in range(depth - 1):
      channels = self.features * 2**(depth - 2 - stage)
      h = nn.ConvTranspose(channels, (4, 4), strides=(2, 2), padding='SAME', use_bias=False)(h)
      h = nn.relu(norm()(h))
    h = nn.ConvTranspose(self.image_shape[-1], (4, 4), strides=(2, 2), padding='SAME')(h)
    return jnp.tanh(h)


class PlainDCGANDiscriminator(nn.Module):
  """`models.DCGANDiscriminator` on `nn.Conv` (the code before the switch)."""

  image_shape: tuple = (28, 28, 1)
  features: int = 64

  @nn.compact
  def __call__(self, x, train: bool = False):
    depth = models.dcgan_depth(self.image_shape)
    h = nn.leaky_relu(nn.Conv(self.features, (4, 4), strides=(2, 2), padding='SAME')(x), 0.2)
    for stage in range(1, depth):
      h = nn.Conv(self.features * 2**stage, (4, 4), strides=(2, 2), padding='SAME',
                  use_bias=False)(h)
      h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
      h = nn.leaky_relu(h, 0.2)
    h = h.reshape((h.shape[0], -1))
    return nn.Dense(1)(h)[:, 0]


def _apply(module, variables, inputs, *, training):
  """Output (and the new batch statistics when training)."""
  return module.apply(variables, inputs, train=training,
                      mutable=['batch_stats'] if training else False)


@pytest.mark.parametrize('image_shape', [
    (32, 32, 3), pytest.param((64, 64, 3), marks=pytest.mark.slow)])
def test_dcgan_models_equal_the_plain_ones(x64, image_shape):
  """Deeper DCGANs than MNIST's (4x4 seed, middle stages): same variables from one key
  (checkpoints stay loadable); same outputs, batch statistics and gradients in training mode.
  28x28 is covered, step by step, by the train-step test below."""
  features = 4
  z = _normal(0, (3, 10))
  x = np.tanh(_normal(1, (3, *image_shape)))
  for plain, fast, inputs in [
      (PlainDCGANGenerator(image_shape, features), models.DCGANGenerator(image_shape, features),
       z),
      (PlainDCGANDiscriminator(image_shape, features),
       models.DCGANDiscriminator(image_shape, features), x)]:
    inits = jax.jit(lambda k, p=plain, f=fast, i=inputs: (p.init(k, i), f.init(k, i)))(
        jax.random.PRNGKey(2))
    chex.assert_trees_all_equal(inits[1], inits[0])
    variables = _perturbed(_f64(inits[0]), 3)

    def outputs_and_vjps(module, variables, inputs):
      out, vjp = jax.vjp(functools.partial(_apply, module, training=True), variables, inputs)
      return out, vjp(jax.tree.map(jnp.ones_like, out))

    results = jax.jit(lambda v, i, p=plain, f=fast: [outputs_and_vjps(m, v, i) for m in (p, f)])(
        variables, inputs)
    chex.assert_trees_all_close(results[1], results[0], atol=1e-10, rtol=0)


def _run_steps(generator, discriminator, *, num_steps, batch_size, dtype):
  """``(final state, [initial state, metrics of step 1, ...])``."""
  optimizer = optax.adam(2e-4, b1=0.5)
  image_shape = generator.image_shape
  state = jax.jit(functools.partial(
      train.init_state, generator=generator, discriminator=discriminator, g_optimizer=optimizer,
      d_optimizer=optimizer, latent_dim=16, data_shape=image_shape))(jax.random.PRNGKey(0))
  state = jax.tree.map(lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a,
                       state)
  step = jax.jit(gan.make_train_step(generator=generator, discriminator=discriminator,
                                       g_optimizer=optimizer, d_optimizer=optimizer,
                                       latent_dim=16, latent_distribution='normal'))
  history = [state]
  for i in range(num_steps):
    x = np.tanh(_normal(100 + i, (batch_size, *image_shape))).astype(dtype)
    state, metrics = step(state, {'x': x}, jax.random.PRNGKey(7))
    history.append(metrics)
  return state, history


@pytest.mark.slow  # 30 s on 2 cores; test_dcgan_models_equal_the_plain_ones checks the gradients.
def test_dcgan_train_steps_equal_the_plain_ones(x64):
  """From the same initial state (the same variables from the same key), two alternating steps
  (Adam, batch norm, both players) give the same metrics and the same state."""
  shape, features = (28, 28, 1), 8
  plain = _run_steps(PlainDCGANGenerator(shape, features), PlainDCGANDiscriminator(shape, features),
                     num_steps=2, batch_size=8, dtype=jnp.float64)
  fast = _run_steps(models.DCGANGenerator(shape, features),
                    models.DCGANDiscriminator(shape, features),
                    num_steps=2, batch_size=8, dtype=jnp.float64)
  chex.assert_trees_all_equal(fast[1][0], plain[1][0])  # Initial states.
  chex.assert_trees_all_close(fast, plain, atol=1e-10, rtol=1e-10)  # Metrics, final states.
  # Things moved: the comparison is not between constants.
  assert abs(float(plain[1][2]['d_loss'] - plain[1][1]['d_loss'])) > 1e-4
  assert float(jnp.abs(plain[0].g_params['ConvTranspose_0']['kernel']
                       - plain[1][0].g_params['ConvTranspose_0']['kernel']).max()) > 1e-4


@pytest.mark.slow
def test_full_size_float32_dcgan_step_equals_the_plain_one():
  """The benchmarked configuration (features 64, batch 64, float32): two steps' metrics."""
  shape = (28, 28, 1)
  _, plain = _run_steps(PlainDCGANGenerator(shape), PlainDCGANDiscriminator(shape), num_steps=2,
                        batch_size=64, dtype=jnp.float32)
  _, fast = _run_steps(models.DCGANGenerator(shape), models.DCGANDiscriminator(shape),
                       num_steps=2, batch_size=64, dtype=jnp.float32)
  chex.assert_trees_all_close(fast[1:], plain[1:], rtol=1e-4, atol=1e-5)
