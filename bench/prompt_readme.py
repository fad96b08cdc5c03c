"""Writes the prompt benchmarks' results into ``bench/README.md`` under "## Prompt rollouts".

Other benchmarks write the rest of that file: this only ever replaces one ``### `` subsection
inside the "## Prompt rollouts" section (creating the section at the end when missing) and
leaves every other byte as it was.
"""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"
SECTION = "## Prompt rollouts"
INTRO = (
    "Canary-rollout signal quality and label-move propagation. The decision code is "
    "`core/prompts/sequential.py` (the workflow's guard activity and the simulation call the "
    "same `evaluate_guards`); each subsection is rewritten by its script with `--write-readme`."
)


def _split_section(text: str) -> tuple[str, str, str]:
    """(before, the Prompt rollouts section, after)."""
    start = text.find(f"\n{SECTION}\n") + 1 if f"\n{SECTION}\n" in text else -1
    if text.startswith(f"{SECTION}\n"):
        start = 0
    if start < 0:
        return text, "", ""
    nxt = text.find("\n## ", start + len(SECTION))
    end = len(text) if nxt < 0 else nxt + 1
    return text[:start], text[start:end], text[end:]


def write_subsection(heading: str, body: str, path: Path = README) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    before, section, after = _split_section(text)
    block = f"### {heading}\n\n{body.strip()}\n"
    if not section:
        sep = "" if before.endswith("\n\n") else ("\n" if before.endswith("\n") else "\n\n")
        path.write_text(f"{before}{sep}{SECTION}\n\n{INTRO}\n\n{block}")
        return
    marker = f"### {heading}\n"
    if marker in section:
        head, _, rest = section.partition(marker)
        nxt = rest.find("\n### ")
        tail = "" if nxt < 0 else rest[nxt + 1 :]
        section = f"{head}{block}\n{tail}" if tail else f"{head}{block}"
    else:
        section = f"{section.rstrip()}\n\n{block}"
    if after and not section.endswith("\n\n"):
        section = section.rstrip("\n") + "\n\n"
    path.write_text(f"{before}{section}{after}")
