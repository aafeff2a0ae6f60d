from django.db import migrations, models


class Migration(migrations.Migration):
    """Battles a voter has voted on in an arena, newest first: every new battle reads the
    outputs its voter has seen revealed (issue 10). Before it, that read scanned all the
    arena's voted battles."""

    dependencies = [
        ("arena", "0017_backend_checks"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="battle",
            index=models.Index(
                condition=models.Q(("state", "voted")),
                fields=["voter", "arena", "-id"],
                name="battle_voter_revealed_idx",
            ),
        ),
    ]
