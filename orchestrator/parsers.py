"""The API's JSON parser: DRF's, through ``orchestrator.params.json_loads_bounded``.

Nesting past ``params.MAX_JSON_DEPTH`` is a 400 in the API's error shape
(``code: parse_error``) before any serializer recurses over the value; DRF's own
parser let a 1,000-deep array reach a ``RecursionError``. NUL characters are
left to the serializers, which name the field that holds one.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from orchestrator.params import json_loads_bounded


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError("JSON parse error: the body is not UTF-8 text.") from None
        try:
            return json_loads_bounded(text, refuse_nul=False)
        except ValidationError as exc:
            raise ParseError(f"JSON parse error: {exc.messages[0]}") from None
