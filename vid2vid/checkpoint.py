"""Checkpoints: atomic writes, a `latest` pointer, and rebuilding G from a file alone.

A checkpoint is one `torch.save` dict holding the run's config (with the model
config inside it), the generator's construction arguments (`map_channels`,
`levels`), the weights of G, G_ema and the discriminators, optimiser and
scaler states, the schedule position and RNG states. Everything in it is a
tensor or a plain Python value, so it loads with `weights_only=True` (no
arbitrary pickles are executed).

Writes go to a temporary file, are fsynced and renamed; only then is the
`latest` pointer (a one-line text file naming the checkpoint) replaced the
same way. A kill -9 at any moment leaves `latest` naming a complete file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from vid2vid.errors import UserError

LATEST = "latest"
_NAME = re.compile(r"^ckpt-(\d+)\.pt$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep_last: int) -> Path:
    """Writes `ckpt-<step>.pt` atomically, points `latest` at it, prunes old ones."""
    run_dir = Path(run_dir)
    path = run_dir / f"ckpt-{step:08d}.pt"
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    pointer = run_dir / (LATEST + ".tmp")
    with open(pointer, "w") as f:
        f.write(path.name + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(pointer, run_dir / LATEST)
    _fsync_dir(run_dir)
    for old in checkpoints(run_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoint files, oldest first."""
    found = [p for p in Path(run_dir).glob("ckpt-*.pt") if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The file `latest` names, or else the newest checkpoint file; None if there is none."""
    run_dir = Path(run_dir)
    pointer = run_dir / LATEST
    if pointer.exists():
        name = pointer.read_text().strip()
        if name and (run_dir / name).exists():
            return run_dir / name
    files = checkpoints(run_dir)
    return files[-1] if files else None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint; a one-line UserError for a missing, corrupt or foreign file."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise UserError(f"{path} holds no checkpoint (ckpt-*.pt); train one with "
                            "vid2vid train, or pass a checkpoint file")
        path = found
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist; check the path")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        raise UserError(f"checkpoint {path} is damaged or not a vid2vid checkpoint "
                        f"({type(e).__name__}); use an earlier ckpt-*.pt of that run") from None
    if not isinstance(state, dict) or state.get("format") != "vid2vid-checkpoint":
        raise UserError(f"{path} is not a vid2vid checkpoint")
    state["path"] = str(path)
    return state


def load_generator(path: Path, device: torch.device | str = "cpu", ema: bool = True):
    """Rebuilds the generator from a checkpoint alone (no training code needed).

    Returns (generator in eval mode on `device`, checkpoint dict without weights).
    """
    from vid2vid.config import saved_model_config
    from vid2vid.models import Generator

    state = load_checkpoint(path)
    cfg = saved_model_config(state["config"]["model"])
    G = Generator(cfg, map_channels=state["map_channels"], levels=state["levels"])
    G.load_state_dict(state["G_ema" if ema else "G"])
    G.to(device).eval().requires_grad_(False)
    info = {k: v for k, v in state.items() if not k.startswith(("G", "D", "opt", "scaler"))}
    return G, info
