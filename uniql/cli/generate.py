"""``uniql generate``: greedy text from an artifact at one rate with the PyTorch reference slicer."""

from __future__ import annotations

from pathlib import Path

import click

from uniql.errors import UniqlError


@click.command(context_settings={"show_default": True})
@click.argument("artifact_dir", type=click.Path(path_type=Path))
@click.argument("prompt")
@click.option("--rate", type=float, default=0.0, help="Pruning rate; must be one of the artifact's rates.")
@click.option("--max-tokens", type=int, default=40, help="Tokens to generate.")
@click.option("--chat/--no-chat", default=True, help="Wrap the prompt in the tokenizer's chat template.")
def generate(artifact_dir: Path, prompt: str, rate: float, max_tokens: int, chat: bool) -> None:
    """Generate a continuation of PROMPT from ARTIFACT_DIR at --rate (greedy, on the CPU or GPU)."""
    import torch

    from uniql.artifact import Artifact
    from uniql.pipeline.evaluate_stage import artifact_tokenizer
    from uniql.slicing import model_from_artifact

    if max_tokens <= 0:
        raise click.BadParameter(f"--max-tokens must be positive, got {max_tokens}")
    try:
        artifact = Artifact.open(artifact_dir)
        artifact.rate_entry(rate)
        tokenizer = artifact_tokenizer(artifact)
        model = model_from_artifact(artifact, rate)
    except UniqlError as error:
        raise click.ClickException(str(error)) from error

    if chat and tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    else:
        text = prompt
    ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
    stop_ids = _stop_ids(artifact, tokenizer)
    generated: list[int] = []
    with torch.no_grad():
        for _ in range(max_tokens):
            next_id = int(model(ids)[0, -1].argmax())
            if next_id in stop_ids:
                break
            generated.append(next_id)
            ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    if not generated:
        click.echo("the model ended its reply at once (end-of-sequence token); try --no-chat or a lower --rate", err=True)
    click.echo(tokenizer.decode(generated, skip_special_tokens=True))


def _stop_ids(artifact, tokenizer) -> set[int]:
    ids = artifact.eos_token_ids()
    for token in ("<|im_end|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id >= 0 and token != tokenizer.unk_token:
            ids.add(token_id)
    return ids
