"""Abuse: bad input to every command exits 2 with one stderr line, no traceback, and leaves every byte as it was.

Extends tests/test_bad_input.py (ids, statuses, section syntax of `start`/`log`), tests/test_runs.py (the
torch-sft config fixtures) and tests/test_close.py (close guards) with what those do not feed: broken
files of every kind (non-UTF-8, NUL bytes, 100 MB single lines, YAML tabs/anchors/alias bombs, JSONL with
nothing usable), broken project templates and settings, paths that try to leave the project, and
hypothesis fuzz of the importer and the plugin config loader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DATA, git
from tunix_rt.errors import TunixError

MILESTONE = str(Path(sys.executable).with_name("milestone"))
PHASE = "ProjectFiles/Milestones/Phase1"
HUNDRED_MB = 100 * 1024 * 1024
GOOD_TRAIN = "model: {tiny: {arch: gpt2}}\ndata: {train: data/traces.jsonl}\ntraining: {max_steps: 1}\n"
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
) + "model: {tiny: {arch: gpt2}}\ndata: {train: data/traces.jsonl}\n"


class Symlink:
    """A symbolic link to a file outside the repository (created next to the repository, with content)."""

    def __init__(self, content: bytes) -> None:
        self.content = content


OUTSIDE_LEDGER = Symlink(b'{"schema_version":1,"time":"2026-01-08T12:00:00Z","kind":"session_started","session":'
                         b'{"number":1,"date":"2026-01-08","started":"2026-01-08T12:00:00Z"}}\n')


def big_line(prefix: bytes) -> bytes:
    return prefix + b"x" * HUNDRED_MB + b"\n"


# (case, files to write before the call {path: bytes | callable}, arguments, what stderr must name)
CASES: list[tuple[str, dict, list[str], str]] = [
    # --- import -------------------------------------------------------------------------------
    ("import non-UTF-8 bytes", {"in.md": b"# M43 Tool Calls Log\n\n### Entry 1: caf\xe9 \xff\n"}, ["import", "in.md"], "not readable as UTF-8"),
    ("import NUL bytes", {"in.md": b"# M43 Tool Calls Log\n\n### Entry 1: a\x00b\n"}, ["import", "in.md"], "NUL"),
    ("import a PNG", {"in.png": (DATA.parent / "test_faults.py").read_bytes()[:0] + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00"},
     ["import", "in.png", "--milestone", "M43"], "in.png"),
    ("import odd-length UTF-16", {"in.md": b"\xff\xfe#\x00 \x00M\x004\x003\x00!"}, ["import", "in.md"], "not readable as UTF-16"),
    ("import an empty file", {"in.md": b""}, ["import", "in.md"], "no milestone id"),
    ("import a folder", {"folder/x.md": b"x\n"}, ["import", "folder", "--milestone", "M43"], "cannot read"),
    ("import 100 MB single line", {"in.md": lambda: big_line(b"# M43 Tool Calls Log\n\n")}, ["import", "in.md"], "in.md"),
    ("import path id", {"in.md": b"# Log\n"}, ["import", "in.md", "--milestone", "../M1"], "invalid milestone id"),
    ("import padded duplicate", {"in.md": b"# Log\n"}, ["import", "in.md", "--milestone", "M0044"], "already exists"),
    ("import duplicate from title", {"in.md": b"# M44 Tool Calls Log\n"}, ["import", "in.md"], "already exists"),
    ("import negative phase", {"in.md": b"# M43 Tool Calls Log\n"}, ["import", "in.md", "--phase", "-2"], "--phase"),
    # --- render / show / list -----------------------------------------------------------------
    ("render bad id", {}, ["render", "--milestone", "M4x"], "invalid milestone id"),
    ("render unknown", {}, ["render", "--milestone", "M99"], "does not exist"),
    ("render template syntax error", {"templates/toolcalls_header.md.j2": b"# {{ milestone.id }\n"}, ["render"], "template"),
    ("render template undefined name", {"templates/toolcalls_header.md.j2": b"# {{ milestone.nope }}\n"}, ["render"], "template"),
    ("render non-UTF-8 template", {"templates/toolcalls_header.md.j2": b"# \xff{{ milestone.id }}\n"}, ["render"], "template"),
    ("show path id", {}, ["show", "../M44"], "invalid milestone id"),
    ("list with a malformed first line", {f"{PHASE}/M45.ledger.jsonl": b'{"kind": "milestone_started"}\n'}, ["list"], "M45.ledger.jsonl:1"),
    ("show a symlinked ledger outside", {f"{PHASE}/M09.ledger.jsonl": OUTSIDE_LEDGER}, ["show", "M09"], "outside the repository"),
    ("render a symlinked ledger outside", {f"{PHASE}/M09.ledger.jsonl": OUTSIDE_LEDGER}, ["render", "--milestone", "M09"],
     "outside the repository"),
    ("update a symlinked ledger outside", {f"{PHASE}/M09.ledger.jsonl": OUTSIDE_LEDGER},
     ["log", "update", "1", "--status", "failed", "--milestone", "M09"], "outside the repository"),
    ("close a symlinked ledger outside", {f"{PHASE}/M09.ledger.jsonl": OUTSIDE_LEDGER}, ["close", "--milestone", "M09"],
     "outside the repository"),
    ("run into a symlinked ledger outside", {f"{PHASE}/M09.ledger.jsonl": OUTSIDE_LEDGER, "c.yaml": GOOD_TRAIN.encode()},
     ["run", "train", "--config", "c.yaml", "--milestone", "M09"], "outside the repository"),
    # --- log with broken surroundings -----------------------------------------------------------
    ("log entry, entry template syntax error", {"templates/toolcalls_entry.md.j2": b"{% if entry %}\n"},
     ["log", "entry", "-t", "a", "--tool", "x", "-p", "y"], "template"),
    ("log entry empty --file", {}, ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--file", " "], "--file"),
    ("log entry empty --checkpoint", {}, ["log", "entry", "-t", "a", "--tool", "x", "-p", "y", "--checkpoint", " "], "--checkpoint"),
    ("log update entry 0", {}, ["log", "update", "0", "--status", "failed"], "no entry 0"),
    ("log session, path id", {}, ["log", "session", "--milestone", "M44/../M1"], "invalid milestone id"),
    ("settings: invalid TOML", {"milestone.toml": b"[tool.tunix-rt\nmilestones_dir = 1\n"},
     ["log", "entry", "-t", "a", "--tool", "x", "-p", "y"], "invalid TOML"),
    ("settings: wrong type", {"milestone.toml": b'max_file_mb = "big"\n'}, ["log", "entry", "-t", "a", "--tool", "x", "-p", "y"],
     "max_file_mb"),
    ("settings: unknown key", {"milestone.toml": b'milestone_dir = "x"\n'}, ["status"], "milestone_dir"),
    ("settings: non-UTF-8", {"milestone.toml": b'master_doc = "\xff.md"\n'}, ["status"], "milestone.toml"),
    ("settings: milestones outside the repo", {"milestone.toml": b'milestones_dir = "../outside"\n'},
     ["start", "M45", "--title", "escape"], "outside the repository"),
    ("tampered current milestone", {".git/tunix-rt/state.json": b'{"current": "../../M1"}\n'},
     ["log", "entry", "-t", "a", "--tool", "x", "-p", "y"], "M1"),
    # --- run -----------------------------------------------------------------------------------------
    ("run config with tabs", {"c.yaml": b"model:\n\ttiny: {arch: gpt2}\n"}, ["run", "train", "--config", "c.yaml"], "invalid YAML"),
    ("run config undefined alias", {"c.yaml": b"model: *nope\n"}, ["run", "train", "--config", "c.yaml"], "invalid YAML"),
    ("run config alias bomb", {"c.yaml": ALIAS_BOMB.encode()}, ["run", "train", "--config", "c.yaml"], "config"),
    ("run config is a list", {"c.yaml": b"- model\n- data\n"}, ["run", "train", "--config", "c.yaml"], "mapping"),
    ("run config non-UTF-8", {"c.yaml": b"model: {tiny: {arch: gpt\xff}}\n"}, ["run", "train", "--config", "c.yaml"], "UTF-8"),
    ("run config wrong nested type", {"c.yaml": b"model: {tiny: {arch: gpt2}}\ndata: {train: data/traces.jsonl}\ntraining: 5\n"},
     ["run", "train", "--config", "c.yaml"], "training"),
    ("run config 5 MB single line", {"c.yaml": lambda: b"model: " + b"x" * (5 << 20) + b"\n"},
     ["run", "train", "--config", "c.yaml"], "config"),
    ("run config is a folder", {"cfg/x": b""}, ["run", "train", "--config", "cfg"], "cfg"),
    ("run dataset of 0 records", {"c.yaml": GOOD_TRAIN.encode(), "data/traces.jsonl": b""}, ["run", "train", "--config", "c.yaml"],
     "traces.jsonl"),
    ("run dataset of blank lines", {"c.yaml": GOOD_TRAIN.encode(), "data/traces.jsonl": b"\n\n  \n"},
     ["run", "train", "--config", "c.yaml"], "traces.jsonl"),
    ("run dataset truncated JSON only", {"c.yaml": GOOD_TRAIN.encode(), "data/traces.jsonl": b'{"prompt": "a", "final_ans'},
     ["run", "train", "--config", "c.yaml"], "traces.jsonl"),
    ("run dataset non-UTF-8", {"c.yaml": GOOD_TRAIN.encode(), "data/traces.jsonl": b'{"prompt": "\xff", "final_answer": "a"}\n'},
     ["run", "train", "--config", "c.yaml"], "traces.jsonl"),
    ("run dataset 100 MB single line", {"c.yaml": GOOD_TRAIN.encode(), "data/traces.jsonl": lambda: big_line(b'{"prompt": "')},
     ["run", "train", "--config", "c.yaml"], "traces.jsonl"),
    ("run id absolute path", {"c.yaml": GOOD_TRAIN.encode()}, ["run", "train", "--config", "c.yaml", "--run", "/tmp/x"], "invalid run id"),
    ("run id dot-dot", {"c.yaml": GOOD_TRAIN.encode()}, ["run", "train", "--config", "c.yaml", "--run", ".."], "run"),
    ("run into an existing folder", {"c.yaml": GOOD_TRAIN.encode(), "submission_runs/m44_v1/x.txt": b"x\n"},
     ["run", "train", "--config", "c.yaml", "--run", "m44_v1"], "already exists"),
    ("run for an unknown milestone", {"c.yaml": GOOD_TRAIN.encode()}, ["run", "train", "--config", "c.yaml", "--milestone", "M99"],
     "does not exist"),
    # --- close --------------------------------------------------------------------------------------
    ("close bad id", {}, ["close", "--milestone", "M4x"], "invalid milestone id"),
    ("close unknown", {}, ["close", "--milestone", "M99"], "does not exist"),
    ("close --summary missing file", {}, ["close", "--skip-hooks", "--force", "--summary", "@nope.txt"], "nope.txt"),
    ("close --summary non-UTF-8 file", {"s.txt": b"caf\xe9\n"}, ["close", "--skip-hooks", "--force", "--summary", "@s.txt"], "s.txt"),
    ("close --summary empty", {}, ["close", "--skip-hooks", "--force", "--summary", "  "], "--summary"),
    ("close summary template syntax error", {"templates/summary.md.j2": b"{% for x in %}\n"}, ["close", "--skip-hooks", "--force"],
     "template"),
    # --- verify -------------------------------------------------------------------------------------
    ("verify escaping id", {}, ["verify", "../../etc"], "../../etc"),
    ("verify absolute outside", {}, ["verify", "/etc"], "/etc"),
    ("verify unknown run", {}, ["verify", "m44_v9"], "m44_v9"),
    ("verify folder without artifacts", {"submission_runs/m44_v3/a.txt": b"a\n"}, ["verify", "m44_v3"], "artifacts.json"),
    ("verify truncated artifacts.json", {"submission_runs/m44_v4/artifacts.json": b'{"run_id": "m44_v4", "files": [{"pa'},
     ["verify", "m44_v4"], "artifacts.json"),
    ("verify artifacts.json listing a file outside the repo", {"submission_runs/m44_v5/artifacts.json": json.dumps(
        {"run_id": "m44_v5", "files": [{"path": "/etc/hostname", "bytes": 1, "sha256": "0" * 64, "tracked": True}]}
    ).encode()}, ["verify", "m44_v5"], "outside"),
]

# Known bugs found by these cases (strict xfail: a fix turns them into passes). All fixed so far.
XFAIL: dict[str, str] = {}


def params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[case[0]])] if case[0] in XFAIL else []
        if "100 MB" in case[0]:
            marks.append(pytest.mark.slow)
        yield pytest.param(*case, marks=marks, id=case[0])


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the root (with .git's own state, except git's index-independent objects)."""
    found = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if rel.parts[0] == ".git" and (len(rel.parts) < 2 or rel.parts[1] != "tunix-rt"):
            continue
        if p.is_file() and not p.is_symlink() and "jinja-cache" not in rel.parts:
            found[str(rel)] = p.read_bytes()
    return found


