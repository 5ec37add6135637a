"""Exact tests of jaxgan.rbm: hand values, enumeration of tiny models, closed-form gradients.

Every RBM here is small enough to enumerate: its partition function, its visible distribution
``p(v)`` and its exact log-likelihood gradient are computed by brute force, and the samplers
and estimators (Gibbs chains, CD-k, PCD, AIS) are checked against them, with tolerances of
several Monte Carlo standard errors at fixed seeds.
"""

from __future__ import annotations

import functools
import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan import density_train, rbm


def random_params(seed: int, num_visible: int, num_hidden: int, *, scale: float = 1.0) -> dict:
  """``W ~ N(0, scale^2)``, biases ``~ N(0, 1/4)``, float32 (numpy draws: no compilation)."""
  rng = np.random.default_rng(seed)
  return {'W': jnp.asarray(scale * rng.normal(size=(num_visible, num_hidden)), jnp.float32),
          'b': jnp.asarray(0.5 * rng.normal(size=num_visible), jnp.float32),
          'c': jnp.asarray(0.5 * rng.normal(size=num_hidden), jnp.float32)}


def random_binary(seed: int, shape, p: float = 0.5) -> jax.Array:
  return jnp.asarray(np.random.default_rng(seed).random(shape) < p, jnp.float32)


def all_states(n: int) -> jax.Array:
  """The ``2^n`` binary vectors of length ``n``, ``(2^n, n)`` float32."""
  return jnp.asarray(list(itertools.product([0.0, 1.0], repeat=n)), jnp.float32)


@jax.jit
def exact_visible_distribution(params) -> jax.Array:
  """``p(v)`` over :func:`all_states` ``(V)``, by enumeration: ``softmax(-F(v))``."""
  return jax.nn.softmax(-rbm.free_energy(params, all_states(params['b'].shape[0])))


def empirical_distribution(v: jax.Array) -> jax.Array:
  """The frequencies of the states of ``v (N, V)``, in :func:`all_states` order."""
  num_visible = v.shape[1]
  index = (v.astype(jnp.int32) * 2**jnp.arange(num_visible - 1, -1, -1)).sum(-1)
  return jnp.bincount(index, length=2**num_visible) / v.shape[0]


def total_variation(p, q) -> float:
  return 0.5 * float(jnp.sum(jnp.abs(p - q)))


# ----------------------------------------------------------------------------- energies


def test_free_energy_hand_value():
  params = {'W': jnp.array([[1.0], [-2.0]]), 'b': jnp.array([0.5, -1.0]), 'c': jnp.array([0.25])}
  # v = (1, 1): -(0.5 - 1) - softplus(0.25 + 1 - 2) = 0.5 - ln(1 + e^-0.75) = 0.1131283
  # v = (0, 0): -softplus(0.25) = -ln(1 + e^0.25) = -0.8259394
  np.testing.assert_allclose(rbm.free_energy(params, jnp.array([[1.0, 1.0], [0.0, 0.0]])),
                             [0.5 - math.log1p(math.exp(-0.75)), -math.log1p(math.exp(0.25))],
                             rtol=1e-6)
  # E((1, 1), h = 1) = -(1 - 2) - (0.5 - 1) - 0.25 = 1.25
  np.testing.assert_allclose(rbm.energy(params, jnp.array([1.0, 1.0]), jnp.array([1.0])), 1.25)


def test_free_energy_sums_out_the_hidden_units():
  params = random_params(0, 4, 3)
  v, h = all_states(4), all_states(3)
  # F(v) = -log sum_h exp(-E(v, h)), by brute force over the 8 hidden states
  brute = jax.jit(lambda p: -jax.nn.logsumexp(-rbm.energy(p, v[:, None, :], h[None, :, :]),
                                              axis=1))(params)
  np.testing.assert_allclose(jax.jit(rbm.free_energy)(params, v), brute, rtol=1e-5, atol=1e-6)


def test_log_partition_exact_equals_brute_force_over_v_and_h():
  params = random_params(1, 4, 3)
  v, h = all_states(4), all_states(3)
  brute = jax.nn.logsumexp(-rbm.energy(params, v[:, None, :], h[None, :, :]))  # all 128 pairs
  np.testing.assert_allclose(rbm.log_partition_exact(params), brute, rtol=1e-6)


