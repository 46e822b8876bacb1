"""torch.compile: the generator's steps trace as one graph each (no graph breaks).

Traced with dynamo's "eager" backend: it checks what `--compile` needs (no
break, so inductor sees whole steps) in seconds, without generating code.
"""

import torch

from vid2vid.config import ModelConfig
from vid2vid.models import Generator


def _tiny(levels):
    torch.manual_seed(0)
    return Generator(ModelConfig.preset("tiny"), map_channels=3, levels=levels)


def test_video_and_image_mode_steps_compile_without_graph_breaks():
    for levels in (1, 2):
        G = _tiny(levels)
        size = 32 * levels
        maps = torch.rand(1, 3, 3, size, size) * 2 - 1
        prev = torch.rand(1, 2, 3, size, size) * 2 - 1
        torch._dynamo.reset()
        step = torch.compile(G, backend="eager", fullgraph=True)   # raises on a graph break
        out = step(maps, prev)
        torch.testing.assert_close(out.image, G(maps, prev).image)
        first = step(maps, None)
        assert first.flow is None
        explained = torch._dynamo.explain(G)(maps, prev)
        assert explained.graph_break_count == 0, explained.break_reasons
