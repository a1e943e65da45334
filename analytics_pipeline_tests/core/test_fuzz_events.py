"""A few hundred odd events, drawn with a fixed seed, mixed into a generated data set: every
aggregate still runs for every tenant, the tenants without odd events keep exactly the rows of a
clean run, and each odd event is either counted as malformed with the reason written next to it
below or reflected in its tenant's rows by the amount worked out here.

A failure reproduces: the data set and the odd events depend on SEED only.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import string
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.cohorts.assets import user_cohorts
from analytics_pipeline.core import events
from analytics_pipeline.core.resources import pipeline_resources
from analytics_pipeline.dev import generator, load
from analytics_pipeline.revenue.assets import revenue_aggregates, subscription_history
from analytics_pipeline.tournaments.assets import tournament_aggregates

from ..helpers import db_now, range_tags

SEED = 20251106
ODD_EVENTS = 300
START, END = dt.date(2025, 9, 1), dt.date(2025, 11, 1)  # generated events: [START, END)
LAST_DAY = END - dt.timedelta(days=1)
OPTIONS = generator.SeedOptions(tenants=4, users_per_tenant=40, start=START, end=END, seed=SEED)
TENANTS = [f"org_{SEED}_{n:03d}" for n in range(4)]
ODD_TENANTS, CLEAN_TENANTS = TENANTS[:2], TENANTS[2:]

MAX = Decimal("100000000000")  # the contract's amount bound, exclusive
CENT = Decimal("0.01")
DAY = dt.timedelta(days=1)
US = dt.timedelta(microseconds=1)
KNOWN_TYPES = sorted(events.EVENT_TYPES)
ALPHABET = string.ascii_letters + string.digits + "éü€"

AGGREGATES = {
    "revenue_aggregates": "tenant_id, period_type, period_start",
    "tournament_aggregates": "tenant_id, period_type, period_start",
    "user_cohorts": "tenant_id, cohort_month, month_number",
}


@dataclass
class Odd:
    id: str
    tenant_id: str
    event_type: str
    data: object  # JSON value
    user_id: str | None
    timestamp: str  # as PostgreSQL reads it: ISO, 'infinity', '-infinity'
    created_at: str | None  # None: when inserted
    expected: str | None  # the reason it is malformed, None when valid or of an unknown type


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _monthly_value(amount: Decimal, interval: str) -> Decimal:
    """docs/metrics.md#monthly-value, written again."""
    factor = {"week": Decimal(52) / 12, "month": 1, "quarter": Decimal(1) / 3, "year": Decimal(1) / 12}
    return _cents(amount * factor[interval])


