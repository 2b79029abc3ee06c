"""Training on several devices or machines with tf.distribute (`--distribute`).

- ``mirrored``: MirroredStrategy, every device of this machine (its GPUs, else the CPU) in one
  process.
- ``multi-worker``: MultiWorkerMirroredStrategy, one process per machine, every process started
  with the same command and its own TF_CONFIG::

      {"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}}

  The chief (the ``chief`` task, else worker 0) writes the artifact; the other workers train and
  write nothing.

With TensorFlow 2.21 / Keras 3.15, ``model.fit`` under MultiWorkerMirroredStrategy with two
workers fails (``ValueError: Attempt to convert a value (PerReplica...)``, keras issue 20585),
so both strategies train with one custom loop (``strategy.run`` over a ``GradientTape`` step)
that keeps what ``fit`` gives a one-process run: the per-epoch history (loss, accuracy,
val_loss, val_accuracy, learning_rate), and the same schedule (training.model.schedule: Keras'
own EarlyStopping and ReduceLROnPlateau callbacks and the time budget, called by the loop as
``fit`` calls them), so it stops for the same reasons. It trains what ``fit`` trains: the model
with AUGMENT's layers in front (training.model.for_training), phase by phase
(training.model.phases: a pretrained backbone's head first, then fine-tuning at a lower rate,
each with its own optimizer and schedule, the better phase kept).

`batch_size` stays the global batch (split across the replicas), so a distributed run takes the
same optimisation steps as a one-process run of the same config. Each worker reads its own
shard of the training split; the validation split is evaluated by every worker and the result
averaged across them, so all take the same early-stopping decision.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from training.config import TrainConfig


@dataclass
class Distributed:
    model: object  # a plain Keras model (outside any strategy) with the trained weights
    history: dict[str, list[float]]
    stopped: dict  # training.model.why_stopped
    chief: bool  # whether this process writes the artifact
    about: dict  # what the manifest records: strategy, workers, replicas


def make_strategy(mode: str):
    """The tf.distribute strategy for --distribute. Create it before any other TensorFlow op:
    MultiWorkerMirroredStrategy configures the runtime's collective ops."""
    import tensorflow as tf

    if mode == "mirrored":
        return tf.distribute.MirroredStrategy()
    if mode == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "--distribute multi-worker needs TF_CONFIG (the cluster and this process's task), "
                'e.g. {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, '
                '"task": {"type": "worker", "index": 0}}'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown distribution strategy {mode!r}; allowed: mirrored, multi-worker")


def cluster_role(tf_config: str | None) -> tuple[bool, int]:
    """(is this process the chief, number of workers) from TF_CONFIG's text: the chief is the
    `chief` task if the cluster has one, else worker 0 (TensorFlow's own convention)."""
    if not tf_config:
        return True, 1
    config = json.loads(tf_config)
    cluster, task = config.get("cluster", {}), config.get("task", {})
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    if "chief" in cluster:
        return task.get("type") == "chief", workers
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0, workers


def _training_data(strategy, x: np.ndarray, y: np.ndarray, global_batch: int, seed: int):
    """A distributed dataset that repeats: each worker reads its shard, shuffled (per worker
    seed), in per-replica batches. It repeats so every worker takes the same number of steps
    per epoch (a worker that ran out first would leave the others waiting in an all-reduce)."""
    import tensorflow as tf

    def dataset_fn(context):
        shard = slice(context.input_pipeline_id, None, context.num_input_pipelines)
        xs, ys = x[shard].astype(np.float32), y[shard]
        return (
            tf.data.Dataset.from_tensor_slices((xs, ys))
            .shuffle(len(ys), seed=seed + context.input_pipeline_id)
            .repeat()
            .batch(context.get_per_replica_batch_size(global_batch), drop_remainder=True)
            .prefetch(2)
        )

    return strategy.distribute_datasets_from_function(dataset_fn)


