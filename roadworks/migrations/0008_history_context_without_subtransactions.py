"""History triggers without a subtransaction per row: see auman/trigger_helpers.py (also installed after every
migrate, because pgtrigger rewrites its helper whenever it installs a trigger)."""

from django.db import migrations

from auman.trigger_helpers import ATTACH_CONTEXT_SQL, SHOULD_IGNORE_SQL


class Migration(migrations.Migration):
    dependencies = [
        ("roadworks", "0007_conflict_layer_external"),
        ("pghistory", "0007_auto_20250421_0444"),
    ]

    operations = [migrations.RunSQL(ATTACH_CONTEXT_SQL), migrations.RunSQL(SHOULD_IGNORE_SQL)]
