"""The generator (vid2vid.models.generator) on the tiny preset."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from vid2vid.config import ModelConfig, saved_model_config
from vid2vid.models import Generator, GeneratorOutput, warp

C = 3  # map channels, e.g. an RGB skeleton
SIZE = 32


def _inputs(seed=0, b=2, size=SIZE, c=C):
    g = torch.Generator().manual_seed(seed)
    maps = torch.rand(b, 3, c, size, size, generator=g) * 2 - 1
    prev = torch.rand(b, 2, 3, size, size, generator=g) * 2 - 1
    return maps, prev


def _generator(levels=1, seed=0, c=C, compose=None):
    torch.manual_seed(seed)
    cfg = ModelConfig.preset("tiny")
    if compose is not None:
        cfg = dataclasses.replace(cfg, compose=compose)
    return Generator(cfg, map_channels=c, levels=levels)


@pytest.fixture
def G():
    return _generator()


def test_output_shapes_and_ranges(G):
    maps, prev = _inputs()
    out = G(maps, prev)
    assert isinstance(out, GeneratorOutput)
    assert out.image.shape == out.hallucinated.shape == (2, 3, SIZE, SIZE)
    assert out.flow.shape == (2, 2, SIZE, SIZE)
    assert out.mask.shape == out.fg_mask.shape == (2, 1, SIZE, SIZE)
    assert out.image.abs().max() <= 1 and out.hallucinated.abs().max() <= 1
    for m in (out.mask, out.fg_mask):
        assert 0 <= m.min() and m.max() <= 1
    assert len(out.levels) == 1 and out.levels[0] is out.image


@pytest.mark.parametrize("levels", [1, 2])
def test_composition_identity(levels):
    G = _generator(levels, compose="inside")
    maps, prev = _inputs(1)
    out = G(maps, prev)
    m = out.mask
    expected = (1 - m) * warp(prev[:, -1], out.flow) + m * out.hallucinated
    torch.testing.assert_close(out.image, expected, atol=1e-5, rtol=0)
    # And the composition is not trivial: both terms contribute.
    assert 0.05 < m.mean() < 0.95
    assert (out.image - out.hallucinated).abs().max() > 1e-3


def test_image_mode_ignores_past_frames(G):
    maps, prev = _inputs(2)
    calls = []
    hook = G.levels[0].past_encoder.register_forward_hook(lambda *a: calls.append(1))
    out = G(maps, None)
    assert not calls, "image mode must not run the past-frame encoder"
    G(maps, prev)
    assert calls, "video mode runs the past-frame encoder"
    hook.remove()
    assert out.flow is None and out.mask is None and out.warped is None
    torch.testing.assert_close(out.image, out.hallucinated)
    # Deterministic: the same maps give the same frame.
    torch.testing.assert_close(G(maps, None).image, out.image)


def test_fg_mask_depends_on_maps_only(G):
    maps, prev = _inputs(3)
    _, other_prev = _inputs(4)
    a, b = G(maps, prev), G(maps, other_prev)
    assert (a.image - b.image).abs().max() > 1e-4, "past frames must matter for the frame"
    torch.testing.assert_close(a.fg_mask, b.fg_mask, atol=0, rtol=0)
    torch.testing.assert_close(G(maps, None).fg_mask, a.fg_mask, atol=1e-6, rtol=0)
    other_maps, _ = _inputs(5)
    assert (G(other_maps, prev).fg_mask - a.fg_mask).abs().max() > 1e-5


def test_grow_doubles_size_and_keeps_weights():
    G = _generator()
    maps, prev = _inputs(6, size=SIZE)
    with torch.no_grad():
        before = G(maps, prev)
        before_img = G(maps, None)
    old_state = {k: v.clone() for k, v in G.state_dict().items()}
    new = G.grow()
    assert new is G.levels[1]
    big_maps, big_prev = F.interpolate(maps.flatten(0, 1), scale_factor=2.0), None
    big_maps = big_maps.unflatten(0, (2, 3))
    big_prev = F.interpolate(prev.flatten(0, 1), scale_factor=2.0).unflatten(0, (2, 2))
    with torch.no_grad():
        after = G(big_maps, big_prev)
        after_img = G(big_maps, None)
    assert after.image.shape == (2, 3, 2 * SIZE, 2 * SIZE)
    assert after.flow.shape == (2, 2, 2 * SIZE, 2 * SIZE)
    new_state = G.state_dict()
    for k, v in old_state.items():
        assert torch.equal(new_state[k], v), k
    # The old level sees the 2x-downsampled inputs, i.e. exactly what it saw before.
    torch.testing.assert_close(after.levels[0], before.image, atol=1e-5, rtol=0)
    torch.testing.assert_close(after_img.levels[0], before_img.image, atol=1e-5, rtol=0)
    # A fresh level adds a zero residual: the flow is the coarse flow upsampled, in fine pixels.
    up_flow = 2 * F.interpolate(before.flow, scale_factor=2.0, mode="bilinear", align_corners=False)
    torch.testing.assert_close(after.flow, up_flow, atol=1e-4, rtol=0)


def test_levels_argument_equals_grow_and_state_dict_roundtrip():
    G = _generator(levels=2)
    cfg = ModelConfig.from_dict(G.cfg.to_dict())
    H = Generator(cfg, map_channels=C, levels=len(G.levels))
    H.load_state_dict(G.state_dict())  # strict: same architecture
    maps, prev = _inputs(7)
    torch.testing.assert_close(H(maps, prev).image, G(maps, prev).image)


def test_per_level_prev_frames_match_downsampled_tensor():
    G = _generator(levels=2)
    maps, prev = _inputs(8)
    small = F.avg_pool2d(prev.flatten(0, 1), 2).unflatten(0, (2, 2))
    torch.testing.assert_close(G(maps, [small, prev]).image, G(maps, prev).image)


def test_every_parameter_gets_a_finite_gradient():
    G = _generator(levels=2)
    maps, prev = _inputs(9)
    video, image = G(maps, prev), G(maps, None)
    loss = sum(o.image.square().mean() for o in (video, image))
    loss = loss + video.flow.square().mean() + video.fg_mask.mean()
    loss.backward()
    for name, p in G.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
    # The trained base level learns from this loss everywhere.
    for name, p in G.levels[0].named_parameters():
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_map_channels_is_a_free_constructor_argument():
    G = _generator(c=7)
    maps, prev = _inputs(10, c=7)
    assert G(maps, prev).image.shape == (2, 3, SIZE, SIZE)


def test_bf16_autocast_and_channels_last():
    G = _generator(levels=1).to(memory_format=torch.channels_last)
    G.grow()  # the new level follows the existing memory format
    maps, prev = _inputs(11)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = G(maps, prev)
        first = G(maps, None)
    for t in (out.image, out.hallucinated, out.flow, out.mask, out.fg_mask, first.image):
        assert torch.isfinite(t.float()).all()
        assert t.is_contiguous(memory_format=torch.channels_last)
    ref = G(maps, prev).image  # float32
    assert (out.image.float() - ref).abs().mean() < 0.05


def test_flow_and_composition_stay_fp32_under_bf16():
    G = _generator(levels=2)
    maps, prev = _inputs(12, size=2 * SIZE)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = G(maps, prev)
    # bf16 flows would be 0.25-0.5 px off at 32-128 px; the warp blend builds on them
    for t in (out.flow, out.mask, out.image, out.hallucinated, out.fg_mask, out.warped):
        assert t.dtype == torch.float32
    assert all(level.dtype == torch.float32 for level in out.levels)


@pytest.mark.parametrize(
    "maps_shape, prev_shape, match",
    [
        ((2, 2, C, 32, 32), None, r"maps must be \[B, 3, 3, H, W\]"),
        ((2, 3, C + 1, 32, 32), None, "map_channels=3"),
        ((2, 3, C, 30, 32), None, "multiples of 4"),
        ((2, 3, C, 32, 32), (2, 1, 3, 32, 32), r"prev_frames must be \[B, 2, 3, H, W\]"),
        ((2, 3, C, 32, 32), (2, 2, 3, 16, 16), r"prev_frames must be"),
    ],
)
def test_shape_errors(G, maps_shape, prev_shape, match):
    prev = None if prev_shape is None else torch.zeros(prev_shape)
    with pytest.raises(ValueError, match=match):
        G(torch.zeros(maps_shape), prev)


# -- composition order (ModelConfig.compose) ------------------------------------------------

def _hand_level(seed=0, size=4):
    """A `LevelOut` of hand-made pre-activations: fg = 1 in the left half, 0 on the right."""
    from vid2vid.models.levels import LevelOut

    g = torch.Generator().manual_seed(seed)
    def r(c):
        return torch.randn(1, c, size, size, generator=g)
    fg_logit = torch.full((1, 1, size, size), -100.0)
    fg_logit[..., : size // 2] = 100.0  # sigmoid gives exactly 1 and 0 in float32
    return LevelOut(image_logit=r(3), fg_image_logit=r(3), fg_logit=fg_logit,
                     feat_image=r(1), feat_fg=r(1), flow=r(2), mask_logit=r(1))


def test_compose_after_is_the_vid2vid_formula_on_hand_made_tensors():
    level = _hand_level()
    level.fg_logit = torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(9))
    past = torch.rand(1, 2, 3, 4, 4) * 2 - 1
    image, h, fg, m, warped = Generator._compose(level, past, "after")
    h_fg, h_bg = torch.tanh(level.fg_image_logit), torch.tanh(level.image_logit)
    fg_ = torch.sigmoid(level.fg_logit)
    m_ = torch.sigmoid(level.mask_logit)
    w = warp(past[:, -1], level.flow)
    torch.testing.assert_close(image, fg_ * h_fg + (1 - fg_) * ((1 - m_) * w + m_ * h_bg))
    torch.testing.assert_close(h, fg_ * h_fg + (1 - fg_) * h_bg)
    torch.testing.assert_close(warped, w)
    torch.testing.assert_close(fg, fg_)
    torch.testing.assert_close(m, m_)
    inside, *_ = Generator._compose(level, past, "inside")
    torch.testing.assert_close(inside, (1 - m_) * w + m_ * h)
    assert (inside - image).abs().max() > 1e-3


def test_compose_after_foreground_does_not_depend_on_the_previous_frame():
    level = _hand_level(1)
    past_a, past_b = torch.rand(1, 2, 3, 4, 4), -torch.rand(1, 2, 3, 4, 4)
    a = Generator._compose(level, past_a, "after")[0]
    b = Generator._compose(level, past_b, "after")[0]
    assert torch.equal(a[..., :2], b[..., :2])  # fg = 1: the hallucinated foreground
    assert (a[..., 2:] - b[..., 2:]).abs().min() > 1e-4  # background: the warped past
    inside_a = Generator._compose(level, past_a, "inside")[0]
    inside_b = Generator._compose(level, past_b, "inside")[0]
    assert (inside_a[..., :2] - inside_b[..., :2]).abs().max() > 1e-3  # the ghost


def _compose_generator(compose, levels):
    torch.manual_seed(0)
    cfg = dataclasses.replace(ModelConfig.preset("tiny"), compose=compose)
    return Generator(cfg, map_channels=C, levels=levels)


@pytest.mark.parametrize("levels", [1, 2])
def test_compose_after_at_every_level(levels):
    after, inside = _compose_generator("after", levels), _compose_generator("inside", levels)
    inside.load_state_dict(after.state_dict())  # the same networks, only the order differs
    maps, prev = _inputs(12)
    _, other = _inputs(13)
    # First frames: no warp, so both orders give the hallucinated image.
    torch.testing.assert_close(after(maps, None).image, inside(maps, None).image)
    a = after(maps, prev)
    assert (a.image - inside(maps, prev).image).abs().max() > 1e-4
    # Foreground everywhere (fg head biased to +100 at the base level, whose fg logit the
    # enhancers refine): no level's frame depends on the past frames any more.
    with torch.no_grad():
        for G in (after, inside):
            G.levels[0].fg_head.bias[3] = 100.0
    x, y = after(maps, prev), after(maps, other)
    assert len(x.levels) == levels and bool((x.fg_mask == 1).all())
    for xl, yl in zip(x.levels, y.levels):
        torch.testing.assert_close(xl, yl, atol=0, rtol=0)
    assert (inside(maps, prev).image - inside(maps, other).image).abs().max() > 1e-4
    torch.testing.assert_close(x.hallucinated, inside(maps, prev).hallucinated)


def test_compose_default_and_checkpoint_roundtrip():
    assert ModelConfig().compose == "after"   # vid2vid's, measured better (RESULTS.md)
    cfg = ModelConfig.from_dict(dataclasses.replace(ModelConfig.preset("tiny"),
                                                    compose="after").to_dict())
    assert cfg.compose == "after"
    # A checkpoint written before the key existed rebuilds the old composition.
    old = ModelConfig.preset("tiny").to_dict()
    del old["compose"]
    assert saved_model_config(old).compose == "inside"


@pytest.mark.parametrize("levels", [1, 2])
def test_fg_past_lets_the_foreground_read_the_previous_frames(levels):
    plain = _generator(levels)
    torch.manual_seed(0)
    cfg = dataclasses.replace(ModelConfig.preset("tiny"), fg_past=True)
    past = Generator(cfg, map_channels=C, levels=levels)
    past.load_state_dict(plain.state_dict())   # the same weights: only what the branch reads
    maps, prev = _inputs(14)
    _, other = _inputs(15)
    a, b = past(maps, prev), past(maps, other)
    assert (a.fg_mask - b.fg_mask).abs().max() > 1e-5
    assert (a.hallucinated - b.hallucinated).abs().max() > 1e-5
    # Image mode reads the no-past vector, zero at first: the same first frame.
    torch.testing.assert_close(past(maps, None).image, plain(maps, None).image)
    torch.testing.assert_close(plain(maps, prev).fg_mask, plain(maps, other).fg_mask,
                               atol=0, rtol=0)
