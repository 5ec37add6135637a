"""The default experiment config and its validation.

Every ``configs/<name>.py`` starts from :func:`default_config` and overrides what its experiment
needs. :func:`validate` checks a config before anything compiles and names the bad field.
"""

from __future__ import annotations

import inspect

import ml_collections

from jaxgan import data, faults, game, gan, loop, losses, models, parallel


def default_config() -> ml_collections.ConfigDict:
  """Defaults shared by all experiments (DCGAN's optimizer; the seeds' U[-1, 1] latents)."""
  config = ml_collections.ConfigDict()
  # Seeds the parameters, the latents, the toy data and the image shuffle order.
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  # One of jaxgan.data.DATASETS: 'gaussian_1d', 'sine', 'ring', 'grid', 'mnist', ...
  config.data.name = 'ring'
  # TFDS only: where prepared datasets live, and whether tfds may download.
  config.data.data_dir = ml_collections.FieldReference(None, field_type=str)
  config.data.download = False
  # Toy data only: train on unit-variance coordinates (divided by jaxgan.data.TOY_SCALES) and
  # scale samples back, as benchmarks/mode_coverage.py does ('ring' and 'grid').
  config.data.standardize = False
  # Image datasets: 'device' keeps the whole training split on the device as uint8 and gathers
  # each batch there (MNIST, Fashion-MNIST and CIFAR-10 fit); 'host' keeps it in host memory and
  # sends each chunk's batches (the same batches). Toy data is always drawn on the device.
  config.data.loader = 'device'

  config.model = ml_collections.ConfigDict()
  # One of jaxgan.train.MODELS: 'gaussian_1d_mlp', 'mnist_mlp', 'mlp', 'dcgan'.
  config.model.name = 'mlp'
  config.model.latent_dim = 2
  # 'uniform' (U[-1, 1], the seeds') or 'normal'.
  config.model.latent_distribution = 'uniform'
  # 'mlp' only: hidden widths of G and D, their activation, and G's output activation.
  config.model.g_hidden = (128, 128)
  config.model.d_hidden = (128, 128)
  config.model.activation = 'relu'
  config.model.output_activation = 'identity'
  # 'dcgan' only: channels of G's last / D's first convolution.
  config.model.features = 64
  # 'mlp' only, against mode collapse (jaxgan.mode_collapse): D's minibatch-discrimination
  # kernels K (0 is off) and their dimension C (arXiv:1606.03498), the minibatch-stddev feature
  # (arXiv:1710.10196), and spectral normalization of every Dense in D (arXiv:1802.05957).
  config.model.minibatch_kernels = 0
  config.model.minibatch_kernel_dim = 8
  config.model.minibatch_stddev = False
  config.model.spectral_norm = False
  # 'mlp' only: biases start U(+-bias_scale / sqrt(fan_in)) (1 is PyTorch's default); 0 is zeros.
  config.model.bias_scale = 0.0
  # Classes K of a class-conditional GAN (labelled image data); 0 is unconditional.
  config.model.num_classes = 0
  # How a conditional D sees the label: 'input' (label maps/features appended to its input,
  # any model), 'every_layer' (maps at every convolution) or 'projection' (input maps and a
  # projection term, arXiv:1802.05637); the last two need model.name='dcgan'.
  config.model.label_conditioning = 'input'

  config.loss = ml_collections.ConfigDict()
  # One of jaxgan.losses.LOSS_PAIRS: 'minimax', 'non_saturating', 'wasserstein', ...
  config.loss.name = 'non_saturating'
  # One-sided label smoothing of the real targets (minimax D loss only), Salimans et al. 2016.
  config.loss.label_smoothing = 0.0
  # WGAN-GP's lambda (arXiv:1704.00028) and R1's gamma (arXiv:1801.04406); 0 is off.
  config.loss.gradient_penalty_weight = 0.0
  config.loss.r1_gamma = 0.0
  # Lazy R1 (StyleGAN2, arXiv:1912.04958): the penalty, this many times heavier, every this many
  # steps; 1 is every step.
  config.loss.r1_every = 1
  # WGAN weight clipping of D (arXiv:1701.07875); 0 is off.
  config.loss.weight_clip = 0.0
  # G matches the mean of D's intermediate features instead of g_loss (arXiv:1606.03498).
  config.loss.feature_matching = False
  # AC-GAN's weight of the auxiliary class cross-entropy (arXiv:1610.09585); needs
  # model.num_classes > 0 and model.name='dcgan'; 0 is off (then a conditional D sees the label).
  config.loss.auxiliary_classifier_weight = 0.0
  # Weight of the fakes' cross-entropy in D's class term: 1 is the paper's CE(real) + CE(fake),
  # 0 trains D's class head on real images only (see the README's AC-GAN study).
  config.loss.auxiliary_classifier_fake_weight = 1.0

  config.train = ml_collections.ConfigDict()
  # Generator updates; a resumed run continues until this many.
  config.train.num_steps = 2000
  # Minibatch size m of each player update (global, over all devices).
  config.train.batch_size = 64
  # 'alternating' (Algorithm 1) or 'simultaneous'.
  config.train.update_rule = 'alternating'
  # D updates per G update (k of Algorithm 1); each uses its own real minibatch.
  config.train.num_d_steps = 1
  # Against mode collapse: G's loss through K unrolled D updates (arXiv:1611.02163; 0 is off),
  # PacGAN's packing m (arXiv:1712.04086; 1 is off; must divide batch_size per device), and the
  # std of instance noise on D's inputs (arXiv:1610.04490; 0 is off).
  config.train.unrolled_steps = 0
  config.train.pack = 1
  config.train.instance_noise = 0.0
  # Adam for both players (DCGAN: lr 2e-4, b1 0.5).
  config.train.g_lr = 2e-4
  config.train.d_lr = 2e-4
  config.train.b1 = 0.5
  config.train.b2 = 0.999
  # Cosine decay of both learning rates over num_steps down to this fraction; 1.0 is constant.
  config.train.lr_final_fraction = 1.0
  # 'none', 'pmap' or 'shard_map' (data-parallel over all local devices).
  config.train.parallel = 'none'
  # Intervals in G steps; the final step always logs, samples and checkpoints.
  config.train.log_every = 100
  config.train.sample_every = 500
  config.train.checkpoint_every = 1000
  config.train.keep_checkpoints = 3
  # Samples drawn for each picture.
  config.train.num_samples = 1000
  # Decay of the moving average of G's weights used for samples and evaluation; 0 is off.
  config.train.ema_decay = 0.0
  # Evaluate (jaxgan.eval.evaluator) every this many G steps and at the end, into
  # metrics.jsonl; 0 is off. eval_num_samples generated samples against as many real ones.
  config.train.eval_every = 0
  config.train.eval_num_samples = 2000
  # How the driver runs a chunk of steps (jaxgan.loop): 'scan' (one jitted lax.scan), 'stepwise'
  # (one dispatch per step: faster for conv nets on XLA:CPU) or 'auto' (scan, except image data
  # on a CPU).
  config.train.chunk_mode = 'auto'
  # A NaN/inf loss or gradient: 'stop' (raise, naming the step and player; the last good
  # checkpoint is kept) or 'skip' (keep the state from before that step and go on).
  config.train.on_nonfinite = 'stop'
  return config


