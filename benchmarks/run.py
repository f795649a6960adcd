"""`python -m benchmarks.run`: time OneRoster CSV syncs of generated districts (`make bench`).

For each district size: a fresh database; the three syncs by the real command in a child
process (first full sync, re-sync without changes, re-sync with 1% changed); the database size;
the hand-written floor on the same data; then a fresh database again and the same three syncs
in this process, split by stage. Prints a table and writes
benchmarks/results/<UTC time>-<label>.json.
See benchmarks/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import sys
from pathlib import Path
from typing import Any

from benchmarks.database import (
    BenchDatabaseError,
    database_drop,
    database_name,
    database_recreate,
    database_size,
    largest_tables,
    server_facts,
    tables_size,
)
from benchmarks.measure import BenchError

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/sis_bench"
TENANT = "bench"
SCENARIOS = (
    ("first", "first full sync"),
    ("noChange", "re-sync, no change"),
    ("changed", "re-sync, 1% changed"),
)
ROSTER_TABLES = (
    "sis_sync_school",
    "sis_sync_classroom",
    "sis_sync_person",
    "sis_sync_personschool",
    "sis_sync_enrollment",
    "sis_sync_externalidentity",
)
STAT_LETTERS = (
    ("created", "+"),
    ("updated", "~"),
    ("unchanged", "="),
    ("deactivated", "-"),
    ("reactivated", "^"),
    ("rejected", "x"),
)
MB = 1024 * 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--students",
        default="100000",
        help="district sizes, comma-separated (default 100000)",
    )
    parser.add_argument("--million", action="store_true", help="add the 1,000,000 district")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"a database the run may drop and re-create (default {DEFAULT_URL})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--first-only",
        action="store_true",
        help="only the first full sync of each size (and the floor's first load): for the "
        "sizes whose every sync takes minutes",
    )
    parser.add_argument(
        "--no-rest",
        action="store_true",
        help="skip the REST extraction from the local OneRoster server",
    )
    args = parser.parse_args(argv)
    try:
        sizes = [int(part.replace("_", "")) for part in args.students.split(",") if part.strip()]
    except ValueError:
        parser.error(f"--students takes whole numbers separated by commas, not {args.students!r}")
    if args.million:
        sizes.append(1_000_000)
    if not sizes or min(sizes) < 1:
        parser.error("--students needs at least one size of 1 or more")
    args.sizes = sorted(set(sizes))
    return args


def configure_django(url: str) -> None:
    """Settings as in production, pointed at the benchmark database; the children inherit them."""
    from cryptography.fernet import Fernet

    from benchmarks.bundles import DATA_DIR

    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DEBUG"] = "false"  # no query log, no debug cursor wrapper
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(40)
    os.environ["SIS_SYNC_ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    os.environ["SIS_SYNC_DATA_DIR"] = str(DATA_DIR / "var")  # where uploads keep their bundle
    os.environ["LOG_LEVEL"] = "WARNING"

    import django

    django.setup()


def fresh_database(url: str) -> None:
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    database_recreate(url)
    call_command("migrate", verbosity=0)


def stat_problems(
    stats: dict[str, dict[str, int]], wanted: dict[str, dict[str, int]], free: str
) -> list[str]:
    """Differences from the wanted counts; `free` is the one count left unchecked."""
    problems = []
    for entity, counts in stats.items():
        for key, value in counts.items():
            expected = wanted.get(entity, {}).get(key, 0)
            if key != free and value != expected:
                problems.append(f"{entity} {key} {value:,}, expected {expected:,}")
    return problems


def bench_size(
    students: int, url: str, *, rest: bool = True, first_only: bool = False
) -> dict[str, Any]:
    from benchmarks.bundles import bundle_rows, changed_bundle, district_bundle
    from benchmarks.floor import floor_measure
    from benchmarks.measure import sync_by_command, sync_in_process

    progress(f"{students:,} students: preparing the bundles (cached after the first run)")
    bundle = district_bundle(students)
    changed, expected = changed_bundle(students)
    rows, changed_rows = bundle_rows(bundle), bundle_rows(changed)
    paths = {"first": bundle, "noChange": bundle, "changed": changed}
    wanted = {
        "first": ({}, "created"),
        "noChange": ({}, "unchanged"),
        "changed": (expected, "unchanged"),
    }
    chosen = SCENARIOS[:1] if first_only else SCENARIOS
    scenarios: dict[str, dict[str, Any]] = {key: {} for key, _ in chosen}

    fresh_database(url)
    for key, label in chosen:
        progress(f"{students:,} students: {label}, by the command")
        scenarios[key]["command"] = sync_by_command(bundle=paths[key], tenant=TENANT)
    database_bytes = database_size(url)
    roster_bytes = tables_size(url, ROSTER_TABLES)
    biggest = largest_tables(url, 6)
    progress(f"{students:,} students: the floor (COPY + set-based SQL by hand)")
    floor = floor_measure(url, bundle, again=not first_only)

    fresh_database(url)
    for key, label in chosen:
        progress(f"{students:,} students: {label}, in-process by stage")
        scenarios[key]["inProcess"] = sync_in_process(bundle=paths[key], tenant=TENANT)

    rest_result = None
    if rest:
        from benchmarks.rest import rest_measure

        progress(f"{students:,} students: REST extraction from the local OneRoster server")
        rest_result = rest_measure(bundle, tenant=f"{TENANT}-rest")

    for key, _ in chosen:
        total_rows = sum((changed_rows if key == "changed" else rows).values())
        result = scenarios[key]
        result["bundleRows"] = total_rows
        result["rowsPerSecond"] = round(total_rows / result["command"]["seconds"])
        counts, free = wanted[key]
        result["checks"] = [
            f"{how}: {problem}"
            for how in ("command", "inProcess")
            for problem in stat_problems(result[how]["stats"], counts, free)
        ]
    return {
        "students": students,
        "bundleRows": rows,
        "bundleRowsTotal": sum(rows.values()),
        "changedBundleRowsTotal": sum(changed_rows.values()),
        "expectedChanges": expected,
        "scenarios": scenarios,
        "floor": floor,
        "oursOverFloor": {
            key: round(scenarios[key]["command"]["seconds"] / floor[key]["seconds"], 2)
            for key in ("first", "noChange")
            if key in scenarios and key in floor
        },
        "restExtraction": rest_result,
        "databaseBytesAfterCommandRuns": database_bytes,
        "rosterBytes": roster_bytes,
        "largestTables": biggest,
    }


def progress(message: str) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def targets(sizes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """SPEC §8's figures, against what this run measured (None: not measured in this run)."""
    by_size = {size["students"]: size for size in sizes if "error" not in size}
    if not by_size:
        return []

    def seconds(students: int, scenario: str) -> float | None:
        result = by_size.get(students, {}).get("scenarios", {}).get(scenario)
        return result["command"]["seconds"] if result else None

    peak = max(
        result["command"]["peakRssBytes"]
        for size in by_size.values()
        for result in size["scenarios"].values()
    )
    largest = by_size[max(by_size)]
    rows = [
        ("first full sync, 100,000 students (s)", 45, seconds(100_000, "first")),
        ("re-sync with no changes, 100,000 students (s)", 15, seconds(100_000, "noChange")),
        ("first full sync, 1,000,000 students (s)", 360, seconds(1_000_000, "first")),
        ("peak memory of the syncing process, any size (MB)", 400, round(peak / MB)),
        (
            f"first full sync / floor, {largest['students']:,} students",
            1.5,
            largest["oursOverFloor"]["first"],
        ),
    ]
    return [
        {
            "figure": figure,
            "target": target,
            "measured": measured,
            "met": None if measured is None else measured <= target,
        }
        for figure, target, measured in rows
    ]


