"""What a scheduled report may be configured as, and the checks that refuse anything else.

The same checks run when a report is created (`analytics-pipeline reports add`) and when a
delivery finds a row that the platform wrote directly into `scheduled_reports`; there the error is
recorded on the delivery and only that report is affected.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from typing import Any

import pydantic
from email_validator import EmailNotValidError, validate_email

from ..core.schema import FREQUENCIES, REPORT_TYPES
from ..core.settings import ConfigError

MAX_RECIPIENTS = 50
MAX_LOOKBACK_PERIODS = 24
# Control characters (CR and LF above all) would let a value start a new mail header.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# What may not appear in a name that becomes a mail header: control characters (C0, DEL, C1 with
# NEL), the line and paragraph separators U+2028 and U+2029 (Python's email package treats every
# line boundary of str.splitlines as a line break), and lone surrogates, which UTF-8 cannot encode.
REFUSED_IN_TEXT = {"Cc": "a control character", "Zl": "a line separator", "Zp": "a paragraph separator",
                   "Cs": "a lone surrogate"}
SEND_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?")

# The aggregate period each frequency reports on.
PERIOD_TYPE = {"daily": "day", "weekly": "week", "monthly": "month"}


class InvalidReport(ConfigError):
    """A report's configuration is refused; the message names the field."""


class ReportParameters(pydantic.BaseModel):
    """`scheduled_reports.parameters`. Every key is optional; unknown keys are refused, so that a
    misspelt option is reported instead of silently ignored."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    timezone: str = pydantic.Field(
        "UTC", description="IANA time zone of the schedule and the period, e.g. Europe/Berlin."
    )
    # strict: a JSON true is refused, never read as 1.
    lookback_periods: int = pydantic.Field(
        1,
        strict=True,
        ge=1,
        le=MAX_LOOKBACK_PERIODS,
        description="How many periods the report covers, ending with the previous one.",
    )
    send_time: dt.time | None = pydantic.Field(
        None, description="Local wall-clock time of delivery; default: that of next_run_at."
    )
    day_of_week: int | None = pydantic.Field(
        None, strict=True, ge=1, le=7, description="Weekly reports: ISO weekday of delivery, 1 = Monday."
    )
    day_of_month: int | None = pydantic.Field(
        None,
        strict=True,
        ge=1,
        le=31,
        description="Monthly reports: day of delivery; the last day in months that are shorter.",
    )
    cohorts: int = pydantic.Field(
        6, strict=True, ge=1, le=24, description="How many signup cohorts the retention triangle shows."
    )
    # Delivery options (docs/operations.md, Scheduled reports).
    skip_empty: bool = pydantic.Field(
        False, description="Send nothing for a period without data; the delivery log says skipped."
    )
    pdf: bool = pydantic.Field(False, description="Attach the report as PDF too (the HTML with its charts).")

    @pydantic.field_validator("send_time", mode="before")
    @classmethod
    def _wall_clock(cls, value: Any) -> Any:
        """A local wall-clock time, HH:MM (HH:MM:SS as stored): an offset would be ignored by the
        schedule, which takes the zone from `timezone`, and fractions of a second mean nothing."""
        if isinstance(value, str):
            if not SEND_TIME.fullmatch(value):
                raise ValueError(f"{value!r} is not a local time HH:MM (the time zone goes in timezone)")
            return dt.time.fromisoformat(value)
        if isinstance(value, dt.time) and (value.tzinfo is not None or value.microsecond):
            raise ValueError(f"{value.isoformat()!r} is not a local time HH:MM (the time zone goes in timezone)")
        if value is not None and not isinstance(value, dt.time):
            raise ValueError(f"{value!r} is not a local time HH:MM")
        return value

    @pydantic.field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r} (for example Europe/Berlin)") from None
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def as_json(self) -> dict[str, Any]:
        """The parameters as stored: only the keys that were given."""
        return self.model_dump(mode="json", exclude_unset=True)


@dataclass(frozen=True)
class ReportConfig:
    """A validated report: recipients are normalised addresses, parameters parsed."""

    name: str
    report_type: str
    frequency: str
    recipients: tuple[str, ...]
    parameters: ReportParameters

    @property
    def period_type(self) -> str:
        return PERIOD_TYPE[self.frequency]


def validate_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidReport("name: must be a non-empty text")
    for i, character in enumerate(name):
        refused = REFUSED_IN_TEXT.get(unicodedata.category(character))
        if refused:
            raise InvalidReport(
                "name: must not contain line breaks or other control characters, found "
                f"{refused} (U+{ord(character):04X}) at position {i + 1}"
            )
    if len(name) > 255:
        raise InvalidReport(f"name: at most 255 characters, got {len(name)}")
    return name.strip()


def validate_choice(field: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidReport(f"{field}: {value!r} is not one of {', '.join(choices)}")
    return value


def validate_recipients(recipients: Any) -> tuple[str, ...]:
    """The distinct addresses, normalised, in the order given; an address repeated in another
    case counts once (mail servers treat the local part case-insensitively in practice)."""
    if isinstance(recipients, str) or not isinstance(recipients, (list, tuple)) or not recipients:
        raise InvalidReport("recipients: give at least one email address")
    normalised: list[str] = []
    seen: set[str] = set()
    for i, address in enumerate(recipients):
        if not isinstance(address, str):
            raise InvalidReport(f"recipients[{i}]: not a text: {address!r}")
        if CONTROL_CHARACTERS.search(address):
            raise InvalidReport(f"recipients[{i}]: {address!r} contains a line break or control character")
        try:
            valid = validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            raise InvalidReport(f"recipients[{i}]: {address!r} is not a valid email address: {exc}") from None
        if valid.normalized.casefold() not in seen:
            seen.add(valid.normalized.casefold())
            normalised.append(valid.normalized)
    if len(normalised) > MAX_RECIPIENTS:
        raise InvalidReport(f"recipients: at most {MAX_RECIPIENTS} distinct addresses, got {len(normalised)}")
    return tuple(normalised)


def validate_parameters(parameters: Any) -> ReportParameters:
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise InvalidReport(f"parameters: must be a JSON object, got {type(parameters).__name__}")
    try:
        return ReportParameters.model_validate(parameters)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"parameters.{'.'.join(str(p) for p in err['loc']) or '(object)'}: {_problem(err)}"
            for err in exc.errors()
        )
        raise InvalidReport(problems) from None


def _problem(error: dict) -> str:
    if error["type"] == "int_type" and isinstance(error.get("input"), bool):
        return f"must be a whole number, not {str(error['input']).lower()}"
    return error["msg"].removeprefix("Value error, ")


def validate_report(
    *, name: Any, report_type: Any, frequency: Any, recipients: Any, parameters: Any
) -> ReportConfig:
    """Every field of a report, checked; raises InvalidReport naming the first bad field."""
    return ReportConfig(
        name=validate_name(name),
        report_type=validate_choice("report_type", report_type, REPORT_TYPES),
        frequency=validate_choice("frequency", frequency, FREQUENCIES),
        recipients=validate_recipients(recipients),
        parameters=validate_parameters(parameters),
    )
