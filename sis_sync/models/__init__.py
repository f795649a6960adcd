"""Models: tenants, the platform roster, the external-identity map, providers and sync runs."""

from sis_sync.models.access import AdminRole, AuditEvent, Membership
from sis_sync.models.bridge import (
    ScimChange,
    ScimChangeStatus,
    ScimLink,
    ScimResource,
    ScimTarget,
    SeatAssignment,
    SeatState,
    WebhookEvent,
    WebhookEventState,
)
from sis_sync.models.metrics import MetricCounter
from sis_sync.models.providers import ProviderType, SisProvider
from sis_sync.models.roster import (
    Classroom,
    ContactRelationship,
    Enrollment,
    EntityType,
    ExternalIdentity,
    Person,
    PersonSchool,
    Role,
    School,
)
from sis_sync.models.runs import PlannedDeactivation, RunMode, RunPhase, RunStatus, SisSyncRun
from sis_sync.models.tenants import Tenant

__all__ = [
    "AdminRole",
    "AuditEvent",
    "Membership",
    "Classroom",
    "ContactRelationship",
    "Enrollment",
    "EntityType",
    "ExternalIdentity",
    "Person",
    "PersonSchool",
    "PlannedDeactivation",
    "ProviderType",
    "MetricCounter",
    "Role",
    "RunMode",
    "RunPhase",
    "RunStatus",
    "School",
    "ScimChange",
    "ScimChangeStatus",
    "ScimLink",
    "ScimResource",
    "ScimTarget",
    "SeatAssignment",
    "SeatState",
    "WebhookEvent",
    "WebhookEventState",
    "SisProvider",
    "SisSyncRun",
    "Tenant",
]
