"""The /v1 endpoints that read one tenant's data, as the router create_app() includes: each
parses its parameters (params.py), names the aggregate its answer depends on (the cache's key and
the freshness it reports, answer.py) and leaves the reading to queries.py. Endpoints and
behaviour: docs/api.md."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from ..aggregation.periods import PERIOD_TYPES
from ..core import routes
from ..core.resources import AnalyticsDatabase
from ..core.schema import SEGMENT_DIMENSIONS
from ..domains import DOMAINS
from . import bodies, params, queries
from .answer import answer

# Shown in Swagger UI's "Authorize" dialog; the token itself is read by `require_tenant`.
bearer = HTTPBearer(auto_error=False, description="A JWT with the claims tenant_id and exp (docs/api.md).")


async def require_tenant(request: Request, _=Depends(bearer)) -> str:
    # async: checking a token takes microseconds, less than a hop to the thread pool would.
    return request.app.state.tokens.tenant_of(request.headers.get("authorization"))


async def known_parameters_only(request: Request) -> None:
    """400 naming the query parameters the endpoint does not declare: a misspelt one is not
    silently ignored, and no parameter outside the cache key changes the answer."""
    # The endpoint function's own: no dependency of the /v1 endpoints takes a query parameter.
    declared = {p.alias for p in request.scope["route"].dependant.query_params}
    unknown = sorted(set(request.query_params) - declared)
    if unknown:
        takes = ", ".join(sorted(declared)) or "none"
        also = f"; also unknown: {', '.join(unknown[1:])}" if len(unknown) > 1 else ""
        raise params.BadParameter(unknown[0], f"unknown parameter (this endpoint takes {takes}){also}",
                                  unknown=unknown)


def published(domain_name: str, aggregate: str) -> str:
    """`aggregate`, which the domain `domain_name` declares it publishes (domains.DOMAINS)."""
    [domain] = [domain for domain in DOMAINS if domain.name == domain_name]
    if aggregate not in domain.aggregates:
        raise LookupError(f"the {domain_name} domain publishes no {aggregate}")
    return aggregate


# The aggregate tables the endpoints read; an answer is cached under its table's versions.
REVENUE_TABLE = published("revenue", "revenue_aggregates")
SEGMENT_TABLE = published("revenue", "revenue_segments")
TOURNAMENT_TABLE = published("tournaments", "tournament_aggregates")
COHORT_TABLE = published("cohorts", "user_cohorts")
COHORT_SEGMENT_TABLE = published("cohorts", "user_cohort_segments")


# An empty value is the parameter's default, as if it were absent.
EMPTY = {"enum": [""]}


def day_query(description: str, alias: str | None = None):
    """A day parameter, declared in the OpenAPI document as a date (parsed by params.date)."""
    return Query(None, alias=alias, description=description, json_schema_extra={
        "oneOf": [{"format": "date", "pattern": f"^{params.DAY.pattern}$"}, EMPTY]})


def month_query(description: str, alias: str | None = None):
    """A month parameter, YYYY-MM or a day of it (parsed by params.month)."""
    return Query(None, alias=alias, description=description, json_schema_extra={
        "oneOf": [{"pattern": f"^{params.MONTH.pattern}$"}, EMPTY]})


def choice_query(choices: tuple[str, ...], description: str):
    """One of `choices` (parsed by params.py; an empty value is the default)."""
    return Query(None, description=description, json_schema_extra={"enum": [*choices, ""]})


def v1_router(database: AnalyticsDatabase) -> APIRouter:
    """The /v1 endpoints reading `database`, in the order the OpenAPI document lists them."""
    router = APIRouter(dependencies=[Depends(known_parameters_only)])

    def serve_periodic_table(path: str, aggregate: str, name: str, body: dict) -> None:
        """GET `path`: the rows of the periodic aggregate table `aggregate` (one per tenant, period
        type and period; its columns are those of sql/<aggregate>.sql) of the periods overlapping
        [from, to], as JSON or CSV. The path's last segment is the endpoint's tag and begins its CSV
        file's name; `name` is the operation's, which generated clients know it by."""
        resource = path.rsplit("/", 1)[-1]

        async def periodic_table(
            request: Request,
            tenant_id: str = Depends(require_tenant),
            period_type: str | None = choice_query(PERIOD_TYPES, "day, week, month, quarter or year (default day)"),
            date_from: str | None = day_query("First day, YYYY-MM-DD (default: 90 days, 26 weeks, 24 months, 12 quarters or 5 years before `to`)", "from"),
            date_to: str | None = day_query("Last day, YYYY-MM-DD (default today, UTC)", "to"),
            format: str | None = choice_query(params.FORMATS, "json (default) or csv"),
        ) -> Response:
            span = params.series_range(period_type, date_from, date_to)
            fmt = params.output_format(format)
            return await answer(
                request, aggregate, tenant_id, lambda: queries.periodic_table(database, tenant_id, aggregate, fmt, span),
                fmt, f"{resource}_{span.period_type}_{span.date_from}_{span.date_to}",
                key=(span.period_type, span.date_from, span.date_to),
            )

        router.add_api_route(path, periodic_table, methods=["GET"], tags=[resource], name=name,
                             responses=bodies.answers(body, csv=True),
                             description=f"Every column of {aggregate} for the periods overlapping [from, to].")

    serve_periodic_table(routes.REVENUE, REVENUE_TABLE, "revenue_series", bodies.periodic_table(bodies.REVENUE_COLUMNS))

    @router.get(routes.REVENUE_SEGMENTS, tags=["revenue"], name="revenue_segments",
                responses=bodies.answers(bodies.periodic_table(bodies.SEGMENT_COLUMNS, segmented=True), csv=True))
    async def revenue_segments(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        segment: str | None = choice_query(SEGMENT_DIMENSIONS, "plan (default), interval or source"),
        period_type: str | None = choice_query(PERIOD_TYPES, "day, week, month, quarter or year (default day)"),
        date_from: str | None = day_query("First day, YYYY-MM-DD (default as for /v1/revenue)", "from"),
        date_to: str | None = day_query("Last day, YYYY-MM-DD (default today, UTC)", "to"),
        format: str | None = choice_query(params.FORMATS, "json (default) or csv"),
    ) -> Response:
        """Every column of revenue_segments for the periods overlapping [from, to], one row per
        period and value of the dimension `segment`: MRR, ARR, the movements with the transfers
        in and out of the value, and the customer counts (docs/metrics.md#revenue_segments)."""
        dimension = params.segment(segment)
        span = params.series_range(period_type, date_from, date_to)
        fmt = params.output_format(format)
        return await answer(
            request, SEGMENT_TABLE, tenant_id,
            lambda: queries.periodic_table(database, tenant_id, SEGMENT_TABLE, fmt, span, segment=dimension),
            fmt, f"{SEGMENT_TABLE}_{dimension}_{span.period_type}_{span.date_from}_{span.date_to}",
            key=(dimension, span.period_type, span.date_from, span.date_to),
        )

    @router.get(f"{routes.REVENUE}/bridge", tags=["revenue"], responses=bodies.answers(bodies.BRIDGE))
    async def mrr_bridge(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        date_from: str | None = day_query("First day, YYYY-MM-DD (default: 89 days before `to`)", "from"),
        date_to: str | None = day_query("Last day, YYYY-MM-DD, at most today (default today, UTC)", "to"),
    ) -> Response:
        """The MRR bridge of the days [from, to]: opening MRR, each movement, closing MRR, and
        whether closing - opening = new + reactivation + expansion - contraction - churned."""
        span = params.series_range("day", date_from, date_to)
        if span.date_to > params.today():
            raise params.BadParameter("to", f"{span.date_to} is after today ({params.today()} UTC)")
        return await answer(
            request, REVENUE_TABLE, tenant_id,
            lambda: queries.mrr_bridge(database, tenant_id, span.date_from, span.date_to),
            key=(span.date_from, span.date_to),
        )

    @router.get("/v1/kpis", tags=["revenue"], responses=bodies.answers(bodies.KPIS))
    async def kpis(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        period_type: str | None = choice_query(PERIOD_TYPES, "day, week, month, quarter or year (default month)"),
        day: str | None = day_query("A day of the period, YYYY-MM-DD (default today, UTC)"),
        compare: str | None = choice_query(
            params.COMPARISONS, "to_date (default): the period holding `day`, up to `day`, against as many days "
            "of the period before; complete: the last period complete on `day` against the one before it"),
    ) -> Response:
        """KPIs of a span against the span before (docs/api.md#kpis): MRR, ARR, the MRR movements,
        net new MRR, revenue, the customer counts and the SaaS KPIs, with `label` saying which
        days are compared ("1–4 Dec vs 1–4 Nov")."""
        comparison = params.comparison(period_type, day, compare)
        return await answer(
            request, REVENUE_TABLE, tenant_id, lambda: queries.kpis(database, tenant_id, comparison),
            key=(comparison.period_type, comparison.day, comparison.compare),
        )

    @router.get("/v1/kpis/segments", tags=["revenue"], name="segment_kpis",
                responses=bodies.answers(bodies.SEGMENT_KPIS, csv=True))
    async def segment_kpis(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        segment: str | None = choice_query(SEGMENT_DIMENSIONS, "plan (default), interval or source"),
        period_type: str | None = choice_query(PERIOD_TYPES, "day, week, month, quarter or year (default month)"),
        day: str | None = day_query("A day of the period, YYYY-MM-DD (default today, UTC)"),
        compare: str | None = choice_query(params.COMPARISONS, "to_date (default) or complete, as for /v1/kpis"),
        format: str | None = choice_query(params.FORMATS, "json (default) or csv"),
    ) -> Response:
        """The KPIs of each value of the dimension `segment` (docs/metrics.md#segment-kpis) over the
        spans /v1/kpis compares, each against the previous span: MRR, ARR, the movements and the
        transfers in and out, net new MRR, the customer counts, ARPA, the churn rates, GRR, NRR and
        the quick ratio. A transfer between values is not churn."""
        dimension = params.segment(segment)
        comparison = params.comparison(period_type, day, compare)
        fmt = params.output_format(format)
        return await answer(
            request, SEGMENT_TABLE, tenant_id,
            lambda: queries.segment_kpis(database, tenant_id, dimension, comparison, fmt),
            fmt, f"kpis_{dimension}_{comparison.period_type}_{comparison.current.first}_{comparison.current.last}",
            key=(dimension, comparison.period_type, comparison.day, comparison.compare),
        )

    @router.get(routes.COHORTS, tags=["cohorts"], responses=bodies.answers(bodies.COHORTS, csv=True))
    async def cohorts(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        date_from: str | None = month_query("First cohort month, YYYY-MM (default 23 months before `to`)", "from"),
        date_to: str | None = month_query("Last cohort month, YYYY-MM (default this month)", "to"),
        format: str | None = choice_query(params.FORMATS, "json (default) or csv"),
    ) -> Response:
        """The retention triangle of the cohorts [from, to]: size, retained users, retention
        rate, revenue and ltv for every month of each cohort."""
        first, last = params.cohort_range(date_from, date_to)
        fmt = params.output_format(format)
        meta = {"from": first, "to": last}
        return await answer(
            request, COHORT_TABLE, tenant_id,
            lambda: queries.table(database, tenant_id, "cohorts", fmt, meta, date_from=first, date_to=last),
            fmt, f"cohorts_{first:%Y-%m}_{last:%Y-%m}", key=(first, last),
        )

    @router.get(f"{routes.COHORTS}/segments", tags=["cohorts"], name="cohort_segments",
                responses=bodies.answers(bodies.COHORT_SEGMENTS, csv=True))
    async def cohort_segments(
        request: Request,
        tenant_id: str = Depends(require_tenant),
        segment: str | None = choice_query(tuple(params.COHORT_SEGMENTS), "plan (the first subscription's; default) or source"),
        date_from: str | None = month_query("First cohort month, YYYY-MM (default 23 months before `to`)", "from"),
        date_to: str | None = month_query("Last cohort month, YYYY-MM (default this month)", "to"),
        format: str | None = choice_query(params.FORMATS, "json (default) or csv"),
    ) -> Response:
        """The retention triangle of the cohorts [from, to] per value of `segment`: the plan of the
        users' first subscription or their signup source (docs/metrics.md#cohort-segments); size,
        retained users, retention rate, revenue and ltv for every month of each cohort and value."""
        name = params.cohort_segment(segment)
        first, last = params.cohort_range(date_from, date_to)
        fmt = params.output_format(format)
        meta = {"segment": name, "from": first, "to": last}
        return await answer(
            request, COHORT_SEGMENT_TABLE, tenant_id,
            lambda: queries.table(database, tenant_id, "cohort_segments", fmt, meta,
                                  segment=params.COHORT_SEGMENTS[name], date_from=first, date_to=last),
            fmt, f"cohorts_{name}_{first:%Y-%m}_{last:%Y-%m}", key=(name, first, last),
        )

    serve_periodic_table(routes.TOURNAMENTS, TOURNAMENT_TABLE, "tournaments",
                         bodies.periodic_table(bodies.TOURNAMENT_COLUMNS))

    @router.get("/v1/reports", tags=["reports"], responses=bodies.answers(bodies.REPORTS))
    async def reports(request: Request, tenant_id: str = Depends(require_tenant)) -> Response:
        """The tenant's scheduled reports with their most recent deliveries (not cached: the
        delivery log changes outside the aggregates' runs)."""
        return await answer(request, None, tenant_id, lambda: queries.reports(database, tenant_id))

    return router
