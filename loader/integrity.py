"""The references the roster's bulk tables carry without database foreign keys, checked
set-based inside the load transaction (see sis_sync.models.roster for why).

The loader takes every parent id it writes (an enrollment's class and person, a person's
schools) from this provider's identity map, in the same transaction. So the references are
sound when the provider's identities of the parent types all point at entities of the
tenant: one anti-join per type, instead of one trigger per written row.
"""

from __future__ import annotations

from loader.context import LoadContext
from loader.db import rows
from loader.entities import IDENTITY, ORDER, SPECS


class BrokenReference(Exception):
    """The load would leave a roster row pointing at nothing; the transaction rolls back."""


def check_references(ctx: LoadContext) -> None:
    """Raises BrokenReference when an identity this load may have used points at nothing."""
    parents = {ref.entity for spec in ORDER for ref in spec.references} | {"schools"}
    for name in sorted(parents):
        spec = SPECS[name]
        found = rows(
            f"SELECT m.external_id FROM {IDENTITY} m LEFT JOIN {spec.target} e "
            f"ON e.id = m.entity_id AND e.tenant_id = %s "
            f"WHERE m.provider_id = %s AND m.entity_type = %s AND e.id IS NULL LIMIT 3",
            [ctx.tenant_id, ctx.provider_id, spec.type],
        )
        if found:
            ids = ", ".join(f'"{external_id}"' for (external_id,) in found)
            raise BrokenReference(
                f"the platform has no {spec.label} for the provider's {spec.label} id(s) {ids} "
                "(the roster was changed outside the sync?); nothing was applied"
            )
