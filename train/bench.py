"""`vid2vid bench`: speed, memory and FLOPs of the networks, per preset and size.

For every preset and frame size, and for every variant (eager fp32, then bf16
autocast, channels_last, torch.compile and, for inference on CUDA, a CUDA
graph added one at a time), it measures

    inference  the generator alone, frame by frame in video mode (two previous
               frames, flow and warp), under inference_mode: frames/s
    training   one real training step on a clip of --frames frames: G
               unrolled (frame 0 in image mode, then from its own previous
               outputs, in chunks of TrainConfig.bptt frames), image,
               temporal and face Ds, every G and D loss with the default
               weights (L1 instead of VGG19 when its weights are missing),
               backward and both Adam steps, and the EMA update: steps/s
               and frames/s

on synthetic in-memory tensors of the given size, so no dataset is needed
and data loading is not in the numbers. Rates come from the median
iteration time (robust to another process waking up), after warm-up
iterations that also absorb torch.compile and cudnn autotuning. Speed-ups
are rates divided by the eager fp32 rate of the same preset, size and
phase, measured in the same run.

FLOPs come from torch.utils.flop_counter (convolutions and matmuls, 2 FLOPs
per multiply-add): per generated frame for inference (batch 1, the
definition of benchmarks/bench_models.py), and per clip frame of a whole
training step (G, Ds, losses, backward) for training. On CUDA the achieved
FLOP rate is also given as a share of the card's dense bf16 peak.

Peak memory: on CUDA `torch.cuda.max_memory_allocated` (reset before each
measurement); on CPU the max RSS (getrusage) of a fresh subprocess per
measurement, torch itself included (about 0.4 GB), since max RSS never goes
down within a process.
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from train.bench_table import derive
from train.objective import (Batch, all_finite, build_networks, chunk_losses, ema_update,
                             optimizer_steps)
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.data import MAP_CHANNELS, N_KEYPOINTS
from vid2vid.errors import UserError
from vid2vid.models import Generator
from vid2vid.tasks import PoseTask

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets,
# matched as substrings of torch.cuda.get_device_name (longest match first).
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 SXM": 989.0,
    "H100 80GB HBM3": 989.0,   # how the SXM part names itself
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L40": 181.0,
    "L4": 121.0,
    "A10G": 70.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
}

INFERENCE_WARMUP = 3   # as benchmarks/bench_models.py
TRAIN_WARMUP = 2       # the first step allocates optimiser state; the second settles caches


def bf16_peak_tflops(device_name: str) -> float | None:
    for key in sorted(BF16_PEAK_TFLOPS, key=len, reverse=True):
        if key in device_name:
            return BF16_PEAK_TFLOPS[key]
    return None


@dataclass(frozen=True)
class Variant:
    """One way of running the same computation; `name` is what the table shows."""

    name: str
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    cuda_graph: bool = False       # inference only: replay one captured forward pass


FP32 = Variant("eager fp32")


def variants(device: str, compile_: bool) -> list[Variant]:
    """Eager fp32 first (the reference), then one optimisation added per row."""
    out = [FP32, Variant("bf16", bf16=True),
           Variant("bf16 + channels_last", bf16=True, channels_last=True)]
    if compile_:
        out.append(Variant("bf16 + channels_last + compile", True, True, compile=True))
    if device == "cuda":
        out.append(Variant("bf16 + channels_last + CUDA graph", True, True, cuda_graph=True))
    return out


@dataclass(frozen=True)
class Job:
    """One measurement: what a subprocess is told to do (hence plain fields)."""

    phase: str            # "inference" or "train"
    preset: str
    size: int
    variant: Variant
    device: str
    batch: int
    frames: int           # clip length of the training step
    levels: int
    map_channels: int
    repeats: int
    seconds: float
    count_flops: bool

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        d = json.loads(text)
        d["variant"] = Variant(**d["variant"])
        return cls(**d)


# -- synthetic inputs ----------------------------------------------------------------------

def synthetic_clip(batch: int, frames: int, size: int, map_channels: int,
                   device: torch.device, seed: int = 0, width: int | None = None
                   ) -> dict[str, torch.Tensor]:
    """A clip shaped like `vid2vid.data.Clip` (batched), of random values.

    The dense convolutions cost the same on random and on real maps. The
    keypoints put a head near the top centre (BODY_25 nose, neck, eyes and
    ears) so the face crop and face D run as they do on a real dancer.
    """
    g = torch.Generator().manual_seed(seed)
    B, T, H = batch, frames, size
    W = width or size   # square unless a frame's aspect is given
    kp = torch.zeros(B, T, N_KEYPOINTS, 3)
    head = {0: (0.50, 0.20), 1: (0.50, 0.32), 15: (0.47, 0.18), 16: (0.53, 0.18),
            17: (0.44, 0.19), 18: (0.56, 0.19)}
    for i, (x, y) in head.items():
        kp[:, :, i] = torch.tensor([x * W, y * H, 1.0])
    clip = {
        "maps": torch.rand(B, T, map_channels, H, W, generator=g),
        "frames": torch.rand(B, T, 3, H, W, generator=g) * 2 - 1,
        "masks": (torch.rand(B, T, 1, H, W, generator=g) > 0.5).float(),
        "flow": torch.randn(B, T, 2, H, W, generator=g) * 2,
        "flow_valid": torch.ones(B, T, 1, H, W),
    }
    clip["flow"][:, 0] = 0  # as the loader: no flow into frame 0
    boxes, found = PoseTask().part_boxes(kp.flatten(0, 1), (H, W))
    clip["part_boxes"] = boxes.unflatten(0, (B, T)).float()
    out = {k: v.to(device) for k, v in clip.items()}
    out["part_found"] = found.unflatten(0, (B, T))   # stays on the CPU, as in training
    return out


# -- timing ----------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], None], device: torch.device, warmup: int, repeats: int,
                   seconds: float) -> tuple[float, int]:
    """(median seconds per call, timed calls): `repeats` calls, or fewer once `seconds`
    have passed (but at least min(2, repeats))."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 2 or time.perf_counter() - start < seconds):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


