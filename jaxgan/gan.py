"""The GAN as a game: latents, the two players' objectives, and the GAN's train step.

The standard GAN (Goodfellow et al. 2014, arXiv:1406.2661) is two objectives for
:func:`jaxgan.game.make_train_step`:

.. math::
  L_D(\theta_D) = \\ell_D\big(D(v(x)),\\ D(v(G(z)))\big) + \textstyle\\sum_t \text{term}_t
  \\qquad L_G(\theta_G) = \\ell_G\big(D(v(G(z)))\big)

with the loss pair ``(l_D, l_G)`` of :mod:`jaxgan.losses` on D's logits, D's view ``v`` of its
inputs (PacGAN packing, instance noise: :func:`jaxgan.mode_collapse.discriminator_view`), D's
extra terms (WGAN-GP, R1, lazy R1: :mod:`jaxgan.penalties`), AC-GAN's class cross-entropies
(:mod:`jaxgan.conditional`), and G's alternatives (feature matching, a look-ahead D:
:mod:`jaxgan.mode_collapse`). Each part lives in its module and knows nothing of the others;
:func:`make_train_step` assembles them from keywords, and a new GAN is a new pair of objectives
(README, "A tour of the API").

Randomness: D's objective draws its fakes ``(z, y)`` from ``shared_key`` and everything else
(views, penalties) from ``key``; G's draws its fakes from ``shared_key`` and its views from
``key``. Latents, labels and every other per-example draw are made for the global batch
(:func:`jaxgan.rng.local_rows`), so N devices compute what one device computes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxgan import conditional, game, losses, mode_collapse, penalties, rng

LATENT_DISTRIBUTIONS = ('uniform', 'normal')


def sample_latent(key: jax.Array, num: int, latent_dim: int,
                  distribution: str = 'uniform') -> jax.Array:
  """Latents ``z`` of shape ``(num, latent_dim)``: U[-1, 1] (the seeds' choice) or N(0, I)."""
  if distribution == 'uniform':
    return jax.random.uniform(key, (num, latent_dim), minval=-1.0, maxval=1.0)
  if distribution == 'normal':
    return jax.random.normal(key, (num, latent_dim))
  raise ValueError(f'unknown latent distribution {distribution!r}; '
                   f'expected one of {list(LATENT_DISTRIBUTIONS)}')


def sample_labels(key: jax.Array, num: int, num_classes: int) -> jax.Array:
  """Class labels drawn uniformly from ``{0, ..., num_classes - 1}``, shape ``(num,)`` int32."""
  return jax.random.randint(key, (num,), 0, num_classes)


def apply_model(model: nn.Module, params, batch_stats, x, *, train: bool, labels=None):
  """Runs ``model`` and returns ``(output, new_batch_stats)``; stats change only when training.

  ``labels`` (``(B,)`` ints) is passed on to class-conditional models (:mod:`jaxgan.conditional`).
  """
  variables = {'params': params}
  kwargs = {} if labels is None else {'labels': labels}
  if batch_stats:
    variables['batch_stats'] = batch_stats
    if train:
      out, updates = model.apply(variables, x, train=True, mutable=['batch_stats'], **kwargs)
      return out, updates['batch_stats']
  return model.apply(variables, x, train=train, **kwargs), batch_stats


def init_state(key: jax.Array, *, generator: nn.Module, discriminator: nn.Module,
               g_optimizer: optax.GradientTransformation,
               d_optimizer: optax.GradientTransformation, latent_dim: int,
               data_shape: tuple[int, ...], pack: int = 1, ema: bool = False) -> game.GANState:
  """Initializes both players' variables and optimizer states at step 0.

  With ``pack > 1`` (PacGAN) D is built for inputs of ``packed_shape(data_shape, pack)``.
  With ``ema``, ``ema_g_params`` starts as a copy of ``g_params``. :func:`make_train_step`
  checks, before it compiles, that the state it is given was made with its ``pack`` and
  ``ema_decay``.
  """
  k_g, k_d = jax.random.split(key)
  g_vars = generator.init(k_g, jnp.zeros((1, latent_dim)), train=False)
  d_vars = discriminator.init(
      k_d, jnp.zeros((1, *mode_collapse.packed_shape(data_shape, pack))), train=False)
  return game.GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_vars['params'], d_params=d_vars['params'],
      g_opt_state=g_optimizer.init(g_vars['params']),
      d_opt_state=d_optimizer.init(d_vars['params']),
      g_batch_stats=g_vars.get('batch_stats', {}), d_batch_stats=d_vars.get('batch_stats', {}),
      ema_g_params=jax.tree.map(jnp.copy, g_vars['params']) if ema else {})


