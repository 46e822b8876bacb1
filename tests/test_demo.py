"""The README's promises: `vid2vid demo --quick` runs end to end, and every vid2vid
command line in the README parses (options that no longer exist fail here)."""

import json
import re
import shlex
from pathlib import Path

import click
import yaml
from click.testing import CliRunner

from vid2vid.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def test_demo_quick_runs_every_stage(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--quick", "--out", str(out), "--device", "cpu",
                                      "--seed", "3"])
    assert result.exit_code == 0, result.output[-3000:]
    for path in ("train.mp4", "drive.mp4", "data/train/meta.json", "run/latest",
                 "transfer.mp4", "transfer_compare.mp4", "run/eval.json", "run/report.html",
                 "controlled.json", "report.html"):
        assert (out / path).exists(), path
    page = (out / "report.html").read_text()
    assert "transfer vs true renders" in page and "<video" in page
    assert "demo done" in result.output
    run_config = yaml.safe_load((out / "run" / "config.yaml").read_text())
    # One fixed camera: the pose task's defaults give the run its background plate.
    assert run_config["model"]["background_plate"]
    assert run_config["seed"] == 3          # --seed reaches the training
    controlled = json.loads((out / "controlled.json").read_text())
    assert controlled["frames"] == 25 and 0 < controlled["psnr_db"] < 100
    assert 0 < controlled["ssim"] <= 1


def test_the_cpu_demo_config_is_a_valid_training_config(tmp_path):
    from vid2vid.cli import DEMO_CPU_TRAIN
    from vid2vid.config import TrainConfig

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(DEMO_CPU_TRAIN))
    cfg = TrainConfig.resolve({"preset": "small"}, str(path))
    defaults = TrainConfig()
    assert (cfg.lr_g, cfg.lr_d) == (2 * defaults.lr_g, 2 * defaults.lr_d)
    assert cfg.loss.fg_mask == 10 * defaults.loss.fg_mask


def readme_command_lines() -> list[str]:
    """`vid2vid ...` commands inside the README's code blocks and indented examples
    (a line chaining several with && gives each)."""
    found, in_block = [], False
    for raw in README.read_text().splitlines():
        if raw.strip().startswith("```"):
            in_block = not in_block
            continue
        if not (in_block or raw.startswith("    ")):
            continue
        for part in raw.split("&&"):
            part = part.strip()
            if part.startswith("vid2vid "):
                found.append(part)
    return found


def test_every_readme_command_line_parses():
    lines = readme_command_lines()
    assert len(lines) >= 8
    for line in lines:
        line = re.sub(r"\s+#.*$", "", line)                 # trailing comments
        line = re.sub(r"\[[^\]]*\]", "", line)            # [optional] notation
        args = shlex.split(line)[1:]
        name = args[0]
        assert name in cli.commands, line
        command = cli.commands[name]
        # Parsing alone: unknown options, wrong types and missing arguments raise here.
        args = [a.split("|")[0] for a in args[1:]]
        try:
            command.make_context(name, args, resilient_parsing=False)
        except click.exceptions.UsageError as e:
            raise AssertionError(f"README line does not parse: {line}: {e}") from None


def test_compare_to_reference_of_identical_videos(tmp_path):
    from infer.reference import compare_to_reference
    from tests.helpers_video import noise_frames, write_video

    frames = noise_frames(5, w=64, h=48)
    a = write_video(tmp_path / "a.mp4", frames)
    b = write_video(tmp_path / "b.mp4", frames)
    same = compare_to_reference(a, b)
    assert same["frames"] == 5 and same["psnr_db"] == 100 and same["ssim"] == 1.0
    other = write_video(tmp_path / "c.mp4", noise_frames(5, w=64, h=48, seed=3))
    assert compare_to_reference(a, other)["psnr_db"] < 40
