"""The ``wsd-llm`` command: run Weak-to-Strong Decoding from a terminal."""

from __future__ import annotations

import logging
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler

from wsd_llm.config import WSDConfig
from wsd_llm.results import WSDResult

app = typer.Typer(help="Weak-to-Strong Decoding: a small aligned draft begins, a base model finishes.",
                  no_args_is_help=True, add_completion=False)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
COLOURS = {"draft": "cyan", "base": "green"}


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=False)])
    logging.getLogger("wsd_llm").setLevel(logging.DEBUG if verbose else logging.INFO)


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
    draft: Annotated[Optional[str], typer.Option(help="Draft model: hub id, directory or .gguf; default: packaged SmolLM2-135M-Instruct.")] = None,
    base: Annotated[Optional[str], typer.Option(help="Base model: hub id, directory or .gguf; default: packaged Gemma-3-270M.")] = None,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens in the reply.")] = 256,
    max_draft_tokens: Annotated[int, typer.Option(help="Most tokens the draft may write.")] = 512,
    gamma: Annotated[float, typer.Option(help="Switch threshold.")] = 0.8,
    window: Annotated[int, typer.Option(help="Switch window size.")] = 6,
    temperature: Annotated[float, typer.Option(help="Draft temperature (0 = greedy).")] = 0.0,
    seed: Annotated[Optional[int], typer.Option(help="Draft sampling seed.")] = None,
    mode: Annotated[str, typer.Option(help="incremental or faithful.")] = "incremental",
    base_format: Annotated[str, typer.Option(help="plain or chat_template.")] = "plain",
    device_map: Annotated[Optional[str], typer.Option(help="e.g. auto, cpu, cuda (needs accelerate).")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="e.g. auto, float32, bfloat16.")] = None,
) -> None:
    """Stream a WSD reply: draft text in cyan, base text in green, then where the switch happened."""
    from pydantic import ValidationError

    from wsd_llm.pipeline import WSDPipeline

    try:
        config = WSDConfig(max_new_tokens=max_new_tokens, max_draft_tokens=max_draft_tokens, gamma=gamma,
                           window=window, temperature=temperature, seed=seed, mode=mode,  # type: ignore[arg-type]
                           base_format=base_format)  # type: ignore[arg-type]
    except ValidationError as error:
        err.print(f"[red]invalid option:[/red] {error}")
        raise typer.Exit(2) from error
    load = {key: value for key, value in {"device_map": device_map, "dtype": dtype}.items() if value}
    with err.status("Loading models (the first run converts the packaged GGUF files, a few minutes)"):
        pipe = WSDPipeline.from_pretrained(draft=draft, base=base, config=config, **load)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    for event in pipe.stream(messages):
        if event.result is not None:
            out.print()
            err.print(describe_switch(event.result, config), style="bold")
        else:
            out.print(event.text, style=COLOURS[event.source], end="")


if __name__ == "__main__":  # pragma: no cover
    app()
