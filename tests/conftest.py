"""Settings every test runs under."""

import pytest


@pytest.fixture(autouse=True)
def _fixed_threads(monkeypatch):
    # CPU sharing (vid2vid/cpu_share.py) changes the thread count while other vid2vid
    # jobs run, and with it the last bits of CPU reductions: the resume tests compare
    # runs bit for bit. tests/test_cpu_share.py turns it back on where it is tested.
    monkeypatch.setenv("VID2VID_SHARE_CPU", "0")
