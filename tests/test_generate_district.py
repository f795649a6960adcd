"""The synthetic district generator: shape, realism, references, determinism and streaming."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from sis_sync.district_generator import COLUMNS, generate_district

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "district-small"
CEDS_GRADES = {"KG", *(f"{grade:02d}" for grade in range(1, 13))}
ONEROSTER_1_1_HEADERS = {
    "orgs": "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId",
    "academicSessions": "sourcedId,status,dateLastModified,title,type,startDate,endDate,"
    "parentSourcedId,schoolYear",
    "courses": "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,"
    "orgSourcedId,subjects,subjectCodes",
    "classes": "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,"
    "classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods",
    "users": "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
    "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password",
    "enrollments": "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,"
    "userSourcedId,role,primary,beginDate,endDate",
}


def read(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def split(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(",") if item.strip()]


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    folder = tmp_path_factory.mktemp("district")
    return folder, generate_district(folder, students=3000, seed=3)


@pytest.fixture(scope="module")
def rows(district: tuple[Path, dict[str, int]]) -> dict[str, list[dict[str, str]]]:
    folder, _ = district
    return {name: read(folder, name) for name in COLUMNS}


def students_of(rows: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    return [user for user in rows["users"] if user["role"] == "student"]


def teachers_of(rows: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    return [user for user in rows["users"] if user["role"] == "teacher"]


def test_it_returns_counts_equal_to_the_rows_written(district, rows) -> None:
    _, counts = district
    for name in COLUMNS:
        assert counts[name] == len(rows[name]), name
    assert counts["students"] == len(students_of(rows)) == 3000
    assert counts["teachers"] == len(teachers_of(rows))
    assert counts["schools"] == sum(org["type"] == "school" for org in rows["orgs"])
    assert counts["orgs"] == counts["schools"] + 1


def test_it_writes_exactly_the_oneroster_1_1_headers(district) -> None:
    folder, _ = district
    for name, header in ONEROSTER_1_1_HEADERS.items():
        with (folder / f"{name}.csv").open(newline="", encoding="utf-8") as handle:
            assert next(csv.reader(handle)) == header.split(","), name


def test_it_writes_a_bulk_manifest_with_the_other_1_1_files_absent(district) -> None:
    folder, _ = district
    manifest = {row["propertyName"]: row["value"] for row in read(folder, "manifest")}
    assert manifest["manifest.version"] == "1.0"
    assert manifest["oneroster.version"] == "1.1"
    for name in ONEROSTER_1_1_HEADERS:
        assert manifest[f"file.{name}"] == "bulk"
    for name in ("demographics", "categories", "lineItems", "results", "resources"):
        assert manifest[f"file.{name}"] == "absent"
    assert manifest["file.classResources"] == manifest["file.courseResources"] == "absent"
    assert not (folder / "demographics.csv").exists()


def test_it_leaves_status_and_date_last_modified_blank_as_bulk_requires(rows) -> None:
    for name, records in rows.items():
        assert all(r["status"] == "" and r["dateLastModified"] == "" for r in records), name


def test_it_writes_utf8_with_crlf_line_endings(district) -> None:
    folder, _ = district
    raw = (folder / "users.csv").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 3000
    raw.decode("utf-8")


def test_it_gives_unique_sourced_ids_per_file(rows) -> None:
    for name, records in rows.items():
        ids = [record["sourcedId"] for record in records]
        assert len(ids) == len(set(ids)), name


def test_it_is_byte_identical_for_the_same_seed_and_different_for_another(tmp_path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_district(first, students=900, seed=5)
    generate_district(second, students=900, seed=5)
    generate_district(other, students=900, seed=6)
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "users.csv").read_bytes() != (other / "users.csv").read_bytes()


def test_it_scales_by_the_spec_sizing_ratios(tmp_path) -> None:
    counts = generate_district(tmp_path, students=20_000, seed=2)
    assert counts["schools"] == 40  # 2,000 per 1,000,000
    assert counts["teachers"] == pytest.approx(1_600, rel=0.02)  # 80,000 per 1,000,000
    assert counts["classes"] == pytest.approx(4_000, rel=0.02)  # 200,000 per 1,000,000
    assert 7 <= counts["enrollments"] / counts["students"] <= 8.5


def test_it_keeps_class_sizes_realistic(rows) -> None:
    sizes = Counter(e["classSourcedId"] for e in rows["enrollments"] if e["role"] == "student")
    assert len(sizes) == len(rows["classes"])
    assert 25 <= sum(sizes.values()) / len(sizes) <= 36
    assert max(sizes.values()) <= 40


def test_it_makes_a_single_school_for_a_tiny_district(tmp_path) -> None:
    counts = generate_district(tmp_path, students=1, seed=1)
    assert counts["schools"] == 1
    assert counts["students"] == 1
    assert counts["teachers"] == counts["classes"] == 1


def test_it_writes_non_ascii_names(rows) -> None:
    names = {u["givenName"] for u in rows["users"]} | {u["familyName"] for u in rows["users"]}
    assert {"José", "Zoë", "Nguyễn", "Søren", "Ólafsdóttir"} & names
    assert sum(not name.isascii() for name in names) >= 20


def test_it_writes_hyphenated_and_apostrophe_family_names(rows) -> None:
    families = [user["familyName"] for user in rows["users"]]
    assert "García-López" in families
    assert any("-" in name and name != "García-López" for name in families)
    assert any("'" in name for name in families)


def test_it_leaves_about_a_tenth_of_students_without_email(rows) -> None:
    students = students_of(rows)
    without = sum(student["email"] == "" for student in students) / len(students)
    assert 0.07 <= without <= 0.13
    assert all(teacher["email"] for teacher in teachers_of(rows))


def test_it_zero_pads_student_numbers(rows) -> None:
    numbers = [student["identifier"] for student in students_of(rows)]
    assert all(len(number) == 8 and number.isdigit() for number in numbers)
    assert all(number.startswith("0") for number in numbers)
    assert len(set(numbers)) == len(numbers)


def test_it_fills_the_required_user_fields(rows) -> None:
    usernames = [user["username"] for user in rows["users"]]
    assert all(usernames) and len(set(usernames)) == len(usernames)
    assert {user["enabledUser"] for user in rows["users"]} == {"true"}
    assert {user["role"] for user in rows["users"]} == {"student", "teacher", "administrator"}
    assert {student["grades"] for student in students_of(rows)} == CEDS_GRADES
    assert all(user["grades"] == "" for user in rows["users"] if user["role"] != "student")


def test_it_puts_administrators_at_the_district(rows) -> None:
    district_id = next(org["sourcedId"] for org in rows["orgs"] if org["type"] == "district")
    admins = [user for user in rows["users"] if user["role"] == "administrator"]
    assert 2 <= len(admins) <= 5
    assert {admin["orgSourcedIds"] for admin in admins} == {district_id}


def test_it_puts_some_teachers_at_two_schools_and_they_teach_at_both(rows) -> None:
    schools_of = {t["sourcedId"]: split(t["orgSourcedIds"]) for t in teachers_of(rows)}
    shared = {teacher: schools for teacher, schools in schools_of.items() if len(schools) == 2}
    assert shared
    assert len(shared) < len(schools_of) / 10
    taught_at = defaultdict(set)
    for enrollment in rows["enrollments"]:
        taught_at[enrollment["userSourcedId"]].add(enrollment["schoolSourcedId"])
    assert any(taught_at[teacher] == set(schools) for teacher, schools in shared.items())


def test_it_co_teaches_some_classes_with_exactly_one_primary(rows) -> None:
    staff = defaultdict(list)
    for enrollment in rows["enrollments"]:
        if enrollment["role"] == "teacher":
            staff[enrollment["classSourcedId"]].append(enrollment["primary"])
    assert len(staff) == len(rows["classes"])
    co_taught = [flags for flags in staff.values() if len(flags) == 2]
    assert co_taught
    assert all(sorted(flags) == ["false", "true"] for flags in co_taught)
    assert all(flags == ["true"] for flags in staff.values() if len(flags) == 1)


def test_it_writes_classes_with_valid_types_terms_and_grades(rows) -> None:
    assert {c["classType"] for c in rows["classes"]} == {"scheduled", "homeroom"}
    assert any(len(split(c["termSourcedIds"])) == 2 for c in rows["classes"])
    for record in rows["classes"] + rows["courses"]:
        assert set(split(record["grades"])) <= CEDS_GRADES
    assert all(c["title"] and c["classCode"] and c["periods"] for c in rows["classes"])


def test_it_resolves_every_reference(rows) -> None:
    ids = {name: {r["sourcedId"] for r in records} for name, records in rows.items()}
    orgs, sessions, schools = ids["orgs"], ids["academicSessions"], set()
    for org in rows["orgs"]:
        if org["type"] == "school":
            schools.add(org["sourcedId"])
            assert org["parentSourcedId"] in orgs
    for session in rows["academicSessions"]:
        assert session["parentSourcedId"] in sessions | {""}
    for course in rows["courses"]:
        assert course["orgSourcedId"] in schools
        assert course["schoolYearSourcedId"] in sessions
    for klass in rows["classes"]:
        assert klass["schoolSourcedId"] in schools
        assert klass["courseSourcedId"] in ids["courses"]
        assert set(split(klass["termSourcedIds"])) <= sessions
    for user in rows["users"]:
        assert set(split(user["orgSourcedIds"])) <= orgs
    for enrollment in rows["enrollments"]:
        assert enrollment["classSourcedId"] in ids["classes"]
        assert enrollment["userSourcedId"] in ids["users"]
        assert enrollment["schoolSourcedId"] in schools


def test_it_enrolls_users_only_at_their_own_schools(rows) -> None:
    schools_of = {user["sourcedId"]: split(user["orgSourcedIds"]) for user in rows["users"]}
    school_of_class = {klass["sourcedId"]: klass["schoolSourcedId"] for klass in rows["classes"]}
    for enrollment in rows["enrollments"]:
        assert enrollment["schoolSourcedId"] == school_of_class[enrollment["classSourcedId"]]
        assert enrollment["schoolSourcedId"] in schools_of[enrollment["userSourcedId"]]


def test_it_rejects_fewer_than_one_student(tmp_path) -> None:
    with pytest.raises(ValueError, match="at least 1 student"):
        generate_district(tmp_path, students=0)


def test_it_keeps_the_committed_sample_in_step_with_the_generator(tmp_path) -> None:
    generate_district(tmp_path, students=600, seed=7)
    committed = sorted(path.name for path in SAMPLE.iterdir())
    assert committed == sorted(path.name for path in tmp_path.iterdir())
    for name in committed:
        assert (SAMPLE / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_it_generates_a_district_from_the_command(tmp_path, capsys) -> None:
    call_command("generate_district", str(tmp_path / "out"), "--students", "250", "--seed", "4")
    assert "250 students" in capsys.readouterr().out
    assert len(read(tmp_path / "out", "users")) > 250


def test_it_refuses_a_student_count_below_one_with_exit_code_2(tmp_path) -> None:
    with pytest.raises(CommandError) as error:
        call_command("generate_district", str(tmp_path), "--students", "0")
    assert error.value.returncode == 2
    assert not any(tmp_path.iterdir())
