"""Hugging Face hub access decided before transformers is imported: offline detection, a fast reachability probe, the
token.

Without a network a hub id makes transformers retry for 23 s (46 s for a tokenizer) before failing;
a 2 s probe fails fast instead and names the two ways out: a local folder or HF_HUB_OFFLINE=1.
`HF_TOKEN` is read from the environment only and never written anywhere.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

from tunix_rt.errors import TunixError

_TRUE = ("1", "true", "yes", "on")
PROBE_TIMEOUT_S = 2.0


def offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def token() -> str | None:
    return os.environ.get("HF_TOKEN") or None


def _host() -> tuple[str, int]:
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)


def reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A TCP connection to the hub within `timeout` (DNS included, which has no timeout of its own)."""
    host, port = _host()
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return bool(result and result[0])


def cached(model_id: str, revision: str | None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(model_id, "config.json", revision=revision)
    return isinstance(found, str)


def check(model_id: str, revision: str | None) -> None:
    """Refuses (exit 2) a hub id that can be neither downloaded nor found in the local cache."""
    if offline():
        if not cached(model_id, revision):
            raise TunixError(
                f"model {model_id!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
                "point model.model_id at a local folder saved with save_pretrained, or download it first"
            )
        return
    if reachable():
        return
    if cached(model_id, revision):
        os.environ["HF_HUB_OFFLINE"] = "1"  # use the cache now rather than retrying the network for a minute
        return
    host, _ = _host()
    raise TunixError(
        f"cannot reach {host} to fetch {model_id!r} (no connection within {PROBE_TIMEOUT_S:.0f} s): "
        "set model.model_id to a local folder saved with save_pretrained, or set HF_HUB_OFFLINE=1 "
        "to use a model already in the local cache (or model.tiny for an offline demo)"
    )
