"""Losses on hand-made tensors with known values (vid2vid.losses)."""

import warnings

import pytest
import torch
import torchvision

from vid2vid import losses
from vid2vid.models import DiscriminatorOutput
from vid2vid.models import warp as warp_fn

T = torch.tensor


def test_hinge_gan_losses():
    real = [T([2.0, -0.5]), T([[0.0, 1.0]])]  # two scales
    fake = [T([-2.0, 0.5]), T([[0.0, -3.0]])]
    # scale 0: real relu(1-2)=0, relu(1.5)=1.5 -> .75; fake relu(-1)=0, relu(1.5) -> .75
    # scale 1: real (1 + 0) / 2 = .5; fake (1 + 0) / 2 = .5
    assert losses.gan_d_loss(real, fake, "hinge").item() == pytest.approx((1.5 + 1.0) / 2)
    # G: -mean(fake) per scale: 0.75 and 1.5
    assert losses.gan_g_loss(fake, "hinge").item() == pytest.approx((0.75 + 1.5) / 2)


def test_least_squares_gan_losses():
    real, fake = T([1.0, 0.0]), T([0.0, 2.0])
    # D: mean((r-1)^2) = .5 ; mean(f^2) = 2
    assert losses.gan_d_loss(real, fake, "ls").item() == pytest.approx(2.5)
    # G: mean((f-1)^2) = (1 + 1) / 2
    assert losses.gan_g_loss(fake, "ls").item() == pytest.approx(1.0)


def test_gan_losses_accept_discriminator_output_and_reject_bad_kind():
    out = DiscriminatorOutput(logits=[T([0.5])], features=[[T([1.0])]])
    assert losses.gan_g_loss(out, "hinge").item() == pytest.approx(-0.5)
    with pytest.raises(ValueError, match="'hinge' or 'ls'"):
        losses.gan_g_loss(out, "wgan")
    with pytest.raises(ValueError, match="scales"):
        losses.gan_d_loss([T([1.0])], [T([1.0]), T([1.0])])


def test_feature_matching_mean_over_layers_then_scales():
    real = [[T([0.0, 0.0]), T([1.0])], [T([2.0])]]
    fake = [[T([1.0, 3.0]), T([1.0])], [T([0.0])]]
    # scale 0: (2 + 0) / 2 = 1 ; scale 1: 2 -> mean 1.5
    assert losses.feature_matching_loss(real, fake).item() == pytest.approx(1.5)
    r = [[T([0.0], requires_grad=True)]]
    f = [[T([1.0], requires_grad=True)]]
    losses.feature_matching_loss(r, f).backward()
    assert r[0][0].grad is None and f[0][0].grad is not None  # real side detached


def test_l1_mask_is_normalised_by_area():
    pred = torch.zeros(1, 2, 2, 2)
    target = T([[[[1.0, 3.0], [1.0, 3.0]], [[1.0, 3.0], [1.0, 3.0]]]])
    assert losses.l1_loss(pred, target).item() == pytest.approx(2.0)
    left = T([[[[1.0, 0.0], [1.0, 0.0]]]])  # [1, 1, 2, 2], broadcast over channels
    assert losses.l1_loss(pred, target, left).item() == pytest.approx(1.0)
    assert losses.l1_loss(pred, target, 1 - left).item() == pytest.approx(3.0)
    half = torch.full((1, 1, 2, 2), 0.5)  # a uniform soft mask does not rescale
    assert losses.l1_loss(pred, target, half).item() == pytest.approx(2.0)
    assert losses.l1_loss(pred, target, torch.zeros(1, 1, 2, 2)).item() == 0.0
    with pytest.raises(ValueError, match="differ"):
        losses.l1_loss(pred, target[:, :1])


def test_flow_loss_with_confidence():
    flow = torch.zeros(1, 2, 1, 2)
    gt = T([[[[1.0, 5.0]], [[1.0, 5.0]]]])
    conf = T([[[[1.0, 0.0]]]])
    assert losses.flow_loss(flow, gt).item() == pytest.approx(3.0)
    assert losses.flow_loss(flow, gt, conf).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"flow must be \[B, 2, H, W\]"):
        losses.flow_loss(flow[:, :1], gt[:, :1])


def test_warp_loss_zero_for_the_true_flow():
    torch.manual_seed(0)
    prev = torch.rand(1, 3, 6, 8)
    current = torch.roll(prev, shifts=-1, dims=-1)  # moved one pixel left
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0] = 1.0  # current[x] = prev[x + 1]
    inside = torch.ones(1, 1, 6, 8)
    inside[..., -1] = 0  # the wrapped-around column is not motion
    assert losses.warp_loss(prev, flow, current, inside).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.warp_loss(prev, torch.zeros_like(flow), current, inside).item() > 0.1


def test_flow_confidence_and_occlusion_mask_loss():
    warped = torch.zeros(1, 3, 1, 3)
    target = T([[[[0.0, 0.1, 1.0]], [[0.0, 0.1, 0.0]], [[0.0, 0.1, 0.0]]]])
    conf = losses.flow_confidence(warped, target)
    torch.testing.assert_close(conf, T([[[[1.0, 0.7, 0.0]]]]))
    mask = T([[[[0.0, 0.0, 0.0]]]])
    # target for the mask is 1 - conf = (0, .3, 1): mean |m - target| = 1.3 / 3
    assert losses.occlusion_mask_loss(mask, conf).item() == pytest.approx(1.3 / 3)


@pytest.fixture(scope="module")
def vgg_loss():
    torch.manual_seed(0)
    return losses.VGGPerceptualLoss(torchvision.models.vgg19().features)  # random weights


