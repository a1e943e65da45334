"""Scheduled email reports: what they read (queries.py, sql/), how they look (render.py,
charts.py, templates/), when they are due (schedule.py) and how each is delivered once
(delivery.py, assets.py, sensors.py). `analytics-pipeline reports ...` manages them (cli.py).

`defs` is built on first access, so that the command line can use this package without
loading Dagster.
"""


def __getattr__(name: str):
    if name == "defs":
        from .definitions import defs

        return defs
    raise AttributeError(name)
