"""The bilinear game and the Dirac-GAN against their closed forms (derivations in jaxgan.dynamics).

'simultaneous', 'alternating' and 'negative_momentum' run jaxgan.train.make_train_step, so every
closed form checked on them also checks the trainer's update rules.
"""

from __future__ import annotations

import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import dynamics

SQRT2 = math.sqrt(2.0)


@pytest.fixture
def x64():
  """Float64 for long runs, scoped to one test so it never leaks into other tests."""
  with jax.enable_x64(True):
    yield


def norms(z):
  return np.linalg.norm(np.asarray(z, np.float64), axis=-1)


def log_rate(z, start):
  """Least-squares slope of log ||z_t|| over t >= start, exponentiated: the per-step factor."""
  t = np.arange(start, len(z))
  return math.exp(np.polyfit(t, np.log(norms(z[start:])), 1)[0])


# ---------------------------------------------------------------------------------------------
# First steps by hand: they pin down the sign convention and the update order.


def test_first_steps_by_hand():
  # simultaneous from (1, 1), lr 0.5: x' = 1 - 0.5 * 1, y' = 1 + 0.5 * 1.
  chex.assert_trees_all_close(dynamics.simulate('simultaneous', lr=0.5, steps=1)[1],
                              jnp.array([0.5, 1.5]))
  # alternating, D first: y' = 1 + 0.5 * 1 = 1.5, then x' = 1 - 0.5 * 1.5 = 0.25
  # (G first would give (0.5, 1.25)).
  chex.assert_trees_all_close(dynamics.simulate('alternating', lr=0.5, steps=1)[1],
                              jnp.array([0.25, 1.5]))
  # extragradient: z_half = (0.5, 1.5); z' = (1 - 0.5 * 1.5, 1 + 0.5 * 0.5) = (0.25, 1.25).
  chex.assert_trees_all_close(dynamics.simulate('extragradient', lr=0.5, steps=1)[1],
                              jnp.array([0.25, 1.25]))
  # optimistic: step 1 is plain GDA (0.5, 1.5); step 2 = z1 + 2 * 0.5 * (-1.5, 0.5)
  # - 0.5 * (-1, 1) = (0.5 - 1.5 + 0.5, 1.5 + 0.5 - 0.5) = (-0.5, 1.5).
  chex.assert_trees_all_close(dynamics.simulate('optimistic', lr=0.5, steps=2)[1:],
                              jnp.array([[0.5, 1.5], [-0.5, 1.5]]))
  # consensus, gamma 1: z' = z + 0.5 * ((-1, 1) - (1, 1)) = (0, 1).
  chex.assert_trees_all_close(dynamics.simulate('consensus', lr=0.5, steps=1, gamma=1.0)[1],
                              jnp.array([0.0, 1.0]))
  # negative momentum, beta -0.5: step 1 is alternating (0.25, 1.5); step 2:
  # y = 1.5 + 0.5 * 0.25 - 0.5 * (1.5 - 1) = 1.375; x = 0.25 - 0.5 * 1.375 - 0.5 * (0.25 - 1)
  # = -0.0625.
  chex.assert_trees_all_close(
      dynamics.simulate('negative_momentum', lr=0.5, steps=2, beta=-0.5)[1:],
      jnp.array([[0.25, 1.5], [-0.0625, 1.375]]))


# ---------------------------------------------------------------------------------------------
# Closed forms of the memoryless methods.


@pytest.mark.parametrize('lr', [0.05, 0.3, 1.0])
def test_simultaneous_grows_by_sqrt_one_plus_lr_squared(lr):
  z = dynamics.simulate('simultaneous', lr=lr, steps=40, x0=0.7, y0=-1.3)
  n = norms(z)
  np.testing.assert_allclose(n[1:] / n[:-1], math.sqrt(1 + lr**2), rtol=2e-6)
  assert dynamics.spectral_radius('simultaneous', lr=lr) == pytest.approx(math.sqrt(1 + lr**2))