def _check_choice(field: str, value, allowed) -> None:
  if value not in allowed:
    raise ValueError(f'config.{field}={value!r} is not allowed; expected one of {sorted(allowed)}')


def _check_positive(field: str, value, *, allow_zero: bool = False) -> None:
  if not (value > 0 or (allow_zero and value == 0)):
    bound = '>= 0' if allow_zero else '> 0'
    raise ValueError(f'config.{field}={value!r} must be {bound}')


def validate(config: ml_collections.ConfigDict, *, num_devices: int = 1) -> None:
  """Raises ``ValueError`` naming the first bad field of ``config`` and its allowed values."""
  _check_choice('data.name', config.data.name, data.DATASETS)
  _check_choice('model.name', config.model.name, models.MODELS)
  _check_choice('model.latent_distribution', config.model.latent_distribution,
                gan.LATENT_DISTRIBUTIONS)
  _check_choice('loss.name', config.loss.name, losses.LOSS_PAIRS)
  _check_choice('train.update_rule', config.train.update_rule, game.UPDATE_RULES)
  _check_choice('train.parallel', config.train.parallel, parallel.PARALLEL_MODES)
  _check_choice('data.loader', config.data.get('loader', 'device'), loop.LOADERS)
  _check_choice('train.chunk_mode', config.train.get('chunk_mode', 'auto'), loop.CHUNK_MODES)
  for field in ('train.num_steps', 'train.batch_size', 'train.num_d_steps', 'train.g_lr',
                'train.d_lr', 'train.log_every', 'train.sample_every', 'train.checkpoint_every',
                'train.keep_checkpoints', 'train.num_samples', 'model.latent_dim'):
    section, name = field.split('.')
    _check_positive(field, config[section][name])
  for field in ('gradient_penalty_weight', 'r1_gamma', 'weight_clip', 'label_smoothing'):
    _check_positive(f'loss.{field}', config.loss[field], allow_zero=True)
  _check_positive('loss.r1_every', config.loss.get('r1_every', 1))
  _validate_image_options(config)
  _validate_mode_collapse(config, num_devices=num_devices)
  if config.train.update_rule == 'simultaneous' and config.train.num_d_steps != 1:
    raise ValueError(f"config.train.num_d_steps={config.train.num_d_steps} needs "
                     f"config.train.update_rule='alternating'; simultaneous takes one")
  if config.train.batch_size % num_devices:
    raise ValueError(f'config.train.batch_size={config.train.batch_size} is not divisible by '
                     f'the {num_devices} devices of config.train.parallel='
                     f'{config.train.parallel!r}')
  image = config.data.name in data.IMAGE_SHAPES
  if config.model.name == 'dcgan' and not image:
    raise ValueError(f"config.model.name='dcgan' needs an image dataset "
                     f"({sorted(data.IMAGE_SHAPES)}), got config.data.name={config.data.name!r}")
  if config.model.name == 'dcgan':
    try:
      models.dcgan_depth(data.data_shape(config.data.name))  # Raises for sizes DCGAN can't make.
    except ValueError as e:
      raise ValueError(f"config.data.name={config.data.name!r} can't be drawn by "
                       f"config.model.name='dcgan': {e}") from None
  if config.model.name == 'gaussian_1d_mlp' and config.data.name != 'gaussian_1d':
    raise ValueError(f"config.model.name='gaussian_1d_mlp' takes 1-D data "
                     f"(config.data.name='gaussian_1d'), got {config.data.name!r}")
  if config.model.name == 'mnist_mlp' and data.data_shape(config.data.name) != (28, 28, 1):
    raise ValueError(f"config.model.name='mnist_mlp' takes 28x28x1 images, got "
                     f"config.data.name={config.data.name!r} of shape "
                     f"{data.data_shape(config.data.name)}")
  _validate_more(config)


