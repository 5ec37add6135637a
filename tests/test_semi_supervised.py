"""The semi-supervised GAN (Improved GAN, arXiv:1606.03498): losses, models, labels, training.

Loss values are computed by hand in the comments with the (K+1)-class reading D(x) = Z/(Z+1),
Z = sum_k exp(l_k). Training runs on tiny models and ``tfds.testing.mock_data``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import tensorflow_datasets as tfds
from jax.test_util import check_grads

from jaxgan import checkpoint, faults, game, loop, losses, mode_collapse
from jaxgan import semi_supervised as ssl
from jaxgan import semi_supervised_train as sst

LN2, LN3 = math.log(2.0), math.log(3.0)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


# ------------------------------------------------------------------------------------- losses

# Two examples, K = 2 classes.
#   row A = (0, ln 2):       Z = 1 + 2 = 3,     D = 3/4
#   row B = (-ln 2, -ln 2):  Z = 1/2 + 1/2 = 1, D = 1/2
#   row C = (0, 0):          Z = 2,             D = 2/3
ROW_A, ROW_B, ROW_C = (0.0, LN2), (-LN2, -LN2), (0.0, 0.0)


def test_classification_loss_hand_values():
  # p(1 | A) = 2/3, p(0 | B) = 1/2: mean(-ln(2/3), ln 2) = (0.4054651 + 0.6931472) / 2
  logits = jnp.array([ROW_A, ROW_B])
  loss = losses.semi_supervised_classification_loss(logits, jnp.array([1, 0]))
  chex.assert_trees_all_close(loss, 0.5493061443340549, rtol=1e-6)
  # Softmax over the K real classes: shifting a row's logits does not change it.
  shifted = logits + jnp.array([[5.0], [-3.0]])
  chex.assert_trees_all_close(
      losses.semi_supervised_classification_loss(shifted, jnp.array([1, 0])), loss, rtol=1e-6)


def test_discriminator_loss_hand_values():
  # real C, B: -ln D = mean(-ln(2/3), -ln(1/2)) = (0.4054651 + 0.6931472) / 2 = 0.5493061
  # fake A, B: -ln(1 - D) = mean(-ln(1/4), -ln(1/2)) = (1.3862944 + 0.6931472) / 2 = 1.0397208
  loss = losses.semi_supervised_discriminator_loss(jnp.array([ROW_C, ROW_B]),
                                                   jnp.array([ROW_A, ROW_B]))
  chex.assert_trees_all_close(loss, 0.5493061443340549 + 1.0397207708399179, rtol=1e-6)
  # Unlike the classification loss, it sees the shift: adding ln 2 to row C doubles Z to 4, so
  # the real term becomes mean(-ln(4/5), ln 2) = (0.2231436 + 0.6931472) / 2.
  shifted = losses.semi_supervised_discriminator_loss(jnp.array([(LN2, LN2), ROW_B]),
                                                      jnp.array([ROW_A, ROW_B]))
  chex.assert_trees_all_close(shifted, 0.4581453659370776 + 1.0397207708399179, rtol=1e-6)


def test_discriminator_loss_is_minimax_loss_on_log_z():
  keys = jax.random.split(jax.random.key(0), 2)
  real, fake = jax.random.normal(keys[0], (5, 10)), 3 * jax.random.normal(keys[1], (7, 10))
  chex.assert_trees_all_close(
      losses.semi_supervised_discriminator_loss(real, fake),
      losses.minimax_discriminator_loss(jax.nn.logsumexp(real, -1), jax.nn.logsumexp(fake, -1)),
      rtol=1e-6)


def test_generator_loss_hand_value():
  # -ln D on fakes A, B: mean(-ln(3/4), ln 2) = (0.2876821 + 0.6931472) / 2
  chex.assert_trees_all_close(
      losses.semi_supervised_generator_loss(jnp.array([ROW_A, ROW_B])), 0.4904146265058631,
      rtol=1e-6)


def test_discriminator_loss_gradient_by_hand():
  # d softplus(lse(l)) / d l_k = D * softmax_k(l); fake row A: 3/4 * (1/3, 2/3) = (1/4, 1/2).
  # d -(lse - softplus(lse)) / d l_k = -(1 - D) * softmax_k; real row C: -(1/3) * (1/2, 1/2).
  g_real, g_fake = jax.grad(losses.semi_supervised_discriminator_loss, argnums=(0, 1))(
      jnp.array([ROW_C]), jnp.array([ROW_A]))
  chex.assert_trees_all_close(g_fake, jnp.array([[0.25, 0.5]]), rtol=1e-6)
  chex.assert_trees_all_close(g_real, jnp.array([[-1 / 6, -1 / 6]]), rtol=1e-6)


def test_gradients_match_finite_differences(x64):
  keys = jax.random.split(jax.random.key(1), 3)
  real = jax.random.normal(keys[0], (3, 4), jnp.float64)
  fake = jax.random.normal(keys[1], (2, 4), jnp.float64)
  labels = jnp.array([0, 3, 1])
  classification = lambda lg: losses.semi_supervised_classification_loss(lg, labels)
  for fn, args in [(losses.semi_supervised_discriminator_loss, (real, fake)),
                   (classification, (real,)),
                   (losses.semi_supervised_generator_loss, (fake,)),
                   (_mean_feature_matching, (real, fake + 1.0))]:
    check_grads(jax.jit(fn), args, order=2, modes=['rev'])


def test_losses_are_stable_at_extreme_logits():
  big = jnp.array([[1000.0, 0.0]])      # Z = e^1000: D = 1, exactly
  tiny = jnp.array([[-1000.0, -1000.0]])  # Z = 2 e^-1000: ln D = -1000 + ln 2
  values = {
      'sure real': losses.semi_supervised_discriminator_loss(big, tiny),
      'sure wrong': losses.semi_supervised_discriminator_loss(tiny, big),
      'generator': losses.semi_supervised_generator_loss(tiny),
  }
  grads = jax.grad(losses.semi_supervised_discriminator_loss, argnums=(0, 1))(tiny, big)
  chex.assert_tree_all_finite((values, grads))
  chex.assert_trees_all_close(values['sure real'], 0.0, atol=1e-6)
  # real tiny: -ln D = 1000 - ln 2; fake big: -ln(1 - D) = softplus(1000) = 1000
  chex.assert_trees_all_close(values['sure wrong'], 2000.0 - LN2, rtol=1e-6)
  chex.assert_trees_all_close(values['generator'], 1000.0 - LN2, rtol=1e-6)


def _mean_feature_matching(real, fake):
  # What ssl.generator_objective minimizes: feature matching with the mean over features.
  return mode_collapse.feature_matching_loss(real, fake) / real.shape[-1]


def test_feature_matching_hand_value_and_gradient():
  # Means (2, 0) and (1, 2): ((2-1)^2 + (0-2)^2) / 2 = 2.5. d/d fake_j = -2 (mu_r - mu_f) / (F B')
  # = -(1, -2) / 1 for the single fake row.
  real, fake = jnp.array([[1.0, 0.0], [3.0, 0.0]]), jnp.array([[1.0, 2.0]])
  chex.assert_trees_all_close(_mean_feature_matching(real, fake), 2.5)
  chex.assert_trees_all_close(jax.grad(_mean_feature_matching, 1)(real, fake),
                              jnp.array([[-1.0, 2.0]]))
  # Only the means matter: any fakes with the real mean cost nothing.
  chex.assert_trees_all_close(_mean_feature_matching(real, jnp.array([[0., 1.], [4., -1.]])),
                              0.0)


# ---------------------------------------------------------------------------- labeled subset


def _uneven_labels(n=2000):
  # Class k appears (k + 1) times as often as class 0: the balance is not an accident of the data.
  rng = np.random.default_rng(0)
  labels = rng.choice(10, size=n, p=np.arange(1, 11) / 55)
  return jnp.asarray(labels, jnp.int32)


@pytest.mark.parametrize('num_labels', [20, 100, 200])
def test_select_labeled_is_balanced(num_labels):
  labels = _uneven_labels()
  idx = ssl.select_labeled(jax.random.key(0), labels, num_labels=num_labels)
  chex.assert_shape(idx, (num_labels,))
  np.testing.assert_array_equal(np.bincount(np.asarray(labels[idx]), minlength=10),
                                np.full(10, num_labels // 10))
  assert len(set(np.asarray(idx).tolist())) == num_labels  # No example twice.


def test_select_labeled_is_deterministic_per_seed_and_differs_between_seeds():
  labels = _uneven_labels()
  pick = lambda seed: set(np.asarray(ssl.select_labeled(jax.random.key(seed), labels,
                                                        num_labels=100)).tolist())
  assert pick(3) == pick(3)
  overlaps = [len(pick(0) & pick(s)) for s in (1, 2)]
  assert max(overlaps) < 50  # 100 of ~2000: a few examples in common by chance, not half.


def test_select_labeled_rejects_bad_counts():
  labels = _uneven_labels(200)
  with pytest.raises(ValueError, match='num_labels=25'):
    ssl.select_labeled(jax.random.key(0), labels, num_labels=25)
  with pytest.raises(ValueError, match='class 0 has'):
    ssl.select_labeled(jax.random.key(0), labels, num_labels=200)


# --------------------------------------------------------------------------------------- models


def _count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def test_paper_models_shapes_and_parameter_counts():
  # Shapes only (jax.eval_shape): the full-size models are too slow to run here op by op.
  g, d = ssl.SSGANGenerator(), ssl.SSGANDiscriminator()
  g_vars = jax.eval_shape(g.init, jax.random.key(0), jnp.zeros((1, 100)))
  d_params = jax.eval_shape(d.init, jax.random.key(1), jnp.zeros((1, 28, 28, 1)))['params']
  # G: 100*500 + 500 (BN shift) + 500*500 + 500 + 500*784 + 784 (bias) + 784 (scale)
  assert _count(g_vars['params']) == 50_000 + 500 + 250_000 + 500 + 392_000 + 784 + 784
  # D kernels 784*1000 + 1000*500 + 500*250 + 2 * 250*250 + 250*10, biases and scales
  # 1000 + 500 + 3 * 250 + 10 each.
  assert _count(d_params) == 784_000 + 500_000 + 125_000 + 125_000 + 2_500 + 2 * 2_260
  images, _ = jax.eval_shape(
      lambda v, z: g.apply(v, z, train=True, mutable=['batch_stats']), g_vars,
      jnp.zeros((4, 100)))
  chex.assert_shape(images, (4, 28, 28, 1))
  logits, state = jax.eval_shape(
      lambda p, x: d.apply({'params': p}, x, train=True, rngs={'noise': jax.random.key(3)},
                           mutable=['intermediates']), d_params, images)
  chex.assert_shape(logits, (4, 10))
  chex.assert_shape(state['intermediates']['features'][0], (4, 250))


def test_generator_outputs_images_in_the_unit_interval():
  g = ssl.SSGANGenerator(hidden=(16, 16))
  z = jax.random.uniform(jax.random.key(2), (4, 100))
  g_vars = g.init(jax.random.key(0), z)
  images, updates = g.apply(g_vars, 10 * z, train=True, mutable=['batch_stats'])
  chex.assert_shape(images, (4, 28, 28, 1))
  assert float(images.min()) > 0.0 and float(images.max()) < 1.0  # Sigmoid output.
  # Training mode normalizes with batch statistics and moves the running mean towards them.
  assert not np.allclose(updates['batch_stats']['BatchNorm_0']['mean'], 0.0)


def test_discriminator_noise_only_in_train_mode():
  d = ssl.SSGANDiscriminator(hidden=(32, 16))
  x = jax.random.uniform(jax.random.key(0), (5, 28, 28, 1))
  params = d.init(jax.random.key(1), x)['params']
  apply = lambda mdl, train, key: jax.jit(mdl.apply, static_argnames='train')(
      {'params': params}, x, train=train, rngs={'noise': jax.random.key(key)})
  # Inference ignores the rng: the same logits for any key, and without one.
  chex.assert_trees_all_equal(apply(d, False, 0), apply(d, False, 1))
  chex.assert_trees_all_close(apply(d, False, 0), d.apply({'params': params}, x), rtol=1e-6,
                              atol=1e-7)
  # Training adds noise: different keys, different logits ...
  assert float(jnp.max(jnp.abs(apply(d, True, 0) - apply(d, True, 1)))) > 0.1
  # ... and that is all it changes: zero noise in training mode is inference.
  quiet = ssl.SSGANDiscriminator(hidden=(32, 16), input_noise=0.0, hidden_noise=0.0)
  chex.assert_trees_all_close(apply(quiet, True, 0), apply(d, False, 0), rtol=1e-6)


def test_discriminator_is_weight_normed():
  # Scaling a layer's direction parameters v by 3 leaves W = s v / ||v||, hence D, unchanged.
  d = ssl.SSGANDiscriminator(hidden=(32, 16))
  x = jax.random.uniform(jax.random.key(0), (5, 28, 28, 1))
  params = d.init(jax.random.key(1), x)['params']
  scaled = {**params, 'dense_1': {**params['dense_1'], 'kernel': 3 * params['dense_1']['kernel']}}
  chex.assert_trees_all_close(d.apply({'params': scaled}, x), d.apply({'params': params}, x),
                              rtol=1e-5, atol=1e-6)


def test_data_dependent_init_standardizes_every_layer():
  d = ssl.SSGANDiscriminator(hidden=(64, 32, 16))
  x = jax.random.uniform(jax.random.key(0), (200, 28, 28, 1))
  key = jax.random.key(1)
  init = jax.jit(lambda p: ssl.data_dependent_init(d, p, x, key))
  params = init(d.init(jax.random.key(2), x)['params'])
  _, state = jax.jit(lambda p: d.apply({'params': p}, x, train=True, rngs={'noise': key},
                                       capture_intermediates=True, mutable=['intermediates']))(
                                           params)
  for _, wn in ssl.weight_norm_layer_names(d):
    pre = state['intermediates'][wn]['__call__'][0]
    chex.assert_trees_all_close(jnp.mean(pre, 0), jnp.zeros(pre.shape[1]), atol=1e-4)
    chex.assert_trees_all_close(jnp.std(pre, 0), jnp.ones(pre.shape[1]), rtol=1e-3)
  mask = ssl.hidden_scale_mask(d, params)
  frozen = [path for path, m in jax.tree_util.tree_leaves_with_path(mask) if m]
  assert [p[0].key for p in frozen] == ['wn_0', 'wn_1', 'wn_2']


# ----------------------------------------------------------------------------------- training


def _tiny_config(**train):
  config = _load_config()
  config.data.num_labels = 20
  config.model.latent_dim = 8
  config.model.g_hidden = (32,)
  config.model.d_hidden = (64, 32)
  config.train.batch_size = 20
  config.train.init_batch_size = 50
  config.train.d_ema_decay = 0.9
  config.eval.batch_size = 64
  for k, v in train.items():
    config.train[k] = v
  return config


def _load_config():
  spec = importlib.util.spec_from_file_location('ssgan_mnist',
                                                os.path.join(REPO, 'configs', 'ssgan_mnist.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.fixture(scope='module')
def mock_mnist():
  with tfds.testing.mock_data(num_examples=200):
    return sst.load_mnist(data_dir=None)


def test_paper_config_builds_the_paper_models():
  config = _load_config()
  sst.validate(config)
  g, d = sst.build_models(config)
  assert (tuple(g.hidden), tuple(d.hidden)) == ((500, 500), (1000, 500, 250, 250, 250))
  assert (d.input_noise, d.hidden_noise, config.train.b1) == (0.3, 0.5, 0.5)
  assert (config.train.g_lr, config.train.d_lr) == (1e-3, 3e-3)  # The code: 3e-3 for both.
  # The paper's 300 epochs of 60000 // 100 steps, counted in steps as every run.
  assert sst.num_steps(config) == config.train.num_steps == 300 * 600
  assert config.train.log_every == config.train.eval_every == 600  # A row an epoch.
  with config.unlocked():
    config.train.num_epochs = 2
  assert sst.num_steps(config, steps_per_epoch=600) == 1200
  with pytest.raises(ValueError, match='num_epochs=2 counts epochs'):
    sst.num_steps(config)
  config.train.lr_schedule = 'cosine'
  with pytest.raises(ValueError, match="lr_schedule='cosine'"):
    sst.validate(config)


def test_epoch_indices_cover_the_data():
  idx = sst.epoch_indices(jax.random.key(0), num_unlabeled=105, num_labeled=20, batch_size=10)
  chex.assert_shape([idx['unl'], idx['unl2'], idx['lab']], (10, 10))
  for name in ('unl', 'unl2'):  # 100 distinct rows of 105 (the partial batch is dropped).
    assert len(set(np.asarray(idx[name]).ravel().tolist())) == 100
  # 100 labeled rows = 5 permutations of the 20: each example exactly 5 times.
  np.testing.assert_array_equal(np.bincount(np.asarray(idx['lab']).ravel()), np.full(20, 5))
  assert not np.array_equal(idx['unl'], idx['unl2'])


def test_data_source_batches_are_a_function_of_the_step():
  # Epoch e's rows are epoch_indices of the key folded with its first step, e * S (S = 105 // 10
  # = 10 steps), whatever range of steps a plan is asked for: a resumed run finds its batches.
  data = {'x_unl': np.arange(105, dtype=np.float32)[:, None],
          'x_lab': np.arange(100, 120, dtype=np.float32)[:, None],
          'y_lab': np.arange(20, dtype=np.int32) % 10}
  key = jax.random.key(3)
  source = sst.data_source(data, key, batch_size=10)
  epochs = [sst.epoch_indices(jax.random.fold_in(key, 10 * e), num_unlabeled=105, num_labeled=20,
                              batch_size=10) for e in range(3)]
  for e in range(3):
    chex.assert_trees_all_equal(source.plan(10 * e, 10), epochs[e])
  across = jax.tree.map(lambda *a: np.concatenate(a)[7:25], *epochs)  # Steps 7 .. 24.
  chex.assert_trees_all_equal(source.plan(7, 18), across)
  idx = jax.tree.map(lambda a: a[4], epochs[1])
  batch = jax.jit(source.batch)(data, idx)
  np.testing.assert_array_equal(batch['x_unl'][:, 0], np.asarray(idx['unl'], np.float32))
  np.testing.assert_array_equal(batch['x_unl2'][:, 0], np.asarray(idx['unl2'], np.float32))
  np.testing.assert_array_equal(batch['x_lab'][:, 0], 100 + np.asarray(idx['lab'], np.float32))
  np.testing.assert_array_equal(batch['y_lab'], np.asarray(idx['lab']) % 10)


# About 17 s; the driver's exact behaviour stays in the default run (golden numbers, resume).
@pytest.mark.slow
def test_jitted_epochs_learn_the_labeled_set(mock_mnist):
  # Random mock images with random labels: D can only memorize its 20 labeled examples, which
  # drives the supervised loss from about ln 10 = 2.3 towards 0.
  config = _tiny_config(lr_schedule='linear', num_epochs=8)
  x, y = mock_mnist['x_train'], mock_mnist['y_train']
  idx = ssl.select_labeled(jax.random.key(0), y, num_labels=20)
  data = jax.device_put({'x_unl': x, 'x_lab': x[np.asarray(idx)], 'y_lab': y[np.asarray(idx)]})
  g, d = sst.build_models(config)
  state = sst.init_state(config, jax.random.key(1), g, d, jnp.asarray(x[:50]), steps_per_epoch=10)
  step = sst.build_train_step(config, g, d, steps_per_epoch=10, skip_nonfinite=True)
  k_perm, k_step = jax.random.split(jax.random.key(2))
  source = sst.data_source(data, k_perm, batch_size=20)
  train_epoch = jax.jit(loop.make_chunk(step, source.batch))
  start = state
  history = []
  for epoch in range(8):
    state, out = train_epoch(state, data, source.plan(10 * epoch, 10), k_step)
    history.append(float(out['mean']['loss_lab']))
  assert int(state.step) == 80  # 200 // 20 steps per epoch.
  assert history[0] > 1.5, history
  assert history[-1] < 0.3, history
  chex.assert_tree_all_finite(state)
  # The hidden weight-norm scales stay at their data-dependent values; the output scale trains.
  chex.assert_trees_all_equal(state.d_params['wn_0'], start.d_params['wn_0'])
  assert not np.allclose(state.d_params['wn_out']['dense_out/kernel/scale'],
                         start.d_params['wn_out']['dense_out/kernel/scale'])


def test_evaluate_counts_errors_on_a_constructed_case():
  # A D without hidden layers whose output kernel has unit columns e_k: logit_k = pixel k.
  d = ssl.SSGANDiscriminator(hidden=())
  params = d.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  params = flax.core.unfreeze(params)
  params['dense_out']['kernel'] = jnp.eye(784, 10)
  n, wrong = 2500, 37
  rng = np.random.default_rng(0)
  predicted = rng.integers(0, 10, n)
  images = np.zeros((n, 784), np.float32)
  images[np.arange(n), predicted] = 1.0
  labels = predicted.copy()
  flip = rng.choice(n, wrong, replace=False)
  labels[flip] = (labels[flip] + rng.integers(1, 10, wrong)) % 10
  images = images.reshape((n, 28, 28, 1))
  # 2500 = 2 full chunks of 1000 + one padded chunk: every image counts exactly once.
  evaluate = sst.make_evaluate(d, batch_size=1000)
  assert int(evaluate(params, images, labels)) == wrong
  assert int(ssl.count_errors(d.apply({'params': params}, images), labels)) == wrong
  # Padding can never add errors: a mask of padded rows that would all be wrong counts none.
  logits = jnp.eye(3)
  assert int(ssl.count_errors(logits, jnp.array([1, 1, 2]),
                              mask=jnp.array([True, False, False]))) == 1


def test_summarize_errors():
  # The paper's 93 +- 6.5 style: mean and sample std over seeds; 90, 96 -> 93 +- sqrt(18).
  s = sst.summarize_errors([90, 96])
  assert (s['mean'], s['n']) == (93.0, 2)
  np.testing.assert_allclose(s['std'], math.sqrt(18.0))
  assert sst.summarize_errors([93])['std'] == 0.0
  with pytest.raises(ValueError, match='at least one run'):
    sst.summarize_errors([])


def _rows(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def _by_step(rows):
  return {r['step']: r for r in rows}


EVAL_ONLY = {'step', 'test_errors', 'test_errors_avg'}
NOT_METRICS = EVAL_ONLY | {'steps_per_sec'}

# 21 steps of 10 an epoch (200 // 20): chunks of gcd(6, 9, 21, 21) = 3 steps, so chunks (9, 3)
# and (18, 3) cross an epoch's end. Rows at every log_every = 6 and at the last step, D's test
# errors at every eval_every = 9 (a row of their own at step 9) and the last.
STEP_RUN = dict(num_steps=21, log_every=6, eval_every=9, checkpoint_every=21, sample_every=21)


@pytest.fixture(scope='module')
def straight_run(mock_mnist, tmp_path_factory):
  """The run of STEP_RUN in one go: its workdir, returned state and metrics.jsonl rows."""
  workdir = str(tmp_path_factory.mktemp('straight'))
  rows = []
  state = sst.train_and_evaluate(_tiny_config(**STEP_RUN), workdir, mnist=mock_mnist,
                                 on_row=rows.append)
  assert rows == _rows(os.path.join(workdir, 'metrics.jsonl'))  # on_row sees what is written.
  return workdir, state, rows


def test_rows_hold_the_logged_step_chunk_means_and_test_errors(mock_mnist, straight_run):
  workdir, state, rows = straight_run
  assert isinstance(state, game.GANState) and int(state.step) == 21
  assert [r['step'] for r in rows] == [6, 9, 12, 18, 21]
  rows = _by_step(rows)
  assert set(rows[9]) == EVAL_ONLY  # Tested, not logged.
  for step in (6, 12):
    assert not set(rows[step]) & {'test_errors', 'test_errors_avg'}, step
  for step in (18, 21):
    assert {'test_errors', 'test_errors_avg'} <= set(rows[step]), step
  names = sorted(set(rows[6]) - NOT_METRICS - {k for k in rows[6] if '/' in k})
  assert {'loss_lab', 'loss_unl', 'loss_gen', 'train_err', 'd_loss', 'g_loss', 'd_nonfinite',
          'g_nonfinite'} <= set(names)
  for step in (6, 12, 18, 21):  # Every logged row: each metric, and its mean over the chunk.
    assert sorted(k for k in rows[step] if k.startswith('chunk_mean/')) == sorted(
        f'chunk_mean/{n}' for n in names), step
  assert os.path.exists(os.path.join(workdir, 'samples', 'step_21.png'))

  # The same steps one per chunk (every step logged) give the per-step metrics: a row's values
  # are its step's, its chunk_mean/<name> the mean over the chunk's steps (4, 5, 6 at step 6).
  per_step = []
  sst.train_and_evaluate(_tiny_config(num_steps=6, log_every=1, eval_every=6,
                                      checkpoint_every=6, sample_every=6),
                         mnist=mock_mnist, on_row=per_step.append)
  assert [r['step'] for r in per_step] == [1, 2, 3, 4, 5, 6]
  for n in names:
    assert rows[6][n] == pytest.approx(per_step[5][n], rel=1e-5, abs=1e-7), n
    mean = np.mean([r[n] for r in per_step[3:6]])
    assert rows[6][f'chunk_mean/{n}'] == pytest.approx(mean, rel=1e-5, abs=1e-7), n

  # The logged test errors are those of the returned state, recounted here.
  config = _tiny_config(**STEP_RUN)
  _, d = sst.build_models(config)
  evaluate = sst.make_evaluate(d, batch_size=config.eval.batch_size)
  x_test, y_test = mock_mnist['x_test'], mock_mnist['y_test']
  assert rows[21]['test_errors'] == int(evaluate(state.d_params, x_test, y_test))
  assert rows[21]['test_errors_avg'] == int(
      evaluate(sst.averaged_d_params(config, state), x_test, y_test))


def test_a_run_stopped_between_epochs_resumes_exactly(mock_mnist, tmp_path, straight_run):
  # Stopped after step 15 (mid-epoch 2, between log rows: the stop checkpoints, logs and tests
  # there), then run again on its workdir: the parameters, optimizer states and every row but
  # the stop's own equal the run in one go's, bit for bit.
  _, straight, straight_rows = straight_run
  workdir = str(tmp_path / 'resumed')
  config = _tiny_config(**STEP_RUN)
  first = sst.train_and_evaluate(config, workdir, mnist=mock_mnist,
                                 should_stop=lambda step: step == 15)
  assert int(first.step) == 15 and 15 % 10
  assert checkpoint.load(workdir)[0] == 15
  resumed = sst.train_and_evaluate(config, workdir, mnist=mock_mnist)
  chex.assert_trees_all_equal(resumed, straight)
  rows = _rows(os.path.join(workdir, 'metrics.jsonl'))
  assert [r['step'] for r in rows] == [6, 9, 12, 15, 18, 21]
  timeless = lambda r: {k: v for k, v in r.items() if k != 'steps_per_sec'}
  assert [timeless(r) for r in rows if r['step'] != 15] == [timeless(r) for r in straight_rows]


def _fixed_mnist():
  # MNIST-shaped arrays from a fixed numpy stream (not tfds' mock data, whose generator is not
  # ours to pin): 200 training images (2 labeled per class of 20 balanced labels), 100 test.
  rng = np.random.default_rng(0)
  return {'x_train': rng.random((200, 28, 28, 1), dtype=np.float32) ** 3,
          'y_train': rng.permutation(np.arange(200) % 10).astype(np.int32),
          'x_test': rng.random((100, 28, 28, 1), dtype=np.float32) ** 3,
          'y_test': rng.integers(0, 10, 100).astype(np.int32)}


# Golden numbers of two epochs of _tiny_config on _fixed_mnist, computed with the trainer before it
# ran on jaxgan.loop (its own epoch scan, make_train_epoch, at commit b10e7f6; the same for
# on_nonfinite 'stop' and 'skip'): each epoch's test errors and the means over its steps of the
# step's metrics (then the rows of epochs 1 and 2; now the chunk_mean/<name> of the rows at steps
# 10 and 20, a chunk being an epoch). They pin each epoch's batches (epoch_indices of the key
# folded with the epoch's first step) and the step key, so the README's SSGAN figures
# (benchmarks/results/semi_supervised_mnist_100_cpu*.json) stay those of this trainer. The
# parameters after the port are bit-identical on CPU; D's average differs from 'stop' at b10e7f6
# by an ulp or two (XLA fuses the step of the chunk differently), hence rtol 1e-6.
GOLDEN_ROWS = [
    {'step': 10, 'test_errors': 95, 'test_errors_avg': 92},
    {'step': 20, 'test_errors': 95, 'test_errors_avg': 94},
]
GOLDEN_MEANS = [
    {'d_fake': 0.38320273, 'd_grad_norm': 6.8569117, 'd_loss': 2.0997341, 'd_nonfinite': 0.0,
     'd_real': 0.79645950, 'g_grad_norm': 2.3859937, 'g_loss': 4.2025652, 'g_nonfinite': 0.0,
     'loss_gen': 4.2025652, 'loss_lab': 1.6000375, 'loss_unl': 0.99939364,
     'train_err': 0.51500005},
    {'d_fake': 0.14227368, 'd_grad_norm': 3.0784097, 'd_loss': 0.37758341, 'd_nonfinite': 0.0,
     'd_real': 0.73838013, 'g_grad_norm': 3.1666360, 'g_loss': 5.7062984, 'g_nonfinite': 0.0,
     'loss_gen': 5.7062984, 'loss_lab': 0.12587126, 'loss_unl': 0.50342435,
     'train_err': 0.0050000004},
]
GOLDEN_SUMS = {'g_params': 564.97430, 'd_params': 307.30224, 'd_average': 289.27227}
GOLDEN_D_OUT_BIAS = [0.81791717, -0.69517881, 0.10402296, 0.26336843, -0.31711778, 0.011522912,
                     -0.21874694, 0.37870392, 0.88305426, 0.72542232]


@pytest.mark.parametrize('on_nonfinite', ['stop', pytest.param('skip', marks=pytest.mark.slow)])
def test_two_epochs_reproduce_the_epoch_scan_golden_numbers(on_nonfinite, tmp_path):
  # In epochs (the trainer's unit before the one driver): 2 x 200 // 20 = 20 steps.
  config = _tiny_config(num_epochs=2, log_every=10, eval_every=10, on_nonfinite=on_nonfinite)
  rows = []
  state = sst.train_and_evaluate(config, str(tmp_path), mnist=_fixed_mnist(),
                                 on_epoch=rows.append)
  assert int(state.step) == 20
  # The run counts steps: num_epochs became num_steps in what it saved.
  with open(tmp_path / 'config.json') as f:
    saved = json.load(f)['train']
  assert (saved['num_steps'], saved['num_epochs']) == (20, None)
  assert checkpoint.load(str(tmp_path))[0] == 20
  for got, want, means in zip(rows, GOLDEN_ROWS, GOLDEN_MEANS, strict=True):
    names = list(means)  # The step's metrics, in the row's order.
    assert list(got) == ['step', *names, 'steps_per_sec', 'test_errors', 'test_errors_avg',
                         *[f'chunk_mean/{n}' for n in names]]
    assert {k: got[k] for k in want} == want
    for k, v in means.items():
      assert got[f'chunk_mean/{k}'] == pytest.approx(v, rel=1e-6, abs=1e-9), k
  total = lambda tree: sum(float(np.sum(np.asarray(a, np.float64))) for a in jax.tree.leaves(tree))
  sums = {'g_params': total(state.g_params), 'd_params': total(state.d_params),
          'd_average': total(sst.averaged_d_params(config, state))}
  assert sums == pytest.approx(GOLDEN_SUMS, rel=1e-6)
  # float32 after 20 steps differs between CPUs (XLA's vectorized reductions): one machine gave
  # 1.5e-7 absolute (6e-6 relative) on the element near 0.0115; the sums above stay within 1e-6.
  np.testing.assert_allclose(state.d_params['dense_out']['bias'], GOLDEN_D_OUT_BIAS, rtol=1e-5,
                             atol=1e-6)


def test_optimizer_schedules():
  config = _tiny_config(num_epochs=2, lr_schedule='linear')
  d = ssl.SSGANDiscriminator(hidden=(4,))
  params = d.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  g_opt, d_opt = sst.optimizers(config, d, steps_per_epoch=5)
  # Adam's first step moves each parameter by lr (|m_hat / sqrt(v_hat)| = 1); the linear schedule
  # is at D's 3e-3 at step 0 and 3e-3 * (1 - 5/10) after half the 10 steps. G's runs from 1e-3.
  grads = jax.tree.map(jnp.ones_like, params)
  for opt, lr in ((d_opt, 3e-3), (g_opt, 1e-3)):
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    chex.assert_trees_all_close(updates['dense_out']['bias'], jnp.full(10, -lr), rtol=1e-4)
    for _ in range(4):
      updates, state = opt.update(grads, state, params)
    updates, state = opt.update(grads, state, params)
    chex.assert_trees_all_close(updates['dense_out']['bias'], jnp.full(10, -lr / 2), rtol=1e-4)


# ------------------------------------------- equivalence with the paper's public Theano code
# openai/improved-gan, mnist_svhn_cifar10/{train_mnist_feature_matching.py, nn.py}, written out
# as plain formulas and compared with the Flax modules on perturbed (non-initial) parameters.


def _perturb(tree, key):
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  noisy = [a + 0.05 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys, strict=True)]
  return treedef.unflatten(noisy)


def test_discriminator_is_the_reference_formula():
  # nn.DenseLayer: W = theta * weight_scale / ||theta||_column, a = x W + b, then ReLU (none on
  # the output layer); no noise at test time (deterministic=True).
  d = ssl.SSGANDiscriminator(hidden=(32, 16, 8))
  x = jax.random.uniform(jax.random.key(0), (6, 28, 28, 1))
  params = _perturb(jax.jit(d.init)(jax.random.key(1), x)['params'], jax.random.key(2))

  def formula(params):
    h = x.reshape(6, 784)
    for dense, wn in ssl.weight_norm_layer_names(d):
      theta, g = params[dense]['kernel'], params[wn][f'{dense}/kernel/scale']
      h = h @ (theta * g / jnp.sqrt(jnp.sum(theta ** 2, axis=0))) + params[dense]['bias']
      h = h if dense == 'dense_out' else jnp.maximum(h, 0.0)
    return h

  got = jax.jit(lambda p: d.apply({'params': p}, x))(params)
  chex.assert_trees_all_close(got, jax.jit(formula)(params), rtol=1e-5, atol=1e-5)


def test_generator_is_the_reference_formula():
  # [Dense (no bias) -> nn.BatchNormLayer(g=None): (a - mean) / sqrt(1e-6 + var) + b ->
  # softplus] x 2 -> l2normalize(Dense): W = V * W_scale / ||V||_column -> sigmoid.
  g = ssl.SSGANGenerator(hidden=(24, 12))
  z = jax.random.uniform(jax.random.key(0), (10, 100))
  g_vars = jax.jit(g.init)(jax.random.key(1), z)
  params = _perturb(g_vars['params'], jax.random.key(2))

  def formula(params):
    h = z
    for i in range(2):
      a = h @ params[f'Dense_{i}']['kernel']
      mean, var = jnp.mean(a, 0), jnp.var(a, 0)
      h = jax.nn.softplus((a - mean) / jnp.sqrt(1e-6 + var) + params[f'BatchNorm_{i}']['bias'])
    v, s = params['Dense_2']['kernel'], params['WeightNorm_0']['Dense_2/kernel/scale']
    return jax.nn.sigmoid(h @ (v * s / jnp.sqrt(jnp.sum(v ** 2, 0))) + params['Dense_2']['bias'])

  images, _ = jax.jit(lambda p: g.apply({'params': p, 'batch_stats': g_vars['batch_stats']}, z,
                                        train=True, mutable=['batch_stats']))(params)
  chex.assert_trees_all_close(images.reshape(10, 784), jax.jit(formula)(params), rtol=1e-5,
                              atol=1e-6)


def test_weighted_unsupervised_loss_is_the_reference_loss_unl():
  # The reference: loss_unl = -0.5 mean(l_unl) + 0.5 mean(softplus(l_unl))
  #                           + 0.5 mean(softplus(l_fake)),  l = lse(logits),
  # added with weight 1 (--unlabeled_weight=1). Real rows C, B: l_unl = (ln 2, 0); fake rows A,
  # B: l_fake = (ln 3, 0). -0.5 (ln 2)/2 + 0.5 (ln 3 + ln 2)/2 + 0.5 (ln 4 + ln 2)/2 = 0.7945135,
  # which is the config's unlabeled_weight 0.5 times jaxgan's unhalved L_unsup.
  real, fake = jnp.array([ROW_C, ROW_B]), jnp.array([ROW_A, ROW_B])
  l_unl, l_fake = jax.nn.logsumexp(real, -1), jax.nn.logsumexp(fake, -1)
  reference = (-0.5 * jnp.mean(l_unl) + 0.5 * jnp.mean(jax.nn.softplus(l_unl))
               + 0.5 * jnp.mean(jax.nn.softplus(l_fake)))
  chex.assert_trees_all_close(reference, 0.7945134, rtol=1e-6)
  weight = _load_config().train.unlabeled_weight
  assert weight == 0.5
  chex.assert_trees_all_close(weight * losses.semi_supervised_discriminator_loss(real, fake),
                              reference, rtol=1e-6)


def test_first_updates_are_lr_for_every_trained_leaf_and_zero_for_hidden_scales():
  # The test below on the optimizers alone (a tiny D and G, every gradient 1): Adam's first update
  # is -lr / sqrt(1 + 1e-8) on every leaf (D's lr 3e-3, G's 1e-3), set to zero on D's hidden
  # weight-norm scales. test_two_steps_equal_the_written_out_algorithm checks that the train step
  # applies these optimizers.
  config = _tiny_config()
  d = ssl.SSGANDiscriminator(hidden=(4, 3))
  g = ssl.SSGANGenerator(hidden=(5,))
  d_params = d.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))['params']
  g_params = g.init(jax.random.key(1), jnp.zeros((2, config.model.latent_dim)))['params']
  g_opt, d_opt = sst.optimizers(config, d, steps_per_epoch=10)
  frozen = []
  for player, opt, params, lr in (('d', d_opt, d_params, 3e-3), ('g', g_opt, g_params, 1e-3)):
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = jax.jit(opt.update)(grads, opt.init(params), params)
    for path, u in jax.tree_util.tree_leaves_with_path(updates):
      hidden_scale = player == 'd' and path[0].key.startswith('wn_') and path[0].key != 'wn_out'
      frozen += [path[0].key] if hidden_scale else []
      want = 0.0 if hidden_scale else -lr / np.sqrt(1 + 1e-8)
      # rtol 1e-5: float32 rounding of Adam's bias corrections moves D's update by 6.4e-6 lr.
      np.testing.assert_allclose(u, np.full(u.shape, want, np.float32), rtol=1e-5,
                                 err_msg=f'{player} {path}')
  assert frozen == ['wn_0', 'wn_1']


# About 18 s on 2 cores (the step's compilation): the test above checks the optimizers' first
# updates, test_two_steps_equal_the_written_out_algorithm that the step applies them.
@pytest.mark.slow
def test_first_step_moves_every_trained_parameter_by_lr():
  # Adam's first step is lr * g / sqrt(g^2 + 1e-8) (nn.adam_updates): lr for every entry with
  # |g| >> 1e-4, so the largest move of each trained leaf is its player's lr (D 3e-3, G 1e-3);
  # D's hidden weight-norm scales are not trained (train_scale=False) and do not move at all.
  config = _tiny_config()
  g, d = sst.build_models(config)
  x = jax.random.uniform(jax.random.key(0), (60, 28, 28, 1)) ** 3
  state = sst.init_state(config, jax.random.key(1), g, d, x[:50], steps_per_epoch=10)
  step = sst.build_train_step(config, g, d, steps_per_epoch=10)
  batch = {'x_unl': x[:20], 'x_unl2': x[20:40], 'x_lab': x[40:], 'y_lab': jnp.arange(20) % 10}
  new, _ = jax.jit(step)(state, batch, jax.random.key(2))
  moved = lambda a, b: float(jnp.max(jnp.abs(a - b)))
  d_moves = jax.tree.map(moved, new.d_params, state.d_params)
  g_moves = jax.tree.map(moved, new.g_params, state.g_params)
  for path, m in jax.tree_util.tree_leaves_with_path(d_moves):
    hidden_scale = path[0].key.startswith('wn_') and path[0].key != 'wn_out'
    assert m == (0.0 if hidden_scale else pytest.approx(3e-3, rel=1e-4)), (path, m)
  for path, m in jax.tree_util.tree_leaves_with_path(g_moves):
    assert m == pytest.approx(1e-3, rel=1e-3), (path, m)


# ------------------------------------------------- the one train step, its average, its guards


def test_parameter_average_closed_form():
  # Parameters 1, 2, 3 after three updates of +1 from 0, decay 1/2:
  # a = 1/2, 1/2 * 1/2 + 1/2 * 2 = 5/4, 5/8 + 3/2 = 17/8; debiased by 1 - 1/8: 17/7.
  opt = optax.chain(optax.sgd(1.0), ssl.parameter_average(0.5))
  params = {'w': jnp.zeros(2)}
  state = opt.init(params)
  chex.assert_trees_all_equal(ssl.averaged_params(state[-1], params, decay=0.5), params)
  for _ in range(3):
    updates, state = opt.update({'w': -jnp.ones(2)}, state, params)
    params = optax.apply_updates(params, updates)
  chex.assert_trees_all_close(params['w'], jnp.full(2, 3.0))
  chex.assert_trees_all_close(state[-1].average['w'], jnp.full(2, 17 / 8))
  chex.assert_trees_all_close(ssl.averaged_params(state[-1], params, decay=0.5)['w'],
                              jnp.full(2, 17 / 7), rtol=1e-6)
  with pytest.raises(ValueError, match='decay must be in'):
    ssl.parameter_average(1.0)


def _reference_step(config, g, d, state, batch, key):
  """Improved GAN's step written out (noise-free D): Adam on D's L_sup + w L_unsup, then G's
  feature matching against the new D; keys as jaxgan.game's docstring gives them."""
  g_opt, d_opt = sst.optimizers(config, d, steps_per_epoch=10)
  k_shared, k_d, k_g = jax.random.split(jax.random.fold_in(key, state.step), 3)
  del k_d  # D's noise key: the noise is off.
  m, w = batch['x_unl'].shape[0], config.train.unlabeled_weight
  g_vars = {'params': state.g_params, 'batch_stats': state.g_batch_stats}
  z = jax.random.uniform(jax.random.fold_in(k_shared, 0), (m, 8))
  fake, _ = g.apply(g_vars, z, train=True, mutable=['batch_stats'])
  lse = lambda p, x: jax.nn.logsumexp(d.apply({'params': p}, x), axis=-1)

  def d_loss(p):
    lab = d.apply({'params': p}, batch['x_lab'])
    sup = jnp.mean(jax.nn.logsumexp(lab, -1) - lab[jnp.arange(lab.shape[0]), batch['y_lab']])
    l_unl, l_fake = lse(p, batch['x_unl']), lse(p, fake)
    unsup = (jnp.mean(jax.nn.softplus(l_unl) - l_unl) + jnp.mean(jax.nn.softplus(l_fake)))
    return sup + w * unsup

  updates, d_opt_state = d_opt.update(jax.grad(d_loss)(state.d_params), state.d_opt_state,
                                      state.d_params)
  d_params = optax.apply_updates(state.d_params, updates)
  features = lambda x: d.apply({'params': d_params}, x, mutable=['intermediates'])[1][
      'intermediates']['features'][0]
  real = features(batch['x_unl2'])
  z2 = jax.random.uniform(jax.random.split(k_g, 3)[0], (m, 8))

  def g_loss(p):
    fake, new = g.apply({'params': p, 'batch_stats': state.g_batch_stats}, z2, train=True,
                        mutable=['batch_stats'])
    return jnp.mean((jnp.mean(real, 0) - jnp.mean(features(fake), 0)) ** 2), new['batch_stats']

  grads, g_stats = jax.grad(g_loss, has_aux=True)(state.g_params)
  updates, g_opt_state = g_opt.update(grads, state.g_opt_state, state.g_params)
  return state.replace(step=state.step + 1, g_params=optax.apply_updates(state.g_params, updates),
                       d_params=d_params, g_opt_state=g_opt_state, d_opt_state=d_opt_state,
                       g_batch_stats=g_stats)


