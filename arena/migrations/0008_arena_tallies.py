"""Every existing arena gets its tally row now; new arenas get one when they are created."""

from __future__ import annotations

from typing import Any

from django.db import migrations


def create_tallies(apps: Any, schema_editor: Any) -> None:
    Arena = apps.get_model("arena", "Arena")
    ArenaTally = apps.get_model("arena", "ArenaTally")
    have = set(ArenaTally.objects.values_list("arena_id", flat=True))
    ArenaTally.objects.bulk_create(
        [
            ArenaTally(arena_id=pk)
            for pk in Arena.objects.values_list("pk", flat=True)
            if pk not in have
        ]
    )


class Migration(migrations.Migration):
    dependencies = [("arena", "0007_audit_log_names")]

    operations = [migrations.RunPython(create_tallies, migrations.RunPython.noop)]
