"""``python -m jaxgan.eval --workdir=DIR``: FID, KID, IS and precision/recall of a run.

    python -m jaxgan.eval --workdir=runs/cgan_mnist --metrics=fid,kid,is,pr \
        --extractor=classifier --num_samples=50000
    python -m jaxgan.eval --workdir=runs/dcgan_cifar10 --extractor=inception \
        --inception_weights=pt_inception-2015-12-05-6726825d.npz

Evaluates the latest checkpoint (EMA weights where the config keeps them), prints a Markdown
table and writes ``DIR/eval.json`` beside ``metrics.jsonl``; the logic is
:func:`jaxgan.eval.run.evaluate_run`. Runs of ``jaxgan.train``'s GANs and StyleGAN2/PGGAN runs
(their samples cropped back to 28x28); other trainers are refused, naming the trainer.
"""

from __future__ import annotations

from absl import app, flags

from jaxgan.eval import run

_WORKDIR = flags.DEFINE_string('workdir', None, 'A training run of jaxgan.main.', required=True)
_METRICS = flags.DEFINE_list('metrics', list(run.METRICS), f'Some of {list(run.METRICS)}.')
_EXTRACTOR = flags.DEFINE_enum('extractor', 'classifier', run.EXTRACTORS,
                               "The feature network: jaxgan's shipped classifier or FID's "
                               'Inception-v3.')
_INCEPTION_WEIGHTS = flags.DEFINE_string(
    'inception_weights', None, 'Converted Inception weights (.npz of python -m '
    'jaxgan.eval.inception); default: the cache.')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 50_000, 'Generated and real images.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the latents.')
_SPLIT = flags.DEFINE_string('split', 'train', 'The real images\' split.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, "TFDS data_dir (default: the run's).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  results = run.evaluate_run(_WORKDIR.value, metric_names=_METRICS.value,
                             extractor=_EXTRACTOR.value,
                             inception_weights=_INCEPTION_WEIGHTS.value,
                             num_samples=_NUM_SAMPLES.value, seed=_SEED.value,
                             split=_SPLIT.value, data_dir=_DATA_DIR.value)
  print(run.markdown_table(results))


if __name__ == '__main__':
  app.run(main)
