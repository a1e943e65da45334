"""The reports domain's Dagster definitions: the delivery asset, its job, the sensor, the mail resource."""

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
