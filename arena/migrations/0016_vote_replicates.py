from django.db import migrations, models


class Migration(migrations.Migration):
    """Vote-level bootstrap replicates on the pair tallies (issue 12: intervals that resample
    votes). Existing tallies have none: the next leaderboard rebuild of each arena builds them
    from its vote log (ArenaTally.replicates stays 0 until then)."""

    dependencies = [("arena", "0015_activity_rollup")]

    operations = [
        migrations.AddField(
            model_name="arenatally",
            name="replicates",
            field=models.PositiveSmallIntegerField(
                default=0,
                help_text="How many vote-level bootstrap replicates the pair tallies keep up to "
                "date (0: not built yet; the next leaderboard rebuild builds them from the vote "
                "log).",
            ),
        ),
        migrations.AddField(
            model_name="pairtally",
            name="replicates",
            field=models.BinaryField(default=b"", editable=False),
        ),
    ]
