"""The vid2vid networks: generator, discriminators and backward warping.

    from vid2vid.config import ModelConfig
    from vid2vid.models import Generator, ImageDiscriminator, TemporalDiscriminator, warp

    cfg = ModelConfig.preset("tiny")
    G = Generator(cfg, map_channels=3)
    out = G(maps, prev_frames)   # maps [B, 3, C, H, W]; prev_frames [B, 2, 3, H, W] or None
    out.image, out.hallucinated, out.flow, out.mask, out.fg_mask
"""

from vid2vid.models.discriminators import (
    DiscriminatorOutput,
    FaceDiscriminator,
    ImageDiscriminator,
    TemporalDiscriminator,
)
from vid2vid.models.generator import Generator, GeneratorOutput
from vid2vid.models.warp import compose_flows, warp

__all__ = [
    "Generator",
    "GeneratorOutput",
    "ImageDiscriminator",
    "TemporalDiscriminator",
    "FaceDiscriminator",
    "DiscriminatorOutput",
    "warp",
    "compose_flows",
]
