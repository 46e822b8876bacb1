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