def make_generate(generator: nn.Module, *, latent_dim: int, latent_distribution: str = 'uniform',
                  num_classes: int = 0, axis_name: str | None = None) -> Callable:
  """``generate(g_params, g_batch_stats, key, num) -> ((fakes, g_stats), labels)``, G training.

  ``z`` comes from ``key`` and a conditional G's labels from ``fold_in(key, 1)``, both drawn for
  the global batch (``num`` rows per device); ``labels`` is None when unconditional.
  """
  sample_z = functools.partial(sample_latent, latent_dim=latent_dim,
                               distribution=latent_distribution)
  sample_y = functools.partial(sample_labels, num_classes=num_classes)

  def generate(g_params, g_batch_stats, key, num):
    z = rng.local_rows(key, sample_z, num, axis_name)
    labels = (rng.local_rows(jax.random.fold_in(key, 1), sample_y, num, axis_name)
              if num_classes else None)
    return apply_model(generator, g_params, g_batch_stats, z, train=True, labels=labels), labels

  return generate


def reports_probabilities(d_loss_fn: Callable) -> bool:
  """Whether ``d_loss_fn`` reads D's outputs as logits of a probability (the cross-entropy
  losses); then ``d_real``/``d_fake`` report mean sigmoids, else raw mean critic values."""
  return getattr(d_loss_fn, 'func', d_loss_fn) is losses.minimax_discriminator_loss


def make_discriminator_loss(discriminator: nn.Module, *, d_loss_fn: Callable,
                            view: Callable | None = None, terms: Sequence[Callable] = (),
                            class_weight: float = 0.0, class_fake_weight: float = 1.0
                            ) -> Callable:
  """D's loss on given real and fake batches (the objective without drawing the fakes).

  Returns ``loss_on(d_params, d_batch_stats, step, real, fake, key, real_labels=None,
  fake_labels=None) -> (loss, (d_batch_stats, metrics))`` with ``loss = d_loss_fn(D(v(real)),
  D(v(fake))) [+ class_weight * (CE(real) + class_fake_weight * CE(fake))]
  + sum(term(d_fn, v(real), v(fake), key, step))``; ``v = view`` with keys
  ``split(fold_in(key, 1))``; ``d_fn`` is D's logit at its current statistics, the real labels
  given. Metrics: ``d_real``/``d_fake`` (mean sigmoid of the logits, or the raw mean for critic
  losses, :func:`reports_probabilities`), AC-GAN's ``d_class_loss``/``d_class_accuracy``.
  """
  show = nn.sigmoid if reports_probabilities(d_loss_fn) else (lambda logits: logits)

  def loss_on(d_params, d_batch_stats, step, real, fake, key, real_labels=None,
              fake_labels=None):
    if view is not None:
      k_real, k_fake = jax.random.split(jax.random.fold_in(key, 1))
      real, fake = view(real, k_real), view(fake, k_fake)
    real_out, d_stats = apply_model(discriminator, d_params, d_batch_stats, real, train=True,
                                    labels=real_labels)
    fake_out, d_stats = apply_model(discriminator, d_params, d_stats, fake, train=True,
                                    labels=fake_labels)
    (real_logits, real_class), (fake_logits, fake_class) = (
        conditional.split_logits(real_out), conditional.split_logits(fake_out))
    loss = d_loss_fn(real_logits, fake_logits)
    metrics = {}
    if class_weight:
      class_loss, metrics = conditional.discriminator_class_loss(
          real_class, fake_class, real_labels, fake_labels, fake_weight=class_fake_weight)
      loss += class_weight * class_loss
    d_fn = lambda x: conditional.split_logits(apply_model(
        discriminator, d_params, d_stats, x, train=True, labels=real_labels)[0])[0]
    for term in terms:
      loss += term(d_fn, real, fake, key, step)
    metrics = {'d_real': jnp.mean(show(real_logits)), 'd_fake': jnp.mean(show(fake_logits)),
               **metrics}
    return loss, (d_stats, metrics)

  return loss_on


