"""staging.rawjson: the fast raw JSON text is the standard library's, character for character."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from staging.rawjson import raw_json, standard_json


def reference(raw: Any) -> str:
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclasses.dataclass
class Point:
    x: int


class Name(str):
    pass


AWKWARD = {
    "control characters": {"a": "tab\there, newline\nthere, \r\b\f \x01\x1f \x7f \x00"},
    "quotes and backslashes": {"a": 'say "hi" \\ C:\\path\\ \\n \\t'},
    "non-ASCII": {"a": "Zoë, Łódź, 東京, 😀, \u2028\u2029, \ufeff"},
    "a lone surrogate": {"a": "\ud800"},
    "numbers in strings": {"a": "10:30:00.5", "b": "1e-07", "c": "[1.5,2]", "d": ":1.5"},
    "small floats": {"a": 1e-07, "b": 8.3e-05, "c": [0.1, -2.5e-10]},
    "big floats": {"a": 1e16, "b": 1.7976931348623157e308, "c": -0.0},
    "NaN and infinities": {"a": float("nan"), "b": [{"c": float("inf")}], "d": -float("inf")},
    "big integers": {"a": 2**64, "b": -(2**63) - 1, "c": 2**63 - 1},
    "non-string keys": {1: "x", None: "y", 2.5: "z"},
    "dates and datetimes": {"a": dt.date(2025, 8, 25), "b": dt.datetime(2025, 8, 25, 10, 30)},
    "other types": {"a": decimal.Decimal("1.50"), "b": uuid.UUID(int=5), "c": {1, 2}},
    "a dataclass": {"a": Point(1)},
    "a str subclass": {"a": Name("x")},
    "nesting": {"a": [{"b": None, "c": [True, False, 1, "x"]}], "e": {}, "f": [], "g": ()},
    "an empty record": {},
}


@pytest.mark.parametrize("raw", AWKWARD.values(), ids=AWKWARD.keys())
def test_it_writes_what_the_standard_library_writes(raw: dict[Any, Any]) -> None:
    assert raw_json(raw) == reference(raw)


def test_the_reference_is_the_standard_librarys_compact_text() -> None:
    assert standard_json({"a": ["é", 1]}) == '{"a":["é",1]}'


json_text = st.text(st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["", "\t", "\n", "\\", '"', "1.5", ":1e-7", "null", "NaN"]
)
json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities too
    json_text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=15,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.dictionaries(json_text, json_value, max_size=6))
def test_any_decoded_json_is_written_as_the_standard_library_writes_it(raw: dict) -> None:
    assert raw_json(raw) == reference(raw)


@settings(max_examples=300, deadline=None)
@given(raw=st.dictionaries(json_text, json_text, max_size=12))
def test_any_csv_row_is_written_as_the_standard_library_writes_it(raw: dict[str, str]) -> None:
    assert raw_json(raw) == reference(raw)
