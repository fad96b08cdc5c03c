"""``POST /v1/temporal/codec/{decode,encode}``: the Temporal codec server protocol, operator only.

Temporal histories hold only ciphertext (see ``orchestration.codec``); the Temporal UI and CLI
show decoded payloads by posting them here. Only the operator may decode: by bearer
(``ADMIN_TOKEN``, what the CLI sends), or by the session cookie a browser gets from the sign-in
form here (the UI cannot send a bearer; it sends cookies when its codec settings include
cross-origin credentials). An organization's key, or a request that merely reaches the API
(a server-side fetch carries no cookie), gets nothing readable.
"""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qs

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from api.deps import StateDep, TenancyDep, auth
from api.errors import error_responses
from core.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from core.settings import Settings
from core.tenancy.security import constant_time_equals, hash_token
from orchestration.codec import UnknownCodecKeyError, codec_for

PREFIX = "/v1/temporal/codec"
SESSION_COOKIE = "backline_codec_session"
SESSION_TTL_S = 8 * 3600
router = APIRouter(prefix=PREFIX, tags=["temporal"])


def _session_mac(settings: Settings, expires: int) -> str:
    # Bound to the admin token: rotating it ends every session.
    return hash_token(
        settings.secret_key.get_secret_value(),
        f"codec-session:{expires}:{settings.admin_token.get_secret_value()}",
    )


def session_cookie(settings: Settings, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + SESSION_TTL_S)
    return f"{expires}.{_session_mac(settings, expires)}"


def _valid_session(settings: Settings, value: str | None) -> bool:
    expires, _, mac = (value or "").partition(".")
    if not expires.isdigit() or int(expires) < time.time():
        return False
    return constant_time_equals(mac, _session_mac(settings, int(expires)))


def _require_operator(request: Request, state: StateDep, tenancy: TenancyDep) -> None:
    if _valid_session(state.settings, request.cookies.get(SESSION_COOKIE)):
        return
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    if not token:
        raise AuthenticationError(
            "send 'Authorization: Bearer <BACKLINE_ADMIN_TOKEN>', or sign in at "
            f"{PREFIX}/login in the browser that runs the Temporal UI"
        )
    if not tenancy.authenticate(token).operator:
        raise PermissionDeniedError(
            "only the operator (BACKLINE_ADMIN_TOKEN) may use the Temporal codec endpoint"
        )


async def _read_payloads(request: Request) -> Payloads:
    body = await request.body()
    try:
        return json_format.Parse(body or b"{}", Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, DecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            'send {"payloads": [{"metadata": {...}, "data": "<base64>"}]} (Temporal\'s '
            f"Payloads as JSON): {exc}"
        ) from exc


def _answer(payloads: Sequence[object]) -> Response:
    out = Payloads(payloads=payloads)  # type: ignore[arg-type]
    return Response(json_format.MessageToJson(out), media_type="application/json")


@router.post(
    "/decode", openapi_extra=auth("operator"), responses=error_responses(400, 401, 403, 422)
)
async def decode(request: Request, state: StateDep, tenancy: TenancyDep) -> Response:
    _require_operator(request, state, tenancy)
    payloads = await _read_payloads(request)
    try:
        decoded = await codec_for(state.settings).decode(payloads.payloads)
    except UnknownCodecKeyError as exc:
        raise InvalidInputError(str(exc)) from exc
    return _answer(decoded)


@router.post(
    "/encode", openapi_extra=auth("operator"), responses=error_responses(400, 401, 403, 422)
)
async def encode(request: Request, state: StateDep, tenancy: TenancyDep) -> Response:
    _require_operator(request, state, tenancy)
    payloads = await _read_payloads(request)
    return _answer(await codec_for(state.settings).encode(payloads.payloads))


_LOGIN_PAGE = """<!doctype html><meta charset="utf-8">
<title>Backline: Temporal codec sign-in</title>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Decode payloads in the Temporal UI</h1><p>{message}</p>
<form method="post" action="{action}"><label>Operator token (BACKLINE_ADMIN_TOKEN)
<input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in for 8 hours</button></form>
<p>Then, in the Temporal UI's codec server settings, turn on
"Include cross-origin credentials".</p></body>"""


def _login_page(message: str, status_code: int = 200) -> HTMLResponse:
    body = _LOGIN_PAGE.format(message=html.escape(message), action=f"{PREFIX}/login")
    return HTMLResponse(body, status_code=status_code)


@router.get("/login", response_class=HTMLResponse, openapi_extra=auth("none"))
async def login_form() -> HTMLResponse:
    return _login_page("Sign this browser in as the operator to let the Temporal UI decode.")


@router.post(
    "/login",
    response_class=HTMLResponse,
    openapi_extra=auth("none"),
    responses={401: {"description": "Not the operator token: the form again"}},
)
async def login(request: Request, state: StateDep) -> HTMLResponse:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0]
    if not constant_time_equals(token, state.settings.admin_token.get_secret_value()):
        return _login_page("That is not the operator token; try again.", status_code=401)
    response = _login_page("Signed in. The Temporal UI can now decode payloads in this browser.")
    response.set_cookie(
        SESSION_COOKIE,
        session_cookie(state.settings),
        max_age=SESSION_TTL_S,
        path=PREFIX,
        httponly=True,
        # Strict: sent by the UI on the same site (another port of the host), never cross-site.
        samesite="strict",
        secure=state.settings.public_url.startswith("https://"),
    )
    return response


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """CORS for the Temporal UI's origin on the codec routes only (nothing else is cross-origin)."""
    allowed = set(origins)
    headers = {
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Namespace",
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }

    @app.middleware("http")
    async def _codec_cors(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        origin = request.headers.get("origin")
        if not request.url.path.startswith(PREFIX) or origin not in allowed:
            return await call_next(request)
        if request.method == "OPTIONS":
            response = Response(status_code=204)
        else:
            response = await call_next(request)
        response.headers.update({**headers, "Access-Control-Allow-Origin": origin})
        return response
