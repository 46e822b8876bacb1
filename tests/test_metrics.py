"""Per-frame metrics on hand-made tensors with known values."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vid2vid.metrics import (
    MAX_PSNR_DB, background_mask, box_mask, occlusion_mask, pose_box, pose_boxes,
    pose_consistency, psnr, ssim, to_tensor, warp_error,
)
from vid2vid.pose import BODY, Pose


def texture(n: int = 4, h: int = 32, w: int = 40, seed: int = 0) -> torch.Tensor:
    """Smooth random RGB images in [0, 1]: [n, 3, h, w]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h // 4, w // 4, generator=g)
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=True)


def shifted_video(t: int = 4, dx: int = 2, dy: int = 1, h: int = 32, w: int = 40):
    """Frames of one texture moving by (dx, dy) px per frame, and their backward flows."""
    big = texture(1, h + t * abs(dy) + 8, w + t * abs(dx) + 8, seed=1)[0]
    frames = torch.stack([big[:, 4 + i * dy:4 + i * dy + h, 4 + i * dx:4 + i * dx + w]
                          for i in range(t)])
    # Content at p in frame i sat at p + (dx, dy) in frame i-1: the backward flow is (dx, dy).
    flow = torch.zeros(t - 1, 2, h, w)
    flow[:, 0], flow[:, 1] = dx, dy
    return frames, flow


def test_identical_frames_give_ssim_one_capped_psnr_and_the_real_warp_error():
    real, flow = shifted_video()
    real = (real + 0.05 * torch.rand(real.shape, generator=torch.Generator().manual_seed(3)))
    real = real.clamp(0, 1)                     # noise: the real warp error is not zero
    gen = real.clone()
    assert torch.allclose(ssim(gen, real), torch.ones(4), atol=1e-6)
    assert (psnr(gen, real) == MAX_PSNR_DB).all()
    mask = occlusion_mask(real[1:], real[:-1], flow)
    e_gen = warp_error(gen[1:], gen[:-1], flow, mask)
    e_real = warp_error(real[1:], real[:-1], flow, mask)
    assert e_gen.shape == (3,) and (e_real > 1e-4).all()
    assert torch.equal(e_gen, e_real)


def test_psnr_and_ssim_known_values_on_flat_images():
    # float64: in float32 the variance term's rounding (1e-8) is visible next to c2 (1e-3).
    real = torch.full((2, 3, 24, 24), 0.5, dtype=torch.float64)
    gen = torch.full((2, 3, 24, 24), 0.6, dtype=torch.float64)
    assert psnr(gen, real) == pytest.approx([20.0, 20.0], abs=1e-4)
    c1 = 0.01 ** 2       # flat images: sigma = 0, so SSIM = luminance term only
    expected = (2 * 0.5 * 0.6 + c1) / (0.5 ** 2 + 0.6 ** 2 + c1)
    out = ssim(gen, real)
    assert out.dtype == torch.float64
    assert out == pytest.approx([expected] * 2, abs=1e-9)
    # Only a 6x12 box differs: the box PSNR is 20 dB, the frame's 10 log10(576 / 72) higher.
    gen = real.clone()
    gen[:, :, 4:10, 8:20] += 0.1
    box = torch.tensor([[8, 4, 20, 10], [8, 4, 20, 10]], dtype=torch.float32)
    assert psnr(gen, real, box) == pytest.approx([20.0, 20.0], abs=1e-4)
    assert psnr(gen, real)[0].item() == pytest.approx(20 + 10 * math.log10(576 / 72), abs=1e-3)
    # A box elsewhere sees identical pixels; a NaN box (no person) scores NaN.
    other = torch.tensor([[0, 14, 24, 24], [math.nan] * 4])
    out = psnr(gen, real, other)
    assert out[0] == MAX_PSNR_DB and math.isnan(out[1])
    assert ssim(gen, real, other)[0] > ssim(gen, real)[0]


def test_background_mask_grows_the_person_and_keeps_the_rest():
    person = torch.zeros(2, 1, 12, 16)
    person[0, 0, 4:7, 5:9] = 1.0                     # 3 x 4 person, grown by 2: 7 x 8
    bg = background_mask(person, 2)
    assert bg.dtype == torch.bool and bg.shape == (2, 1, 12, 16)
    assert not bg[0, 0, 2:9, 3:11].any() and int((~bg[0]).sum()) == 7 * 8
    assert bg[1].all()                               # nobody: all background
    assert torch.equal(background_mask(person.bool(), 0), person[:, :1] < 0.5)


def test_background_psnr_and_ssim_see_only_the_background():
    """Hand-made frames: only the background differs (flat +0.1), or only the person does."""
    real = texture(2, 32, 40, seed=5).double()
    person = torch.zeros(2, 1, 32, 40, dtype=torch.bool)
    person[:, :, 8:24, 12:28] = True
    bg = background_mask(person, 2)                  # the person grown to rows 6-25, cols 10-29
    moved_bg = torch.where(person, real, real + 0.1)
    # Outside the grown person every pixel is off by 0.1: exactly 20 dB.
    assert psnr(moved_bg, real, mask=bg) == pytest.approx([20.0, 20.0], abs=1e-6)
    assert (psnr(moved_bg, real, mask=~bg) < MAX_PSNR_DB).all()    # the 2 px ring differs too
    assert (psnr(moved_bg, real, mask=person) == MAX_PSNR_DB).all()
    # A different person on the same background: the background is perfect.
    new_person = torch.where(person, 1 - real, real)
    assert (psnr(new_person, real, mask=bg) == MAX_PSNR_DB).all()
    assert psnr(new_person, real)[0] < 20
    # SSIM's map is computed on the whole frame: background pixels within the window's
    # reach of the person see it, those beyond (more than 5 px away) score exactly 1.
    far = background_mask(person, 2 + 5)
    assert ssim(new_person, real, mask=far) == pytest.approx([1.0, 1.0], abs=1e-9)
    assert (ssim(new_person, real, mask=bg) < 1).all()
    assert (ssim(moved_bg, real, mask=bg) < 1).all()
    # With a box, only the pixels in both; an empty region scores NaN.
    box = torch.tensor([[0, 0, 40, 4], [10, 6, 30, 26]], dtype=torch.float32)
    both = psnr(moved_bg, real, box, mask=bg)
    assert both[0] == pytest.approx(20.0, abs=1e-6) and math.isnan(both[1])
    with pytest.raises(ValueError, match="mask"):
        psnr(real, real, mask=bg[:1])


