"""InstanceNorm: GroupNorm(C, C)'s numbers, the input's dtype and memory layout."""

import torch

from vid2vid.models.layers import InstanceNorm


def _pair(channels=8, affine=True):
    torch.manual_seed(0)
    ours = InstanceNorm(channels, affine=affine)
    if affine:
        torch.nn.init.normal_(ours.weight)
        torch.nn.init.normal_(ours.bias)
    reference = torch.nn.GroupNorm(channels, channels, affine=affine)
    reference.load_state_dict(ours.state_dict())   # same parameter names: old checkpoints load
    return ours, reference


def test_matches_group_norm_with_and_without_affine():
    x = torch.randn(2, 8, 12, 10) * 3 + 1
    for affine in (True, False):
        ours, reference = _pair(affine=affine)
        torch.testing.assert_close(ours(x), reference(x), atol=2e-6, rtol=1e-5)
        # the written-out form CUDA runs, checked here on the CPU
        torch.testing.assert_close(ours.normalize(x), reference(x), atol=2e-6, rtol=1e-5)


def test_gradients_match_group_norm():
    ours, reference = _pair()
    x1 = torch.randn(2, 8, 6, 6, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    (ours.normalize(x1) ** 2).sum().backward()
    (reference(x2) ** 2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.weight.grad, reference.weight.grad, atol=1e-4, rtol=1e-4)


def test_keeps_channels_last_and_bf16():
    ours, reference = _pair()
    x = (torch.randn(2, 8, 16, 16) * 4 + 2).contiguous(memory_format=torch.channels_last)
    for norm in (ours, ours.normalize):
        out = norm(x)
        assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = norm(x.bfloat16())
        assert low.dtype == torch.bfloat16
        assert low.is_contiguous(memory_format=torch.channels_last)
        assert (low.float() - reference(x)).abs().max() < 0.06
