"""Who sees what in the admin (SPEC §5 roles).

Django's model permissions are not how SIS Sync grants access: a platform admin sees every
tenant, a district admin their own tenant only, anyone else nothing. Every SIS Sync model admin
derives from `TenantScopedAdmin`, which scopes the queryset (so lists, search, and object
lookups by URL all stop at the tenant's edge: another tenant's object answers 404), the
foreign-key choices and the list filters.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest

from sis_sync.access import has_role, is_platform_admin, visible_tenants
from sis_sync.models import SisProvider, Tenant

_CACHE = "_sis_sync_roles"


def roles(request: HttpRequest) -> tuple[bool, bool]:
    """(may use the admin at all, is a platform admin), asked once per request."""
    cached = getattr(request, _CACHE, None)
    if cached is None:
        user = request.user
        cached = (has_role(user), is_platform_admin(user))
        setattr(request, _CACHE, cached)
    return cached


def may_use(request: HttpRequest) -> bool:
    return roles(request)[0]


def is_platform(request: HttpRequest) -> bool:
    return roles(request)[1]


def tenants_of(request: HttpRequest) -> QuerySet[Tenant]:
    return visible_tenants(request.user)


class TenantScopedAdmin(admin.ModelAdmin):
    """A model admin whose objects belong to a tenant through `tenant_path`.

    Read-only unless a subclass says otherwise (`editable = True`); nothing is ever deleted
    from the admin: providers are disabled, runs and the roster are history.
    """

    tenant_path = "tenant"
    editable = False
    show_full_result_count = False  # a count(*) per page view is slow on a big roster

    # -- scope ---------------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if not may_use(request):
            return queryset.none()
        if is_platform(request):
            return queryset
        return queryset.filter(**{f"{self.tenant_path}__in": tenants_of(request)})

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Model:
        """An object outside the user's tenants answers 404, as if it did not exist."""
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id!r}")
        return obj

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.remote_field.model
        if related is Tenant:
            kwargs["queryset"] = tenants_of(request)
        elif related is SisProvider:
            kwargs["queryset"] = SisProvider.objects.filter(tenant__in=tenants_of(request))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        if is_platform(request) and self.tenant_path == "tenant":
            filters.append("tenant")
        return filters

    # -- permissions: by role, not by Django model permissions ---------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_use(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_use(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.editable and may_use(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.editable and may_use(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def scoped_filter(
    *, title: str, parameter: str, field: str, choices: Any
) -> type[admin.SimpleListFilter]:
    """A list filter over a related object whose choices stop at the user's tenants.

    Django's default related-field filter would list every tenant's schools or providers.
    `choices(request)` returns (value, label) pairs.
    """

    class ScopedFilter(admin.SimpleListFilter):
        def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
            return list(choices(request))

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            value = self.value()
            if value is None:
                return queryset
            if not str(value).isdigit():
                return queryset.none()
            return queryset.filter(**{field: int(value)})

    ScopedFilter.title = title
    ScopedFilter.parameter_name = parameter
    ScopedFilter.__name__ = f"Scoped{parameter.title()}Filter"
    return ScopedFilter
