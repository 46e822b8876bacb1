"""Backward warping and flow composition (vid2vid.models.warp)."""

import pytest
import torch

from vid2vid.models import compose_flows, warp


def _constant_flow(b, h, w, dx, dy, dtype=torch.float32):
    flow = torch.zeros(b, 2, h, w, dtype=dtype)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


def test_integer_translation_reproduces_shifted_image_inside_frame():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 9, 11)
    dx, dy = 2, -1
    out = warp(img, _constant_flow(2, 9, 11, dx, dy))
    # out[y, x] = img[y + dy, x + dx] wherever that source pixel exists.
    torch.testing.assert_close(out[:, :, 1:, : 11 - dx], img[:, :, :-1, dx:], atol=1e-5, rtol=0)


def test_outside_samples_take_the_border_pixel():
    img = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 3, 6).contiguous()
    out = warp(img, _constant_flow(1, 3, 6, 3, 0))
    # Columns 3..5 look past the right edge and repeat the last column (value 5).
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([3.0, 4, 5, 5, 5, 5]), atol=1e-5, rtol=0)


def test_zero_flow_is_identity():
    torch.manual_seed(1)
    img = torch.rand(1, 3, 7, 5)
    torch.testing.assert_close(warp(img, torch.zeros(1, 2, 7, 5)), img, atol=1e-6, rtol=0)


def test_half_pixel_shift_averages_neighbours():
    img = torch.tensor([[[[0.0, 2.0, 4.0, 8.0]]]]).expand(1, 1, 2, 4).contiguous()
    out = warp(img, _constant_flow(1, 2, 4, 0.5, 0))
    torch.testing.assert_close(out[0, 0, 0, :3], torch.tensor([1.0, 3.0, 6.0]), atol=1e-5, rtol=0)


def test_gradcheck_image_and_flow():
    torch.manual_seed(2)
    img = torch.rand(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    # Non-integer flows that stay inside the frame: bilinear is smooth there.
    flow = (torch.rand(1, 2, 4, 5, dtype=torch.float64) * 0.6 + 0.2).requires_grad_(True)
    assert torch.autograd.gradcheck(warp, (img, flow), eps=1e-6, atol=1e-5)


def test_bf16_autocast_and_channels_last_follow_the_input():
    img = torch.rand(1, 3, 8, 8).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    flow = _constant_flow(1, 8, 8, 1, 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = warp(img, flow)
    assert out.dtype == torch.bfloat16
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out[:, :, :, :7].float(), img[:, :, :, 1:].float())


@pytest.mark.parametrize(
    "img_shape, flow_shape, match",
    [
        ((3, 8, 8), (1, 2, 8, 8), r"image must be \[B, C, H, W\]"),
        ((1, 3, 8, 8), (1, 3, 8, 8), r"flow must be \[B, 2, H, W\]"),
        ((1, 3, 8, 8), (1, 2, 8, 9), "share batch and size"),
    ],
)
def test_shape_errors(img_shape, flow_shape, match):
    with pytest.raises(ValueError, match=match):
        warp(torch.zeros(img_shape), torch.zeros(flow_shape))


def test_compose_constant_flows_adds_them():
    flows = torch.stack([_constant_flow(1, 6, 6, 1, 0), _constant_flow(1, 6, 6, 0, 2),
                         _constant_flow(1, 6, 6, -1, 1)], dim=1)
    total = compose_flows(flows)
    torch.testing.assert_close(total, _constant_flow(1, 6, 6, 0, 3), atol=1e-5, rtol=0)


def test_composed_flow_equals_warping_step_by_step():
    # frame 1 = warp(frame 0, f1), frame 2 = warp(frame 1, f2); pulling frame 2
    # from frame 0 with the composed flow must match the two steps (away from
    # the borders, where the clamped samples differ).
    torch.manual_seed(3)
    frame0 = torch.rand(1, 3, 12, 12)
    f1 = _constant_flow(1, 12, 12, 1, 0)  # frame 1 -> frame 0
    f2 = torch.zeros(1, 2, 12, 12)  # frame 2 -> frame 1: varies per row
    f2[:, 1] = torch.arange(12.0).remainder(2).view(1, 12, 1)
    frame2_steps = warp(warp(frame0, f1), f2)
    frame2_once = warp(frame0, compose_flows(torch.stack([f1, f2], dim=1)))
    torch.testing.assert_close(frame2_once[..., :10, :10], frame2_steps[..., :10, :10],
                               atol=1e-5, rtol=0)
