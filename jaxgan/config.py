"""The default experiment config and its validation.

Every ``configs/<name>.py`` starts from :func:`default_config` and overrides what its experiment
needs. :func:`validate` checks a config before anything compiles and names the bad field.
"""

from __future__ import annotations

import ml_collections

from jaxgan import data, losses


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

  config.loss = ml_collections.ConfigDict()
  # One of jaxgan.losses.LOSS_PAIRS: 'minimax', 'non_saturating', 'wasserstein', ...
  config.loss.name = 'non_saturating'
  # One-sided label smoothing of the real targets (minimax D loss only), Salimans et al. 2016.
  config.loss.label_smoothing = 0.0
  # WGAN-GP's lambda (arXiv:1704.00028) and R1's gamma (arXiv:1801.04406); 0 is off.
  config.loss.gradient_penalty_weight = 0.0
  config.loss.r1_gamma = 0.0
  # WGAN weight clipping of D (arXiv:1701.07875); 0 is off.
  config.loss.weight_clip = 0.0
  # G matches the mean of D's intermediate features instead of g_loss (arXiv:1606.03498).
  config.loss.feature_matching = False

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
  from jaxgan import train  # Imported here: train imports this module's neighbours.
  _check_choice('data.name', config.data.name, data.DATASETS)
  _check_choice('model.name', config.model.name, train.MODELS)
  _check_choice('model.latent_distribution', config.model.latent_distribution,
                train.LATENT_DISTRIBUTIONS)
  _check_choice('loss.name', config.loss.name, losses.LOSS_PAIRS)
  _check_choice('train.update_rule', config.train.update_rule, train.UPDATE_RULES)
  _check_choice('train.parallel', config.train.parallel, train.PARALLEL_MODES)
  for field in ('train.num_steps', 'train.batch_size', 'train.num_d_steps', 'train.g_lr',
                'train.d_lr', 'train.log_every', 'train.sample_every', 'train.checkpoint_every',
                'train.keep_checkpoints', 'train.num_samples', 'model.latent_dim'):
    section, name = field.split('.')
    _check_positive(field, config[section][name])
  for field in ('gradient_penalty_weight', 'r1_gamma', 'weight_clip', 'label_smoothing'):
    _check_positive(f'loss.{field}', config.loss[field], allow_zero=True)
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
    from jaxgan import models
    models.dcgan_depth(data.data_shape(config.data.name))  # Raises for sizes DCGAN can't make.
  if config.model.name == 'gaussian_1d_mlp' and config.data.name != 'gaussian_1d':
    raise ValueError(f"config.model.name='gaussian_1d_mlp' takes 1-D data "
                     f"(config.data.name='gaussian_1d'), got {config.data.name!r}")
  if config.model.name == 'mnist_mlp' and data.data_shape(config.data.name) != (28, 28, 1):
    raise ValueError(f"config.model.name='mnist_mlp' takes 28x28x1 images, got "
                     f"config.data.name={config.data.name!r} of shape "
                     f"{data.data_shape(config.data.name)}")


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
