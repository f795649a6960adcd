"""hypothesis fuzzes the JSON mappers (the CSV reader's fuzzing is tests/test_csv_fuzz.py).

Whatever JSON a OneRoster server or Clever sends, a mapper returns a record staging can store,
a Reject naming why, or None for a record that is skipped: never an exception, never a text
field PostgreSQL cannot hold (a NUL), never a value of the wrong type.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.clever import mapping as clever
from connectors.oneroster_api import mapping as oneroster
from staging.rawjson import raw_json
from staging.records import (
    ACTIVE,
    DELETED,
    ClassRecord,
    EnrollmentRecord,
    Reject,
    SchoolRecord,
    UserRecord,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text with the characters that break things: NUL, quotes, separators, non-BMP, whitespace.
text = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\x00", ",", '"', "\n", " ", "\t", "-", ":", "/", "\u00e9", "\U0001f600"]),
        st.characters(codec="utf-8"),
    ),
    max_size=30,
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
    st.sampled_from(["2025-08-25", "2025-08-25T10:00:00Z", "08/25/2025", "2025-02-30", "", "  "]),
)
json_value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


def plausible(value: Any) -> st.SearchStrategy[Any]:
    """A good value, or one with odd text appended (strings) or inside it (references)."""
    if isinstance(value, str):
        return st.one_of(st.just(value), st.builds(lambda extra: value + extra, text))
    if isinstance(value, dict) and set(value) == {"sourcedId"}:
        return st.builds(lambda i: {"sourcedId": i, "type": "x"}, plausible(value["sourcedId"]))
    if isinstance(value, list):
        return st.lists(st.one_of(*(plausible(v) for v in value)), min_size=1, max_size=3)
    return st.just(value)


def fields(names: list[str], good: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects holding the good fields (mostly plausible) and any subset of the others."""
    return st.fixed_dictionaries(
        {
            name: st.one_of(plausible(value), plausible(value), json_value)
            for name, value in good.items()
        },
        optional={name: json_value for name in names if name not in good},
    )


def ref(kind: str) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda i: {"sourcedId": i, "type": kind, "href": "/x"}, text), json_value
    )


ONEROSTER = {
    "schools": fields(
        ["sourcedId", "status", "name", "type", "identifier"],
        {"sourcedId": "sch-1", "type": "school", "name": "North", "status": "active"},
    ),
    "classes": fields(
        ["sourcedId", "status", "title", "school", "course", "terms", "grades", "periods"],
        {
            "sourcedId": "cls-1",
            "title": "Math",
            "school": {"sourcedId": "sch-1"},
            "periods": ["1"],
        },
    ),
    "users": fields(
        ["sourcedId", "status", "role", "givenName", "familyName", "orgs", "email", "grades"]
        + ["enabledUser", "identifier", "password", "userIds"],
        {
            "sourcedId": "u-1",
            "role": "student",
            "givenName": "A",
            "familyName": "B",
            "orgs": [{"sourcedId": "sch-1"}],
            "grades": ["03"],
        },
    ),
    "enrollments": fields(
        ["sourcedId", "status", "role", "class", "user", "school", "primary"]
        + ["beginDate", "endDate"],
        {
            "sourcedId": "e-1",
            "role": "teacher",
            "class": {"sourcedId": "c"},
            "user": {"sourcedId": "u"},
        },
    ),
}
EXPECTED = {
    "schools": SchoolRecord,
    "classes": ClassRecord,
    "users": UserRecord,
    "enrollments": EnrollmentRecord,
}


def assert_storable(record: Any, expected: type) -> None:
    """What staging needs: the right type, clean text, dates as dates, JSON-able raw."""
    if record is None:
        return
    if isinstance(record, Reject):
        assert isinstance(record.external_id, str) and record.reason
        raw_json(record.raw)
        return
    assert isinstance(record, expected), type(record)
    assert record.status in (ACTIVE, DELETED)
    for name, value in record._asdict().items():
        if name == "raw":
            assert isinstance(value, dict)
            raw_json(value)
        elif name == "line":
            assert isinstance(value, int)
        elif isinstance(value, tuple):
            assert all(isinstance(v, str) and "\x00" not in v for v in value), name
        elif isinstance(value, bool):
            pass
        elif isinstance(value, str):
            assert "\x00" not in value, name
        else:
            assert value is None or isinstance(value, dt.date), (name, value)


@FUZZ
@given(
    entity=st.sampled_from(sorted(ONEROSTER)),
    data=st.data(),
    wrapper=st.sampled_from(["object", "anything"]),
)
def test_oneroster_mappers_never_raise_and_yield_storable_records(
    entity: str, data: st.DataObject, wrapper: str
) -> None:
    obj = data.draw(ONEROSTER[entity] if wrapper == "object" else json_value)
    lookups = oneroster.Lookups(
        courses={"crs-1": ("Math", "M1")},
        sessions={"t-1": ("Fall", dt.date(2025, 8, 25), None)},
        non_school_orgs={"dst-1"},
        has_courses=data.draw(st.booleans()),
        has_sessions=data.draw(st.booleans()),
    )

    record = oneroster.to_record(entity, obj, position=3, lookups=lookups, source="/x")

    assert_storable(record, EXPECTED[entity])


@FUZZ
@given(obj=json_value)
def test_oneroster_lookup_entries_never_raise(obj: Any) -> None:
    for entry in (oneroster.course_entry, oneroster.session_entry, oneroster.org_is_school):
        entry(obj)


CLEVER_USER = fields(
    ["id", "name", "email", "roles", "created"],
    {
        "id": "u1",
        "name": {"first": "A", "last": "B"},
        "roles": {"student": {"school": "s1", "student_number": "00042", "grade": "3"}},
        "email": "a@example.org",
    },
)
CLEVER_SECTION = fields(
    ["id", "name", "school", "subject", "grade", "period", "teacher", "teachers", "students"],
    {"id": "sec1", "name": "Math", "school": "s1", "teachers": ["t1"], "students": ["u1"]},
)
CLEVER_SCHOOL = fields(
    ["id", "name", "school_number", "low_grade", "high_grade"], {"id": "s1", "name": "North"}
)


@FUZZ
@given(
    school=CLEVER_SCHOOL,
    section=CLEVER_SECTION,
    user=CLEVER_USER,
    term=json_value,
    status=st.sampled_from([ACTIVE, DELETED]),
)
def test_clever_mappers_never_raise_and_yield_storable_records(
    school: dict[str, Any], section: dict[str, Any], user: dict[str, Any], term: Any, status: str
) -> None:
    assert_storable(clever.school(school, status=status), SchoolRecord)
    the_term = clever.term(term if isinstance(term, dict) else None)
    the_course = clever.course(term if isinstance(term, dict) else None)
    assert_storable(
        clever.section(section, term=the_term, course=the_course, status=status), ClassRecord
    )
    for enrollment in clever.enrollments(section):
        assert_storable(enrollment, EnrollmentRecord)
    assert_storable(clever.user(user, status=status), UserRecord)
    for entity, record in (("schools", school), ("classes", section), ("users", user)):
        assert_storable(clever.deleted(entity, record), EXPECTED[entity])


def test_the_fuzzer_can_see_a_nul_that_reaches_a_record() -> None:
    """assert_storable is what the properties rest on: it must catch what PostgreSQL refuses."""
    bad = SchoolRecord("s1", ACTIVE, "North\x00", "", "", "", {})
    try:
        assert_storable(bad, SchoolRecord)
    except AssertionError:
        return
    raise AssertionError("a NUL in a record went unnoticed")
