# SIS Sync: one target per habit. `make demo` and `make test` do all their own set-up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# The PostgreSQL pass of the suite; pytest-django creates (and drops) test_<name> on it.
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/sis_sync
DEMO_TENANT ?= demo-district

.PHONY: install demo test test-sqlite test-postgres lint format bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) manage.py migrate --noinput --verbosity 0
	$(PY) manage.py import_oneroster_csv sample_data/district-small --tenant $(DEMO_TENANT)
	$(PY) manage.py demo_setup --tenant $(DEMO_TENANT)
	$(PY) manage.py runserver 127.0.0.1:8000

test: test-sqlite test-postgres

# The embedded default: SQLite (in memory for tests), tasks in-process, no Redis.
test-sqlite: install
	env -u DATABASE_URL -u REDIS_URL $(PY) -m pytest -m "not postgres" -p no:cacheprovider

# PostgreSQL: required in CI (CI=true); skipped with a warning elsewhere when not reachable.
test-postgres: install
	@if $(PY) -m tests.pg_ready "$(PG_TEST_URL)"; then \
		DATABASE_URL="$(PG_TEST_URL)" SIS_SYNC_EXPECT_DB=postgresql \
			$(PY) -m pytest -p no:cacheprovider; \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL is not reachable at $(PG_TEST_URL): CI requires it" >&2; exit 1; \
	else \
		echo "WARNING: PostgreSQL not reachable at $(PG_TEST_URL): PostgreSQL pass skipped" >&2; \
	fi

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	env -u DATABASE_URL $(PY) manage.py makemigrations --check --dry-run

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Minutes, on PostgreSQL (drops and re-creates the database sis_bench); not part of `make test`.
# BENCH_ARGS="--students 10000,100000 --million" adds the 1,000,000-student district.
BENCH_ARGS ?= --students 10000,100000
bench: install
	$(PY) -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var db.sqlite3 db.sqlite3-*
