"""`generate_district OUT --students N [--seed S]`: write a synthetic OneRoster CSV district."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sis_sync.district_generator import generate_district


class Command(BaseCommand):
    help = "Write a realistic synthetic OneRoster 1.1 CSV district into the folder OUT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out", type=Path, help="folder to write the CSV files into")
        parser.add_argument("--students", type=int, required=True, help="number of students")
        parser.add_argument("--seed", type=int, default=1, help="same seed, same files")

    def handle(self, *args: Any, **options: Any) -> None:
        out: Path = options["out"]
        students: int = options["students"]
        if students < 1:
            raise CommandError(f"--students must be at least 1, not {students}", returncode=2)
        if out.exists() and not out.is_dir():
            raise CommandError(f"{out} exists and is not a folder", returncode=2)
        started = time.monotonic()
        counts = generate_district(out, students=students, seed=options["seed"])
        self.stdout.write(
            f"Wrote {counts['schools']} schools, {counts['students']} students, "
            f"{counts['teachers']} teachers, {counts['classes']} classes and "
            f"{counts['enrollments']} enrollments to {out} "
            f"in {time.monotonic() - started:.1f}s"
        )
