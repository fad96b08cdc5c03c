"""Call analysis through any OpenAI-compatible chat-completions endpoint.

Implements ``core.memory.ports.CallAnalyzer``. It is the only place that knows the OpenAI SDK
and its errors; it translates them into ``AnalyzerError`` (retrying may help) and
``AnalyzerUnavailableError`` (it will not). It never retries on its own: the SDK's retries are
off because the Temporal activity's retry policy is the single owner of retries, and the
fallback to the rule-based analysis is the workflow's decision, not this module's. It never
logs transcripts or the API key.
"""

from __future__ import annotations

import openai
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema
from pydantic import BaseModel, ValidationError

from core.calls.events import Turn
from core.memory.analysis import (
    CONTACT_CHANNELS,
    FACT_KEYS,
    METHOD_LLM,
    CallAnalysis,
    ExtractedFact,
    normalize_fact_value,
)
from core.memory.ports import AnalyzerError, AnalyzerUnavailableError

# Local servers (vLLM, llama.cpp, Ollama) ignore the key, but the SDK refuses to run without
# one and would otherwise fall back to OPENAI_API_KEY from the environment.
PLACEHOLDER_API_KEY = "backline-no-key"

SCHEMA_NAME = "call_analysis"

ANALYSIS_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "facts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "enum": list(FACT_KEYS)},
                    "value": {"type": "string"},
                },
                "required": ["key", "value"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["summary", "facts"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = f"""You analyze one finished phone call between a voice AI agent and a caller.
Return JSON with:
- "summary": at most three short sentences: what the caller wanted and how the agent resolved
  it. Use only what was said in the call.
- "facts": durable facts the CALLER stated about themselves, as {{"key", "value"}} objects.
  Use only these keys: {", ".join(FACT_KEYS)}.
  contact_preference is one of: {", ".join(CONTACT_CHANNELS)}. language is a lowercase English
  language name (e.g. "spanish"). order_id and account_id are the identifiers as spoken.
  appointment is the date and time as said (e.g. "Tuesday at 3pm").
  If a fact is stated more than once, keep only the caller's latest statement.
  Never take facts from what the agent said, and never guess. Omit keys that were not stated.
"""


class _LLMFact(BaseModel):
    key: str
    value: str


class _LLMOutput(BaseModel):
    summary: str
    facts: list[_LLMFact]


def _transcript(turns: list[Turn]) -> str:
    return "\n".join(
        f"{'Caller' if t.role == 'caller' else 'Agent'}: {t.text.strip()}"
        for t in turns
        if t.text.strip()
    )


def _parse(content: str) -> CallAnalysis:
    try:
        output = _LLMOutput.model_validate_json(content)
    except ValidationError as exc:
        # Covers both malformed JSON and well-formed JSON of the wrong shape.
        raise AnalyzerError(f"LLM output does not match the analysis schema: {exc}") from exc
    facts: dict[str, str] = {}
    for fact in output.facts:
        # A key outside the vocabulary is dropped rather than failing the call: a retry would
        # likely repeat it, and the other facts are still good.
        value = normalize_fact_value(fact.key, fact.value)
        if value is not None:
            facts[fact.key] = value
    return CallAnalysis(
        summary=" ".join(output.summary.split()),
        facts=[ExtractedFact(key=k, value=facts[k]) for k in FACT_KEYS if k in facts],
        method=METHOD_LLM,
    )


def _content_of(completion: ChatCompletion) -> str:
    if not completion.choices:
        raise AnalyzerError("the LLM returned no choices")
    choice = completion.choices[0]
    if choice.finish_reason == "length":
        raise AnalyzerError("the LLM output was cut off (finish_reason=length)")
    message = choice.message
    if message.refusal:
        raise AnalyzerError("the LLM refused to analyze the call")
    content = message.content
    if not content or not content.strip():
        raise AnalyzerError("the LLM returned an empty message")
    return content


class OpenAICompatibleAnalyzer:
    """Summarizes a call and extracts caller facts with one structured-output completion."""

    def __init__(
        self, base_url: str, model: str, api_key: str | None, timeout_s: float = 20.0
    ) -> None:
        self._model = model
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=api_key or PLACEHOLDER_API_KEY,
            timeout=timeout_s,
            max_retries=0,
        )

    def analyze(self, turns: list[Turn]) -> CallAnalysis:
        transcript = _transcript(turns)
        if not transcript:
            return CallAnalysis(summary="", facts=[], method=METHOD_LLM)
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Transcript:\n{transcript}"},
        ]
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "schema": ANALYSIS_SCHEMA, "strict": True},
        }
        try:
            completion = self._client.chat.completions.create(
                model=self._model,
                messages=messages,
                response_format=response_format,
                temperature=0,
            )
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise AnalyzerUnavailableError(
                f"the LLM endpoint refused the credentials (HTTP {exc.status_code})"
            ) from exc
        except openai.NotFoundError as exc:
            raise AnalyzerUnavailableError(
                f"model {self._model!r} or the chat-completions route was not found (HTTP 404)"
            ) from exc
        except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
            # The request itself is rejected (e.g. no structured-output support): the same
            # request will be rejected again.
            raise AnalyzerUnavailableError(
                f"the LLM endpoint rejected the request (HTTP {exc.status_code}): {exc.message}"
            ) from exc
        except openai.APITimeoutError as exc:
            raise AnalyzerError("the LLM request timed out") from exc
        except openai.APIConnectionError as exc:
            raise AnalyzerError(f"could not reach the LLM endpoint: {exc.message}") from exc
        except openai.APIStatusError as exc:
            raise AnalyzerError(f"the LLM endpoint answered HTTP {exc.status_code}") from exc
        except openai.OpenAIError as exc:
            raise AnalyzerError(f"the LLM call failed: {type(exc).__name__}") from exc

        return _parse(_content_of(completion))
