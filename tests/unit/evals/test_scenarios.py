"""Loading eval suites: the example folder loads; every mistake is reported with its file, its
line and what to write, all of them at once."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from evals.scenarios import (
    ArgConstraint,
    Outcome,
    SuiteError,
    ToolCallExpectation,
    load_scenario,
    load_suite,
    phrase_matches,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "evals" / "booking"


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    target = tmp_path / "booking"
    shutil.copytree(EXAMPLE, target)
    return target


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def _problems(folder: Path) -> list[str]:
    with pytest.raises(SuiteError) as caught:
        load_suite(folder)
    return [str(p) for p in caught.value.problems]


def test_example_suite_loads() -> None:
    suite = load_suite(EXAMPLE)
    assert suite.config.name == "booking"
    assert suite.config.repeats == 3
    assert suite.config.time_cap == 1200
    assert set(suite.config.tools.sandbox) == {"bookings", "orders"}
    assert suite.config.tools.sandbox["orders"].command == [
        "python",
        "examples/mcp_servers/orders.py",
    ]
    book, refund = suite.scenarios
    assert book.name == "book a table for four"
    assert suite.sources[book.name].name == "book_a_table.yaml"
    assert book.caller.prior_calls[0].turns[1].role == "agent"
    assert book.expect.tools_called[0].args["time"].equals == "19:30"  # not base-60 750
    assert book.expect.numbers_from_knowledge == ["12"]
    assert book.expect.outcome is not None and book.expect.outcome.server == "bookings"
    assert refund.simulated is not None and refund.simulated.max_turns == 12
    assert suite.target_for(book) == "staging" and suite.target_for(refund) == 3
    assert suite.agent_for(refund) == "demo-restaurant"
    # the refund scenario has its own persona (from the suite's personas/ folder); the booking
    # scenario is crossed with the suite's two, noisy_speech at the suite's word error rate
    assert [p.name for p in suite.personas_for(refund) if p] == ["regular"]
    noisy = suite.personas_for(book)[1]
    assert noisy is not None and noisy.transforms[-1].wer == 0.2
    assert len(suite.cases()) == (2 + 1) * 3
    assert [s.name for s in suite.select(tags=["refunds"])] == [refund.name]
    assert suite.select(exclude=["smoke"]) == [refund]
    case = suite.cases(tags=["booking"])[0]
    assert case.caller_turns is not None and len(case.caller_turns) == 3
    assert case.opening is not None and "book a table" in case.opening


def test_unknown_key_names_the_line_and_suggests(suite_dir: Path) -> None:
    path = _write(
        suite_dir,
        "typo.yaml",
        """
        name: typo
        turns: [Hello]
        expect:
          tools_caled:
            - name: create_booking
        """,
    )
    assert _problems(suite_dir) == [
        f"{path}:4: 'tools_caled' is not a key here; did you mean 'tools_called'?"
    ]


def test_wrong_type(suite_dir: Path) -> None:
    path = _write(
        suite_dir,
        "types.yaml",
        """
        name: types
        turns: [Hello]
        expect:
          max_turns: lots
        """,
    )
    (problem,) = _problems(suite_dir)
    assert problem.startswith(f"{path}:4: expect.max_turns:")
    assert "'lots'" in problem and "write a whole number" in problem


def test_missing_required_field(suite_dir: Path) -> None:
    path = _write(
        suite_dir,
        "missing.yaml",
        """
        name: missing
        simulated:
          max_turns: 5
        """,
    )
    assert _problems(suite_dir) == [
        f"{path}:2: missing 'goal' under 'simulated'; add 'goal:' (what the caller wants, in "
        "plain words)"
    ]


def test_turns_and_simulated_together(suite_dir: Path) -> None:
    path = _write(
        suite_dir,
        "both.yaml",
        """
        name: both
        turns:
          - Hi
        simulated:
          goal: book a table
        """,
    )
    (problem,) = _problems(suite_dir)
    assert problem.startswith(f"{path}:4: simulated: write either turns:")


def test_bad_regex(suite_dir: Path) -> None:
    path = _write(
        suite_dir,
        "regex.yaml",
        """
        name: regex
        turns: [Hi]
        expect:
          must_say:
            - booked
            - "/(confirmed/"
          tools_called:
            - name: create_booking
              args:
                time: {pattern: "[0-9"}
        """,
    )
    problems = _problems(suite_dir)
    assert problems[0].startswith(f"{path}:6: expect.must_say[1]: /(confirmed/ is not a valid")
    assert "escape special characters" in problems[0]
    assert problems[1].startswith(f"{path}:10: expect.tools_called[0].args.time: '[0-9' is not")


def test_every_problem_in_every_file_is_reported(suite_dir: Path) -> None:
    (suite_dir / "suite.yaml").write_text(
        (suite_dir / "suite.yaml").read_text().replace("repeats: 3", "repeats: many")
    )
    _write(suite_dir, "a.yaml", "name: a\nturns: [Hi]\npersona: angy\n")
    _write(suite_dir, "b.yaml", "name: b\nturns:\n  - Hi\n expect: {}\n")
    _write(suite_dir, "b2.yaml", "name: b2\npersona: elderly\nturns: Hi\n")
    _write(suite_dir, "c.yaml", "name: book a table for four\nturns: [Hi]\n")
    problems = _problems(suite_dir)
    text = "\n".join(problems)
    assert len(problems) == 6, text
    assert "suite.yaml:9: repeats:" in text
    assert "a.yaml:3: unknown persona 'angy'; did you mean 'angry'?" in text
    assert "b.yaml:4: this is not valid YAML" in text
    assert "b2.yaml:2: unknown persona 'elderly'; did you mean 'elderly_slow'?" in text
    assert "b2.yaml:3: turns: Input should be a valid list" in text
    assert "c.yaml:1: scenario name 'book a table for four' is already used in" in text


def test_outcome_server_must_be_a_sandbox_server(suite_dir: Path) -> None:
    path = _write(
        suite_dir,
        "d.yaml",
        "name: d\nturns: [Hi]\nexpect:\n  outcome:\n    tool: list_bookings\n    server: bookngs\n",
    )
    assert _problems(suite_dir) == [
        f"{path}:6: server 'bookngs' is not a sandbox server in suite.yaml; did you mean "
        "'bookings'?; add it under tools: sandbox:, or set tools: allow_production_tools: true"
    ]


def test_duplicate_key_and_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "dup.yaml", "name: a\nturns: [Hi]\nname: b\n")
    with pytest.raises(SuiteError) as caught:
        load_scenario(path)
    assert str(caught.value.problems[0]) == (
        f"{path}:3: 'name' is written twice (first on line 1); keep one"
    )
    empty = _write(tmp_path, "empty.yaml", "")
    with pytest.raises(SuiteError, match="the file is empty"):
        load_scenario(empty)
    with pytest.raises(SuiteError, match=r"no suite\.yaml"):
        load_suite(tmp_path)


def test_checks_match_what_they_say() -> None:
    call = ToolCallExpectation.model_validate(
        {
            "name": "create_booking",
            "args": {
                "party_size": 4,
                "time": {"pattern": r"19:30|7:30 ?pm"},
                "guest.name": {"one_of": ["Dana", "Dana Whitfield"]},
                "notes": {"present": False},
            },
        }
    )
    args = {"party_size": "4", "time": "19:30", "guest": {"name": "dana whitfield"}}
    assert call.matches("create_booking", args)
    assert not call.matches("create_booking", {**args, "notes": "window"})
    assert not call.matches("create_booking", {**args, "party_size": 5})
    assert not call.matches("cancel_booking", args)
    assert ArgConstraint.model_validate({"present": True}).matches("x")
    assert not ArgConstraint.model_validate({"present": True}).matches()

    outcome = Outcome.model_validate(
        {"tool": "list_bookings", "items": "bookings", "where": {"party_size": 4}, "count": 1}
    )
    assert outcome.matches({"bookings": [{"party_size": 4}, {"party_size": 2}]})
    assert not outcome.matches({"bookings": [{"party_size": 4}, {"party_size": 4}]})
    assert not outcome.matches({"other": []})

    assert phrase_matches("Booked", "You're  booked for seven.")
    assert phrase_matches("/confirm(ed|ation)/i", "Your CONFIRMATION number is 12")
    assert not phrase_matches("/confirmed/", "Confirmed")
