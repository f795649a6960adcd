"""`python -m tests.pg_ready URL`: exit 0 when PostgreSQL at URL accepts connections."""

from __future__ import annotations

import sys
from urllib.parse import urlparse

import psycopg


def main(url: str) -> int:
    parts = urlparse(url)
    try:
        with psycopg.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=parts.username or "postgres",
            password=parts.password or None,
            dbname="postgres",
            connect_timeout=5,
        ):
            return 0
    except psycopg.Error as exc:
        print(f"PostgreSQL not reachable: {exc}".strip(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
