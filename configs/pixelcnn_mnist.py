"""PixelCNN (van den Oord et al. 2016, arXiv:1601.06759) on dynamically binarized MNIST.

A Bernoulli PixelCNN (:mod:`jaxgan.pixelcnn`): a 7x7 type-A masked convolution, residual blocks of
1x1 / 3x3 type-B / 1x1 convolutions, two 1x1 type-B layers, one logit per pixel; the paper's
Table 1 "PixelCNN" column scaled down to a CPU (32 features for its 2h = 256, 4 blocks for its 15).
Its NLL is exact: ``sum_i -log p(x_i | x_<i)``, one forward pass. Trained on images binarized
afresh every step (``data.binarize='dynamic'``), Adam 1e-3 cosine-decayed to 1e-4, batch 64.
Every ``eval_every`` steps the exact NLL of the 10,000 test images (binarized once) joins
``metrics.jsonl`` as ``test_nll`` (nats) and ``test_bits_per_dim``. ``samples/step_<N>.png``: 16
ancestral samples (784 forward passes each, the reason there are few).

    python -m jaxgan.main --config=configs/pixelcnn_mnist.py --workdir=runs/pixelcnn_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Published: 81.30 nats (the PixelRNN paper's Table 4, PixelCNN row; statically binarized MNIST,
a 15-block, 256-feature network trained on GPUs; ``--config.data.binarize=static`` binarizes the
training split once, as that benchmark does). The benchmark measured about 3.7
steps per CPU second on this CPU (2 cores), so the 20,000 steps (21 passes) take about 90 CPU
minutes; its 600 CPU seconds (2,250 steps) reached 94.19 nats
(``python benchmarks/generative_families.py``, ``benchmarks/results/generative_families.json``).
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  # The family: jaxgan.main dispatches on it (jaxgan.density_train.FAMILIES).
  config.trainer = 'pixelcnn'
  # Seeds the initial weights, the batch order and the binarizations.
  config.seed = 0
  config.data = ml_collections.ConfigDict()
  # A 28x28 greyscale TFDS dataset: 'mnist' or 'fashion_mnist'.
  config.data.name = 'mnist'
  # A TFDS data_dir holding the prepared dataset (None: TFDS's default).
  config.data.data_dir = ml_collections.config_dict.placeholder(str)
  # Whether TFDS may download the dataset.
  config.data.download = False
  # 'dynamic' (x ~ Bernoulli(intensity) afresh every step), 'static' (once) or 'none'.
  config.data.binarize = 'dynamic'
  config.model = ml_collections.ConfigDict()
  # Channels of the residual stream (the paper's 2h) and residual blocks.
  config.model.features = 32
  config.model.num_blocks = 4
  # Channels of the penultimate 1x1 layer.
  config.model.hidden_features = 32
  # Kernel sides of the type-A input layer and of the blocks' type-B layers (odd).
  config.model.first_kernel_size = 7
  config.model.kernel_size = 3
  config.train = ml_collections.ConfigDict()
  # Steps (each one optimizer update on one batch) and examples per batch.
  config.train.num_steps = 20_000
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
  # L2 weight cost on the kernels (0: none).
  config.train.weight_decay = 0.0
  # Intervals (steps) of metrics.jsonl rows, sample grids and checkpoints; checkpoints kept.
  config.train.log_every = 250
  config.train.sample_every = 5000
  config.train.checkpoint_every = 2500
  config.train.keep_checkpoints = 2
  # Samples in each grid (each costs 784 forward passes).
  config.train.num_samples = 16
  # Test evaluation every eval_every steps (0: never).
  config.train.eval_every = 2500
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
