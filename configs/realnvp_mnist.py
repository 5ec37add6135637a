"""Real NVP (Dinh et al. 2016, arXiv:1605.08803) on uniformly dequantized 8-bit MNIST.

The multi-scale flow of :mod:`jaxgan.realnvp`: at 28x28x1 three checkerboard affine couplings, a
squeeze to 14x14x4, three channel couplings, half the channels factored out, then four
checkerboard couplings at 14x14x2; each coupling's ``s, t`` from two 3x3 convolutions of 32
channels (the paper's ResNets of 64 features, scaled to a CPU). The data are the integer levels
``v`` dequantized every step, ``u = v + U[0, 1)``, then mapped to logit space,
``y = logit(alpha + (1 - 2 alpha) u / 256)`` with alpha 0.05; the reported bits per dimension are
of ``u``, the logit transform's log-determinant included (:func:`jaxgan.realnvp.bits_per_dim`),
not of ``y``. Adam 1e-3 cosine-decayed to 1e-4, the paper's L2 weight cost 5e-5, batch 64. Every
``eval_every`` steps the 10,000 test images (dequantized once) give ``test_bits_per_dim`` and
``test_nll`` (nats) in ``metrics.jsonl``. ``samples/step_<N>.png``: 64 samples, ``z ~ N(0, I)``
through the inverse, quantized.

    python -m jaxgan.main --config=configs/realnvp_mnist.py --workdir=runs/realnvp_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Published: 1.06 bits/dim (Real NVP on MNIST as tabulated in FFJORD, arXiv:1810.01367, Table 2;
a GPU-trained network many times this size). This CPU (2 cores): see the steps/s in
``metrics.jsonl``; what the 30-minute budget reaches is measured by
``python benchmarks/generative_families.py`` (``benchmarks/results/generative_families.json``).
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  # The family: jaxgan.main dispatches on it (jaxgan.density_train.FAMILIES).
  config.trainer = 'realnvp'
  # Seeds the initial weights, the batch order and the dequantization noise.
  config.seed = 0
  config.data = ml_collections.ConfigDict()
  # A 28x28 greyscale TFDS dataset: 'mnist' or 'fashion_mnist'.
  config.data.name = 'mnist'
  # A TFDS data_dir holding the prepared dataset (None: TFDS's default).
  config.data.data_dir = ml_collections.config_dict.placeholder(str)
  # Whether TFDS may download the dataset.
  config.data.download = False
  config.model = ml_collections.ConfigDict()
  # Scales (num_scales - 1 squeezes: the image sides must be divisible by 2^(num_scales - 1)).
  config.model.num_scales = 2
  # Channels and number of the 3x3 hidden convolutions of every coupling's s, t network.
  config.model.hidden_features = 32
  config.model.num_hidden_layers = 2
  # The logit transform's boundary margin (the paper's 0.05).
  config.model.alpha = 0.05
  config.train = ml_collections.ConfigDict()
  # Steps (each one optimizer update on one batch) and examples per batch.
  config.train.num_steps = 6000
  config.train.batch_size = 64
  # Adam at learning_rate, cosine-decayed over num_steps to final_lr_fraction of it.
  config.train.optimizer = 'adam'
  config.train.learning_rate = 1e-3
  config.train.schedule = 'cosine'
  config.train.final_lr_fraction = 0.1
  # Adam's moment decays and epsilon.
  config.train.b1 = 0.9
  config.train.b2 = 0.999
  config.train.eps = 1e-8
  # L2 weight cost on the kernels (the paper's 5e-5).
  config.train.weight_decay = 5e-5
  # Intervals (steps) of metrics.jsonl rows, sample grids and checkpoints; checkpoints kept.
  config.train.log_every = 100
  config.train.sample_every = 1000
  config.train.checkpoint_every = 1000
  config.train.keep_checkpoints = 2
  # Samples in each grid.
  config.train.num_samples = 64
  # Test evaluation every eval_every steps (0: never).
  config.train.eval_every = 1000
  # One device; 'stop' at a NaN/inf step ('skip' keeps the state from before it).
  config.train.parallel = 'none'
  config.train.on_nonfinite = 'stop'
  # 'auto': convolutions run stepwise on a CPU, scanned elsewhere (jaxgan.loop.use_scan).
  config.train.chunk_mode = 'auto'
  config.eval = ml_collections.ConfigDict()
  # The first num_examples test images (10,000: all), batch_size at a time.
  config.eval.num_examples = 10_000
  config.eval.batch_size = 500
  return config
