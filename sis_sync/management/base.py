"""What every SIS Sync command shares: exit codes (SPEC §5), one-line errors, run output."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from connectors.base import ConnectorError
from loader.planner import STAT_KEYS
from sis_sync.errors import SyncError
from sis_sync.models import RunStatus, SisProvider, SisSyncRun

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_RUNNING, EXIT_HELD = 0, 1, 2, 3, 4


def exit_code_for(run: SisSyncRun) -> int:
    if run.status in (RunStatus.SUCCESS, RunStatus.PARTIAL):
        return EXIT_OK
    if run.status == RunStatus.HELD:
        return EXIT_HELD
    return EXIT_FAILED


def run_json(run: SisSyncRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "providerId": run.provider_id,
        "status": run.status,
        "mode": run.mode,
        "dryRun": run.dry_run,
        "stats": run.stats,
        "errorMessage": run.error_message,
    }


class SisCommand(BaseCommand):
    """Turns domain errors into one readable stderr line and the SPEC's exit code."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError:
            raise
        except SyncError as exc:
            raise CommandError(exc.message, returncode=exc.exit_code) from exc
        except ConnectorError as exc:
            raise CommandError(exc.message, returncode=EXIT_FAILED) from exc
        except Exception as exc:
            if options.get("traceback"):
                raise
            raise CommandError(f"{type(exc).__name__}: {exc}", returncode=EXIT_FAILED) from exc

    def get_provider(self, provider_id: int) -> SisProvider:
        provider = SisProvider.objects.select_related("tenant").filter(pk=provider_id).first()
        if provider is None:
            raise CommandError(f"No provider with id {provider_id}", returncode=EXIT_BAD_INPUT)
        return provider

    def print_run(self, run: SisSyncRun, *, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(run_json(run), ensure_ascii=False))
            return
        self.stdout.write(f"Run {run.pk} of provider {run.provider_id}: {run.status}")
        if run.error_message:
            self.stdout.write(f"  {run.error_message}")
        for entity in ("schools", "classes", "users", "enrollments"):
            counts = (run.stats or {}).get(entity)
            if counts:
                shown = ", ".join(f"{k} {counts.get(k, 0):,}" for k in STAT_KEYS)
                self.stdout.write(f"  {entity:<12} {shown}")
        if run.stats.get("durationSeconds") is not None:
            self.stdout.write(f"  took {run.stats['durationSeconds']:.1f}s")

    def finish_with(self, run: SisSyncRun) -> None:
        code = exit_code_for(run)
        if code != EXIT_OK:
            self.stdout.flush()
            sys.exit(code)


class ProgressBar:
    """A one-line progress display on a terminal; silent when stderr is not one."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.enabled = hasattr(stream, "isatty") and stream.isatty()
        self.shown = False

    def __call__(self, run: SisSyncRun) -> None:
        if not self.enabled:
            return
        progress = run.progress or {}
        detail = ""
        if progress.get("entity"):
            detail = f" {progress['entity']}: {progress.get('rows', 0):,} rows"
        self.stream.write(f"\r\033[K[{run.phase}]{detail}")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
