"""Image, temporal and face discriminators, and the face crops they use."""

import dataclasses

import pytest
import torch

from vid2vid.config import ModelConfig
from vid2vid.crops import crop_and_resize, face_boxes
from vid2vid.models import (
    DiscriminatorOutput,
    FaceDiscriminator,
    ImageDiscriminator,
    TemporalDiscriminator,
)
from vid2vid.models.discriminators import FLOW_INPUT_UNITS, temporal_shift

TINY = ModelConfig.preset("tiny")  # d_layers=2, d_scales=2
C = 3


def _tdisc(**changes):
    torch.manual_seed(0)
    return TemporalDiscriminator(dataclasses.replace(TINY, **changes))


def _marked_clip(b=1, t=8, size=16, flow_x=0.0):
    """Frame i is filled with the value i; every consecutive flow is (flow_x, 0)."""
    frames = torch.arange(t, dtype=torch.float32).view(1, t, 1, 1, 1).expand(b, t, 3, size, size)
    flows = torch.zeros(b, t - 1, 2, size, size)
    flows[:, :, 0] = flow_x
    return frames.contiguous(), flows


def _capture_input(module):
    seen = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    return seen, handle


def test_image_d_outputs_logits_and_features_per_scale():
    torch.manual_seed(0)
    D = ImageDiscriminator(TINY, map_channels=C)
    out = D(torch.rand(2, C, 32, 32), torch.rand(2, 3, 32, 32))
    assert isinstance(out, DiscriminatorOutput)
    assert [tuple(lo.shape) for lo in out.logits] == [(2, 1, 8, 8), (2, 1, 4, 4)]
    assert len(out.features) == 2 and all(len(f) == TINY.d_layers + 1 for f in out.features)
    assert out.features[0][0].shape == (2, TINY.ndf, 16, 16)


def test_image_d_folds_time_into_batch():
    torch.manual_seed(1)
    D = ImageDiscriminator(TINY, map_channels=C).eval()  # eval: no power-iteration update
    maps, frames = torch.rand(2, 3, C, 32, 32), torch.rand(2, 3, 3, 32, 32)
    video = D(maps, frames)
    flat = D(maps.flatten(0, 1), frames.flatten(0, 1))
    for a, b in zip(video.logits, flat.logits):
        torch.testing.assert_close(a, b)


def test_image_d_shape_errors():
    D = ImageDiscriminator(TINY, map_channels=C)
    with pytest.raises(ValueError, match="ImageDiscriminator"):
        D(torch.rand(2, C + 1, 32, 32), torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="smaller than 8 px"):
        D(torch.rand(2, C, 4, 4), torch.rand(2, 3, 4, 4))


@pytest.mark.parametrize("skip", [1, 3])
def test_temporal_d_sees_frames_t_t_plus_s_t_plus_2s(skip):
    D = _tdisc()
    frames, flows = _marked_clip(t=8, flow_x=1.0)
    net = D.nets[D.skips.index(skip)].scales[0]
    seen, handle = _capture_input(net)
    D(frames, flows)
    handle.remove()
    (x,) = seen
    n_groups = 8 - 2 * skip
    assert x.shape == (n_groups, 3 * 3 + 2 * 2, 16, 16)
    for g in range(n_groups):
        for k in range(3):
            assert torch.all(x[g, 3 * k : 3 * k + 3] == g + k * skip), (skip, g, k)
        # Flows between the group's frames span `skip` one-pixel steps.
        expected = skip * FLOW_INPUT_UNITS / 16
        torch.testing.assert_close(x[g, 9:13:2], torch.full((2, 16, 16), expected))
        assert torch.all(x[g, 10:13:2] == 0)


def test_temporal_d_skips_what_does_not_fit():
    D = _tdisc()
    frames, flows = _marked_clip(t=5)
    out = D(frames, flows)
    assert set(out) == {1}  # skip 3 needs 7 frames
    assert out[1].logits[0].shape == (3, 1, 4, 4)
    with pytest.raises(ValueError, match="built for skips"):
        D(frames, flows, skips=[2])
    with pytest.raises(ValueError, match=r"flows must be \[B, T, 2, H, W\]"):
        D(frames, flows[:, 1:])


