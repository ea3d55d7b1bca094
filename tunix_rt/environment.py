"""Environment snapshots taken without importing heavy packages (versions come from metadata)."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata

from tunix_rt.models import Environment

# Versions worth recording for an ML project; looked up in package metadata, never imported.
TRACKED_PACKAGES = ("torch", "transformers", "tokenizers", "accelerate", "jax", "jaxlib", "flax", "tunix-rt")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def nvidia_smi() -> str | None:
    """The raw `nvidia-smi` output when the tool exists; None on machines without one."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe], capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.replace("\r\n", "\n") if done.returncode == 0 else None


def snapshot() -> Environment:
    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        packages={name: package_version(name) for name in TRACKED_PACKAGES},
        nvidia_smi=nvidia_smi(),
    )
