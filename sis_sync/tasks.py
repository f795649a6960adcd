"""Celery tasks: thin wrappers over the pipeline's domain functions; they take run ids only."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from sis_sync.sync import sync_run_inline


@shared_task(name="sis_sync.run_sync", acks_late=True, ignore_result=True)
def run_sync(run_id: int) -> None:
    sync_run_inline(run_id=run_id)


def enqueue_run(run_id: int) -> None:
    """Hands a PENDING run to the workers once the run row is committed."""
    transaction.on_commit(lambda: run_sync.delay(run_id))
