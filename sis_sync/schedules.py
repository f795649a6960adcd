"""Sync schedules (SPEC §4): a 5-field cron expression or a preset name."""

from __future__ import annotations

from celery.schedules import crontab

from sis_sync.errors import BadRequest

PRESETS = {
    "daily": "0 2 * * *",
    "twice-daily": "0 2,14 * * *",
    "every-6-hours": "0 */6 * * *",
    "weekdays": "0 6 * * 1-5",
    "hourly": "0 * * * *",
    "weekly": "0 0 * * 0",
}


def normalize_schedule(value: str | None) -> str | None:
    """The cron expression for a schedule or preset; None for manual-only; BadRequest if bad."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip()
    text = PRESETS.get(text.lower(), text)
    fields = text.split()
    if len(fields) != 5:
        raise BadRequest(
            f"syncSchedule {value!r} is neither a preset ({', '.join(PRESETS)}) "
            "nor a 5-field cron expression"
        )
    minute, hour, day_of_month, month, day_of_week = fields
    try:
        crontab(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year=month,
            day_of_week=day_of_week,
        )
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"syncSchedule {value!r} is not a valid cron expression: {exc}") from None
    return " ".join(fields)
