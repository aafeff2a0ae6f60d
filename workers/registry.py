"""The model registry: every generative model of a deployment described in one reviewed file.

A registry file (TOML, see ``models/example.toml``) is the whole list of models::

    version = 1

    [[models]]
    name = "FLUX.1 schnell"
    task = "text-to-image"
    output_formats = ["webp"]
    backend = "gradio"
    queue = "gen.remote"
    arenas = ["text-to-image"]          # optional: then the model is in exactly these arenas

    [models.backend_config]
    src = "black-forest-labs/FLUX.1-schnell"
    api_name = "/infer"

Each ``[[models]]`` table takes the fields of :class:`~arena.models.GenerativeModel` that an
operator sets (:data:`MANAGED_FIELDS`); a field left out takes the model's default, and
``slug`` defaults to the slug of ``name``. Models are matched to rows by slug.

* :func:`registry_parse` checks a file without touching the database: the TOML, each entry's
  keys and types (:class:`ModelEntry`, unknown keys refused), the model's own field checks
  (``GenerativeModel.full_clean``: lengths, slug, link, formats allowed for the task), the
  backend config (the backend's own check through
  :func:`workers.backends.backend_config_check`, shape only: a diffusers entry is checked
  without torch or its weights, which only its GPU worker has), duplicate names and slugs.
* :func:`registry_plan` compares the entries with the database: models to add, to update (with
  the fields that change) and to deactivate. "Absent" means deactivate: the file is the whole
  list, so an active model it does not name is switched off (never deleted: its votes and
  outputs stay, and listing it again switches it back on).
* :func:`registry_load` plans and, unless ``dry_run``, applies in one transaction.

Every problem is reported as ``FILE:LINE: models[I].FIELD: message`` (``I`` counts the
``[[models]]`` tables from 0). ``tomllib`` gives no positions, so :class:`_KeyLines` finds
them by scanning the text for table headers and ``key =`` lines, which is what TOML's grammar
makes them; a field the file leaves out is reported at its table's header.

This lives in ``workers`` rather than ``arena`` because it checks backend configs, and the
domain may not import the backends (import-linter's layers).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils.text import slugify
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from arena.models import Arena, GenerativeModel, Task
from workers.backends import BackendConfigError, backend_config_check, backend_names

__all__ = [
    "MANAGED_FIELDS",
    "ModelEntry",
    "ModelSpec",
    "Plan",
    "RegistryError",
    "registry_load",
    "registry_parse",
    "registry_plan",
]

REGISTRY_VERSION = 1
# GenerativeModel fields a registry file sets; every other column (id, added_at) is the DB's.
MANAGED_FIELDS: tuple[str, ...] = (
    "name", "slug", "organisation", "link", "license", "description", "task", "output_formats",
    "backend", "backend_config", "queue", "max_in_flight", "daily_budget", "matchmaking_weight",
    "is_active",
)  # fmt: skip
# Generation must not share a queue with light work (the matchmaker's top-ups, vote tallies):
# a slow model would hold those up. Kept in step with workers.tasks (not imported: it loads Celery).
_RESERVED_QUEUES = frozenset({"light", "tallies"})
_QUEUE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class RegistryError(ValueError):
    """A registry file that cannot be loaded; ``problems`` holds one line per problem."""

    def __init__(self, path: Path | str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(
            f"{path}: {count} problem{'s' if count != 1 else ''}, nothing changed:\n"
            + "\n".join(f"  {p}" for p in self.problems)
        )


class _Strict(BaseModel):
    # TOML values are typed: no coercion ("8" is not 8), no unknown keys, read-only.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RegistryFile(_Strict):
    """The top level of a registry file."""

    version: Literal[1]
    models: list[dict[str, Any]] = Field(min_length=1)


class ModelEntry(_Strict):
    """One ``[[models]]`` table. ``None`` means "left out": the model's default applies (TOML
    has no null, so a file cannot write ``None`` itself)."""

    name: str = Field(min_length=1)
    slug: str | None = None
    organisation: str | None = None
    license: str | None = None
    link: str | None = None
    description: str | None = None
    task: str
    output_formats: list[str] = Field(min_length=1)
    backend: str
    backend_config: dict[str, Any] | None = None
    queue: str | None = None
    max_in_flight: int | None = Field(None, ge=0)
    daily_budget: int | None = Field(None, ge=0)
    matchmaking_weight: float | None = Field(None, ge=0)
    is_active: bool | None = None
    arenas: list[str] | None = None

    @field_validator("task")
    @classmethod
    def _check_task(cls, task: str) -> str:
        if task not in Task.values:
            raise ValueError(f"must be one of {', '.join(Task.values)}, got {task!r}")
        return task

    @field_validator("backend")
    @classmethod
    def _check_backend(cls, backend: str) -> str:
        if backend not in backend_names():
            raise ValueError(
                f"unknown backend {backend!r}; available: {', '.join(backend_names())}"
            )
        return backend

    @field_validator("queue")
    @classmethod
    def _check_queue(cls, queue: str | None) -> str | None:
        if queue is not None and not _QUEUE.match(queue):
            raise ValueError(
                f"must be a Celery queue name (letters, digits, '._:-'), got {queue!r}"
            )
        if queue in _RESERVED_QUEUES:
            raise ValueError(
                f"{queue!r} is for light work; give generation its own, e.g. 'gen.gpu'"
            )
        return queue


@dataclass(frozen=True)
class _KeyLines:
    """Where each table and key of a TOML text starts: path -> line (1-based).

    Paths are tuples like ``("models", 2, "backend_config", "src")``. Good enough for the
    registry's shape (one array of tables, sub-tables and inline values inside it); a key
    inside a multi-line string is not mistaken for one.
    """

    path: str
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")

    @classmethod
    def scan(cls, path: str, text: str) -> _KeyLines:
        found = cls(path)
        table: tuple[str | int, ...] = ()
        count = -1  # [[models]] tables seen, minus one: the index of the current one
        in_string = False
        for number, line in enumerate(text.splitlines(), start=1):
            if not in_string:
                header = cls._HEADER.match(line)
                key = cls._KEY.match(line)
                if header:
                    names = cls._dotted(header.group(2))
                    if header.group(1) == "[[" and names == ("models",):
                        count += 1
                    table = ("models", count, *names[1:]) if names[0] == "models" else names
                    found.lines.setdefault(table, number)
                elif key:
                    found.lines.setdefault((*table, *cls._dotted(key.group(1))), number)
            if (line.count('"""') + line.count("'''")) % 2:
                in_string = not in_string
        return found

    @staticmethod
    def _dotted(key: str) -> tuple[str, ...]:
        return tuple(part.strip().strip("\"'") for part in key.split("."))

    def where(self, loc: Sequence[str | int], *, line_of: Sequence[str | int] | None = None) -> str:
        """``FILE:LINE: LOCATION`` for ``loc``, on the line of the nearest key or table on it
        (on that of ``line_of`` instead, when given)."""
        line, key = 1, tuple(line_of or loc)
        for end in range(len(key), 0, -1):
            if key[:end] in self.lines:
                line = self.lines[key[:end]]
                break
        return f"{self.path}:{line}: {_dotted_name(loc)}"


