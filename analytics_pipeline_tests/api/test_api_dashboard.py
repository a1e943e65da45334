"""The dashboard page in a real browser: Debian's headless chromium driven by Playwright, against
the API served by uvicorn on loopback, on a real PostgreSQL and Redis.

`UPDATE_DASHBOARD_SCREENSHOT=1` also writes docs/dashboard.png."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa

from analytics_pipeline.api.app import create_app
from analytics_pipeline.core.settings import PROJECT_DIR

from .api_data import add_cohort_segment_rows, add_dashboard_tenant, add_segment_rows, add_worse_month_tenant
from ..api_support import api_env, redis_prefix, redis_server_url, served, token

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
TODAY = dt.datetime.now(dt.UTC).date()
CHARTS = ("chart-mrr", "chart-bridge", "chart-movements", "chart-cohorts", "chart-tournaments", "chart-formats")

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed (.ci/run installs it)")


def _set_materialized(engine, **ages: dt.timedelta) -> None:
    """aggregate_freshness as if each aggregate's last run began that long ago."""
    with engine.begin() as conn:
        for aggregate, age in ages.items():
            conn.execute(sa.text(
                "INSERT INTO aggregate_freshness (aggregate, materialized_at) "
                "VALUES (:a, timezone('utc', now()) - :age) "
                "ON CONFLICT (aggregate) DO UPDATE SET materialized_at = EXCLUDED.materialized_at"
            ), {"a": aggregate, "age": age})


@pytest.fixture
def base_url(api_env, db_url, engine) -> Iterator[str]:
    add_dashboard_tenant(engine, "acme", TODAY, scale=1, opening_mrr=4000)
    add_dashboard_tenant(engine, "globex", TODAY, scale=6, opening_mrr=9000)
    add_worse_month_tenant(engine, "initech", TODAY)
    add_segment_rows(engine, "acme")
    add_segment_rows(engine, "globex", extra_plans=12)  # 15 plans: more than the MRR chart stacks
    add_cohort_segment_rows(engine, "acme")
    with engine.begin() as conn:  # acme has no row: the default, USD
        conn.execute(sa.text("INSERT INTO organization_settings (organization_id, currency) VALUES ('globex', 'EUR')"))
    recently = dt.timedelta(seconds=40)
    _set_materialized(engine, revenue_aggregates=recently, tournament_aggregates=recently, user_cohorts=recently)
    with served(create_app(db_url)) as url:
        yield url


# Reports every Content-Security-Policy violation of a page to its console (Chromium also logs
# them there itself); added by the browser, not by the page, so the policy does not apply to it.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`Content Security Policy violation: ${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


class Browser:
    """Chromium whose pages report Content-Security-Policy violations in `violations`."""

    def __init__(self, browser):
        self.browser = browser
        self.violations: list[str] = []

    def new_page(self, **kwargs):
        page = self.browser.new_page(**kwargs)
        page.add_init_script(CSP_LISTENER)
        page.on("console", self._console)
        return page

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)