def stats_line(stats: dict[str, dict[str, int]]) -> str:
    parts = []
    for entity, counts in stats.items():
        shown = " ".join(
            f"{letter}{counts.get(key, 0):,}" for key, letter in STAT_LETTERS if counts.get(key)
        )
        parts.append(f"{entity} {shown or '-'}")
    return "; ".join(parts)


def floor_steps(load: dict[str, Any]) -> str:
    return (
        f"copy {load['copySeconds']:.1f}s + load {load['loadSeconds']:.1f}s + cleanup "
        f"{load['cleanupSeconds']:.1f}s"
    )


def render(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"SIS Sync benchmark, {report['startedAt']} - {machine['cpus']} CPUs, "
        f"PostgreSQL {machine['postgres']['version']}, Python {machine['python']}, "
        f"load average {machine['loadAverageAtStart'][0]:.2f} at start, "
        f"{machine['loadAverageAtEnd'][0]:.2f} at end",
    ]
    header = (
        f"{'':21}{'wall s':>8}{'rows/s':>9}{'peak MB':>9} |{'extr+stage':>11}{'plan':>7}"
        f"{'apply':>7}{'finish':>7}{'total':>7} |{'floor s':>8}{'ours/floor':>11}"
    )
    for size in report["sizes"]:
        if "error" in size:
            lines += ["", f"District of {size['students']:,} students: FAILED", size["error"]]
            continue
        lines += [
            "",
            f"District of {size['students']:,} students: {size['bundleRowsTotal']:,} rows "
            f"({size['changedBundleRowsTotal']:,} in the changed bundle)",
            f"{'':21}{'command (child process)':^26} |{'in-process, by stage (s)':^39} |"
            f"{'floor':^19}",
            header,
        ]
        for key, label in SCENARIOS:
            if key not in size["scenarios"]:
                continue
            result = size["scenarios"][key]
            command, stages = result["command"], result["inProcess"]
            floor = size["floor"].get(key)
            floor_cells = (
                f"{floor['seconds']:>8.1f}{size['oursOverFloor'][key]:>11.2f}"
                if floor
                else f"{'-':>8}{'-':>11}"
            )
            lines.append(
                f"{label:<21}{command['seconds']:>8.1f}{result['rowsPerSecond']:>9,}"
                f"{command['peakRssBytes'] / MB:>9.0f} |{stages['extractStageSeconds']:>11.1f}"
                f"{stages['planSeconds']:>7.1f}{stages['applySeconds']:>7.1f}"
                f"{stages['finishSeconds']:>7.1f}{stages['seconds']:>7.1f} |{floor_cells}"
            )
        for key, label in SCENARIOS:
            if key not in size["scenarios"]:
                continue
            lines.append(f"  {label}: {stats_line(size['scenarios'][key]['command']['stats'])}")
            lines += [f"  CHECK FAILED {problem}" for problem in size["scenarios"][key]["checks"]]
        floor = size["floor"]
        again = f"; no change: {floor_steps(floor['noChange'])}" if "noChange" in floor else ""
        lines.append(f"  floor first: {floor_steps(floor['first'])}{again}")
        lines.append(
            "  database after the command runs: "
            f"{size['databaseBytesAfterCommandRuns'] / MB:,.0f} MB (roster tables "
            f"{size['rosterBytes'] / MB:,.0f} MB; the floor's targets "
            f"{floor['targetBytes'] / MB:,.0f} MB)"
        )
        biggest = ", ".join(
            f"{table} {nbytes / MB:,.0f}" for table, nbytes in size["largestTables"].items()
        )
        lines.append(f"  largest tables (MB): {biggest}")
        rest = size.get("restExtraction")
        if rest:
            lines.append(
                "  REST extraction (local OneRoster server, "
                f"{rest['latencySeconds'] * 1000:.0f} ms a page, {rest['pageSize']:,} a page, "
                f"{rest['concurrency']} at a time): "
                f"{rest['seconds']:.1f} s for {rest['pages']:,} pages, "
                f"{rest['rowsPerSecond']:,} rows/s; latency bound {rest['boundSeconds']:.1f} s "
                f"(ours/bound {rest['oursOverBound']}), one page at a time "
                f"{rest['sequentialBoundSeconds']:.1f} s"
            )
    lines += ["", "SPEC §8 targets"]
    for row in report["targets"]:
        measured = "not run" if row["measured"] is None else f"{row['measured']:,}"
        verdict = {None: "", True: "met", False: "MISSED"}[row["met"]]
        lines.append(f"  {row['figure']:<52} <= {row['target']:<6,} {measured:>8}  {verdict}")
    lines += [
        "",
        "stats: + created  ~ updated  = unchanged  - deactivated  ^ reactivated  x rejected",
        "wall s: the import command's wall time, start-up to exit; rows/s: bundle rows / wall s;",
        "peak MB: the command's peak RSS; stages: a second, in-process run of the same sync.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        database_name(args.database_url)
    except BenchDatabaseError as exc:
        print(f"benchmarks: {exc}", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    load_at_start = os.getloadavg()
    configure_django(args.database_url)
    database_recreate(args.database_url)
    sizes = []
    try:
        facts = server_facts(args.database_url)
        for students in args.sizes:
            try:
                sizes.append(
                    bench_size(
                        students,
                        args.database_url,
                        rest=not args.no_rest,
                        first_only=args.first_only,
                    )
                )
            except BenchError as exc:  # a failed sync: report it, go on with the next size
                progress(f"{students:,} students: FAILED: {exc}")
                sizes.append({"students": students, "error": str(exc)})
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            database_drop(args.database_url)
    report = {
        "schema": 1,
        "startedAt": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finishedAt": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgres": facts,
            "loadAverageAtStart": [round(x, 2) for x in load_at_start],
            "loadAverageAtEnd": [round(x, 2) for x in os.getloadavg()],
        },
        "sizes": sizes,
    }
    report["targets"] = targets(sizes)
    RESULTS_DIR.mkdir(exist_ok=True)
    label = "students-" + "-".join(str(s) for s in args.sizes)
    path = RESULTS_DIR / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{label}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(render(report))
    print(f"\nwrote benchmarks/results/{path.name}")
    failed = any(
        "error" in size or any(r["checks"] for r in size["scenarios"].values()) for size in sizes
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