def test_vgg_loss_zero_for_equal_images_and_frozen(vgg_loss):
    torch.manual_seed(1)
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    y = torch.rand(1, 3, 32, 32) * 2 - 1
    assert vgg_loss(y, y).item() == pytest.approx(0.0, abs=1e-7)
    loss = vgg_loss(x, y)
    assert loss.item() > 0
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in vgg_loss.parameters())
    vgg_loss.train()
    assert not vgg_loss.training


def test_vgg_loss_layer_weights(vgg_loss):
    # Recompute by hand: relu1_1..relu5_1 are features[1, 6, 11, 20, 29].
    torch.manual_seed(2)
    x, y = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    mean = T([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = T([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    layers = [m for s in vgg_loss.slices for m in s]
    hx, hy = ((x + 1) / 2 - mean) / std, ((y + 1) / 2 - mean) / std
    expected = 0.0
    weights = {1: 1 / 32, 6: 1 / 16, 11: 1 / 8, 20: 1 / 4, 29: 1.0}
    for i, layer in enumerate(layers):
        hx, hy = layer(hx), layer(hy)
        if i in weights:
            expected += weights[i] * (hx - hy).abs().mean().item()
    assert vgg_loss(x, y).item() == pytest.approx(expected, rel=1e-5)


def test_vgg_loss_under_bf16_autocast(vgg_loss):
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = vgg_loss(x, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(vgg_loss(x, y).item(), rel=0.1)


def test_vgg_pretrained_without_cached_weights_warns_once(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(losses, "_warned_missing", False)
    with pytest.warns(UserWarning, match="VGG19 ImageNet weights not found.*L1"):
        assert losses.VGGPerceptualLoss.pretrained() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert losses.VGGPerceptualLoss.pretrained() is None  # silent the second time
    assert losses.vgg19_weights_path().parent == tmp_path / "checkpoints"


def test_feature_matching_layer_sum_is_layers_times_mean():
    g = torch.Generator().manual_seed(0)
    real = [[torch.randn(2, 4, generator=g) for _ in range(3)] for _ in range(2)]
    fake = [[torch.randn(2, 4, generator=g) for _ in range(3)] for _ in range(2)]
    mean = losses.feature_matching_loss(real, fake)
    assert losses.feature_matching_loss(real, fake, layer_sum=True).item() == pytest.approx(
        3 * mean.item(), rel=1e-6)
    # by hand, uneven layer counts: scale 0 (2 + 0), scale 1: 2 -> mean over scales 2
    real = [[T([0.0, 0.0]), T([1.0])], [T([2.0])]]
    fake = [[T([1.0, 3.0]), T([1.0])], [T([0.0])]]
    assert losses.feature_matching_loss(real, fake, layer_sum=True).item() == pytest.approx(2.0)


def test_temporal_consistency_loss_zero_for_an_exact_warp_and_masked_by_confidence():
    torch.manual_seed(3)
    prev = torch.rand(1, 3, 6, 8) * 2 - 1
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0], flow[:, 1] = 0.5, -1.0
    current = warp_fn(prev, flow)
    full = torch.ones(1, 1, 6, 8)
    assert losses.temporal_consistency_loss(current, prev, flow, full).item() == 0.0
    other = torch.rand(1, 3, 6, 8) * 2 - 1
    assert losses.temporal_consistency_loss(other, prev, flow, full).item() > 0.1
    assert losses.temporal_consistency_loss(other, prev, flow, torch.zeros_like(full)).item() == 0
    # Only where confident: other equals the warp on the left half.
    left = full.clone()
    left[..., 4:] = 0
    mixed = torch.where(left.bool(), current, other)
    assert losses.temporal_consistency_loss(mixed, prev, flow, left).item() == 0.0
    # The previous frame is a target: no gradient reaches it, nor the flow.
    p, f = prev.clone().requires_grad_(True), flow.clone().requires_grad_(True)
    c = other.clone().requires_grad_(True)
    losses.temporal_consistency_loss(c, p, f, full).backward()
    assert p.grad is None and f.grad is None and c.grad.abs().sum() > 0


def test_zero_still_flow_keeps_real_motion_and_drops_noise_on_a_still_background():
    torch.manual_seed(0)
    H = W = 32
    # A textured square moves 2 px right over a flat, still background.
    background = torch.full((1, 3, H, W), -0.5)
    square = torch.rand(1, 3, 8, 8)
    frames = []
    for x in (4, 6):
        f = background.clone()
        f[..., 10:18, x:x + 8] = square
        frames.append(f)
    frames = torch.stack(frames, 1)                       # [1, 2, 3, H, W]
    flow = torch.zeros(1, 2, 2, H, W)
    flow[0, 1, 0, 10:18, 6:14] = -2.0                     # t -> t-1: from x back to x - 2
    noise = 0.7 * torch.randn(1, 2, H, W)                 # an estimator's noise elsewhere
    inside = torch.zeros(1, 1, H, W, dtype=torch.bool)
    inside[..., 10:18, 6:14] = True
    flow[:, 1] = torch.where(inside, flow[:, 1], noise)
    out = losses.zero_still_flow(frames, flow)
    assert out.shape == flow.shape
    assert torch.equal(out[:, 0], flow[:, 0])
    # the square's motion survives (away from its edges, where the windows mix)
    assert torch.equal(out[0, 1, :, 12:16, 8:12], flow[0, 1, :, 12:16, 8:12])
    # the flat background far from the square has no motion left
    assert out[0, 1, :, :, 24:].abs().max() == 0
    assert flow[0, 1, :, :, 24:].abs().max() > 0.5
    with pytest.raises(ValueError):
        losses.zero_still_flow(frames[:, :1], flow)   # one frame, two flows
