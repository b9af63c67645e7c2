"""The ledger of LLM calls (``TokenCharge``), which costs and usage are read from; traces' 0002 fills
it from the LLM spans recorded before it existed."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orchestrator", "0004_auditentry_to_core")]

    operations = [
        migrations.CreateModel(
            name='TokenCharge',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('status', models.CharField(choices=[('settled', 'settled'), ('refused', 'refused')], default='settled', max_length=10)),
                ('model', models.CharField(blank=True, max_length=200)),
                ('step', models.IntegerField(blank=True, null=True)),
                ('node', models.CharField(blank=True, max_length=200)),
                ('input_tokens', models.BigIntegerField(default=0)),
                ('output_tokens', models.BigIntegerField(default=0)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('execution', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='charges', to='orchestrator.execution')),
            ],
            options={
                'indexes': [models.Index(fields=['execution', 'model'], name='charge_execution_model')],
            },
        ),
    ]