@pytest.fixture
def m44(project, run_cli):
    assert run_cli("start", "M44", "--title", "abuse").code == 0
    assert run_cli("log", "entry", "-t", "first", "--tool", "x", "-p", "y", "--status", "completed").code == 0
    (project.root / "data").mkdir()
    (project.root / "data" / "traces.jsonl").write_bytes((DATA / "runs" / "traces.jsonl").read_bytes())
    return project


@pytest.mark.parametrize(("case", "files", "args", "message"), list(params()))
def test_bad_input(m44, case: str, files: dict, args: list[str], message: str) -> None:
    root = m44.root
    for rel, content in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Symlink):
            outside = root.parent / f"outside-{target.name}"
            outside.write_bytes(content.content)
            target.symlink_to(outside)
            continue
        target.write_bytes(content() if callable(content) else content)
    before = snapshot(root)
    outside_before = {p.name: p.read_bytes() for p in root.parent.glob("outside-*")}
    head = git(root, "rev-parse", "HEAD")
    t0 = time.monotonic()
    done = subprocess.run([MILESTONE, *args], cwd=root, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - t0
    assert done.returncode == 2, (case, done.returncode, done.stderr[-2000:])
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-2000:]
    assert len(lines[0]) < 600, "one clear line, not a dump of the input"
    assert message in lines[0], lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    after = snapshot(root)
    assert sorted(after) == sorted(before), (case, set(after) ^ set(before))
    for rel in before:
        assert after[rel] == before[rel], (case, rel)
    assert git(root, "rev-parse", "HEAD") == head
    assert not (root.parent / "outside").exists(), "a setting must not make the tool write outside the repository"
    assert {p.name: p.read_bytes() for p in root.parent.glob("outside-*")} == outside_before
    assert elapsed < 60, f"{case}: {elapsed:.0f} s to refuse"


