"""VAE (Kingma & Welling 2013, arXiv:1312.6114) on dynamically binarized MNIST, as the IWAE paper.

The IWAE paper's one-stochastic-layer model (arXiv:1509.00519, Section 5): encoder
784-200-200-(50, 50) and decoder 50-200-200-784 with tanh units and a Bernoulli decoder
(:mod:`jaxgan.vae`), trained on the ELBO (k = 1) with every image binarized afresh at every step
(``data.binarize='dynamic'``). Adam (eps 1e-4, the paper's) at 1e-3, cosine-decayed to 1e-4 (the
paper steps it down to 1e-4 too), batch 100. Every ``eval_every`` steps the ELBO of the 10,000
test images (binarized once) joins ``metrics.jsonl`` as ``test_elbo``; at the last step also
``test_iwae``, the IWAE bound with k = 5,000 (about 5 minutes here: 5,000 decoder passes per
image). ``samples/step_<N>.png``: 64 Bernoulli means ``sigmoid(decoder(z))``.

    python -m jaxgan.main --config=configs/vae_mnist.py --workdir=runs/vae_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Published: test NLL 86.76 nats (IWAE-5000 of the k = 1 VAE; Burda et al., Table 1), after 3,280
passes over the data at batch 20 (about 9.8M steps). The benchmark measured about 270
steps/s (164 per CPU second) on this CPU (2 cores, busy), so the 1.2M steps (2,000 passes) take
over an hour; its 1,000 CPU seconds (165,000 steps) reached IWAE-5000 89.08 nats
(``python benchmarks/generative_families.py``, ``benchmarks/results/generative_families.json``).
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  # The family: jaxgan.main dispatches on it (jaxgan.density_train.FAMILIES).
  config.trainer = 'vae'
  # Seeds the initial weights, the batch order, the binarizations and the noise.
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
  # Widths of the tanh layers of the encoder and (the same) of the decoder.
  config.model.hidden = (200, 200)
  # Dimension of z.
  config.model.latent_dim = 50
  config.train = ml_collections.ConfigDict()
  # Steps (each one optimizer update on one batch) and examples per batch.
  config.train.num_steps = 1_200_000
  config.train.batch_size = 100
  # Adam at learning_rate, cosine-decayed over num_steps to final_lr_fraction of it.
  config.train.optimizer = 'adam'
  config.train.learning_rate = 1e-3
  config.train.schedule = 'cosine'
  config.train.final_lr_fraction = 0.1
  # Adam's moment decays and epsilon (the IWAE paper's eps = 1e-4).
  config.train.b1 = 0.9
  config.train.b2 = 0.999
  config.train.eps = 1e-4
  # L2 weight cost on the weight matrices (0: none).
  config.train.weight_decay = 0.0
  # Intervals (steps) of metrics.jsonl rows, sample grids and checkpoints; checkpoints kept.
  config.train.log_every = 5000
  config.train.sample_every = 100_000
  config.train.checkpoint_every = 100_000
  config.train.keep_checkpoints = 2
  # Samples in each grid.
  config.train.num_samples = 64
  # Test evaluation every eval_every steps (0: never).
  config.train.eval_every = 100_000
  # One device; 'stop' at a NaN/inf step ('skip' keeps the state from before it).
  config.train.parallel = 'none'
  config.train.on_nonfinite = 'stop'
  # A dense model: the chunks run as one lax.scan (jaxgan.loop.use_scan).
  config.train.chunk_mode = 'scan'
  config.eval = ml_collections.ConfigDict()
  # The first num_examples test images (10,000: all), batch_size at a time.
  config.eval.num_examples = 10_000
  config.eval.batch_size = 500
  # Importance samples of the final IWAE bound, decoded iwae_chunk_size at a time.
  config.eval.iwae_k = 5000
  config.eval.iwae_chunk_size = 100
  return config
