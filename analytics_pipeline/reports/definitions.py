"""The reports domain's Dagster definitions: the delivery asset, its job, the sensor. The mail
resource is shared with the failure alerts, so definitions.py provides it."""

import dagster as dg

from .assets import report_deliveries, report_delivery_job
from .sensors import scheduled_reports_sensor

defs = dg.Definitions(
    assets=[report_deliveries],
    jobs=[report_delivery_job],
    sensors=[scheduled_reports_sensor],
)
