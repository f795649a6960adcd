"""Runs: one run with its stats, its rejects (JSON or streamed CSV), approve / discard."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from sis_sync.api.access import run_for
from sis_sync.api.serializers import RejectOut, RejectsQuery, RunOut
from sis_sync.api.views.base import (
    PAGE_PARAMETERS,
    ApiView,
    errors,
    page_of,
    parse,
    refusals_audited,
)
from sis_sync.listings import run_rejects
from sis_sync.runs import run_approve, run_discard

TAG = ["runs"]
CSV_COLUMNS = ("entity", "externalId", "reason", "line", "raw")


class RunDetailView(ApiView):
    @extend_schema(tags=TAG, summary="One run, with its stats", responses={200: RunOut, **errors()})
    def get(self, request: Request, runId: int) -> Response:
        return Response(RunOut(run_for(request, runId)).data)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    """Spreadsheets run a cell that starts with = + - @ as a formula: rejects are SIS data."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_rows(rejects: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for reject in rejects.iterator(chunk_size=2000):
        yield writer.writerow(
            [_cell(reject.entity), _cell(reject.external_id), _cell(reject.reason), reject.line,
             _cell(reject.raw)]
        )  # fmt: skip


class RunRejectsView(ApiView):
    @extend_schema(
        tags=TAG,
        summary="A run's rejected records",
        description="JSON pages, or with `?format=csv` every reject as one streamed CSV file "
        "(columns entity, externalId, reason, line, raw).",
        parameters=[RejectsQuery, *PAGE_PARAMETERS],
        responses={
            (200, "application/json"): page_of(RejectOut),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="?format=csv"),
            **errors(),
        },
    )
    def get(self, request: Request, runId: int) -> Any:
        run = run_for(request, runId)
        query = parse(RejectsQuery, request.query_params)
        rejects = run_rejects(run=run, entity=query.get("entity"))
        if query.get("format") == "csv":
            response = StreamingHttpResponse(_csv_rows(rejects), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-rejects.csv"'
            return response
        return self.paginated(rejects, RejectOut)


class RunApproveView(ApiView):
    @extend_schema(
        tags=TAG,
        summary="Apply a HELD run's plan",
        description="Applies exactly the plan that was held, unless a newer sync has loaded "
        "since. 409 if the run is not HELD or a newer sync has loaded.",
        request=None,
        responses={200: RunOut, **errors(409)},
    )
    def post(self, request: Request, runId: int) -> Response:
        run = run_for(request, runId)
        with refusals_audited("run.approved", actor=self.actor, target=run):
            run = run_approve(run=run, decided_by=self.actor)
        return Response(RunOut(run).data)


class RunDiscardView(ApiView):
    @extend_schema(
        tags=TAG,
        summary="Drop a HELD run's plan",
        description="The run ends DISCARDED; the roster is unchanged. 409 if it is not HELD.",
        request=None,
        responses={200: RunOut, **errors(409)},
    )
    def post(self, request: Request, runId: int) -> Response:
        run = run_for(request, runId)
        with refusals_audited("run.discarded", actor=self.actor, target=run):
            run = run_discard(run=run, decided_by=self.actor)
        return Response(RunOut(run).data)
