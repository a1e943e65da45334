"""Scheduled email reports: what a report may be (validation.py), what it reads (queries.py,
sql/), how it looks (render.py, labels.py, charts.py, templates/, pdf.py, mime.py), when it is due
(schedule.py) and how each is delivered once (delivery.py, claims.py, email_channel.py,
channels.py, assets.py, sensors.py); unsubscribing (unsubscribe.py, unsubscribe_routes.py) and the
preview (preview.py). `analytics-pipeline reports ...` manages them (cli.py).

`defs` is built on first access, so that the command line can use this package without
loading Dagster.
"""


def __getattr__(name: str):
    if name == "defs":
        from .definitions import defs

        return defs
    raise AttributeError(name)