def test_at_least_thirty_cases_across_all_commands() -> None:
    commands = {args[0] for _, _, args, _ in CASES}
    assert len(CASES) >= 30
    assert {"import", "render", "log", "run", "close", "verify"} <= commands


def test_non_utf8_arguments_are_refused_or_stored_as_valid_utf8(m44) -> None:
    """Bytes that are not UTF-8 on the command line (a mangled shell) never crash a writer or reach a file."""
    path = m44.root / PHASE / "M44.ledger.jsonl"
    before = path.read_bytes()
    done = subprocess.run([MILESTONE.encode(), b"log", b"entry", b"-t", b"caf\xe9", b"--tool", b"x", b"-p", b"\xff\xfe"],
                          cwd=m44.root, capture_output=True)
    assert b"Traceback" not in done.stderr, done.stderr.decode("utf-8", "replace")
    if done.returncode == 0:
        path.read_bytes().decode("utf-8")
        (m44.root / PHASE / "M44_toolcalls.md").read_bytes().decode("utf-8")
    else:
        assert done.returncode == 2 and done.stderr.count(b"\n") == 1, done.stderr
        assert path.read_bytes() == before


# --- fuzz ------------------------------------------------------------------------------------------

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
markdownish = st.lists(
    st.one_of(
        st.sampled_from(["# M43 Tool Calls Log", "## Session Start: 2026-01-08", "### Entry 1: Title", "### Entry 1-3 — Recovered",
                         "## Entry 5 — H2", "### Entry 009 — 2026-01-09T[train]", "**Tool:** run_terminal_cmd", "**Status:** ✅ COMPLETED",
                         "**Status:** FAILED — reason", "**CHECKPOINT:** done", "## CHECKPOINT: Training", "## FINAL CHECKPOINT",
                         "- **Files Involved:**", "  - `a.py` — note", "**Results:**", "1. first", "| a | b |", "|---|---|", "---",
                         "```", "> quote", "", "    code", "**Purpose:**", "# M45 MILESTONE CLOSED", "<!-- x -->", "\\*"]),
        st.text(max_size=40),
    ),
    max_size=40,
).map("\n".join)


