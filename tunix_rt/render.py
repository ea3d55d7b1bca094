"""The Jinja environment: the project's `templates/` first, then the packaged defaults.

Sandboxed (a user template cannot reach Python internals) with StrictUndefined (a misspelt
variable is an error, not an empty string). Every rendered document is normalised the same way
(no trailing spaces, no runs of blank lines, one final newline) so hooks have nothing to rewrite
and a full render equals the concatenation of incrementally rendered blocks, byte for byte.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from tunix_rt.errors import TunixError
from tunix_rt.models import STATUS_DISPLAY, Milestone

_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+$", re.M)


def default_templates_dir() -> Path:
    """Packaged templates (`tunix_rt/templates` in a wheel), or the source tree's `templates/`."""
    packaged = resources.files("tunix_rt") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "templates"


def environment(project_templates: Path | None = None, cache_dir: Path | None = None) -> SandboxedEnvironment:
    """The environment for a project; `cache_dir` keeps compiled templates between processes (keyed
    by each source's checksum): compiling the tool-calls templates would otherwise be a sixth of a
    `log entry` call."""
    if project_templates is not None and not project_templates.is_dir():
        project_templates = None  # keyed on existence too: a folder created later is picked up
    return _environment(project_templates, cache_dir)


@lru_cache(maxsize=8)
def _environment(project_templates: Path | None, cache_dir: Path | None) -> SandboxedEnvironment:
    loaders: list[jinja2.BaseLoader] = []
    if project_templates is not None:
        loaders.append(jinja2.FileSystemLoader(str(project_templates), encoding="utf-8"))
    loaders.append(jinja2.FileSystemLoader(str(default_templates_dir()), encoding="utf-8"))
    env = SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        bytecode_cache=_bytecode_cache(cache_dir),
    )
    env.globals["status_display"] = STATUS_DISPLAY
    return env


def _bytecode_cache(cache_dir: Path | None) -> jinja2.BytecodeCache | None:
    if cache_dir is None:
        return None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only .git: render without the cache
    return jinja2.FileSystemBytecodeCache(str(cache_dir))


def normalise(text: str) -> str:
    """No trailing spaces, no more than one blank line in a row, exactly one final newline."""
    text = _TRAILING.sub("", text.replace("\r\n", "\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.rstrip("\n") + "\n"


def render(env: SandboxedEnvironment, name: str, **context: Any) -> str:
    """Renders one template; a broken or unsafe template is bad input (exit 2), named in the message."""
    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise TunixError(f"template {exc.name or name} line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateNotFound as exc:
        raise TunixError(f"template {exc.name} not found") from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TunixError(f"template {name}: refused unsafe access: {exc}") from exc
    except jinja2.UndefinedError as exc:
        raise TunixError(f"template {name}: {exc.message}") from exc
    except UnicodeDecodeError as exc:
        raise TunixError(f"template {name} (or one it includes) is not UTF-8 text") from exc
    except jinja2.TemplateError as exc:
        raise TunixError(f"template {name}: {exc}") from exc
    except (OverflowError, RecursionError) as exc:  # the sandbox's range limit, runaway recursion
        raise TunixError(f"template {name}: refused: {exc}") from exc


def render_block(env: SandboxedEnvironment, kind: str, obj: Any) -> str:
    """One timeline block of the tool-calls log: starts with a blank line, ends with `---`."""
    return "\n" + normalise(render(env, f"toolcalls_{kind}.md.j2", **{kind: obj})).lstrip("\n")


def render_header(env: SandboxedEnvironment, milestone: Milestone) -> str:
    return normalise(render(env, "toolcalls_header.md.j2", milestone=milestone))


def render_toolcalls_parts(env: SandboxedEnvironment, milestone: Milestone) -> list[str]:
    """The header, then one rendered block per timeline item, in ledger order."""
    collections = {
        "session": milestone.sessions,
        "entry": milestone.entries,
        "checkpoint": milestone.checkpoints,
        "block": milestone.blocks,
    }
    parts = [render_header(env, milestone)]
    parts.extend(render_block(env, item.type, collections[item.type][item.index]) for item in milestone.timeline)
    return parts


def render_toolcalls(env: SandboxedEnvironment, milestone: Milestone) -> str:
    """The whole `M44_toolcalls.md`: the header and every timeline block, in ledger order."""
    return "".join(render_toolcalls_parts(env, milestone))
