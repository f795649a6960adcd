"""Runs: one run with its stats, its rejects (JSON or streamed CSV), approve / discard."""

from __future__ import annotations

from typing import Any

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
from sis_sync.exports import rejects_csv
from sis_sync.listings import run_rejects
from sis_sync.runs import run_approve, run_discard

TAG = ["runs"]


class RunDetailView(ApiView):
    @extend_schema(tags=TAG, summary="One run, with its stats", responses={200: RunOut, **errors()})
    def get(self, request: Request, runId: int) -> Response:
        return Response(RunOut(run_for(request, runId)).data)


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
            response = StreamingHttpResponse(rejects_csv(rejects), content_type="text/csv")
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