@FUZZ
@given(markdownish)
def test_fuzz_legacy_parse_raises_only_tunix_errors(text: str) -> None:
    legacy = pytest.importorskip("tunix_rt.legacy")
    try:
        legacy.parse(text)
    except TunixError:
        pass


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_legacy_decode_raises_only_tunix_errors(data: bytes) -> None:
    legacy = pytest.importorskip("tunix_rt.legacy")
    try:
        text = legacy.decode(data, "fuzz.md")
    except TunixError:
        return
    assert "\r" not in text and "\x00" not in text
    try:
        legacy.parse(text)
    except TunixError:
        pass


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.text(max_size=12))
config_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8)
def maybe(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a plausible value, sometimes anything: the loader must cope with both at every depth."""
    return st.one_of(valid, valid, config_value)


def section(keys: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    return maybe(st.fixed_dictionaries({}, optional={k: maybe(v) for k, v in keys.items()}))


small_int = st.integers(-3, 5000)
configs = st.fixed_dictionaries(
    {
        "model": section({
            "tiny": section({"arch": st.sampled_from(["gpt2", "llama", "bert"]), "n_layer": small_int, "n_embd": small_int,
                             "n_head": small_int, "vocab_size": small_int}),
            "model_id": st.sampled_from(["gpt2", "org/name", "./local", "", "../../etc"]),
            "revision": st.text(max_size=8),
            "attn_implementation": st.sampled_from(["sdpa", "eager", "flash"]),
        }),
    },
    optional={
        "data": section({"train": st.sampled_from(["traces.jsonl", "missing.jsonl", "", ".", "/dev/null"]),
                         "eval": st.sampled_from(["traces.jsonl", "nope.jsonl"]), "eval_split": st.floats(-1, 1),
                         "skip_invalid": st.booleans()}),
        "training": section({"batch_size": small_int, "max_seq_length": small_int, "max_steps": small_int,
                             "learning_rate": st.floats(allow_nan=True), "device": st.sampled_from(["cpu", "tpu"]),
                             "dtype": st.sampled_from(["float32", "int8"]), "num_epochs": st.floats(allow_infinity=True)}),
        "eval": section({"max_new_tokens": small_int, "batch_size": small_int, "max_items": small_int}),
        "seed": maybe(small_int),
        "unknown": config_value,
    },
)


@FUZZ
@given(configs, st.sampled_from(["train", "eval"]))
def test_fuzz_plugin_config_loader_raises_only_tunix_errors(tmp_path_factory, raw: dict, kind: str) -> None:
    plugin_module = pytest.importorskip("tunix_rt_torch_sft.plugin")
    base = tmp_path_factory.getbasetemp()
    if not (base / "traces.jsonl").exists():
        (base / "traces.jsonl").write_bytes((DATA / "runs" / "traces.jsonl").read_bytes())
    plugin = plugin_module.TorchSFTPlugin()
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        plugin.validate_config(kind, raw, base)
    except TunixError:
        pass


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_run_config_reader_raises_only_tunix_errors(tmp_path_factory, text: str) -> None:
    runs = pytest.importorskip("tunix_rt.runs")
    path = tmp_path_factory.getbasetemp() / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        runs.read_config(path)
    except TunixError:
        pass
