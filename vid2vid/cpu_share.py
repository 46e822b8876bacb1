"""Several vid2vid jobs on one CPU: each runs its share of the cores' threads.

Torch's OpenMP threads spin while they wait for one another. When two processes
each run one thread per core, the waits are for threads that the other process
has preempted, and both jobs slow down 10-40x (benchmarks/RESULTS.md, "two at
once"). Lowering the spin for everyone costs a job alone up to 40 %. So each CPU
job of vid2vid (train, transfer, evaluate, dream --train) leaves a file named by
its process in a folder of the temp dir and, every few seconds between steps or
frames, counts the live ones and runs `threads at start // jobs` threads. Files of processes that
died are ignored and removed. Other programs' torch jobs are not seen.

`VID2VID_SHARE_CPU=0` turns it off.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

_USER = os.getuid() if hasattr(os, "getuid") else 0
FOLDER = Path(tempfile.gettempdir()) / f"vid2vid-cpu-jobs-{_USER}"


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks (so a reused pid is not taken for it);
    "0" where /proc is missing; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None if Path("/proc/self/stat").exists() else _alive_elsewhere(pid)
    except (OSError, IndexError):
        return "0"


def _alive_elsewhere(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:
        pass
    return "0"


class CpuShare:
    """`with CpuShare(device) as share:` ... `share.poll()` between steps or frames."""

    def __init__(self, device: torch.device | str = "cpu", folder: Path = FOLDER,
                 every_s: float = 2.0):
        self.on = (torch.device(device).type == "cpu"
                   and os.environ.get("VID2VID_SHARE_CPU", "1") != "0")
        self.folder, self.every_s = Path(folder), every_s
        self.full = torch.get_num_threads()
        self.file: Path | None = None
        self.checked = float("-inf")

    def __enter__(self) -> "CpuShare":
        if self.on and self.full > 1:
            pid = os.getpid()
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.file = self.folder / f"{pid}-{_started(pid) or 0}"
                self.file.touch()
            except OSError:   # no writable temp dir: run as if alone
                self.file = None
            self.poll(force=True)
        return self

    def jobs(self) -> int:
        """vid2vid CPU jobs running now, this one included."""
        n = 0
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return 1
        for entry in entries:
            pid, _, started = entry.name.partition("-")
            if not pid.isdigit():
                continue
            now = _started(int(pid))
            if now is not None and (now == started or "0" in (now, started)):
                n += 1
            else:
                entry.unlink(missing_ok=True)   # a job that ended without cleaning up
        return max(n, 1)

    def poll(self, force: bool = False) -> int:
        """Threads this job runs now (re-counted at most every `every_s` seconds)."""
        if self.file is None:
            return torch.get_num_threads()
        now = time.monotonic()
        if force or now - self.checked >= self.every_s:
            self.checked = now
            threads = max(1, self.full // self.jobs())
            if threads != torch.get_num_threads():
                torch.set_num_threads(threads)
        return torch.get_num_threads()

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.unlink(missing_ok=True)
            self.file = None
            torch.set_num_threads(self.full)