@pytest.mark.parametrize('lr', [0.1, 0.7, 1.5])
def test_alternating_conserves_a_quadratic_form(lr, x64):
  m = dynamics.transition_matrix('alternating', lr=lr)
  assert np.linalg.det(m) == pytest.approx(1.0, abs=1e-12)
  assert dynamics.spectral_radius('alternating', lr=lr) == pytest.approx(1.0, abs=1e-9)
  z = np.asarray(dynamics.simulate('alternating', lr=lr, steps=10_000, x0=1.0, y0=0.5))
  assert z.dtype == np.float64
  q = z[:, 0]**2 + z[:, 1]**2 + lr * z[:, 0] * z[:, 1]  # Q = x^2 + y^2 + lr x y
  np.testing.assert_allclose(q, q[0], rtol=1e-5)
  # Never converges: Q <= (1 + lr / 2) ||z||^2, so ||z_t||^2 >= Q(z_0) / (1 + lr / 2) > 0.
  assert norms(z).min() ** 2 >= q[0] / (1 + lr / 2) * (1 - 1e-9)
  # The form is not the circle: ||z|| itself does oscillate.
  assert norms(z).max() - norms(z).min() > 0.01 * lr


def test_alternating_diverges_past_lr_two():
  # lr = 2.5: trace 2 - 6.25, lambda^2 + 4.25 lambda + 1 = 0, lambda = -4 or -1/4.
  assert dynamics.spectral_radius('alternating', lr=2.5) == pytest.approx(4.0)


@pytest.mark.parametrize('lr', [0.1, 0.5, 0.9, 1.2])
def test_extragradient_contraction_factor(lr):
  factor = math.sqrt(1 - lr**2 + lr**4)
  z = dynamics.simulate('extragradient', lr=lr, steps=30)
  n = norms(z)
  np.testing.assert_allclose(n[1:] / n[:-1], factor, rtol=2e-6)
  assert dynamics.spectral_radius('extragradient', lr=lr) == pytest.approx(factor)


@pytest.mark.parametrize('lr, gamma', [(0.1, 0.5), (0.3, 2.0), (0.5, 4.0)])
def test_consensus_contraction_factor(lr, gamma):
  factor = math.sqrt((1 - lr * gamma)**2 + lr**2)  # 0.9552, 0.5831, 1.0308
  z = dynamics.simulate('consensus', lr=lr, steps=30, gamma=gamma)
  n = norms(z)
  np.testing.assert_allclose(n[1:] / n[:-1], factor, rtol=2e-6)
  assert dynamics.spectral_radius('consensus', lr=lr, gamma=gamma) == pytest.approx(factor)


@pytest.mark.parametrize('lr', [0.05, 0.2, 0.5])
def test_optimistic_spectral_radius_closed_form(lr):
  expected = math.sqrt((1 + math.sqrt(1 - 4 * lr**2)) / 2)  # lr <= 1/2
  assert dynamics.spectral_radius('optimistic', lr=lr) == pytest.approx(expected, rel=1e-7)


# ---------------------------------------------------------------------------------------------
# The hand-written matrices are the maps simulate applies; rates of the methods with memory.


@pytest.mark.parametrize('method, hyper', [
    ('simultaneous', {}), ('alternating', {}), ('extragradient', {}), ('optimistic', {}),
    ('consensus', {'gamma': 0.7}), ('negative_momentum', {'beta': -0.3})])
