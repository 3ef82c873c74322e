"""The ``wsd-llm`` command: run Weak-to-Strong Decoding from a terminal.

Nothing here imports torch or transformers at import time (``wsd-llm --help`` stays quick);
each command imports the models when it runs. The generation options of every command are
``WSDConfig``'s fields, declared once (``GENERATION``) with ``WSDConfig``'s own defaults.
"""

from __future__ import annotations

import functools
import inspect
import logging
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from wsd_llm.config import WSDConfig
from wsd_llm.errors import one_line
from wsd_llm.explain import TERMINAL_COLOURS
from wsd_llm.results import WSDResult

if TYPE_CHECKING:
    from wsd_llm.messages import Message
    from wsd_llm.pipeline import WSDPipeline

app = typer.Typer(help="Weak-to-Strong Decoding: a small aligned draft begins, a base model finishes.",
                  no_args_is_help=True, add_completion=False)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
VLLM_SERVER_WORKERS = 64  # concurrent runs `serve --engine vllm` hands to its engines by default
INTERRUPTED = 130  # the shell's exit status for a program stopped by Ctrl-C (128 + SIGINT)

# The WSDConfig fields every generating command takes as options, in --help order.
GENERATION = ("max_new_tokens", "max_draft_tokens", "gamma", "window", "temperature", "top_p", "seed", "stop",
              "base_temperature", "base_top_p", "base_top_k", "base_repetition_penalty", "base_frequency_penalty",
              "base_presence_penalty", "mode", "base_format", "chunk_size")

# Options shared by every command that loads the models.
Draft = Annotated[str | None, typer.Option(
    help="Draft model: hub id, directory or .gguf; default: packaged SmolLM2-135M-Instruct.")]
Base = Annotated[str | None, typer.Option(
    help="Base model: hub id, directory or .gguf; default: packaged Gemma-3-270M.")]
DeviceMap = Annotated[str | None, typer.Option(help="e.g. auto, cpu, cuda (auto needs accelerate).")]
Dtype = Annotated[str | None, typer.Option(help="e.g. auto, float32, bfloat16.")]
EngineName = Annotated[str, typer.Option(
    "--engine", help="What runs --draft/--base: transformers (this process) or vllm (an in-process vLLM "
    "engine per model; concurrent requests share its forward passes).")]
System = Annotated[str | None, typer.Option(help="A system message.")]


class _State:
    debug = False


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
    debug: Annotated[bool, typer.Option(help="Show the full traceback of an error.")] = False,
) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=False)])
    logging.getLogger("wsd_llm").setLevel(logging.DEBUG if verbose else logging.INFO)
    _State.debug = debug


def _option_type(annotation: Any) -> Any:
    """The CLI type of a WSDConfig field: ``None`` always allowed (unset means WSDConfig's default)."""
    if get_origin(annotation) is tuple:
        return list[str] | None
    if get_origin(annotation) is Literal:
        return str | None  # WSDConfig checks the value, with the same one-line error as every setting
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = (arg for arg in get_args(annotation) if arg is not type(None))
    return annotation | None


def _shown_default(value: Any) -> str:
    if value is None or value == ():
        return "none"
    return str(value)


def _generation_parameter(name: str) -> inspect.Parameter:
    field = WSDConfig.model_fields[name]
    extra = " Repeat for several." if name == "stop" else ""
    option = typer.Option(help=f"{field.description}{extra}", show_default=_shown_default(field.default))
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[_option_type(field.annotation), option])


