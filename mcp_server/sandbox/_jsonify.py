"""Turn a function's return value into plain JSON, or say exactly which part cannot be."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

_MAX_DEPTH = 100


class NotJSONError(TypeError):
    """A value (at a named place inside the result) has no JSON form."""


def to_json(value: Any, where: str = "result", depth: int = 0) -> Any:
    """A JSON-ready copy of `value`: dates as ISO strings, sets and tuples as lists, Decimals as numbers,
    paths as strings, dataclasses as dicts, enums as their values."""
    if depth > _MAX_DEPTH:
        raise NotJSONError(f"{where} is nested more than {_MAX_DEPTH} levels deep (a cycle?)")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotJSONError(f"{where} is the float {value!r}, which JSON cannot represent")
        return value
    if isinstance(value, Mapping):
        return {_key(k, where): to_json(v, f"{where}[{k!r}]", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = [to_json(v, f"{where}{{...}}", depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return _decimal(value, where)
    if isinstance(value, PurePath | uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return to_json(value.value, where, depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_json(getattr(value, f.name), f"{where}.{f.name}", depth + 1) for f in dataclasses.fields(value)
        }
    raise NotJSONError(f"{where} has type {type(value).__qualname__!r}, which has no JSON form")


def _key(key: Any, where: str) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float | decimal.Decimal | datetime.date | uuid.UUID | PurePath):
        converted = to_json(key, where)
        return converted if isinstance(converted, str) else json.dumps(converted)
    raise NotJSONError(f"{where} has a key of type {type(key).__qualname__!r}; JSON object keys must be strings")


def _decimal(value: decimal.Decimal, where: str) -> int | float:
    if not value.is_finite():
        raise NotJSONError(f"{where} is Decimal({str(value)!r}), which JSON cannot represent")
    if value == value.to_integral_value():
        return int(value)
    return float(value)
