"""Command line: ``python -m jaxgan.main --config=configs/<name>.py --workdir=DIR``.

Any config field can be overridden, e.g. ``--config.train.num_steps=500``. Running the same
command again resumes from the latest checkpoint in ``DIR``; SIGTERM or Ctrl-C ends a run after
its current chunk with a checkpoint (exit status 0), to be resumed the same way.

Several processes (one per host): the same command on each, with
``--coordinator_address=HOST:PORT --num_processes=N --process_id=I`` (or, without them, what
JAX detects on a TPU VM or under SLURM; see :func:`jaxgan.distributed.initialize`).
"""

import logging as py_logging
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxgan import (
  checkpoint,
  cyclegan,
  density_train,
  distributed,
  faults,
  pix2pix,
  semi_supervised_train,
  style_train,
  super_resolution,
  train,
)

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.')
config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])
flags.DEFINE_string('coordinator_address', None,
                    'HOST:PORT of process 0, for multi-process training (with the next two).')
flags.DEFINE_integer('num_processes', None, 'Number of processes of a multi-process run.')
flags.DEFINE_integer('process_id', None, 'This process: 0, ..., --num_processes - 1.')
flags.DEFINE_integer('initialization_timeout', 60,
                     'Seconds to wait for every process to reach the coordinator.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  logging.set_verbosity(logging.INFO)
  # Orbax logs every checkpoint write at INFO; keep jaxgan's own lines readable.
  logging.get_absl_logger().addFilter(
      lambda record: record.levelno >= py_logging.WARNING or 'orbax' not in record.pathname)
  try:
    distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                           num_processes=FLAGS.num_processes, process_id=FLAGS.process_id,
                           timeout_s=FLAGS.initialization_timeout)
  except (ValueError, RuntimeError) as e:
    sys.exit(f'error: {e}')
  try:
    trainer = FLAGS.config.get('trainer')
    if trainer == 'semi_supervised':
      semi_supervised_train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif trainer == 'pix2pix':
      pix2pix.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif trainer == 'cyclegan':
      cyclegan.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif trainer in super_resolution.SYSTEMS:  # 'srresnet', 'srgan'
      super_resolution.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif trainer in density_train.FAMILIES:  # 'vae', 'pixelcnn', 'realnvp', 'rbm'
      density_train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif trainer in style_train.SYSTEMS:  # 'stylegan2', 'pggan'
      style_train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    else:
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (faults.NonFiniteError, checkpoint.CheckpointMismatchError,
          checkpoint.CorruptCheckpointError) as e:
    sys.exit(f'error: {e}')  # Says what went wrong; a traceback would add nothing.


if __name__ == '__main__':
  app.run(main)