def discriminator_objective(loss_on: Callable, generate: Callable, *, num_classes: int = 0
                            ) -> game.Objective:
  """D's objective: :func:`make_discriminator_loss`'s ``loss_on`` on ``batch['x']`` (and
  ``batch['label']`` when conditional) and fakes drawn with ``shared_key``, held constant."""

  def objective(d_params, state: game.GANState, batch, *, key, shared_key):
    real = batch['x']
    real_labels = _labels(batch, num_classes)
    (fake, _), fake_labels = generate(state.g_params, state.g_batch_stats, shared_key,
                                      real.shape[0])
    return loss_on(d_params, state.d_batch_stats, state.step, real, lax.stop_gradient(fake), key,
                   real_labels, fake_labels)

  return objective


def generator_objective(discriminator: nn.Module, generate: Callable, *, g_loss_fn: Callable,
                        view: Callable | None = None, class_weight: float = 0.0,
                        feature_matching: bool = False, lookahead: Callable | None = None,
                        axis_name: str | None = None) -> game.Objective:
  """G's objective: ``g_loss_fn(D(v(G(z))))`` [+ AC-GAN's ``class_weight * CE(fake)``].

  With ``feature_matching`` G minimizes :func:`jaxgan.mode_collapse.feature_matching_loss`
  between D's features of ``v(batch['x'])`` and ``v(G(z))`` instead. ``lookahead`` (see
  :func:`jaxgan.mode_collapse.unrolled_discriminator`) replaces D by its look-ahead copy,
  differentiated through.
  """
  view = view or (lambda x, key: x)

  def objective(g_params, state: game.GANState, batch, *, key, shared_key):
    real = batch['x']
    (fake, g_stats), fake_labels = generate(g_params, state.g_batch_stats, shared_key,
                                            real.shape[0])
    d_params, d_stats = state.d_params, state.d_batch_stats
    if lookahead is not None:
      d_params, _, d_stats = lookahead(state.d_params, state.d_opt_state, state.d_batch_stats,
                                       state.step, real, fake, key)
    k_real, k_fake = jax.random.split(jax.random.fold_in(key, 1))
    if feature_matching:
      loss = mode_collapse.feature_matching_objective(
          discriminator, d_params, d_stats, view(real, k_real), view(fake, k_fake),
          axis_name=axis_name)
      return loss, (g_stats, {})
    fake_out, _ = apply_model(discriminator, d_params, d_stats, view(fake, k_fake), train=True,
                              labels=fake_labels)
    fake_logits, fake_class = conditional.split_logits(fake_out)
    loss = g_loss_fn(fake_logits)
    metrics = {}
    if class_weight:
      class_loss, metrics = conditional.generator_class_loss(fake_class, fake_labels)
      loss += class_weight * class_loss
    return loss, (g_stats, metrics)

  return objective


def _labels(batch, num_classes: int):
  if not num_classes:
    return None
  if 'label' not in batch:
    raise ValueError(f'num_classes={num_classes} needs labelled batches; the batch has only '
                     f'{sorted(batch)}')
  return batch['label']


