"""AC-GAN on MNIST (Odena et al. 2016, arXiv:1610.09585): D also names the digit.

G is conditioned like the cGAN's (one-hot label appended to z); D is not told the label but has
a second head with 10 class logits, and both players add the class cross-entropy (weight 1) to
their losses: G on its fakes, D **on real images only** (``loss.auxiliary_classifier_fake_weight
= 0``). The paper's D also learns to classify the fakes by the label G was given; then D's class
head learns whatever marks G puts on a fake for its label, and G satisfies it without drawing
the digit: at 3,000 steps the samples' label accuracy under jaxgan's classifier is 0.602 with
the fake term and 0.946 without (README, "Image GANs"; ``--config.loss.
auxiliary_classifier_fake_weight=1.0`` restores the paper's loss). DCGAN networks with 32 base
channels, Adam 2e-4 / b1 0.5, batch 64; samples and evaluation use the moving average of G's
weights.

    python -m jaxgan.main --config=configs/acgan_mnist.py --workdir=runs/acgan_mnist \
        --config.data.data_dir=../shared/data/tensorflow_datasets
    python -m jaxgan.sample --workdir=runs/acgan_mnist --mode=class_grid

metrics.jsonl logs ``d_class_accuracy`` (D's accuracy on real digits, near 1 within a few
hundred steps) and, every 1,000 steps, ``label_accuracy`` of the samples under jaxgan's classifier.
"""

from jaxgan.config import default_config


def get_config():
  config = default_config()
  config.data.name = 'mnist'
  config.model.name = 'dcgan'
  config.model.num_classes = 10
  config.model.latent_dim = 100
  config.model.latent_distribution = 'normal'
  config.model.features = 32
  config.loss.auxiliary_classifier_weight = 1.0
  # D's class loss on real images only; 1.0 is the paper's CE(real) + CE(fake) (see above).
  config.loss.auxiliary_classifier_fake_weight = 0.0
  config.train.num_steps = 3000
  config.train.batch_size = 64
  config.train.ema_decay = 0.999
  config.train.sample_every = 500
  config.train.checkpoint_every = 1000
  config.train.eval_every = 1000
  return config
