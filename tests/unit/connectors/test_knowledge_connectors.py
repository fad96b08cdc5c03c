"""Knowledge connectors without I/O: file formats, the VAPI knowledge reply (validated against
the VAPI SDK's response model), the knowledge tool's export, and CLI durations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer

from cli.kb import parse_duration
from connectors.sources.file import extract, sniff_content_type
from connectors.vapi.knowledge import caller_query, knowledge_base_reply
from core.calls.events import Turn
from core.knowledge.ports import UnreadableContentError
from core.knowledge.schemas import KnowledgeAnswer, KnowledgeHit, WithheldHit
from core.tools.builtins import KNOWLEDGE_SEARCH, ToolContext, run_builtin

DEMO = Path(__file__).resolve().parents[3] / "examples" / "knowledge"
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF with real text operators (what pypdf must read)."""
    stream = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({line}) Tj 0 -16 Td" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out


def test_pdf_pages_become_sections() -> None:
    text = extract(
        _pdf(["Gas line upgrade is quoted separately.", "Permit fees extra."]), None, "a.pdf"
    )
    assert text.markdown.startswith("## Page 1")
    assert "Gas line upgrade is quoted separately." in text.markdown


def test_unreadable_pdf_and_empty_content_are_refused() -> None:
    with pytest.raises(UnreadableContentError):
        extract(b"%PDF-1.4 garbage", "application/pdf", "x.pdf")
    with pytest.raises(UnreadableContentError):
        extract(b"   ", None, "x.md")


def test_html_keeps_headings_and_drops_scripts_navigation_and_footer() -> None:
    text = extract((DEMO / "service_area.html").read_bytes(), "text/html; charset=utf-8", None)
    assert text.title == "Service Area — Acme Home Services"
    assert "## Zone 1 — no travel fee" in text.markdown
    for boilerplate in ("analytics", "Home | Prices", "License #1048822", "font-family"):
        assert boilerplate not in text.markdown


def test_plain_text_takes_its_first_line_as_title() -> None:
    text = extract((DEMO / "care_plan_terms.txt").read_bytes(), None, "terms.txt")
    assert text.title == "ACME CARE PLAN - MEMBERSHIP TERMS"
    assert text.markdown.startswith("What the plan includes")


@pytest.mark.parametrize(
    ("content", "declared", "name", "kind"),
    [
        (b"%PDF-1.7", None, None, "application/pdf"),
        (b"<!DOCTYPE html><html>", None, "page", "text/html"),
        (b"# Title", "application/octet-stream", "notes.md", "text/markdown"),
        (b"plain", "text/plain; charset=utf-8", None, "text/plain"),
        (b"anything", None, "https://x.example/prices.html?v=2", "text/html"),
    ],
)
def test_content_type_is_sniffed_when_not_declared(
    content: bytes, declared: str | None, name: str | None, kind: str
) -> None:
    assert sniff_content_type(content, declared, name) == kind


def test_the_callers_question_is_the_last_thing_they_said() -> None:
    turns = [
        Turn(role="caller", text="How much is a drain cleaning?"),
        Turn(role="agent", text="It is $175."),
        Turn(role="caller", text="And on Sundays?"),
    ]
    assert caller_query(turns) == "How much is a drain cleaning? And on Sundays?"
    assert caller_query([Turn(role="agent", text="Hi")]) == ""


def _hit() -> KnowledgeHit:
    return KnowledgeHit(
        chunk_id="c1", text="Flush: $149.", title="Prices", section="Plumbing", score=0.03,
        similarity=0.81234, dense_rank=1, keyword_rank=1, source_id="s", source_name="p.md",
        kb_id="kb", position=0, fetched_at=NOW, verified_at=NOW, age_s=1.0, freshness="fresh",
    )  # fmt: skip


def test_vapi_reply_validates_against_the_sdk_model() -> None:
    from vapi.types import ServerMessageResponseKnowledgeBaseRequest

    ok = knowledge_base_reply(
        KnowledgeAnswer(query="q", normalized_query="q", status="ok", hits=[_hit()])
    )
    assert ok == {
        "documents": [
            {"content": "Prices > Plumbing: Flush: $149.", "similarity": 0.8123, "uuid": "c1"}
        ]
    }
    withheld = WithheldHit(
        chunk_id="c2", source_id="s", source_name="p.md", section="", freshness="stale",
        verified_at=NOW, reason="past its maximum staleness",
    )  # fmt: skip
    outdated = knowledge_base_reply(
        KnowledgeAnswer(
            query="q",
            normalized_query="q",
            status="outdated",
            withheld=[withheld],
            spoken_fallback="Let me check on that for you.",
        )
    )
    assert outdated["documents"] == []
    assert outdated["message"] == {
        "type": "custom-message",
        "content": "Let me check on that for you.",
    }
    for body in (ok, outdated):
        ServerMessageResponseKnowledgeBaseRequest.model_validate(body)


def test_knowledge_tool_validates_as_a_vapi_function_tool_and_handles_bad_arguments() -> None:
    from vapi.types import CreateFunctionToolDto

    from connectors.vapi.tools import tool_definitions
    from core.tools.builtins import BUILTIN_TOOLS

    [tool] = [
        d
        for d in tool_definitions(BUILTIN_TOOLS, "https://b.example", "demo")
        if d["function"]["name"] == KNOWLEDGE_SEARCH
    ]
    CreateFunctionToolDto.model_validate(tool)
    ctx = ToolContext("org", "agent", None)
    missing = run_builtin(KNOWLEDGE_SEARCH, {"query": " "}, ctx, memory=None)  # type: ignore[arg-type]
    assert missing is not None and missing.error and "query" in missing.error
    down = run_builtin(KNOWLEDGE_SEARCH, {"query": "hours"}, ctx, memory=None)  # type: ignore[arg-type]
    assert down is not None and down.error == "the knowledge base is not available right now"
    asked: list[tuple[str, int]] = []

    def search(query: str, limit: int) -> KnowledgeAnswer:
        asked.append((query, limit))
        return KnowledgeAnswer(query=query, normalized_query=query, status="ok", hits=[_hit()])

    ok = run_builtin(KNOWLEDGE_SEARCH, {"query": "flush", "limit": 99}, ctx, None, search)  # type: ignore[arg-type]
    assert ok is not None and ok.result == "[1] Prices > Plumbing: Flush: $149."
    assert asked == [("flush", 3)]  # an out-of-range limit falls back to the default


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800), ("1w", 604800),
     ("off", None), (None, None)],
)  # fmt: skip
def test_durations(text: str | None, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_is_refused() -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration("soon")


def test_knowledge_request_without_openai_messages_reads_the_messages_list() -> None:
    from connectors.vapi.webhooks import parse_event
    from core.calls.events import KnowledgeRequest
    from tests.helpers import fixture

    body = fixture("vapi_knowledge_base_request.json")
    del body["message"]["messagesOpenAIFormatted"]
    body["message"]["messages"].append({"role": "bot", "message": "Let me look."})
    body["message"]["messages"].append({"role": "user", "content": "And sale items?"})
    event = parse_event(body)
    assert isinstance(event, KnowledgeRequest)
    assert [t.role for t in event.turns] == ["caller", "agent", "caller"]
    assert caller_query(event.turns) == "What is your return policy? And sale items?"


def test_a_request_with_no_caller_question_says_why() -> None:
    from connectors.vapi.knowledge import no_question_reason

    assert "no conversation" in no_question_reason([])
    assert "no non-empty user turn" in no_question_reason([Turn(role="agent", text="Hi")])
