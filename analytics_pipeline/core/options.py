"""Command-line parameter types that refuse, with one line naming the option and what it accepts,
every value a command could not use, before the command touches anything."""

from __future__ import annotations

import datetime as dt
import math
import re
import sys

import click

from . import db, migrate
from .settings import ConfigError

EARLIEST_DAY = dt.date(2000, 1, 1)


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that refuses nan and the infinities (which compare false with any bound)."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number in the range {self._describe_range()}", param, ctx)
        return super().convert(number, param, ctx)


class Day(click.ParamType):
    """A calendar day written YYYY-MM-DD, from EARLIEST_DAY on."""

    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            self.fail(f"{value!r} is not a day written YYYY-MM-DD", param, ctx)
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError as exc:
            self.fail(f"{value!r} is not a calendar day ({exc})", param, ctx)
        if day < EARLIEST_DAY:
            self.fail(f"{day} is before {EARLIEST_DAY}, the earliest day accepted", param, ctx)
        return day


class WallClock(click.ParamType):
    """A local time of day written HH:MM (24-hour); the time zone is a separate option."""

    name = "HH:MM"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.time):
            return value
        match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value)
        if not match:
            self.fail(
                f"{value!r} is not a time written HH:MM from 00:00 to 23:59 (no seconds; "
                "give the time zone with --timezone)",
                param,
                ctx,
            )
        return dt.time(int(match[1]), int(match[2]))


class NonEmptyText(click.ParamType):
    name = "text"

    def convert(self, value, param, ctx):
        if not value.strip():
            self.fail("must not be empty", param, ctx)
        return value


class OneLineErrors(click.Group):
    """A group whose usage errors are one line on stderr, exit code 2, without the usage text and
    the --help hint that click prints before them; other errors keep their one-line form."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            click.echo(f"Error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except (EOFError, KeyboardInterrupt):
            click.echo(err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def database_url() -> str:
    """The analytics database's URL, or a one-line error naming what is wrong with it."""
    try:
        url = db.resolve_url()
        db.sqlalchemy_url(url)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return url


def clearly(fn, *args):
    """`fn(*args)`, with a database, configuration or migration refusal as a one-line error."""
    try:
        return fn(*args)
    except (db.DatabaseNotReady, ConfigError, migrate.MigrationRefused) as exc:
        raise click.ClickException(str(exc)) from None
