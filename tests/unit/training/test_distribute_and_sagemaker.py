"""Multi-worker and SageMaker plumbing without training: roles, the training schedule as the
custom loop drives it, the entry point's reading of SageMaker's environment, and model.tar.gz
unpacking."""

import io
import json
import tarfile

import numpy as np
import pytest

from training import sagemaker_entry
from training.config import TrainConfig
from training.distribute import cluster_role, make_strategy
from training.publish import PublishError, is_archive, unpack_artifact


def tf_config(cluster, task_type, index):
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def test_the_chief_is_the_chief_task_else_worker_zero():
    workers = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    assert cluster_role(tf_config(workers, "worker", 0)) == (True, 2)
    assert cluster_role(tf_config(workers, "worker", 1)) == (False, 2)
    with_chief = {"chief": ["127.0.0.1:3"], **workers}
    assert cluster_role(tf_config(with_chief, "worker", 0)) == (False, 3)
    assert cluster_role(tf_config(with_chief, "chief", 0)) == (True, 3)
    assert cluster_role(None) == (True, 1)


class Clock:
    """A clock the test moves: each epoch takes `epoch_seconds`."""

    def __init__(self, epoch_seconds: float):
        self.now, self.step = 0.0, epoch_seconds

    def __call__(self) -> float:
        self.now += self.step / 2  # read at each epoch's start and end
        return self.now


def drive(config: TrainConfig, val_losses: list[float], clock) -> tuple[list, dict, list[float]]:
    """The schedule as the distributed loop calls it (Keras' CallbackList, no fit): epochs
    with these validation losses until it stops; returns the callbacks, why_stopped and the
    learning rate after each epoch."""
    import keras

    from training.model import build_model, schedule, why_stopped

    model = build_model(config, (4, 4, 1), 2)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    callbacks = schedule(config, None, clock)
    run = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    history: dict[str, list[float]] = {"loss": [], "val_loss": [], "val_accuracy": []}
    rates = []
    run.on_train_begin()
    for epoch, val_loss in enumerate(val_losses[: config.max_epochs]):
        run.on_epoch_begin(epoch)
        logs = {"loss": val_loss, "val_loss": val_loss, "val_accuracy": 1 - val_loss}
        rates.append(float(model.optimizer.learning_rate))  # this epoch's
        run.on_epoch_end(epoch, logs)
        for key in history:
            history[key].append(logs[key])
        if model.stop_training:
            break
    run.on_train_end()
    return callbacks, why_stopped(callbacks, history, config), rates


def test_the_schedule_stops_after_patience_and_halves_the_rate_on_a_plateau():
    config = TrainConfig(dataset="x", patience=4, architecture="mlp")
    losses = [1.0, 0.8, 0.7] + [0.75] * 10
    _, stopped, rates = drive(config, losses, Clock(1.0))
    assert stopped["reason"] == "converged" and stopped["epochs"] == 7
    assert stopped["best_epoch"] == 3 and not stopped["still_improving"]
    # patience 4: the rate is halved after 2 epochs without a better loss (epochs 4 and 5),
    # two before early stopping
    assert rates == pytest.approx([1e-3] * 5 + [5e-4] * 2)


def test_a_lower_rate_that_helps_keeps_training_going():
    config = TrainConfig(dataset="x", patience=4, architecture="mlp")
    losses = [1.0, 0.8, 0.7, 0.75, 0.75, 0.72, 0.69, 0.68] + [0.7] * 10
    _, stopped, rates = drive(config, losses, Clock(1.0))
    assert stopped["best_epoch"] == 8 and stopped["epochs"] == 12  # not 7
    assert rates[5:8] == pytest.approx([5e-4] * 3)


def test_the_time_budget_stops_before_an_epoch_that_would_end_past_it():
    config = TrainConfig(dataset="x", max_minutes=1, architecture="mlp")  # 60 s
    losses = [1 / (i + 1) for i in range(50)]  # always improving
    callbacks, stopped, _ = drive(config, losses, Clock(25.0))  # 25 s per epoch
    # after epoch 2 (50 s), a third would end at 75 s > 60 s
    assert stopped["reason"] == "budget" and stopped["epochs"] == 2
    assert callbacks[-1].stopped


def test_a_run_that_ends_on_the_maximum_while_improving_says_so():
    config = TrainConfig(dataset="x", epochs=6, architecture="mlp")
    _, stopped, _ = drive(config, [1 / (i + 1) for i in range(50)], Clock(1.0))
    assert stopped == {
        "reason": "max_epochs",
        "epochs": 6,
        "best_epoch": 6,
        "max_epochs": 6,
        "patience": config.stop_patience,
        "max_minutes": 30.0,
        "still_improving": True,
    }


