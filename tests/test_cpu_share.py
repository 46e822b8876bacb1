"""vid2vid jobs on one CPU split its threads between them (vid2vid.cpu_share)."""

import os
import subprocess
import sys

import pytest
import torch

from vid2vid.cpu_share import CpuShare, _started


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.delenv("VID2VID_SHARE_CPU")   # tests/conftest.py turns sharing off elsewhere
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_alone_keeps_its_threads_and_cleans_up(tmp_path, two_threads):
    with CpuShare("cpu", folder=tmp_path) as share:
        assert share.jobs() == 1 and share.poll(force=True) == 2
        assert len(list(tmp_path.iterdir())) == 1
    assert list(tmp_path.iterdir()) == []
    assert torch.get_num_threads() == 2


def test_a_second_job_halves_the_threads_until_it_ends(tmp_path, two_threads):
    other = os.getppid()   # a live process standing in for another vid2vid job
    with CpuShare("cpu", folder=tmp_path) as share:
        marker = tmp_path / f"{other}-{_started(other)}"
        marker.touch()
        assert share.poll() == 2, "re-counted only every few seconds"
        assert share.poll(force=True) == 1 and torch.get_num_threads() == 1
        marker.unlink()
        assert share.poll(force=True) == 2
    assert torch.get_num_threads() == 2


def test_dead_and_reused_pids_are_not_counted(tmp_path, two_threads):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / f"{gone.pid}-1").touch()                     # ended without cleaning up
    (tmp_path / f"{os.getppid()}-12345678901").touch()       # that pid is someone else now
    (tmp_path / "notes.txt").touch()
    with CpuShare("cpu", folder=tmp_path) as share:
        assert share.jobs() == 1 and torch.get_num_threads() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_off_for_gpus_and_when_asked(tmp_path, two_threads, monkeypatch):
    with CpuShare("cuda", folder=tmp_path) as share:
        assert share.file is None
    monkeypatch.setenv("VID2VID_SHARE_CPU", "0")
    with CpuShare("cpu", folder=tmp_path) as share:
        assert share.file is None and share.poll(force=True) == 2
    assert list(tmp_path.iterdir()) == []
