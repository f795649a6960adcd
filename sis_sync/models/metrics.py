from __future__ import annotations

from django.db import models


class MetricCounter(models.Model):
    """A Prometheus counter kept in the database, so every worker adds to the same number."""

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=300, default="")  # 'kind="created",entity="users"'
    value = models.FloatField(default=0)

    class Meta:
        db_table = "sis_metric_counters"
        constraints = [
            models.UniqueConstraint(fields=["name", "labels"], name="metric_counter_unique")
        ]
