"""A simulated tournament platform: organizations, users and their `analytics_events`, for the
demo, the tests and the benchmarks (`analytics-pipeline seed`, docs/events.md#the-generator).

Each tenant is simulated on its own, from random generators seeded by (seed, tenant index), and
each user from one seeded by (seed, tenant index, user index): the same options give the same rows,
and a tenant's rows do not depend on how many other tenants are generated. Per tenant only the
users' profiles are held in memory (a few numbers per user); events are produced one at a time,
as rows or as lines of COPY's text format, and dev/load.py streams them into PostgreSQL with COPY,
so memory stays flat however many events are loaded.

What is simulated, per tenant:
- signups, growing over the range (the last month brings 1.5 to 4 times the first month's), with
  a weekly rhythm (weekends busiest) and a daily one (evenings UTC busiest);
- sessions (session_started, user_login, page_view) whose frequency decays with the user's age
  until the user leaves for good; a third of users leave within days, a quarter stay for months;
- subscriptions on weekly, monthly, quarterly and annual plans of three tiers, with upgrades,
  downgrades, voluntary cancellations (more likely once the user has left), involuntary ones after
  four failed payment attempts, and re-subscriptions;
- a payment per billing cycle, a few percent failing and retried after one to three days, a small
  share refunded in full or in part;
- tournaments of several formats, created as the active user base allows, with entry fees paid
  before registering, starts, completions with a duration, a share cancelled (fees refunded) and a
  few abandoned after starting.

Timestamps are UTC seconds within [start, end). `created_at` equals `timestamp` (the platform
recorded the event when it happened) except for the `late_rate` share, recorded 1 to 48 hours
later (never after `end`). The `malformed_rate` share is damaged so that the contract
(analytics_pipeline/core/events.py) rejects it; the other events all satisfy it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import math
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson

from ..core import events
from ..core.months import shift_months
from ..core.settings import ConfigError

DAY = 86_400
HOUR = 3_600
EPOCH = dt.datetime(1970, 1, 1)

# Relative activity by hour of day (UTC) and by weekday (Monday first): the audience is mostly
# in Europe and the Americas, and plays most in the evening and at the weekend.
HOUR_WEIGHTS = (3, 2, 1.5, 1, 1, 1, 1.5, 2, 3, 4, 4.5, 5, 5.5, 5.5, 5.5, 6, 6.5, 7, 7.5, 8, 8, 7, 6, 4.5)
WEEKDAY_WEIGHTS = (0.9, 0.9, 0.92, 0.95, 1.0, 1.15, 1.1)
# 1970-01-01 was a Thursday: hour-of-week index = (ts // HOUR + 72) % 168, Monday 00:00 first.
_WEEK_OFFSET_HOURS = 3 * 24
_ACCEPT = tuple(
    WEEKDAY_WEIGHTS[h // 24] * HOUR_WEIGHTS[h % 24] / (max(WEEKDAY_WEIGHTS) * max(HOUR_WEIGHTS))
    for h in range(168)
)
_ACCEPT_MEAN = sum(_ACCEPT) / len(_ACCEPT)

SIGNUP_SOURCES = ("organic", "referral", "paid_search", "social", "partner")
SIGNUP_SOURCE_WEIGHTS = tuple(itertools.accumulate((45, 20, 15, 15, 5)))
PAGES = ("/", "/tournaments", "/tournaments/live", "/leaderboard", "/profile", "/teams", "/pricing", "/settings")
PLATFORMS = ("web", "ios", "android")
PAYMENT_FAILURES = ("card_declined", "insufficient_funds", "expired_card", "processing_error")
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "SEK", "BRL")
CURRENCY_WEIGHTS = (0.4, 0.25, 0.12, 0.07, 0.06, 0.05, 0.05)

TIERS = ("starter", "pro", "team")
TIER_WEIGHTS = tuple(itertools.accumulate((60, 30, 10)))
TIER_FACTORS = (1.0, 2.5, 6.0)
INTERVAL_WEIGHTS = tuple(itertools.accumulate((3, 62, 12, 23)))  # week, month, quarter, year
# Price of each interval relative to the monthly price (longer commitments are discounted).
INTERVAL_PRICE = {"week": 0.27, "month": 1.0, "quarter": 2.7, "year": 9.6}
# Chance per billing cycle that a customer cancels, or changes plan, of their own accord.
CANCEL_PER_CYCLE = {"week": 0.012, "month": 0.045, "quarter": 0.11, "year": 0.22}
CHANGE_PER_CYCLE = {"week": 0.015, "month": 0.06, "quarter": 0.14, "year": 0.25}

FORMATS = ("single_elimination", "double_elimination", "round_robin", "swiss", "battle_royale", "ladder")
FORMAT_WEIGHTS = tuple(itertools.accumulate((38, 18, 14, 20, 6, 4)))
# (smallest, largest) field and minutes per round, by format.
FORMAT_FIELDS = {
    "single_elimination": ((8, 64), 25),
    "double_elimination": ((8, 32), 25),
    "round_robin": ((4, 10), 20),
    "swiss": ((12, 96), 30),
    "battle_royale": ((20, 100), 18),
    "ladder": ((10, 60), 15),
}

# User archetypes: (share, mean days before leaving for good, chance of ever subscribing).
ARCHETYPES = ((0.35, 4.0, 0.06), (0.40, 45.0, 0.30), (0.25, 320.0, 0.60))

ADJECTIVES = ("Northern", "Crimson", "Silver", "Iron", "Golden", "Midnight", "Electric", "Royal", "Wild", "Lucky")
NOUNS = ("Gaming", "Esports", "Arena", "League", "Clash", "Guild", "Cup", "Circuit", "Club", "Tour")


# --- Options ----------------------------------------------------------------------------------


def default_end() -> dt.date:
    """Today (UTC): the default range ends at the start of today."""
    return dt.datetime.now(dt.UTC).date()


def default_start(end: dt.date) -> dt.date:
    return shift_months(end, -14)


@dataclass(frozen=True)
class SeedOptions:
    """What to simulate. Events fall in [start, end) (UTC days, `end` exclusive)."""

    tenants: int = 3
    users_per_tenant: int = 1_000
    start: dt.date = field(default_factory=lambda: default_start(default_end()))
    end: dt.date = field(default_factory=default_end)
    seed: int = 0
    malformed_rate: float = 0.0
    late_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.tenants < 1:
            raise ConfigError(f"tenants must be at least 1, got {self.tenants}")
        if self.users_per_tenant < 1:
            raise ConfigError(f"users_per_tenant must be at least 1, got {self.users_per_tenant}")
        if self.seed < 0:
            raise ConfigError(f"seed must be a whole number >= 0, got {self.seed}")
        for name in ("malformed_rate", "late_rate"):
            rate = getattr(self, name)
            if not 0 <= rate <= 1:
                raise ConfigError(f"{name} must be between 0 and 1, got {rate}")
        if self.start >= self.end:
            raise ConfigError(f"start ({self.start}) must be before end ({self.end})")
        if self.end > default_end():
            raise ConfigError(
                f"end ({self.end}) must not be after today ({default_end()}): events cannot lie in the future"
            )

    @property
    def start_ts(self) -> int:
        return _ts(self.start)

    @property
    def end_ts(self) -> int:
        return _ts(self.end)


def _ts(day: dt.date) -> int:
    return (day - EPOCH.date()).days * DAY


def _datetime(ts: int) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=ts)


@functools.cache
def _time_texts() -> tuple[str, ...]:
    """The text " HH:MM:SS" of each second of the day (about 6 MB, built on the first load)."""
    return tuple(f" {s // HOUR:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY))


@functools.lru_cache(maxsize=1024)
def _date_text(day: int) -> str:
    return (EPOCH + dt.timedelta(days=day)).date().isoformat()


def _timestamp_text(ts: int) -> str:
    """UTC seconds as PostgreSQL timestamp text: several times cheaper to copy than a datetime."""
    return _date_text(ts // DAY) + _time_texts()[ts % DAY]


def _add_months_ts(ts: int, months: int) -> int:
    moment = _datetime(ts)
    day = shift_months(moment.date(), months)
    return _ts(day) + ts % DAY


def _next_cycle(ts: int, interval: str) -> int:
    if interval == "week":
        return ts + 7 * DAY
    return _add_months_ts(ts, {"month": 1, "quarter": 3, "year": 12}[interval])


def _pick(rng: random.Random, values: tuple, cumulative_weights: tuple) -> object:
    return values[bisect.bisect(cumulative_weights, rng.random() * cumulative_weights[-1])]


# --- Tenants and users ------------------------------------------------------------------------


@dataclass
class Tenant:
    """One organization and its users' profiles (arrays indexed by user, in signup order)."""

    index: int
    id: str
    name: str
    created_at: dt.datetime
    currency: str
    amounts_as_text: bool
    monthly_prices: tuple[float, ...]
    tournaments_per_active_user_day: float
    fee_share: float
    signup_ts: np.ndarray
    leave_ts: np.ndarray
    session_rate: np.ndarray
    subscribes: np.ndarray

    def user_id(self, user: int) -> str:
        return f"{self.id}_u{user:06d}"

    def price(self, tier: int, interval: str) -> float:
        return round(self.monthly_prices[tier] * INTERVAL_PRICE[interval], 2)

    def money(self, value: float) -> str | float:
        return f"{value:.2f}" if self.amounts_as_text else value


