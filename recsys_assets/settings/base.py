"""What every settings section shares: frozen, typed, extra keys refused; fields that name the
``RECSYS_*`` variable they are read from; one reader for all of them.

Why not pydantic-settings: it maps nested sections only through a delimiter
(``RECSYS_MODELS__GAT__HEADS``), which would rename every documented variable. Here each
field names its variable, so flat names feed nested sections, one variable may feed several
fields (``RECSYS_MAX_EPOCHS`` caps every model), and pydantic still parses and validates.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, SecretStr, ValidationError
from pydantic.fields import FieldInfo


class SettingsError(ValueError):
    """A setting holds a value this project cannot use; the message names it."""


def merged(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied section by section (nested mappings merge, values replace)."""
    out = dict(base)
    for key, value in changes.items():
        current = out.get(key)
        out[key] = (
            merged(current, value) if isinstance(value, Mapping) and isinstance(current, Mapping) else value
        )
    return out


class Section(BaseModel):
    """A group of settings: immutable, typed, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    def with_changes(self, changes: Mapping[str, Any], what: str = "") -> Self:
        """A validated copy with ``changes`` merged in, section by section; an unknown or
        invalid key is named (``what``: where the changes came from)."""
        try:
            return self.model_validate(merged(self.model_dump(), changes))
        except ValidationError as error:
            known = sorted(type(self).model_fields)
            raise SettingsError(
                f"{what or type(self).__name__}: {describe_errors(error)}; known settings: {known}"
            ) from error

    def to_dict(self) -> dict[str, Any]:
        """As JSON types (tuples become lists): what reports, checkpoints and job params hold."""
        return self.model_dump(mode="json")


def setting(
    default: Any = ...,
    description: str = "",
    *,
    env: str | None = None,
    default_doc: str | None = None,
    **constraints: Any,
) -> Any:
    """A field; ``env`` names the variable that sets it, ``default_doc`` describes a default that
    depends on the environment or on other settings."""
    extra: dict[str, JsonValue] = {k: v for k, v in (("env", env), ("default_doc", default_doc)) if v}
    if "default_factory" in constraints:
        return Field(description=description, json_schema_extra=extra or None, **constraints)
    return Field(default, description=description, json_schema_extra=extra or None, **constraints)


def section(kind: type[Section], description: str, *, env: str | None = None, required: bool = False) -> Any:
    """A nested section; ``env`` names a variable holding a JSON object of its fields."""
    extra: dict[str, JsonValue] | None = {"env": env} if env else None
    if required:  # filled by the root's environment defaults
        return Field(description=description, json_schema_extra=extra)
    return Field(default_factory=kind, description=description, json_schema_extra=extra)


@dataclass(frozen=True)
class Binding:
    """One variable and the field it sets."""

    env: str
    path: tuple[str, ...]
    field: FieldInfo
    #: The variable holds a JSON object (a section, or a mapping field), merged into the field.
    json: bool

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def _section_type(annotation: Any) -> type[Section] | None:
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_mapping(arg) for arg in typing.get_args(annotation))
    return origin is dict or annotation is dict


def bindings(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[Binding]:
    """Every variable-bound field under ``model``, parents before their fields."""
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        child = _section_type(field.annotation)
        if extra.get("env"):
            yield Binding(str(extra["env"]), path, field, child is not None or _is_mapping(field.annotation))
        if child is not None:
            yield from bindings(child, path)


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any, merge: bool) -> None:
    for key in path[:-1]:
        data = data.setdefault(key, {})
    if merge and isinstance(data.get(path[-1]), dict):
        data[path[-1]] = {**data[path[-1]], **value}
    else:
        data[path[-1]] = value


def read_environment(model: type[BaseModel], environ: Mapping[str, str]) -> dict[str, Any]:
    """The nested values the set variables give ``model`` (a blank variable counts as unset).

    JSON objects are applied last, so ``RECSYS_GAT_CONFIG`` wins over ``RECSYS_GAT_HEADS``."""
    data: dict[str, Any] = {}
    for binding in sorted(bindings(model), key=lambda b: b.json):
        raw = environ.get(binding.env, "").strip()
        if not raw:
            continue
        value: Any = raw
        if binding.json:
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as error:
                raise SettingsError(f"{binding.env}={raw!r} is not JSON: {error}") from error
            if not isinstance(value, dict):
                raise SettingsError(f"{binding.env}={raw!r}: expected a JSON object")
        _put(data, binding.path, value, binding.json)
    return data


def describe_errors(error: ValidationError, model: type[BaseModel] | None = None,
                    environ: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """Each error as ``VARIABLE='value': problem`` where a variable set the field, else as
    ``section.field: problem``."""
    by_path = {b.path: b for b in bindings(model)} if model is not None else {}
    parts = []
    for item in error.errors():
        loc = tuple(str(p) for p in item["loc"])
        binding = next((by_path[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in by_path), None)
        message = item["msg"].removeprefix("Value error, ")
        if binding is not None and environ is not None and environ.get(binding.env, "").strip():
            where = f"{binding.env}={environ[binding.env].strip()!r}"
            if binding.path != loc:
                where += f" ({'.'.join(loc)})"
        else:
            where = ".".join(loc) or "settings"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def _shown_default(binding: Binding) -> str:
    extra = binding.field.json_schema_extra if isinstance(binding.field.json_schema_extra, dict) else {}
    if extra.get("default_doc"):
        return str(extra["default_doc"])
    if binding.field.default_factory is not None:
        return "`{}`" if binding.json else "(see the section)"
    default = binding.field.default
    if isinstance(default, SecretStr):
        default = default.get_secret_value()
    if isinstance(default, BaseModel):
        default = default.model_dump(mode="json")
    return "empty" if default in ("", None) else f"`{json.dumps(default) if binding.json else default}`"


def markdown_table(model: type[BaseModel]) -> str:
    """One row per variable: its default, the field(s) it sets and their description."""
    rows: dict[str, list[Binding]] = {}
    for binding in bindings(model):
        rows.setdefault(binding.env, []).append(binding)
    lines = ["| variable | default | sets | meaning |", "| --- | --- | --- | --- |"]
    for env, bound in rows.items():
        defaults = {_shown_default(b) for b in bound}
        if len(defaults) != 1:
            raise SettingsError(f"{env} sets fields with different defaults: {sorted(defaults)}")
        description = bound[0].field.description or ""
        fields = ", ".join(f"`{b.dotted}`" for b in bound)
        lines.append(f"| `{env}` | {defaults.pop()} | {fields} | {description} |")
    return "\n".join(lines)
