from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

ENTITIES = ("schools", "classes", "users", "enrollments")
ROLES = ("student", "teacher", "administrator", "contact")
DEFAULT_DELETION_THRESHOLD = 0.10
DEFAULT_UPDATE_THRESHOLD = 0.75


class OptionsError(ValueError):
    """A provider option has a value the loader cannot use."""


def _thresholds(value: Any, default: float, name: str) -> dict[str, float]:
    if value is None:
        return dict.fromkeys(ENTITIES, default)
    if isinstance(value, bool):
        raise OptionsError(f"{name} must be a number between 0 and 1, or an object per entity")
    if isinstance(value, int | float):
        per_entity = dict.fromkeys(ENTITIES, float(value))
    elif isinstance(value, dict):
        unknown = set(value) - set(ENTITIES)
        if unknown:
            raise OptionsError(f"{name} has unknown entity types: {', '.join(sorted(unknown))}")
        try:
            per_entity = {e: float(value.get(e, default)) for e in ENTITIES}
        except (TypeError, ValueError):
            raise OptionsError(f"{name} per entity must be numbers between 0 and 1") from None
    else:
        raise OptionsError(f"{name} must be a number between 0 and 1, or an object per entity")
    for entity, number in per_entity.items():
        if not 0 <= number <= 1:
            raise OptionsError(f"{name} for {entity} must be between 0 and 1, not {number}")
    return per_entity


def _string_list(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise OptionsError(f"{name} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class LoadOptions:
    create_users: bool = True
    deactivate_missing: bool = True
    deletion_threshold: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(ENTITIES, DEFAULT_DELETION_THRESHOLD)
    )
    update_threshold: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(ENTITIES, DEFAULT_UPDATE_THRESHOLD)
    )
    school_filter: tuple[str, ...] | None = None
    roles: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, options: dict[str, Any]) -> LoadOptions:
        """Provider options (SPEC §2) as the loader uses them; OptionsError names a bad one."""
        # includeContacts is the Clever connector's (contacts become people with role
        # contact); checked here with the other options so a bad value is refused on save.
        for flag in ("createUsers", "deactivateMissing", "includeContacts"):
            if flag in options and not isinstance(options[flag], bool):
                raise OptionsError(f"{flag} must be true or false")
        roles = _string_list(options.get("roles"), "roles")
        if roles and set(roles) - set(ROLES):
            raise OptionsError("roles may hold student, teacher, administrator and contact")
        if roles and "contact" in roles and options.get("includeContacts") is not True:
            raise OptionsError(
                "roles names contact, but contacts are synced only with includeContacts: true "
                "(Clever providers)"
            )
        return cls(
            create_users=options.get("createUsers", True),
            deactivate_missing=options.get("deactivateMissing", True),
            deletion_threshold=_thresholds(
                options.get("deletionThreshold"), DEFAULT_DELETION_THRESHOLD, "deletionThreshold"
            ),
            update_threshold=_thresholds(
                options.get("updateThreshold"), DEFAULT_UPDATE_THRESHOLD, "updateThreshold"
            ),
            school_filter=_string_list(options.get("schoolFilter"), "schoolFilter"),
            roles=roles,
        )


@dataclass(frozen=True)
class LoadContext:
    run_id: int
    provider_id: int
    tenant_id: int
    modes: dict[str, str]  # entity -> "full" | "delta" | "absent"
    options: LoadOptions
    now: dt.datetime
    # Full syncs are checked against the thresholds; delta syncs are not (SPEC §3).
    check_thresholds: bool = True

    def mode(self, entity: str) -> str:
        return self.modes.get(entity, "absent")

    def included(self, entity: str) -> bool:
        return self.mode(entity) != "absent"