def _signup_times(rng: np.random.Generator, options: SeedOptions, count: int) -> np.ndarray:
    days = (options.end - options.start).days
    position = np.arange(days) / max(days - 1, 1)
    growth = rng.uniform(math.log(1.5), math.log(4.0))
    weekday = np.array(WEEKDAY_WEIGHTS)[(np.arange(days) + options.start.weekday()) % 7]
    weights = np.exp(growth * position) * weekday * rng.lognormal(0, 0.15, days)
    per_day = rng.multinomial(count, weights / weights.sum())
    day_of_user = np.repeat(np.arange(days), per_day)
    hours = np.array(HOUR_WEIGHTS)
    hour = rng.choice(24, size=count, p=hours / hours.sum())
    seconds = day_of_user * DAY + hour * HOUR + rng.integers(0, HOUR, size=count)
    return np.sort(options.start_ts + seconds)


def make_tenant(options: SeedOptions, index: int) -> Tenant:
    """The tenant's profile and its users, drawn from the tenant's own generator."""
    rng = np.random.default_rng([options.seed, index])
    count = options.users_per_tenant
    signup_ts = _signup_times(rng, options, count)
    shares = [share for share, _, _ in ARCHETYPES]
    archetype = rng.choice(len(ARCHETYPES), size=count, p=shares)
    mean_days = np.array([days for _, days, _ in ARCHETYPES])[archetype]
    leave_ts = signup_ts + (rng.exponential(mean_days) * DAY).astype(np.int64) + HOUR
    payer_factor = rng.uniform(0.7, 1.3)
    subscribe_p = np.array([p for _, _, p in ARCHETYPES])[archetype] * payer_factor
    starter = rng.uniform(4, 12)
    currency = CURRENCIES[rng.choice(len(CURRENCIES), p=CURRENCY_WEIGHTS)]
    tenant_id = f"org_{options.seed}_{index:03d}"
    name = f"{ADJECTIVES[rng.integers(len(ADJECTIVES))]} {NOUNS[rng.integers(len(NOUNS))]} {index + 1}"
    return Tenant(
        index=index,
        id=tenant_id,
        name=name,
        created_at=_datetime(options.start_ts - int(rng.integers(1, 60)) * DAY),
        currency=currency,
        amounts_as_text=bool(rng.random() < 0.5),
        monthly_prices=tuple(round(starter * f) - 0.01 for f in TIER_FACTORS),
        tournaments_per_active_user_day=float(rng.uniform(0.004, 0.012)),
        fee_share=float(rng.uniform(0.2, 0.5)),
        signup_ts=signup_ts,
        leave_ts=leave_ts,
        session_rate=np.clip(rng.lognormal(math.log(0.7), 0.6, count), 0.05, 6.0),
        subscribes=rng.random(count) < subscribe_p,
    )