def test_two_steps_equal_the_written_out_algorithm():
  config = _tiny_config()
  config.model.input_noise = config.model.hidden_noise = 0.0
  g, d = sst.build_models(config)
  x = jax.random.uniform(jax.random.key(0), (100, 28, 28, 1)) ** 3
  batches = [{'x_unl': x[i:i + 20], 'x_unl2': x[i + 20:i + 40], 'x_lab': x[i + 40:i + 50],
              'y_lab': jnp.arange(10)} for i in (0, 50)]
  state = sst.init_state(config, jax.random.key(1), g, d, x[:50], steps_per_epoch=10)
  assert isinstance(state, game.GANState)  # The main trainer's state, nothing of its own.
  step = jax.jit(sst.build_train_step(config, g, d, steps_per_epoch=10))
  reference = jax.jit(lambda s, b, k: _reference_step(config, g, d, s, b, k))
  ours = theirs = state
  thetas = []
  for batch in batches:
    ours, metrics = step(ours, batch, jax.random.key(2))
    theirs = reference(theirs, batch, jax.random.key(2))
    thetas.append(theirs.d_params)
  chex.assert_trees_all_close(ours, theirs, rtol=2e-5, atol=1e-6)
  # D's average: ((1 - d) d theta_1 + (1 - d) theta_2) / (1 - d^2), d = 0.9.
  expected = jax.tree.map(lambda a, b: (0.09 * a + 0.1 * b) / 0.19, *thetas)
  chex.assert_trees_all_close(sst.averaged_d_params(config, ours), expected, rtol=1e-5,
                              atol=1e-6)
  assert float(metrics['d_loss']) == pytest.approx(
      float(metrics['loss_lab'] + 0.5 * metrics['loss_unl']), rel=1e-6)
  assert float(metrics['g_loss']) == float(metrics['loss_gen'])


