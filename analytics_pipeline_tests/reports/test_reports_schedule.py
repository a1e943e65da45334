"""Schedules, periods and configuration checks of scheduled reports, without a database.

Expected instants are worked out by hand from the time-zone rules: Europe/Berlin is UTC+1 in
winter and UTC+2 from the last Sunday of March (2025-03-30) to the last Sunday of October
(2025-10-26); America/New_York is UTC-5 in winter and UTC-4 from 2025-03-09 to 2025-11-02.
"""

from __future__ import annotations

import datetime as dt

import pytest

from analytics_pipeline.reports.schedule import anchor_for, latest_due, next_occurrence, report_period
from analytics_pipeline.reports.validation import InvalidReport, validate_parameters, validate_report


def T(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def anchor(frequency: str, start: str, **parameters):
    return anchor_for(frequency, validate_parameters(parameters), T(start))


def steps(frequency: str, start: str, count: int, **parameters) -> list[str]:
    a, moment, out = anchor(frequency, start, **parameters), T(start), []
    for _ in range(count):
        moment = next_occurrence(moment, a)
        out.append(moment.isoformat(sep=" ", timespec="minutes"))
    return out


def test_daily_in_berlin_keeps_local_time_across_both_dst_changes():
    # 08:00 local: 07:00 UTC in winter, 06:00 UTC in summer.
    assert steps("daily", "2025-03-29 07:00", 2, timezone="Europe/Berlin") == [
        "2025-03-30 06:00", "2025-03-31 06:00"]
    assert steps("daily", "2025-10-25 06:00", 2, timezone="Europe/Berlin") == [
        "2025-10-26 07:00", "2025-10-27 07:00"]


def test_weekly_in_new_york_keeps_local_time_across_both_dst_changes():
    # Mondays 09:00 local: 14:00 UTC in winter, 13:00 UTC in summer.
    assert steps("weekly", "2025-03-03 14:00", 2, timezone="America/New_York") == [
        "2025-03-10 13:00", "2025-03-17 13:00"]
    assert steps("weekly", "2025-10-27 13:00", 2, timezone="America/New_York") == [
        "2025-11-03 14:00", "2025-11-10 14:00"]


def test_a_wall_time_skipped_by_the_spring_change_runs_an_hour_later():
    # 02:30 does not exist in Berlin on 2025-03-30; it is delivered at 03:30 CEST = 01:30 UTC.
    assert steps("daily", "2025-03-29 01:30", 2, timezone="Europe/Berlin") == [
        "2025-03-30 01:30", "2025-03-31 00:30"]


def test_monthly_on_the_31st_runs_on_the_last_day_of_shorter_months_and_returns():
    assert steps("monthly", "2025-01-31 08:00", 4) == [
        "2025-02-28 08:00", "2025-03-31 08:00", "2025-04-30 08:00", "2025-05-31 08:00"]
    assert steps("monthly", "2024-01-31 08:00", 1) == ["2024-02-29 08:00"]
    # An explicit day_of_month wins over the day next_run_at falls on.
    assert steps("monthly", "2025-02-28 08:00", 1, day_of_month=31) == ["2025-03-31 08:00"]


def test_weekly_day_and_time_from_parameters():
    # 2025-11-05 is a Wednesday; the report goes out Fridays 17:30 Berlin (16:30 UTC in November).
    a = anchor("weekly", "2025-11-05 10:00", timezone="Europe/Berlin", day_of_week=5, send_time="17:30")
    assert next_occurrence(T("2025-11-05 10:00"), a) == T("2025-11-07 16:30")
    assert next_occurrence(T("2025-11-07 16:30"), a) == T("2025-11-14 16:30")


def test_after_downtime_only_the_latest_missed_occurrence_is_due():
    a = anchor("daily", "2025-06-01 08:00")
    assert latest_due(T("2025-06-01 08:00"), T("2025-06-04 09:00"), a) == (T("2025-06-04 08:00"), 3)
    assert latest_due(T("2025-06-01 08:00"), T("2025-06-01 08:00"), a) == (T("2025-06-01 08:00"), 0)


@pytest.mark.parametrize(
    "frequency, scheduled_for, parameters, expected",
    [
        ("daily", "2025-11-10 07:00", {}, ("2025-11-09", "2025-11-09", "2025-11-08", "2025-11-08")),
        # 00:30 on 10 Nov in Berlin is still 9 Nov in UTC: the local date decides.
        ("daily", "2025-11-09 23:30", {"timezone": "Europe/Berlin"},
         ("2025-11-09", "2025-11-09", "2025-11-08", "2025-11-08")),
        ("weekly", "2025-11-10 07:00", {}, ("2025-11-03", "2025-11-09", "2025-10-27", "2025-11-02")),
        ("weekly", "2025-11-12 07:00", {"lookback_periods": 2},
         ("2025-10-27", "2025-11-09", "2025-10-13", "2025-10-26")),
        ("monthly", "2025-03-01 08:00", {}, ("2025-02-01", "2025-02-28", "2025-01-01", "2025-01-31")),
        ("monthly", "2025-01-15 08:00", {"lookback_periods": 3},
         ("2024-10-01", "2024-12-31", "2024-07-01", "2024-09-30")),
        ("daily", "2025-11-10 07:00", {"lookback_periods": 7},
         ("2025-11-03", "2025-11-09", "2025-10-27", "2025-11-02")),
    ],
)
def test_report_period_is_the_previous_period_in_the_report_time_zone(frequency, scheduled_for, parameters, expected):
    period = report_period(T(scheduled_for), frequency, validate_parameters(parameters))
    assert tuple(d.isoformat() for d in (period.start, period.end, period.previous_start, period.previous_end)) == expected


def test_period_labels():
    params = validate_parameters({})
    assert report_period(T("2025-11-10 07:00"), "weekly", params).label == "week 45 of 2025 (3 Nov – 9 Nov 2025)"
    assert report_period(T("2025-03-01 08:00"), "monthly", params).label == "February 2025"


VALID = dict(name="Weekly revenue", report_type="revenue_summary", frequency="weekly",
             recipients=["Ann@Example.com", "bob@example.org"], parameters={"timezone": "Europe/Berlin"})


def test_a_valid_report_is_normalised():
    report = validate_report(**VALID)
    assert report.recipients == ("Ann@example.com", "bob@example.org")
    assert report.parameters.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"recipients": ["ann@example.com", "not-an-address"]}, r"recipients\[1\]: 'not-an-address' is not a valid"),
        ({"recipients": []}, "recipients: give at least one"),
        ({"recipients": ["ann@example.com\r\nBcc: eve@example.net"]}, r"recipients\[0\].*line break"),
        ({"name": "Weekly\r\nBcc: eve@example.net"}, "name: must not contain line breaks"),
        ({"name": "  "}, "name: must be a non-empty"),
        ({"report_type": "everything"}, "report_type: 'everything' is not one of revenue_summary"),
        ({"frequency": "hourly"}, "frequency: 'hourly' is not one of daily, weekly, monthly"),
        ({"parameters": {"timezone": "Mars/Olympus"}}, "parameters.timezone: .*unknown IANA time zone 'Mars/Olympus'"),
        ({"parameters": {"lookback_periods": 0}}, "parameters.lookback_periods: .*greater than or equal to 1"),
        ({"parameters": {"lookback": 2}}, "parameters.lookback: Extra inputs are not permitted"),
        ({"parameters": {"send_time": "25:00"}}, "parameters.send_time"),
        ({"parameters": ["timezone"]}, "parameters: must be a JSON object"),
    ],
)
def test_bad_configuration_is_refused_naming_the_field(change, message):
    with pytest.raises(InvalidReport, match=message):
        validate_report(**(VALID | change))