def _autocast(device: torch.device, variant: Variant, cache: bool = True):
    if not variant.bf16:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)


def _memory_format(variant: Variant) -> torch.memory_format:
    return torch.channels_last if variant.channels_last else torch.contiguous_format


def _count_flops(fn: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


# -- inference -------------------------------------------------------------------------------

def _cuda_graphed(G: torch.nn.Module, maps: torch.Tensor, prev: torch.Tensor,
                  variant: Variant) -> Callable[[], None]:
    """One captured forward pass replayed per frame: no Python or launch overhead.

    Autocast's weight cast cache must be off during capture (its cached
    casts would be freed outside the graph's memory pool)."""
    static_maps, static_prev = maps.clone(), prev.clone()
    device = maps.device
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side), torch.inference_mode(), _autocast(device, variant, cache=False):
        for _ in range(3):   # warm-up on a side stream, as the CUDA graph docs ask
            G(static_maps, static_prev)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.inference_mode(), _autocast(device, variant, cache=False), torch.cuda.graph(graph):
        G(static_maps, static_prev)

    def replay() -> None:
        static_maps.copy_(maps)   # a new frame's inputs go into the captured buffers
        static_prev.copy_(prev)
        graph.replay()

    return replay


def measure_inference(job: Job) -> dict:
    """Generator frames/s in video mode, as benchmarks/bench_models.py defines it."""
    device = torch.device(job.device)
    v = job.variant
    cfg = ModelConfig.preset(job.preset)
    clip = synthetic_clip(job.batch, 3, job.size, job.map_channels, device)
    maps, prev = clip["maps"], clip["frames"][:, :2]
    baseline = _memory_start(device)
    torch.manual_seed(0)
    G = Generator(cfg, map_channels=job.map_channels, levels=job.levels).to(device).eval()
    G = G.to(memory_format=_memory_format(v))
    if v.cuda_graph:
        step = _cuda_graphed(G, maps, prev, v)
    else:
        run = torch.compile(G) if v.compile else G

        def step() -> None:
            with torch.inference_mode(), _autocast(device, v):
                run(maps, prev)

    sec, n = median_seconds(step, device, INFERENCE_WARMUP, job.repeats, job.seconds)
    result = dict(frames_per_s=job.batch / sec, iterations=n,
                  peak_memory_bytes=_memory_peak(device, baseline))
    if job.count_flops:   # after the peak is read: the counter's own memory is not the model's
        with torch.inference_mode():
            result["flops_per_frame"] = _count_flops(lambda: G(maps[:1], prev[:1]))
    return result


# -- training --------------------------------------------------------------------------------

