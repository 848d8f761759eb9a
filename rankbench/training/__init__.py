"""The parts of :func:`rankbench.train.fit` (import the public names from :mod:`rankbench.train`).

- :mod:`~rankbench.training.loop`: :func:`fit` (the loop) and :class:`Loop` (its state);
- :mod:`~rankbench.training.hooks`: the hook API and the built-in hooks (divergence guard,
  progress, CSV log, checkpoints, callbacks, signals);
- :mod:`~rankbench.training.tensorboard`: the optional TensorBoard hook and
  :func:`log_ranking_metrics`;
- :mod:`~rankbench.training.step`: one step, optimizer, schedule, device, loader;
- :mod:`~rankbench.training.checkpoint`: checkpoint state and atomic I/O;
- :mod:`~rankbench.training.csvlog`: ``train_log.csv``.
"""