def test_log_partition_exact_in_blocks_equals_the_sum_over_visible_states():
  # H = 14 sums 4 blocks of 2^12 hidden states; the visible side (V = 5) has 32 states.
  params = random_params(2, 5, 14, scale=0.5)
  over_visible = jax.nn.logsumexp(-rbm.free_energy(params, all_states(5)))
  np.testing.assert_allclose(rbm.log_partition_exact(params), over_visible, rtol=1e-5)


def test_log_partition_exact_refuses_more_than_20_hidden_units():
  with pytest.raises(ValueError, match='H <= 20'):
    rbm.log_partition_exact(random_params(0, 3, 21))


def test_log_likelihood_is_normalized():
  params = random_params(3, 5, 3)
  log_p = rbm.log_likelihood(params, all_states(5), rbm.log_partition_exact(params))
  chex.assert_shape(log_p, (32,))
  np.testing.assert_allclose(jnp.sum(jnp.exp(log_p)), 1.0, rtol=1e-5)
  with pytest.raises(ValueError, match='must be binary'):
    rbm.log_likelihood(params, 0.5 * all_states(5), 0.0)


# ----------------------------------------------------------------------------- gradients


def test_contrastive_gradient_closed_form():
  params = random_params(4, 5, 3)
  v_data, v_model = random_binary(0, (7, 5)), random_binary(1, (11, 5))
  grads = jax.jit(rbm.contrastive_gradient)(params, v_data, v_model)
  sig = lambda a: 1 / (1 + np.exp(-a))
  w, c = np.asarray(params['W']), np.asarray(params['c'])
  vd, vm = np.asarray(v_data), np.asarray(v_model)
  pd, pm = sig(vd @ w + c), sig(vm @ w + c)
  np.testing.assert_allclose(grads['W'], vm.T @ pm / 11 - vd.T @ pd / 7, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grads['b'], vm.mean(0) - vd.mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(grads['c'], pm.mean(0) - pd.mean(0), rtol=1e-5, atol=1e-6)
  # ... which is the gradient of mean F(data) - mean F(model).
  autodiff = jax.jit(jax.grad(lambda p: jnp.mean(rbm.free_energy(p, v_data))
                              - jnp.mean(rbm.free_energy(p, v_model))))(params)
  chex.assert_trees_all_close(grads, autodiff, rtol=1e-5, atol=1e-6)


def test_cd1_gradient_on_a_deterministic_chain():
  # Weights of +-100 make every conditional 0 or 1 (sigmoid(+-50) is 1 or 0 in float32), so
  # the Gibbs chain is deterministic: (1, 0) -> h = (1, 0) -> v' = (0, 1), and (0, 1) is fixed.
  params = {'W': jnp.array([[100.0, -100.0], [-100.0, 100.0]]),
            'b': jnp.array([-150.0, 150.0]), 'c': jnp.array([-50.0, -50.0])}
  v_data = jnp.array([[1.0, 0.0], [0.0, 1.0]])
  grads, v_model = rbm.cd_gradient(params, v_data, jax.random.PRNGKey(0), num_steps=1)
  np.testing.assert_array_equal(v_model, [[0.0, 1.0], [0.0, 1.0]])
  # p(h | v) = v for both; data: <v h^T> = diag(1/2, 1/2), <v> = <h> = (1/2, 1/2);
  # model: <v h^T> = [[0, 0], [0, 1]], <v> = <h> = (0, 1). grad = model - data.
  np.testing.assert_allclose(grads['W'], [[-0.5, 0.0], [0.0, 0.5]], atol=1e-6)
  np.testing.assert_allclose(grads['b'], [-0.5, 0.5], atol=1e-6)
  np.testing.assert_allclose(grads['c'], [-0.5, 0.5], atol=1e-6)
  with pytest.raises(ValueError, match='must be binary'):
    rbm.cd_gradient(params, 0.5 * v_data, jax.random.PRNGKey(0))


def exact_nll_gradient(params, v_data):
  """``grad [mean F(v_data) + log Z]``, the exact gradient of the mean negative log-likelihood
  (``log Z`` by enumeration, differentiated by autodiff)."""
  return jax.grad(lambda p: jnp.mean(rbm.free_energy(p, v_data))
                  + rbm.log_partition_exact(p))(params)


def test_cd_k_with_long_chains_matches_the_exact_gradient():
  params = random_params(5, 6, 4)
  v_data = random_binary(0, (20, 6), 0.3)
  exact = exact_nll_gradient(params, v_data)
  # 200 chains from each of the 20 data vectors, 100 sweeps each: each chain is a near-exact
  # sample of p(v). The positive phase is exact; the negative one is an average of 4,000
  # samples, so each entry has a standard error <= 0.5 / sqrt(4000) = 0.008.
  chains = jnp.repeat(v_data, 200, axis=0)
  cd = jax.jit(functools.partial(rbm.cd_gradient, num_steps=100))
  grads, _ = cd(params, chains, jax.random.PRNGKey(1))
  # The positive phase of cd_gradient is over the repeated data, whose averages are v_data's.
  for name in ('W', 'b', 'c'):
    np.testing.assert_allclose(grads[name], exact[name], atol=0.04, err_msg=name)
  # The check has teeth: the exact gradient is far from 0.
  assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(exact)) > 0.2


