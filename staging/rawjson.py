"""The JSON text of a record's raw source data, as staging keeps it (and rejects show it).

`raw_json(raw)` returns what `json.dumps(raw, ensure_ascii=False, separators=(",", ":"),
default=str)` returns, many times faster: staging writes one per record, and with the standard
library alone that was a quarter of a CSV extraction.

orjson writes the same text as the standard library for strings (the same escapes), integers,
booleans, None, dicts with string keys, lists and tuples. Everything else goes to the standard
library:
- what orjson refuses: integers beyond 64 bits, non-string keys, lone surrogates;
- types orjson would write its own way (datetimes, dataclasses, subclasses of str, int, dict and
  list) and types neither knows (`default=str`);
- floats, which orjson spells differently (`1e-7` for `1e-07`, `null` for NaN): a record whose
  values are not all strings is searched for one. A CSV row's are all strings, so only records
  decoded from JSON pay for that search.
Not covered: Enum members that are not str or int subclasses (orjson writes their value, the
standard library their str()); no source puts one in a raw record.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def raw_json(raw: dict[str, Any]) -> str:
    try:
        text = orjson.dumps(raw, default=_not_native, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError, also when _not_native raised
        return standard_json(raw)
    try:
        "".join(raw.values())  # all strings, as in a CSV row: no float to look for
    except TypeError:
        if _holds_float(raw):
            return standard_json(raw)
    return text.decode()


def standard_json(raw: Any) -> str:
    """The reference: the standard library's compact, non-ASCII-escaping JSON text."""
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str)


def _not_native(value: Any) -> Any:
    """orjson's hook for a value it does not write itself: the standard library will."""
    raise TypeError


def _holds_float(value: Any) -> bool:
    """A float anywhere in `value`, which orjson wrote without complaint: so it holds only
    dicts, lists, tuples, strings, integers, booleans, None and floats, none of them subclassed."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            pending.extend(item.values())
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind is float:
            return True
    return False
