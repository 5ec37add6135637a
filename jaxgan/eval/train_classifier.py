"""Trains the evaluation classifier: ``python -m jaxgan.eval.train_classifier``.

    python -m jaxgan.eval.train_classifier --dataset=mnist \
        --data_dir=../shared/data/tensorflow_datasets --out=jaxgan/eval/weights/mnist

Adam (lr 1e-3, cosine-decayed to 0), batch 128, 6 epochs of the train split, then the test
accuracy is measured on the full test split and written with the weights (``info.json``).
The shipped MNIST weights (this command) reach 99.22%; with 3 epochs, 98.98%.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging

from jaxgan import data as data_lib
from jaxgan.eval import classifier


def train(dataset: str, *, data_dir: str | None, epochs: float = 6.0, batch_size: int = 128,
          learning_rate: float = 1e-3, seed: int = 0, download: bool = False,
          max_test_examples: int | None = None) -> tuple[classifier.LeNet, dict, dict]:
  """Trains a :class:`~jaxgan.eval.classifier.LeNet` on ``dataset``'s train split.

  Returns:
    ``(model, params, info)``; ``info`` holds the settings, ``train_loss`` (mean cross-entropy
    of the last 100 steps) and ``test_accuracy``.
  """
  if data_lib.data_shape(dataset) != classifier.IMAGE_SHAPE:
    raise ValueError(f'the classifier takes 28x28x1 images; dataset={dataset!r} has shape '
                     f'{data_lib.data_shape(dataset)}')
  train_split = data_lib.image_arrays(dataset, split='train', data_dir=data_dir,
                                      download=download)
  num_classes = data_lib.NUM_CLASSES[dataset]
  model = classifier.LeNet(num_classes=num_classes)
  params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, *classifier.IMAGE_SHAPE)))['params']
  n = train_split['x'].shape[0]
  num_steps = max(1, int(epochs * n / batch_size))
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      _, logits = model.apply({'params': p}, x)
      return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = np.random.default_rng(seed)
  order = np.concatenate([rng.permutation(n) for _ in range(int(np.ceil(epochs)) + 1)])
  losses = []
  start = time.perf_counter()
  for t in range(num_steps):
    idx = order[t * batch_size:(t + 1) * batch_size]
    params, opt_state, loss = step(params, opt_state, train_split['x'][idx],
                                   train_split['label'][idx])
    losses.append(float(loss))
    if (t + 1) % 200 == 0:
      logging.info('step %d/%d  loss %.4f', t + 1, num_steps, np.mean(losses[-100:]))
  test = data_lib.image_arrays(dataset, split='test', data_dir=data_dir, download=download,
                               max_examples=max_test_examples)
  probs = classifier.extractor(model, params).probs(test['x'])
  accuracy = float(np.mean(np.argmax(probs, -1) == test['label']))
  info = {'dataset': dataset, 'num_classes': num_classes, 'num_features': model.num_features,
          'epochs': epochs, 'batch_size': batch_size, 'learning_rate': learning_rate,
          'schedule': 'cosine',
          'seed': seed, 'num_steps': num_steps, 'train_loss': float(np.mean(losses[-100:])),
          'test_accuracy': accuracy, 'num_test_examples': int(test['x'].shape[0]),
          'train_seconds': round(time.perf_counter() - start, 1)}
  return model, params, info


def _define_flags() -> None:
  """The CLI's flags; defined only when run as a program, so importing defines none."""
  flags.DEFINE_string('dataset', 'mnist', "'mnist' or 'fashion_mnist'.")
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir holding the prepared dataset.')
  flags.DEFINE_string('out', None, 'Output folder (default: jaxgan/eval/weights/<dataset>).')
  flags.DEFINE_float('epochs', 6.0, 'Passes over the train split.')
  flags.DEFINE_integer('batch_size', 128, 'Minibatch size.')
  flags.DEFINE_float('learning_rate', 1e-3, 'Initial Adam learning rate (cosine decay to 0).')
  flags.DEFINE_integer('seed', 0, 'Initialization and shuffling seed.')


def main(argv):
  del argv
  FLAGS = flags.FLAGS
  logging.set_verbosity(logging.INFO)
  model, params, info = train(FLAGS.dataset, data_dir=FLAGS.data_dir, epochs=FLAGS.epochs,
                              batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
                              seed=FLAGS.seed)
  del model
  out = FLAGS.out or classifier.weights_dir(FLAGS.dataset)
  classifier.save(out, params, info)
  print(f'test accuracy {info["test_accuracy"]:.4f} on {info["num_test_examples"]} examples, '
        f'{info["train_seconds"]} s; saved to {out}')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
