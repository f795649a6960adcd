"""The safety hold (SPEC §3): a full sync that would change too much waits for a person.

An SIS outage that returns an empty or half roster looks exactly like a mass withdrawal, so
before a full sync is applied its plan is compared with what the provider has active now.
"""

from __future__ import annotations

from loader.context import LoadContext
from loader.db import scalar
from loader.entities import IDENTITY, ORDER, EntitySpec


def _active(ctx: LoadContext, spec: EntitySpec) -> int:
    if spec.own_identity:  # the target row is its own identity
        return scalar(
            f"SELECT count(*) FROM {spec.target} WHERE provider_id = %s AND is_active",
            [ctx.provider_id],
        )
    return scalar(
        f"SELECT count(*) FROM {IDENTITY} m JOIN {spec.target} e ON e.id = m.entity_id "
        "WHERE m.provider_id = %s AND m.entity_type = %s AND e.is_active",
        [ctx.provider_id, spec.type],
    )


def _staged(ctx: LoadContext, staging: str) -> int:
    return scalar(f"SELECT count(*) FROM {staging} WHERE run_id = %s", [ctx.run_id])


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value * 100 == int(value * 100) else f"{value * 100:.1f}%"


def hold_reasons(ctx: LoadContext, stats: dict[str, dict[str, int]]) -> list[str]:
    """Why this plan must wait for approval; empty when it may be applied."""
    if not ctx.check_thresholds:
        return []
    reasons = []
    for spec in ORDER:
        if ctx.mode(spec.name) != "full":
            continue
        active = _active(ctx, spec)
        if not active:
            continue  # nothing to lose: a first sync, or a provider whose entities are all gone
        if not _staged(ctx, spec.staging):
            reasons.append(
                f"{spec.name}: the source sent no {spec.name} at all, but {active:,} are active; "
                "an empty collection is never read as everyone leaving"
            )
            continue
        counts = stats[spec.name]
        for key, limit, verb in (
            ("deactivated", ctx.options.deletion_threshold[spec.name], "deactivate"),
            ("updated", ctx.options.update_threshold[spec.name], "update"),
        ):
            share = counts[key] / active
            if share > limit:
                reasons.append(
                    f"{spec.name}: would {verb} {counts[key]:,} of {active:,} active "
                    f"({_percent(share)}), over the {_percent(limit)} threshold"
                )
    return reasons
