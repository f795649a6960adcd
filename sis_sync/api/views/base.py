"""What every API view shares: the actor, input parsing, pages, refusals in the audit trail,
and the error responses every operation documents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sis_sync.api.access import tenant_for
from sis_sync.api.pagination import LimitOffset
from sis_sync.api.serializers import ErrorOut
from sis_sync.audit import REFUSED, audit_record
from sis_sync.errors import SyncError
from sis_sync.models import Tenant


class JsonOnly(DefaultContentNegotiation):
    """Always JSON, whatever Accept says: the rejects CSV is asked for with ?format=csv."""

    def select_renderer(self, request: Request, renderers: list[Any], format_suffix: Any = None):
        return renderers[0], renderers[0].media_type


class ApiView(APIView):
    content_negotiation_class = JsonOnly

    @property
    def actor(self) -> str:
        return self.request.user.get_username()

    def paginated(
        self,
        rows: QuerySet,
        serializer: type[serializers.Serializer],
        context: Any = None,
    ) -> Response:
        """A page of `rows`; `context(page)` may add serializer context for the page's rows."""
        paginator = LimitOffset()
        page = paginator.paginate_queryset(rows, self.request, view=self)
        extra = context(page) if context else {}
        return paginator.get_paginated_response(serializer(page, many=True, context=extra).data)


class TenantScoped(ApiView):
    """A view under /tenants/{tenantId}/: `self.tenant` is the path's tenant, or 404."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        self.tenant: Tenant = tenant_for(request, kwargs["tenantId"])


def parse(serializer: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validated input, or a 400 naming each bad field."""
    checked = serializer(data=data)
    checked.is_valid(raise_exception=True)
    return dict(checked.validated_data)


@contextmanager
def refusals_audited(
    action: str,
    *,
    actor: str,
    target: Model | None = None,
    tenant: Tenant | None = None,
    unless: tuple[type[Exception], ...] = (),
    details: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Records a domain refusal of a mutating call the domain function did not record itself."""
    try:
        yield
    except SyncError as exc:
        if not isinstance(exc, unless):
            audit_record(
                action,
                actor=actor,
                target=target,
                tenant=tenant,
                outcome=REFUSED,
                message=exc.message,
                details=details,
            )
        raise


# ------------------------------------------------------------------ OpenAPI helpers


def errors(*codes: int) -> dict[int, Any]:
    """The error responses of an operation: always 400, 401, 403, 404 and 429; plus `codes`."""
    return {code: ErrorOut for code in sorted({400, 401, 403, 404, 429, *codes})}


@cache
def page_of(item: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The schema of a limit/offset page of `item`s."""
    name = item.__name__.removesuffix("Out")
    return type(
        f"{name}Page",
        (serializers.Serializer,),
        {
            "__module__": __name__,
            "count": serializers.IntegerField(help_text="How many there are in all."),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="Page size (default 20, at most 500)."),
    OpenApiParameter("offset", int, description="How many to skip."),
]
TENANT_PARAMETER = OpenApiParameter(
    "tenantId", str, OpenApiParameter.PATH, description="The tenant's slug."
)