# ----------------------------------------------------------------------------- sampling


def test_gibbs_samples_follow_the_exact_distribution():
  params = random_params(6, 4, 3)
  v, v_probs = jax.jit(functools.partial(rbm.sample, num_samples=20_000, num_steps=50))(
      params, jax.random.PRNGKey(0))
  chex.assert_shape((v, v_probs), (20_000, 4))
  probs = exact_visible_distribution(params)
  # 16 states, 20,000 samples: the TV distance of a perfect sampler is ~0.01.
  assert total_variation(empirical_distribution(v), probs) < 0.03
  # The returned probabilities p(v | h) average to the exact marginals p(v_i = 1) too.
  marginals = probs @ all_states(4)
  np.testing.assert_allclose(v_probs.mean(0), marginals, atol=0.015)


def test_persistent_chains_carry_over_and_reach_the_model_distribution():
  """PCD with a zero learning rate: the parameters stay put, so the persistent chains are one
  long Gibbs chain each, and after 200 steps of one sweep they are samples of p(v)."""
  params = random_params(7, 4, 3)
  optimizer = optax.sgd(0.0)
  state = density_train.init_state(params, optimizer=optimizer, model_state={
      'chains': rbm.init_chains(jax.random.PRNGKey(0), params, 10_000)})
  chex.assert_shape(state.g_batch_stats['chains'], (10_000, 4))
  step = density_train.make_train_step(rbm.objective(num_gibbs_steps=1, persistent=True),
                                       optimizer=optimizer)
  batch = {'x': jnp.zeros((8, 4))}

  @jax.jit
  def run(state):
    return jax.lax.scan(lambda s, _: (step(s, batch, jax.random.PRNGKey(1))[0], None), state,
                        None, length=200)[0]

  chains = lambda state: state.g_batch_stats['chains']
  start = total_variation(empirical_distribution(chains(state)), exact_visible_distribution(params))
  state = run(state)
  chex.assert_trees_all_close(state.g_params, params)
  end = total_variation(empirical_distribution(chains(state)), exact_visible_distribution(params))
  assert start > 0.1, start  # the chains started elsewhere ...
  assert end < 0.04, end  # ... and moved to p(v) (noise ~0.015)


