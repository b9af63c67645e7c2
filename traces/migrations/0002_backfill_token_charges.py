"""Fill the core's ledger of LLM calls (orchestrator.TokenCharge) from the LLM spans recorded
before it existed, so costs and usage of earlier executions stay as they were shown."""

from django.db import migrations


def backfill(apps, schema_editor):  # type: ignore[no-untyped-def]
    Span = apps.get_model("traces", "Span")
    TokenCharge = apps.get_model("orchestrator", "TokenCharge")
    if TokenCharge.objects.exists():
        return
    batch = []
    for span in Span.objects.filter(kind="llm").only(
        "execution_id", "status", "model", "step", "input_tokens", "output_tokens", "started_at", "attributes"
    ).iterator(chunk_size=2000):
        refused = span.status == "error" and (span.attributes or {}).get("refused")
        batch.append(TokenCharge(
            execution_id=span.execution_id, status="refused" if refused else "settled", model=span.model or "",
            step=span.step, input_tokens=span.input_tokens or 0, output_tokens=span.output_tokens or 0,
            created_at=span.started_at,
        ))
        if len(batch) >= 2000:
            TokenCharge.objects.bulk_create(batch)
            batch = []
    TokenCharge.objects.bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [("traces", "0001_initial"), ("orchestrator", "0005_tokencharge")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