def user_rows(tenant: Tenant) -> Iterator[tuple]:
    """Rows of `users`: id, tenant_id, email, created_at (the signup)."""
    for user, signup in enumerate(tenant.signup_ts.tolist()):
        yield (tenant.user_id(user), tenant.id, f"player{user}@{tenant.id}.example.com", _datetime(signup))


# --- Events -----------------------------------------------------------------------------------

# emit(event_type, event_data, user_id, session_id, timestamp in UTC seconds)
Emit = Callable[[str, "dict | str", "str | None", "str | None", int], None]


def _simulate_user(tenant: Tenant, user: int, options: SeedOptions, emit: Emit) -> None:
    rng = random.Random(f"{options.seed}/{tenant.index}/{user}")
    user_id = tenant.user_id(user)
    signup = int(tenant.signup_ts[user])
    leaves = int(tenant.leave_ts[user])
    end = options.end_ts
    emit("user_signup", {"source": _pick(rng, SIGNUP_SOURCES, SIGNUP_SOURCE_WEIGHTS)}, user_id, None, signup)
    _simulate_sessions(rng, tenant, user, user_id, signup, min(leaves, end), emit)
    if tenant.subscribes[user]:
        _simulate_subscriptions(rng, tenant, user, user_id, signup, leaves, end, emit)