def train_distributed(
    config: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    num_classes: int,
    started: float | None = None,
    clock=time.monotonic,
) -> Distributed:
    """The custom loop under config.distribute's strategy (module docstring); `started` and
    `clock`: the time budget's, as for training.model.train."""
    strategy = make_strategy(config.distribute)  # first: before any other TensorFlow op

    import keras
    import tensorflow as tf

    from training.model import PhaseLog, build_model, enter_phase, for_training, phases, schedule

    keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size
    if global_batch % replicas:
        raise ValueError(
            f"batch_size {global_batch} must be a multiple of the {replicas} replicas "
            "(it is the global batch, split evenly across them)"
        )
    shape = x_train.shape[1:]
    with strategy.scope():
        model = build_model(config, shape, num_classes)
        trainer = for_training(model, config)  # AUGMENT's layers in front, sharing the weights
        per_example_loss = keras.losses.SparseCategoricalCrossentropy(reduction=None)

    @tf.function
    def predict(x):
        return model(x, training=False)

    def agreed(value: float) -> float:
        """The mean of `value` over every replica of every worker (all get the same number)."""
        per_replica = strategy.run(lambda: tf.constant(value, tf.float32))
        return float(strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None))

    def validation() -> tuple[float, float]:
        probabilities = np.concatenate(
            [
                predict(x_val[i : i + 512].astype(np.float32)).numpy()
                for i in range(0, len(x_val), 512)
            ]
        )
        picked = probabilities[np.arange(len(y_val)), y_val]
        loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
        accuracy = float(np.mean(probabilities.argmax(axis=1) == y_val))
        return agreed(loss), agreed(accuracy)

    iterator = iter(_training_data(strategy, x_train, y_train, global_batch, config.seed))
    steps = math.ceil(len(y_train) / global_batch)
    started = clock() if started is None else started  # one budget across the phases
    log = PhaseLog(config)

    def run_phase(phase) -> bool:
        """One phase (training.model.phases) with its own optimizer and schedule; True when
        the next may run."""
        enter_phase(model, phase)
        with strategy.scope():
            optimizer = keras.optimizers.Adam(phase.learning_rate)
            trainer.compile(optimizer=optimizer)  # where the callbacks find it (no fit is run)
        variables = trainer.trainable_variables  # this phase's: a frozen backbone's are not

        def step(x, y):
            with tf.GradientTape() as tape:
                probabilities = trainer(x, training=True)
                losses = per_example_loss(y, probabilities)
                loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            gradients = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(gradients, variables, strict=True))
            predicted = tf.argmax(probabilities, axis=1, output_type=y.dtype)
            return tf.reduce_sum(losses), tf.reduce_sum(tf.cast(predicted == y, tf.float32))

        @tf.function
        def train_step(iterator):
            x, y = next(iterator)
            loss_sum, correct = strategy.run(step, args=(x, y))
            total = tf.distribute.ReduceOp.SUM
            return strategy.reduce(total, loss_sum, axis=None), strategy.reduce(
                total, correct, axis=None
            )

        history: dict[str, list[float]] = {
            "loss": [],
            "accuracy": [],
            "val_loss": [],
            "val_accuracy": [],
        }
        callbacks = schedule(config, started, clock)
        run = keras.callbacks.CallbackList(callbacks, model=trainer)
        trainer.stop_training = False
        run.on_train_begin()
        for epoch in range(config.max_epochs):
            run.on_epoch_begin(epoch)
            loss_sum = correct = 0.0
            for _ in range(steps):
                batch_loss, batch_correct = train_step(iterator)
                loss_sum, correct = loss_sum + float(batch_loss), correct + float(batch_correct)
            seen = steps * global_batch
            val_loss, val_accuracy = validation()
            figures = (loss_sum / seen, correct / seen, val_loss, val_accuracy)
            logs = dict(zip(("loss", "accuracy", "val_loss", "val_accuracy"), figures, strict=True))
            # this epoch's rate, as fit records it (a MirroredVariable: read as
            # ReduceLROnPlateau does)
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            run.on_epoch_end(epoch, logs)  # may lower the rate and set stop_training
            for key, value in logs.items():
                history.setdefault(key, []).append(round(float(value), 6))
            print(
                f"epoch {epoch + 1}/{config.max_epochs} ({replicas} replicas"
                + ("" if phase.name == "train" else f", {phase.name}")
                + "): "
                + " ".join(f"{key} {values[-1]:.4g}" for key, values in history.items()),
                flush=True,
            )
            # every worker stops at the same epoch (one that stopped alone would leave the
            # others waiting in an all-reduce): when any of them would (its own clock, for the
            # budget)
            if agreed(float(trainer.stop_training)) > 0:
                budget = callbacks[-1]  # the one stop a worker decides alone: another's budget
                budget.stopped = budget.stopped or not trainer.stop_training
                break
        run.on_train_end()  # the best epoch's weights, as restore_best_weights=True
        return log.add(phase, callbacks, history, model)

    for phase in phases(config):
        if not run_phase(phase):
            break
    stopped = log.finish(model)

    # The artifact is made from a plain model outside the strategy: conversion and saving then
    # see ordinary variables, exactly as after a one-process run.
    plain = build_model(config, shape, num_classes)
    plain.set_weights(model.get_weights())
    chief, workers = cluster_role(
        os.environ.get("TF_CONFIG") if config.distribute == "multi-worker" else None
    )
    about = {"strategy": config.distribute, "workers": workers, "replicas": replicas}
    return Distributed(plain, log.history, stopped, chief, about)