# Every character that ends a line for str.splitlines (and so for the email package) or is a
# control character: C0, DEL, C1 with NEL, the Unicode line and paragraph separators.
LINE_BREAKS_AND_CONTROLS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029",
                            "\x00", "\x1b", "\x7f", "\x80", "\x9f", "\ud800"]


@pytest.mark.parametrize("character", LINE_BREAKS_AND_CONTROLS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_name_with_a_line_break_or_control_character_is_refused(character):
    with pytest.raises(InvalidReport, match=rf"name: must not contain line breaks .*U\+{ord(character):04X}"):
        validate_report(**(VALID | {"name": f"Weekly{character}KPIs"}))


def test_a_name_in_any_script_with_emoji_and_joiners_is_kept():
    name = "Café – 週報 📈 👩\u200d💻"
    assert validate_report(**(VALID | {"name": name})).name == name


@pytest.mark.parametrize("send_time, expected", [("00:00", dt.time(0, 0)), ("23:59", dt.time(23, 59)),
                                                 ("08:00:00", dt.time(8, 0))])
def test_send_time_is_a_local_wall_clock_time(send_time, expected):
    assert validate_parameters({"send_time": send_time}).send_time == expected


@pytest.mark.parametrize("send_time", ["08:00+05:00", "08:00Z", "08:00:00.5", "08:00:00.000", "8:00", "24:00",
                                       "23:60", "0800", "", " 08:00", 800, True])
def test_send_time_with_an_offset_fraction_or_other_form_is_refused(send_time):
    with pytest.raises(InvalidReport, match="parameters.send_time"):
        validate_parameters({"send_time": send_time})


@pytest.mark.parametrize("field", ["cohorts", "lookback_periods", "day_of_week", "day_of_month"])
@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_never_read_as_a_number(field, value):
    with pytest.raises(InvalidReport, match=f"parameters.{field}: must be a whole number, not {str(value).lower()}"):
        validate_parameters({field: value})


@pytest.mark.parametrize("cohorts, accepted", [(0, False), (1, True), (24, True), (25, False), (6.0, False), ("6", False)])
def test_cohorts_is_a_whole_number_from_1_to_24(cohorts, accepted):
    if accepted:
        assert validate_parameters({"cohorts": cohorts}).as_json() == {"cohorts": cohorts}
    else:
        with pytest.raises(InvalidReport, match="parameters.cohorts"):
            validate_parameters({"cohorts": cohorts})


def _addresses(n: int) -> list[str]:
    return [f"person{i}@example.com" for i in range(n)]


def test_fifty_recipients_are_accepted_and_fifty_one_refused():
    assert len(validate_report(**(VALID | {"recipients": _addresses(50)})).recipients) == 50
    with pytest.raises(InvalidReport, match="recipients: at most 50 distinct addresses, got 51"):
        validate_report(**(VALID | {"recipients": _addresses(51)}))


def test_duplicates_in_another_case_count_once_before_the_limit():
    given = ["Person0@Example.COM", *_addresses(50), "PERSON49@EXAMPLE.COM"]
    recipients = validate_report(**(VALID | {"recipients": given})).recipients
    assert len(recipients) == 50
    assert recipients[0] == "Person0@example.com"  # the first spelling, its domain normalised
    assert recipients[1:] == tuple(_addresses(50)[1:])
    assert validate_report(**(VALID | {"recipients": ["ann@x.org", "Ann@X.org", "ANN@x.ORG"]})).recipients == ("ann@x.org",)
