"""``POST /v1/temporal/codec/{decode,encode}``: the Temporal codec server protocol, operator only.

Temporal histories hold only ciphertext (see ``orchestration.codec``); the Temporal UI and CLI
show decoded payloads by posting them here. Only the operator (``ADMIN_TOKEN``) may decode:
an organization's key, or a request that merely reaches the API, gets nothing readable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, FastAPI, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from api.deps import PrincipalDep, StateDep
from core.errors import InvalidInputError, PermissionDeniedError
from orchestration.codec import UnknownCodecKeyError, codec_for

PREFIX = "/v1/temporal/codec"
router = APIRouter(prefix=PREFIX, tags=["temporal"])


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


def _require_operator(principal: PrincipalDep) -> None:
    if not principal.operator:
        raise PermissionDeniedError(
            "only the operator (BACKLINE_ADMIN_TOKEN) may use the Temporal codec endpoint"
        )


@router.post("/decode")
async def decode(request: Request, state: StateDep, principal: PrincipalDep) -> Response:
    _require_operator(principal)
    payloads = await _read_payloads(request)
    try:
        decoded = await codec_for(state.settings).decode(payloads.payloads)
    except UnknownCodecKeyError as exc:
        raise InvalidInputError(str(exc)) from exc
    return _answer(decoded)


@router.post("/encode")
async def encode(request: Request, state: StateDep, principal: PrincipalDep) -> Response:
    _require_operator(principal)
    payloads = await _read_payloads(request)
    return _answer(await codec_for(state.settings).encode(payloads.payloads))


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
