"""The unsubscribe link of every report email, served over HTTP (RFC 8058): the router that the
Dashboard API mounts. The signed token is the authorisation, no bearer token; unsubscribe.py says
what each step does."""

from __future__ import annotations

import html

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from ..core.resources import AnalyticsDatabase
from ..core.routes import UNSUBSCRIBE
from . import unsubscribe

OUTCOMES = {
    "unsubscribed": "{r.recipient} no longer receives the report {r.report_name!r}.",
    "already_unsubscribed": "{r.recipient} does not receive the report {r.report_name!r}.",
    "report_not_found": "That report no longer exists.",
}


def unsubscribe_html(message: str, form: str | None = None) -> str:
    button = (
        f'<form method="post" action="{html.escape(form)}"><button type="submit">Unsubscribe</button></form>'
        if form else ""
    )
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Unsubscribe</title></head>"
        f"<body style=\"font-family: sans-serif; margin: 3rem\"><p>{html.escape(message)}</p>{button}</body></html>"
    )


def unsubscribe_router(database: AnalyticsDatabase) -> APIRouter:
    """`GET` and `POST` of the unsubscribe path, on `database`."""
    router = APIRouter()

    @router.get(UNSUBSCRIBE, tags=["reports"], response_class=HTMLResponse)
    async def unsubscribe_page(token: str = Query(..., description="The token of the email's link.")) -> HTMLResponse:
        """The page a recipient following the link sees: names the report and offers a button that
        unsubscribes. Changes nothing by itself, because mail scanners fetch links."""
        try:
            found = await run_in_threadpool(unsubscribe.describe, database, token)
        except unsubscribe.InvalidToken as exc:
            return HTMLResponse(unsubscribe_html(str(exc)), status_code=400)
        if found.status != "unsubscribed":
            return HTMLResponse(unsubscribe_html(OUTCOMES[found.status].format(r=found)))
        return HTMLResponse(unsubscribe_html(
            f"Stop sending the report {found.report_name!r} to {found.recipient}?",
            form=f"{UNSUBSCRIBE}?token={token}",
        ))

    @router.post(UNSUBSCRIBE, tags=["reports"], response_class=PlainTextResponse)
    async def unsubscribe_one_click(token: str = Query(..., description="The token of the email's link.")) -> PlainTextResponse:
        """One-click unsubscribe (the mail client's POST with `List-Unsubscribe=One-Click`, or the
        page's button): removes that recipient from that report only, and logs it."""
        try:
            result = await run_in_threadpool(unsubscribe.unsubscribe, database, token)
        except unsubscribe.InvalidToken as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return PlainTextResponse(OUTCOMES[result.status].format(r=result))

    return router