def _validate_image_options(config: ml_collections.ConfigDict) -> None:
  """Conditional models, AC-GAN, EMA and periodic evaluation; absent fields mean off."""
  num_classes = config.model.get('num_classes', 0)
  aux = config.loss.get('auxiliary_classifier_weight', 0.0)
  ema_decay = config.train.get('ema_decay', 0.0)
  _check_positive('model.num_classes', num_classes, allow_zero=True)
  _check_positive('loss.auxiliary_classifier_weight', aux, allow_zero=True)
  _check_positive('loss.auxiliary_classifier_fake_weight',
                  config.loss.get('auxiliary_classifier_fake_weight', 1.0), allow_zero=True)
  _check_positive('train.eval_every', config.train.get('eval_every', 0), allow_zero=True)
  if config.train.get('eval_every', 0):
    _check_positive('train.eval_num_samples', config.train.eval_num_samples)
  if not 0 <= ema_decay < 1:
    raise ValueError(f'config.train.ema_decay={ema_decay!r} must be in [0, 1)')
  if num_classes and config.data.name not in data.NUM_CLASSES:
    raise ValueError(f'config.model.num_classes={num_classes} needs labelled data '
                     f'({sorted(data.NUM_CLASSES)}), got config.data.name={config.data.name!r}')
  if num_classes and num_classes != data.NUM_CLASSES[config.data.name]:
    raise ValueError(f'config.model.num_classes={num_classes} but {config.data.name!r} has '
                     f'{data.NUM_CLASSES[config.data.name]} classes')
  if aux and not num_classes:
    raise ValueError(f'config.loss.auxiliary_classifier_weight={aux} needs '
                     f'config.model.num_classes > 0')
  conditioning = config.model.get('label_conditioning', 'input')
  _check_choice('model.label_conditioning', conditioning, ('input', 'every_layer', 'projection'))
  if num_classes and conditioning != 'input' and config.model.name != 'dcgan':
    raise ValueError(f'config.model.label_conditioning={conditioning!r} needs '
                     f"config.model.name='dcgan', got {config.model.name!r}")
  if aux and config.model.name != 'dcgan':
    raise ValueError(f"config.loss.auxiliary_classifier_weight={aux} (AC-GAN) needs "
                     f"config.model.name='dcgan', got {config.model.name!r}")


def _check_int(field: str, value) -> None:
  if isinstance(value, bool) or not isinstance(value, int):
    raise ValueError(f'config.{field}={value!r} must be an int')


