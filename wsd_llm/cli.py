"""The ``wsd-llm`` command: run Weak-to-Strong Decoding from a terminal."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler

from wsd_llm.config import WSDConfig
from wsd_llm.results import WSDResult

if TYPE_CHECKING:
    from wsd_llm.pipeline import WSDPipeline

app = typer.Typer(help="Weak-to-Strong Decoding: a small aligned draft begins, a base model finishes.",
                  no_args_is_help=True, add_completion=False)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
COLOURS = {"draft": "cyan", "base": "green"}

# Options shared by every command that runs the models.
Draft = Annotated[Optional[str], typer.Option(
    help="Draft model: hub id, directory or .gguf; default: packaged SmolLM2-135M-Instruct.")]
Base = Annotated[Optional[str], typer.Option(
    help="Base model: hub id, directory or .gguf; default: packaged Gemma-3-270M.")]
MaxNewTokens = Annotated[int, typer.Option(help="Most tokens in a reply.")]
MaxDraftTokens = Annotated[int, typer.Option(help="Most tokens the draft may write.")]
Gamma = Annotated[float, typer.Option(help="Switch threshold.")]
Window = Annotated[int, typer.Option(help="Switch window size.")]
DeviceMap = Annotated[Optional[str], typer.Option(help="e.g. auto, cpu, cuda (auto needs accelerate).")]
Dtype = Annotated[Optional[str], typer.Option(help="e.g. auto, float32, bfloat16.")]


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=False)])
    logging.getLogger("wsd_llm").setLevel(logging.DEBUG if verbose else logging.INFO)


def make_config(**settings: Any) -> WSDConfig:
    """A validated config, or exit 2 with the validation message."""
    from pydantic import ValidationError

    try:
        return WSDConfig(**settings)
    except ValidationError as error:
        err.print(f"[red]invalid option:[/red] {error}")
        raise typer.Exit(2) from error


def load_pipeline(draft: str | None, base: str | None, config: WSDConfig, device_map: str | None,
                  dtype: str | None) -> WSDPipeline:
    from wsd_llm.pipeline import WSDPipeline

    load = {key: value for key, value in {"device_map": device_map, "dtype": dtype}.items() if value}
    with err.status("Loading models (the first run converts the packaged GGUF files, a few minutes)"):
        return WSDPipeline.from_pretrained(draft=draft, base=base, config=config, **load)


def describe_switch(result: WSDResult, config: WSDConfig) -> str:
    """One line saying where the base took over, for people reading the terminal."""
    if result.switched:
        where = (f"switch: the base took over after {result.draft_tokens} draft tokens "
                 f"(window mean reached gamma={config.gamma} at token {result.switch_index})")
    else:
        where = (f"no switch: the base never reached gamma={config.gamma}, so all "
                 f"{result.draft_tokens} draft tokens were kept")
    return (f"{where}; the base wrote {result.base_tokens} more tokens "
            f"[{result.timings.total_s:.1f} s, finish: {result.finish_reason}]")


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    system: Annotated[Optional[str], typer.Option(help="A system message.")] = None,
    draft: Draft = None,
    base: Base = None,
    max_new_tokens: MaxNewTokens = 256,
    max_draft_tokens: MaxDraftTokens = 512,
    gamma: Gamma = 0.8,
    window: Window = 6,
    temperature: Annotated[float, typer.Option(help="Draft temperature (0 = greedy).")] = 0.0,
    seed: Annotated[Optional[int], typer.Option(help="Draft sampling seed.")] = None,
    mode: Annotated[str, typer.Option(help="incremental or faithful.")] = "incremental",
    base_format: Annotated[str, typer.Option(help="plain or chat_template.")] = "plain",
    device_map: DeviceMap = None,
    dtype: Dtype = None,
) -> None:
    """Stream a WSD reply: draft text in cyan, base text in green, then where the switch happened."""
    config = make_config(max_new_tokens=max_new_tokens, max_draft_tokens=max_draft_tokens, gamma=gamma,
                         window=window, temperature=temperature, seed=seed, mode=mode, base_format=base_format)
    pipe = load_pipeline(draft, base, config, device_map, dtype)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    for event in pipe.stream(messages):
        if event.result is not None:
            out.print()
            err.print(describe_switch(event.result, config), style="bold")
        else:
            out.print(event.text, style=COLOURS[event.source], end="")


@app.command()
def explain(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    html: Annotated[Path, typer.Option(help="Where to write the self-contained HTML view.")] = Path("wsd-explain.html"),
    draft: Draft = None,
    base: Base = None,
    max_new_tokens: MaxNewTokens = 128,
    max_draft_tokens: MaxDraftTokens = 128,
    gamma: Gamma = 0.8,
    window: Window = 6,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
) -> None:
    """Show the draft token by token with the base's probability, the window mean and the switch."""
    from wsd_llm.explain import explain as run_explain
    from wsd_llm.explain import render_html, render_terminal

    config = make_config(max_new_tokens=max_new_tokens, max_draft_tokens=max_draft_tokens, gamma=gamma,
                         window=window)
    explanation = run_explain(load_pipeline(draft, base, config, device_map, dtype), prompt)
    render_terminal(explanation, out)
    html.write_text(render_html(explanation), encoding="utf-8")
    err.print(f"HTML view written to {html}")