def command(generation: tuple[str, ...]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command with one-line errors for user mistakes (``--debug`` shows the traceback).

    The command gets ``generation`` (names of WSDConfig fields) as options, and receives them
    as one validated ``config``; an option left out takes WSDConfig's default.
    """

    def register(function: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(function, eval_str=True)
        parameters = [p for p in signature.parameters.values() if p.name != "config"]
        parameters += [_generation_parameter(name) for name in generation]

        @functools.wraps(function)
        def run(**kwargs: Any) -> None:
            with user_errors():
                kwargs["config"] = make_config(**{name: kwargs.pop(name) for name in generation})
                function(**kwargs)

        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return app.command()(run)

    return register


@contextmanager
def user_errors() -> Iterator[None]:
    """User mistakes (``ValueError``, ``OSError``) as one red line and exit status 1 (2 for a bad
    option), Ctrl-C as "interrupted"; ``--debug`` shows the traceback instead."""
    try:
        yield
    except (ValueError, OSError) as error:
        if _State.debug:
            raise
        usage = isinstance(error, ValidationError)
        message = one_line(error) if usage else " ".join(str(error).split())
        err.print(f"[red]error:[/red] {escape(message)}")
        raise typer.Exit(2 if usage else 1) from error
    except KeyboardInterrupt:
        if _State.debug:
            raise
        err.print("interrupted")
        raise typer.Exit(INTERRUPTED) from None


def make_config(**settings: Any) -> WSDConfig:
    """A validated config; options left unset (None) take WSDConfig's defaults.

    Raises:
        pydantic.ValidationError: a value out of range (printed as one line by ``command``).
    """
    return WSDConfig(**{key: value for key, value in settings.items() if value is not None})


def load_pipeline(draft: Any, base: Any, config: WSDConfig, device_map: str | None,
                  dtype: str | None, engine: str = "transformers") -> WSDPipeline:
    """Both models (the loaders check first that named paths exist and hub ids can be fetched).

    Raises:
        ValueError: an unknown engine, or ``--device-map`` with vLLM (it places models itself).
    """
    from wsd_llm.backends.loading import ENGINES
    from wsd_llm.pipeline import WSDPipeline

    if engine not in ENGINES:
        raise ValueError(f"unknown --engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "vllm" and device_map:
        raise ValueError("--device-map is for --engine transformers; vLLM places the models itself")
    load = {key: value for key, value in {"device_map": device_map, "dtype": dtype}.items() if value}
    with err.status("Loading models (the first run converts the packaged GGUF files, a few minutes)"):
        return WSDPipeline.from_pretrained(draft=draft, base=base, config=config, engine=engine, **load)


def conversation(prompt: str, system: str | None) -> list[Message]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


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


@command(GENERATION)
def generate(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    config: WSDConfig,
    system: System = None,
    draft: Draft = None,
    base: Base = None,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
    engine: EngineName = "transformers",
) -> None:
    """Stream a WSD reply: draft text in cyan, base text in green, then where the switch happened."""
    pipe = load_pipeline(draft, base, config, device_map, dtype, engine)
    for event in pipe.stream(conversation(prompt, system)):
        if event.result is not None:
            out.print()
            err.print(describe_switch(event.result, config), style="bold")
        else:
            out.print(event.text, style=TERMINAL_COLOURS[event.source], end="")


@command(tuple(name for name in GENERATION if name != "mode"))
def explain(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    config: WSDConfig,
    html: Annotated[Path, typer.Option(help="Where to write the self-contained HTML view.")] = Path(
        "wsd-explain.html"),
    system: System = None,
    draft: Draft = None,
    base: Base = None,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
    engine: EngineName = "transformers",
) -> None:
    """Show the draft token by token with the base's probability, the window mean and the switch.

    The draft is written in full (faithful mode), so the tokens WSD drops after the switch show too.
    """
    from wsd_llm.explain import explain as run_explain
    from wsd_llm.explain import render_html, render_terminal

    pipe = load_pipeline(draft, base, config, device_map, dtype, engine)
    explanation = run_explain(pipe, conversation(prompt, system))
    render_terminal(explanation, out)
    html.write_text(render_html(explanation), encoding="utf-8")
    err.print(f"HTML view written to {html}")


@command(GENERATION)
def run(
    source: Annotated[Path, typer.Argument(
        exists=True, dir_okay=False, help="JSONL of 'messages' or 'instruction'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Results JSONL; a rerun skips lines in it.")],
    config: WSDConfig,
    batch_size: Annotated[int, typer.Option(help="Prompts at once: with --engine vllm, concurrent incremental "
                                                 "runs; with transformers, a padded batch (>1: one-shot order).")] = 1,
    draft: Draft = None,
    base: Base = None,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
    engine: EngineName = "transformers",
) -> None:
    """Run WSD over a dataset; write per-line results, a summary and a switch-position histogram.

    Ctrl-C stops it keeping every finished line; the same command then resumes.
    """
    from wsd_llm.datasets import RunInterrupted, histogram_png, histogram_text, read_prompts, run_dataset

    read_prompts(source)  # a malformed line fails before the models load
    pipe = load_pipeline(draft, base, config, device_map, dtype, engine)
    try:
        summary = run_dataset(pipe, source, output, batch_size=batch_size)
    except RunInterrupted as stop:
        err.print(f"interrupted: {stop.done} of {stop.total} lines are kept in {output}; "
                  "run the same command again to resume")
        raise typer.Exit(INTERRUPTED) from None
    png = histogram_png(summary, output.with_suffix(".histogram.png"))
    output.with_suffix(".summary.json").write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    out.print(histogram_text(summary))
    out.print(f"{summary.lines} lines, {summary.switched} switched, mean draft share "
              f"{summary.mean_draft_share:.1%}, {summary.tokens_per_second:.1f} tokens/s")
    err.print(f"results: {output}; summary: {output.with_suffix('.summary.json')}; histogram: {png}")


@command(GENERATION)
def serve(
    config: WSDConfig,
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the server to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    draft: Draft = None,
    base: Base = None,
    draft_url: Annotated[str | None, typer.Option(
        help="Use a draft served at this OpenAI-compatible URL (e.g. http://127.0.0.1:8001/v1).")] = None,
    base_url: Annotated[str | None, typer.Option(
        help="Use a base served at this OpenAI-compatible URL; it must return prompt logprobs.")] = None,
    remote_api_key: Annotated[str | None, typer.Option(
        envvar="WSD_LLM_REMOTE_API_KEY", show_default=False, help="API key of the remote draft/base servers.")] = None,
    remote_context: Annotated[int | None, typer.Option(
        help="Context size of the remote servers, if they do not state it (llama-cpp-python's --n_ctx).")] = None,
    api_key: Annotated[str | None, typer.Option(
        envvar="WSD_LLM_API_KEY", show_default=False, help="Require this Bearer key from clients.")] = None,
    model_name: Annotated[str, typer.Option(help="Model id clients use.")] = "wsd",
    max_tokens: Annotated[int, typer.Option(
        help="Largest max_tokens a request may ask for; a request without one gets --max-new-tokens.")] = 1024,
    max_request_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1_000_000,
    workers: Annotated[int | None, typer.Option(
        show_default=False, help="WSD runs at once; other requests queue in order. Default 1 "
        "(local models take turns anyway), 64 with --engine vllm (its engines batch the runs).")] = None,
    device_map: DeviceMap = None,
    dtype: Dtype = None,
    engine: EngineName = "transformers",
) -> None:
    """Serve WSD as an OpenAI-compatible API (/v1/chat/completions, /v1/models, /health).

    With --draft-url/--base-url a role runs on a remote server; --draft/--base then name
    that model's tokenizer (hub id, directory or .gguf), default the packaged model's.
    The generation options are the defaults of every request; a request's own fields win.
    """
    import signal
    import socket

    import uvicorn

    from wsd_llm.server import ServerSettings, create_app

    settings = ServerSettings(model_name=model_name, api_key=api_key, max_tokens=max_tokens,
                              max_request_bytes=max_request_bytes,
                              workers=(VLLM_SERVER_WORKERS if engine == "vllm" else 1) if workers is None else workers)
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
                         config, device_map, dtype, engine)
    server = uvicorn.Server(uvicorn.Config(create_app(pipe, settings), log_level="warning"))
    err.print(f"serving {pipe.draft.name} + {pipe.base.name} as {model_name!r} on http://{host}:{port}/v1"
              + (" (API key required)" if api_key else ""))
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again to the handler it found:
    # the default one would end the process at once, before the engines below are stopped.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run(sockets=[listener])
    finally:  # vLLM engines run in processes of their own, which must not outlive the server
        pipe.close()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


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
        message = one_line(error) if isinstance(error, ValidationError) else str(error)
        err.print(f"[red]{role} server:[/red] {escape(message)}")
        raise typer.Exit(1) from error


# Commands in their own modules register themselves on `app` when imported (kept light: no torch).
from wsd_llm.evaluation import cli as _evaluation_cli  # noqa: E402, F401  (compare)
from wsd_llm.training import cli as _training_cli  # noqa: E402, F401  (train-drafter, eval-drafter)

if __name__ == "__main__":  # pragma: no cover
    # `python -m wsd_llm.cli` runs a copy of this module; the commands registered from other modules
    # are on the imported module's app.
    from wsd_llm.cli import app as registered

    registered()
