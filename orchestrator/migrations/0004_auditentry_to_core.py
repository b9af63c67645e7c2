"""The audit log joins the core, keeping its table (``approvals_auditentry``): state only.
approvals' 0004 dropped its database link to approvals and removed it from that app's state."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orchestrator", "0003_budgets"),
        ("approvals", "0004_auditentry_to_core"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
        migrations.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('kind', models.CharField(choices=[('decision', 'decision'), ('expiry', 'expired'), ('claim', 'claimed'), ('release', 'released'), ('budget', 'budget change')], max_length=12)),
                ('actor_name', models.CharField(blank=True, help_text='The username at the time; empty for Loopgate itself.', max_length=150)),
                ('approval_id', models.UUIDField(blank=True, db_index=True, help_text='The approval it concerns, if one (approvals.Approval).', null=True)),
                ('graph_name', models.CharField(blank=True, db_index=True, max_length=200)),
                ('action', models.CharField(blank=True, help_text='What it was about: the action names.', max_length=200)),
                ('outcome', models.CharField(blank=True, help_text='approved, edited, rejected, expired, …', max_length=40)),
                ('detail', models.JSONField(blank=True, default=dict, help_text='The decisions, the resume value, old → new.')),
                ('comment', models.TextField(blank=True)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('execution', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='orchestrator.execution')),
            ],
            options={
                'db_table': 'approvals_auditentry',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['actor_name', 'created_at'], name='audit_actor_created')],
            },
        ),
        ]),
    ]