@pytest.fixture
def browser():
    """Every test in the browser fails on any Content-Security-Policy violation of its pages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        browser = Browser(chromium)
        yield browser
        chromium.close()
    assert browser.violations == [], browser.violations


def _period_value(engine, tenant, period_type, column):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            f"SELECT {column} FROM revenue_aggregates WHERE tenant_id = :t AND period_type = :p "
            "AND period_start = date_trunc(:p, CAST(:d AS date))::date"
        ), {"t": tenant, "p": period_type, "d": TODAY}).scalar_one()


def _tile(page, kpi) -> Decimal:
    return Decimal(page.get_attribute(f'[data-kpi="{kpi}"] .value', "data-value"))


def _open(browser, base_url, bearer: str, requests: list[str]):
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{base_url}/#token={bearer}")
    return page


def _wait_for(page, state: str, renders: int = 0, seconds: float = 60) -> None:
    """Until the page says `state` (after at least `renders` renders); polled from here, which
    stays reliable on a loaded machine."""
    deadline = time.monotonic() + seconds
    while True:
        now_state, now_renders = page.evaluate("() => [document.body.dataset.state, Number(document.body.dataset.renders || 0)]")
        if now_state == state and now_renders >= renders:
            return
        assert time.monotonic() < deadline, f"the page is {now_state!r} after {now_renders} renders, not {state!r}"
        page.wait_for_timeout(100)


def _wait_ready(page, renders: int = 1):
    _wait_for(page, "ready", renders)


def test_the_dashboard_shows_the_tenants_numbers(browser, base_url, engine):
    requests: list[str] = []
    page = _open(browser, base_url, token("acme"), requests)
    _wait_ready(page)

    # Every chart is drawn by plotly (an svg of its own); the reports table lists acme's report.
    for chart in CHARTS:
        assert page.locator(f"#{chart} .main-svg").count() >= 1, chart
    assert page.locator("#chart-cohorts .heatmaplayer").count() == 1
    assert page.locator("#chart-bridge .waterfalllayer").count() == 1
    assert "Weekly revenue summary" in page.inner_text("#reports") and "sent" in page.inner_text("#reports")

    # The tiles: this month's figures of acme, as stored.
    month_mrr = _period_value(engine, "acme", "month", "mrr")
    month_new = _period_value(engine, "acme", "month", "new_revenue")
    assert _tile(page, "mrr") == month_mrr
    assert _tile(page, "new_revenue") == month_new
    assert _tile(page, "arr") == month_mrr * 12
    shown = page.inner_text('[data-kpi="mrr"] .value')
    assert shown == f"{month_mrr:,.2f} USD"
    assert page.inner_text("#currency") == "Amounts in USD"

    if os.environ.get("UPDATE_DASHBOARD_SCREENSHOT") == "1":
        page.wait_for_timeout(500)
        page.screenshot(path=str(PROJECT_DIR / "docs" / "dashboard.png"), full_page=True)

    # Switching the period to weeks shows this week's numbers.
    page.select_option("#period-type", "week")
    _wait_ready(page, renders=2)
    for chart in CHARTS:  # drawn again
        assert page.locator(f"#{chart} .main-svg").count() >= 1, chart
    week_new = _period_value(engine, "acme", "week", "new_revenue")
    assert week_new != month_new
    assert _tile(page, "new_revenue") == week_new
    assert _tile(page, "mrr") == _period_value(engine, "acme", "week", "mrr")

    # Nothing was fetched from anywhere but the API.
    assert requests and all(url.startswith(base_url) for url in requests), [u for u in requests if not u.startswith(base_url)]
    page.close()


def _view_kpis(engine, tenant, period_type):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT * FROM revenue_kpis WHERE tenant_id = :t AND period_type = :p "
            "AND period_start = date_trunc(:p, CAST(:d AS date))::date"
        ), {"t": tenant, "p": period_type, "d": TODAY}).mappings().one()


def test_the_kpi_tiles_show_the_views_kpis_in_their_units(browser, base_url, engine):
    page = _open(browser, base_url, token("acme"), [])
    _wait_ready(page)
    month = _view_kpis(engine, "acme", "month")
    assert month["active_customers"] > 0 and month["nrr"] is not None  # the data has both
    assert _tile(page, "active_customers") == month["active_customers"]
    assert page.inner_text('[data-kpi="active_customers"] .value') == f"{month['active_customers']:,}"
    assert _tile(page, "arpa") == month["arpa"]
    assert page.inner_text('[data-kpi="arpa"] .value') == f"{month['arpa']:,.2f} USD"
    for ratio in ("logo_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "grr", "nrr"):
        # JSON carries the fraction as a double; the tile shows it in percent.
        assert abs(_tile(page, ratio) - month[ratio]) < Decimal("1e-12"), ratio
        assert page.inner_text(f'[data-kpi="{ratio}"] .value') == f"{month[ratio] * 100:,.1f}%", ratio
    # This data stores no trailing-twelve-month cohort figures: NULL, and n/a is shown, not 0.
    assert month["ttm_nrr"] is None
    assert page.get_attribute('[data-kpi="ttm_nrr"] .value', "data-value") == ""
    assert page.inner_text('[data-kpi="ttm_nrr"] .value') == "n/a"

    # Weeks have no trailing-twelve-month tiles.
    page.select_option("#period-type", "week")
    _wait_ready(page, renders=2)
    week = _view_kpis(engine, "acme", "week")
    assert abs(_tile(page, "nrr") - week["nrr"]) < Decimal("1e-12")
    assert page.locator('[data-kpi="ttm_nrr"]').count() == 0
    page.close()


def test_another_tenants_token_shows_only_that_tenants_numbers(browser, base_url, engine):
    page = _open(browser, base_url, token("globex"), [])
    _wait_ready(page)
    globex_mrr = _period_value(engine, "globex", "month", "mrr")
    acme_mrr = _period_value(engine, "acme", "month", "mrr")
    assert _tile(page, "mrr") == globex_mrr
    assert "globex" in page.inner_text("#tenant-label")
    # globex's amounts are in its currency, beside every amount tile and under the page.
    assert page.inner_text('[data-kpi="mrr"] .value') == f"{globex_mrr:,.2f} EUR"
    assert page.inner_text("#currency") == "Amounts in EUR"
    assert page.locator('[data-kpi="active_customers"] .currency').count() == 0  # a count has none
    text = page.inner_text("body")
    assert f"{acme_mrr:,.2f}" not in text and "acme" not in text
    page.close()


def _freshness(page, aggregate) -> tuple[str, str | None]:
    item = page.locator(f'#freshness [data-aggregate="{aggregate}"]')
    return item.inner_text(), item.get_attribute("data-stale")


def test_the_page_says_when_its_data_was_computed_and_flags_stale_data(browser, base_url, engine):
    # Revenue 40 s old; tournaments 3 h old, past their warn window (75 min: an hourly run is
    # overdue); cohorts 3 h old, well within theirs (25 h: the daily run).
    _set_materialized(engine, tournament_aggregates=dt.timedelta(hours=3), user_cohorts=dt.timedelta(hours=3))
    page = _open(browser, base_url, token("acme"), [])
    _wait_ready(page)

    text, stale = _freshness(page, "revenue_aggregates")
    seconds = int(re.fullmatch(r"Revenue updated (\d+) s ago", text).group(1))
    assert 40 <= seconds < 60 and stale == "false"
    assert page.locator('#freshness [data-aggregate="revenue_aggregates"] .stale').count() == 0
    assert _freshness(page, "user_cohorts") == ("Cohorts updated 3 h ago", "false")
    text, stale = _freshness(page, "tournament_aggregates")
    assert re.fullmatch(r"Tournaments updated 3 h ago\s*stale", text) and stale == "true", text
    assert page.is_visible('#freshness [data-aggregate="tournament_aggregates"] .badge.stale')

    # The ages count on while the page stays open.
    deadline = time.monotonic() + 15
    while True:
        later = int(re.fullmatch(r"Revenue updated (\d+) s ago", _freshness(page, "revenue_aggregates")[0]).group(1))
        if later > seconds:
            break
        assert time.monotonic() < deadline, "the age was not redrawn"
        page.wait_for_timeout(250)
    page.close()


def test_an_expired_token_shows_the_sign_in_message(browser, base_url):
    page = _open(browser, base_url, token("acme", ttl=dt.timedelta(seconds=-5)), [])
    _wait_for(page, "signed-out")
    assert page.is_visible("#sign-in")
    assert not page.is_visible("#dashboard")
    assert "expired" in page.inner_text("#sign-in-message")
    # Signing in again with a valid token opens the dashboard.
    page.fill("#token-input", token("acme"))
    page.click("#sign-in-form button")
    _wait_ready(page)
    assert page.is_visible("#dashboard")
    page.close()


def test_without_a_token_the_page_asks_to_sign_in(browser, base_url):
    page = browser.new_page()
    page.goto(base_url + "/")
    _wait_for(page, "signed-out")
    assert "Paste the access token" in page.inner_text("#sign-in-message")
    page.close()


def test_the_policy_is_enforced_and_docs_work_under_it(browser, base_url):
    page = browser.new_page()
    page.goto(base_url + "/docs")
    page.wait_for_selector(".swagger-ui .opblock-summary-path", timeout=30_000)
    shown = {page.inner_text(f".opblock-summary-path >> nth={i}") for i in range(page.locator(".opblock-summary-path").count())}
    assert {"/v1/revenue", "/v1/kpis", "/v1/cohorts", "/readyz"} <= {p.replace("\u200b", "") for p in shown}
    # An inline script, as an injection would add one, does not run, and is reported.
    ran = page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.appendChild(script);
        return window.injected === true;
    }""")
    page.wait_for_timeout(200)
    assert ran is False
    assert browser.violations and all("script-src" in v for v in browser.violations), browser.violations
    browser.violations.clear()  # the one this test caused on purpose
    page.close()