def _dotted_name(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(file)"


@dataclass(frozen=True)
class ModelSpec:
    """A checked entry: the row's values (``MANAGED_FIELDS``) and its arenas (``None``: leave
    the membership as it is)."""

    index: int
    values: dict[str, Any]
    arenas: tuple[str, ...] | None
    source: _KeyLines

    @property
    def slug(self) -> str:
        return str(self.values["slug"])

    def where(self, *loc: str | int) -> str:
        at = ("models", self.index)
        if loc == ("slug",) and (*at, "slug") not in self.source.lines:
            # made from the name: the name is the line to change
            return self.source.where((*at, "slug"), line_of=(*at, "name"))
        return self.source.where((*at, *loc))


def registry_parse(path: Path) -> list[ModelSpec]:
    """The file's models, checked (see the module docstring); no database access.

    Raises RegistryError listing every problem found, each as ``FILE:LINE: FIELD: message``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(path, [f"{path}: cannot read it: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise RegistryError(
            path, [f"{path}:{at.group(1) if at else 1}: not valid TOML: {exc}"]
        ) from None
    source = _KeyLines.scan(str(path), text)
    try:
        top = RegistryFile.model_validate(data)
    except ValidationError as exc:
        raise RegistryError(path, _pydantic_problems(exc, source, ())) from None
    problems: list[str] = []
    specs: list[ModelSpec] = []
    for index, raw in enumerate(top.models):
        try:
            specs.append(_spec(index, raw, source))
        except _EntryProblems as exc:
            problems.extend(exc.problems)
    problems.extend(_duplicates(specs))
    if problems:
        raise RegistryError(path, problems)
    return specs


class _EntryProblems(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems = problems


def _pydantic_problems(
    exc: ValidationError, source: _KeyLines, prefix: tuple[str | int, ...]
) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = (*prefix, *error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required, but missing"
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{source.where(loc)}: {message}")
    return problems


def _spec(index: int, raw: dict[str, Any], source: _KeyLines) -> ModelSpec:
    """One entry checked by the schema, the model's own field checks and its backend."""
    at = ("models", index)
    try:
        entry = ModelEntry.model_validate(raw)
    except ValidationError as exc:
        raise _EntryProblems(_pydantic_problems(exc, source, at)) from None
    given = entry.model_dump(exclude_none=True, exclude={"arenas"})
    given.setdefault("slug", slugify(entry.name))
    model = GenerativeModel(**given)  # the defaults of the fields left out
    try:
        model.full_clean(validate_unique=False)
    except DjangoValidationError as exc:
        raise _EntryProblems(
            [
                f"{source.where((*at, name))}: {' '.join(messages)}"
                for name, messages in exc.message_dict.items()
            ]
        ) from None
    config = dict(model.backend_config or {})
    try:
        backend_config_check(model.backend, config, list(model.output_formats), environment=False)
    except BackendConfigError as exc:
        raise _EntryProblems(
            [f"{source.where(_config_loc(at, config, str(exc)))}: {exc}"]
        ) from None
    values = {name: getattr(model, name) for name in MANAGED_FIELDS}
    arenas = None if entry.arenas is None else tuple(dict.fromkeys(entry.arenas))
    return ModelSpec(index, values, arenas, source)


def _config_loc(
    at: tuple[str | int, ...], config: dict[str, Any], message: str
) -> tuple[str | int, ...]:
    """The backend_config option a backend's message names ("gradio: 'api_name' must be ..."),
    when it is one of the config's keys: its line is the one to fix."""
    for option in re.findall(r"'([A-Za-z_]\w*)'", message):
        if option in config:
            return (*at, "backend_config", option)
    return (*at, "backend_config")


def _duplicates(specs: Iterable[ModelSpec]) -> list[str]:
    problems = []
    for name in ("name", "slug"):
        first: dict[str, ModelSpec] = {}
        for spec in specs:
            value = str(spec.values[name])
            if value in first:
                other = first[value]
                problems.append(
                    f"{spec.where(name)}: {value!r} is also the {name} of models[{other.index}] "
                    f"({other.where(name).split(': ')[0]})"
                )
            else:
                first[value] = spec
    return problems


# -- plan and apply ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Plan:
    """What loading a file does: rows to add, to update (with their changes), to deactivate."""

    add: tuple[ModelSpec, ...] = ()
    update: tuple[tuple[ModelSpec, tuple[Change, ...]], ...] = ()
    deactivate: tuple[tuple[str, str], ...] = ()  # (slug, name)
    unchanged: int = 0

    @property
    def is_empty(self) -> bool:
        return not (self.add or self.update or self.deactivate)

    def lines(self) -> list[str]:
        """The plan as an operator reads it: one line per model that changes."""
        out = [
            f"{len(self.add)} to add, {len(self.update)} to update, "
            f"{len(self.deactivate)} to deactivate, {self.unchanged} unchanged"
        ]
        for spec in self.add:
            v = spec.values
            arenas = f", arenas {list(spec.arenas)}" if spec.arenas else ""
            out.append(
                f"  + add        {v['name']} ({v['task']}, {v['backend']}, queue {v['queue']}{arenas})"
            )
        for spec, changes in self.update:
            what = "; ".join(f"{c.field}: {c.old!r} -> {c.new!r}" for c in changes)
            out.append(f"  ~ update     {spec.values['name']}: {what}")
        for slug, name in self.deactivate:
            out.append(f"  - deactivate {name} ({slug}; not in the file)")
        return out


def registry_plan(specs: Sequence[ModelSpec], *, lock: bool = False) -> Plan:
    """Compare ``specs`` with the database. ``lock`` takes the model rows' locks (in pk
    order), for a plan that is applied in the same transaction.

    Raises RegistryError for what only the database can tell: an arena that does not exist or
    is for another task, a name that another model (matched by slug) already has.
    """
    rows = GenerativeModel.objects.prefetch_related("arenas").order_by("pk")
    if lock:
        rows = rows.select_for_update()
    by_slug = {row.slug: row for row in rows}
    problems = _db_problems(specs, by_slug)
    if problems:
        raise RegistryError(specs[0].source.path, problems)
    add, update, unchanged = [], [], 0
    for spec in specs:
        row = by_slug.get(spec.slug)
        if row is None:
            add.append(spec)
            continue
        changes = _changes(row, spec)
        if changes:
            update.append((spec, changes))
        else:
            unchanged += 1
    listed = {spec.slug for spec in specs}
    gone = tuple(
        (slug, row.name)
        for slug, row in sorted(by_slug.items())
        if slug not in listed and row.is_active
    )
    return Plan(tuple(add), tuple(update), gone, unchanged)


def _db_problems(specs: Sequence[ModelSpec], by_slug: dict[str, GenerativeModel]) -> list[str]:
    problems = []
    owner = {row.name: row.slug for row in by_slug.values()}
    listed = {spec.slug for spec in specs}
    arenas = {arena.slug: arena.task for arena in Arena.objects.all()}
    for spec in specs:
        name = spec.values["name"]
        holder = owner.get(name)
        if holder is not None and holder != spec.slug and holder not in listed:
            problems.append(
                f"{spec.where('name')}: {name!r} is the name of the model with slug {holder!r} "
                f"in the database; set slug = {holder!r} to update that model"
            )
        for slug in spec.arenas or ():
            if slug not in arenas:
                known = ", ".join(sorted(arenas)) or "none yet"
                problems.append(f"{spec.where('arenas')}: no arena {slug!r} (arenas: {known})")
            elif arenas[slug] != spec.values["task"]:
                problems.append(
                    f"{spec.where('arenas')}: arena {slug!r} is for {arenas[slug]}, "
                    f"this model for {spec.values['task']}"
                )
    return problems


def _arena_slugs(row: GenerativeModel) -> list[str]:
    return sorted(arena.slug for arena in row.arenas.all())


def _changes(row: GenerativeModel, spec: ModelSpec) -> tuple[Change, ...]:
    changes = [
        Change(name, getattr(row, name), new)
        for name, new in spec.values.items()
        if getattr(row, name) != new
    ]
    if spec.arenas is not None and _arena_slugs(row) != sorted(spec.arenas):
        changes.append(Change("arenas", _arena_slugs(row), sorted(spec.arenas)))
    return tuple(changes)


def _apply(plan: Plan) -> None:
    arenas = {arena.slug: arena for arena in Arena.objects.all()}
    rows = GenerativeModel.objects.in_bulk(
        [spec.slug for spec, _ in plan.update], field_name="slug"
    )
    for spec, changes in plan.update:
        row = rows[spec.slug]
        fields = [c.field for c in changes if c.field != "arenas"]
        for name in fields:
            setattr(row, name, spec.values[name])
        if fields:
            row.save(update_fields=fields)
        if spec.arenas is not None:
            row.arenas.set([arenas[slug] for slug in spec.arenas])
    for spec in plan.add:
        row = GenerativeModel.objects.create(**spec.values)
        if spec.arenas:
            row.arenas.set([arenas[slug] for slug in spec.arenas])
    gone = [slug for slug, _ in plan.deactivate]
    GenerativeModel.objects.filter(slug__in=gone).update(is_active=False)


def registry_load(path: Path, *, dry_run: bool = False) -> Plan:
    """Check ``path``, plan, and (unless ``dry_run``) apply the plan in one transaction:
    either every change is made or none. Returns the plan; raises RegistryError."""
    specs = registry_parse(path)
    try:
        with transaction.atomic():
            plan = registry_plan(specs, lock=not dry_run)
            if not dry_run:
                _apply(plan)
    except IntegrityError as exc:  # e.g. two models swapping names: refused by the unique index
        raise RegistryError(path, [f"{path}: the database refused the change: {exc}"]) from None
    return plan
