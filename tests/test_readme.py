"""The README's walk-throughs run, command by command, as a new user would type them.

A fenced block preceded by `<!-- walkthrough: NAME -->` in README.md is a
sequence of commands on real data. This test runs every `vid2vid` line of it
in order, in a fresh folder where the files the block names exist (linked to
the test data of ../shared/data), with options appended that make each step
small (a few frames, the tiny preset): click keeps the last value of an option,
so the README's own options are still parsed and checked, and its paths,
placeholders and command order must really work. Other lines of the block
(downloads) are the user's business and are skipped.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from vid2vid.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHARED = ROOT.parent / "shared" / "data"

# Appended to each command: small and fast, on the CPU.
QUICK = {
    "preprocess": ["--max-size", "128", "--crop-size", "64"],
    "train": ["--preset", "tiny", "--size", "32", "--steps", "4", "--frames", "2",
              "--device", "cpu"],
    "transfer": ["--max-frames", "4", "--device", "cpu"],
    "evaluate": ["--max-frames", "3", "--device", "cpu"],
}
FIRST_FRAMES = ["--end", "24"]       # preprocess of a video: its first second is enough


def _dance_video() -> Path | None:
    path = os.environ.get("VID2VID_TEST_VIDEO")
    return Path(path) if path and Path(path).exists() else None


# Files each walk-through expects the user to have, and where the tests find them.
INPUTS = {
    "pose": lambda: {"downloads/mg/musicalgestures/examples/dancer.avi": _dance_video(),
                     "other_dance.mp4": _dance_video()},
    "face": lambda: {"talk.mp4": SHARED / "face" / "talk.mp4",
                     "drive.mp4": SHARED / "face" / "drive.mp4"},
    "labels": lambda: {"cityscapes": SHARED / "cityscapes"},
}


def walkthroughs() -> dict[str, list[str]]:
    """NAME -> the `vid2vid` lines of the block marked `<!-- walkthrough: NAME -->`."""
    found: dict[str, list[str]] = {}
    name = None
    in_block = False
    for line in README.read_text().splitlines():
        m = re.match(r"<!--\s*walkthrough:\s*(\w+)\s*-->", line.strip())
        if m:
            name = m.group(1)
            continue
        if line.strip().startswith("```"):
            if in_block:
                name = None
            in_block = not in_block
            if in_block and name is not None:
                found[name] = []
            continue
        if in_block and name is not None:
            for part in line.split("&&"):
                part = re.sub(r"\s+#.*$", "", part.strip())
                if part.startswith("vid2vid "):
                    found[name].append(part)
    return found


def test_readme_has_the_three_walkthroughs():
    assert set(walkthroughs()) == set(INPUTS)
    for name, lines in walkthroughs().items():
        commands = [shlex.split(line)[1] for line in lines]
        assert commands[:2] == ["preprocess", "train"], name
        assert {"transfer", "evaluate"} <= set(commands), name


def _newest_run(pattern: str) -> str:
    """`runs/name-<date>` -> the run train just wrote (the placeholder a user fills in)."""
    prefix = pattern.split("<")[0]
    runs = sorted(Path(".").glob(prefix + "*"), key=lambda p: p.stat().st_mtime)
    assert runs, f"no run matches {pattern}"
    return str(runs[-1])


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_readme_walkthrough_runs(name, tmp_path, monkeypatch):
    inputs = INPUTS[name]()
    missing = [k for k, v in inputs.items() if v is None or not Path(v).exists()]
    if missing:
        pytest.skip(f"test data for {', '.join(missing)} not found (VID2VID_TEST_VIDEO, "
                    "../shared/data)")
    monkeypatch.chdir(tmp_path)
    for rel, src in inputs.items():
        Path(rel).parent.mkdir(parents=True, exist_ok=True)
        Path(rel).symlink_to(Path(src).resolve())
    runner = CliRunner()
    for line in walkthroughs()[name]:
        args = shlex.split(line)[1:]
        args = [_newest_run(a) if "<" in a else a for a in args]
        command = args[0]
        extra = list(QUICK.get(command, []))
        if command == "preprocess" and "--from-vid2vid" not in args:
            extra += FIRST_FRAMES
        result = runner.invoke(cli, args + extra, catch_exceptions=False)
        assert result.exit_code == 0, f"{line}\n{result.output[-2000:]}"
    assert list(Path(".").glob("*.mp4")), "the walk-through wrote no video"
    assert list(Path("runs").glob("*/report.html")), "the walk-through wrote no report"
