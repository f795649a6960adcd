"""Roles (SPEC §5): a platform admin manages every tenant, a district admin their own."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from sis_sync.errors import BadRequest
from sis_sync.models import AdminRole, Membership, Tenant

User = AbstractBaseUser | AnonymousUser


def is_platform_admin(user: User) -> bool:
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return Membership.objects.filter(user=user, role=AdminRole.PLATFORM_ADMIN).exists()


def has_role(user: User) -> bool:
    """Whether the user may use the API or the admin at all."""
    return user.is_authenticated and (
        getattr(user, "is_superuser", False) or Membership.objects.filter(user=user).exists()
    )


def visible_tenants(user: User) -> QuerySet[Tenant]:
    """The tenants the user may see: all for a platform admin, their own for a district admin."""
    if is_platform_admin(user):
        return Tenant.objects.all()
    if not user.is_authenticated:
        return Tenant.objects.none()
    return Tenant.objects.filter(
        memberships__user=user, memberships__role=AdminRole.DISTRICT_ADMIN
    ).distinct()


def membership_set(*, user: AbstractBaseUser, role: str, tenant: Tenant | None) -> Membership:
    """Gives a user a role; a district admin's tenant is required, a platform admin has none."""
    if role not in AdminRole.values:
        raise BadRequest(f"role must be {' or '.join(AdminRole.values)}, not {role!r}")
    if role == AdminRole.PLATFORM_ADMIN:
        tenant = None
    elif tenant is None:
        raise BadRequest("a DISTRICT_ADMIN needs a tenant (--tenant SLUG)")
    membership, _ = Membership.objects.update_or_create(
        user=user, tenant=tenant, defaults={"role": role}
    )
    return membership