def test_temporal_d_accepts_frame_aligned_flows():
    # vid2vid.data gives flows[:, t] = frame t -> t-1 with zeros at t = 0.
    D = _tdisc().eval()
    frames, flows = _marked_clip(t=7, flow_x=1.0)
    aligned = torch.cat([torch.zeros_like(flows[:, :1]), flows], dim=1)
    a, b = D(frames, flows), D(frames, aligned)
    for s in (1, 3):
        torch.testing.assert_close(a[s].logits[0], b[s].logits[0])


def test_temporal_shift_moves_one_eighth_each_way():
    x = torch.arange(3.0).view(1, 3, 1, 1, 1).expand(2, 3, 16, 2, 2).flatten(0, 1)
    y = temporal_shift(x, frames=3).unflatten(0, (2, 3))
    # Channels 0-1 come from the next frame, 2-3 from the previous, the rest stay.
    assert y[0, :, 0, 0, 0].tolist() == [1.0, 2.0, 0.0]
    assert y[0, :, 2, 0, 0].tolist() == [0.0, 0.0, 1.0]
    assert y[0, :, 5, 0, 0].tolist() == [0.0, 1.0, 2.0]


def test_temporal_d_with_shift_processes_frames_in_clip_order():
    D = _tdisc(temporal_shift=True)
    frames, flows = _marked_clip(t=8, flow_x=1.0)
    seen, handle = _capture_input(D.nets[D.skips.index(3)].scales[0])
    out = D(frames, flows)
    handle.remove()
    (x,) = seen
    assert x.shape == (2 * 3, 5, 16, 16)  # 2 groups x 3 frames, frame + flow
    for g in range(2):
        for k in range(3):
            assert torch.all(x[g * 3 + k, :3] == g + 3 * k)
        assert torch.all(x[g * 3, 3:] == 0)  # no flow into a group's first frame
    assert out[3].logits[0].shape[0] == 6


def test_gap_conditioned_d_is_one_net_that_depends_on_the_gap():
    D = _tdisc(gap_conditioned=True)
    assert len(D.nets) == 1
    frames = torch.full((1, 7, 3, 16, 16), 0.5)  # every group looks the same
    out = D(frames, torch.zeros(1, 6, 2, 16, 16), skips=[1, 2, 3])
    assert set(out) == {1, 2, 3}
    a, b = out[1].logits[0][0], out[3].logits[0][0]
    assert (a - b).abs().max() > 1e-4


def test_face_d_with_and_without_map_crops():
    torch.manual_seed(2)
    out = FaceDiscriminator(TINY)(torch.rand(3, 3, 16, 16))
    assert [tuple(lo.shape) for lo in out.logits] == [(3, 1, 4, 4)]
    D = FaceDiscriminator(TINY, map_channels=C)
    assert D(torch.rand(3, 3, 16, 16), torch.rand(3, C, 16, 16)).logits[0].shape == (3, 1, 4, 4)
    with pytest.raises(ValueError, match="map_crops"):
        D(torch.rand(3, 3, 16, 16))