def test_bad_data_and_config_are_refused_before_anything_compiles(mock_mnist):
  config = _tiny_config()
  bad = {**mock_mnist, 'x_train': mock_mnist['x_train'].copy()}
  bad['x_train'][3, 0, 0, 0] = np.nan
  with pytest.raises(ValueError, match=r"mnist\['x_train'\].*1 non-finite values"):
    sst.train_and_evaluate(config, mnist=bad)
  bad = {**mock_mnist, 'x_test': mock_mnist['x_test'] * 255.0}
  with pytest.raises(ValueError, match=r"mnist\['x_test'\].*expected \[0, 1\]$"):
    sst.train_and_evaluate(config, mnist=bad)
  bad = {**mock_mnist, 'y_test': np.full_like(mock_mnist['y_test'], 10)}
  with pytest.raises(ValueError, match=r"mnist\['y_test'\] has labels in \[10, 10\]"):
    sst.train_and_evaluate(config, mnist=bad)
  config.train.on_nonfinite = 'ignore'
  with pytest.raises(ValueError, match="on_nonfinite='ignore'"):
    sst.validate(config)
  old = _tiny_config()
  with old.unlocked():
    old.train.ema_decay = 0.9999
  with pytest.raises(ValueError, match='config.train.d_ema_decay'):
    sst.validate(old)