def _validate_more(config: ml_collections.ConfigDict) -> None:
  """The rest of :func:`validate`: more choices, integer fields, and ranges."""
  _check_choice('train.on_nonfinite', config.train.on_nonfinite, faults.ON_NONFINITE)
  _check_choice('model.activation', config.model.activation, models.ACTIVATIONS)
  _check_choice('model.output_activation', config.model.output_activation, models.ACTIVATIONS)
  for field in ('seed', 'train.num_steps', 'train.batch_size', 'train.num_d_steps',
                'train.log_every', 'train.sample_every', 'train.checkpoint_every',
                'train.keep_checkpoints', 'train.num_samples', 'model.latent_dim',
                'model.features'):
    value = config
    for name in field.split('.'):
      value = value[name]
    _check_int(field, value)
  _check_positive('model.features', config.model.features)
  for field in ('b1', 'b2'):
    value = config.train[field]
    if not 0 <= value < 1:
      raise ValueError(f'config.train.{field}={value!r} must be in [0, 1)')
  if not 0 <= config.loss.label_smoothing < 1:
    raise ValueError(f'config.loss.label_smoothing={config.loss.label_smoothing!r} must be in '
                     f'[0, 1)')
  d_loss_fn = losses.get_loss_pair(config.loss.name)[0]
  if (config.loss.label_smoothing
      and 'label_smoothing' not in inspect.signature(d_loss_fn).parameters):
    raise ValueError(f'config.loss.label_smoothing={config.loss.label_smoothing!r} needs a loss '
                     f"whose D loss smooths labels ('minimax', 'non_saturating'), got "
                     f'config.loss.name={config.loss.name!r}')
  if config.data.get('standardize', False) and config.data.name not in data.TOY_SCALES:
    raise ValueError(f'config.data.standardize=True needs a toy dataset with a known scale '
                     f'({sorted(data.TOY_SCALES)}), got config.data.name={config.data.name!r}')
  for field in ('g_hidden', 'd_hidden'):
    widths = config.model[field]
    if not widths or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0
                             for w in widths):
      raise ValueError(f'config.model.{field}={widths!r} must be a non-empty tuple of ints > 0')


def _validate_mode_collapse(config: ml_collections.ConfigDict, *, num_devices: int) -> None:
  """The fields of :mod:`jaxgan.mode_collapse` (absent fields take their defaults)."""
  model, train = config.model, config.train
  for field, value in (('model.minibatch_kernels', model.get('minibatch_kernels', 0)),
                       ('train.unrolled_steps', train.get('unrolled_steps', 0)),
                       ('train.instance_noise', train.get('instance_noise', 0.0))):
    _check_positive(field, value, allow_zero=True)
  _check_positive('model.minibatch_kernel_dim', model.get('minibatch_kernel_dim', 8))
  _check_positive('model.bias_scale', model.get('bias_scale', 0.0), allow_zero=True)
  final = train.get('lr_final_fraction', 1.0)
  if not 0 <= final <= 1:
    raise ValueError(f'config.train.lr_final_fraction={final!r} must be in [0, 1]')
  pack = train.get('pack', 1)
  if not (isinstance(pack, int) and pack >= 1):
    raise ValueError(f'config.train.pack={pack!r} must be an integer >= 1')
  if (train.batch_size // max(num_devices, 1)) % pack:
    raise ValueError(f'config.train.pack={pack} must divide the per-device batch of '
                     f'{train.batch_size // max(num_devices, 1)} (config.train.batch_size='
                     f'{train.batch_size} over {num_devices} devices)')
  uses_d_options = (model.get('minibatch_kernels', 0) or model.get('minibatch_stddev', False)
                    or model.get('spectral_norm', False))
  if uses_d_options and model.name != 'mlp':
    raise ValueError(f"config.model.minibatch_kernels/minibatch_stddev/spectral_norm need "
                     f"config.model.name='mlp', got {model.name!r}")
  num_classes = model.get('num_classes', 0)
  unconditional_only = {'train.pack': pack, 'loss.feature_matching':
                        config.loss.get('feature_matching', False),
                        'train.unrolled_steps': train.get('unrolled_steps', 0),
                        'model.minibatch_kernels': model.get('minibatch_kernels', 0),
                        'model.minibatch_stddev': model.get('minibatch_stddev', False),
                        'model.spectral_norm': model.get('spectral_norm', False)}
  used = {k: v for k, v in unconditional_only.items() if v and not (k == 'train.pack' and v == 1)}
  if num_classes and used:
    raise ValueError(f'config.model.num_classes={num_classes} (a conditional GAN) does not '
                     f'support the unconditional mode-collapse options {used}')
