"""The importer of hand-written tool-calls logs: decoding, every header/field/status variant, and the real corpus."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from tunix_rt import legacy
from tunix_rt.errors import TunixError
from tunix_rt.models import Block, Checkpoint, Entry, Section, Session

from conftest import CORPUS, NEEDS_SHARED

LEGACY = Path(__file__).resolve().parent / "data" / "legacy"
needs_corpus = pytest.mark.skipif(not CORPUS.exists(), reason=NEEDS_SHARED)


def parse_fixture(name: str) -> legacy.ParsedLog:
    path = LEGACY / name
    return legacy.parse(legacy.decode(path.read_bytes(), str(path)))


def entries(parsed: legacy.ParsedLog) -> list[Entry]:
    return [item for item in parsed.items if isinstance(item, Entry)]


def of_type(parsed: legacy.ParsedLog, kind: type) -> list:
    return [item for item in parsed.items if isinstance(item, kind)]


# --- decode ---------------------------------------------------------------------------------------------------------

SAMPLE = "# M08 Tool Calls Log — Ünïcode ✅\n\n### Entry 1 — Café\n**Tool:** write\n"


@pytest.mark.parametrize(
    "data",
    [
        SAMPLE.encode("utf-8"),
        codecs.BOM_UTF8 + SAMPLE.encode("utf-8"),
        codecs.BOM_UTF16_LE + SAMPLE.replace("\n", "\r\n").encode("utf-16-le"),
        codecs.BOM_UTF16_BE + SAMPLE.replace("\n", "\r\n").encode("utf-16-be"),
        SAMPLE.replace("\n", "\r").encode("utf-8"),
        SAMPLE.replace("\n", "\r\n").encode("utf-16-le"),  # BOM-less, as a redirected PowerShell log
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom-crlf", "utf16be-bom-crlf", "cr-only", "utf16le-no-bom"],
)
def test_decode_reads_every_encoding_windows_logs_came_in(data: bytes) -> None:
    assert legacy.decode(data, "log.md") == SAMPLE


def test_decode_of_a_utf16_crlf_copy_parses_like_the_utf8_fixture() -> None:
    source = (LEGACY / "dash_bold_fields.md").read_text(encoding="utf-8")
    data = codecs.BOM_UTF16_LE + source.replace("\n", "\r\n").encode("utf-16-le")
    assert legacy.parse(legacy.decode(data, "copy.md")) == parse_fixture("dash_bold_fields.md")


@pytest.mark.parametrize("data", [b"# M01 Tool Calls Log\n\xff\xfe\xfa broken", b"text\x00with\x00nul\x00bytes"])
def test_decode_refuses_bytes_that_are_not_text_and_names_the_file(data: bytes) -> None:
    with pytest.raises(TunixError, match="broken_log.md") as caught:
        legacy.decode(data, "broken_log.md")
    assert caught.value.exit_code == 2


# --- status vocabulary -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("COMPLETED", "completed"),
        ("Complete", "completed"),
        ("✅ COMPLETE", "completed"),
        ("✅ Complete", "completed"),
        ("✅ COMPLETED", "completed"),
        ("CLOSED", "completed"),
        ("✅ MILESTONE CLOSED", "completed"),
        ("✅ MILESTONE COMPLETE", "completed"),
        ("✅ PHASE 5 COMPLETE", "completed"),
        ("M43 COMPLETE — All artifacts captured", "completed"),
        ("IN PROGRESS", "in-progress"),
        ("STARTING", "in-progress"),
        ("FAILED — JAX CUDA NOT AVAILABLE ON WINDOWS", "failed"),
        ("Failed: out of memory", "failed"),
        ("BLOCKED — waiting for access", "blocked"),
        ("SKIPPED", "skipped"),
        ("PLANNED", "planned"),
        ("PENDING", "planned"),
        ("TODO", "planned"),
        ("NOT STARTED", "planned"),
        ("IN PROGRESS\nCOMPLETED", "completed"),  # a stale line followed by the latest one
        ("NOT COMPLETE", None),
        ("INCOMPLETE", None),
        ("Sort of done, mostly", None),
        ("", None),
    ],
)
def test_status_spellings_map_onto_the_vocabulary(text: str, status: str | None) -> None:
    assert legacy.status_from_text(text) == status


# --- fixtures: one per log family --------------------------------------------------------------------------------------


def test_colon_headers_with_list_item_fields() -> None:
    parsed = parse_fixture("colon_list_fields.md")
    assert (parsed.milestone, parsed.title) == ("M07", "")
    assert [type(item).__name__ for item in parsed.items] == ["Session", "Entry", "Entry", "Block", "Entry", "Block"]
    assert parsed.items[0] == Session(number=1, date="2026-02-01", started="2026-02-01")
    e1, e2, e3 = entries(parsed)
    assert e1 == Entry(
        number=1,
        label="1",
        title="Survey the Repository",
        timestamp="2026-02-01T[session-start]",
        tools=["read_file (batch)", "list_dir"],
        purpose="Learn the layout before planning",
        files=["`README.md` — Project overview", "`src/train.py` — Entry point"],
        status="completed",
        status_text="Complete",
        sections=[Section(name="Next Step", items=["Draft the questions"])],
        source="import",
    )
    assert e2.status_text == "✅ Complete" and e2.status == "completed"
    assert e2.sections == [
        Section(
            name="Key Decisions Locked",
            items=["Model: tiny GPT-2, 4 layers", "Data: `data/train.jsonl` only\n- no augmentation", "Steps: 200"],
        )
    ]
    assert e2.checkpoint == "Decisions locked. Moving to the plan."
    assert e3.tools == ["run_terminal_cmd (git commit + push)", "write"]
    assert e3.files == ["3 files changed, 120 insertions(+)"]
    assert (e3.status, e3.status_text, e3.timestamp) == ("completed", "CLOSED", "2026-02-01T11:43:00-0800")
    summary, complete = of_type(parsed, Block)
    assert summary.heading == "## M07 Final Summary" and summary.after_entry == 2
    assert summary.text.startswith("| Deliverable | Status |\n|---") and summary.text.endswith("**Both deliverables complete.**")
    assert complete.heading == "## M07 Session Complete" and complete.after_entry == 3
    assert parsed.kept_raw == [
        "line 34: '## M07 Final Summary' not understood; kept verbatim as a raw block",
        "line 57: '## M07 Session Complete' not understood; kept verbatim as a raw block",
    ]


def test_dash_headers_with_soft_break_fields_ranges_and_every_status() -> None:
    parsed = parse_fixture("dash_bold_fields.md")
    assert parsed.milestone == "M08"
    found = entries(parsed)
    assert [e.label for e in found] == ["1-2", *[str(n) for n in range(3, 14)]]
    recovered = found[0]
    assert (recovered.number, recovered.title, recovered.status, recovered.status_text) == (
        1, "Prior Work (Session Recovered)", "completed", "COMPLETED",
    )
    assert recovered.sections == [Section(name="", items=["Read the plan", "Asked two questions", "Got both answers"])]
    failed = found[1]
    assert (failed.status, failed.status_text) == ("failed", "FAILED — WHEEL NOT AVAILABLE FOR THIS PLATFORM")
    assert (failed.timestamp, failed.tools, failed.purpose, failed.files) == (
        "2026-02-02", ["run_terminal_cmd"], "Install the accelerator stack", [".venv-gpu"],
    )
    attempts, conclusion, resolution = failed.sections
    assert attempts.name == "Attempts" and attempts.ordered and len(attempts.items) == 3
    assert attempts.items[0] == "`pip install thing[cuda]` — extra only exists for old versions"
    assert conclusion == Section(name="Conclusion", items=["The wheel is Linux-only. Windows needs WSL2."])
    assert resolution == Section(name="Resolution", items=["Pivot to the CPU path"])
    assert failed.checkpoint == "Install failed, pivoting to CPU"
    assert found[3].files == ["inputs/", "scripts/", "metrics/"]  # an inline comma-separated list of paths
    assert found[9].files == ["Git repository"]  # inline prose stays one item
    assert [(e.status, e.status_text) for e in found[2:]] == [
        ("completed", "✅ COMPLETED"),
        ("in-progress", "IN PROGRESS"),
        ("blocked", "BLOCKED — waiting for data access"),
        ("skipped", "SKIPPED"),
        ("planned", "PENDING"),
        ("planned", "TODO"),
        ("planned", "PLANNED"),
        ("in-progress", "STARTING"),
        (None, "Sort of done, mostly"),
        ("completed", "✅ MILESTONE CLOSED"),
    ]
    # The one status outside the vocabulary is reported, not silently nulled.
    assert parsed.kept_raw == [
        "line 104: entry 12 status 'Sort of done, mostly' is not in the vocabulary; kept as its text with no status"
    ]


def test_h2_entries_tables_code_and_an_h1_closure() -> None:
    parsed = parse_fixture("h2_entries.md")
    e1, e2 = entries(parsed)
    assert e1.title == "Execute Curriculum Training (Stages A, B, C)"
    assert e1.timestamp == "2026-02-03 (Session Start)"
    assert e1.tools == ["run_terminal_cmd (python run.py)", "read_file"]
    assert e1.files == []  # `**Output:**` is a section of its own, not the files
    output, table, hyper, note = e1.sections
    stages = ["`runs/stage_a/` — first stage", "`runs/stage_b/` — second stage"]
    assert output == Section(name="Output", items=stages)
    assert table == Section(
        name="Training Results",
        text="| Stage | Steps | Loss |\n|-------|-------|------|\n| A | 10 | 1.5 |\n| B | 10 | 1.2 |",
    )
    assert hyper == Section(name="Hyperparameters (identical across stages)", items=["lr: 1e-4", "batch: 8"])
    assert note == Section(name="Note", items=["Loss is not comparable with M09."])
    assert e2.files == ["report.md"]  # from **Files Created:**
    assert e2.sections == [Section(name="Commands", text="```bash\npython report.py --out report.md\n```")]
    blocks = of_type(parsed, Block)
    assert [(b.heading, b.after_entry) for b in blocks] == [("## Final Summary", 2), ("# M10 MILESTONE CLOSED", 2)]
    assert blocks[0].text == "- [x] Training done\n- [x] Report written"
    assert blocks[1].text == "**Completion Date:** 2026-02-03"


def test_timestamp_headers_hard_breaks_checkpoints_and_preambles() -> None:
    parsed = parse_fixture("timestamp_headers.md")
    assert (parsed.milestone, parsed.title) == ("M09", "Structured Self-Correction")
    found = entries(parsed)
    assert [(e.label, e.number, e.title, e.timestamp) for e in found] == [
        ("001", 1, "", "2026-03-01T[initial]"),
        ("002", 2, "", "2026-03-01T18:00"),
        ("003", 3, "", "2026-03-02T19:15-19:35"),
    ]
    assert all(e.status is None and e.status_text == "" for e in found)
    assert found[0].tools == ["read_file (batch)"] and found[0].purpose == "Load the context"  # hard breaks split
    assert found[1].sections == [
        Section(
            name="Result",
            text="Questions written. Awaiting confirmation on:",
            items=["Marker format", "Error rate", "Duration"],
            ordered=True,
        )
    ]
    assert found[2].files == ["inputs/", "scripts/", "metrics/", "taxonomy/"]
    assert found[2].sections[0].items == ["Control: 5% verification", "Treated: 97% verification"]
    questions, complete, final, final_named = of_type(parsed, Checkpoint)
    assert questions == Checkpoint(
        title="Pre-Implementation Questions",
        status="completed",
        status_text="✅ COMPLETE",
        sections=[Section(name="Result", items=["All recommendations confirmed"])],
        after_entry=2,
    )
    assert complete.sections == [Section(name="Key Finding", items=["Structure is learnable"])]
    assert complete.text == "| Metric | Value |\n|--------|-------|\n| AUC | 0.91 |"
    assert (final.final, final.title, final.status) == (True, "", None)
    assert [s.name for s in final.sections] == ["Git Commit", "Ready for"]
    assert (final_named.final, final_named.title) == (True, "M09 Complete")
    blocks = of_type(parsed, Block)
    assert [b.heading for b in blocks] == ["", "## Recovery Check", "## Log Entries", "## M09 MILESTONE CLOSED"]
    assert blocks[0].text == "**Milestone:** M09\n**Started:** 2026-03-01"  # trailing hard-break spaces dropped
    assert blocks[3].after_entry == 3
    assert len(parsed.kept_raw) == 4


def test_junk_is_kept_raw_and_nothing_but_separators_is_dropped() -> None:
    parsed = parse_fixture("junk.md")
    assert parsed.milestone is None and parsed.title == ""
    kinds = [type(item).__name__ for item in parsed.items]
    assert kinds == ["Block", "Block", "Entry", "Block", "Block"]
    preamble, notes, entry, sub, orphan = parsed.items
    assert preamble == Block(text="Some notes written before any heading.")
    assert notes.heading == "## Notes"
    assert "### Entry 9 — not an entry" in notes.text  # inside a code fence: text, not an entry
    assert "> A quoted remark\n> over two lines." in notes.text and "<div>raw html</div>" in notes.text
    assert entry.sections == [
        Section(name="", text="Plain paragraph under no label.", items=["loose item one", "loose item two"]),
        Section(name="", items=["a second list with another marker"]),
        Section(name="Empty"),
    ]
    assert entry.checkpoint is None  # an empty CHECKPOINT line carries nothing
    assert sub == Block(heading="#### Random subheading", text="Text under it.", after_entry=1)
    assert orphan == Block(text="Orphan text after a separator.", after_entry=1)
    source = (LEGACY / "junk.md").read_text(encoding="utf-8")
    kept = "\n".join(f"{b.heading}\n{b.text}" for b in of_type(parsed, Block))
    for line in source.splitlines():
        words = line.strip()
        if words and words != "---" and not words.startswith(("### Entry 1", "**Tool:**", "**Purpose:**", "**Empty:**",
                                                             "**CHECKPOINT:**", "-", "*", "Plain")):
            assert words in kept, words
    assert len(parsed.kept_raw) == 4


def test_header_styles_and_field_spellings_in_one_log() -> None:
    text = "\n".join(
        [
            "# m7 Tool Calls Log",
            "### Entry 1: Colon Title",
            "**Tools:** a, b (c, d)",
            "## Entry 2 — Dash Title",
            "**Files Involved:** one.py",
            "### Entry 003 — 2026-01-08T[init]",
            "**Files:** x/, y/",
            "### Entry 4 — 2026-01-08",
            "**Timestamp:** 2026-01-09",
            "### Entry 5 - Hyphen Title",
            "### Entry 6",
            "## 2026-01-09 — Session Start",
            "## Session Start",
        ]
    )
    parsed = legacy.parse(text)
    assert parsed.milestone == "M07"
    e1, e2, e3, e4, e5, e6 = entries(parsed)
    assert (e1.title, e1.tools) == ("Colon Title", ["a", "b (c, d)"])
    assert (e2.title, e2.files) == ("Dash Title", ["one.py"])
    assert (e3.label, e3.title, e3.timestamp, e3.files) == ("003", "", "2026-01-08T[init]", ["x/", "y/"])
    # A date in the header is the title when the body has its own Timestamp line.
    assert (e4.title, e4.timestamp) == ("2026-01-08", "2026-01-09")
    assert (e5.title, e6.title, e6.label) == ("Hyphen Title", "", "6")
    sessions = of_type(parsed, Session)
    assert [(s.number, s.date) for s in sessions] == [(1, "2026-01-09"), (2, "")]


def test_a_bare_status_paragraph_and_a_lead_paragraph_split_at_blank_lines() -> None:
    text = "\n".join(
        [
            "### Entry 1 — Lead",
            "**Result:** lead text:",
            "- direct item",
            "",
            "**Note:** alone",
            "",
            "- not the note's list",
        ]
    )
    (entry,) = entries(legacy.parse(text))
    assert entry.sections == [
        Section(name="Result", text="lead text:", items=["direct item"]),
        Section(name="Note", items=["alone"]),
        Section(name="", items=["not the note's list"]),
    ]


# --- the real corpus ---------------------------------------------------------------------------------------------------


def corpus(name: str) -> legacy.ParsedLog:
    path = CORPUS / name
    return legacy.parse(legacy.decode(path.read_bytes(), str(path)))


@needs_corpus
def test_corpus_m43() -> None:
    parsed = corpus("M43_toolcalls.md")
    assert parsed.milestone == "M43"
    found = entries(parsed)
    assert [e.label for e in found] == ["1-3", "4", "5", "6", "7", "8", "9"]
    first = found[0]
    assert first.status == "completed" and first.sections[0].name == "" and len(first.sections[0].items) == 4
    e5 = found[2]
    assert (e5.status, e5.status_text) == ("failed", "FAILED — JAX CUDA NOT AVAILABLE ON WINDOWS")
    attempts = e5.sections[0]
    assert attempts.name == "Attempts" and attempts.ordered and len(attempts.items) == 4
    assert [s.name for s in e5.sections] == ["Attempts", "Conclusion", "Resolution"]
    assert e5.checkpoint == "JAX CUDA failed, pivoting to PyTorch"
    assert found[1].status == "in-progress"
    assert parsed.kept_raw == []


@needs_corpus
def test_corpus_m44() -> None:
    found = entries(corpus("M44_toolcalls.md"))
    assert len(found) == 6
    assert (found[-1].status_text, found[-1].status) == ("STARTING", "in-progress")
    assert found[0].sections[0].name == "Locked Decisions" and len(found[0].sections[0].items) == 5


@needs_corpus
def test_corpus_m46() -> None:
    parsed = corpus("M46_toolcalls.md")
    assert (parsed.milestone, parsed.title) == ("M46", "Structured Self-Correction")
    found = entries(parsed)
    assert [e.label for e in found] == [f"{n:03d}" for n in range(1, 14)]
    assert all(e.title == "" and e.status is None for e in found)
    assert found[0].timestamp == "2026-01-08T[initial]"
    assert len(of_type(parsed, Checkpoint)) == 5
    result = found[9].sections[0]
    assert (result.name, result.text, len(result.items)) == ("Result", "Evaluation complete. Key finding:", 3)
    closure = of_type(parsed, Block)[-1]
    assert closure.heading == "## M46 MILESTONE CLOSED" and "**Git Commit:** 7e65611" in closure.text


@needs_corpus
def test_corpus_m42() -> None:
    parsed = corpus("M42_toolcalls.md")
    found = entries(parsed)
    assert len(found) == 9
    assert found[1].sections[0].name == "Key Decisions Locked" and len(found[1].sections[0].items) == 7
    assert found[2].tools == ["write (M42_plan.md)", "read_file (.cursorrules)", "search_replace (.cursorrules)"]
    labels = [(type(i).__name__, getattr(i, "label", getattr(i, "heading", ""))) for i in parsed.items]
    assert labels.index(("Block", "## M42 Final Summary")) == labels.index(("Entry", "7")) + 1
    assert labels[-1] == ("Block", "## M42 Session Complete")
    summary = of_type(parsed, Block)[0]
    assert summary.after_entry == 7 and summary.text.startswith("| Deliverable | Status | Location |")


# --- enrich: what an import reads into the schema on top of the verbatim parse ------------------------------------

from _support import DATA, render_items  # noqa: E402

ALL_LAYOUTS = sorted(LEGACY.glob("*.md")) + [DATA / "adoption" / "M11_toolcalls.md"]
CORPUS_LOGS = sorted(CORPUS.glob("*_toolcalls.md")) if CORPUS.exists() else []


def enriched(path: Path) -> legacy.ParsedLog:
    return legacy.enrich(legacy.parse(legacy.decode(path.read_bytes(), str(path))))


def test_later_layout_entries_get_titles_statuses_and_notes() -> None:
    parsed = enriched(DATA / "adoption" / "M11_toolcalls.md")
    e1, e2, e3 = entries(parsed)
    assert (e1.title, e1.timestamp) == ("Read the plan and the answers before starting", "2026-01-09T[initial]")
    assert e1.tools == ["read_file"] and [(n.kind, n.index, n.text) for n in e1.notes] == [
        ("tool", 0, "multiple"), ("file", 0, "Authoritative plan"), ("file", 1, "locked decisions"),
        ("files", -1, "Git repository")]
    assert e1.files == ["M11_plan.md", "M11_answers.md"]
    assert (e1.status, e1.status_text) == ("completed", "✅ COMPLETED — Plan understood; seven questions drafted.")
    assert "Result" not in [s.name for s in e1.sections]
    assert e2.tools == ["write", "run_terminal_cmd"]
    assert [n.text for n in e2.notes if n.kind == "tool"] == ["M11_questions.md, M11_answers.md", "New-Item"]
    assert e2.files == ["research/m11_observer/", "scripts/run_observer.py"]
    output = next(s for s in e2.sections if s.name == "Output")  # its own section, the diffstat line in it
    diffstat = "16 files changed, 2011 insertions(+), 12 deletions(-)"
    assert output.items == ["research/m11_observer/configs/observer.yaml", diffstat]
    assert (e2.status, e2.status_text) == ("failed", "Failed — the folder already existed, so nothing was created.")
    assert e2.checkpoint == "scaffolding blocked on the old folder"
    # a Result written as a list keeps its section; the status is read from its words
    assert (e3.files, e3.status, e3.status_text) == ([".venv-gpu"], "completed", "✅ COMPLETED")
    assert [s.name for s in e3.sections] == ["Result"]


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("Successfully loaded project context.", "completed"),
        ("Failed — no wheel for Windows", "failed"),
        ("❌ Blocked on the GPU driver", "blocked"),
        ("Skipped: no GPU", "skipped"),
        ("Stage A done, stage B FAILED", "failed"),
        ("Error Injection: 21 errors injected", "completed"),  # the topic, not the outcome
        ("Questions written. Awaiting user confirmation", "completed"),
        ("Still running after 2 h", "in-progress"),
    ],
)
def test_a_result_without_a_status_gives_one(text: str, status: str) -> None:
    assert legacy.status_from_result(text) == status


@pytest.mark.parametrize(
    ("value", "split"),
    [
        ("`x.md` — Authoritative plan", ("x.md", "Authoritative plan")),
        ("data/traces.jsonl (145 traces)", ("data/traces.jsonl", "145 traces")),
        ("`runs/a/` – first stage", ("runs/a/", "first stage")),
        (".venv-gpu", (".venv-gpu", "")),
        ("`M42_plan.md`", ("M42_plan.md", "")),
    ],
)
def test_file_annotations_split_off(value: str, split: tuple[str, str]) -> None:
    assert legacy.split_file(value) == split


@pytest.mark.parametrize("line", ["Git repository", "16 files changed, 2011 insertions(+)", "9 deletions(-)"])
def test_lines_that_are_not_paths_are_not_files(line: str) -> None:
    assert not legacy.is_path(line)


def test_titles_are_the_first_sentence_trimmed() -> None:
    assert legacy.first_sentence("Train the model. Then evaluate.") == "Train the model"
    long = "Understand " + "the very long purpose " * 10
    assert len(legacy.first_sentence(long)) <= 81 and legacy.first_sentence(long).endswith("…")


@pytest.mark.parametrize("path", ALL_LAYOUTS + CORPUS_LOGS, ids=lambda p: p.name)
def test_enriched_logs_render_to_views_that_import_the_same(path: Path) -> None:
    """The view an import renders, imported again, gives the same objects: notes, titles and statuses included."""
    first = enriched(path)
    text = render_items(first.items, first.milestone or "M01", first.title)
    again = legacy.enrich(legacy.parse(text))
    assert again.items == first.items
    assert legacy.enrich(first).items == first.items  # enriching twice changes nothing


def _had_result(raw: legacy.ParsedLog) -> set[int]:
    return {e.number for e in entries(raw) if any(s.name.lower() == "result" for s in e.sections)}


@pytest.mark.parametrize("path", [LEGACY / "timestamp_headers.md", *[p for p in CORPUS_LOGS if p.name >= "M46"]],
                         ids=lambda p: p.name)
def test_no_later_layout_entry_is_left_untitled_or_without_the_status_its_result_gives(path: Path) -> None:
    raw = legacy.parse(legacy.decode(path.read_bytes(), str(path)))
    found = entries(legacy.enrich(raw))
    assert all(e.title for e in found)
    assert all(e.status for e in found if e.number in _had_result(raw))


@needs_corpus
def test_corpus_m46_enriched_has_titles_statuses_and_clean_files() -> None:
    found = entries(legacy.enrich(corpus("M46_toolcalls.md")))
    assert all(e.title for e in found) and [e.label for e in found if e.status is None] == ["013"]  # 013 has no result
    assert found[0].title == "Project familiarization and understanding M45 context"
    assert found[0].tools == ["read_file"] and found[0].notes[0].text == "batch"
    assert found[0].files[0] == "ProjectFiles/Milestones/Phase5/M46_toolcalls.md"
    assert all(" — " not in f and "`" not in f for e in found for f in e.files)
    inline = sum(1 for e in found if e.checkpoint) + len(of_type(corpus("M46_toolcalls.md"), Checkpoint))
    assert inline >= 5
