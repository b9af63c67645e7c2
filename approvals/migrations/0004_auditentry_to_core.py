"""The audit log moves to the core (orchestrator.AuditEntry), keeping its table.

1. Its link to an approval stops being a database foreign key (the core knows no
   approvals table; an approval deleted with its execution must not be blocked by
   its audit lines), keeping the column ``approval_id``.
2. The model leaves this app's state; orchestrator's 0004 takes it over.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("approvals", "0003_approval_forked")]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="approval",
            field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=models.SET_NULL,
                                    related_name="audit", to="approvals.approval"),
        ),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEntry")]),
    ]
