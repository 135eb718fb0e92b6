"""The workspace's routes: sign-in and out, the home page, and every form (show, preview,
confirm, record)."""

from __future__ import annotations

import functools
import hmac
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.auth import RateLimiter, look_up_token
from api.sessions import check_csrf, end_session, start_session
from api.web.site import ENTRY_LABELS
from api.workspace.core import (
    SESSION_HOURS,
    STATIC_DIR,
    Field,
    Redirect,
    Refused,
    Values,
    Workspace,
    changes_since,
    my_entries,
    page,
    receipt_view,
    redirect,
    refusal_page,
    signed_in_or_redirect,
)
from api.workspace.forms import FORMS, GROUPS, Ctx, FormError, Spec, amendment_preview
from api.workspace.forms import publish_upload as _publish_upload
from ledger.errors import (
    InvalidInputError,
    LedgerError,
    NotFoundError,
    RuleViolationError,
    StaleVersionError,
    StorageError,
)
from ledger.storage.side import SideStore
from ledger.tokens import TokenRevokedError
from projections.runner import ViewTimeoutError

__all__ = ["Outcome", "guarded", "router"]

log = logging.getLogger("api.workspace")

router = APIRouter(prefix="/workspace", include_in_schema=False)

P = ParamSpec("P")


def guarded(route: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Answer redirects, refusals, store outages and surprises with pages."""

    @functools.wraps(route)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = kwargs.get("request")
        assert isinstance(request, Request)
        try:
            return await route(*args, **kwargs)
        except Redirect as exc:
            return redirect(exc.location, clear_cookie=exc.clear_cookie)
        except Refused as exc:
            return refusal_page(request, exc.status, exc.title, exc.detail)
        except (ViewTimeoutError, StorageError):
            log.exception("store unavailable for %s", request.url.path)
            return refusal_page(
                request,
                503,
                "Service unavailable",
                "The ledger's store is not answering just now. Nothing was recorded. "
                "Please try again shortly.",
            )
        except Exception:
            log.exception("unexpected error in %s", request.url.path)
            return refusal_page(
                request,
                500,
                "Sorry, there is a problem with the service",
                "Something went wrong. It has been logged.",
            )

    return wrapped


# Static files ------------------------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    path = STATIC_DIR / name
    if name not in {p.name for p in STATIC_DIR.glob("*") if p.is_file()}:
        return Response("not found", status_code=404, media_type="text/plain")
    return FileResponse(
        path, headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    )


# Signing in and out ------------------------------------------------------------------------


SIGN_IN_COOKIE = "ledger_sign_in"


def _sign_in_page(
    request: Request, *, error: str | None = None, notice: str | None = None, status: int = 200
) -> HTMLResponse:
    # Login CSRF: the sign-in form carries a value that must match a cookie only this site
    # can have set (double submit), so another site cannot sign a browser in as someone else.
    nonce = secrets.token_urlsafe(32)
    context = {
        "sign_in_csrf": nonce,
        "request": request,
        "at": None,
        "as_of": None,
        "log_size": None,
        "link": lambda path, **_: path,
        "who": None,
        "error": error,
        "notice": notice,
    }
    response = page(request, "ws_sign_in.html", context, status_code=status)
    response.set_cookie(
        SIGN_IN_COOKIE,
        nonce,
        max_age=3600,
        path="/workspace",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/sign-in")
@guarded
async def sign_in_form(request: Request, ended: str | None = None) -> Response:
    notice = None
    if ended:
        notice = (
            "Your session has ended: it expired, or your token was revoked. "
            "Sign in again to carry on."
        )
    return _sign_in_page(request, notice=notice)


@router.post("/sign-in")
@guarded
async def sign_in(request: Request) -> Response:
    form = await request.form()
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    submitted = str(form.get("csrf") or "")
    if not expected or not hmac.compare_digest(expected.encode(), submitted.encode()):
        return _sign_in_page(request, error="This form had expired: sign in again", status=403)
    token = str(form.get("token") or "").strip()
    if not token:
        return _sign_in_page(request, error="Enter your API token", status=400)
    side: SideStore = request.app.state.side

    def check() -> str | None:
        stored = look_up_token(side, token)
        if stored is None:
            return None
        return "" if stored.revoked_index is not None else stored.token_id

    found = await run_in_threadpool(check)
    if found is None:
        return _sign_in_page(request, error="That is not a valid API token", status=401)
    if found == "":
        return _sign_in_page(request, error="That token has been revoked", status=401)
    response = redirect("/workspace")
    await run_in_threadpool(start_session, side, response, found, hours=SESSION_HOURS)
    return response


@router.post("/sign-out")
@guarded
async def sign_out(request: Request) -> Response:
    form = await request.form()
    who = await run_in_threadpool(signed_in_or_redirect, request)
    if not check_csrf(who, str(form.get("csrf") or "")):
        raise Refused(403, "This form has expired", "Go back, reload the page and try again.")
    response = redirect("/workspace/sign-in")
    await run_in_threadpool(end_session, request, response)
    return response


# Home --------------------------------------------------------------------------------------


def _allowed(role: str) -> list[tuple[str, list[Spec]]]:
    return [
        (group, [s for s in FORMS.values() if s.group == group and role in s.roles])
        for group in GROUPS
        if any(s.group == group and role in s.roles for s in FORMS.values())
    ]


SEARCH_KINDS = ("proposal", "amendment", "outcome")


def _search(ws: Workspace, q: str) -> list[dict[str, Any]]:
    hits = ws.models.search(q[:500], ws.at, limit=30, kinds=SEARCH_KINDS)["items"]
    proposals = ws.names().proposals
    found = []
    for hit in hits:
        if hit.get("kind") == "outcome":
            hit["href"] = f"/web/meetings/{hit['ref_id']}"
        else:
            hit["href"] = f"/web/proposals/{hit['ref_id']}"
        proposal = proposals.get(str(hit.get("ref_id")))
        if (
            hit.get("kind") == "proposal"
            and proposal
            and proposal["status"]
            in (
                "enacted",
                "withdrawn",
                "superseded",
            )
        ):
            continue  # final: not a draft any more
        found.append(hit)
    return found[:20]


@router.get("")
@guarded
async def home(request: Request, q: str | None = None) -> Response:
    def build() -> Response:
        who = signed_in_or_redirect(request)
        ws = Workspace(request, who)
        query = (q or "").strip()[:500]
        hits = _search(ws, query) if query else []
        context = ws.context(
            groups=_allowed(ws.role),
            entries=my_entries(ws),
            q=query,
            hits=hits,
            ENTRY_LABELS=ENTRY_LABELS,
            section="home",
        )
        return page(request, "ws_home.html", context)

    return await run_in_threadpool(build)


# Forms -------------------------------------------------------------------------------------

_LOADERS = {
    "proposal": "get_proposal",
    "meeting": "get_meeting",
    "publication": "get_publication",
    "organisation": "get_organisation",
    "process": "get_process",
}


def _spec(slug: str, who: Any) -> Spec:
    spec = FORMS.get(slug)
    if spec is None:
        raise Refused(404, "Page not found", "There is no such form in the workspace.")
    if who.principal.actor.role not in spec.roles:
        raise Refused(
            403,
            "You cannot do this",
            f"Your role ({who.principal.actor.role}) cannot use “{spec.title}”. "
            "Nothing was recorded.",
        )
    return spec


def _load(ctx: Ctx, spec: Spec, record_id: str | None) -> None:
    if spec.subject is None or not record_id:
        return
    getter = getattr(ctx.ws.app, _LOADERS[spec.subject])
    ctx.record_id = record_id
    ctx.record = getter(record_id)


class Outcome:
    """What a form answers: its fields and values again, with errors, a preview, a conflict,
    a confirmation step or a receipt."""

    def __init__(self) -> None:
        self.errors: list[tuple[str | None, str]] = []
        self.preview: list[dict[str, Any]] | None = None
        self.conflict: list[dict[str, Any]] | None = None
        self.confirm: dict[str, Any] | None = None
        self.status = 200


def _render_form(ctx: Ctx, spec: Spec, outcome: Outcome) -> Response:
    ws = ctx.ws
    if spec.subject is not None and ctx.record is None:
        options = spec.pick(ctx) if spec.pick else []
        context = ws.context(spec=spec, options=options, errors=outcome.errors)
        return page(ws.request, "ws_pick.html", context, status_code=outcome.status)
    fields = spec.fields(ctx)
    if spec.subject is not None and not ctx.values.get("expected_version"):
        ctx.values.set("expected_version", str(ctx.record.version))
    if spec.slug == "propose-amendment" and not ctx.values.get("base_version"):
        ctx.values.set("base_version", str(ctx.record.text_version))
    field_errors = {name: message for name, message in outcome.errors if name}
    context = ws.context(
        spec=spec,
        fields=fields,
        values=ctx.values,
        errors=outcome.errors,
        field_errors=field_errors,
        record=ctx.record,
        record_id=ctx.record_id,
        record_title=_record_title(ctx),
        preview=outcome.preview,
        conflict=outcome.conflict,
        confirm=outcome.confirm,
        ENTRY_LABELS=ENTRY_LABELS,
    )
    return page(ws.request, "ws_form.html", context, status_code=outcome.status)


def _record_title(ctx: Ctx) -> str | None:
    if ctx.record is None:
        return None
    for attribute in ("title", "name"):
        value = getattr(ctx.record, attribute, None)
        if value:
            return str(value)
    return ctx.record_id


def _field_for(message: str, fields: list[Field]) -> str | None:
    """The field a ledger error is about, when its message starts with the field's name."""
    lowered = message.lower()
    for f in fields:
        words = (f.name.replace("_", " "), f.name, f.label.lower())
        if f.kind != "rows" and any(lowered.startswith(w) for w in words):
            return f.name
    return None


def _missing(fields: list[Field], values: Values, outcome: Outcome) -> None:
    for f in fields:
        if not f.required or f.kind in ("rows", "file"):
            continue
        given = values.all(f.name) if f.kind == "checkboxes" else values.get(f.name)
        if not given:
            verb = "Choose" if f.kind in ("select", "radios", "checkboxes") else "Enter"
            outcome.errors.append((f.name, f"{verb} {f.label.lower()}"))


@router.get("/forms/{slug}")
@guarded
async def show_form(request: Request, slug: str) -> Response:
    def build() -> Response:
        who = signed_in_or_redirect(request)
        spec = _spec(slug, who)
        ws = Workspace(request, who)
        values = Values(list(request.query_params.multi_items()))
        ctx = Ctx(ws, values)
        outcome = Outcome()
        values.items = [(k, v) for k, v in values.items if k != "expected_version"]
        try:
            _load(ctx, spec, values.get("record") or None)
        except NotFoundError as exc:
            outcome.errors.append((None, str(exc)))
            outcome.status = 404
        return _render_form(ctx, spec, outcome)

    return await run_in_threadpool(build)


@router.post("/forms/{slug}")
@guarded
async def post_form(request: Request, slug: str) -> Response:
    form = await request.form()
    try:
        values = await Values.read(form)
    finally:
        await form.close()
    return await run_in_threadpool(_post, request, slug, values)


def _post(request: Request, slug: str, values: Values) -> Response:
    who = signed_in_or_redirect(request)
    spec = _spec(slug, who)
    if not check_csrf(who, values.get("csrf")):
        raise Refused(
            403,
            "This form has expired",
            "The form was missing its security token or had an old one, so nothing was "
            "recorded. Go back, reload the page and try again.",
        )
    ws = Workspace(request, who)
    ctx = Ctx(ws, values)
    outcome = Outcome()
    try:
        _load(ctx, spec, values.get("record") or None)
    except NotFoundError as exc:
        outcome.errors.append((None, str(exc)))
        outcome.status = 404
        values.set("record", "")
        return _render_form(ctx, spec, outcome)
    if spec.subject is not None and ctx.record is None:
        return _render_form(ctx, spec, outcome)  # the picker: choose a record first
    action = values.get("action")
    if action.startswith("add:"):  # one more row of a repeated group, without JavaScript
        name = action[4:]
        for f in spec.fields(ctx):
            if f.kind == "rows" and f.name == name:
                values.set(f"{name}-count", str(min(f.rows + 1, 200)))
        return _render_form(ctx, spec, outcome)
    fields = spec.fields(ctx)
    _missing(fields, values, outcome)
    if spec.confirm and action != "confirm" and not values.files.get("file"):
        outcome.errors.append(("file", "Choose a file to upload (it must not be empty)"))
    if outcome.errors:
        outcome.status = 422
        return _render_form(ctx, spec, outcome)
    try:
        if action == "preview" and spec.preview:
            outcome.preview = amendment_preview(ctx)
            return _render_form(ctx, spec, outcome)
        if spec.confirm and action != "confirm":
            outcome.confirm = _publish_upload(ctx)
            values.set("sha256", outcome.confirm["sha256"])
            return _render_form(ctx, spec, outcome)
        limiter: RateLimiter = request.app.state.rate_limiter
        wait = limiter.take(who.principal.token_id)
        if wait > 0:
            outcome.errors.append(
                (None, f"Too many writes just now: try again in {math.ceil(wait)} s.")
            )
            outcome.status = 429
            return _render_form(ctx, spec, outcome)
        # Like the API's writes: the token is re-checked under the store's write lock, so a
        # form in flight when its token's revocation commits writes nothing.
        with ws.app.writing_token(who.principal.token_id):
            receipt = spec.run(ctx)
    except TokenRevokedError as exc:
        raise Refused(
            401, "Your token was revoked", f"{exc}. Sign in again with a valid token."
        ) from None
    except FormError as exc:
        outcome.errors.append((exc.field, str(exc)))
        outcome.status = 422
    except StaleVersionError as exc:
        seen = ctx.expected or 0
        _load(ctx, spec, ctx.record_id)  # the current state
        outcome.conflict = changes_since(ws, str(ctx.record_id), seen) if ctx.record_id else []
        outcome.errors.append(
            (
                None,
                f"This record changed since you opened the form ({exc}). The changes are "
                "listed below; the form now shows the current version with your values kept. "
                "Check them and submit again.",
            )
        )
        values.set("expected_version", str(ctx.record.version) if ctx.record else "")
        if spec.slug == "propose-amendment" and ctx.record is not None:
            values.set("base_version", str(ctx.record.text_version))
        outcome.status = 409
    except NotFoundError as exc:
        outcome.errors.append((_field_for(str(exc), fields), str(exc)))
        outcome.status = 422
    except (InvalidInputError, RuleViolationError) as exc:
        outcome.errors.append((_field_for(str(exc), fields), str(exc)))
        outcome.status = 422
    except StorageError:
        raise
    except LedgerError as exc:  # a lost race (ConcurrentWriteError): nothing was recorded
        outcome.errors.append((None, f"{exc}. Nothing was recorded; submit again."))
        outcome.status = 409
    else:
        context = ws.context(spec=spec, receipt=receipt_view(receipt), ENTRY_LABELS=ENTRY_LABELS)
        if ctx.stored:
            context["document"] = ctx.stored
        return page(request, "ws_receipt.html", context, status_code=201)
    if ctx.stored and spec.confirm:
        outcome.confirm = None
    return _render_form(ctx, spec, outcome)
