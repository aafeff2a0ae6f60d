"""Argument checks shared by the fraud package; each raises ``ValueError`` naming the argument."""

from __future__ import annotations

import math


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_finite(name: str, value: object) -> float:
    if not _is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _check_int(name: str, value: object, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: must be an int >= {low}, got {value!r}")
    return value


def _check_open_unit(name: str, value: object, *, allow_one: bool = False) -> float:
    v = _check_finite(name, value)
    if not (0.0 < v < 1.0 or (allow_one and v == 1.0)):
        bound = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"{name}: must be in {bound}, got {value!r}")
    return v


def _check_str(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        what = "a str" if allow_empty else "a non-empty str"
        raise ValueError(f"{name}: must be {what}, got {value!r}")
    return value
