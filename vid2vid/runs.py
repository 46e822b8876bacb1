"""Run directories: where `train` writes and how `transfer`/`evaluate` find a run.

    runs/<dataset>-<YYYYmmdd-HHMMSS>/
      config.yaml        the resolved TrainConfig (plus the holdout ranges)
      ckpt-NNNNNNNN.pt   checkpoints (last N kept), `latest` names the newest
      samples/           sample grids (PNG) and per-stage sample videos (mp4)
      tb/                TensorBoard logs
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from vid2vid.errors import UserError

CONFIG = "config.yaml"


def new_run_dir(root: Path, datasets: list[str]) -> Path:
    parents = {Path(d).resolve().parent for d in datasets}
    if len(datasets) > 1 and len(parents) == 1 and parents != {Path("data").resolve()}:
        # The sequences of one collection (preprocess --from-vid2vid): name it after that.
        stem = parents.pop().name
    else:
        stem = "+".join(Path(d).name for d in datasets[:2]) + ("+more" if len(datasets) > 2
                                                                else "")
    base = Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def read_run_config(run_dir: Path) -> dict:
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise UserError(f"{run_dir} is not a training run (no {CONFIG}); pass a directory "
                        "under runs/ that vid2vid train wrote")
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"{path} is unreadable ({e})") from None


def runs_for_dataset(dataset: Path, root: Path = Path("runs")) -> list[Path]:
    """Runs whose config trained on `dataset`, newest first."""
    target = Path(dataset).resolve()
    found = []
    for cfg_path in Path(root).glob(f"*/{CONFIG}"):
        try:
            with open(cfg_path) as f:
                data = (yaml.safe_load(f) or {}).get("data", [])
        except (OSError, yaml.YAMLError, AttributeError):
            continue
        if any(Path(d).resolve() == target for d in data):
            found.append(cfg_path.parent)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
