"""Staging is rebuilt by re-running a sync, so on PostgreSQL it skips the write-ahead log."""

from django.db import migrations

TABLES = ("sis_raw_schools", "sis_raw_classes", "sis_raw_users", "sis_raw_enrollments")


def set_logged(apps, schema_editor, logged: bool) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(f"ALTER TABLE {table} SET {'LOGGED' if logged else 'UNLOGGED'}")


class Migration(migrations.Migration):
    dependencies = [("staging", "0001_staging_tables_and_rejects")]

    operations = [
        migrations.RunPython(
            lambda apps, se: set_logged(apps, se, False),
            lambda apps, se: set_logged(apps, se, True),
        )
    ]
