"""Turning `vid2vid train` flags into a TrainConfig (and a checkpoint to resume)."""

from __future__ import annotations

from pathlib import Path

from vid2vid.checkpoint import load_checkpoint
from vid2vid.config import TrainConfig, saved_train_config
from vid2vid.dataset_dir import read_meta
from vid2vid.errors import UserError
from vid2vid.runs import runs_for_dataset
from vid2vid.tasks import task_of_dataset

# Settings that may differ when a run is resumed (where and how fast, not what is computed).
RESUMABLE = {"device", "workers"}


def _datasets_in(folder: Path) -> list[str]:
    """`folder` itself when it is a dataset, else the finished datasets directly inside it
    (a converted collection such as data/cityscapes/<sequence>/)."""
    if read_meta(folder) is not None:
        return [str(folder)]
    found = []
    for d in sorted(folder.iterdir()) if folder.is_dir() else ():
        meta = read_meta(d) if d.is_dir() else None
        if meta is not None and meta.get("complete"):
            found.append(str(d))
    return found


def default_datasets(root: Path = Path("data")) -> list[str]:
    """Every finished dataset directory under ./data/ (the default output of preprocess),
    one level down too (the sequences of `preprocess --from-vid2vid`)."""
    found = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if d.is_dir():
                meta = read_meta(d)
                found += ([str(d)] if meta is not None and meta.get("complete")
                          else _datasets_in(d) if meta is None else [])
    if not found:
        raise UserError(f"no datasets under {root}/; run vid2vid preprocess VIDEO first "
                        "(or pass --data DIR)")
    return found


def resolve_config(overrides: dict, config_file: str | None,
                   resume: str | None) -> tuple[TrainConfig, Path | None]:
    """The run's config and the checkpoint to resume (None: a fresh run).

    `minutes` and `steps` are the two ways to size a run; only one may be given.
    On resume, a larger `steps` extends the run (its schedule unchanged up to
    the old end, the extra steps in its last stage); `minutes` on resume is
    handled by the trainer, which calibrates how many steps they buy.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    if "steps" in given and given.get("minutes"):
        raise UserError("--steps and --minutes both size the run; pass one of them")
    if resume is None:
        if "steps" in given:
            given["minutes"] = 0.0   # steps given: no budget to calibrate (a --config may have one)
        if "data" not in given:
            given["data"] = default_datasets()
        data = []
        for d in given["data"]:
            inside = _datasets_in(Path(d))
            if not inside:
                raise UserError(f"{d} is not a dataset directory (no meta.json) nor a folder "
                                "of them; create one with vid2vid preprocess VIDEO")
            data += inside
        given["data"] = data
        task = task_of_dataset(read_meta(Path(data[0])) or {})
        return TrainConfig.resolve(given, config_file, task.model_defaults), None

    if resume == "latest":
        data = given.get("data") or default_datasets()
        runs = runs_for_dataset(Path(data[0]))
        if not runs:
            raise UserError(f"no run has trained on {data[0]} yet; start one with "
                            "vid2vid train (without --resume)")
        resume_path = runs[0]
    else:
        resume_path = Path(resume)
    ckpt = load_checkpoint(resume_path)
    cfg = saved_train_config(ckpt["config"])
    given.pop("minutes", None)   # more minutes: the trainer turns them into steps
    steps = given.pop("steps", None)
    if steps is not None and steps != cfg.steps:
        if steps < cfg.steps:
            raise UserError(f"{resume_path} is a run of {cfg.steps} steps; --steps {steps} "
                            f"would shorten it. Pass more than {cfg.steps} to train longer")
        # Extend: the old layout is kept (schedule_steps), the extra steps go to the last stage.
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "steps": steps,
                                     "schedule_steps": cfg.schedule_steps or cfg.steps})
    changed = sorted(k for k, v in given.items() if k not in RESUMABLE
                     and cfg.to_dict().get(k) != (list(v) if isinstance(v, tuple) else v))
    if changed or config_file:
        raise UserError("--resume continues the run with its own config; drop "
                        + ", ".join("--" + k.replace("_", "-") for k in changed)
                        + (" --config" if config_file else ""))
    if given:
        cfg = TrainConfig.from_dict({**cfg.to_dict(),
                                     **{k: v for k, v in given.items() if k in RESUMABLE}})
    return cfg, Path(ckpt["path"])
