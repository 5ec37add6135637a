"""A LeNet-style CNN for 28x28 grayscale images, its saved weights, and feature extractors.

``x (B, 28, 28, 1) in [-1, 1] -> Conv 5x5x32 -> ReLU -> MaxPool 2 -> Conv 5x5x64 -> ReLU
-> MaxPool 2 -> Dense 64 -> ReLU (the features) -> Dense K (the logits)``, after LeCun et al.
1998. About 250k parameters (1 MB in float32); 99.22% MNIST test accuracy after 6 epochs of Adam
(the shipped weights, ``jaxgan/eval/weights/mnist/info.json``).

Weights are saved with orbax (arrays only, no pickle) next to an ``info.json`` that records how
they were made and the test accuracy they reached.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

WEIGHTS_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'weights')
IMAGE_SHAPE = (28, 28, 1)


class LeNet(nn.Module):
  """The classifier; ``__call__(x)`` returns ``(features (B, 64), logits (B, num_classes))``."""

  num_classes: int = 10
  num_features: int = 64

  @nn.compact
  def __call__(self, x):
    h = nn.relu(nn.Conv(32, (5, 5), padding='SAME')(x))
    h = nn.max_pool(h, (2, 2), strides=(2, 2))
    h = nn.relu(nn.Conv(64, (5, 5), padding='SAME')(h))
    h = nn.max_pool(h, (2, 2), strides=(2, 2))
    features = nn.relu(nn.Dense(self.num_features)(h.reshape((h.shape[0], -1))))
    return features, nn.Dense(self.num_classes)(features)


class FeatureExtractor(NamedTuple):
  """What the image metrics need from a network; plug in Inception by building one of these.

  Attributes:
    features: images ``(N, H, W, C)`` in [-1, 1] -> ``(N, F)`` features (for Fréchet distances).
    probs: images -> ``(N, K)`` class probabilities (for scores and label accuracy).
  """

  features: Callable[[np.ndarray], np.ndarray]
  probs: Callable[[np.ndarray], np.ndarray]


def weights_dir(dataset: str) -> str:
  """Where jaxgan ships the classifier for ``dataset``: ``jaxgan/eval/weights/<dataset>``."""
  return os.path.join(WEIGHTS_ROOT, dataset)


def save(path: str, params, info: dict) -> None:
  """Writes ``params`` with orbax into ``path/params`` and ``info`` into ``path/info.json``."""
  import orbax.checkpoint as ocp
  path = os.path.abspath(path)
  os.makedirs(path, exist_ok=True)
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(os.path.join(path, 'params'), params, force=True)
  checkpointer.wait_until_finished()
  with open(os.path.join(path, 'info.json'), 'w') as f:
    json.dump(info, f, indent=2)


def load(path: str) -> tuple[LeNet, dict, dict]:
  """``(model, params, info)`` saved by :func:`save` in ``path``."""
  import orbax.checkpoint as ocp
  path = os.path.abspath(path)
  info_path = os.path.join(path, 'info.json')
  if not os.path.exists(info_path):
    raise ValueError(f'no classifier in {path!r} (missing info.json); train one with '
                     f'python -m jaxgan.eval.train_classifier')
  with open(info_path) as f:
    info = json.load(f)
  model = LeNet(num_classes=info['num_classes'], num_features=info['num_features'])
  abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                            jnp.zeros((1, *IMAGE_SHAPE)))['params']
  params = ocp.StandardCheckpointer().restore(os.path.join(path, 'params'), abstract)
  return model, params, info


def extractor(model: LeNet, params, *, batch_size: int = 1000) -> FeatureExtractor:
  """A :class:`FeatureExtractor` from the classifier's penultimate layer and softmax."""
  apply = jax.jit(lambda x: model.apply({'params': params}, x))

  def run(images, index):
    images = np.asarray(images, np.float32)
    if images.shape[1:] != IMAGE_SHAPE:
      raise ValueError(f'the classifier takes (N, 28, 28, 1) images, got {images.shape}')
    outs = []
    for start in range(0, images.shape[0], batch_size):
      chunk = images[start:start + batch_size]
      pad = batch_size - chunk.shape[0] if images.shape[0] > batch_size else 0
      padded = np.concatenate([chunk, np.zeros((pad, *IMAGE_SHAPE), np.float32)]) if pad else chunk
      out = apply(padded)[index]
      outs.append(np.asarray(out[:chunk.shape[0]]))
    return np.concatenate(outs)

  return FeatureExtractor(features=lambda images: run(images, 0),
                          probs=lambda images: softmax(run(images, 1)))


def softmax(logits) -> np.ndarray:
  """Row-wise softmax in float64, ``(N, K) -> (N, K)``."""
  logits = np.asarray(logits, np.float64)
  e = np.exp(logits - logits.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def is_shipped(dataset: str) -> bool:
  """Whether jaxgan ships a classifier for ``dataset`` (``weights_dir(dataset)/info.json``)."""
  return os.path.exists(os.path.join(weights_dir(dataset), 'info.json'))


def shipped_extractor(dataset: str) -> FeatureExtractor | None:
  """The extractor of the classifier shipped for ``dataset``, or None if jaxgan has none."""
  if not is_shipped(dataset):
    return None
  model, params, _ = load(weights_dir(dataset))
  return extractor(model, params)
