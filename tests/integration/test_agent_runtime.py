"""The agent runtime in text mode, built from real adapters: the answering service over a test
database (prompt cache, caller memory, the knowledge retriever over an ingested document, the
MCP tool gateway, the SQL recorder) and the OpenAI-compatible chat model against the fake LLM,
whose answers follow only from the request it is sent."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connectors.answering import CachedPrompts, SqlEventRecorder, StoredMemory
from connectors.chat_llm import OpenAIChatModel
from connectors.embedder import MiniLMEmbedder
from connectors.llamaindex import LlamaIndexIngestor
from connectors.sources.url import HttpSourceFetcher
from connectors.tool_routing import GatewayToolCatalog, GatewayToolRouter
from connectors.vectors.embedded import EmbeddedVectorStore
from connectors.vectors.knowledge_embedded import EmbeddedKnowledgeIndex
from core.agent.llm import ChatMessage, ModelSettings
from core.agent.runtime import (
    TURN_EVENT,
    AgentRuntime,
    CallTarget,
    RuntimeSettings,
    TurnDelta,
    TurnResult,
)
from core.calls.answering import AnsweringService
from core.calls.models import Call, CallEvent
from core.db import session_scope, utcnow
from core.knowledge.retrieval import KnowledgeRetriever
from core.knowledge.schemas import SourceCreate
from core.prompts.cache import PromptCache
from core.prompts.ports import NoEvalSuiteGate
from core.prompts.schemas import PromptVersionCreate
from core.prompts.service import PromptService
from core.tenancy import repository as tenancy_repo
from core.tenancy.agent_info import AgentInfo
from evals.runner import CaseStatus, Ports, run_suite
from evals.scenarios import load_suite
from evals.simulator import ChatModelCaller
from fakes.llm import FakeLLM, FakeLLMConfig, fake_llm
from tests.conftest import SECRET_KEY, loopback_policy
from tests.eval_helpers import write_suite
from tests.knowledge_helpers import Refresher, add_source
from tests.mcp_helpers import APPOINTMENTS, Harness, HttpServer
from tests.prompt_helpers import principal

FALLBACK = "Sorry, I'm having trouble on my side; give me a moment."


class Starter:
    async def start(self, **_: Any) -> bool | None:
        return True


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm() as fake:
        yield fake


@pytest.fixture(scope="module")
def appointments() -> Iterator[HttpServer]:
    server = HttpServer(APPOINTMENTS).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ingestor(embedder: MiniLMEmbedder) -> LlamaIndexIngestor:
    return LlamaIndexIngestor(embedder)


class World:
    """One tenant (org and agent) and the runtime over real adapters."""

    def __init__(
        self, engine: Engine, harness: Harness, embedder: MiniLMEmbedder, llm: FakeLLM, tmp: Path
    ) -> None:
        self.engine = engine
        self.harness = harness
        self.llm = llm
        self.cache = PromptCache()
        self.index = EmbeddedKnowledgeIndex(tmp / "knowledge")
        self.embedder = embedder
        recorder = SqlEventRecorder(engine, SECRET_KEY)
        self.answering = AnsweringService(
            prompts=CachedPrompts(self.cache, engine),
            memory=StoredMemory(embedder, EmbeddedVectorStore(engine)),
            knowledge=KnowledgeRetriever(embedder, self.index),
            tools=GatewayToolRouter(lambda: harness.gateway, recorder),
            recorder=recorder,
            post_call=Starter(),
        )
        self.model = OpenAIChatModel(llm.base_url, None)
        self.runtime = AgentRuntime(
            answering=self.answering,
            model=self.model,
            tools=GatewayToolCatalog(lambda: harness.gateway),
            settings=RuntimeSettings(
                model=ModelSettings(model="fake-default", timeout_s=5.0),
                fallback_sentence=FALLBACK,
            ),
        )
        with Session(engine) as session:
            row = tenancy_repo.get_agent(session, harness.agent_id)
            assert row is not None
            self.agent = AgentInfo(
                id=row.id, org_id=row.org_id, name=row.name, platform_settings={}, credentials={}
            )

    def release(self, template: str, **fields: Any) -> int:
        """Push a version and label it production; the cache serves it from now on."""
        with Session(self.engine, expire_on_commit=False) as session:
            agent = tenancy_repo.get_agent(session, self.agent.id)
            assert agent is not None
            svc = PromptService(session, NoEvalSuiteGate())
            release = principal(self.agent.org_id, "release")
            body = {"template": template, "message": "test", **fields}
            pushed = svc.push_version(agent, PromptVersionCreate.model_validate(body), release)
            number = pushed.version
            svc.move_label(agent, "production", number, "test", release)
            session.commit()
            self.cache.refresh(session, force=True)
        return number

    def target(self, **fields: Any) -> CallTarget:
        return CallTarget(call_id=f"eval-{uuid.uuid4().hex[:10]}", **fields)

    def events(self, call_id: str) -> list[CallEvent]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(CallEvent)
                .where(CallEvent.platform_call_id == call_id)
                .order_by(CallEvent.id)  # type: ignore[arg-type]
            )
            return list(rows)

    def refresher(self, ingestor: LlamaIndexIngestor) -> Refresher:
        return Refresher(
            self.engine, self.index, self.embedder, ingestor, HttpSourceFetcher(loopback_policy())
        )


@pytest_asyncio.fixture
async def world(
    pg_engine: Engine, embedder: MiniLMEmbedder, llm: FakeLLM, tmp_path: Path
) -> AsyncIterator[World]:
    harness = Harness(pg_engine)
    w = World(pg_engine, harness, embedder, llm, tmp_path)
    llm.config = FakeLLMConfig()
    yield w
    await w.model.aclose()
    w.index.close()
    await harness.aclose()


async def test_the_agent_answers_with_the_served_versions_fact(world: World) -> None:
    world.release(
        "You are Acme Home Services' phone agent. Our office is open Monday to Friday, 8am to 6pm.",
        model={"provider": "openai", "model": "acme-model", "temperature": 0.2, "maxTokens": 60},
        first_message="Thanks for calling Acme, how can I help?",
    )
    conversation = await world.runtime.open_call(world.agent, world.target())
    assert conversation.served is not None and conversation.served.ref == "v1"
    assert conversation.opening == "Thanks for calling Acme, how can I help?"

    turn = await conversation.respond("When is your office open?")
    assert "Monday to Friday, 8am to 6pm" in turn.text
    assert not turn.fallback_used and turn.model == "acme-model"
    assert turn.prompt_version == "v1"
    assert turn.upstream_ms > 0 and turn.backline_ms >= 0 and turn.ttft_ms is not None
    assert turn.usage["total_tokens"] > 0
    sent = world.llm.requests[-1].body
    # The version's model settings win over the runtime's default.
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == ("acme-model", 0.2, 60)
    assert sent["messages"][0]["role"] == "system"
    assert sent["messages"][1] == {"role": "assistant", "content": conversation.opening}
    assert [t.role for t in conversation.transcript()] == ["agent", "caller", "agent"]
    assert conversation.trace == [turn]

    # A new version with another fact: the next call hears the new fact.
    world.release(
        "You are Acme Home Services' phone agent. Our office is open Monday to Saturday, 7am to "
        "9pm."
    )
    later = await world.runtime.open_call(world.agent, world.target())
    assert later.served is not None and later.served.ref == "v2"
    again = await later.respond("When is your office open?")
    assert "Monday to Saturday, 7am to 9pm" in again.text
    assert again.model == "fake-default"  # v2 names no model: the default applies


async def test_an_explicit_version_is_served_whatever_the_labels_say(world: World) -> None:
    world.release("You are Acme's agent. Our office is open Monday to Friday, 8am to 6pm.")
    with Session(world.engine, expire_on_commit=False) as session:
        agent = tenancy_repo.get_agent(session, world.agent.id)
        assert agent is not None
        body = {
            "template": "You are Acme's agent. Our office is open Monday to Sunday, 9am to 1pm.",
            "message": "candidate",
        }
        PromptService(session, NoEvalSuiteGate()).push_version(
            agent, PromptVersionCreate.model_validate(body), principal(agent.org_id, "content")
        )
        session.commit()  # v2 has no label: the cache does not hold it
    candidate = await world.runtime.open_call(world.agent, world.target(version=2))
    assert candidate.served is not None and candidate.served.ref == "v2"
    assert candidate.served.source == "version:2"
    turn = await candidate.respond("When is your office open?")
    assert "Monday to Sunday, 9am to 1pm" in turn.text and turn.prompt_version == "v2"
    # The version wins over a label; production still serves v1 to everyone else.
    pinned = await world.runtime.open_call(world.agent, world.target(version=1, label="staging"))
    assert pinned.served is not None and pinned.served.ref == "v1"
    normal = await world.runtime.open_call(world.agent, world.target())
    assert normal.served is not None and normal.served.ref == "v1"
    # A version that does not exist serves nothing rather than another version.
    missing = await world.runtime.open_call(world.agent, world.target(version=99))
    assert missing.served is None


async def test_a_gateway_tool_is_called_and_its_result_answers(
    world: World, appointments: HttpServer
) -> None:
    await world.harness.register(name="appointments", transport="http", url=appointments.url)
    world.harness.enable("book_slot")
    world.release("You are Acme's booking agent. Book technician visits for callers.")
    slot = f"{(utcnow() + timedelta(days=1)).date():%Y%m%d}-09"
    target = world.target(caller_number="+14155550123")
    conversation = await world.runtime.open_call(world.agent, target)
    assert "book_slot" in {t.name for t in conversation.tools}

    turn = await conversation.respond(f"This is Dana Smith, please book slot {slot} for me.")
    [call] = turn.tool_calls
    assert (call.name, call.source, call.error) == ("book_slot", "gateway", None)
    assert call.arguments["slot_id"] == slot and call.arguments["customer_name"] == "Dana Smith"
    assert isinstance(call.result, dict) and call.result["status"] == "confirmed"
    assert turn.text.startswith("Your booking is confirmed")
    assert call.result["booking_id"] in turn.text
    assert turn.platform_tool_calls == []

    kinds = [e.type for e in world.events(target.call_id)]
    assert "tool_calls" in kinds
    tool_event = next(e for e in world.events(target.call_id) if e.type == "tool_calls")
    assert tool_event.platform == "eval" and tool_event.data["tools"] == ["book_slot"]


async def test_a_tool_the_runtime_does_not_own_passes_through(world: World) -> None:
    world.release(
        "You are Acme's agent.",
        tools=[
            {
                "name": "transfer_to_human",
                "description": "Transfer the caller to a human operator",
                "parameters": {"type": "object", "properties": {}},
            }
        ],
    )
    conversation = await world.runtime.open_call(world.agent, world.target())
    turn = await conversation.respond("Please transfer me to a human operator.")
    [passed] = turn.platform_tool_calls
    assert passed["function"]["name"] == "transfer_to_human"
    assert [(c.name, c.source) for c in turn.tool_calls] == [("transfer_to_human", "platform")]


def _file(name: str, text: str, **policy: Any) -> SourceCreate:
    return SourceCreate(
        kind="file",
        name=name,
        filename=name,
        content_base64=base64.b64encode(text.encode()).decode(),
        **policy,
    )


async def test_knowledge_is_injected_per_turn_and_outdated_chunks_are_not_current(
    world: World, ingestor: LlamaIndexIngestor
) -> None:
    refresher = world.refresher(ingestor)
    org, agent = world.agent.org_id, world.agent.id
    fresh = add_source(
        world.engine,
        org,
        agent,
        _file("drains.md", "# Drains\n\nDrain cleaning costs $175 per drain.\n"),
    )
    stale = add_source(
        world.engine,
        org,
        agent,
        _file(
            "heaters.md",
            "# Water heaters\n\nA water heater flush costs $149.\n",
            refresh_interval_s=3600,
            max_staleness_s=86400,
        ),
    )
    refresher.refresh(fresh)
    refresher.refresh(stale, at=utcnow() - timedelta(days=3))  # verified too long ago
    world.release("You are Acme Home Services' phone agent.")
    target = world.target()
    conversation = await world.runtime.open_call(world.agent, target)

    turn = await conversation.respond("How much does drain cleaning cost?")
    [retrieval] = turn.retrievals
    assert retrieval.status == "ok" and retrieval.chunk_ids
    assert "$175" in turn.text
    sent = world.llm.requests[-1].body["messages"]
    knowledge = [m["content"] for m in sent if m["role"] == "system"][1]
    assert knowledge.startswith("Relevant knowledge")
    assert sent[-1] == {"role": "user", "content": "How much does drain cleaning cost?"}

    old = await conversation.respond("How much does a water heater flush cost?")
    [retrieval] = old.retrievals
    assert retrieval.outdated and all("$149" not in t for t in retrieval.texts)
    assert "$149" not in old.text
    for request in world.llm.requests[-2:]:
        assert "$149" not in str(request.body["messages"])

    events = world.events(target.call_id)
    # One per caller turn (and the model may also search with the built-in knowledge_search,
    # which answers the same outdated signal).
    all_retrievals = [e for e in events if e.type == "knowledge_retrieval"]
    retrievals = [e for e in all_retrievals if e.data["via"] == "agent_turn"]
    assert len(retrievals) == 2
    assert {e.data["via"] for e in all_retrievals} <= {"agent_turn", "knowledge_search"}
    assert retrievals[1].data["withheld"] and retrievals[1].data["status"] in (
        "outdated",
        "partial",
    )
    # The first turn's knowledge is not carried into the second turn's request.
    second = world.llm.requests[-1].body["messages"]
    injected = [m for m in second if str(m.get("content")).startswith("Relevant knowledge")]
    assert len(injected) == 1


async def test_upstream_failure_gives_the_fallback_sentence(world: World) -> None:
    world.release("You are Acme's agent.")
    conversation = await world.runtime.open_call(world.agent, world.target())
    world.llm.config = FakeLLMConfig(failure="server_error")
    turn = await conversation.respond("Hello, is anyone there?")
    assert turn.fallback_used and turn.text == FALLBACK and turn.error
    streamed = [d async for d in conversation.respond_stream("Hello?")]
    assert streamed[0].text == FALLBACK and streamed[-1].result is not None
    assert streamed[-1].result.fallback_used
    world.llm.config = FakeLLMConfig(failure="unauthorized")
    refused = await conversation.respond("Still there?")
    assert refused.fallback_used and refused.text == FALLBACK


async def test_streaming_yields_pieces_then_the_result_and_the_call_is_recorded(
    world: World,
) -> None:
    world.release("You are Acme's agent. Our technicians drive blue vans with a red logo.")
    target = world.target(caller_number="+14155550199")
    conversation = await world.runtime.open_call(world.agent, target)
    deltas: list[TurnDelta] = [
        d async for d in conversation.respond_stream("What color are your vans?")
    ]
    pieces = [d.text for d in deltas if d.result is None]
    result: TurnResult | None = deltas[-1].result
    assert result is not None and len(pieces) > 2
    assert "".join(pieces).strip() == result.text
    assert "blue vans with a red logo" in result.text
    assert result.ttft_ms is not None and result.ttft_ms <= result.upstream_ms + result.backline_ms

    events = world.events(target.call_id)
    assert {e.platform for e in events} == {"eval"}
    kinds = [e.type for e in events]
    assert kinds[0] == "context_request" and events[0].data["prompt_version"] == "v1"
    assert "knowledge_retrieval" in kinds
    updates = [(e.data["role"], e.data["text"]) for e in events if e.type == "transcript_update"]
    assert updates == [("caller", "What color are your vans?"), ("agent", result.text)]
    with Session(world.engine) as session:
        call = session.exec(select(Call).where(Call.platform_call_id == target.call_id)).one()
    assert (call.platform, call.prompt_version) == ("eval", "v1")

    # The turn's trace joins the call's events in the background, after the reply.
    deadline = time.monotonic() + 10
    turns: list[Any] = []
    while not turns and time.monotonic() < deadline:
        turns = [e for e in world.events(target.call_id) if e.platform_type == TURN_EVENT]
        if not turns:
            await asyncio.sleep(0.05)
    assert len(turns) == 1
    trace = turns[0].data
    assert trace["prompt_version"] == "v1" and trace["fallback_used"] is False
    assert trace["ttft_ms"] == result.ttft_ms and trace["upstream_ms"] == result.upstream_ms
    assert trace["usage"] == dict(result.usage) and trace["retrievals"]


async def test_a_given_history_replaces_the_conversation_and_its_system_message(
    world: World,
) -> None:
    world.release("You are Acme's agent. Parking is free behind the building.")
    conversation = await world.runtime.open_call(world.agent, world.target())
    history = [
        ChatMessage.system("You are some other assistant."),
        ChatMessage.assistant("Hi, Acme here."),
        ChatMessage.user("Where can I park?"),
    ]
    turn = await conversation.respond(None, history=history)
    assert "Parking is free behind the building" in turn.text
    sent = world.llm.requests[-1].body["messages"]
    assert "other assistant" not in str(sent)
    assert sent[0]["content"].startswith("You are Acme's agent.")


async def test_memory_search_runs_as_a_builtin_through_the_answering_service(
    world: World,
) -> None:
    world.release("You are Acme's agent.")
    target = world.target(caller_number="+14155550100")
    conversation = await world.runtime.open_call(world.agent, target)
    turn = await conversation.respond("Do you remember what I asked last time?")
    [call] = turn.tool_calls
    assert (call.name, call.source) == ("memory_search", "builtin")
    assert call.error is None and "No earlier memories" in str(call.result)
    with session_scope(world.engine) as session:
        kinds = [
            e.type
            for e in session.exec(
                select(CallEvent).where(CallEvent.platform_call_id == target.call_id)
            )
        ]
    assert "tool_calls" in kinds


async def test_a_simulated_caller_books_through_the_runtime(
    world: World, appointments: HttpServer, tmp_path: Path
) -> None:
    await world.harness.register(name="appointments", transport="http", url=appointments.url)
    world.harness.enable("book_slot")
    world.release("You are Acme's booking agent. Book technician visits for callers.")
    slot = f"{(utcnow() + timedelta(days=2)).date():%Y%m%d}-11"  # not the slot booked above
    scenario = (
        f"name: sim\nsimulated: {{goal: 'book slot {slot} for me', max_turns: 4}}\n"
        "expect: {tools_called: [{name: book_slot}]}\n"
    )
    suite = load_suite(write_suite(tmp_path / "suite", {"sim.yaml": scenario}))
    caller = ChatModelCaller(world.model, ModelSettings(model="fake-caller"))
    [result] = await run_suite(
        suite, world.agent, Ports(world.runtime, simulator=caller), run_id="sim"
    )
    checks = {c.name: c.passed for c in result.checks}
    assert checks == {"conversation": True, "caller finished": True, "called book_slot": True}
    assert result.status is CaseStatus.PASSED
    said = [t["text"] for t in result.transcript if t["role"] == "caller"]
    assert said == [f"Hi, I'd like to book slot {slot} for me."]
    assert result.transcript[-1]["text"].startswith("Your booking is confirmed")
