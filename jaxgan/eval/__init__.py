"""Evaluation of image GANs with a small classifier jaxgan trains and ships.

Inception weights cannot be downloaded everywhere, so :mod:`jaxgan.eval.classifier` defines a
LeNet-style CNN, :mod:`jaxgan.eval.train_classifier` trains it on MNIST or Fashion-MNIST
(``python -m jaxgan.eval.train_classifier``) and ``jaxgan/eval/weights/<dataset>/`` ships the
result. :mod:`jaxgan.eval.evaluator` turns generated samples into metrics ("classifier FID" from
the penultimate features, "classifier score" from the softmax, label accuracy of conditional
samples, sliced Wasserstein distances); any other feature function plugs in as a
:class:`jaxgan.eval.classifier.FeatureExtractor`.

:mod:`jaxgan.eval.inception` is FID's Inception-v3 (pytorch-fid's network, weights converted from
its ``.pth``, not shipped), :mod:`jaxgan.eval.reference` caches real data's features keyed by
the extractor's weight digest, and :mod:`jaxgan.eval.run` (``python -m jaxgan.eval
--workdir=DIR``) evaluates a run's latest checkpoint: FID, KID, IS, precision/recall.
"""