class OddEvents:
    """Draws odd events and keeps the effect each valid one must have on its tenant's rows."""

    def __init__(self, rng: random.Random, now: dt.datetime):
        self.rng = rng
        self.now = now
        self.events: list[Odd] = []
        self.users: set[tuple[str, str]] = set()  # (tenant, user) rows the odd events need
        self.payments: dict[tuple[str, dt.date], list[Decimal]] = defaultdict(list)
        self.mrr: dict[str, Decimal] = defaultdict(Decimal)  # added to every later day's MRR
        self.tournaments: Counter = Counter()  # (tenant, day)
        self.signups: Counter = Counter()  # (tenant, cohort month)

    def _moment(self) -> dt.datetime:
        seconds = self.rng.randrange(int((END - START).total_seconds()))
        return dt.datetime.combine(START, dt.time()) + dt.timedelta(seconds=seconds)

    def _id(self, prefix: str, length: int) -> str:
        """A unique id of `length` characters; random, so that PostgreSQL cannot compress a long
        one into an index entry."""
        prefix = f"{prefix}{len(self.events)}-"
        return prefix + "".join(self.rng.choices(ALPHABET, k=length - len(prefix)))

    def _user(self, tenant: str, length: int = 12) -> str:
        user = self._id("odd", length)
        self.users.add((tenant, user))
        return user

    def add(self, event_type, data, expected, *, user_id=None, at=None, created_at=None) -> Odd:
        tenant = self.rng.choice(ODD_TENANTS)
        if user_id is not None and not isinstance(user_id, str):
            user_id = self._user(tenant, *user_id)  # (length,)
        odd = Odd(
            id=f"odd-{len(self.events):04d}",
            tenant_id=tenant,
            event_type=event_type,
            data=data,
            user_id=user_id,
            timestamp=at or self._moment().isoformat(sep=" "),
            created_at=created_at,
            expected=expected,
        )
        self.events.append(odd)
        return odd

    # --- the kinds of odd event --------------------------------------------------------------

    def payment_amount(self):
        amount, expected = self.rng.choice([
            (Decimal("-0.01"), "bad amount"),
            (Decimal("0"), "bad amount"),
            (CENT, None),
            (MAX - CENT, None),
            (MAX - Decimal("0.005"), None),  # rounds up to 100,000,000,000.00 in the sums: fits
            (MAX, "bad amount"),
            (MAX + CENT, "bad amount"),
        ])
        as_text = self.rng.random() < 0.5
        data = {"payment_id": f"pay{len(self.events)}", "amount": str(amount) if as_text else float(amount)}
        if not as_text and Decimal(str(data["amount"])) != amount:
            data["amount"] = str(amount)  # a float that cannot carry the value exactly
        odd = self.add("payment_completed", data, expected)
        if expected is None:
            day = dt.datetime.fromisoformat(odd.timestamp).date()
            self.payments[(odd.tenant_id, day)].append(amount)

    def subscription_amount(self):
        amount, expected = self.rng.choice([
            (Decimal("-0.01"), "bad amount"),
            (Decimal("0"), None),
            (MAX - CENT, None),
            (MAX, "bad amount"),
            (MAX + CENT, "bad amount"),
        ])
        interval = self.rng.choice(["week", "month", "quarter", "year"])
        data = {"subscription_id": f"sub{len(self.events)}", "plan_id": "odd", "amount": str(amount),
                "interval": interval}
        odd = self.add("subscription_started", data, expected, user_id=(12,))
        if expected is None:
            self.mrr[odd.tenant_id] += _monthly_value(amount, interval)

    def duration(self):
        value, expected = self.rng.choice([
            ("-0.01", "bad duration_minutes"),
            ("0", None),
            ("99999999.99", None),
            ("100000000.00", "bad duration_minutes"),
            ("100000000.01", "bad duration_minutes"),
            (None, "bad duration_minutes"),
        ])
        odd = self.add("tournament_completed", {"tournament_id": f"dur{len(self.events)}",
                                                "duration_minutes": value}, expected)
        if expected is None:
            self.tournaments[(odd.tenant_id, dt.datetime.fromisoformat(odd.timestamp).date())] += 1

    def tournament_id(self):
        length, expected = self.rng.choice([(255, None), (256, "bad tournament_id"), (3800, "bad tournament_id")])
        event_type = self.rng.choice(["tournament_created", "tournament_started", "player_registered"])
        tournament = self._id("t", length)
        data = {"tournament_id": tournament}
        if event_type == "tournament_created":
            data["format"] = "swiss"
        odd = self.add(event_type, data, expected, user_id=(12,) if event_type == "player_registered" else None)
        if expected is None:
            self.tournaments[(odd.tenant_id, dt.datetime.fromisoformat(odd.timestamp).date())] += 1

    def other_id(self):
        length = self.rng.choice([255, 256])
        long_id = self._id("i", length)
        event_type, data, reason = self.rng.choice([
            ("subscription_cancelled", {"subscription_id": long_id}, "bad subscription_id"),
            ("payment_failed", {"payment_id": long_id, "amount": 5}, "bad payment_id"),
            ("tournament_created", {"tournament_id": f"f{len(self.events)}", "format": long_id}, "bad format"),
        ])
        expected = reason if length == 256 else None
        odd = self.add(event_type, data, expected, user_id=(12,) if event_type.startswith("subscription") else None)
        if expected is None and event_type == "tournament_created":
            self.tournaments[(odd.tenant_id, dt.datetime.fromisoformat(odd.timestamp).date())] += 1

    def user_id(self):
        length, expected = self.rng.choice([(255, None), (256, "bad user_id")])
        odd = self.add("user_signup", {"source": "odd"}, expected, user_id=(length,))
        if expected is None:
            self.signups[(odd.tenant_id, dt.datetime.fromisoformat(odd.timestamp).date().replace(day=1))] += 1

    def timestamp(self):
        now = self.now
        at, created, expected = self.rng.choice([
            ("-infinity", None, "bad timestamp"),
            ("infinity", None, "bad timestamp"),
            ("1999-12-31 23:59:59.999999", None, "bad timestamp"),
            ("2000-01-01 00:00:00", None, None),
            ((now + DAY).isoformat(sep=" "), now.isoformat(sep=" "), None),
            ((now + DAY + US).isoformat(sep=" "), now.isoformat(sep=" "), "bad timestamp"),
        ])
        self.add("page_view", {"path": "/odd"}, expected, at=at, created_at=created)

    def created_in_the_future(self):
        # Absorbed at its commit, like every event, and malformed then: a platform clock far ahead.
        self.add(self.rng.choice(["payment_completed", "user_signup", "page_view"]),
                 {"payment_id": "pf", "amount": 5}, "created_at in the future", user_id=(12,),
                 created_at=(self.now + DAY).isoformat(sep=" "))

    def not_an_object(self):
        self.add(self.rng.choice(KNOWN_TYPES), self.rng.choice([[], "text", 7, None, [{"amount": 5}]]),
                 "event_data is not an object", user_id=(12,))

    def nulls(self):
        event_type, data, user, expected = self.rng.choice([
            ("user_signup", {}, None, "missing user_id"),
            ("subscription_started", {"subscription_id": None, "plan_id": "p", "amount": 5, "interval": "month"},
             (12,), "bad subscription_id"),
            ("subscription_started", {"subscription_id": "s", "plan_id": None, "amount": 5, "interval": "month"},
             (12,), "bad plan_id"),
            ("subscription_changed", {"subscription_id": "s", "amount": 5, "interval": None}, (12,), "bad interval"),
            ("payment_completed", {"payment_id": "p", "amount": None}, None, "bad amount"),
            ("payment_completed", {"payment_id": "p", "amount": 5, "tournament_id": None}, None, "bad tournament_id"),
            ("tournament_created", {"tournament_id": "t", "format": None}, None, "bad format"),
        ])
        self.add(event_type, data, expected, user_id=user)

    def unknown_type(self):
        event_type = self.rng.choice(["level_up", "Payment_Completed", "payment_completed ", "x" * 100])
        self.add(event_type, self.rng.choice([{"amount": -5}, [], {"tournament_id": self._id("z", 4000)}]), None,
                 user_id=self.rng.choice([None, (12,)]))

    def huge_object(self):
        # About 200 KB of fields nobody reads around a valid payment.
        amount = Decimal(self.rng.randrange(1, 10_000))
        data = {f"field{i}": "h" * 1000 for i in range(200)} | {"payment_id": f"big{len(self.events)}",
                                                                 "amount": str(amount)}
        odd = self.add("payment_completed", data, None)
        self.payments[(odd.tenant_id, dt.datetime.fromisoformat(odd.timestamp).date())].append(amount)

    KINDS = ("payment_amount", "subscription_amount", "duration", "tournament_id", "other_id", "user_id",
             "timestamp", "created_in_the_future", "not_an_object", "nulls", "unknown_type", "huge_object")

    def draw(self, n: int) -> None:
        for kind in self.KINDS:  # every kind at least once
            getattr(self, kind)()
        while len(self.events) < n:
            getattr(self, self.rng.choice(self.KINDS))()


