"""Templates get plain, read-only data under a narrow sandbox, bounded in time, memory and output (S01, D12, D13)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from tunix_rt import render
from tunix_rt.errors import TunixError
from tunix_rt.models import Entry, Section

from _support import add_setting

PHASE = "ProjectFiles/Milestones/Phase1"


def _env(tmp_path: Path, source: str, *, timeout_s: float = 10.0):
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    (folder / "t.md.j2").write_text(source, encoding="utf-8")
    return render.environment(folder, None, timeout_s=timeout_s)


ENTRY = Entry(number=1, label="1", title="t", tools=["Bash"], sections=[Section(name="Results", items=["ok"])])

# What a template could reach through a model object before: pydantic's deprecated loaders (pickle,
# any file), its serialisers and copiers, and the mutating methods of the caller's own lists and dicts.
REACH = [
    "{{ entry.parse_raw('{}', allow_pickle=True) }}",
    "{{ entry.parse_file('/etc/passwd') }}",
    "{{ entry.model_validate_json('{}') }}",
    "{{ entry.copy(update={'title': 'x'}) }}",
    "{{ entry.model_copy() }}",
    "{{ entry.model_dump() }}",
    "{{ entry.json() }}",
    "{{ entry.schema_json() }}",
    "{{ entry.model_fields }}",
    "{{ entry.sections[0].model_dump_json() }}",
    "{{ entry.tools.append('x') }}",
    "{{ entry.sections.pop() }}",
    "{{ status_display.update(a=1) }}",
    "{{ entry.__class__ }}",
    "{{ entry._values }}",
    "{{ fmt.__globals__ }}",
    "{{ fmt.__code__ }}",
]


@pytest.mark.parametrize("source", REACH)
def test_templates_reach_no_model_method(tmp_path: Path, source: str) -> None:
    env = _env(tmp_path, source)
    with pytest.raises(TunixError, match="^template t.md.j2"):
        render.render(env, "t.md.j2", entry=ENTRY, fmt=lambda value: str(value))
    assert ENTRY.tools == ["Bash"] and len(ENTRY.sections) == 1


def test_templates_read_fields_computed_values_and_helpers(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Totals:
        files: int

        @property
        def plural(self) -> str:
            return "s" if self.files != 1 else ""

        def line(self) -> str:
            return f"{self.files} file{self.plural}"

    source = (
        "{{ entry.title }}|{{ entry.sections[0].items | join(',') }}|{{ entry['label'] }}|{{ totals.line() }}"
        "|{{ totals.plural }}|{{ fmt(entry.tools) }}|{{ entry.tools | length }}|{{ d.items() | list }}"
    )
    env = _env(tmp_path, source)
    out = render.render(env, "t.md.j2", entry=ENTRY, totals=Totals(2), fmt=lambda v: ", ".join(v), d={"a": 1})
    assert out == "t|ok|1|2 files|s|Bash|1|[('a', 1)]"


def test_plain_data_has_no_public_method() -> None:
    record = render.plain(ENTRY)
    assert isinstance(record, render.Record)
    assert [name for name in dir(record) if not name.startswith("_")] == []
    assert record.sections[0].items == ["ok"] and record.sections[0].items is not ENTRY.sections[0].items


RUNAWAY = [
    '{{ "x" * 10 ** 10 }}',
    "{{ 10 ** 1000000000 }}",
    "{{ [1] * 10 ** 9 }}",
    '{% set ns = namespace(s="xxxxxxxx") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}'
    "{{ ns.s | length }}",
    '{{ "x".center(2 ** 40) }}',
    "{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}",
]


@pytest.mark.parametrize("source", RUNAWAY)
def test_a_template_building_a_huge_value_is_refused(tmp_path: Path, source: str) -> None:
    env = _env(tmp_path, source)
    started = time.monotonic()
    with pytest.raises(TunixError, match="^template t.md.j2: refused"):
        render.render(env, "t.md.j2")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "source",
    [
        # Pure-Python loops: nothing is called inside them, so only a trace of the template's frames stops them.
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        "{% set xs = range(100000) | list %}{% for a in xs %}{% for b in xs %}{% if a == b %}{% endif %}"
        "{% endfor %}{% endfor %}",
        "{% macro f() %}{% for i in range(100000) %}{% endfor %}{% endmacro %}{% for j in range(100000) %}{{ f() }}"
        "{% endfor %}",
    ],
)
def test_a_template_that_runs_too_long_is_stopped(tmp_path: Path, source: str) -> None:
    env = _env(tmp_path, source, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(TunixError, match="render_timeout_s = 0.5 s"):
        render.render(env, "t.md.j2")
    assert time.monotonic() - started < 5


def test_the_trace_and_memory_cap_are_taken_back(tmp_path: Path) -> None:
    import resource
    import sys

    limits = resource.getrlimit(resource.RLIMIT_AS)
    tracer = sys.gettrace()
    env = _env(tmp_path, '{{ "x" * 10 ** 10 }}')
    with pytest.raises(TunixError):
        render.render(env, "t.md.j2")
    assert resource.getrlimit(resource.RLIMIT_AS) == limits
    assert sys.gettrace() is tracer


def test_a_runaway_project_template_is_exit_2_with_one_line(project, run_cli) -> None:
    assert run_cli("start", "M44", "--title", "runaway").code == 0
    ledger = project.root / PHASE / "M44.ledger.jsonl"
    before = ledger.read_bytes()
    add_setting(project.root, "render_timeout_s = 0.5")
    (project.root / "templates").mkdir()
    (project.root / "templates" / "toolcalls_entry.md.j2").write_text(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}\n", encoding="utf-8"
    )
    done = run_cli("log", "entry", "--title", "t", "--tool", "Bash", "--purpose", "p")
    assert done.code == 2, done
    assert done.err.count("\n") == 1 and "render_timeout_s = 0.5 s" in done.err, done.err
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "1e400", '"ten"', "true"])
def test_render_timeout_must_be_a_finite_positive_number(project, run_cli, value: str) -> None:
    add_setting(project.root, f"render_timeout_s = {value}")
    done = run_cli("start", "M44", "--title", "t")
    assert done.code == 2 and "render_timeout_s" in done.err, done
    assert not (project.root / PHASE).exists()
