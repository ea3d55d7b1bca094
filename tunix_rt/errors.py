"""One exception type carrying an exit code; `cli.main` is the single place that turns it into one."""

from __future__ import annotations


class TunixError(Exception):
    """Bad input or a refused action: one line on stderr, exit code 2, nothing written."""

    exit_code = 2


class WorkFailed(TunixError):
    """The work itself failed (a run diverged, a hook failed): exit code 1."""

    exit_code = 1


class MissingDependency(TunixError):
    """An optional dependency is not installed; the message names the exact `pip install`."""

    def __init__(self, package: str, extra: str = "train") -> None:
        super().__init__(f"{package} is not installed: pip install 'tunix-rt[{extra}]'")