class TrainingStep:
    """The trainer's step (train/trainer.py, one stage, no data loading), on one clip.

    The networks, the losses of each chunk, the device-side finiteness check and
    skip, and the EMA update are the trainer's own (`train.objective`:
    `build_networks`, `chunk_losses`, `all_finite`, `optimizer_steps`,
    `ema_update`). Left out: distributed gradient averaging, logging and
    checkpoints. Chunks skipped as non-finite are counted on the device and read
    after the timing (`failed`).
    """

    def __init__(self, cfg: TrainConfig, map_channels: int, levels: int, device: torch.device,
                 variant: Variant):
        self.cfg, self.device, self.variant = cfg, device, variant
        self.memory_format = _memory_format(variant)
        # "no VGG weights" (built.notes) is reported in the results, not printed.
        built = build_networks(cfg, map_channels, levels, cfg.face_d, device,
                               self.memory_format)
        self.G, self.G_ema, self.vgg = built.G, built.G_ema, built.vgg
        self.opt_G, self.opt_D = built.opt_G, built.opt_D
        self.nets = built.for_step(variant.compile)
        self.ema_updates = 0
        self.scaler = torch.amp.GradScaler(device.type, enabled=False)
        self.skipped = torch.zeros((), dtype=torch.long, device=device)

    def failed(self) -> bool:
        """Whether any timed chunk was non-finite (read once, after the timing)."""
        return bool(self.skipped > 0)

    def __call__(self, clip: dict[str, torch.Tensor]) -> None:
        cfg = self.cfg
        reals = clip["frames"]
        T = reals.shape[1]
        maps_list = [clip["maps"][:, t].contiguous(memory_format=self.memory_format)
                     for t in range(T)]
        batch = Batch(clip["maps"], maps_list, reals, clip["masks"], clip["flow"],
                      clip["flow_valid"], clip["part_boxes"], clip["part_found"])
        fakes: list[torch.Tensor] = []
        for c0 in range(0, T, cfg.bptt):
            c1 = min(T, c0 + cfg.bptt)
            fakes = [f.detach() for f in fakes]
            with _autocast(self.device, self.variant):
                terms, d_terms = chunk_losses(cfg, self.nets, batch, fakes, c0, c1)
            g_total = sum(terms.values())
            d_total = sum(d_terms.values())
            self.opt_G.zero_grad(set_to_none=True)
            self.opt_D.zero_grad(set_to_none=True)
            (g_total + d_total).backward()
            ok = all_finite(g_total.detach() + d_total.detach(), self.G,
                            self.nets.discriminators)
            optimizer_steps(ok, self.scaler, self.opt_G, self.opt_D)
            self.ema_updates += 1
            ema_update(self.G_ema, self.G, self.ema_updates, cfg.ema, ok)
            self.skipped += ~ok


def measure_train(job: Job) -> dict:
    """Training steps/s and frames/s of one step on a synthetic clip."""
    device = torch.device(job.device)
    cfg = TrainConfig.resolve({"preset": job.preset, "size": job.size, "frames": job.frames,
                               "batch_size": job.batch})
    clip = synthetic_clip(job.batch, job.frames, job.size, job.map_channels, device)
    baseline = _memory_start(device)
    step = TrainingStep(cfg, job.map_channels, job.levels, device, job.variant)
    sec, n = median_seconds(lambda: step(clip), device, TRAIN_WARMUP, job.repeats, job.seconds)
    if step.failed():
        raise RuntimeError(f"non-finite loss in the benchmark's training step "
                           f"({job.variant.name})")
    frames = job.batch * job.frames
    result = dict(steps_per_s=1 / sec, frames_per_s=frames / sec, iterations=n,
                  peak_memory_bytes=_memory_peak(device, baseline),
                  reconstruction_loss=step.vgg.name if step.vgg is not None else "l1")
    if job.count_flops:   # after the peak is read, as for inference
        result["flops_per_frame"] = _count_flops(lambda: step(clip)) / frames
    return result


# -- memory ----------------------------------------------------------------------------------

def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # kB on Linux