@pytest.mark.parametrize('persistent', [False, True], ids=['cd', 'pcd'])
def test_train_step_is_one_optimizer_step_on_the_cd_gradient(persistent):
  # The objective's surrogate F(data) - F(v_model) has the CD gradient as its gradient: one SGD
  # step moves the parameters by -lr * cd_gradient, with the documented keys.
  params = random_params(8, 5, 3)
  x01 = jnp.asarray(np.random.default_rng(0).random((6, 5)), jnp.float32)
  optimizer = optax.sgd(0.1)
  model_state = ({'chains': rbm.init_chains(jax.random.PRNGKey(1), params, 9)} if persistent
                 else None)
  state = density_train.init_state(params, optimizer=optimizer, model_state=model_state)
  state = state.replace(step=jnp.asarray(2, jnp.int32))
  step = density_train.make_train_step(
      rbm.objective(num_gibbs_steps=3, persistent=persistent), optimizer=optimizer)

  @jax.jit
  def step_and_reference(state, key):
    new_state, metrics = step(state, {'x': x01}, key)
    # The documented keys: split(objective_key(key, step)) = (binarize key, chain key).
    bin_key, chain_key = jax.random.split(density_train.objective_key(key, 2))
    x = jax.random.bernoulli(bin_key, x01).astype(jnp.float32)
    grads, v_model = rbm.cd_gradient(params, x, chain_key, num_steps=3,
                                     chains=state.g_batch_stats['chains'] if persistent else None)
    recon = rbm.visible_probabilities(params, rbm.hidden_probabilities(params, x))
    data_energy = rbm.free_energy(params, x).mean()
    model_energy = rbm.free_energy(params, v_model).mean()
    expected = {'free_energy_data': data_energy, 'free_energy_model': model_energy,
                'reconstruction_error': jnp.mean((x - recon)**2),
                'g_loss': data_energy - model_energy, 'g_grad_norm': optax.tree.norm(grads)}
    return new_state, metrics, grads, v_model, expected

  new_state, metrics, grads, v_model, expected = step_and_reference(state, jax.random.PRNGKey(3))
  chex.assert_trees_all_close(new_state.g_params,
                              jax.tree.map(lambda p, g: p - 0.1 * g, params, grads), atol=1e-6)
  assert int(new_state.step) == 3
  chex.assert_trees_all_close(new_state.g_batch_stats,
                              {'chains': v_model} if persistent else {})
  chex.assert_trees_all_close({k: metrics[k] for k in expected}, expected, rtol=1e-5,
                              atol=1e-6)


@pytest.mark.slow
def test_pcd_training_reaches_the_teachers_likelihood():
  """Exact samples of a teacher RBM whose three hidden units are three +-3 patterns; PCD-1
  training of a student from small weights raises the exact training log-likelihood from the
  base rate's to the teacher's (the maximum-likelihood fit is at least as good on its own
  training data). Seed-fixed: base rate -2.370, teacher -1.827, student -1.8275 nats."""
  patterns = jnp.array([[1, 1, 1, -1, -1, -1], [-1, -1, -1, 1, 1, 1], [1, -1, 1, -1, 1, -1]])
  teacher = {'W': 3.0 * patterns.T.astype(jnp.float32), 'b': jnp.zeros(6),
             'c': jnp.full((3,), -1.5)}
  index = np.random.default_rng(0).choice(
      64, 2000, p=np.asarray(exact_visible_distribution(teacher), np.float64).clip(0) /
      float(np.asarray(exact_visible_distribution(teacher), np.float64).clip(0).sum()))
  data = all_states(6)[index]
  mean_ll = lambda p: float(jnp.mean(rbm.log_likelihood(p, data, rbm.log_partition_exact(p))))
  student = rbm.init_params(jax.random.PRNGKey(1), 6, 3, weight_scale=0.1,
                            visible_bias=rbm.base_rate_visible_bias(data))
  optimizer = optax.adam(optax.cosine_decay_schedule(0.05, 2000, alpha=0.05))
  state = density_train.init_state(student, optimizer=optimizer, model_state={
      'chains': rbm.init_chains(jax.random.PRNGKey(2), student, 500)})
  step = density_train.make_train_step(rbm.objective(num_gibbs_steps=1, persistent=True),
                                       optimizer=optimizer)

  @jax.jit
  def train(state):
    def body(state, t):  # 20 minibatches of 100, in turn
      batch = {'x': jax.lax.dynamic_slice_in_dim(data, (t % 20) * 100, 100)}
      return step(state, batch, jax.random.PRNGKey(3))[0], None
    return jax.lax.scan(body, state, jnp.arange(2000))[0]

  teacher_ll, start = mean_ll(teacher), mean_ll(student)
  end = mean_ll(train(state).g_params)
  assert start < teacher_ll - 0.4, (start, teacher_ll)
  assert end > teacher_ll - 0.02, (end, teacher_ll)


# ----------------------------------------------------------------------------- AIS


