import pytest

from train.schedule import build_stages, spatial_levels, stage_at


def test_progressive_alternates_temporal_and_spatial_steps():
    stages = build_stages(1000, 512, 16, progressive=True, base_size=128)
    kinds = [(s.kind, s.size, s.frames, s.levels) for s in stages]
    assert kinds == [("image", 128, 1, 0), ("temporal", 128, 4, 0), ("grow", 256, 4, 1),
                     ("joint", 256, 4, 1), ("temporal", 256, 8, 1), ("grow", 512, 8, 2),
                     ("joint", 512, 8, 2), ("temporal", 512, 16, 2)]
    assert stages[0].first_step == 0 and stages[-1].last_step == 1000
    for a, b in zip(stages, stages[1:]):
        assert a.last_step == b.first_step and a.first_step < a.last_step
    assert not stages[2].train_old_levels and stages[3].train_old_levels


def test_stage_at_boundaries_and_past_the_end():
    stages = build_stages(300, 128, 8, progressive=True)
    assert [s.kind for s in stages] == ["image", "temporal", "grow", "joint", "temporal"]
    for s in stages:
        assert stage_at(s.first_step, stages) is s
        assert stage_at(s.last_step - 1, stages) is s
    assert stage_at(10_000, stages) is stages[-1]
    # pure: the same step gives the same stage however often it is asked (resume mid-stage)
    mid = (stages[2].first_step + stages[2].last_step) // 2
    assert stage_at(mid, build_stages(300, 128, 8, progressive=True)) == stage_at(mid, stages)


def test_plain_schedule_is_one_stage_at_the_final_size():
    (only,) = build_stages(50, 256, 8, progressive=False, base_size=128)
    assert (only.kind, only.size, only.frames, only.levels) == ("full", 256, 8, 1)
    with pytest.raises(ValueError, match="power of two"):
        spatial_levels(300, 128)


def test_lr_scale_is_flat_then_falls_linearly_towards_zero():
    from train.schedule import lr_scale

    assert [lr_scale(s, 100, 0.0) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    assert lr_scale(0, 100, 0.25) == 1.0
    assert lr_scale(74, 100, 0.25) == 1.0
    assert lr_scale(75, 100, 0.25) == 1.0
    assert lr_scale(80, 100, 0.25) == 0.8
    assert 0.0 < lr_scale(99, 100, 0.25) == 0.04   # the last step still moves
    assert lr_scale(150, 100, 0.25) == 0.0         # past the end: nothing
    # an extended run (200 steps) decays over its new last quarter instead
    assert lr_scale(99, 200, 0.25) == 1.0
