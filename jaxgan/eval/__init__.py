"""Evaluation of image GANs with a small classifier jaxgan trains and ships.

Inception weights cannot be downloaded everywhere, so :mod:`jaxgan.eval.classifier` defines a
LeNet-style CNN, :mod:`jaxgan.eval.train_classifier` trains it on MNIST or Fashion-MNIST
(``python -m jaxgan.eval.train_classifier``) and ``jaxgan/eval/weights/<dataset>/`` ships the
result. :mod:`jaxgan.eval.evaluator` turns generated samples into metrics ("classifier FID" from
the penultimate features, "classifier score" from the softmax, label accuracy of conditional
samples, sliced Wasserstein distances); any other feature function (e.g. Inception) plugs in as a
:class:`jaxgan.eval.classifier.FeatureExtractor`.
"""