@pytest.fixture(autouse=True)
def keep_raw_events_forever(monkeypatch):
    monkeypatch.setenv("ANALYTICS_RETENTION_MONTHS", "240")


def _run_every_aggregate(db_url: str) -> None:
    resources = pipeline_resources(db_url)
    daily = range_tags(START.isoformat(), LAST_DAY.isoformat())
    runs = [
        dg.materialize([subscription_history, revenue_aggregates], selection=["revenue_aggregates"],
                       tags=daily, resources=resources),
        dg.materialize([tournament_aggregates], tags=daily, resources=resources),
        dg.materialize([user_cohorts], tags=range_tags(START.isoformat(), LAST_DAY.replace(day=1).isoformat()),
                       resources=resources),
    ]
    assert [r.success for r in runs] == [True, True, True]


def _snapshot(conn) -> None:
    for table in AGGREGATES:
        conn.execute(sa.text(f"CREATE TABLE clean_{table} AS SELECT * FROM {table}"))
        conn.execute(sa.text(f"ALTER TABLE clean_{table} DROP COLUMN updated_at"))


def _insert(engine, odd: OddEvents) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO users (id, tenant_id) VALUES (:u, :t)"),
            [{"u": u, "t": t} for t, u in sorted(odd.users)],
        )
        conn.execute(
            sa.text(
                'INSERT INTO analytics_events (id, tenant_id, event_type, event_data, user_id, "timestamp", created_at) '
                "VALUES (:id, :t, :type, CAST(:data AS jsonb), :u, CAST(:at AS timestamp), "
                "coalesce(CAST(:created AS timestamp), clock_timestamp() AT TIME ZONE 'UTC'))"
            ),
            [
                {"id": e.id, "t": e.tenant_id, "type": e.event_type, "data": json.dumps(e.data), "u": e.user_id,
                 "at": e.timestamp, "created": e.created_at}
                for e in odd.events
            ],
        )


def _python_time(text: str) -> dt.datetime:
    return {"infinity": dt.datetime.max, "-infinity": dt.datetime.min}.get(text) or dt.datetime.fromisoformat(text)