MARKUP = '<b>bold</b><img src=x onerror="document.body.dataset.injected = 1">'


def test_tenant_strings_are_text_in_charts_and_tables(browser, base_url, engine):
    """A tenant's user names tournament formats and reports: markup in them is shown as text."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE tournament_aggregates SET most_popular_format = :f WHERE tenant_id = 'acme'"),
                     {"f": MARKUP})
        conn.execute(sa.text("UPDATE scheduled_reports SET name = :f WHERE tenant_id = 'acme'"), {"f": MARKUP})
    page = _open(browser, base_url, token("acme"), [])
    _wait_ready(page)
    page.wait_for_timeout(300)
    # The pie's label is the whole string, as text: no bold run, no image, nothing ran.
    labels = page.locator("#chart-formats text.slicetext").all_text_contents()
    assert any(MARKUP in label.replace("\n", "") for label in labels), labels
    assert page.locator("#chart-formats tspan[style*='bold']").count() == 0
    assert page.locator("img").count() == 0
    assert page.evaluate("() => document.body.dataset.injected") is None
    # The reports table shows the name as written.
    assert page.inner_text("#reports tbody td >> nth=0") == MARKUP
    assert page.locator("#reports b").count() == 0
    page.close()


def _month_label(first: dt.date, last: dt.date) -> str:
    return f"{first.day} {first:%b}" if first == last else f"{first.day}–{last.day} {last:%b}"


def _sum_of_days(engine, tenant, first, last, column):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            f"SELECT sum({column}) FROM revenue_aggregates WHERE tenant_id = :t AND period_type = 'day' "
            "AND period_start BETWEEN :f AND :l"
        ), {"t": tenant, "f": first, "l": last}).scalar_one()


def test_the_tiles_say_which_days_they_compare(browser, base_url, engine):
    """By default the running month to date against as many days of the month before, labelled;
    the last complete months on request."""
    start = TODAY.replace(day=1)
    month_end = (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    previous_start = (start - dt.timedelta(days=1)).replace(day=1)
    previous_end = start - dt.timedelta(days=1)
    if TODAY == month_end:
        previous_last, how = previous_end, "complete periods"
    else:
        previous_last, how = min(previous_start + (TODAY - start), previous_end), "period to date"
    vs = _month_label(previous_start, previous_last)

    page = _open(browser, base_url, token("acme"), [])
    _wait_ready(page)
    assert page.input_value("#compare") == "to_date"
    assert page.inner_text("#comparison") == f"Key figures: {_month_label(start, TODAY)} vs {vs} ({how})"
    assert page.inner_text('[data-kpi="new_revenue"] .delta').endswith(f" vs {vs}")
    assert _tile(page, "new_revenue") == _sum_of_days(engine, "acme", start, TODAY, "new_revenue")
    # The new MRR of the month before's first days, not of the whole month.
    previous = _sum_of_days(engine, "acme", previous_start, previous_last, "new_revenue")
    expected = (100 * (_tile(page, "new_revenue") - previous) / previous).quantize(Decimal("0.1"))
    shown = re.fullmatch(r"[▲▼] ([\d.]+)% vs .*", page.inner_text('[data-kpi="new_revenue"] .delta'))
    assert Decimal(shown.group(1)) == abs(expected)

    page.select_option("#compare", "complete")
    _wait_ready(page, renders=2)
    complete = _month_label(start, month_end) if TODAY == month_end else _month_label(previous_start, previous_end)
    assert page.inner_text("#comparison").startswith(f"Key figures: {complete} vs ")
    assert page.inner_text("#comparison").endswith("(complete periods)")
    last_complete = (start, month_end) if TODAY == month_end else (previous_start, previous_end)
    assert _tile(page, "new_revenue") == _sum_of_days(engine, "acme", *last_complete, "new_revenue")
    page.close()


# Whether each tile's rise is good or bad news, worked out here: the figures a business wants
# down are churn, contraction and refunds (docs/metrics.md).
RISE_IS_BAD = ("churned_revenue", "contraction_revenue", "churned_customers", "refund_count", "refund_amount")
RISE_IS_GOOD = ("mrr", "arr", "active_customers")


def test_tiles_colour_a_change_by_whether_it_is_good_news(browser, base_url, engine):
    """initech's churn, contraction and refunds rose this month while its MRR rose: the first are
    marked bad (red, arrow up), MRR good (green, arrow up)."""
    page = _open(browser, base_url, token("initech"), [])
    _wait_ready(page)
    colours = page.evaluate("""() => {
        const style = getComputedStyle(document.documentElement);
        const probe = (name) => { const e = document.createElement("i"); e.style.color = style.getPropertyValue(name);
                                  document.body.append(e); const c = getComputedStyle(e).color; e.remove(); return c; };
        return { good: probe("--good"), bad: probe("--bad") };
    }""")
    assert colours["good"] != colours["bad"]
    for kpi, tone in [*((k, "bad") for k in RISE_IS_BAD), *((k, "good") for k in RISE_IS_GOOD)]:
        delta = page.locator(f'[data-kpi="{kpi}"] .delta')
        assert delta.get_attribute("data-tone") == tone, kpi
        assert delta.inner_text().startswith("▲ "), (kpi, delta.inner_text())
        assert delta.evaluate("(e) => getComputedStyle(e).color") == colours[tone], kpi
    page.close()


TRACES = "(id) => document.getElementById(id).data.map((t) => ({name: t.name, x: t.x, y: t.y, stackgroup: t.stackgroup}))"


def _month_mrr(engine, tenant) -> dict[str, Decimal]:
    with engine.connect() as conn:
        return {str(day): mrr for day, mrr in conn.execute(sa.text(
            "SELECT period_start, mrr FROM revenue_aggregates WHERE tenant_id = :t AND period_type = 'month'"
        ), {"t": tenant})}


def _cents(value) -> Decimal:
    return round(Decimal(str(value)), 2)


@pytest.mark.parametrize("tenant, plans", [
    ("acme", ["basic", "pro", "team"]),
    # Ten plans with the most MRR over the range (the seven of 0.01 each in text order), the other
    # five (0.05 a month) as one.
    ("globex", ["basic", "pro", "team", *(f"plan-{n:02d}" for n in range(1, 8)), "Other"]),
])
def test_by_plan_the_mrr_chart_stacks_the_plans_and_they_add_up_to_all(browser, base_url, engine, tenant, plans):
    page = _open(browser, base_url, token(tenant), [])
    _wait_ready(page)
    [mrr, _arr] = page.evaluate(TRACES, "chart-mrr")
    [*_movements, net] = page.evaluate(TRACES, "chart-movements")
    stored = _month_mrr(engine, tenant)
    assert [_cents(y) for y in mrr["y"]] == [stored[x] for x in mrr["x"]]  # All: revenue_aggregates' MRR

    page.select_option("#segment", "plan")
    _wait_ready(page, renders=2)
    traces = page.evaluate(TRACES, "chart-mrr")
    assert [t["name"] for t in traces] == plans
    assert {t["stackgroup"] for t in traces} == {"mrr"}
    assert page.locator("#chart-mrr .scatterlayer .trace").count() == len(plans)  # drawn, one area each
    assert all(t["x"] == mrr["x"] for t in traces)
    for i, period in enumerate(mrr["x"]):
        assert sum(_cents(t["y"][i]) for t in traces) == stored[period], period
    if "Other" in plans:
        assert {_cents(y) for y in traces[-1]["y"]} == {Decimal("0.05")}
    # The movements per plan, and their net (transfers cancel out) the net new MRR of All.
    movements = page.evaluate(TRACES, "chart-movements")
    assert [t["name"] for t in movements] == [*plans, "Net"]
    assert [_cents(y) for y in movements[-1]["y"]] == [_cents(y) for y in net["y"]]
    for i in range(len(net["x"])):
        assert sum(_cents(t["y"][i]) for t in movements[:-1]) == _cents(net["y"][i])
    assert "Segments" in page.inner_text('#freshness [data-aggregate="revenue_segments"]')

    page.select_option("#segment", "")
    _wait_ready(page, renders=3)
    assert [t["name"] for t in page.evaluate(TRACES, "chart-mrr")] == ["MRR", "ARR (right axis)"]
    assert page.locator("#chart-mrr .scatterlayer .trace").count() == 2
    page.close()


HEATMAP = "() => { const t = document.getElementById('chart-cohorts').data[0]; return {y: t.y, z: t.z}; }"


def _rates(engine, tenant, value=None) -> dict[tuple[str, int], Decimal]:
    """(cohort month, month number) -> retention rate as a fraction, of the value of first_plan
    (user_cohort_segments) or, without one, of the whole cohort (user_cohorts, in percent)."""
    sql = ("SELECT cohort_month, month_number, retention_rate FROM user_cohort_segments "
           "WHERE tenant_id = :t AND dimension = 'first_plan' AND value = :v") if value else (
           "SELECT cohort_month, month_number, retention_rate / 100 AS retention_rate FROM user_cohorts WHERE tenant_id = :t")
    with engine.connect() as conn:
        return {(f"{month:%Y-%m}", number): rate for month, number, rate in conn.execute(sa.text(sql), {"t": tenant, "v": value})}


def _heatmap(page) -> dict[tuple[str, int], Decimal]:
    shown = page.evaluate(HEATMAP)
    return {(month, number): round(Decimal(str(rate)), 4) for month, row in zip(shown["y"], shown["z"])
            for number, rate in enumerate(row) if rate is not None}


def _month_to_date(engine, tenant, value, column, level):
    """The plan's figure of this month's days up to today, from its day rows: the last one's for a
    level, their sum for a flow (docs/metrics.md#segment-kpis)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            f"SELECT {column} FROM revenue_segments WHERE tenant_id = :t AND period_type = 'day' "
            "AND dimension = 'plan' AND value = :v AND period_start BETWEEN :f AND :l ORDER BY period_start"
        ), {"t": tenant, "v": value, "f": TODAY.replace(day=1), "l": TODAY}).scalars().all()
    return rows[-1] if level else sum(rows)


