"""One contract for every loss family (TF-GAN style).

Each family gives fixed logits and its expected D and G losses, computed by hand in the comments;
every test in the contract then runs on every family: golden values (eager and jitted), gradients
against finite differences, patch-shaped logits, unequal real/fake batches, and extreme logits.
Family-specific behaviour (label smoothing, LSGAN labels, the registry) follows the contract.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxgan import losses

LN4 = math.log(4.0)  # sigmoid(ln 4) = 0.8 and sigmoid(-ln 4) = 0.2: the seed's worked example


@dataclasses.dataclass(frozen=True)
class Family:
  name: str
  d_loss_fn: Callable[..., jax.Array]
  g_loss_fn: Callable[..., jax.Array]
  real_logits: tuple[float, ...]
  fake_logits: tuple[float, ...]
  expected_d_loss: float
  expected_g_loss: float


FAMILIES = [
    # Example 1 is the seed's: D(x) = 0.8, D(G(z)) = 0.2. Example 2 has D = 0.5 on both.
    # D: real mean (-ln 0.8 + ln 2)/2, fake mean (-ln(1 - 0.2) + ln 2)/2
    #    -> -ln 0.8 + ln 2 = ln 2.5 = 0.9162907
    # G (saturating): mean(ln(1 - 0.2), ln(1 - 0.5)) = ln(0.4)/2 = -0.4581454
    Family(
        name='minimax',
        d_loss_fn=losses.minimax_discriminator_loss,
        g_loss_fn=losses.minimax_generator_loss,
        real_logits=(LN4, 0.0),
        fake_logits=(-LN4, 0.0),
        expected_d_loss=0.9162907318741551,
        expected_g_loss=-0.45814536593707755,
    ),
    # Same D; G (non-saturating): mean(-ln 0.2, -ln 0.5) = ln(10)/2 = 1.1512925
    Family(
        name='non_saturating',
        d_loss_fn=losses.minimax_discriminator_loss,
        g_loss_fn=losses.non_saturating_generator_loss,
        real_logits=(LN4, 0.0),
        fake_logits=(-LN4, 0.0),
        expected_d_loss=0.9162907318741551,
        expected_g_loss=1.151292546497023,
    ),
    # D: mean(-2, 0.5) - mean(1, 3) = -0.75 - 2 = -2.75;  G: -mean(-2, 0.5) = 0.75
    Family(
        name='wasserstein',
        d_loss_fn=losses.wasserstein_discriminator_loss,
        g_loss_fn=losses.wasserstein_generator_loss,
        real_logits=(1.0, 3.0),
        fake_logits=(-2.0, 0.5),
        expected_d_loss=-2.75,
        expected_g_loss=0.75,
    ),
    # D: 1/2 mean((0.5-1)^2, (2-1)^2) + 1/2 mean(0^2, (-1)^2) = 1/2 * 0.625 + 1/2 * 0.5 = 0.5625
    # G: 1/2 mean((0-1)^2, (-1-1)^2) = 1/2 * 2.5 = 1.25
    Family(
        name='least_squares',
        d_loss_fn=losses.least_squares_discriminator_loss,
        g_loss_fn=losses.least_squares_generator_loss,
        real_logits=(0.5, 2.0),
        fake_logits=(0.0, -1.0),
        expected_d_loss=0.5625,
        expected_g_loss=1.25,
    ),
    # D: mean(max(0, 1-0.5), max(0, 1-2)) + mean(max(0, 1-2), max(0, 1+0.5))
    #    = mean(0.5, 0) + mean(0, 1.5) = 0.25 + 0.75 = 1.0
    # G: -mean(-2, 0.5) = 0.75.  (All logits are away from the hinge kinks at +-1.)
    Family(
        name='hinge',
        d_loss_fn=losses.hinge_discriminator_loss,
        g_loss_fn=losses.hinge_generator_loss,
        real_logits=(0.5, 2.0),
        fake_logits=(-2.0, 0.5),
        expected_d_loss=1.0,
        expected_g_loss=0.75,
    ),
]


@pytest.fixture(params=FAMILIES, ids=lambda family: family.name)
def family(request) -> Family:
  return request.param


@pytest.fixture
def x64():
  """Float64 for finite differences, scoped to one test so it never leaks into other files."""
  with jax.enable_x64(True):
    yield


def golden_logits(family: Family, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
  return jnp.asarray(family.real_logits, dtype), jnp.asarray(family.fake_logits, dtype)


# ----------------------------------------------------------------------------- the contract


def test_golden_values(family):
  real, fake = golden_logits(family)
  d_loss = family.d_loss_fn(real, fake)
  g_loss = family.g_loss_fn(fake)
  chex.assert_shape([d_loss, g_loss], ())
  chex.assert_trees_all_close(d_loss, family.expected_d_loss, rtol=1e-6, atol=1e-6)
  chex.assert_trees_all_close(g_loss, family.expected_g_loss, rtol=1e-6, atol=1e-6)


def test_jit_golden_values(family):
  # The compiled function against the hand-computed numbers, not against its eager self.
  real, fake = golden_logits(family)
  d_loss = jax.jit(family.d_loss_fn)(real, fake)
  g_loss = jax.jit(family.g_loss_fn)(fake)
  chex.assert_trees_all_close(d_loss, family.expected_d_loss, rtol=1e-6, atol=1e-6)
  chex.assert_trees_all_close(g_loss, family.expected_g_loss, rtol=1e-6, atol=1e-6)


def test_gradients_match_finite_differences(family, x64):
  real, fake = golden_logits(family, jnp.float64)
  check_grads(family.d_loss_fn, (real, fake), order=2, modes=['rev'])
  check_grads(family.g_loss_fn, (fake,), order=2, modes=['rev'])


def test_patch_shaped_logits_average_over_all_elements(family):
  # Every 4x4 patch of example i holds the golden logit i, so the mean over all 2*4*4 elements is
  # the golden value (a sum would be 16 times larger).
  real, fake = golden_logits(family)
  real_patches = jnp.broadcast_to(real[:, None, None], (2, 4, 4))
  fake_patches = jnp.broadcast_to(fake[:, None, None], (2, 4, 4))
  d_loss = family.d_loss_fn(real_patches, fake_patches)
  g_loss = family.g_loss_fn(fake_patches)
  chex.assert_shape([d_loss, g_loss], ())
  chex.assert_trees_all_close(d_loss, family.expected_d_loss, rtol=1e-6, atol=1e-6)
  chex.assert_trees_all_close(g_loss, family.expected_g_loss, rtol=1e-6, atol=1e-6)
  # The result does not depend on how the elements are laid out.
  real_key, fake_key = jax.random.split(jax.random.key(0))
  real_patches = jax.random.normal(real_key, (3, 4, 4))
  fake_patches = jax.random.normal(fake_key, (5, 4, 4))
  chex.assert_trees_all_close(
      family.d_loss_fn(real_patches, fake_patches),
      family.d_loss_fn(real_patches.reshape(-1), fake_patches.reshape(-1)),
      rtol=1e-6,
  )
  chex.assert_trees_all_close(
      family.g_loss_fn(fake_patches), family.g_loss_fn(fake_patches.reshape(-1)), rtol=1e-6
  )


def test_real_and_fake_batches_may_differ_in_size(family):
  # Tiling real 3x and fake 2x (6 vs 4 examples) leaves each mean, hence the loss, unchanged; a
  # mean over the concatenated batch would not.
  real, fake = golden_logits(family)
  d_loss = family.d_loss_fn(jnp.tile(real, 3), jnp.tile(fake, 2))
  chex.assert_trees_all_close(d_loss, family.expected_d_loss, rtol=1e-6, atol=1e-6)
  # The D loss is a real term plus a fake term: L(r1, f1) + L(r2, f2) = L(r1, f2) + L(r2, f1).
  keys = jax.random.split(jax.random.key(1), 4)
  r1, r2, f1, f2 = (jax.random.normal(k, (n,)) for k, n in zip(keys, (3, 5, 2, 7), strict=True))
  chex.assert_trees_all_close(
      family.d_loss_fn(r1, f1) + family.d_loss_fn(r2, f2),
      family.d_loss_fn(r1, f2) + family.d_loss_fn(r2, f1),
      rtol=1e-5,
  )


@pytest.mark.parametrize('logit', [-100.0, 100.0])
def test_finite_at_extreme_logits(family, logit):
  logits = jnp.full((4,), logit)
  d_value, d_grads = jax.value_and_grad(family.d_loss_fn, argnums=(0, 1))(logits, logits)
  g_value, g_grad = jax.value_and_grad(family.g_loss_fn)(logits)
  chex.assert_tree_all_finite((d_value, d_grads, g_value, g_grad))


def test_registry_lists_this_family(family):
  assert losses.get_loss_pair(family.name) == (family.d_loss_fn, family.g_loss_fn)


# ------------------------------------------------------------------------- family-specific


def test_every_registered_family_is_under_contract():
  # Written out, in the registry's order (the order of get_loss_pair's error message).
  assert list(losses.LOSS_PAIRS) == [
      'minimax', 'non_saturating', 'wasserstein', 'least_squares', 'hinge']
  assert [family.name for family in FAMILIES] == list(losses.LOSS_PAIRS)


def test_seed_worked_example():
  # D(x) = 0.8, D(G(z)) = 0.2: L_D = -ln 0.8 - ln(1 - 0.2) = 2 * 0.2231436 = 0.4462871.
  d_loss = losses.minimax_discriminator_loss(jnp.array([LN4]), jnp.array([-LN4]))
  chex.assert_trees_all_close(d_loss, 0.4462871026284195, rtol=1e-6)


def test_minimax_stable_forms_at_extreme_logits():
  # Confident and right: BCE -> 0. Confident and wrong: softplus(100) = 100 per term.
  big = jnp.array([100.0])
  chex.assert_trees_all_close(losses.minimax_discriminator_loss(big, -big), 0.0, atol=1e-6)
  chex.assert_trees_all_close(losses.minimax_discriminator_loss(-big, big), 200.0, rtol=1e-6)
  # log(1 - sigmoid(100)) = -softplus(100) = -100;  -log sigmoid(-100) = softplus(100) = 100.
  chex.assert_trees_all_close(losses.minimax_generator_loss(big), -100.0, rtol=1e-6)
  chex.assert_trees_all_close(losses.non_saturating_generator_loss(-big), 100.0, rtol=1e-6)


def test_label_smoothing_lowers_only_the_real_target():
  # Seed example with label_smoothing = 0.1: the real target is 0.9, the fake target stays 0.
  # real: -(0.9 ln 0.8 + 0.1 ln 0.2) = 0.9 * 0.2231436 + 0.1 * 1.6094379 = 0.3617730
  # fake: -ln(1 - 0.2) = 0.2231436;  total 0.5849166
  d_loss = losses.minimax_discriminator_loss(
      jnp.array([LN4]), jnp.array([-LN4]), label_smoothing=0.1
  )
  chex.assert_trees_all_close(d_loss, 0.5849165742, rtol=1e-6)


@pytest.mark.parametrize('label_smoothing', [-0.1, 1.0, 1.5])
def test_label_smoothing_out_of_range(label_smoothing):
  with pytest.raises(ValueError, match=rf'label_smoothing={label_smoothing}'):
    losses.minimax_discriminator_loss(
        jnp.zeros(2), jnp.zeros(2), label_smoothing=label_smoothing
    )


def test_least_squares_custom_labels():
  # real_label b = 0.5, fake_label a = -1 on the golden LSGAN logits:
  # D: 1/2 mean((0.5-0.5)^2, (2-0.5)^2) + 1/2 mean((0+1)^2, (-1+1)^2) = 0.5625 + 0.25 = 0.8125
  # G with real_label c = 0: 1/2 mean(0^2, (-1)^2) = 0.25
  real, fake = jnp.array([0.5, 2.0]), jnp.array([0.0, -1.0])
  d_loss = losses.least_squares_discriminator_loss(real, fake, real_label=0.5, fake_label=-1.0)
  g_loss = losses.least_squares_generator_loss(fake, real_label=0.0)
  chex.assert_trees_all_close(d_loss, 0.8125, rtol=1e-6)
  chex.assert_trees_all_close(g_loss, 0.25, rtol=1e-6)


def test_unknown_loss_name():
  with pytest.raises(ValueError) as error:
    losses.get_loss_pair('wgan')
  assert str(error.value) == (
      "unknown loss 'wgan'; expected one of 'minimax', 'non_saturating', 'wasserstein', "
      "'least_squares', 'hinge'")


def test_hyperparameters_are_keyword_only():
  with pytest.raises(TypeError):
    losses.minimax_discriminator_loss(jnp.zeros(2), jnp.zeros(2), 0.1)
  with pytest.raises(TypeError):
    losses.least_squares_generator_loss(jnp.zeros(2), 1.0)


def test_float64_inputs_stay_float64(x64):
  loss = losses.non_saturating_generator_loss(np.zeros(3, np.float64))
  assert loss.dtype == jnp.float64
