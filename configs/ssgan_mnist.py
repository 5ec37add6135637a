"""Improved GAN's semi-supervised MNIST (Salimans et al. 2016, arXiv:1606.03498, Table 1).

A (K+1)-class GAN: D classifies {0, ..., 9} and its fixed fake logit 0 makes it a real/fake
discriminator too; G (100 -> 500 -> 500 -> 784, batch norm, softplus, weight-normed sigmoid output)
is trained by feature matching; D (784 -> 1000-500-250-250-250 -> 10, weight norm, Gaussian noise
0.3 on the input and 0.5 after every hidden layer) by cross-entropy on the labeled examples plus
0.5 x the unsupervised real/fake loss. Adam b1 0.5, batch 100, 300 epochs (180,000 steps of 600
an epoch), test errors of D's moving-average parameters (``train.d_ema_decay`` 0.9999), as the
paper's public code (openai/improved-gan, mnist_svhn_cifar10/train_mnist_feature_matching.py).

One departure: G's learning rate is 1e-3, D's 3e-3 (the public code: 3e-3 for both). With G at
3e-3 the real/fake game collapses on this machine (seed 0 in epoch 9: D separates real from fake
perfectly, G's feature-matching loss jumps from ~3 to ~100, D's test errors climb from 1438 back
to 1847; seed 1's G loss was climbing the same way at epoch 16); with G at 1e-3 the errors keep
falling through 40 epochs (README, "Semi-supervised MNIST"). The public code's setting is
``--config.train.g_lr=3e-3``.

One seed trains from the command line like every config (``config.trainer`` sends it to
``jaxgan.semi_supervised_train.train_and_evaluate``, on the one driver ``jaxgan.train.drive``:
checkpoints, ``metrics.jsonl``, samples and exact resume as every run; D's test errors every
``train.eval_every`` steps):

    python -m jaxgan.main --config=configs/ssgan_mnist.py --workdir=runs/ssgan_mnist \
        --config.data.data_dir=/work/shared/data/tensorflow_datasets

The benchmark script reads the same config, runs several seeds and reports mean +- std test
errors of the 10,000 test images:

    python benchmarks/semi_supervised_mnist.py --labels=100 --seeds=10 --epochs=300 \
        --out=ssgan_mnist_100.json --data_dir=/work/shared/data/tensorflow_datasets

Paper, 100 labels: 93 +- 6.5 errors (10 seeds). The public MNIST code keeps the learning rate
constant; ``--config.train.lr_schedule=linear`` decays it linearly to 0 over the run (at G lr
3e-3 and 8 epochs no better or worse than 'constant' within two seeds). See the README's
"Semi-supervised MNIST" section for what a CPU budget reaches.

Units: the trainer counts steps, as every run (``train.num_steps``, ``log_every``,
``eval_every``, ``sample_every``, ``checkpoint_every``). Before it ran on the one driver it
counted epochs: ``train.num_epochs`` still works (when set, the run is ``num_epochs * (60000 //
batch_size)`` steps, whatever ``num_steps`` says), but ``train.checkpoint_every`` now counts
steps (it counted epochs: 10 then is 6000 now).
"""

import ml_collections


def get_config():
  config = ml_collections.ConfigDict()
  # Which train_and_evaluate runs this config under jaxgan.main (default: jaxgan.train's GAN).
  config.trainer = 'semi_supervised'
  # Seeds the labeled subset, the initialization and the training randomness.
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  # Where TFDS finds prepared MNIST, and whether it may download.
  config.data.data_dir = ml_collections.FieldReference(None, field_type=str)
  config.data.download = False
  # Labeled examples, balanced: num_labels / num_classes of each class (paper: 20/50/100/200).
  config.data.num_labels = 100
  config.data.num_classes = 10

  config.model = ml_collections.ConfigDict()
  # z ~ U[0, 1)^latent_dim.
  config.model.latent_dim = 100
  config.model.g_hidden = (500, 500)
  config.model.image_shape = (28, 28, 1)
  config.model.d_hidden = (1000, 500, 250, 250, 250)
  # Std of D's Gaussian noise on its input and after each hidden layer (training only).
  config.model.input_noise = 0.3
  config.model.hidden_noise = 0.5

  config.train = ml_collections.ConfigDict()
  # Steps of the run: 300 epochs of 60000 // batch_size = 600 steps (the paper's length).
  config.train.num_steps = 180_000
  # The run's length in epochs instead (the trainer's unit before the one driver): when set,
  # num_steps is num_epochs * (60000 // batch_size).
  config.train.num_epochs = ml_collections.config_dict.placeholder(int)
  # Unlabeled and labeled batches both have this many rows; an epoch is 60000 // batch_size steps.
  config.train.batch_size = 100
  # Adam learning rates of G and D, and Adam's betas for both. The public code uses 3e-3 for G
  # too; here that run collapses in epoch 11 (README), G at 1e-3 does not.
  config.train.g_lr = 1e-3
  config.train.d_lr = 3e-3
  config.train.b1 = 0.5
  config.train.b2 = 0.999
  # 'constant' (the public MNIST code) or 'linear' (to 0 at the last step).
  config.train.lr_schedule = 'constant'
  # w in L_D = L_sup + w * L_unsup (the public code's 0.5 factor on the unsupervised loss).
  config.train.unlabeled_weight = 0.5
  # Decay of the moving average of D's parameters that is tested (the public code's 0.9999).
  config.train.d_ema_decay = 0.9999
  # A step with a NaN/inf loss or gradient: 'stop' (naming the step) or 'skip' it.
  config.train.on_nonfinite = 'stop'
  # Images for D's data-dependent weight-norm initialization.
  config.train.init_batch_size = 500
  # False keeps D's hidden weight-norm scales at their initial values, as the public code.
  config.train.train_hidden_scale = False
  # Steps between metrics.jsonl rows (one an epoch: their chunk_mean/<name> are epoch means),
  # D's test errors, sample grids and checkpoints; the last step does all four.
  config.train.log_every = 600
  config.train.eval_every = 600
  config.train.sample_every = 6000
  config.train.checkpoint_every = 6000
  # Checkpoints kept (the newest).
  config.train.keep_checkpoints = 2
  # G's images in each samples/step_<N>.png.
  config.train.num_samples = 64
  # One device (the objectives have no cross-device mean).
  config.train.parallel = 'none'
  # 'scan': each chunk is one lax.scan ('auto' would run an unnamed model one step per call on
  # a CPU, as a convolutional one; these MLPs scan fast everywhere).
  config.train.chunk_mode = 'scan'

  config.eval = ml_collections.ConfigDict()
  # Test images per D call.
  config.eval.batch_size = 1000
  return config