# The payloads of the most frequent events, serialised once.
_PAGE_VIEW_JSON = tuple(orjson.dumps({"path": page}).decode() for page in PAGES)
_SESSION_JSON = tuple(orjson.dumps({"platform": platform}).decode() for platform in PLATFORMS)
_DECAY_SECONDS = 21 * DAY


def _simulate_sessions(
    rng: random.Random, tenant: Tenant, user: int, user_id: str, signup: int, stop: int, emit: Emit
) -> None:
    """Sessions as a thinned Poisson process: the rate decays from the user's base rate towards
    a third of it over about three weeks, and busy hours and weekdays accept more candidates.
    (This loop makes most of the events, hence the local names.)"""
    base_rate = float(tenant.session_rate[user]) / _ACCEPT_MEAN / DAY  # candidates per second
    session_json = _SESSION_JSON[rng.randrange(3)]
    page_json = _PAGE_VIEW_JSON
    accept = _ACCEPT
    random_ = rng.random
    log, exp = math.log, math.exp
    t = signup + 20
    number = 0
    while t < stop:
        session_id = f"{user_id}_s{number}"
        number += 1
        emit("session_started", session_json, user_id, session_id, t)
        if random_() < 0.6:
            t += 2
            emit("user_login", "{}", user_id, session_id, t)
        while True:
            t += 3 + int(-40.0 * log(1.0 - random_()))
            emit("page_view", page_json[int(random_() * 8)], user_id, session_id, t)
            if random_() < 0.25:
                break
        while True:
            rate = base_rate * (0.3 + 0.7 * exp((signup - t) / _DECAY_SECONDS))
            t += 600 + int(-log(1.0 - random_()) / rate)
            if t >= stop or random_() < accept[(t // HOUR + _WEEK_OFFSET_HOURS) % 168]:
                break


class _Payments:
    """Payment ids of one payer, and the attempts of one charge."""

    def __init__(self, rng: random.Random, tenant: Tenant, prefix: str, end: int, emit: Emit):
        self.rng, self.tenant, self.prefix, self.end, self.emit = rng, tenant, prefix, end, emit
        self.count = 0

    def charge(
        self, t: int, price: float, user_id: str | None, link: dict, *, first_failure: float,
        attempts: int, retry_after: tuple[int, int],
    ) -> tuple[bool, int]:
        """Up to `attempts` attempts, `retry_after` (seconds, least and most) apart; a retry
        succeeds more often than not. Returns (paid, time of the last attempt). Attempts after
        `end` are not emitted but still decide the outcome."""
        rng, tenant = self.rng, self.tenant
        for attempt in range(1, attempts + 1):
            self.count += 1
            data = {"payment_id": f"{self.prefix}_p{self.count}", "amount": tenant.money(price)}
            if rng.random() < (first_failure if attempt == 1 else 0.45):
                if t < self.end:
                    data["reason"] = PAYMENT_FAILURES[rng.randrange(4)]
                    self.emit("payment_failed", data | link, user_id, None, t)
                if attempt < attempts:
                    t += rng.randint(*retry_after)
                continue
            if t < self.end:
                self.emit("payment_completed", data | {"currency": tenant.currency} | link, user_id, None, t)
                if rng.random() < 0.015:
                    refunded = price if rng.random() < 0.7 else round(price / 2, 2)
                    when = t + rng.randint(1, 14) * DAY + rng.randrange(DAY)
                    if when < self.end and refunded > 0:
                        refund = {"payment_id": data["payment_id"], "amount": tenant.money(refunded)}
                        self.emit("payment_refunded", refund, user_id, None, when)
            return True, t
        return False, t


def _simulate_subscriptions(
    rng: random.Random, tenant: Tenant, user: int, user_id: str, signup: int, leaves: int, end: int, emit: Emit
) -> None:
    """Subscriptions one after another: a start (after a trial of about a week), a charge per
    cycle, perhaps a change of plan, and a cancellation; sometimes a re-subscription later."""
    payments = _Payments(rng, tenant, user_id, end, emit)
    start = signup + int(rng.expovariate(1 / 7) * DAY) + rng.randrange(DAY)
    number = 0
    while start < min(leaves + 30 * DAY, end):
        number += 1
        sub_id = f"{user_id}_sub{number}"
        tier = TIERS.index(_pick(rng, TIERS, TIER_WEIGHTS))
        interval = _pick(rng, events.INTERVALS, INTERVAL_WEIGHTS)
        price = tenant.price(tier, interval)
        link = {"subscription_id": sub_id}
        emit(
            "subscription_started",
            {"subscription_id": sub_id, "plan_id": f"{TIERS[tier]}_{interval}", "amount": tenant.money(price),
             "interval": interval, "currency": tenant.currency},
            user_id, None, start,
        )
        cycle = start
        ended = None
        while ended is None:
            paid, last_attempt = payments.charge(
                cycle + 5, price, user_id, link, first_failure=0.05, attempts=4, retry_after=(DAY, 3 * DAY + HOUR)
            )
            if not paid:
                ended = last_attempt + HOUR
                if ended < end:
                    emit("subscription_cancelled", link | {"reason": "payment_failed"}, user_id, None, ended)
                break
            following = _next_cycle(cycle, interval)
            length = following - cycle
            cancel = None
            if leaves < following and rng.random() < 0.7:
                cancel = max(leaves, cycle + HOUR) + rng.randrange(14 * DAY)
            elif rng.random() < CANCEL_PER_CYCLE[interval]:
                cancel = cycle + int(length * rng.uniform(0.05, 0.95))
            if rng.random() < CHANGE_PER_CYCLE[interval]:
                changed = cycle + int(length * rng.uniform(0.05, 0.95))
                if changed < end and (cancel is None or changed < cancel):
                    tier, interval = _changed_plan(rng, tier, interval)
                    price = tenant.price(tier, interval)
                    emit(
                        "subscription_changed",
                        link | {"plan_id": f"{TIERS[tier]}_{interval}", "amount": tenant.money(price),
                                "interval": interval},
                        user_id, None, changed,
                    )
            if cancel is not None and cancel < following:
                ended = cancel
                if cancel < end:
                    emit("subscription_cancelled", link | {"reason": "customer_request"}, user_id, None, cancel)
            elif following >= end:
                return
            cycle = following
        if ended >= end:
            return
        comeback = 0.35 if ended < leaves else 0.08
        if rng.random() >= comeback:
            return
        start = ended + int(rng.expovariate(1 / 45) * DAY) + HOUR


def _changed_plan(rng: random.Random, tier: int, interval: str) -> tuple[int, str]:
    """Upgrades are twice as common as downgrades; a quarter of changes switch monthly to annual
    billing (or back) instead."""
    if interval in ("month", "year") and rng.random() < 0.25:
        return tier, "year" if interval == "month" else "month"
    if tier == 0 or (tier < 2 and rng.random() < 0.67):
        return tier + 1, interval
    return tier - 1, interval


def _simulate_tournaments(tenant: Tenant, options: SeedOptions, emit: Emit) -> Iterator[str]:
    """Tournaments created each day in proportion to the users active that day; players are
    drawn from the users active when the tournament is announced."""
    rng = random.Random(f"{options.seed}/{tenant.index}/tournaments")
    picker = np.random.default_rng([options.seed, tenant.index, 1])
    end = options.end_ts
    days = (options.end - options.start).days
    day_starts = options.start_ts + np.arange(days) * DAY
    signed_up = np.searchsorted(tenant.signup_ts, day_starts + DAY // 2, side="right")
    left = np.searchsorted(np.sort(tenant.leave_ts), day_starts + DAY // 2, side="right")
    per_day = picker.poisson((signed_up - left) * tenant.tournaments_per_active_user_day)
    payments = _Payments(rng, tenant, f"{tenant.id}_t", end, emit)
    number = 0
    for day, count in enumerate(per_day.tolist()):
        for _ in range(count):
            number += 1
            created = int(day_starts[day]) + rng.randrange(DAY)
            candidates = np.flatnonzero(tenant.leave_ts[: np.searchsorted(tenant.signup_ts, created)] > created)
            if len(candidates) == 0:
                continue
            _simulate_tournament(rng, picker, tenant, number, created, candidates, payments, end, emit)
            yield TOURNAMENT_DONE


def _simulate_tournament(
    rng: random.Random, picker: np.random.Generator, tenant: Tenant, number: int, created: int,
    candidates: np.ndarray, payments: _Payments, end: int, emit: Emit,
) -> None:
    tournament_id = f"{tenant.id}_t{number}"
    fmt = _pick(rng, FORMATS, FORMAT_WEIGHTS)
    (smallest, largest), minutes_per_round = FORMAT_FIELDS[fmt]
    organizer = tenant.user_id(int(candidates[rng.randrange(len(candidates))]))
    link = {"tournament_id": tournament_id}
    emit("tournament_created", link | {"format": fmt}, organizer, None, created)
    starts = created + rng.randint(1, 10) * DAY + rng.randrange(-6 * HOUR, 6 * HOUR)
    field_size = rng.randint(smallest, largest)
    wanted = max(1, int(field_size * rng.uniform(0.3, 1.0)))
    players = picker.choice(candidates, size=min(wanted, len(candidates)), replace=False)
    fee = rng.choice((2, 5, 10, 15, 20)) if rng.random() < tenant.fee_share else 0
    registered: list[tuple[str, str | None]] = []  # (user_id, payment_id)
    for player in players.tolist():
        user_id = tenant.user_id(player)
        when = created + rng.randrange(starts - created - HOUR)
        if when >= end:
            continue
        payment_id = None
        if fee:
            paid, when = payments.charge(
                when, fee, user_id, link, first_failure=0.04, attempts=2, retry_after=(60, 600)
            )
            if not paid:
                continue
            payment_id = f"{payments.prefix}_p{payments.count}"
        emit("player_registered", link, user_id, None, when + 30)
        registered.append((user_id, payment_id))
    if starts >= end:
        return
    if len(registered) < max(2, smallest // 2) or rng.random() < 0.08:
        emit("tournament_cancelled", link, None, None, starts - rng.randrange(HOUR // 2))
        for user_id, payment_id in registered:
            if payment_id:
                refund = {"payment_id": payment_id, "amount": tenant.money(fee)}
                emit("payment_refunded", refund, user_id, None, starts + rng.randrange(HOUR, DAY))
        return
    emit("tournament_started", link, None, None, starts)
    if rng.random() < 0.03:
        return  # abandoned: started, never completed
    rounds = {
        "single_elimination": math.ceil(math.log2(len(registered))),
        "double_elimination": 2 * math.ceil(math.log2(len(registered))) + 1,
        "round_robin": len(registered) - 1,
        "swiss": math.ceil(math.log2(len(registered))) + 1,
    }.get(fmt, 3)
    duration = max(5, round(rounds * minutes_per_round * rng.uniform(0.7, 1.4)))
    finished = starts + duration * 60
    if finished < end:
        emit("tournament_completed", link | {"duration_minutes": duration}, None, None, finished)


USER_DONE = "user"
TOURNAMENT_DONE = "tournament"


def tenant_events(tenant: Tenant, options: SeedOptions, emit: Emit) -> Iterator[str]:
    """Emit every event of one tenant: each user's life, then the tournaments. Yields
    USER_DONE after each user and TOURNAMENT_DONE after each tournament, so that a caller can
    report progress or pass the events on in small batches."""
    for user in range(options.users_per_tenant):
        _simulate_user(tenant, user, options, emit)
        yield USER_DONE
    yield from _simulate_tournaments(tenant, options, emit)


# --- Rows: ids, lateness and damage -----------------------------------------------------------

EVENT_COLUMNS = ("id", "tenant_id", "event_type", "event_data", "user_id", "session_id", "timestamp", "created_at")
EVENTS_COPY = f"COPY analytics_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN"


@dataclass
class EventCounts:
    """How many of the events written were damaged (`malformed_rate`) and recorded late
    (`late_rate`)."""

    malformed: int = 0
    late: int = 0


def event_writer(
    tenant: Tenant,
    options: SeedOptions,
    write: Callable[[tuple], None] | Callable[[str], None],
    result: EventCounts,
    *,
    copy_text: bool = False,
) -> tuple[Emit, Callable[[], int]]:
    """An `emit` that turns events into rows of analytics_events for one tenant, passed to
    `write`, and a function giving how many it wrote. A row gets an id in emission order, its
    created_at (late for a share) and, for a share, damage; the shares are drawn from the
    tenant's own noise generator so that the rates do not change the events themselves.
    `event_data` may come as a dict or as JSON text already.

    With `copy_text`, `write` gets each row as a line of COPY's text format (EVENTS_COPY) instead
    of a tuple: one f-string here is cheaper than psycopg's `write_row` (about 0.7 µs a row), and
    this runs for every event. Only event_data is escaped: ids, types and timestamps must hold no
    tab, line break or backslash (the simulation's are letters, digits, underscores and
    punctuation)."""
    prefix = f"{tenant.id}_e"
    tenant_id = tenant.id
    end = options.end_ts
    noise = random.Random(f"{options.seed}/{tenant.index}/noise")
    malformed_rate = options.malformed_rate
    late_rate = options.late_rate
    dumps = orjson.dumps
    moment_text = _timestamp_text
    # The date texts of the range, looked up in a dict: cheaper than _date_text's cache, and
    # a day outside the range fails loudly.
    dates = {day: _date_text(day) for day in range(options.start_ts // DAY, end // DAY)}
    times = _time_texts()
    escape = _copy_escape
    null = "\\N"
    count = 0

    def emit(event_type: str, data: dict | str, user_id: str | None, session_id: str | None, ts: int) -> None:
        nonlocal count
        if ts >= end:  # the simulation may run past the range; the data set ends at `end`
            return
        count += 1
        moment = dates[ts // DAY] + times[ts % DAY]  # _timestamp_text, inlined: this runs for every event
        created = moment
        if late_rate and noise.random() < late_rate:
            created = moment_text(min(ts + noise.randint(HOUR, 48 * HOUR), end - 1))
            result.late += 1
        given = data.__class__ is str
        text = data if given else dumps(data).decode()
        if malformed_rate and noise.random() < malformed_rate:
            text, user_id = damage(noise, event_type, orjson.loads(text), user_id)
            given = False
            result.malformed += 1
        if copy_text:
            if given:
                text = escape(text)
            elif "\\" in text:  # orjson escapes control characters: only backslashes remain to double
                text = text.replace("\\", "\\\\")
            write(
                f"{prefix}{str(count).zfill(8)}\t{tenant_id}\t{event_type}\t{text}\t"
                f"{null if user_id is None else user_id}\t{null if session_id is None else session_id}\t"
                f"{moment}\t{created}\n"
            )
        else:
            write((f"{prefix}{count:08d}", tenant_id, event_type, text, user_id, session_id, moment, created))

    return emit, lambda: count


@functools.lru_cache(maxsize=4096)
def _copy_escape(text: str) -> str:
    """Text as a field of COPY's text format. Cached: most events carry one of a few payloads
    given as JSON text already."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def damage(rng: random.Random, event_type: str, data: dict, user_id: str | None) -> tuple[str, str | None]:
    """The event's JSON text and user_id, broken in one of the ways the contract rejects."""
    spec = events.EVENT_TYPES[event_type]
    ways = ["not_object"]
    if spec.needs_user:
        ways.append("no_user")
    ways += [f"drop:{name}" for name in spec.required]
    ways += [f"empty:{name}" for name in spec.required if name.endswith("_id") or name == "format"]
    if "amount" in spec.required:
        ways += ["negative_amount", "text_amount"]
    if "interval" in spec.required:
        ways.append("bad_interval")
    way = rng.choice(ways)
    broken = dict(data)
    if way == "not_object":
        return orjson.dumps([data]).decode(), user_id
    if way == "no_user":
        user_id = None
    elif way.startswith("drop:"):
        broken.pop(way[5:], None)
    elif way.startswith("empty:"):
        broken[way[6:]] = ""
    elif way == "negative_amount":
        broken["amount"] = -1 - abs(float(events.amount(data) or 0))
    elif way == "text_amount":
        broken["amount"] = "twelve"
    elif way == "bad_interval":
        broken["interval"] = "fortnight"
    if events.problem(event_type, broken, user_id) is None:  # pragma: no cover - a guard
        return orjson.dumps([data]).decode(), user_id
    return orjson.dumps(broken).decode(), user_id


def generate(options: SeedOptions, tenants: range | None = None) -> Iterator[tuple[str, tuple]]:
    """All rows, as ("organizations" | "users" | "analytics_events", row), tenant by tenant: the
    rows `load.load` writes, for tests and tools. Events are passed on after each user and tournament."""
    result = EventCounts()
    for index in tenants if tenants is not None else range(options.tenants):
        tenant = make_tenant(options, index)
        yield "organizations", (tenant.id, tenant.name, tenant.created_at)
        for row in user_rows(tenant):
            yield "users", row
        batch: list[tuple] = []
        emit, _ = event_writer(tenant, options, batch.append, result)
        for _ in tenant_events(tenant, options, emit):
            for row in batch:
                yield "analytics_events", row
            batch.clear()


DEMO = {"tenants": 4, "users_per_tenant": 2_000, "seed": 2025, "malformed_rate": 0.001, "late_rate": 0.01}


def demo_options() -> SeedOptions:
    """A few tenants over the 14 months ending today, about a million events, a few malformed
    and late ones so that the checks and the new-events sensor have something to show.

    `ANALYTICS_DEMO_USERS_PER_TENANT` scales it (events grow with users), for a small machine or
    a test of the first start."""
    raw = os.environ.get("ANALYTICS_DEMO_USERS_PER_TENANT", str(DEMO["users_per_tenant"]))
    users = int(raw) if raw.isdigit() else 0
    if not 1 <= users <= 100_000:
        raise ConfigError(f"ANALYTICS_DEMO_USERS_PER_TENANT must be a whole number from 1 to 100000, got {raw!r}")
    return SeedOptions(**(DEMO | {"users_per_tenant": users}))
