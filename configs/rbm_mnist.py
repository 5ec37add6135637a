"""A Bernoulli-Bernoulli RBM with 500 hidden units on dynamically binarized MNIST, CD-25.

The model of Salakhutdinov & Murray 2008 ("On the quantitative analysis of deep belief
networks"): 784 binary visible and 500 binary hidden units (:mod:`jaxgan.rbm`), trained by
contrastive divergence with 25 Gibbs sweeps per negative sample (CD-25), from small random
weights and the data's base-rate visible biases. SGD with momentum 0.9 at 0.01, cosine-decayed
to 1e-3, weight cost 2e-4 on W (Hinton's "practical guide"), batch 100, every image binarized
afresh at every step. ``--config.model.persistent=True`` trains by persistent CD (Tieleman 2008)
instead, its chains kept in the checkpointed state. Every ``eval_every`` steps
``metrics.jsonl`` gets the test log-likelihood (10,000 test images binarized once),
``test_log_likelihood = mean(-F(x)) - log Z``, with ``log Z`` by annealed importance sampling
from the base-rate model (100 chains; 1,001 temperatures on the paper's schedule, the paper's
14,501 at the last step) and its standard error ``log_z_std_error``. ``samples/step_<N>.png``: 64
visible probabilities after 1,000 Gibbs sweeps from the base rate.

    python -m jaxgan.main --config=configs/rbm_mnist.py --workdir=runs/rbm_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets

Published: -86.34 nats (Salakhutdinov & Murray 2008, Table 2: CD-25 with 500 hidden units, AIS
with 14,500 temperatures; trained for many passes with CD-1 raised step by step to CD-25). This
CPU (2 cores): see the steps/s in ``metrics.jsonl``; what the 30-minute budget reaches is measured
by ``python benchmarks/generative_families.py`` (``benchmarks/results/generative_families.json``).
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  # The family: jaxgan.main dispatches on it (jaxgan.density_train.FAMILIES).
  config.trainer = 'rbm'
  # Seeds the initial weights, the batch order, the binarizations and the Gibbs chains.
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
  # Hidden units.
  config.model.num_hidden = 500
  # Standard deviation of the initial weights W ~ N(0, weight_scale^2).
  config.model.weight_scale = 0.01
  # Gibbs sweeps per negative sample (the k of CD-k).
  config.model.num_gibbs_steps = 25
  # Persistent CD (chains carried over between steps) instead of CD-k, and its chains.
  config.model.persistent = False
  config.model.num_chains = 100
  config.train = ml_collections.ConfigDict()
  # Steps (each one update on one batch) and examples per batch.
  config.train.num_steps = 30_000
  config.train.batch_size = 100
  # SGD with momentum at learning_rate, cosine-decayed over num_steps to final_lr_fraction of it.
  config.train.optimizer = 'sgd'
  config.train.learning_rate = 0.01
  config.train.momentum = 0.9
  config.train.schedule = 'cosine'
  config.train.final_lr_fraction = 0.1
  # L2 weight cost on W (not the biases).
  config.train.weight_decay = 2e-4
  # Intervals (steps) of metrics.jsonl rows, sample grids and checkpoints; checkpoints kept.
  config.train.log_every = 500
  config.train.sample_every = 5000
  config.train.checkpoint_every = 5000
  config.train.keep_checkpoints = 2
  # Samples in each grid.
  config.train.num_samples = 64
  # Test evaluation every eval_every steps (0: never).
  config.train.eval_every = 5000
  # One device; 'stop' at a NaN/inf step ('skip' keeps the state from before it).
  config.train.parallel = 'none'
  config.train.on_nonfinite = 'stop'
  # A dense model: the chunks run as one lax.scan (jaxgan.loop.use_scan).
  config.train.chunk_mode = 'scan'
  config.eval = ml_collections.ConfigDict()
  # The first num_examples test images (10,000: all), batch_size at a time.
  config.eval.num_examples = 10_000
  config.eval.batch_size = 500
  # AIS: independent chains, and temperatures of the periodic and of the final estimate
  # (jaxgan.rbm.paper_betas; 14,501 is the paper's schedule).
  config.eval.ais_num_chains = 100
  config.eval.ais_num_betas = 1001
  config.eval.final_ais_num_betas = 14_501
  # Gibbs sweeps from the base rate for each sample.
  config.eval.sample_gibbs_steps = 1000
  return config