def test_distribute_is_checked_and_multi_worker_needs_tf_config(monkeypatch):
    with pytest.raises(ValueError, match="allowed: mirrored, multi-worker"):
        TrainConfig(distribute="horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        make_strategy("multi-worker")


def test_a_channel_with_one_npz_is_that_file_else_the_folder(tmp_path):
    npz = tmp_path / "npz"
    npz.mkdir()
    np.savez(npz / "digits.npz", x=np.zeros((2, 4, 4), np.uint8), y=np.array([0, 1]))
    assert sagemaker_entry.channel_dataset(str(npz)) == str(npz / "digits.npz")
    folders = tmp_path / "images"
    (folders / "cat").mkdir(parents=True)
    assert sagemaker_entry.channel_dataset(str(folders)) == str(folders)
    assert sagemaker_entry.channel_dataset(None) is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sagemaker_entry.channel_dataset(str(tmp_path / "missing"))


def test_hyperparameters_from_sm_hps_and_arguments_the_arguments_win(tmp_path):
    channel = tmp_path / "training"
    (channel / "cat").mkdir(parents=True)
    env = {
        "SM_HPS": json.dumps(
            {"epochs": 7, "batch_size": 32, "architecture": "mlp", "sagemaker_program": "x.py"}
        ),
        "SM_CHANNEL_TRAINING": str(channel),
    }
    argv = ["--epochs", "3", "--model_dir", "s3://bucket/job/model", "--unknown", "1"]
    config = sagemaker_entry.config_from_environment(argv, env)
    assert (config.epochs, config.batch_size, config.architecture) == (3, 32, "mlp")
    assert config.dataset == str(channel) and config.test_dataset is None
    # a hyperparameter is never taken for a longer one it is a prefix of
    assert sagemaker_entry.config_from_environment(["--epoch", "9"], {}).epochs is None
    with pytest.raises(ValueError, match="unknown architecture"):
        sagemaker_entry.config_from_environment([], {"SM_HPS": '{"architecture": "vgg"}'})


def test_tf_config_from_sagemaker_hosts():
    config = json.loads(sagemaker_entry.tf_config_from_hosts(["algo-2", "algo-1"], "algo-2"))
    assert config == {
        "cluster": {"worker": ["algo-1:2222", "algo-2:2222"]},
        "task": {"type": "worker", "index": 1},
    }
    assert cluster_role(json.dumps(config)) == (False, 2)
    with pytest.raises(ValueError, match="not in SM_HOSTS"):
        sagemaker_entry.tf_config_from_hosts(["algo-1"], "algo-9")


def make_tar(path, members: dict[str, bytes], gz: bool = True):
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


@pytest.mark.parametrize("top", ["", "model/"])
def test_model_tar_gz_unpacks_to_its_artifact_folder(tmp_path, top):
    archive = make_tar(
        tmp_path / "model.tar.gz", {f"{top}manifest.json": b"{}", f"{top}model.tflite": b"x"}
    )
    assert is_archive(archive) and not is_archive(tmp_path)
    folder = unpack_artifact(archive, tmp_path / "out")
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.tflite"]


def test_an_archive_without_one_manifest_or_escaping_its_folder_is_refused(tmp_path):
    with pytest.raises(PublishError, match="found 0"):
        unpack_artifact(make_tar(tmp_path / "a.tar.gz", {"model.tflite": b"x"}), tmp_path / "a")
    two = make_tar(tmp_path / "b.tar.gz", {"a/manifest.json": b"{}", "b/manifest.json": b"{}"})
    with pytest.raises(PublishError, match="found 2"):
        unpack_artifact(two, tmp_path / "b")
    escaping = make_tar(tmp_path / "c.tar", {"../manifest.json": b"{}"}, gz=False)
    with pytest.raises(PublishError, match="not a readable tar archive"):
        unpack_artifact(escaping, tmp_path / "c")
    assert not (tmp_path / "manifest.json").exists()
    (tmp_path / "d.tar.gz").write_bytes(b"not a tar")
    with pytest.raises(PublishError, match="not a readable tar archive"):
        unpack_artifact(tmp_path / "d.tar.gz", tmp_path / "d")


def test_a_failed_job_says_why_in_sagemakers_failure_file(tmp_path, capsys):
    env = {"SM_CHANNEL_TRAINING": str(tmp_path / "nothing"), "SM_OUTPUT_DIR": str(tmp_path)}
    assert sagemaker_entry.run([], env) == 2
    reason = (tmp_path / "failure").read_text()
    assert "does not exist" in reason and reason.strip() in capsys.readouterr().err


def test_the_weights_channel_is_its_one_h5_file(tmp_path):
    from training.sagemaker_entry import channel_weights, config_from_environment

    channel = tmp_path / "weights"
    channel.mkdir()
    with pytest.raises(ValueError, match="must hold one .h5 file; found none"):
        channel_weights(str(channel))
    (channel / "mobilenet.weights.h5").write_bytes(b"h5")
    assert channel_weights(str(channel)) == str(channel / "mobilenet.weights.h5")
    env = {"SM_CHANNEL_WEIGHTS": str(channel), "SM_HPS": '{"architecture": "mobilenet"}'}
    config = config_from_environment([], env)
    assert config.pretrained == str(channel / "mobilenet.weights.h5")
    (channel / "other.h5").write_bytes(b"h5")
    with pytest.raises(ValueError, match="found mobilenet.weights.h5, other.h5"):
        channel_weights(str(channel))
