"""Conflict layer 'external': rule C9 records conflicts with items of external sources (interop.ExternalItem)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('roadworks', '0006_history'),  # after the history tables (issue 7); was 0005
    ]

    operations = [
        migrations.AlterField(
            model_name='conflict',
            name='layer',
            field=models.CharField(blank=True, choices=[('black_spot', 'Accident black spot'), ('moratorium', 'Moratorium area'), ('event', 'Event'), ('corridor', 'Corridor'), ('public_transport', 'Public transport'), ('emergency_route', 'Emergency route'), ('incident', 'Incident'), ('external', 'External source')], max_length=32, verbose_name='layer'),
        ),
    ]
