"""The delivery of scheduled reports, as an asset downstream of the aggregates it reads."""

import datetime as dt

import dagster as dg
from pydantic import Field

from ..core.resources import AnalyticsDatabase, MailResource
from .delivery import deliver_scheduled

REPORTS_GROUP = "reports"


class ReportDeliveryConfig(dg.Config):
    """Which report a run delivers; the sensor fills it in."""

    report_id: str = Field(description="scheduled_reports.id")
    due_at: str = Field(
        description="The report's next_run_at when the sensor saw it due (ISO, UTC). For the run's "
        "record only: the run delivers whatever occurrence of the report is due when it starts."
    )


@dg.asset(
    deps=["revenue_aggregates", "revenue_kpis", "user_cohorts", "tournament_aggregates"],
    group_name=REPORTS_GROUP,
    kinds={"postgres", "email"},
    metadata={"dagster/table_name": "public.report_deliveries"},
)
def report_deliveries(
    context: dg.AssetExecutionContext,
    config: ReportDeliveryConfig,
    database: AnalyticsDatabase,
    mail: MailResource,
) -> dg.MaterializeResult:
    """The log of scheduled report deliveries: one row per report, scheduled time and channel
    (the email, or one of the report's webhooks), with its status (sent, retrying, failed,
    skipped), attempts, the Message-ID each recipient got and any recipients the server refused;
    and a row for each recipient who unsubscribed.

    Each run delivers one report's due occurrence: it reads that tenant's revenue, cohort and
    tournament aggregates for the report's period, renders the email with charts and CSV rows
    (and a PDF if asked for), sends one message per recipient and posts to the webhooks, and
    records the outcomes. A repeated run sends nothing twice. A delivery that failed for good, or a
    report that could not be built (a failed query or chart), fails the run; a temporary failure
    is retried by the sensor with backoff.
    """
    outcome = deliver_scheduled(database, mail, config.report_id)
    metadata = outcome.metadata() | {"mail": mail.describe()}
    if outcome.status == "failed" or outcome.broken or any(s.startswith("failed") for s in outcome.channels.values()):
        raise dg.Failure(description=f"report {config.report_id}: {outcome.detail}", metadata=metadata)
    if outcome.status == "retrying":
        context.log.warning(f"report {config.report_id}: {outcome.detail}")
    else:
        context.log.info(f"report {config.report_id}: {outcome.detail}")
    return dg.MaterializeResult(metadata=metadata)


report_delivery_job = dg.define_asset_job(
    "report_delivery_job",
    selection=[report_deliveries],
    description="Deliver one scheduled report (requested by scheduled_reports_sensor).",
)


def due_at_text(moment: dt.datetime) -> str:
    return moment.isoformat() + "Z"
