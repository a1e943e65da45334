"""The sensor that finds due reports and requests one delivery run for each."""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa

from ..core.resources import AnalyticsDatabase
from ..core.settings import env_int
from .assets import ReportDeliveryConfig, due_at_text, report_delivery_job
from .claims import due_deliveries, utc_now

DEFAULT_INTERVAL_SECONDS = 15 * 60
MINIMUM_INTERVAL_SECONDS = 30


def sensor_interval_seconds() -> int:
    """`REPORTS_SENSOR_INTERVAL_SECONDS` (default 900): how often due reports are looked for."""
    return env_int("REPORTS_SENSOR_INTERVAL_SECONDS", DEFAULT_INTERVAL_SECONDS, minimum=MINIMUM_INTERVAL_SECONDS)


@dg.sensor(
    name="scheduled_reports_sensor",
    job=report_delivery_job,
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def scheduled_reports_sensor(context: dg.SensorEvaluationContext, database: AnalyticsDatabase):
    """Requests a delivery run for every active report whose next_run_at has passed, and for every
    delivery whose retry backoff is over. The run key names the report and its scheduled time, so
    a repeated tick never requests the same delivery twice. The tick only reads."""
    with database.engine.connect() as conn, conn.begin():
        conn.execute(sa.text("SET TRANSACTION READ ONLY"))
        due = due_deliveries(conn, utc_now())
    if not due:
        return dg.SkipReason("no scheduled report is due")
    return [
        dg.RunRequest(
            run_key=d.run_key,
            run_config=dg.RunConfig(
                ops={"report_deliveries": ReportDeliveryConfig(report_id=d.report_id, due_at=due_at_text(d.next_run_at))}
            ),
            tags={"analytics/report_id": d.report_id, "analytics/tenant_id": d.tenant_id, "analytics/attempt": str(d.attempt)},
        )
        for d in due
    ]