def test_odd_events_change_no_other_tenant_and_are_counted_or_reflected(db_url, engine):
    load.load(db_url, OPTIONS)
    _run_every_aggregate(db_url)
    with engine.begin() as conn:
        _snapshot(conn)

    odd = OddEvents(random.Random(SEED), db_now(engine))
    odd.draw(ODD_EVENTS)
    assert {e.expected for e in odd.events} >= {
        None, "bad amount", "bad duration_minutes", "bad tournament_id", "bad subscription_id", "bad payment_id",
        "bad format", "bad plan_id", "bad interval", "bad user_id", "missing user_id", "bad timestamp",
        "created_at in the future", "event_data is not an object",
    }
    # Each kind of effect is there to be checked.
    assert len(odd.payments) > 5 and len(odd.tournaments) > 5 and len(odd.signups) > 0
    assert any(odd.mrr.values())
    _insert(engine, odd)
    checked_at = db_now(engine)

    # The verdicts written above are the contract's, in Python and in SQL.
    python = {
        e.id: events.problem(
            e.event_type, e.data, e.user_id, _python_time(e.timestamp),
            _python_time(e.created_at) if e.created_at else checked_at, checked_at=checked_at,
        )
        for e in odd.events
    }
    assert python == {e.id: e.expected for e in odd.events}

    _run_every_aggregate(db_url)

    with engine.connect() as conn:
        # Tenants without odd events: exactly the rows of the clean run, both ways.
        for table in AGGREGATES:
            columns = ", ".join(
                c for c in conn.execute(sa.text(f"SELECT * FROM clean_{table} LIMIT 0")).keys()
            )
            for first, second in ((table, f"clean_{table}"), (f"clean_{table}", table)):
                differ = conn.execute(
                    sa.text(
                        f"SELECT count(*) FROM (SELECT {columns} FROM {first} WHERE tenant_id = ANY(:clean) "
                        f"EXCEPT ALL SELECT {columns} FROM {second} WHERE tenant_id = ANY(:clean)) AS d"
                    ),
                    {"clean": CLEAN_TENANTS},
                ).scalar()
                assert differ == 0, (first, second)
            assert conn.execute(
                sa.text(f"SELECT count(*) FROM clean_{table} WHERE tenant_id = ANY(:clean)"), {"clean": CLEAN_TENANTS}
            ).scalar() > 0

        # Malformed events are kept with their reason, one created in the future too: each event is
        # judged once, when its commit is absorbed (docs/ingestion.md).
        recorded = dict(
            conn.execute(
                sa.text("SELECT event_id, problem FROM malformed_events WHERE event_id LIKE 'odd-%'")
            ).all()
        )
        assert recorded == {e.id: e.expected for e in odd.events if e.expected is not None}

        # Valid payments: each day's revenue and successful payments grew by them.
        revenue = {
            (t, d): (total, successes, mrr)
            for t, d, total, successes, mrr in conn.execute(
                sa.text(
                    "SELECT a.tenant_id, a.period_start, a.total_revenue - coalesce(c.total_revenue, 0), "
                    "a.payment_success_count - coalesce(c.payment_success_count, 0), a.mrr - coalesce(c.mrr, 0) "
                    "FROM revenue_aggregates a LEFT JOIN clean_revenue_aggregates c USING (id) "
                    "WHERE a.period_type = 'day' AND a.tenant_id = ANY(:odd)"
                ),
                {"odd": ODD_TENANTS},
            )
        }
        grew = {key: (total, n) for key, (total, n, _) in revenue.items() if total or n}
        assert grew == {key: (_cents(sum(amounts)), len(amounts)) for key, amounts in odd.payments.items()}
        # Valid subscriptions (new customers, never cancelled): MRR of the last day grew by
        # their monthly values.
        assert {t: revenue[(t, LAST_DAY)][2] for t in ODD_TENANTS} == {t: odd.mrr[t] for t in ODD_TENANTS}

        # Valid new tournaments: their day's tournament_count grew by one each.
        tournaments = dict(
            ((t, d), n)
            for t, d, n in conn.execute(
                sa.text(
                    "SELECT a.tenant_id, a.period_start, a.tournament_count - coalesce(c.tournament_count, 0) "
                    "FROM tournament_aggregates a LEFT JOIN clean_tournament_aggregates c USING (id) "
                    "WHERE a.period_type = 'day' AND a.tenant_id = ANY(:odd)"
                ),
                {"odd": ODD_TENANTS},
            )
            if n
        )
        in_range = {k: n for k, n in odd.tournaments.items() if START <= k[1] <= LAST_DAY}
        assert tournaments == in_range

        # Valid signups: their cohort's size grew by one each.
        cohorts = dict(
            ((t, m), n)
            for t, m, n in conn.execute(
                sa.text(
                    "SELECT a.tenant_id, a.cohort_month, a.cohort_size - coalesce(c.cohort_size, 0) "
                    "FROM user_cohorts a LEFT JOIN clean_user_cohorts c USING (id) "
                    "WHERE a.month_number = 0 AND a.tenant_id = ANY(:odd)"
                ),
                {"odd": ODD_TENANTS},
            )
            if n
        )
        assert cohorts == dict(odd.signups)
