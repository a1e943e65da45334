"""Scheduled email reports: what they read (queries.py, sql/), how they look (render.py,
charts.py, templates/), when they are due (schedule.py) and how each is delivered once
(delivery.py, assets.py, sensors.py). `analytics-pipeline reports ...` manages them (cli.py)."""

import dagster as dg

from ..resources import MailResource
from .assets import report_deliveries, report_delivery_job
from .sensors import scheduled_reports_sensor

defs = dg.Definitions(
    assets=[report_deliveries],
    jobs=[report_delivery_job],
    sensors=[scheduled_reports_sensor],
    resources={"mail": MailResource()},
)
