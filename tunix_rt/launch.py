"""The `milestone` console script: sends `milestone log hook` down the stdlib-only hook path before the
typer app (typer, pydantic, Jinja: several times the cost of the hook itself) is imported; every other
command goes to `tunix_rt.cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:2] == ["log", "hook"] and not {"--help", "-h"} & set(argv[2:]):
        from tunix_rt.agents import hook

        sys.exit(hook.main(argv[2:]))
    from tunix_rt.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
