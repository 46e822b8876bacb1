"""Flow estimators: DIS by default, RAFT through torchvision's standard weight loading."""

import numpy as np
import pytest
import torch

from preprocess.flow import DISFlow, RAFTFlow, make_flow, raft_weights_file


def test_raft_without_weights_falls_back_to_dis_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    said = []
    flow = make_flow("raft", said.append)
    assert isinstance(flow, DISFlow)
    assert len(said) == 1 and "RAFT weights not found" in said[0] and "DIS" in said[0]


def test_raft_loads_weights_from_the_hub_cache_and_gives_backward_flow(tmp_path, monkeypatch):
    """With a weights file where torchvision keeps it, --flow raft really runs RAFT.

    The weights here are random (none can be downloaded), so only the loading path,
    the padding to multiples of 8 and the output layout are checked, not accuracy.
    """
    from torchvision.models.optical_flow import raft_large

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = raft_weights_file()
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(raft_large().state_dict(), path)
    flow = make_flow("raft", lambda msg: pytest.fail(msg))
    assert isinstance(flow, RAFTFlow)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)     # not multiples of 8
    out = flow(None, None, a, a)
    assert out.shape == (70, 90, 2) and out.dtype == np.float32 and np.isfinite(out).all()