def test_translated_frames_with_their_flow_give_zero_warp_error():
    frames, flow = shifted_video(dx=2, dy=1)
    mask = occlusion_mask(frames[1:], frames[:-1], flow)
    # The two columns / one row that come from outside the previous frame are excluded.
    assert not mask[:, :, :, -2:].any() and not mask[:, :, -1:, :].any()
    assert mask[:, :, :-1, :-2].all()
    err = warp_error(frames[1:], frames[:-1], flow, mask)
    assert err.max() < 1e-10
    # Without the flow (zero motion assumed) the same frames show a clear error.
    still = warp_error(frames[1:], frames[:-1], torch.zeros_like(flow))
    assert (still > 1e-3).all()


def test_occlusion_mask_drops_invalid_flow_and_photometric_outliers():
    frames, flow = shifted_video(dx=1, dy=0)
    frames = frames.clone()
    frames[2, :, 5:9, 5:9] = (frames[2, :, 5:9, 5:9] + 0.5) % 1  # something appears in frame 2
    valid = torch.ones(3, 32, 40, dtype=torch.bool)
    valid[0, 20:, :] = False
    mask = occlusion_mask(frames[1:], frames[:-1], flow, valid)
    assert not mask[0, 0, 20:].any() and mask[0, 0, :20, :-1].all()
    assert not mask[1, 0, 5:9, 5:9].any()                  # frame 2 vs 1: the new patch
    # A generated video that flickers scores above the real one on the same mask.
    noisy = (frames + 0.1 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(0)))
    e_gen = warp_error(noisy[1:], noisy[:-1], flow, mask)
    e_real = warp_error(frames[1:], frames[:-1], flow, mask)
    assert (e_gen > 10 * e_real + 0.01).all()
    # A box restricts the error to its pixels.
    box = torch.tensor([[0, 0, 10, 10]] * 3, dtype=torch.float32)
    boxed = warp_error(noisy[1:], noisy[:-1], flow, mask, box)
    assert torch.isfinite(boxed).all() and not torch.allclose(boxed, e_gen)


def test_shapes_are_checked():
    a = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        psnr(a[0], a[0])
    with pytest.raises(ValueError, match="same shape"):
        ssim(a, a[:1])
    with pytest.raises(ValueError, match="flow"):
        warp_error(a, a, torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="boxes"):
        box_mask(torch.zeros(2, 3), 16, 16)
    with pytest.raises(ValueError, match="uint8"):
        to_tensor(np.zeros((2, 8, 8, 3), np.float32))
    t = to_tensor([np.full((8, 6, 3), 255, np.uint8)] * 2)
    assert t.shape == (2, 3, 8, 6) and t.dtype == torch.float32 and (t == 1).all()


def body(points: dict[str, tuple[float, float]]) -> Pose:
    p = Pose()
    for name, (x, y) in points.items():
        p.body[BODY[name]] = (x, y, 0.8)
    return p


def test_pose_consistency_known_distance_and_detection_rate():
    drv = body({"Neck": (50, 20), "MidHip": (50, 120), "RWrist": (10, 80), "LKnee": (60, 160)})
    shifted = drv.map(lambda a: a + np.array([3, 4, 0], np.float32) * (a[:, 2:] > 0))
    partial = body({"Neck": (50, 20), "RWrist": (20, 80), "Nose": (0, 0)})
    result = pose_consistency(
        detected=[shifted, None, partial, shifted],
        driving=[drv, drv, drv, None])
    # 3 frames have a driving pose; 2 of them were re-detected.
    assert result.detection_rate == pytest.approx(2 / 3)
    assert result.per_frame[0] == pytest.approx(5 / 100)          # |(3, 4)| over torso 100
    assert math.isnan(result.per_frame[1]) and math.isnan(result.per_frame[3])
    assert result.per_frame[2] == pytest.approx((0 + 10) / 2 / 100)   # Neck and RWrist only
    assert result.distance == pytest.approx((0.05 + 0.05) / 2)
    assert result.detected == (True, False, True, True)


def test_pose_boxes_cover_the_keypoints_with_a_margin():
    p = body({"Nose": (40, 10), "RAnkle": (30, 90), "LAnkle": (50, 90)})
    x0, y0, x1, y1 = pose_box(p, (64, 100), margin=0.1)
    assert (x0, y0) == pytest.approx((22, 2)) and (x1, y1) == pytest.approx((59, 99))
    boxes = pose_boxes([p, None], (64, 100))
    assert boxes.shape == (2, 4) and torch.isnan(boxes[1]).all()
    m = box_mask(boxes, 100, 64)
    assert m.shape == (2, 1, 100, 64) and m[0, 0, 50, 40] and not m[0, 0, 50, 10]
    assert not m[1].any()