# 'skip' is slow-marked (about 11 s on 2 cores, its own compilation): 'stop' keeps this trainer's
# guard in the default run, and tests/test_faults.py skips a step of the GAN trainer end to end.
@pytest.mark.parametrize('on_nonfinite', ['stop', pytest.param('skip', marks=pytest.mark.slow)])
def test_a_nonfinite_step_stops_the_run_naming_it_or_is_skipped(on_nonfinite, mock_mnist,
                                                                tmp_path):
  # D's learning rate 1e30 throws its biases to ~1e30 in step 1; G's feature matching against
  # that D overflows in the same step, so step 1 is the first non-finite one.
  config = _tiny_config(num_steps=10, d_lr=1e30)
  if on_nonfinite == 'stop':
    with pytest.raises(faults.NonFiniteError,
                       match='step 1: the generator went non-finite') as stopped:
      sst.train_and_evaluate(config, str(tmp_path / 'stop'), mnist=mock_mnist)
    assert int(stopped.value.state.step) == 0  # The state after the last good step: none.
    assert not os.path.exists(tmp_path / 'stop' / 'metrics.jsonl') or not _rows(
        tmp_path / 'stop' / 'metrics.jsonl')
    return
  # Skipping: every step fails the same way and keeps the state before it, so after the 10
  # steps only the step count has moved, and every step of the chunk is flagged.
  config.train.on_nonfinite = 'skip'
  rows = []
  state = sst.train_and_evaluate(config, mnist=mock_mnist, on_row=rows.append)
  assert (rows[-1]['step'], rows[-1]['chunk_mean/g_nonfinite'], int(state.step)) == (10, 1.0, 10)
  g, d = sst.build_models(config)
  x = mock_mnist['x_train']
  k_init = jax.random.split(jax.random.PRNGKey(config.seed), 3)[1]
  rows_init = jax.random.choice(jax.random.fold_in(k_init, 1), x.shape[0], (50,), replace=False)
  start = sst.init_state(config, k_init, g, d, jnp.asarray(x[np.asarray(rows_init)]))
  chex.assert_trees_all_equal(state.d_params, jax.device_get(start.d_params))


