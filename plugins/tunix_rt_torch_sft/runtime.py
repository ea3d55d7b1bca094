"""Where a run executes: the device, CPU threads, autocast, the process group under torchrun, and environment facts.

Nothing here knows about models or data; `train` and the scored eval both start from a `Runtime`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from tunix_rt.errors import TunixError
from tunix_rt.plugins import RunContext


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TunixError("config: 'training.device' is cuda but torch sees no CUDA device")
    return name


def set_threads(requested: int | None, local_world: int) -> int:
    """All usable cores split between the local processes (one thread is ~1.75x slower than two here)."""
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = requested or max(1, usable // max(1, local_world))
    torch.set_num_threads(threads)
    return threads


def autocast_factory(device: str, dtype: str) -> Callable[[], AbstractContextManager[Any]]:
    import torch

    if dtype == "float32":
        return nullcontext
    return lambda: torch.autocast(device_type=device, dtype=getattr(torch, dtype))


@dataclass
class Runtime:
    """One process's place in the run: `device` is cpu/cuda, `dev` the torch device string of this rank."""

    device: str
    dev: str
    rank: int
    world_size: int
    local_rank: int
    threads: int
    dtype: str
    autocast: Callable[[], AbstractContextManager[Any]]

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_sum(self, *values: float) -> list[float]:
        """Sums across ranks (identity in a single process)."""
        if not self.distributed:
            return list(values)
        import torch
        import torch.distributed as dist

        totals = torch.tensor(values, dtype=torch.float64, device=self.dev)
        dist.all_reduce(totals)
        return [float(v) for v in totals]

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()
            dist.destroy_process_group()


def start(ctx: RunContext, device_name: str, num_threads: int | None, dtype: str) -> Runtime:
    """Picks the device, sets threads, joins the process group under torchrun (gloo on CPU, NCCL on GPUs)."""
    import torch
    import torch.distributed as dist

    device = resolve_device(device_name)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(ctx.world_size)))
    if ctx.world_size > 1:
        if device == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    threads = set_threads(num_threads, local_world) if device == "cpu" else torch.get_num_threads()
    dev = f"cuda:{local_rank}" if device == "cuda" else "cpu"
    return Runtime(device=device, dev=dev, rank=ctx.rank, world_size=ctx.world_size, local_rank=local_rank,
                   threads=threads, dtype=dtype, autocast=autocast_factory(device, dtype))


def environment(device: str, threads: int) -> dict[str, Any]:
    """Library versions and the GPU, for env_snapshot.json."""
    import torch
    import transformers

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": threads,
        "cuda_available": torch.cuda.is_available(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env["cuda"] = {
            "version": torch.version.cuda,
            "gpu_name": props.name,
            "gpu_memory_gb": round(props.total_memory / 2**30, 2),
            "device_count": torch.cuda.device_count(),
        }
        exe = shutil.which("nvidia-smi")
        if exe:
            done = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=20, check=False)
            ok = done.returncode == 0 and done.stdout
            env["cuda"]["driver"] = done.stdout.strip().splitlines()[0] if ok else None
    return env