def test_by_plan_the_page_shows_each_plans_key_figures_and_its_cohorts(browser, base_url, engine):
    page = _open(browser, base_url, token("acme"), [])
    _wait_ready(page)
    assert not page.is_visible("#segment-kpis-panel") and not page.is_visible("#cohort-value-picker")
    everyone = _rates(engine, "acme")
    assert _heatmap(page).items() <= everyone.items() and len(_heatmap(page)) > 20

    page.select_option("#segment", "plan")
    _wait_ready(page, renders=2)
    # One row per plan, by this month's MRR, largest first, each figure the plan's month to date.
    assert page.is_visible("#segment-kpis-panel")
    plans = page.eval_on_selector_all("#segment-kpis tbody tr", "(rows) => rows.map((r) => r.dataset.value)")
    mrr = {plan: _month_to_date(engine, "acme", plan, "mrr", level=True) for plan in ("basic", "pro", "team")}
    assert plans == sorted(mrr, key=mrr.get, reverse=True)
    for plan in plans:
        cell = f'#segment-kpis tr[data-value="{plan}"] td[data-kpi="%s"] .value'
        assert Decimal(page.get_attribute(cell % "mrr", "data-value")) == mrr[plan]
        assert page.inner_text(cell % "mrr") == f"{mrr[plan]:,.2f}"
        assert Decimal(page.get_attribute(cell % "transfer_out_revenue", "data-value")) == _month_to_date(
            engine, "acme", plan, "transfer_out_revenue", level=False)
        churn = page.inner_text(cell % "gross_mrr_churn_rate")
        assert churn == "n/a" or churn.endswith("%"), churn  # a ratio, in percent
    assert "Key figures by plan" in page.inner_text("#segment-kpis-title")

    # The cohorts of the largest first plan (basic: half of each cohort), then of another.
    assert page.is_visible("#cohort-value-picker")
    assert page.eval_on_selector_all("#cohort-value option", "(o) => o.map((e) => e.value)") == ["basic", "pro", "(none)"]
    assert page.get_attribute("#chart-cohorts", "data-value") == "basic"
    basic = _rates(engine, "acme", "basic")
    assert _heatmap(page) == {key: rate for key, rate in basic.items() if key[0] in {k[0] for k in _heatmap(page)}}
    assert _heatmap(page) != {k: everyone[k] for k in _heatmap(page)}
    page.select_option("#cohort-value", "pro")
    page.wait_for_function("() => document.getElementById('chart-cohorts').dataset.value === 'pro'")
    pro = _rates(engine, "acme", "pro")
    assert _heatmap(page).items() <= pro.items() and len(_heatmap(page)) == len(basic) > 20
    assert "first plan: pro" in page.inner_text("#cohorts-title")
    assert "Cohort segments" in page.inner_text('#freshness [data-aggregate="user_cohort_segments"]')

    # Cohorts have no interval: all users, said so.
    page.select_option("#segment", "interval")
    _wait_ready(page, renders=3)
    assert page.is_visible("#cohorts-note") and not page.is_visible("#cohort-value-picker")
    assert _heatmap(page).items() <= everyone.items()
    assert page.eval_on_selector_all("#segment-kpis tbody tr", "(rows) => rows.map((r) => r.dataset.value)") == [
        "month", "year"]

    page.select_option("#segment", "")
    _wait_ready(page, renders=4)
    assert not page.is_visible("#segment-kpis-panel") and not page.is_visible("#cohorts-note")
    assert page.get_attribute("#chart-cohorts", "data-value") is None
    page.close()


def test_by_plan_a_tenant_without_segment_rows_sees_empty_panels(browser, base_url):
    """initech has no revenue_segments or user_cohort_segments rows: by plan the key figures say
    there is no data, the heatmap is empty, and the page renders without an error."""
    page = _open(browser, base_url, token("initech"), [])
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _wait_ready(page)
    page.select_option("#segment", "plan")
    _wait_ready(page, renders=2)
    assert page.is_visible("#segment-kpis-panel")
    assert page.locator("#segment-kpis tbody tr").count() == 0
    assert page.inner_text("#segment-kpis .empty") == "No data in this range"
    assert page.inner_text("#chart-cohorts .empty") == "No data in this range"
    assert page.get_attribute("#chart-cohorts", "data-value") == ""
    assert errors == []
    page.close()
