"""Sizing a run by minutes, and extending a finished run (CPU, tiny model, seconds)."""

import pytest
import torch
import yaml
from click.testing import CliRunner

import train.budget as budget
from tests.helpers_video import make_synthetic_dataset
from train.cli import resolve_config
from train.schedule import build_stages, extend_stages, stage_at
from train.trainer import train
from vid2vid.checkpoint import load_checkpoint
from vid2vid.cli import cli
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.errors import UserError


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("budget_data"), n=40, w=64, h=64)


def tiny(figure, **kw) -> TrainConfig:
    base = dict(data=(str(figure),), preset="tiny", model=ModelConfig.preset("tiny"), size=64,
                base_size=32, frames=2, bptt=2, steps=8, progressive=True, workers=0,
                log_every=2, sample_every=100, checkpoint_minutes=60.0)
    base.update(kw)
    return TrainConfig(**base)


def test_extend_stages_keeps_the_layout_and_runs_the_last_stage_on():
    old = build_stages(100, 128, 8, True)
    longer = extend_stages(old, 150)
    assert longer[:-1] == old[:-1]
    assert longer[-1].first_step == old[-1].first_step and longer[-1].last_step == 150
    assert all(stage_at(s, longer).index == stage_at(s, old).index for s in range(100))
    assert stage_at(140, longer).index == old[-1].index
    assert extend_stages(old, 100) == old


def test_steps_follow_the_budget_and_the_stage_shares(monkeypatch, figure):
    cfg = tiny(figure)
    stages = build_stages(1000, 64, 2, True, base_size=32)
    # 32 px stages cost 0.1 s a step, 64 px ones 0.4 s.
    monkeypatch.setattr(budget, "seconds_per_step",
                        lambda cfg, ch, part, size, *a: 0.1 if size == 32 else 0.4)
    b = budget.steps_for_minutes(cfg, stages, 10.0, 3, True, 64, torch.device("cpu"))
    share = {32: 0.0, 64: 0.0}
    for s in stages:
        share[s.size] += (s.last_step - s.first_step) / 1000
    per_step = 0.1 * share[32] + 0.4 * share[64]
    assert b.steps == pytest.approx(600 / per_step / budget.OVERHEAD, rel=0.01)
    assert budget.steps_for_minutes(cfg, stages, 20.0, 3, True, 64,
                                    torch.device("cpu")).steps == pytest.approx(2 * b.steps, 0.01)
    assert f"--steps {b.steps}" in b.line(10.0)


def test_a_budgeted_run_records_its_steps_and_the_rng_is_untouched(figure, tmp_path, capsys):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    b = budget.steps_for_minutes(tiny(figure), build_stages(1000, 64, 2, True, base_size=32),
                                 0.2, 3, True, 64, torch.device("cpu"))
    assert b.steps >= 1 and len(b.seconds_per_step) >= 2
    assert torch.equal(torch.get_rng_state(), before)
    run = train(tiny(figure, minutes=0.05), run_dir=tmp_path / "run", progress=False)
    printed = capsys.readouterr().out
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["minutes"] == 0.05 and recorded["steps"] >= 1
    assert f"reproduce it with --steps {recorded['steps']}" in printed
    assert load_checkpoint(run)["step"] == recorded["steps"]


def test_a_budget_in_minutes_calibrates_a_body_run_with_its_background_plate(figure, tmp_path):
    """The pose task's defaults give G the plate (and plate_base); the calibration's
    networks need one too, or `vid2vid train --minutes` (and `vid2vid demo`) stop."""
    result = CliRunner().invoke(cli, [
        "train", "--data", str(figure), "--preset", "tiny", "--size", "64", "--frames", "2",
        "--minutes", "0.1", "--workers", "0", "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["model"]["background_plate"] and recorded["model"]["plate_base"]
    assert "budget 0.1 min ->" in result.output


def test_resume_with_more_steps_extends_a_finished_run(figure, tmp_path):
    run = train(tiny(figure, steps=6), run_dir=tmp_path / "run", progress=False)
    cfg, ckpt = resolve_config({"steps": 10}, None, str(run))
    assert cfg.steps == 10 and cfg.schedule_steps == 6
    train(cfg, resume=ckpt, progress=False)
    state = load_checkpoint(run)
    assert state["step"] == 10
    assert state["config"]["schedule_steps"] == 6
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["steps"] == 10
    # Extended again: the layout is still the first run's.
    cfg, _ = resolve_config({"steps": 12}, None, str(run))
    assert cfg.schedule_steps == 6
    with pytest.raises(UserError, match="would shorten it"):
        resolve_config({"steps": 4}, None, str(run))


def test_the_extended_run_matches_a_run_laid_out_the_same_way(figure, tmp_path):
    """Extending is exact: 6 steps + 4 more == one run of 10 steps laid out over 6."""
    first = train(tiny(figure, steps=6), run_dir=tmp_path / "a", progress=False)
    cfg, ckpt = resolve_config({"steps": 10}, None, str(first))
    train(cfg, resume=ckpt, progress=False)
    whole = train(tiny(figure, steps=10, schedule_steps=6), run_dir=tmp_path / "b",
                  progress=False)
    a, b = load_checkpoint(first)["G"], load_checkpoint(whole)["G"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_steps_and_minutes_together_are_refused(figure):
    result = CliRunner().invoke(cli, ["train", "--data", str(figure), "--steps", "5",
                                      "--minutes", "1", "--dry-run"])
    assert result.exit_code == 2
    assert "pass one of them" in result.output
