"""The Jinja environment: the project's `templates/` first, then the packaged defaults.

A project's templates are code from outside, so they run under a narrow policy: they receive plain,
read-only data (`plain()` turns models and dataclasses into `Record`s; no model object, no method of
one is reachable), an immutable sandbox lets them call only the helpers we hand in and the methods of
plain strings, lists and dicts, and a render is bounded in time (`render_timeout_s`), memory and
output size. StrictUndefined makes a misspelt variable an error, not an empty string. Every rendered
document is normalised the same way (no trailing spaces, no runs of blank lines, one final newline)
so hooks have nothing to rewrite and a full render equals the concatenation of incrementally
rendered blocks, byte for byte.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path, PurePath
from typing import Any, cast

import jinja2
import jinja2.runtime
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel

from tunix_rt.errors import TunixError
from tunix_rt.models import STATUS_DISPLAY, Milestone

_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+$", re.M)

DEFAULT_TIMEOUT_S = 10.0
# A rendered document larger than this is no document: the largest real view (10,000 entries) is ~6 MB.
MAX_OUTPUT_CHARS = 64 * 1024 * 1024
# Memory a render may take beyond what the process already holds, enforced by the address-space limit.
MAX_RENDER_MEMORY = 1024 * 1024 * 1024
# The largest integer a template may build (in bits): `10 ** 10 ** 10` would run for minutes in C,
# where no time limit can stop it.
_MAX_INT_BITS = 64 * 1024
_MAX_DEPTH = 64


# --- plain data -------------------------------------------------------------------------------


class Record:
    """Read-only plain data standing in for a model or dataclass: its values by name, and nothing else."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a template's data is read-only")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record({self._values!r})"


class Computed:
    """A zero-argument method's result, computed once: `work.line()` keeps working in templates, but
    what a template calls is this constant, never the object's method."""

    __slots__ = ("_value",)
    _value: Any

    def __init__(self, value: Any) -> None:
        object.__setattr__(self, "_value", value)

    def __call__(self) -> Any:
        return self._value


