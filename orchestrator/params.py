"""One validating parser for what a request carries: query parameters, dates and JSON text.

Every page reads its query parameters through ``param_*``: a value that is not
what the parameter takes (a NUL, ``²`` that ``str.isdigit`` calls a digit, a
number past what the database holds) is a 400 naming the parameter, never a
500 from deeper down. JSON from the API, the start form and the fork form goes
through ``json_loads_bounded``: nesting past ``MAX_JSON_DEPTH`` and NUL
characters (Postgres cannot store ``\\u0000`` in JSON) are refused with a
message, before anything recurses over the value.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from typing import Any
from uuid import UUID

from django import forms
from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict

# Deeper JSON is refused: deep enough for any state a graph keeps, far from Python's recursion limit.
MAX_JSON_DEPTH = 100
# The largest whole number a parameter takes (Postgres bigint).
MAX_INT = 2**63 - 1
# Dates a filter takes: the database's and Python's arithmetic stay far from their ends.
MIN_DATE = datetime.date(1900, 1, 1)
MAX_DATE = datetime.date(9000, 12, 31)

_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only: "²".isdigit() is true, int("²") fails


class BadParameter(BadRequest):
    """A query parameter (or a request's JSON) that is not what it should be: a 400 with this message."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = f"The “{name}” parameter {message}"
        super().__init__(self.message)


def _raw(query: QueryDict, name: str) -> str | None:
    value = query.get(name)
    if value is not None and "\x00" in value:
        raise BadParameter(name, "contains a NUL character.")
    return value


def param_text(query: QueryDict, name: str, *, max_length: int = 200, default: str = "") -> str:
    """A text parameter, at most ``max_length`` characters, without NUL."""
    value = _raw(query, name)
    if value is None:
        return default
    if len(value) > max_length:
        raise BadParameter(name, f"is longer than {max_length} characters.")
    return value


def param_int(query: QueryDict, name: str, *, minimum: int = 0, maximum: int = MAX_INT) -> int | None:
    """A whole number written in ASCII digits, from ``minimum`` to ``maximum``; absent or empty: None."""
    value = _raw(query, name)
    if value is None or value == "":
        return None
    if not _DIGITS.fullmatch(value) or not minimum <= int(value) <= maximum:
        raise BadParameter(name, f"must be a whole number from {minimum} to {maximum}.")
    return int(value)


def param_float(query: QueryDict, name: str) -> float | None:
    """A finite number (a timestamp); absent or empty: None."""
    value = _raw(query, name)
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise BadParameter(name, "must be a number.")
    return number


def param_uuid(query: QueryDict, name: str) -> UUID | None:
    value = _raw(query, name)
    if value is None or value == "":
        return None
    try:
        return UUID(value)
    except ValueError:
        raise BadParameter(name, "must be an id (a UUID).") from None


def param_flag(query: QueryDict, name: str) -> bool:
    """A flag: present with a value other than "" and "0"."""
    return _raw(query, name) not in (None, "", "0")


class BoundedDateField(forms.DateField):
    """A date a filter can use: from ``MIN_DATE`` to ``MAX_DATE`` (9999-12-31 + 1 day overflows)."""

    def to_python(self, value: Any) -> datetime.date | None:
        if isinstance(value, str) and "\x00" in value:
            raise ValidationError("Enter a valid date.", code="invalid")
        date = super().to_python(value)
        if date is not None and not MIN_DATE <= date <= MAX_DATE:
            raise ValidationError(f"Give a date between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}.",
                                  code="out_of_range")
        return date


# --- JSON ------------------------------------------------------------------------------------------------


def json_check_bounded(value: Any, *, max_depth: int = MAX_JSON_DEPTH, refuse_nul: bool = True) -> None:
    """Raise ``ValidationError`` if ``value`` nests deeper than ``max_depth`` or (``refuse_nul``) holds a NUL
    or an unpaired surrogate, which Postgres cannot store in JSON.

    Iterative (an explicit stack): it must not itself recurse over what it checks.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise ValidationError(_too_deep(max_depth), code="too_deep")
            for key, child in item.items():
                if refuse_nul and isinstance(key, str) and _unstorable(key):
                    raise ValidationError(_UNSTORABLE_MESSAGE, code="unstorable")
                stack.append((child, depth + 1))
        elif isinstance(item, (list, tuple)):
            if depth > max_depth:
                raise ValidationError(_too_deep(max_depth), code="too_deep")
            stack.extend((child, depth + 1) for child in item)
        elif refuse_nul and isinstance(item, str) and _unstorable(item):
            raise ValidationError(_UNSTORABLE_MESSAGE, code="unstorable")


def json_loads_bounded(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, refuse_nul: bool = True) -> Any:
    """Parse JSON text; ``ValidationError`` with a message for bad JSON, too deep a nesting or a NUL."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).",
                              code="invalid") from None
    except RecursionError:
        raise ValidationError(_too_deep(max_depth), code="too_deep") from None
    except UnicodeDecodeError:
        raise ValidationError("Not valid JSON: the text is not UTF-8.", code="invalid") from None
    json_check_bounded(value, max_depth=max_depth, refuse_nul=refuse_nul)
    return value


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, and Postgres's jsonb refuses them.
    raise ValidationError(f"Not valid JSON: {name} is not a JSON number.", code="invalid")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999: Python reads infinity, which JSON and Postgres cannot hold
        raise ValidationError(f"Not valid JSON: {text[:40]} is too large a number.", code="invalid")
    return number


def _too_deep(max_depth: int) -> str:
    return f"The JSON is nested deeper than {max_depth} levels, the most Loopgate accepts."


_UNSTORABLE_MESSAGE = ("The JSON holds a NUL character (\\u0000) or an unpaired surrogate (\\ud800–\\udfff), "
                       "which cannot be stored.")


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: Postgres refuses it in JSON
        return True
    return False


# --- the 400 answer -----------------------------------------------------------------------------------------


def bad_request_response(request: HttpRequest, message: str) -> HttpResponse:
    """A 400 saying what was wrong: the API's error shape under /api/, plain text elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"message": message, "code": "bad_request", "extra": {}}, status=400)
    return HttpResponse(message, status=400, content_type="text/plain; charset=utf-8")