def make_train_step(*, generator: nn.Module, discriminator: nn.Module,
                    g_optimizer: optax.GradientTransformation,
                    d_optimizer: optax.GradientTransformation,
                    d_loss_fn: Callable = losses.minimax_discriminator_loss,
                    g_loss_fn: Callable = losses.non_saturating_generator_loss,
                    latent_dim: int, latent_distribution: str = 'uniform',
                    update_rule: str = 'alternating', num_d_steps: int = 1,
                    gradient_penalty_weight: float = 0.0, r1_gamma: float = 0.0,
                    r1_every: int = 1, weight_clip: float | None = None,
                    axis_name: str | None = None,
                    feature_matching: bool = False, unrolled_steps: int = 0, pack: int = 1,
                    instance_noise: float = 0.0, skip_nonfinite: bool = False,
                    num_classes: int = 0, auxiliary_classifier_weight: float = 0.0,
                    auxiliary_classifier_fake_weight: float = 1.0, ema_decay: float = 0.0):
  """The GAN's ``train_step(state, batch, key) -> (state, metrics)``, assembled from parts.

  Builds the objectives above from the parts the keywords name and hands them to
  :func:`jaxgan.game.make_train_step` (which owns ``update_rule``, ``num_d_steps``, ``axis_name``,
  ``skip_nonfinite`` and ``ema_decay``).

  Args:
    generator, discriminator: flax modules (see :mod:`jaxgan.models` for the conventions).
    g_optimizer, d_optimizer: one optax transformation per player.
    d_loss_fn: ``(real_logits, fake_logits) -> scalar``, minimized by D.
    g_loss_fn: ``fake_logits -> scalar``, minimized by G.
    latent_dim, latent_distribution: the prior of ``z`` (see :func:`sample_latent`).
    update_rule, num_d_steps: the update rule (:mod:`jaxgan.game`). With ``k`` D-steps the batch
      holds ``k * m`` examples and D step ``j`` uses rows ``j, j + k, j + 2k, ...``.
    gradient_penalty_weight: lambda of WGAN-GP (:func:`jaxgan.penalties.gradient_penalty_term`).
    r1_gamma, r1_every: R1 and lazy R1 (:func:`jaxgan.penalties.r1_term`).
    weight_clip: clip D's weights to ``[-c, c]`` after each update (WGAN); None or 0 is off.
    axis_name: the device axis when run under ``pmap``/``shard_map``; None on one device.
    feature_matching: G matches D's mean features (arXiv:1606.03498).
    unrolled_steps: ``K`` look-ahead D updates that G is trained against (arXiv:1611.02163).
      Differentiating through Adam needs ``optax.adam(..., eps_root=1e-8)``.
    pack: PacGAN's ``m`` (arXiv:1712.04086); the state must come from ``init_state(...,
      pack=pack)``.
    instance_noise: std of Gaussian noise on every input of D (arXiv:1610.04490); 0 is off.
    skip_nonfinite: skip NaN/inf steps (:func:`jaxgan.game.make_train_step`).
    num_classes: ``K > 0`` trains a class-conditional GAN (:mod:`jaxgan.conditional`).
    auxiliary_classifier_weight: AC-GAN's ``lambda`` (arXiv:1610.09585); needs ``num_classes``.
    auxiliary_classifier_fake_weight: the weight of the fakes' cross-entropy inside D's class
      term (:func:`jaxgan.conditional.discriminator_class_loss`; 1 is the paper's).
    ema_decay: decay of the moving average of G's weights; the state must come from
      ``init_state(..., ema=True)``.

  Returns:
    ``train_step``. Metrics: ``d_loss``, ``g_loss``, ``d_real``/``d_fake`` (mean D(x) and
    D(G(z)) for the cross-entropy losses; the mean critic value for the others),
    ``d_grad_norm``, ``g_grad_norm``, ``d_nonfinite``/``g_nonfinite``, and with an auxiliary
    classifier ``d_class_loss``, ``g_class_loss`` and ``d_class_accuracy``.
  """
  for name, value, ok in (('unrolled_steps', unrolled_steps, unrolled_steps >= 0),
                          ('pack', pack, pack >= 1), ('r1_every', r1_every, r1_every >= 1),
                          ('instance_noise', instance_noise, instance_noise >= 0)):
    if not ok:
      bound = '>= 1' if name in ('pack', 'r1_every') else '>= 0'
      raise ValueError(f'{name} must be {bound}, got {value!r}')
  if auxiliary_classifier_fake_weight < 0:
    raise ValueError(f'auxiliary_classifier_fake_weight must be >= 0, got '
                     f'{auxiliary_classifier_fake_weight}')
  if num_classes < 0 or auxiliary_classifier_weight < 0:
    raise ValueError(f'need num_classes >= 0 and auxiliary_classifier_weight >= 0; got '
                     f'{num_classes}, {auxiliary_classifier_weight}')
  if auxiliary_classifier_weight and not num_classes:
    raise ValueError(f'auxiliary_classifier_weight={auxiliary_classifier_weight} needs '
                     f'num_classes > 0')
  if num_classes and (pack > 1 or feature_matching or unrolled_steps):
    raise ValueError(f'pack={pack}, feature_matching={feature_matching} and '
                     f'unrolled_steps={unrolled_steps} are for unconditional models; '
                     f'num_classes={num_classes} needs pack=1, no feature matching, no unrolling')
  view = mode_collapse.discriminator_view(pack=pack, instance_noise=instance_noise,
                                          axis_name=axis_name)
  terms = []
  if gradient_penalty_weight:
    terms.append(penalties.gradient_penalty_term(gradient_penalty_weight, axis_name=axis_name))
  if r1_gamma:
    terms.append(penalties.r1_term(r1_gamma, every=r1_every))
  project = (functools.partial(penalties.clip_weights, clip_value=weight_clip)
             if weight_clip else None)
  generate = make_generate(generator, latent_dim=latent_dim,
                           latent_distribution=latent_distribution, num_classes=num_classes,
                           axis_name=axis_name)
  d_loss = make_discriminator_loss(discriminator, d_loss_fn=d_loss_fn, view=view, terms=terms,
                                   class_weight=auxiliary_classifier_weight,
                                   class_fake_weight=auxiliary_classifier_fake_weight)
  lookahead = (mode_collapse.unrolled_discriminator(d_loss, d_optimizer, unrolled_steps,
                                                    project=project, axis_name=axis_name)
               if unrolled_steps else None)
  step = game.make_train_step(
      g_objective=generator_objective(
          discriminator, generate, g_loss_fn=g_loss_fn, view=view,
          class_weight=auxiliary_classifier_weight, feature_matching=feature_matching,
          lookahead=lookahead, axis_name=axis_name),
      d_objective=discriminator_objective(d_loss, generate, num_classes=num_classes),
      g_optimizer=g_optimizer, d_optimizer=d_optimizer, update_rule=update_rule,
      num_d_steps=num_d_steps,
      axis_name=axis_name, d_projection=project, ema_decay=ema_decay,
      skip_nonfinite=skip_nonfinite)

  def train_step(state: game.GANState, batch, key):
    _check_discriminator_input(discriminator, state.d_params, batch['x'].shape[1:], pack)
    return step(state, batch, key)

  return train_step


