"""Writes `docs/report.png`: a screenshot of one milestone page of `milestone report`, for the README.

    python scripts/report_screenshot.py                        # a small demo project, built in a temporary folder
    python scripts/report_screenshot.py --project DIR -m M44   # the report of an existing project

Chromium is the Debian package `chromium` (/usr/bin/chromium), launched as the browser tests launch it
(tests/_report_support.py), so no `playwright install` download is needed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the demo project and the Chromium launch are the browser tests' own

from _report_support import chromium_page, new_report_project  # noqa: E402

from tunix_rt import report  # noqa: E402
from tunix_rt.project import Project  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, help="An existing project (default: a small demo project).")
    parser.add_argument("-m", "--milestone", default="M12", help="The milestone page to show (default: M12).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--height", type=int, default=1500, help="Pixels of the page to keep, from its top.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        project = Project.find(args.project) if args.project else new_report_project(Path(scratch) / "demo")
        site = report.build(project, Path(scratch) / "site").out
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with chromium_page(width=1100, height=args.height) as page:
            page.goto((site / f"{args.milestone}.html").as_uri(), wait_until="load")
            page.screenshot(path=str(args.out))
    print(args.out)


if __name__ == "__main__":
    main()
