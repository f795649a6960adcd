"""The benchmark's own PostgreSQL database: created fresh for each track, then dropped.

Dropping a database is not something to do by accident, so only a database whose name
contains "bench" is ever created or dropped here.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


class BenchDatabaseError(Exception):
    """The database URL cannot be used for a benchmark; the message says why."""


def database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name:
        raise BenchDatabaseError(f"--database-url names no database: {_without_password(url)}")
    if "bench" not in name:
        raise BenchDatabaseError(
            f"refusing to drop and re-create {name!r}: the benchmark's database name must "
            "contain 'bench' (for example sis_bench)"
        )
    return name


def _maintenance_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def database_recreate(url: str) -> None:
    """Drops the database if it exists (closing its connections) and creates it empty."""
    name = sql.Identifier(database_name(url))
    with psycopg.connect(_maintenance_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def database_drop(url: str) -> None:
    name = sql.Identifier(database_name(url))
    with psycopg.connect(_maintenance_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def server_facts(url: str) -> dict[str, str]:
    """The server's version and the settings that move these numbers most."""
    with psycopg.connect(url) as conn:
        facts = {"version": conn.execute("SHOW server_version").fetchone()[0]}
        for setting in ("shared_buffers", "max_wal_size", "synchronous_commit", "fsync"):
            facts[setting] = conn.execute(
                sql.SQL("SHOW {}").format(sql.Identifier(setting))
            ).fetchone()[0]
    return facts


def database_size(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]


def tables_size(url: str, tables: tuple[str, ...]) -> int:
    """Bytes on disk of these tables, their indexes and TOAST included."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(t::regclass)), 0)::bigint "
            "FROM unnest(%s::text[]) AS t",
            [list(tables)],
        ).fetchone()[0]


def largest_tables(url: str, how_many: int) -> dict[str, int]:
    """The biggest tables (indexes and TOAST included), in bytes, biggest first."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC LIMIT %s",
            [how_many],
        ).fetchall()
    return dict(rows)
