"""The loader: from a run's staging rows to the platform roster, set-based.

`plan(ctx)` validates the staged records (rejects, filters), matches them to platform entities
and decides, per record, create / update / reactivate / unchanged, and which entities a full
sync deactivates; it writes that plan into the staging rows (only those that need work: an
unchanged record keeps no action) and `sis_planned_deactivations`, and returns the counts. It
changes nothing on the roster, so a dry run or a held run stops there. `apply(ctx)` carries out
exactly the stored plan. The caller owns the transaction.
"""

from loader.applier import apply
from loader.context import LoadContext, LoadOptions
from loader.planner import plan

__all__ = ["LoadContext", "LoadOptions", "apply", "plan"]