def test_transition_matrix_is_the_simulated_map(method, hyper, x64):
  lr, steps = 0.3, 40
  m = dynamics.transition_matrix(method, lr=lr, **hyper)
  state = np.array([0.8, -0.6, 0.8, -0.6])[:len(m)]  # (z_0, z_{-1} = z_0)
  expected = [state[:2]]
  for _ in range(steps):
    state = m @ state
    expected.append(state[:2])
  z = dynamics.simulate(method, lr=lr, steps=steps, x0=0.8, y0=-0.6, **hyper)
  np.testing.assert_allclose(z, np.array(expected), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize('method, lr, hyper, steps', [
    ('optimistic', 0.1, {}, 2000),
    ('optimistic', 0.3, {}, 400),
    ('negative_momentum', 0.1, {'beta': -0.5}, 6000),
    ('negative_momentum', 0.3, {'beta': -0.3}, 1500),
])
def test_methods_with_memory_converge_at_the_spectral_rate(method, lr, hyper, steps, x64):
  radius = dynamics.spectral_radius(method, lr=lr, **hyper)
  assert radius < 1
  z = dynamics.simulate(method, lr=lr, steps=steps, **hyper)
  assert norms(z)[-1] < 0.05 * SQRT2
  # 1 - rate agrees to 1%, e.g. 1 - 0.998518 for negative momentum at lr 0.1.
  assert 1 - log_rate(z, steps // 2) == pytest.approx(1 - radius, rel=1e-2)


def negative_momentum_polynomial(lr, beta):
  """Characteristic polynomial of alternating GDA with heavy ball beta on the bilinear game.

  With y' = y + lr x + beta (y - y_prev) and x' = x - lr y' + beta (x - x_prev), a mode
  z_t = lambda^t z_0 has p(lambda) y = lr x and p(lambda) x = -lr lambda y, where
  p(lambda) = lambda - (1 + beta) + beta / lambda. Eliminating x: p^2 = -lr^2 lambda, i.e.
  ((lambda - 1)(lambda - beta))^2 + lr^2 lambda^3 = 0. Coefficients, highest power first.
  """
  return [1.0, -2 * (1 + beta) + lr**2, (1 + beta)**2 + 2 * beta, -2 * beta * (1 + beta),
          beta**2]


def small_lr_rate(lr, beta):
  """The spectral radius to order lr^2: 1 + lr^2 beta / (1 - beta)^3.

  Put lambda = 1 + a lr + b lr^2 in the polynomial above, c = 1 - beta: order lr^2 gives
  a^2 c^2 = -1, a = +-i / c; order lr^3 gives 2 a b c^2 + 2 c a^3 + 3 a = 0, so
  b = (2 / c - 3) / (2 c^2). Then |lambda|^2 = 1 + lr^2 (|a|^2 + 2 Re b) = 1 + 2 lr^2 beta / c^3.
  """
  return 1 + lr**2 * beta / (1 - beta)**3


@pytest.mark.parametrize('lr, beta', [(0.1, -0.5), (0.1, -0.3), (0.3, -0.3), (0.05, -0.8)])
def test_negative_momentum_matches_its_characteristic_polynomial(lr, beta):
  m = dynamics.transition_matrix('negative_momentum', lr=lr, beta=beta)
  np.testing.assert_allclose(np.poly(m), negative_momentum_polynomial(lr, beta), atol=1e-12)
  radius = max(abs(np.roots(negative_momentum_polynomial(lr, beta))))
  assert dynamics.spectral_radius('negative_momentum', lr=lr, beta=beta) == pytest.approx(
      radius, rel=1e-9)
  # 1 - radius to order lr^2 (e.g. 0.998518 at lr 0.1, beta -0.5); the neglected terms are
  # relatively O(lr^2): 1.1% of 1 - radius at lr 0.3, at most 0.12% at lr <= 0.1.
  assert 1 - radius == pytest.approx(1 - small_lr_rate(lr, beta), rel=0.02)


def test_negative_momentum_needs_the_negative_sign():
  # The point of arXiv:1807.04740: the same rule with beta > 0 spirals out, at the rate
  # 1 + lr^2 beta / (1 - beta)^3 > 1 (simulate takes only beta < 0, so this is the polynomial).
  lr, beta = 0.02, 0.5
  radius = max(abs(np.roots(negative_momentum_polynomial(lr, beta))))
  assert radius - 1 == pytest.approx(small_lr_rate(lr, beta) - 1, rel=0.02)  # 0.00158
  # With beta = -0.5 instead the library's radius is below 1 by the same formula: 1 - 5.93e-5.
  radius = dynamics.spectral_radius('negative_momentum', lr=lr, beta=-beta)
  assert 1 - radius == pytest.approx(1 - small_lr_rate(lr, -beta), rel=1e-3)


# ---------------------------------------------------------------------------------------------
# jit and vmap.


@pytest.mark.parametrize('method, hyper', [('alternating', {}), ('extragradient', {}),
                                           ('negative_momentum', {'beta': -0.4})])
def test_simulate_vmaps_over_lr_and_start_and_jits(method, hyper):
  lrs = jnp.array([0.05, 0.2, 0.6])
  x0s = jnp.array([1.0, -0.5, 2.0])
  batched = jax.vmap(lambda lr, x0: dynamics.simulate(method, lr=lr, steps=25, x0=x0,
                                                      **hyper))(lrs, x0s)
  chex.assert_shape(batched, (3, 26, 2))
  for i in range(3):
    one = dynamics.simulate(method, lr=float(lrs[i]), steps=25, x0=float(x0s[i]), **hyper)
    chex.assert_trees_all_close(batched[i], one, rtol=1e-5, atol=1e-6)
  jitted = jax.jit(dynamics.simulate, static_argnames=('method', 'steps'))
  chex.assert_trees_all_close(jitted(method, lr=0.2, steps=25, x0=-0.5, **hyper), batched[1],
                              rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The Dirac-GAN.

# f'(0) of arXiv:1801.04406 for each jaxgan loss family: 1/2 for the cross-entropy GANs,
# 1 for the linear ones (module docstring).
F_PRIME = [('non_saturating', 0.5), ('minimax', 0.5), ('wasserstein', 1.0), ('hinge', 1.0)]


def sorted_eigs(values):
  return np.array(sorted(np.asarray(values, np.complex128), key=lambda v: (v.real, v.imag)))


@pytest.mark.parametrize('gamma', [0.0, 0.5, 3.0])
@pytest.mark.parametrize('loss, f_prime', F_PRIME)
def test_dirac_gan_field_eigenvalues_match_the_paper(loss, f_prime, gamma):
  jacobian = jax.jacfwd(dynamics.dirac_gan_vector_field(loss, r1_gamma=gamma))(jnp.zeros(2))
  root = np.sqrt(complex(gamma**2 / 4 - f_prime**2))
  expected = [-gamma / 2 + root, -gamma / 2 - root]  # +-i f'(0) when gamma = 0
  np.testing.assert_allclose(sorted_eigs(np.linalg.eigvals(np.asarray(jacobian))),
                             sorted_eigs(expected), atol=1e-6)


@pytest.mark.parametrize('loss, gamma', [('non_saturating', 0.0), ('non_saturating', 0.5),
                                         ('wasserstein', 1.0), ('least_squares', 0.0)])
def test_dirac_gan_field_is_the_trainer_step(loss, gamma):
  lr = 0.3
  field = dynamics.dirac_gan_vector_field(loss, r1_gamma=gamma)
  simultaneous = dynamics.dirac_gan_step(loss, lr=lr, update='simultaneous', r1_gamma=gamma)
  alternating = dynamics.dirac_gan_step(loss, lr=lr, update='alternating', r1_gamma=gamma)
  for z in jax.random.normal(jax.random.key(0), (4, 2)):
    chex.assert_trees_all_close(simultaneous(z), z + lr * field(z), rtol=1e-6, atol=1e-7)
    # D first: psi moves along the field at z, then theta along the field at the new point.
    half = z.at[1].add(lr * field(z)[1])
    chex.assert_trees_all_close(alternating(z), half.at[0].add(lr * field(half)[0]),
                                rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('loss, f_prime', [('non_saturating', 0.5), ('wasserstein', 1.0)])
@pytest.mark.parametrize('gamma', [0.0, 0.5])
def test_dirac_gan_step_jacobian(loss, f_prime, gamma, x64):
  lr = 0.1
  for update in ('simultaneous', 'alternating'):
    jacobian = dynamics.dirac_gan_step_jacobian(loss, lr=lr, update=update, r1_gamma=gamma)
    step = dynamics.dirac_gan_step(loss, lr=lr, update=update, r1_gamma=gamma)
    h = 1e-6  # central differences of the trainer's own step, in float64
    differences = np.stack([(step(h * e) - step(-h * e)) / (2 * h) for e in jnp.eye(2)], 1)
    np.testing.assert_allclose(jacobian, differences, atol=1e-8)
    radius = max(abs(np.linalg.eigvals(jacobian)))
    if update == 'alternating':
      assert np.linalg.det(jacobian) == pytest.approx(1 - lr * gamma)
      # Complex eigenvalues here (trace^2 < 4 det), so radius = sqrt(det).
      assert radius == pytest.approx(math.sqrt(1 - lr * gamma))
    else:
      root = np.sqrt(complex(gamma**2 / 4 - f_prime**2))
      expected = max(abs(1 + lr * (-gamma / 2 + root)), abs(1 + lr * (-gamma / 2 - root)))
      assert radius == pytest.approx(expected)  # sqrt(1 + lr^2 f'(0)^2) when gamma = 0


@pytest.mark.parametrize('loss', ['non_saturating', 'minimax', 'wasserstein'])
def test_dirac_gan_energy_balance(loss):
  # d/dt (theta^2 + psi^2) = 2 z . w(z): -2 t tanh(t / 2) with t = theta psi for the
  # non-saturating GAN (w = (psi sigma(-t), -theta sigma(t))), 0 for minimax and WGAN.
  field = dynamics.dirac_gan_vector_field(loss)
  for z in jax.random.normal(jax.random.key(1), (5, 2)):
    t = float(z[0] * z[1])
    expected = -2 * t * math.tanh(t / 2) if loss == 'non_saturating' else 0.0
    assert float(2 * jnp.dot(z, field(z))) == pytest.approx(expected, abs=1e-6)


def test_dirac_gan_r1_converges_and_unregularized_do_not():
  lr, steps = 0.1, 2000
  for update in ('simultaneous', 'alternating'):
    z = dynamics.simulate_dirac_gan('non_saturating', lr=lr, steps=steps, update=update,
                                    r1_gamma=0.5)
    assert norms(z)[-1] < 1e-8
    # Linear convergence at the local rate once near (0, 0).
    radius = max(abs(np.linalg.eigvals(dynamics.dirac_gan_step_jacobian(
        'non_saturating', lr=lr, update=update, r1_gamma=0.5))))
    assert log_rate(z[400:800], 0) == pytest.approx(radius, abs=2e-3)
    for loss in ('non_saturating', 'wasserstein'):
      z = dynamics.simulate_dirac_gan(loss, lr=lr, steps=steps, update=update)
      assert norms(z)[steps // 2:].min() > 0.1, (loss, update)
  # WGAN is the bilinear game: simultaneous grows exactly like sqrt(1 + lr^2).
  z = dynamics.simulate_dirac_gan('wasserstein', lr=lr, steps=50, update='simultaneous')
  np.testing.assert_allclose(norms(z)[1:] / norms(z)[:-1], math.sqrt(1 + lr**2), rtol=2e-6)


# ---------------------------------------------------------------------------------------------
# Bad input.


@pytest.mark.parametrize('call, match', [
    (lambda: dynamics.simulate('adam', lr=0.1, steps=5), "unknown method 'adam'"),
    (lambda: dynamics.simulate('consensus', lr=0.1, steps=5), r"needs hyperparameters \['gamma'\]"),
    (lambda: dynamics.simulate('consensus', lr=0.1, steps=5, gamma=-1.0), 'gamma > 0'),
    (lambda: dynamics.simulate('negative_momentum', lr=0.1, steps=5, beta=0.5), 'beta < 0'),
    (lambda: dynamics.simulate('negative_momentum', lr=0.1, steps=5, beta=-1.0), 'beta < 0'),
    (lambda: dynamics.simulate('simultaneous', lr=0.1, steps=5, gamma=1.0),
     r"unexpected \['gamma'\]"),
    (lambda: dynamics.simulate('alternating', lr=0.0, steps=5), 'lr=0.0'),
    (lambda: dynamics.simulate('alternating', lr=-0.1, steps=5), 'lr=-0.1'),
    (lambda: dynamics.simulate('alternating', lr=jnp.ones(3), steps=5), 'jax.vmap'),
    (lambda: dynamics.simulate('alternating', lr=0.1, steps=0), 'steps=0'),
    (lambda: dynamics.simulate('alternating', lr=0.1, steps=2.5), 'steps=2.5'),
    (lambda: dynamics.spectral_radius('sgd', lr=0.1), "unknown method 'sgd'"),
    (lambda: dynamics.spectral_radius('optimistic', lr=0.1, beta=-0.5), r"unexpected \['beta'\]"),
    (lambda: dynamics.simulate_dirac_gan('nonsaturating', lr=0.1, steps=5),
     "unknown loss 'nonsaturating'"),
    (lambda: dynamics.simulate_dirac_gan(lr=0.1, steps=5, r1_gamma=-1.0), 'r1_gamma=-1.0'),
    (lambda: dynamics.simulate_dirac_gan(lr=0.1, steps=5, update='jacobi'), "'jacobi'"),
    (lambda: dynamics.dirac_gan_step_jacobian(lr=0.1, update='jacobi'), "'jacobi'"),
    (lambda: dynamics.plot_trajectories({'a': jnp.zeros((5, 3))}), r'shape \(T, 2\)'),
])
def test_bad_input_raises_value_error(call, match):
  with pytest.raises(ValueError, match=match):
    call()


# ---------------------------------------------------------------------------------------------
# The picture and the command.


def test_plot_trajectories_draws_each_trajectory():
  trajectories = {m: dynamics.simulate(m, lr=0.2, steps=30) for m in ('simultaneous',
                                                                       'extragradient')}
  fig = dynamics.plot_trajectories(trajectories)
  axes = [ax for ax in fig.axes if ax.lines]
  assert [ax.get_title().split('\n')[0] for ax in axes] == list(trajectories)
  for ax, z in zip(axes, trajectories.values(), strict=True):
    np.testing.assert_allclose(ax.lines[0].get_xydata(), z, rtol=1e-6)
    assert ax.get_xlim()[1] >= np.abs(np.asarray(z)).max()
    assert ax.collections  # the vector field's arrows


def test_cli_writes_pictures_and_a_table_that_matches(tmp_path):
  lrs, steps = (0.1, 0.3), 200
  table = dynamics.main([f'--out={tmp_path}', f'--steps={steps}', '--lrs=0.1,0.3',
                         '--plot_steps=60'])
  for name in ('bilinear.png', 'dirac_gan.png'):
    data = (tmp_path / name).read_bytes()
    assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 10_000
  assert json.loads((tmp_path / 'dynamics.json').read_text()) == table
  markdown = (tmp_path / 'dynamics.md').read_text()
  rows = table['bilinear']
  assert len(rows) == len(dynamics.METHODS) * len(lrs)
  assert len(table['dirac_gan']) == len(dynamics.DIRAC_GAN_VARIANTS) * 2 * len(lrs)
  for row in rows:
    radius = dynamics.spectral_radius(row['method'], lr=row['lr'], **row['hyper'])
    assert row['spectral_radius'] == pytest.approx(radius, rel=1e-12)
    assert f"| {row['lr']:g} | {radius:.6f} |" in markdown
    if row['method'] == 'simultaneous':  # run in float64: sqrt(2) (1 + lr^2)^(T/2)
      assert row['final_distance'] == pytest.approx(SQRT2 * (1 + row['lr']**2)**(steps / 2),
                                                    rel=1e-9)
      assert row['verdict'] == 'diverges'
    if row['method'] == 'extragradient':
      assert row['final_distance'] == pytest.approx(
          SQRT2 * (1 - row['lr']**2 + row['lr']**4)**(steps / 2), rel=1e-9)
      assert row['verdict'] == 'converges'
    if row['method'] == 'alternating':
      assert row['verdict'] == 'orbits'
  for row in table['dirac_gan']:
    if row['r1_gamma'] and row['update'] == 'alternating':
      assert row['spectral_radius'] == pytest.approx(math.sqrt(1 - row['lr'] * row['r1_gamma']))
      assert row['verdict'] == 'converges'
