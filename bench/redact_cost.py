"""What redaction costs on the hot path (every ledger write, every agent hook event), against detect-secrets itself.

Two contenders over the same ordinary fields (titles, tool names, paths, tool output with a SHA):
`tunix_rt.redact.redact` (detect-secrets' regex plugins as a snapshot, plus our ML patterns) and
detect-secrets' own `scan_line` with the same plugins switched on. Interleaved rounds, medians.
Import cost is measured in fresh processes (`-X importtime`, the module's own share).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import timeit

FIELDS = [
    "Fix the tokenizer padding for batch inference",
    "tokenizer.pad_token = tokenizer.eos_token; loss fell from 2.31 to 1.87 after 200 steps",
    "Bash",
    "src/train.py",
    "Ran pytest -q: 41 passed in 12.3s",
    "ordinary tool output, a path src/x.py and a sha 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 " * 5,
]


def _import_ms(module: str) -> float:
    samples = []
    for _ in range(5):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                             capture_output=True, text=True, check=True).stderr
        line = next(row for row in out.splitlines() if row.rstrip().endswith(f"| {module}"))
        samples.append(int(line.split("|")[1]) / 1000)  # cumulative µs -> ms
    return statistics.median(samples)


def main() -> None:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    from tunix_rt.redact import redact
    from tunix_rt.secret_patterns import EXCLUDED

    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    plugins = [{"name": cls.__name__} for cls in get_mapping_from_secret_type_to_class().values()
               if cls.__name__ not in EXCLUDED]

    def ours() -> None:
        for field in FIELDS:
            redact(field)

    def library() -> None:
        for field in FIELDS:
            list(scan_line(field))

    rounds: dict[str, list[float]] = {"tunix_rt.redact": [], "detect-secrets scan_line": []}
    with transient_settings({"plugins_used": plugins}):
        for _ in range(9):
            for name, fn in (("tunix_rt.redact", ours), ("detect-secrets scan_line", library)):
                rounds[name].append(min(timeit.repeat(fn, number=50, repeat=3)) / 50 / len(FIELDS) * 1e6)
    for name, samples in rounds.items():
        print(f"{name}: {statistics.median(samples):.0f} µs per field")
    print(f"import tunix_rt.redact: {_import_ms('tunix_rt.redact'):.0f} ms (cumulative, fresh process)")
    print(f"import detect_secrets.core.scan: {_import_ms('detect_secrets.core.scan'):.0f} ms (cumulative, fresh process)")


if __name__ == "__main__":
    main()