def test_checkpoints_of_another_config_or_layout_or_damaged_are_refused(mock_mnist, tmp_path,
                                                                       straight_run):
  workdir = str(tmp_path / 'run')
  shutil.copytree(straight_run[0], workdir)  # Checkpoints of step 21.
  config = _tiny_config(**STEP_RUN)
  config.model.d_hidden = (64, 16)
  with pytest.raises(checkpoint.CheckpointMismatchError,
                     match=r'model\.d_hidden: \[64, 32\] -> \[64, 16\]'):
    sst.train_and_evaluate(config, workdir, mnist=mock_mnist)
  # Every checkpoint damaged: an error, not a fresh start.
  steps = [n for n in os.listdir(os.path.join(workdir, 'checkpoints')) if n.isdigit()]
  assert steps == ['21']
  for step in steps:
    step_dir = os.path.join(workdir, 'checkpoints', step)
    shutil.rmtree(step_dir)
    os.mkdir(step_dir)
  with pytest.raises(checkpoint.CorruptCheckpointError, match=r'steps \[21\]'):
    sst.train_and_evaluate(_tiny_config(**STEP_RUN), workdir, mnist=mock_mnist)
  # A checkpoint of the trainer before the redesign (SSGANState: gan/..., d_params_avg/...).
  mgr = checkpoint.manager(str(tmp_path / 'old'), keep=1)
  old = {'gan': {'step': np.int32(10), 'd_params': np.zeros(3, np.float32)},
         'd_params_avg': np.zeros(3, np.float32)}
  mgr.save(1, args=checkpoint.save_args(old))
  mgr.wait_until_finished()
  mgr.close()
  with pytest.raises(checkpoint.CheckpointMismatchError, match='before its redesign'):
    sst.train_and_evaluate(_tiny_config(num_epochs=1), str(tmp_path / 'old'), mnist=mock_mnist)