def _check_discriminator_input(discriminator: nn.Module, d_params, data_shape, pack: int):
  """Raises a ``ValueError`` (at trace time) if D's parameters were built for other inputs."""
  shape = mode_collapse.packed_shape(tuple(data_shape), pack)
  expected = jax.eval_shape(lambda: discriminator.init(
      jax.random.PRNGKey(0), jnp.zeros((1, *shape)), train=False)['params'])
  shapes = lambda tree: jax.tree.map(lambda x: tuple(jnp.shape(x)), tree)
  if shapes(expected) != shapes(d_params):
    raise ValueError(f"the state's D parameters were not built for inputs of shape {shape} "
                     f'(data {tuple(data_shape)} in packs of {pack}): make the state with '
                     f'init_state(..., pack={pack}, data_shape={tuple(data_shape)})')


def standing_statistics(generator: nn.Module, params, batch_stats, key: jax.Array, *,
                        latent_dim: int, latent_distribution: str = 'uniform',
                        num_classes: int = 0, num_batches: int = 16, batch_size: int = 64):
  """Batch-norm statistics for G's ``params``, averaged over ``num_batches`` batches of latents.

  The "standing statistics" of BigGAN (Brock et al. 2018, arXiv:1809.11096, Appendix C.1): a
  moving average of G's weights has no running statistics of its own (the raw G's belong to
  other weights), so they are recomputed by running the averaged G in training mode on fresh
  latents and averaging each batch's statistics. Flax's ``BatchNorm`` updates ``r <- m r + (1 -
  m) s``; one update from ``r = 0`` and one from ``r = 1`` give ``m`` and hence ``s``, so this
  works for any momentum. Returns ``batch_stats`` unchanged if it is empty.
  """
  if not batch_stats:
    return batch_stats
  zeros = jax.tree.map(jnp.zeros_like, batch_stats)
  ones = jax.tree.map(jnp.ones_like, batch_stats)
  generate = make_generate(generator, latent_dim=latent_dim,
                           latent_distribution=latent_distribution, num_classes=num_classes)

  def one(key):  # The same key: the same latents (and labels) from both starting points.
    from_zeros = generate(params, zeros, key, batch_size)[0][1]
    from_ones = generate(params, ones, key, batch_size)[0][1]
    return jax.tree.map(lambda a, b: a / (1.0 - (b - a)), from_zeros, from_ones)

  stats = lax.map(one, jax.random.split(key, num_batches))
  return jax.tree.map(lambda s: jnp.mean(s, axis=0), stats)
