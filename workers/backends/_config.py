"""Backend configs as pydantic models, and a failed validation as one readable sentence.

Each backend describes its ``backend_config`` with a :class:`BackendConfig` model and checks it
with :func:`validate_config`, which raises :class:`~workers.backends.base.BackendConfigError`
naming the backend, the option and the bad value::

    http: 'timeout_s' must be a number of seconds in (0, 3600], got 'x'

The message comes from the field's ``description``, which completes "'<option>' must be ...".
A validator raises ``ValueError`` when that description says all, or :func:`invalid` with a
whole sentence (naming the option) when it has more to say.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from workers.backends.base import BackendConfigError

__all__ = ["BackendConfig", "invalid", "short", "validate_config"]

_SENTENCE = "backend_config"  # the error type of invalid()


class BackendConfig(BaseModel):
    """Base of the config models: JSON types taken strictly (no bool for an int, no "60" for a
    number), unknown options refused, read-only once validated."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


ConfigT = TypeVar("ConfigT", bound=BackendConfig)


def invalid(message: str) -> PydanticCustomError:
    """A validation error reported as ``message``: a sentence that names the option."""
    return PydanticCustomError(_SENTENCE, "{message}", {"message": message})


def short(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut at ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def validate_config(backend: str, model: type[ConfigT], config: object) -> ConfigT:
    """``config`` validated by ``model``, or BackendConfigError saying what is wrong."""
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        raise BackendConfigError(f"{backend}: {_describe(model, config, exc)}") from None


def _describe(model: type[BackendConfig], config: object, exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        known = ", ".join(sorted(model.model_fields))
        return f"unknown option(s) {', '.join(unknown)}; known: {known}"
    error = errors[0]  # the first option in the model's field order
    if error["type"] == _SENTENCE:
        return error["msg"]
    if error["type"] == "model_type" or not isinstance(config, dict):
        return "backend_config must be a JSON object"
    if not error["loc"]:
        return error["msg"]
    key = str(error["loc"][0])  # a whole option: its value is shown, not a part of it
    wanted = _wanted(model, key, error)
    if error["type"] == "missing":
        return f"'{key}' is required: {wanted}"
    return f"'{key}' must be {wanted}, got {short(config.get(key))}"


def _wanted(model: type[BackendConfig], key: str, error: ErrorDetails) -> str:
    field = model.model_fields.get(key)
    if field is not None and field.description:
        return field.description
    return f"valid ({error['msg'].lower()})"
