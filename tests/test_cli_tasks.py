"""The task choice on the command line: wrong combinations fail in one line, before any work."""

import pytest
from click.testing import CliRunner

from vid2vid.cli import cli


@pytest.mark.parametrize("args, message", [
    (["preprocess"], "give at least one VIDEO_OR_FOLDER"),
    (["preprocess", "v.mp4", "--task", "labels"], "--task labels needs --labels DIR"),
    (["preprocess", "v.mp4", "--task", "face", "--num-classes", "20"], "belong to --task labels"),
    (["preprocess", "--from-vid2vid", "root", "v.mp4"], "give no VIDEO with it"),
    (["preprocess", "--from-vid2vid", "no_such_root"], "no_such_root"),
    (["preprocess", "v.mp4", "--fg-classes", "24,x"], "comma-separated list"),
])
def test_bad_task_combinations_are_one_line_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_labels_import_takes_one_video(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels").mkdir()
    result = CliRunner().invoke(cli, ["preprocess", "a.mp4", "b.mp4", "--task", "labels",
                                      "--labels", "labels"])
    assert result.exit_code == 2 and "give one VIDEO" in result.output


def _fake_dataset(root, task="labels"):
    import json

    root.mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"format": "vid2vid-dataset", "version": 1,
                                                "complete": True, "task": task}))


def test_a_folder_of_converted_sequences_counts_as_its_datasets(tmp_path, monkeypatch):
    from train.cli import default_datasets, resolve_config

    monkeypatch.chdir(tmp_path)
    for seq in ("seq0001", "seq0000"):
        _fake_dataset(tmp_path / "data" / "cityscapes" / seq)
    _fake_dataset(tmp_path / "data" / "dancer", task="pose")
    assert default_datasets() == ["data/cityscapes/seq0000", "data/cityscapes/seq0001",
                                  "data/dancer"]
    cfg, _ = resolve_config({"data": ["data/cityscapes"]}, None, None)
    assert list(cfg.data) == ["data/cityscapes/seq0000", "data/cityscapes/seq0001"]
    # The task's model defaults: a street camera moves, no background plate; a body gets one.
    assert not cfg.model.background_plate
    cfg, _ = resolve_config({"data": ["data/dancer"]}, None, None)
    assert cfg.model.background_plate


def test_run_of_a_collection_is_named_after_it(tmp_path):
    from vid2vid.runs import new_run_dir

    seqs = [str(tmp_path / "cityscapes" / s) for s in ("seq0000", "seq0001", "seq0002")]
    assert new_run_dir(tmp_path / "runs", seqs).name.startswith("cityscapes-")
    assert new_run_dir(tmp_path / "runs", [seqs[0]]).name.startswith("seq0000-")


def test_datasets_of_different_tasks_do_not_train_together():
    from vid2vid.errors import UserError
    from vid2vid.tasks import FaceTask, LabelTask, PoseTask, same_task, task_from_dict

    assert same_task([PoseTask(), PoseTask()], ["a", "b"]) == PoseTask()
    with pytest.raises(UserError, match="train one task at a time"):
        same_task([PoseTask(), FaceTask()], ["data/dancer", "data/talk"])
    with pytest.raises(UserError, match="train one task at a time"):     # 35 vs 20 classes
        same_task([LabelTask(), LabelTask(num_classes=20)], ["a", "b"])
    labels = LabelTask(num_classes=20, fg_classes=(3,), instances=False)
    assert task_from_dict(labels.to_dict()) == labels and labels.channels == 21
