"""The report in a real headless Chromium: every page opens from file:// with no console error, no script run,
no request anywhere, and draws something."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from _report_support import CHROMIUM, chromium_page, new_report_project

from tunix_rt import report

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("chromium")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Chromium; `.ci/run` installs the Debian package "
                    "`chromium` (apt-get install chromium)", pytrace=False)
    project = new_report_project(tmp_path_factory.mktemp("browser") / "repo")
    return report.build(project).out


def distinct_colours(png: bytes) -> int:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours or [])


def test_every_page_opens_quietly_and_offline(site: Path) -> None:
    problems: list[str] = []
    with chromium_page() as page:
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("request", lambda r: None if r.url.startswith(("file://", "data:")) else problems.append(
            f"request: {r.url}"))
        pages = sorted(site.glob("*.html"))
        assert [p.name for p in pages] == ["M11.html", "M12.html", "M13.html", "index.html"]
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            assert page.title(), path.name
        # The hostile entry is on the page as text, and nothing of it ran.
        page.goto((site / "M13.html").as_uri(), wait_until="load")
        assert "<script>alert(1)</script>" in page.inner_text("article.log")
        assert page.locator("article.log script, article.log img").count() == 0
        # The index links reach the pages.
        page.goto((site / "index.html").as_uri(), wait_until="load")
        page.click('table.milestones a[href="M12.html"]')
        page.wait_for_url("**/M12.html")
        assert page.locator("figure.chart svg").count() == 1
    assert problems == []


def test_screenshots_are_not_blank(site: Path) -> None:
    with chromium_page() as page:
        for name, least in (("index.html", 40), ("M12.html", 40)):
            page.goto((site / name).as_uri(), wait_until="load")
            shot = page.screenshot(full_page=True)
            assert distinct_colours(shot) > least, name
