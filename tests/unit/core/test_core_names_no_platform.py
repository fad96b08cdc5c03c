"""Core names no voice platform in its code: no identifier contains a registered platform's name
and no string literal is one. The connectors' registry is where platforms are named; comments and
docstrings may still mention a platform as an example.

``core/settings.py`` keeps the demo credentials' documented environment variable names
(``BACKLINE_DEMO_VAPI_TOKEN`` …), which are settings field names.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

from connectors.registry import PLATFORMS

CORE = Path(__file__).resolve().parents[3] / "core"
ALLOWED = {CORE / "settings.py"}


def _mentions(path: Path) -> list[str]:
    source = path.read_text()
    names = [n.lower() for n in PLATFORMS]
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and any(n in tok.string.lower() for n in names):
            found.append(f"{path.name}:{tok.start[0]}: {tok.string}")
        elif tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):  # f-strings
                continue
            if isinstance(value, str) and value.lower() in names:
                found.append(f"{path.name}:{tok.start[0]}: {tok.string}")
    return found


def test_core_code_names_no_platform() -> None:
    found = [m for p in sorted(CORE.rglob("*.py")) if p not in ALLOWED for m in _mentions(p)]
    assert not found, f"platform names in core code (they belong to connectors): {found}"


def test_the_check_sees_a_platform_name(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('"""About vapi."""\n# vapi\nP = Literal["vapi"]\nvapi_assistant_id = None\n')
    assert len(_mentions(probe)) == 2
