"""``backline llm``: a small local chat model behind an OpenAI-compatible endpoint.

``serve`` loads a GGUF model on the CPU (connectors/local_llm.py) and answers
``/v1/chat/completions`` until stopped, so evals, the agent runtime and post-call analysis can
run with no vendor (set ``BACKLINE_LLM_BASE_URL`` to the URL it prints). ``models`` lists the
models it knows and whether they are installed. It runs locally, not through the API, and never
downloads a model.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from cli.output import print_rows
from connectors.local_llm import (
    INSTALL_COMMAND,
    KNOWN_MODELS,
    GgufGenerator,
    LocalLLMServer,
    LocalModelUnavailableError,
    installed_path,
    is_installed,
    missing_runtime_modules,
    require_runtime,
    resolve_model_path,
)
from connectors.openai_wire import serve_until_stopped

app = typer.Typer(
    help="A small local chat model behind an OpenAI-compatible endpoint.", no_args_is_help=True
)


def _say(message: str) -> None:
    typer.echo(f"backline llm: {message}", err=True)


@app.command("serve")
def serve(
    model: Annotated[
        str,
        typer.Option(help=f"{' or '.join(KNOWN_MODELS)} (installed packages), or a .gguf path"),
    ] = "smollm2",
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port)")] = 8012,
    max_tokens: Annotated[
        int, typer.Option(min=1, help="Cap on each answer's tokens (and the default)")
    ] = 256,
    threads: Annotated[
        int, typer.Option(min=1, help="CPU threads for the model (1 suits a busy machine)")
    ] = 1,
) -> None:
    """Serve a local model at http://HOST:PORT/v1 (OpenAI-compatible; text answers only)."""
    started = time.perf_counter()
    try:
        require_runtime()
        path = resolve_model_path(model)
        _say(f"loading {model} from {path}")
        model_id = model if model in KNOWN_MODELS else path.stem
        generator = GgufGenerator.load(path, model_id, threads=threads, progress=_say)
    except LocalModelUnavailableError as exc:
        _say(f"error: {exc}")
        raise typer.Exit(1) from exc
    server = LocalLLMServer(generator, host=host, port=port, max_tokens=max_tokens).start()
    _say(f"loaded in {time.perf_counter() - started:.1f} s; one answer at a time")
    typer.echo(f"serving {generator.model_id} at {server.base_url} (Ctrl+C to stop)")
    typer.echo(f"use it: export BACKLINE_LLM_BASE_URL={server.base_url}")
    serve_until_stopped(server.stop)


@app.command("models")
def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """The models `llm serve` knows, whether each is installed, and how to install it."""
    missing = missing_runtime_modules()
    rows = []
    for known in KNOWN_MODELS.values():
        path = installed_path(known.name)
        rows.append(
            {
                "model": known.name,
                "package": known.package,
                "installed": is_installed(known.name),
                "path": str(path) if path else None,
                "install": known.install,
                "about": known.description,
            }
        )
    print_rows(
        rows,
        [
            ("model", "model"),
            ("installed", "installed"),
            ("install", "install"),
            ("about", "about"),
        ],
        title="Local models",
        as_json=as_json,
        ids=("model",),
    )
    if missing and not as_json:
        typer.echo(f"missing packages: {', '.join(missing)}; install: {INSTALL_COMMAND}")