def test_discriminators_bf16_autocast_channels_last():
    torch.manual_seed(3)
    D = ImageDiscriminator(TINY, C).to(memory_format=torch.channels_last)
    DT = _tdisc(temporal_shift=True).to(memory_format=torch.channels_last)
    frames, flows = _marked_clip(t=4, size=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs = [D(torch.rand(2, C, 32, 32), torch.rand(2, 3, 32, 32)), DT(frames / 4, flows)[1]]
    for out in outs:
        for t in out.logits + out.features[0]:
            assert t.dtype == torch.bfloat16 and torch.isfinite(t.float()).all()
            assert t.is_contiguous(memory_format=torch.channels_last)


# ---- face crops -----------------------------------------------------------


def _face_keypoints(x0, y0, x1, y1, conf=0.9):
    """70 face points spread over a box (the 68 outline points span it)."""
    pts = torch.zeros(70, 3)
    t = torch.linspace(0, 1, 68)
    pts[:68, 0] = x0 + t * (x1 - x0)
    pts[:68, 1] = y0 + t.flip(0) * (y1 - y0)
    pts[:, 2] = conf
    return pts


def test_face_box_from_face_keypoints():
    face = _face_keypoints(40, 30, 60, 50)[None]  # 20 x 20 face
    boxes, valid = face_boxes(None, face, (128, 128), scale=2.0)
    assert valid.tolist() == [True]
    # centre x 50, centre y (3 * 30 + 2 * 50) / 5 = 38, side 40.
    torch.testing.assert_close(boxes[0], torch.tensor([30.0, 18.0, 70.0, 58.0]))


def test_face_box_falls_back_to_body_and_flags_missing():
    body = torch.zeros(2, 25, 3)
    body[0, 0] = torch.tensor([50.0, 40.0, 0.9])  # nose
    body[0, 1] = torch.tensor([50.0, 65.0, 0.9])  # neck: 0.8 * 25 = 20 px face
    body[0, 17] = torch.tensor([44.0, 40.0, 0.9])  # ears, 12 px apart
    body[0, 18] = torch.tensor([56.0, 40.0, 0.9])
    face = torch.zeros(2, 70, 3)  # no face points found
    boxes, valid = face_boxes(body, face, (100, 120), scale=2.0)
    assert valid.tolist() == [True, False]
    torch.testing.assert_close(boxes[0], torch.tensor([30.0, 20.0, 70.0, 60.0]))
    side = boxes[1, 2] - boxes[1, 0]
    assert side == pytest.approx(25.0)  # a quarter of min(H, W) where nothing was found


def test_face_boxes_keep_leading_dims():
    # A training batch of clips: keypoints [B, T, 137, 3] as vid2vid.data returns them.
    kp = torch.zeros(2, 3, 137, 3)
    kp[1, 2, 25:95] = _face_keypoints(40, 30, 60, 50)
    boxes, valid = face_boxes(kp[..., :25, :], kp[..., 25:95, :], (128, 128))
    assert boxes.shape == (2, 3, 4) and valid.shape == (2, 3)
    assert valid.sum() == 1 and valid[1, 2]


def test_face_box_is_shifted_inside_the_frame():
    face = _face_keypoints(0, 0, 20, 20)[None]
    boxes, _ = face_boxes(None, face, (64, 64), scale=2.5)
    assert boxes[0, 0] == pytest.approx(-0.5) and boxes[0, 1] == pytest.approx(-0.5)
    assert boxes[0, 2] - boxes[0, 0] == pytest.approx(50.0)


def test_crop_and_resize_identity_and_exact_subcrop():
    torch.manual_seed(4)
    img = torch.rand(2, 3, 12, 12)
    whole = torch.tensor([[-0.5, -0.5, 11.5, 11.5]] * 2)  # the frame's outer edges
    torch.testing.assert_close(crop_and_resize(img, whole, 12), img, atol=1e-5, rtol=0)
    square = torch.tensor([[3.5, 1.5, 9.5, 7.5], [-0.5, 5.5, 5.5, 11.5]])  # 6 x 6 pixels
    crops = crop_and_resize(img, square, 6)
    torch.testing.assert_close(crops[0], img[0, :, 2:8, 4:10], atol=1e-5, rtol=0)
    torch.testing.assert_close(crops[1], img[1, :, 6:12, 0:6], atol=1e-5, rtol=0)
    # Halving: each output pixel is the mean of a 2 x 2 block (bilinear at the centre).
    half = crop_and_resize(img, whole, 6)
    torch.testing.assert_close(half, torch.nn.functional.avg_pool2d(img, 2), atol=1e-5, rtol=0)


def test_crop_and_resize_is_differentiable_and_checks_shapes():
    img = torch.rand(1, 3, 8, 8, requires_grad=True)
    crop_and_resize(img, torch.tensor([[0.0, 0.0, 4.0, 4.0]]), 4).sum().backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"boxes must be \[N, 4\]"):
        crop_and_resize(img, torch.zeros(2, 4), 4)
