from django.db import migrations, models


class Migration(migrations.Migration):
    """The last backend check of each model (issue 14): the web host checks a config's shape,
    a worker of the model's queue checks the rest ("Check now") and reports here. Existing
    models start "not checked yet"."""

    dependencies = [
        ("arena", "0016_vote_replicates"),
    ]

    operations = [
        migrations.AddField(
            model_name="generativemodel",
            name="check_fingerprint",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="generativemodel",
            name="check_message",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.AddField(
            model_name="generativemodel",
            name="check_requested_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="generativemodel",
            name="check_status",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Not checked yet"),
                    ("pending", "Pending"),
                    ("ok", "OK"),
                    ("failed", "Failed"),
                ],
                default="",
                editable=False,
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="generativemodel",
            name="check_worker",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.AddField(
            model_name="generativemodel",
            name="checked_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
