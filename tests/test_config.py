"""ModelConfig: presets, strict dict round trip, sizes of the presets."""

import dataclasses
import json

import pytest

from vid2vid.config import ModelConfig
from vid2vid.errors import UserError
from vid2vid.models import FaceDiscriminator, Generator, ImageDiscriminator, TemporalDiscriminator


def _params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "name, low, high",
    [
        ("tiny", 10_000, 1_000_000),
        ("small", 2_000_000, 8_000_000),
        ("base", 30_000_000, 80_000_000),
    ],
)
def test_presets_instantiate_with_their_stated_sizes(name, low, high):
    cfg = ModelConfig.preset(name)
    n = _params(Generator(cfg, map_channels=3))
    assert low <= n <= high, f"{name}: {n} generator parameters"
    for d in (ImageDiscriminator(cfg, 3), TemporalDiscriminator(cfg), FaceDiscriminator(cfg)):
        assert _params(d) > 0


def test_unknown_preset():
    with pytest.raises(UserError, match="unknown model preset 'huge'.*tiny, small, base"):
        ModelConfig.preset("huge")


def test_dict_round_trip_through_json():
    cfg = dataclasses.replace(ModelConfig.preset("tiny"), temporal_skips=(1, 3, 9),
                              flow_multiplier=10.0)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["temporal_skips"] == [1, 3, 9]
    back = ModelConfig.from_dict(data)
    assert back == cfg and isinstance(back.temporal_skips, tuple)


def test_from_dict_is_strict_about_keys_and_types():
    with pytest.raises(UserError, match="unknown model config key.*ngf_typo"):
        ModelConfig.from_dict({"ngf": 16, "ngf_typo": 3})
    with pytest.raises(UserError, match="ngf must be int"):
        ModelConfig.from_dict({"ngf": "16"})
    with pytest.raises(UserError, match="temporal_shift must be bool"):
        ModelConfig.from_dict({"temporal_shift": 1})
    with pytest.raises(UserError, match="temporal_skips must be a list"):
        ModelConfig.from_dict({"temporal_skips": 3})
    # Missing keys take defaults; ints are accepted where floats are expected.
    cfg = ModelConfig.from_dict({"ngf": 16, "flow_multiplier": 20})
    assert cfg.ngf == 16 and cfg.flow_multiplier == 20.0 and cfg.n_blocks == ModelConfig().n_blocks


def test_invalid_values_are_user_errors():
    with pytest.raises(UserError, match="temporal_skips"):
        ModelConfig(temporal_skips=(1, 1))
    with pytest.raises(UserError, match="max_channels"):
        ModelConfig(ngf=64, max_channels=32)
    with pytest.raises(UserError, match="ngf must be >= 1"):
        ModelConfig(ngf=0)


def test_config_is_frozen():
    cfg = ModelConfig.preset("small")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ngf = 3  # type: ignore[misc]


def test_a_gpu_run_gets_the_base_preset_and_a_batch_for_its_memory(monkeypatch):
    import types

    import torch

    from vid2vid.config import TrainConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    card = {"gib": 141}
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda i: types.SimpleNamespace(total_memory=card["gib"] * 2**30))
    cfg = TrainConfig.resolve({})
    assert cfg.preset == "base" and cfg.batch_size == 4
    assert cfg.model.ngf == TrainConfig.resolve({"preset": "base"}).model.ngf
    card["gib"] = 24
    assert TrainConfig.resolve({}).batch_size == 2
    card["gib"] = 12
    assert TrainConfig.resolve({}).batch_size == 1
    given = TrainConfig.resolve({"preset": "tiny", "batch_size": 3})
    assert given.preset == "tiny" and given.batch_size == 3    # what is given wins
    cpu = TrainConfig.resolve({"device": "cpu"})
    assert cpu.preset == "small" and cpu.batch_size == 1


def test_the_task_sets_model_defaults_under_the_config_file_and_command_line(tmp_path):
    from vid2vid.config import TrainConfig
    from vid2vid.tasks import FaceTask, LabelTask, PoseTask

    pose = PoseTask().model_defaults
    bodies = TrainConfig.resolve({}, None, pose).model
    assert bodies.background_plate and bodies.plate_base and bodies.plate_inpaint
    assert not TrainConfig.resolve({}).model.background_plate
    for task in (FaceTask(), LabelTask()):
        assert not TrainConfig.resolve({}, None, task.model_defaults).model.background_plate
    off = tmp_path / "off.yaml"
    off.write_text("model:\n  background_plate: false\n")
    plain = TrainConfig.resolve({}, str(off), pose).model   # what builds on it goes too
    assert not (plain.background_plate or plain.plate_base or plain.plate_inpaint)
    flat = tmp_path / "flat.yaml"
    flat.write_text("model:\n  plate_base: false\n")
    flat_model = TrainConfig.resolve({}, str(flat), pose).model
    assert flat_model.background_plate and not flat_model.plate_base
    # Augmentation that moves the background turns the task's plate off, quietly...
    moved = TrainConfig.resolve({"augment": {"scale": 0.1}}, None, pose)
    assert not (moved.model.background_plate or moved.model.plate_base
                or moved.model.plate_inpaint)
    assert moved.augment.scale == 0.1
    # ...but a plate asked for with it is an error.
    both = tmp_path / "both.yaml"
    both.write_text("model:\n  background_plate: true\naugment:\n  flip: true\n")
    with pytest.raises(UserError, match="background_plate needs augment.scale=0"):
        TrainConfig.resolve({}, str(both), pose)
    # A key that needs the task's plate may be set alone; without the plate it is refused.
    base = tmp_path / "base.yaml"
    base.write_text("model:\n  plate_base: true\n")
    assert TrainConfig.resolve({}, str(base), pose).model.plate_base
    with pytest.raises(UserError, match="plate_base needs background_plate"):
        TrainConfig.resolve({}, str(base), FaceTask().model_defaults)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  no_such_key: 1\n")
    with pytest.raises(UserError, match="no_such_key"):
        TrainConfig.resolve({}, str(bad), pose)


def test_the_perceptual_net_key_is_validated_and_old_runs_keep_vgg19(tmp_path):
    from vid2vid.config import LossWeights, TrainConfig, saved_train_config

    assert LossWeights().perceptual_net == "vgg19"       # today's loss unless asked
    hed = tmp_path / "hed.yaml"
    hed.write_text("loss: {perceptual_net: hed_vgg16}\n")
    assert TrainConfig.resolve({}, str(hed)).loss.perceptual_net == "hed_vgg16"
    with pytest.raises(UserError, match="perceptual_net must be one of vgg19, hed_vgg16"):
        TrainConfig.from_dict({"loss": {"perceptual_net": "vgg16"}})
    with pytest.raises(UserError, match="loss.perceptual_net must be one of vgg19, hed_vgg16, got"):
        LossWeights(perceptual_net="hed")
    old = TrainConfig(loss=LossWeights(perceptual_net="hed_vgg16")).to_dict()
    del old["loss"]["perceptual_net"]                    # saved before the key existed
    assert saved_train_config(old).loss.perceptual_net == "vgg19"
