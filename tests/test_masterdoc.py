"""tunix_rt.masterdoc: the status line, the Enhancements block, idempotence, the real master doc's layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunix_rt import masterdoc
from conftest import NEEDS_SHARED

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "tunix-rt" / "master-doc.md"
BLOCK = "**M51 Enhancements:** Closing by tool:\n- **Result**: final loss 0.5\n- **Files changed**: 3 files changed"
DOC = """# Tunix RT

**Milestone M50 Complete** ✅  
**Coverage:** >70% | **M50:** post-mortem

## Overview

Text.

**M50 Enhancements:** Post-mortem:
- **Key**: value

## Database Schema

### `traces`
"""


def test_status_line_and_block_before_the_heading() -> None:
    out = masterdoc.update(DOC, "M51", BLOCK, heading="## Database Schema")
    assert "**Milestone M51 Complete** ✅  \n**Coverage:**" in out  # the hard break's two spaces are kept
    assert out.index("**M50 Enhancements:**") < out.index("**M51 Enhancements:**") < out.index("## Database Schema")
    assert f"- **Key**: value\n\n{BLOCK}\n\n## Database Schema" in out


def test_idempotent_and_replaces_its_own_block() -> None:
    once = masterdoc.update(DOC, "M51", BLOCK, heading="## Database Schema")
    assert masterdoc.update(once, "M51", BLOCK, heading="## Database Schema") == once
    changed = masterdoc.update(once, "M51", BLOCK.replace("0.5", "0.4"), heading="## Database Schema")
    assert changed.count("**M51 Enhancements:**") == 1 and "final loss 0.4" in changed and "final loss 0.5" not in changed


def test_end_of_file_without_heading_and_old_milestone_keeps_status() -> None:
    out = masterdoc.update(DOC, "M12", "**M12 Enhancements:** late", heading=None)
    assert out.endswith("### `traces`\n\n**M12 Enhancements:** late\n")
    assert "**Milestone M50 Complete** ✅" in out  # closing an older milestone does not move it back


def test_init_placeholder_and_missing_doc() -> None:
    fresh = "# demo\n\n**No milestone complete yet**\n\n## Overview\n"
    out = masterdoc.update(fresh, "M01", "**M01 Enhancements:** first")
    assert out == "# demo\n\n**Milestone M01 Complete** ✅\n\n## Overview\n\n**M01 Enhancements:** first\n"
    assert masterdoc.update(None, "M01", "**M01 Enhancements:** first", title="demo") == (
        "# demo\n\n**Milestone M01 Complete** ✅\n\n**M01 Enhancements:** first\n"
    )
    no_status = masterdoc.update("# demo\n\nIntro.\n", "M02", "**M02 Enhancements:** x")
    assert no_status.startswith("# demo\n\n**Milestone M02 Complete** ✅\n\nIntro.\n")


@pytest.mark.skipif(not CORPUS.is_file(), reason=NEEDS_SHARED)
def test_real_master_doc_gets_plus_block_lines_only() -> None:
    text = CORPUS.read_text(encoding="utf-8")
    out = masterdoc.update(text, "M51", BLOCK, heading="## Database Schema")
    old_lines, new_lines = text.splitlines(), out.splitlines()
    assert len(new_lines) == len(old_lines) + len(BLOCK.splitlines()) + 1
    assert new_lines[2].startswith("**Milestone M51 Complete** ✅")
    assert out.index("**M50 Enhancements:**") < out.index("**M51 Enhancements:**") < out.index("## Database Schema")