class Helper:
    """A function the caller handed to templates on purpose (`fmt`); its result is plain data too."""

    __slots__ = ("_function",)
    _function: Callable[..., Any]

    def __init__(self, function: Callable[..., Any]) -> None:
        object.__setattr__(self, "_function", function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return plain(self._function(*args, **kwargs))


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What of a class reaches a template: data fields, public properties, zero-argument methods."""

    fields: tuple[str, ...]
    properties: tuple[str, ...]
    methods: tuple[str, ...]


def _own_members(cls: type, stop: tuple[type, ...]) -> tuple[list[str], list[str]]:
    properties: list[str] = []
    methods: list[str] = []
    for klass in cls.__mro__:
        if klass in stop:
            break
        for name, member in vars(klass).items():
            if name.startswith("_") or name in properties or name in methods:
                continue
            if isinstance(member, (property, cached_property)):
                properties.append(name)
            elif isinstance(member, types.FunctionType) and _takes_no_arguments(member):
                methods.append(name)
    return properties, methods


def _takes_no_arguments(function: types.FunctionType) -> bool:
    params = list(inspect.signature(function).parameters.values())[1:]
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


_SHAPES: dict[type, _Shape] = {}


def _shape(cls: type) -> _Shape:
    if cls not in _SHAPES:
        _SHAPES[cls] = _build_shape(cls)
    return _SHAPES[cls]


def _build_shape(cls: type) -> _Shape:
    if issubclass(cls, BaseModel):
        fields = (*cls.model_fields, *cls.model_computed_fields)
        properties, methods = _own_members(cls, (BaseModel, object))
    else:
        fields = tuple(f.name for f in dataclasses.fields(cast(Any, cls)) if not f.name.startswith("_"))
        properties, methods = _own_members(cls, (object,))
    return _Shape(
        fields=tuple(fields),
        properties=tuple(p for p in properties if p not in fields),
        methods=tuple(m for m in methods if m not in fields),
    )


def _record(obj: Any, depth: int) -> Record:
    shape = _shape(type(obj))
    values = {name: plain(getattr(obj, name), depth + 1) for name in shape.fields}
    for name in shape.properties:
        try:
            values[name] = plain(getattr(obj, name), depth + 1)
        except Exception:  # noqa: BLE001 - a property that fails is absent, as it would fail when used
            continue
    for name in shape.methods:
        try:
            values[name] = Computed(plain(getattr(obj, name)(), depth + 1))
        except Exception:  # noqa: BLE001
            continue
    return Record(values)


_ATOMS = (str, int, float, bool, type(None))


def plain(value: Any, depth: int = 0) -> Any:
    """The template-safe form of `value`: strings, numbers, lists, tuples, dicts and `Record`s only.

    Models (their fields and computed fields) and dataclasses (their fields, public properties and
    zero-argument methods' results) become Records; enums their value; paths and anything else their
    text. Functions become `Helper`s. Every container is a copy, so a template cannot reach the
    caller's objects.
    """
    if depth > _MAX_DEPTH:
        raise TunixError("template context nests too deeply")
    if isinstance(value, enum.Enum):
        return plain(value.value, depth + 1)
    if isinstance(value, _ATOMS) or isinstance(value, (jinja2.Undefined, Record, Computed, Helper)):
        return value
    if isinstance(value, BaseModel) or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        return _record(value, depth)
    if isinstance(value, Mapping):
        return {plain(k, depth + 1): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(plain(v, depth + 1) for v in value)
    if isinstance(value, (list, set, frozenset)):
        items = [plain(v, depth + 1) for v in value]
        return items if isinstance(value, list) else sorted(items, key=str)
    if isinstance(value, types.FunctionType) or (
        isinstance(value, types.BuiltinFunctionType)
        and isinstance(getattr(value, "__self__", None), (types.ModuleType, type(None)))
    ):
        return Helper(value)  # `len`, `fmt`: handed in on purpose; a bound method of an object is not
    if isinstance(value, PurePath):
        return str(value)
    return str(value)


# --- the sandbox --------------------------------------------------------------------------------

# Jinja's own runtime objects a template legitimately touches (`loop.index`, a macro, `md.heading`).
_JINJA_OBJECTS = (
    jinja2.runtime.LoopContext,
    jinja2.runtime.Macro,
    jinja2.runtime.Context,
    jinja2.environment.TemplateModule,
    jinja2.utils.Namespace,
    jinja2.utils.Cycler,
    jinja2.utils.Joiner,
    jinja2.Undefined,
)
_PLAIN_TYPES = (str, int, float, bool, type(None), list, tuple, dict, Record)


class RenderLimit(Exception):
    """A template went past a limit (time, memory, output size)."""


class _Policy(ImmutableSandboxedEnvironment):
    """Templates may read plain data, call the helpers given to them, Jinja's own globals and the
    non-mutating methods of strings, lists and dicts; nothing else is an attribute or a call."""

    intercepted_binops = frozenset({"*", "**"})
    render_timeout_s: float = DEFAULT_TIMEOUT_S
    # Whether the project overrides any template. The packaged templates are this tool's own code, linear in
    # their data, so they render without the trace-based deadline and the memory cap, which cost ~20x on a
    # 1,000-entry view; every template a project supplies (or that one of its templates includes) is guarded.
    project_overrides: bool = True

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if type(obj) is Record:  # read-only plain data: its names are its values (the hot path of every view)
            return not attr.startswith("_")
        if not super().is_safe_attribute(obj, attr, value):
            return False
        return isinstance(obj, _PLAIN_TYPES) or isinstance(obj, _JINJA_OBJECTS)

    def is_safe_callable(self, obj: Any) -> bool:
        if not super().is_safe_callable(obj):
            return False
        if isinstance(obj, (Helper, Computed, jinja2.runtime.Macro, jinja2.runtime.LoopContext)):
            return True
        if isinstance(obj, types.BuiltinMethodType):  # `"a b".split()`, `d.items()`
            return isinstance(getattr(obj, "__self__", None), _PLAIN_TYPES)
        if isinstance(obj, types.MethodType):  # loop.cycle, cycler.next, joiner()
            return isinstance(obj.__self__, _JINJA_OBJECTS)
        return obj in self._jinja_globals() or isinstance(obj, (jinja2.utils.Joiner, jinja2.utils.Cycler))

    def _jinja_globals(self) -> list[Any]:
        return [v for k, v in self.globals.items() if k in ("range", "dict", "lipsum", "cycler", "joiner", "namespace")]

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right * max(abs(left).bit_length(), 1) > _MAX_INT_BITS:
                raise RenderLimit(f"{left} ** {right} is too large a number")
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if len(seq) * times > MAX_OUTPUT_CHARS:
                        raise RenderLimit(f"a value of {len(seq) * times} items or characters")
            if isinstance(left, int) and isinstance(right, int):
                if abs(left).bit_length() + abs(right).bit_length() > _MAX_INT_BITS:
                    raise RenderLimit("too large a number")
        return super().call_binop(context, operator, left, right)


def default_templates_dir() -> Path:
    """Packaged templates (`tunix_rt/templates` in a wheel), or the source tree's `templates/`."""
    packaged = resources.files("tunix_rt") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "templates"


def environment(
    project_templates: Path | None = None,
    cache_dir: Path | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    html: bool = False,
) -> ImmutableSandboxedEnvironment:
    """The environment for a project; `cache_dir` keeps compiled templates between processes (keyed
    by each source's checksum): compiling the tool-calls templates would otherwise be a sixth of a
    `log entry` call. `timeout_s` bounds each render. `html` switches autoescaping on (the report's
    pages): a value reaches the page as text unless the caller made it `markupsafe.Markup`."""
    if project_templates is not None and not project_templates.is_dir():
        project_templates = None  # keyed on existence too: a folder created later is picked up
    return _environment(project_templates, cache_dir, float(timeout_s), html)


@lru_cache(maxsize=8)
def _environment(project_templates: Path | None, cache_dir: Path | None, timeout_s: float, html: bool) -> _Policy:
    loaders: list[jinja2.BaseLoader] = []
    if project_templates is not None:
        loaders.append(jinja2.FileSystemLoader(str(project_templates), encoding="utf-8"))
    loaders.append(jinja2.FileSystemLoader(str(default_templates_dir()), encoding="utf-8"))
    env = _Policy(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=html,
        bytecode_cache=_bytecode_cache(cache_dir),
    )
    env.render_timeout_s = timeout_s
    env.project_overrides = project_templates is not None and any(project_templates.rglob("*.j2"))
    env.globals["status_display"] = plain(STATUS_DISPLAY)
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


# --- bounded rendering --------------------------------------------------------------------------


class _Deadline:
    """Stops a render that runs past its time: a trace function on the template's own frames (a
    pure-Python `{% for %}` loop calls nothing we could hook).

    It raises only from a template's frame. Raised from any other frame, the exception can land where it is
    swallowed: a finalizer the garbage collector runs mid-render prints "Exception ignored" and Python then
    drops the trace function, and the runaway loop ran on untraced (seen once in a full test run, under
    load). Python code called from a template is bounded by its inputs, the memory cap and the output cap."""

    def __init__(self, env: jinja2.Environment, seconds: float) -> None:
        self.env = env
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise RenderLimit(f"ran longer than render_timeout_s = {self.seconds:g} s")

    def _local(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        self.check()
        return self._local

    def trace(self, frame: types.FrameType, event: str, arg: Any) -> Any:
        if frame.f_globals.get("environment") is not self.env:
            return None
        self.check()
        return self._local


class _MemoryCap:
    """Caps the address space for the render's duration (Linux: RLIMIT_AS), so a template that builds
    a huge value fails with MemoryError at once instead of taking the machine's memory."""

    def __enter__(self) -> _MemoryCap:
        self.saved: tuple[int, int] | None = None
        try:
            import resource

            with open("/proc/self/statm", "rb") as handle:
                size = int(handle.read().split()[0]) * resource.getpagesize()
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            cap = size + MAX_RENDER_MEMORY
            if (soft == resource.RLIM_INFINITY or cap < soft) and (hard == resource.RLIM_INFINITY or cap <= hard):
                resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
                self.saved = (soft, hard)
        except (ImportError, OSError, ValueError):
            pass  # no /proc or no RLIMIT_AS: the other limits still hold
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, self.saved)


def _bounded(env: jinja2.Environment, template: jinja2.Template, context: dict[str, Any]) -> str:
    if not getattr(env, "project_overrides", True):
        text = "".join(template.generate(**context))
        if len(text) > MAX_OUTPUT_CHARS:
            raise RenderLimit(f"output over {MAX_OUTPUT_CHARS // (1024 * 1024)} MB")
        return text
    timeout = getattr(env, "render_timeout_s", DEFAULT_TIMEOUT_S)
    deadline = _Deadline(env, timeout)
    previous = sys.gettrace()
    parts: list[str] = []
    size = 0
    with _MemoryCap():
        sys.settrace(deadline.trace)
        try:
            stream: Iterator[str] = template.generate(**context)
            for part in stream:
                size += len(part)
                if size > MAX_OUTPUT_CHARS:
                    raise RenderLimit(f"output over {MAX_OUTPUT_CHARS // (1024 * 1024)} MB")
                parts.append(part)
        finally:
            sys.settrace(previous)
    return "".join(parts)


def render(env: jinja2.Environment, name: str, **context: Any) -> str:
    """Renders one template on plain data; a broken, unsafe or runaway template is bad input (exit 2),
    named in the message."""
    try:
        template = env.get_template(name)
        return _bounded(env, template, {key: plain(value) for key, value in context.items()})
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
    except RenderLimit as exc:
        raise TunixError(f"template {name}: refused: {exc}") from None
    except MemoryError:
        raise TunixError(f"template {name}: refused: it needed more than {MAX_RENDER_MEMORY >> 20} MB") from None
    except (OverflowError, RecursionError) as exc:  # the sandbox's range limit, runaway recursion
        raise TunixError(f"template {name}: refused: {exc}") from exc


def render_block(env: jinja2.Environment, kind: str, obj: Any) -> str:
    """One timeline block of the tool-calls log: starts with a blank line, ends with `---`."""
    return "\n" + normalise(render(env, f"toolcalls_{kind}.md.j2", **{kind: obj})).lstrip("\n")


def render_header(env: jinja2.Environment, milestone: Milestone) -> str:
    return normalise(render(env, "toolcalls_header.md.j2", milestone=milestone))


def render_toolcalls_parts(env: jinja2.Environment, milestone: Milestone) -> list[str]:
    """The header, then one rendered block per timeline item, in ledger order."""
    collections: dict[str, Sequence[Any]] = {
        "session": milestone.sessions,
        "entry": milestone.entries,
        "checkpoint": milestone.checkpoints,
        "block": milestone.blocks,
    }
    parts = [render_header(env, milestone)]
    parts.extend(render_block(env, item.type, collections[item.type][item.index]) for item in milestone.timeline)
    return parts


def render_toolcalls(env: jinja2.Environment, milestone: Milestone) -> str:
    """The whole `M44_toolcalls.md`: the header and every timeline block, in ledger order."""
    return "".join(render_toolcalls_parts(env, milestone))