@app.command()
def run(
    source: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL of 'messages' or 'instruction'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Results JSONL; a rerun skips lines in it.")],
    batch_size: Annotated[int, typer.Option(help="Prompts per padded batch (>1: one-shot algorithm).")] = 1,
    draft: Draft = None,
    base: Base = None,
    max_new_tokens: MaxNewTokens = 256,
    max_draft_tokens: MaxDraftTokens = 512,
    gamma: Gamma = 0.8,
    window: Window = 6,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
) -> None:
    """Run WSD over a dataset; write per-line results, a summary and a switch-position histogram."""
    from wsd_llm.datasets import histogram_png, histogram_text, read_prompts, run_dataset

    config = make_config(max_new_tokens=max_new_tokens, max_draft_tokens=max_draft_tokens, gamma=gamma,
                         window=window)
    try:
        read_prompts(source)
    except ValueError as error:
        err.print(f"[red]bad input:[/red] {error}")
        raise typer.Exit(2) from error
    summary = run_dataset(load_pipeline(draft, base, config, device_map, dtype), source, output,
                          batch_size=batch_size)
    png = histogram_png(summary, output.with_suffix(".histogram.png"))
    output.with_suffix(".summary.json").write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    out.print(histogram_text(summary))
    out.print(f"{summary.lines} lines, {summary.switched} switched, mean draft share "
              f"{summary.mean_draft_share:.1%}, {summary.tokens_per_second:.1f} tokens/s")
    err.print(f"results: {output}; summary: {output.with_suffix('.summary.json')}; histogram: {png}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the server to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    draft: Draft = None,
    base: Base = None,
    draft_url: Annotated[Optional[str], typer.Option(
        help="Use a draft served at this OpenAI-compatible URL (e.g. http://127.0.0.1:8001/v1).")] = None,
    base_url: Annotated[Optional[str], typer.Option(
        help="Use a base served at this OpenAI-compatible URL; it must return prompt logprobs.")] = None,
    remote_api_key: Annotated[Optional[str], typer.Option(
        envvar="WSD_LLM_REMOTE_API_KEY", show_default=False, help="API key of the remote draft/base servers.")] = None,
    remote_context: Annotated[Optional[int], typer.Option(
        help="Context size of the remote servers, if they do not state it (llama-cpp-python's --n_ctx).")] = None,
    api_key: Annotated[Optional[str], typer.Option(
        envvar="WSD_LLM_API_KEY", show_default=False, help="Require this Bearer key from clients.")] = None,
    model_name: Annotated[str, typer.Option(help="Model id clients use.")] = "wsd",
    max_tokens: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for.")] = 1024,
    max_request_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1_000_000,
    workers: Annotated[int, typer.Option(help="WSD runs at once; other requests queue in order.")] = 1,
    max_draft_tokens: MaxDraftTokens = 512,
    gamma: Gamma = 0.8,
    window: Window = 6,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
) -> None:
    """Serve WSD as an OpenAI-compatible API (/v1/chat/completions, /v1/models, /health).

    With --draft-url/--base-url a role runs on a remote server; --draft/--base then name
    that model's tokenizer (hub id, directory or .gguf), default the packaged model's.
    """
    import socket

    import uvicorn

    from wsd_llm.server import ServerSettings, create_app

    config = make_config(max_draft_tokens=max_draft_tokens, gamma=gamma, window=window)
    settings = ServerSettings(model_name=model_name, api_key=api_key, max_tokens=max_tokens,
                              max_request_bytes=max_request_bytes, workers=workers)
    # Bind before loading the models, so a busy port fails at once; uvicorn serves on this socket.
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        err.print(f"[red]cannot serve on {host}:{port}:[/red] {error.strerror or error}; "
                  "choose another --port or --host")
        raise typer.Exit(1) from error
    pipe = load_pipeline(remote_or_local("draft", draft, draft_url, remote_api_key, remote_context),
                         remote_or_local("base", base, base_url, remote_api_key, remote_context),
                         config, device_map, dtype)
    server = uvicorn.Server(uvicorn.Config(create_app(pipe, settings), log_level="warning"))
    err.print(f"serving {pipe.draft.name} + {pipe.base.name} as {model_name!r} on http://{host}:{port}/v1"
              + (" (API key required)" if api_key else ""))
    server.run(sockets=[listener])


def remote_or_local(role: str, model: str | None, url: str | None, api_key: str | None,
                    context_window: int | None) -> Any:
    """A remote model when ``url`` is given (``model`` is then its tokenizer), else ``model`` itself."""
    if url is None:
        return model
    from wsd_llm import packaged
    from wsd_llm.backends.remote import RemoteBase, RemoteDraft, RemoteError

    tokenizer = model or str(packaged.draft_gguf() if role == "draft" else packaged.base_gguf())
    kind = RemoteDraft if role == "draft" else RemoteBase
    try:
        return kind(url, tokenizer, api_key=api_key, context_window=context_window)
    except (RemoteError, ValueError) as error:
        err.print(f"[red]{role} server:[/red] {error}")
        raise typer.Exit(1) from error


if __name__ == "__main__":  # pragma: no cover
    app()