def _memory_start(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return 0   # the inputs made before stay counted, as they would be in use
    # CPU: the whole process's max RSS (torch included), as `vid2vid train` reports it;
    # the growth over the start is 0 for models smaller than torch's import-time peak.
    return 0


def _memory_peak(device: torch.device, baseline: int) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    return _max_rss_bytes() - baseline


# -- running jobs ----------------------------------------------------------------------------

def run_job(job: Job) -> dict:
    measure = measure_inference if job.phase == "inference" else measure_train
    return measure(job)


def _run_in_subprocess(job: Job) -> dict:
    """CPU: a fresh process per measurement, so its max RSS is its own."""
    code = "import sys; from train.bench import _child; _child(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", code, job.to_json()], capture_output=True,
                          text=True)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no message)"]
        return {"error": tail[0][-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(job_json: str) -> None:
    print(json.dumps(run_job(Job.from_json(job_json))))


def _run_in_process(job: Job) -> dict:
    try:
        return run_job(job)
    except Exception as e:   # one failing variant (e.g. a graph capture) must not end the run
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    finally:
        torch.cuda.empty_cache()


def cpu_info() -> str:
    """The CPU's model name and the threads torch uses."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {torch.get_num_threads()} threads"


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(0) if device == "cuda" else cpu_info()


def bench_settings(device: str, presets: str | None, sizes: str, levels: int
                   ) -> tuple[list[str], list[int]]:
    """`vid2vid bench`'s --presets and --sizes, checked: (presets, frame sizes).

    Presets default to tiny,small on a CPU and small,base on CUDA.
    """
    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sizes {sizes!r} must be comma-separated integers, e.g. 128,256")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    on_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    preset_list = [p.strip() for p in (presets or ("small,base" if on_cuda else "tiny,small"))
                   .split(",") if p.strip()]
    for p in preset_list:
        if p not in ("tiny", "small", "base"):
            raise UserError(f"unknown preset {p!r} in --presets; choose from tiny, small, base")
    # The generator needs frame sides divisible by 2**(n_downsample + levels - 1).
    multiple = max(2 ** (ModelConfig.preset(p).n_downsample + levels - 1) for p in preset_list)
    for s in size_list:
        if s < 16 or s % multiple:
            raise UserError(f"--sizes: {s} must be >= 16 and a multiple of {multiple} "
                            f"for {levels} level(s)")
    return preset_list, size_list


def run_bench(presets: list[str], sizes: list[int], device: str = "auto", frames: int = 4,
              repeats: int = 20, seconds: float = 5.0, train: bool = True,
              compile_: bool | None = None, batch: int | None = None, levels: int = 1,
              map_channels: int = MAP_CHANNELS,
              progress: Callable[[str], None] | None = None) -> dict:
    """Every measurement of one `vid2vid bench` run, as a JSON-safe dict.

    Inference batch: 1 on CPU, 8 on CUDA (one frame does not fill a GPU);
    training batch: 1 (TrainConfig's default). compile_ None: on CUDA only.
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True   # as training on CUDA would want
    compile_ = (device == "cuda") if compile_ is None else compile_
    batch = batch or (8 if device == "cuda" else 1)
    name = device_name(device)
    peak = bf16_peak_tflops(name) if device == "cuda" else None
    runner = _run_in_subprocess if device == "cpu" else _run_in_process
    rows = []
    for preset in presets:
        for size in sizes:
            phases = [("inference", batch)] + ([("train", 1)] if train else [])
            for phase, b in phases:
                reference: dict | None = None
                for v in variants(device, compile_):
                    if v.cuda_graph and phase == "train":
                        continue
                    job = Job(phase, preset, size, v, device, b, frames, levels, map_channels,
                              repeats, seconds, count_flops=v == FP32)
                    if progress:
                        progress(f"{preset} {size}px {phase}: {v.name} ...")
                    r = runner(job)
                    row = {"preset": preset, "size": size, "phase": phase, "variant": v.name,
                           "batch": b, **({"frames": frames} if phase == "train" else {}), **r}
                    if v == FP32:
                        reference = row
                    derive(row, reference, peak)
                    rows.append(row)
    return {
        "device": device, "device_name": name, "torch": torch.__version__,
        "bf16_peak_tflops": peak,
        "peak_memory": ("cuda max_memory_allocated" if device == "cuda"
                        else "process max RSS, one subprocess per measurement"),
        "settings": {"presets": presets, "sizes": sizes, "frames": frames, "repeats": repeats,
                     "seconds": seconds, "inference_batch": batch, "train_batch": 1,
                     "levels": levels, "map_channels": map_channels, "compile": compile_},
        "rows": rows,
    }
