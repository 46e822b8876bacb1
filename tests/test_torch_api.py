"""The torch APIs the code relies on exist in this torch, and setup.cfg pins a torch that has them.

torch.OutOfMemoryError sits inside an `except` clause of the trainer: on a torch
without it, the clause itself raises AttributeError and hides the real error.
"""

import configparser
import re
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# Each API and the first torch release that has it (from the PyTorch release notes).
NEEDED = {"OutOfMemoryError": (2, 5), "amp.GradScaler": (2, 3), "_foreach_lerp_": (2, 1)}


def pinned_torch() -> tuple[int, int]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    for line in cfg["options"]["install_requires"].splitlines():
        m = re.fullmatch(r"torch>=(\d+)\.(\d+)", line.strip())
        if m:
            return int(m.group(1)), int(m.group(2))
    raise AssertionError("setup.cfg has no torch>=X.Y pin")


def test_pin_covers_every_api_used():
    assert pinned_torch() >= max(NEEDED.values())


def test_apis_exist_here():
    for dotted in NEEDED:
        obj = torch
        for part in dotted.split("."):
            obj = getattr(obj, part)
    torch.amp.GradScaler("cpu", enabled=False)


def test_no_other_version_sensitive_api_crept_in():
    """Every `torch.X` attribute written in the code is listed above or is long-standing."""
    code = "\n".join(p.read_text() for pkg in ("vid2vid", "train", "infer", "preprocess")
                     for p in (ROOT / pkg).rglob("*.py"))
    for name in ("OutOfMemoryError", "amp.GradScaler"):
        assert f"torch.{name}" in code   # still used: keep its pin honest
    assert "torch.compiler." not in code and "torch.nn.attention" not in code