def test_base_rate_visible_bias_hand_value():
  x = jnp.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
  # means (0, 1/2, 1) -> p = (0.05, 0.55, 1.05) / 1.1 -> logit = (-ln 21, 0, ln 21)
  np.testing.assert_allclose(rbm.base_rate_visible_bias(x), [-math.log(21), 0.0, math.log(21)],
                             rtol=1e-5, atol=1e-6)


def test_paper_betas():
  betas = rbm.paper_betas()
  assert betas.shape == (14_501,) and betas[0] == 0.0 and betas[-1] == 1.0
  np.testing.assert_allclose(np.diff(betas)[[0, 600, -1]], [1e-3, 1e-4, 1e-5], rtol=1e-6)
  # Scaled to 1,001 temperatures: the segments keep their shares (34, 276, 690 transitions).
  short = rbm.paper_betas(1001)
  assert short.shape == (1001,) and short[0] == 0.0 and short[-1] == 1.0
  np.testing.assert_allclose(short[[34, 310]], [0.5, 0.9])
  np.testing.assert_allclose(np.diff(short)[[0, 40, -1]], [0.5 / 34, 0.4 / 276, 0.1 / 690])
  with pytest.raises(ValueError, match='num_betas >= 4'):
    rbm.paper_betas(3)


# One compilation for both AIS tests (same shapes: V = 30, H = 10, 1,001 temperatures).
AIS = jax.jit(functools.partial(rbm.ais_log_partition, num_chains=200))
AIS_BETAS = jnp.linspace(0.0, 1.0, 1001)


def test_ais_is_exact_when_the_target_is_the_base_model():
  # W = 0, c = 0 and b = b_A: every weight increment is 0, so log Z = log Z_A exactly.
  b = random_params(0, 30, 10)['b']
  params = {'W': jnp.zeros((30, 10)), 'b': b, 'c': jnp.zeros((10,))}
  log_z, se = AIS(params, jax.random.PRNGKey(0), betas=AIS_BETAS, base_visible_bias=b)
  np.testing.assert_allclose(log_z, 10 * math.log(2) + jnp.sum(jax.nn.softplus(b)), rtol=1e-6)
  np.testing.assert_allclose(log_z, rbm.log_partition_exact(params), rtol=1e-6)
  assert float(se) == 0.0


def exact_visible_marginals(params) -> jax.Array:
  """``p(v_i = 1)`` by enumerating the hidden states: ``sum_h p(h) sigmoid(b + W h)``, with
  ``log p(h) = c^T h + sum_i softplus(b_i + (W h)_i) - log Z``."""
  h = all_states(params['c'].shape[0])
  activation = h @ params['W'].T + params['b']
  log_p_h = h @ params['c'] + jnp.sum(jax.nn.softplus(activation), -1)
  return jax.nn.softmax(log_p_h) @ jax.nn.sigmoid(activation)


def test_ais_agrees_with_enumeration_within_its_error():
  # V = 30 (2^30 visible states), H = 10: log Z = 44.167 by enumerating the 1,024 hidden states.
  params = random_params(10, 30, 10)
  exact = float(rbm.log_partition_exact(params))
  # The base-rate model of the model's own exact pixel marginals, as of data from it.
  base = rbm.base_rate_visible_bias(exact_visible_marginals(params)[None])
  log_z_a = 10 * math.log(2) + float(jnp.sum(jax.nn.softplus(base)))
  log_z, se = AIS(params, jax.random.PRNGKey(1), betas=AIS_BETAS, base_visible_bias=base)
  log_z, se = float(log_z), float(se)
  assert abs(exact - log_z_a) > 3.0, log_z_a  # the base model's log Z is far off: AIS did it
  assert 0 < se < 0.02, se
  assert abs(log_z - exact) < 3 * se, (log_z, exact, se)


def test_ais_rejects_bad_arguments():
  params = random_params(0, 3, 2)
  key = jax.random.PRNGKey(0)
  for betas in ([0.0, 0.5], [0.1, 1.0], [0.0, 0.6, 0.4, 1.0], [1.0]):
    with pytest.raises(ValueError, match='betas'):
      rbm.ais_log_partition(params, key, num_chains=4, betas=jnp.asarray(betas))
  with pytest.raises(ValueError, match='num_chains'):
    rbm.ais_log_partition(params, key, num_chains=1, betas=jnp.linspace(0, 1, 3))
