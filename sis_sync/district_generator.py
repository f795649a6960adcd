"""A synthetic, realistic OneRoster 1.1 CSV district, for demos, tests and benchmarks.

The district follows the sizing ratios of SPEC §8 (per 1,000,000 students: 2,000 schools,
80,000 teachers, 200,000 classes, about 8,000,000 enrollments) and carries what real SIS exports
carry and importers trip over: non-ASCII, hyphenated and apostrophised names, students without
e-mail, student numbers with leading zeros, teachers at two schools, co-taught classes and
multi-valued cells.

It streams: one school's teachers, students, classes and enrollments are generated, written and
forgotten before the next school, so memory stays flat at any size. Every choice comes from one
``random.Random(seed)``, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from itertools import count
from pathlib import Path
from random import Random
from typing import Any, NamedTuple

# OneRoster 1.1 CSV columns, in spec order (reference/oneroster.md §1.4).
COLUMNS: dict[str, tuple[str, ...]] = {
    "orgs": (
        "sourcedId", "status", "dateLastModified", "name", "type", "identifier",
        "parentSourcedId",
    ),
    "academicSessions": (
        "sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate",
        "parentSourcedId", "schoolYear",
    ),
    "courses": (
        "sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode",
        "grades", "orgSourcedId", "subjects", "subjectCodes",
    ),
    "classes": (
        "sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId",
        "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects",
        "subjectCodes", "periods",
    ),
    "users": (
        "sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role",
        "username", "userIds", "givenName", "familyName", "middleName", "identifier", "email",
        "sms", "phone", "agentSourcedIds", "grades", "password",
    ),
    "enrollments": (
        "sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
        "userSourcedId", "role", "primary", "beginDate", "endDate",
    ),
}  # fmt: skip
ABSENT_FILES = (
    "demographics", "categories", "lineItems", "results", "resources", "classResources",
    "courseResources",
)  # fmt: skip

# SPEC §8 sizing ratios.
STUDENTS_PER_SCHOOL = 500
STUDENTS_PER_TEACHER = 12.5
STUDENTS_PER_CLASS = 5
# A small district still gets an elementary, a middle and a high school (200+ students each),
# so that the demo bundle shows teachers at two schools.
SMALL_DISTRICT_SCHOOLS = 3
SMALL_SCHOOL_STUDENTS = 200

NO_EMAIL_RATE = 0.10
CO_TEACH_RATE = 0.10
SHARED_TEACHER_RATE = 0.05
MIDDLE_NAME_RATE = 0.30
HYPHENATE_RATE = 0.05
STUDENT_NUMBER_BASE = 10_000  # student numbers are 8 digits: 00010001, 00010002, …

DISTRICT_ID = "dst-1"
DISTRICT_NAME = "Lakeview Unified School District"
DISTRICT_NCES_ID = "3612345"
STAFF_DOMAIN = "lakeview-usd.example.org"
STUDENT_DOMAIN = "students.lakeview-usd.example.org"
ADMIN_BASE_COUNT = 2
SCHOOLS_PER_EXTRA_ADMIN = 100

GRADES = ("KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")
LEVELS = {  # level: (school name suffix, grade indices)
    "E": ("Elementary School", range(0, 6)),
    "M": ("Middle School", range(6, 9)),
    "H": ("High School", range(9, 13)),
}
LEVEL_PATTERN = "EMHEEHEEMEEHEEMEEHEE"  # about 60% elementary, 15% middle, 25% high
PERIOD_SUBJECTS = ("homeroom", "ela", "math", "science", "social", "language", "elective")
FULL_YEAR_SUBJECTS = {"homeroom", "ela", "math", "science", "social"}


class Term(NamedTuple):
    sourced_id: str
    title: str
    type: str
    start: str
    end: str
    parent: str


# A fixed school year, not today's: the files must not change with the calendar.
SCHOOL_YEAR = "2026"
YEAR = Term("as-2026", "2025-2026", "schoolYear", "2025-08-25", "2026-06-26", "")
FALL = Term("as-2026-s1", "Fall 2025", "semester", "2025-08-25", "2026-01-23", YEAR.sourced_id)
SPRING = Term("as-2026-s2", "Spring 2026", "semester", "2026-01-26", "2026-06-26", YEAR.sourced_id)


class Name(NamedTuple):
    text: str
    slug: str  # ASCII, lower case, letters and digits only: for usernames


class Teacher(NamedTuple):
    sourced_id: str
    family_name: str
    room: str


class School(NamedTuple):
    sourced_id: str
    number: int
    level: str
    size: int


Student = tuple[str, int]  # (sourcedId, grade index)

# Name pools by origin: (weight, given names, family names). Weights are rough US shares.
NAME_POOLS: tuple[tuple[int, str, str], ...] = (
    (30, "James Olivia Liam Emma Noah Ava Ethan Mia Chloe Zoë Renée Abigail Mason Harper",
     "Smith Johnson Williams Brown Taylor Miller Davis Wilson O'Brien O'Connor Smith-Jones "
     "McAllister Anderson Thompson"),
    (22, "José María Sofía Mateo Lucía Andrés Camila Sebastián Valentina Martín Ximena Iñigo",
     "García-López Hernández Martínez Rodríguez Pérez-Gómez Núñez Ramírez Peña Fernández Ortiz "
     "González Díaz"),
    (12, "DeShawn Imani Jamal Aaliyah Malik Nia Darnell Keisha Tyrone Zuri",
     "Washington Jackson Robinson Harris Coleman Jenkins Brooks"),
    (6, "Minh Anh Bảo Thảo Quang Linh Huy Phương",
     "Nguyễn Trần Lê Phạm Hoàng Võ Đặng"),
    (6, "Wei Mei Jun Xiu Hao Lan Yichen Zihan",
     "Wang Li Zhang Chen Ng Liu Huang"),
    (5, "Aarav Priya Ananya Rohan Vihaan Diya Ishaan Saanvi",
     "Patel Sharma Iyer Reddy Gupta Venkataraman"),
    (4, "Muhammad Fatima Omar Layla Yusuf Amira Khalid Noor",
     "Al-Sayed Haddad El-Amin Abdullah Khoury Nassar"),
    (4, "Ji-woo Min-jun Seo-yeon Ha-eun Do-yun",
     "Kim Park Lee Choi Jung"),
    (3, "Aoife Siobhán Seán Niamh Ciarán Róisín Pádraig",
     "O'Sullivan McCarthy O'Neill Ó_Súilleabháin Ní_Bhriain"),
    (3, "Søren Björn Ása Ingrid Jökull Sigríður Lars Freyja",
     "Ólafsdóttir Jónsson Kristiansen Øvergaard Sigurðsson Åberg Lindqvist"),
    (3, "Łukasz Zofia Krzysztof Małgorzata Jürgen Lena François Chloé Hélène Amélie",
     "Wójcik Kowalski Nowak-Zielińska Müller Schröder Dubois Lefèvre Bélanger"),
    (2, "Mehmet Ayşe Emre Elif Giorgos Eleni",
     "Çelik Şahin Yılmaz Papadopoulos Konstantinidis"),
)  # fmt: skip

# Letters NFKD does not decompose into ASCII.
_FOLD = str.maketrans({
    "ø": "o", "æ": "ae", "ß": "ss", "đ": "d", "ł": "l", "ð": "d", "þ": "th", "ı": "i", "œ": "oe",
})  # fmt: skip
_SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def slugify(name: str) -> str:
    """'Ólafsdóttir' -> 'olafsdottir', "O'Brien" -> 'obrien', 'García-López' -> 'garcialopez'."""
    folded = unicodedata.normalize("NFKD", name.lower().translate(_FOLD))
    return "".join(ch for ch in folded if ch in _SLUG_CHARS)


def _names(words: str) -> tuple[Name, ...]:
    # "_" stands for a space inside one name ("Ní Bhriain").
    return tuple(Name(word.replace("_", " "), slugify(word)) for word in words.split())


def _name_pool() -> list[tuple[tuple[Name, ...], tuple[Name, ...]]]:
    """One entry per weight unit, so a plain rng.choice picks an origin by weight."""
    pool = []
    for weight, givens, families in NAME_POOLS:
        pool.extend([(_names(givens), _names(families))] * weight)
    return pool


def school_count(students: int) -> int:
    small = min(SMALL_DISTRICT_SCHOOLS, students // SMALL_SCHOOL_STUDENTS)
    return max(1, round(students / STUDENTS_PER_SCHOOL), small)


def school_sizes(students: int, schools: int, rng: Random) -> list[int]:
    """Split the students over the schools, each within about ±25% of the mean and at least 1."""
    weights = [rng.uniform(0.75, 1.25) for _ in range(schools)]
    total = sum(weights)
    sizes = [max(1, int(students * weight / total)) for weight in weights]
    difference = students - sum(sizes)
    index = 0
    while difference:
        slot = index % schools
        if difference > 0:
            sizes[slot] += 1
            difference -= 1
        elif sizes[slot] > 1:
            sizes[slot] -= 1
            difference += 1
        index += 1
    return sizes


def chunks(items: Sequence[Student], parts: int) -> Iterator[Sequence[Student]]:
    """Split items into `parts` consecutive slices whose lengths differ by at most one."""
    base, extra = divmod(len(items), parts)
    start = 0
    for part in range(parts):
        end = start + base + (1 if part < extra else 0)
        yield items[start:end]
        start = end


def course_for(subject: str, level: str, grade: int, section: int) -> tuple[str, str, str]:
    """The (courseCode, title, subject name) a section of this subject and grade teaches."""
    code = GRADES[grade]
    label = "Kindergarten" if grade == 0 else f"Grade {grade}"
    if subject == "homeroom":
        return "HR", "Homeroom", "Homeroom"
    if subject == "ela":
        if level == "H":
            return f"ENG-{code}", f"English {grade}", "English Language Arts"
        return f"ELA-{code}", f"English Language Arts {label}", "English Language Arts"
    if subject in _BY_GRADE:
        titles, subject_name, prefix = _BY_GRADE[subject]
        return f"{prefix}-{code}", titles[grade] or f"{subject_name} {label}", subject_name
    options = _ELECTIVES[subject][level]
    course_code, title, subject_name = options[section % len(options)]
    return course_code, title, subject_name


_BY_GRADE: dict[str, tuple[tuple[str, ...], str, str]] = {
    # Grades K-5 take the generic "<subject> <grade>" course (the empty titles).
    "math": (
        ("",) * 6 + ("Math 6", "Math 7", "Pre-Algebra", "Algebra I", "Geometry", "Algebra II",
                     "Precalculus"),
        "Mathematics", "MATH",
    ),
    "science": (
        ("",) * 6 + ("Earth Science", "Life Science", "Physical Science", "Biology", "Chemistry",
                     "Physics", "Environmental Science"),
        "Science", "SCI",
    ),
    "social": (
        ("",) * 6 + ("World Geography", "World History", "U.S. History I", "Global History",
                     "World History II", "U.S. History & Government",
                     "Economics & Participation in Government"),
        "Social Studies", "SOC",
    ),
}  # fmt: skip
_ELECTIVES: dict[str, dict[str, tuple[tuple[str, str, str], ...]]] = {
    "language": {
        "E": (("ART-E", "Art", "Visual Arts"),
              ("SPAN-E", "Spanish Exploration", "World Languages")),
        "M": (("SPAN-1", "Spanish I", "World Languages"),
              ("FREN-1", "French I", "World Languages"),
              ("CHIN-1", "Mandarin Chinese I", "World Languages")),
        "H": (("SPAN-2", "Spanish II", "World Languages"),
              ("SPAN-3", "Spanish III", "World Languages"),
              ("FREN-2", "French II", "World Languages"),
              ("CHIN-2", "Mandarin Chinese II", "World Languages")),
    },
    "elective": {
        "E": (("PE-E", "Physical Education", "Physical Education"),
              ("MUS-E", "Music", "Music")),
        "M": (("PE-M", "Physical Education", "Physical Education"),
              ("BAND-M", "Band", "Music"),
              ("ART-M", "Visual Arts", "Visual Arts")),
        "H": (("PE-H", "Physical Education", "Physical Education"),
              ("CSP-H", "Computer Science Principles", "Computer Science"),
              ("ART-H", "Studio Art", "Visual Arts"),
              ("CHOR-H", "Chorus", "Music")),
    },
}  # fmt: skip


def generate_district(out: Path, *, students: int, seed: int = 1) -> dict[str, int]:
    """Write a OneRoster 1.1 bulk CSV bundle for a district of `students` students into `out`.

    Returns the number of rows written per file ("orgs", "academicSessions", "courses",
    "classes", "users", "enrollments") and the totals "students", "teachers",
    "administrators" and "schools". Raises ValueError when students < 1.
    """
    if students < 1:
        raise ValueError(f"a district needs at least 1 student, not {students}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(out)
    with ExitStack() as stack:
        writers = {}
        for name in COLUMNS:
            handle = stack.enter_context(
                (out / f"{name}.csv").open("w", newline="", encoding="utf-8")
            )
            writers[name] = csv.writer(handle, lineterminator="\r\n")
            writers[name].writerow(COLUMNS[name])
        return DistrictWriter(writers, Random(seed)).write(students)


def write_manifest(out: Path) -> None:
    rows = [("manifest.version", "1.0"), ("oneroster.version", "1.1")]
    rows += [(f"file.{name}", "bulk") for name in COLUMNS]
    rows += [(f"file.{name}", "absent") for name in ABSENT_FILES]
    rows += [("source.systemName", "SIS Sync district generator")]
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(("propertyName", "value"))
        writer.writerows(rows)


class DistrictWriter:
    """Writes one district, school by school, through one csv.writer per file."""

    def __init__(self, writers: dict[str, Any], rng: Random) -> None:
        self.writers = writers
        self.rng = rng
        self.name_pool = _name_pool()
        self.counts = dict.fromkeys([*COLUMNS, "students", "teachers", "administrators"], 0)
        self.class_ids = count(1)
        self.enrollment_ids = count(1)

    def write(self, students: int) -> dict[str, int]:
        schools = school_count(students)
        self.write_district()
        self.write_sessions()
        self.write_administrators(ADMIN_BASE_COUNT + schools // SCHOOLS_PER_EXTRA_ADMIN)
        shared: list[Teacher] = []
        for index, size in enumerate(school_sizes(students, schools, self.rng)):
            level = LEVEL_PATTERN[index % len(LEVEL_PATTERN)]
            school = School(f"sch-{index + 1}", index + 1, level, size)
            next_id = f"sch-{index + 2}" if index + 1 < schools else None
            shared = self.write_school(school, next_id, shared)
        return {**self.counts, "schools": schools}

    def row(self, name: str, values: Sequence[str]) -> None:
        self.counts[name] += 1
        self.writers[name].writerow(values)

    def write_district(self) -> None:
        self.row("orgs", (DISTRICT_ID, "", "", DISTRICT_NAME, "district", DISTRICT_NCES_ID, ""))

    def write_sessions(self) -> None:
        for term in (YEAR, FALL, SPRING):
            self.row(
                "academicSessions",
                (term.sourced_id, "", "", term.title, term.type, term.start, term.end,
                 term.parent, SCHOOL_YEAR),
            )  # fmt: skip

    def person(self) -> tuple[Name, Name, str]:
        """A (given name, family name, middle name) from one origin, sometimes double-barrelled."""
        rng = self.rng
        givens, families = rng.choice(self.name_pool)
        given = rng.choice(givens)
        family = rng.choice(families)
        if rng.random() < HYPHENATE_RATE and "-" not in family.text:
            second = rng.choice(rng.choice(self.name_pool)[1])
            if second.text != family.text and "-" not in second.text:
                family = Name(f"{family.text}-{second.text}", family.slug + second.slug)
        middle = rng.choice(givens).text if rng.random() < MIDDLE_NAME_RATE else ""
        return given, family, middle

    def write_user(
        self, sourced_id: str, org_ids: str, role: str, username: str, identifier: str,
        email: str, grades: str, names: tuple[Name, Name, str],
    ) -> None:  # fmt: skip
        given, family, middle = names
        self.row(
            "users",
            (sourced_id, "", "", "true", org_ids, role, username, f"{{SIS:{identifier}}}",
             given.text, family.text, middle, identifier, email, "", "", "", grades, ""),
        )  # fmt: skip

    def write_administrators(self, how_many: int) -> None:
        for number in range(1, how_many + 1):
            names = self.person()
            username = f"{names[0].slug}.{names[1].slug}.admin{number}"
            self.write_user(
                f"adm-{number}", DISTRICT_ID, "administrator", username, f"A{number:05d}",
                f"{username}@{STAFF_DOMAIN}", "", names,
            )  # fmt: skip
        self.counts["administrators"] = how_many

    def write_school(
        self, school: School, next_id: str | None, shared_in: list[Teacher]
    ) -> list[Teacher]:
        """Write one school and everything in it; return its teachers shared with the next one."""
        suffix, _ = LEVELS[school.level]
        honoree = self.person()
        name = f"{honoree[0].text} {honoree[1].text} {suffix}"
        nces_id = f"{DISTRICT_NCES_ID}{school.number:05d}"
        self.row("orgs", (school.sourced_id, "", "", name, "school", nces_id, DISTRICT_ID))
        teachers, shared_out = self.write_teachers(school, next_id)
        by_grade = self.write_students(school)
        self.write_classes(school, by_grade, teachers, shared_in)
        return shared_out

    def write_teachers(
        self, school: School, next_id: str | None
    ) -> tuple[list[Teacher], list[Teacher]]:
        how_many = max(1, round(school.size / STUDENTS_PER_TEACHER))
        shared_count = max(1, round(how_many * SHARED_TEACHER_RATE)) if next_id else 0
        teachers = []
        for index in range(how_many):
            serial = self.counts["teachers"] + 1
            self.counts["teachers"] = serial
            names = self.person()
            orgs = school.sourced_id
            if index >= how_many - shared_count:
                orgs = f"{school.sourced_id},{next_id}"
            username = f"{names[0].slug}.{names[1].slug}{serial}"
            sourced_id = f"tch-{serial}"
            self.write_user(
                sourced_id, orgs, "teacher", username, f"T{serial:06d}",
                f"{username}@{STAFF_DOMAIN}", "", names,
            )  # fmt: skip
            room = f"Room {100 * (1 + index // 20) + index % 20 + 1}"
            teachers.append(Teacher(sourced_id, names[1].text, room))
        return teachers, teachers[len(teachers) - shared_count :]

    def write_students(self, school: School) -> list[list[Student]]:
        """Write the school's students, spread evenly over its grades; return them by grade."""
        _, grades = LEVELS[school.level]
        by_grade: list[list[Student]] = []
        for grade, size in zip(grades, even_split(school.size, len(grades)), strict=True):
            by_grade.append([self.write_student(school, grade) for _ in range(size)])
        return by_grade

    def write_student(self, school: School, grade: int) -> Student:
        serial = self.counts["students"] + 1
        self.counts["students"] = serial
        number = STUDENT_NUMBER_BASE + serial
        given, family, middle = self.person()
        username = f"{given.slug[:1]}{family.slug}{number}"
        email = "" if self.rng.random() < NO_EMAIL_RATE else f"{username}@{STUDENT_DOMAIN}"
        sourced_id = f"stu-{serial}"
        self.write_user(
            sourced_id, school.sourced_id, "student", username, f"{number:08d}", email,
            GRADES[grade], (given, family, middle),
        )  # fmt: skip
        return sourced_id, grade

    def write_classes(
        self,
        school: School,
        by_grade: list[list[Student]],
        teachers: list[Teacher],
        shared_in: list[Teacher],
    ) -> None:
        """Seven periods; every student sits in one section of each, sections ~35 students."""
        total = max(1, round(school.size / STUDENTS_PER_CLASS))
        periods = min(len(PERIOD_SUBJECTS), total)
        courses: dict[str, str] = {}
        section_numbers: dict[str, int] = {}
        index = 0
        for period in range(periods):
            sections = total // periods + (1 if period < total % periods else 0)
            for section, members in enumerate(chunks(self.period_order(by_grade), sections)):
                primary = self.primary_teacher(index, teachers, shared_in)
                co_teacher = self.co_teacher(primary, teachers)
                staff = [(primary, "true")] + ([(co_teacher, "false")] if co_teacher else [])
                subject = PERIOD_SUBJECTS[period]
                grade = members[len(members) // 2][1] if members else 0
                code, title, subject_name = course_for(subject, school.level, grade, section)
                course_id = courses.get(code) or self.write_course(
                    school, code, title, subject_name, grade, courses
                )
                number = section_numbers.get(code, 0) + 1
                section_numbers[code] = number
                term = self.term_for(subject, section)
                class_id = f"cls-{next(self.class_ids)}"
                self.row(
                    "classes",
                    (class_id, "", "", f"{title} - P{period + 1} - {primary.family_name}",
                     class_grades(members, grade), course_id, f"{code}-{number:02d}",
                     "homeroom" if subject == "homeroom" else "scheduled", primary.room,
                     school.sourced_id, term_ids(term), subject_name, "", str(period + 1)),
                )  # fmt: skip
                self.write_enrollments(class_id, school.sourced_id, staff, members, term)
                index += 1

    def period_order(self, by_grade: list[list[Student]]) -> list[Student]:
        """The students shuffled within each grade, grades kept together: mostly 1-grade classes."""
        order: list[Student] = []
        for group in by_grade:
            shuffled = group[:]
            self.rng.shuffle(shuffled)
            order += shuffled
        return order

    def primary_teacher(
        self, index: int, teachers: list[Teacher], shared_in: list[Teacher]
    ) -> Teacher:
        # Teachers shared with the previous school lead this school's first classes.
        if index < len(shared_in):
            return shared_in[index]
        return teachers[(index - len(shared_in)) % len(teachers)]

    def co_teacher(self, primary: Teacher, teachers: list[Teacher]) -> Teacher | None:
        if len(teachers) < 2 or self.rng.random() >= CO_TEACH_RATE:
            return None
        # Only an own teacher can equal the candidate, so the fallback's index() always finds it.
        candidate = teachers[self.rng.randrange(len(teachers))]
        return candidate if candidate != primary else teachers[teachers.index(primary) - 1]

    def term_for(self, subject: str, section: int) -> tuple[Term, ...]:
        if subject in FULL_YEAR_SUBJECTS:
            return (FALL, SPRING)
        return (FALL,) if section % 2 == 0 else (SPRING,)

    def write_course(
        self, school: School, code: str, title: str, subject: str, grade: int,
        courses: dict[str, str],
    ) -> str:  # fmt: skip
        course_id = f"crs-{school.number}-{code}"
        grades = "" if code == "HR" else GRADES[grade]
        self.row(
            "courses",
            (course_id, "", "", YEAR.sourced_id, title, code, grades, school.sourced_id,
             subject, ""),
        )  # fmt: skip
        courses[code] = course_id
        return course_id

    def write_enrollments(
        self,
        class_id: str,
        school_id: str,
        staff: list[tuple[Teacher, str]],
        members: Sequence[Student],
        term: tuple[Term, ...],
    ) -> None:
        begin, end = term[0].start, term[-1].end
        ids = self.enrollment_ids
        rows = [
            (f"enr-{next(ids)}", "", "", class_id, school_id, teacher.sourced_id, "teacher",
             primary, begin, end)
            for teacher, primary in staff
        ]  # fmt: skip
        rows += [
            (f"enr-{next(ids)}", "", "", class_id, school_id, student_id, "student", "false",
             begin, end)
            for student_id, _ in members
        ]  # fmt: skip
        self.counts["enrollments"] += len(rows)
        self.writers["enrollments"].writerows(rows)


def even_split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if part < extra else 0) for part in range(parts)]


def class_grades(members: Sequence[Student], fallback: int) -> str:
    grades = sorted({grade for _, grade in members}) or [fallback]
    return ",".join(GRADES[grade] for grade in grades)


def term_ids(term: tuple[Term, ...]) -> str:
    return ",".join(part.sourced_id for part in term)
