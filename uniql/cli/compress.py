"""``uniql compress``: run the whole pipeline locally and write one banded artifact."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import click

from uniql.errors import UniqlError

logger = logging.getLogger(__name__)


def parse_rates(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(item) for item in value.replace(" ", "").split(",") if item]
    except ValueError as error:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers such as 0,0.15,0.35") from error


@click.command(context_settings={"show_default": True})
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Artifact directory to create.")
@click.option("--config", "config_file", type=click.Path(exists=True, path_type=Path), help="JSON file with pipeline settings; flags override it.")
@click.option("--rates", help="Comma-separated global pruning rates. [default: 0,0.05,...,0.35]")
@click.option("--bits", type=int, help="Weight bits (only 4 is supported). [default: 4]")
@click.option("--group-size", type=int, help="Requested 4-bit group size; smaller where a cut needs it. [default: 32]")
@click.option("--scheme", type=click.Choice(["asymmetric", "symmetric"]), help="4-bit grid. [default: asymmetric]")
@click.option("--method", type=click.Choice(["gptq", "rtn"]), help="Quantizer. [default: gptq]")
@click.option("--calibration-text", help="Prepared corpus name or a text file (one document per line). [default: calibration]")
@click.option("--calibration-samples", type=int, help="Number of calibration windows. [default: 64]")
@click.option("--calibration-length", type=int, help="Tokens per calibration window. [default: 512]")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where to compute. [default: auto]")
@click.option("--finetune/--no-finetune", default=None, help="Masked LoRA recovery fine-tuning. [default: off]")
@click.option("--eval/--no-eval", "run_eval", default=True, help="Measure perplexity at every rate after packaging.")
@click.option("--eval-windows", type=int, help="Evaluation windows per text. [default: 8]")
@click.option("--workdir", type=click.Path(path_type=Path), help="Checkpoints; rerunning resumes from them. [default: OUT.work beside OUT]")
@click.option("--overwrite", is_flag=True, help="Replace an existing, different artifact in OUT.")
@click.option("--keep-workdir", is_flag=True, help="Keep the checkpoints after success.")
def compress(model_dir: Path, out_dir: Path, config_file: Path | None, rates: str | None, bits, group_size, scheme, method,
             calibration_text, calibration_samples, calibration_length, device, finetune, run_eval, eval_windows,
             workdir: Path | None, overwrite: bool, keep_workdir: bool) -> None:
    """Compress MODEL_DIR (a Hugging Face model directory) into a banded 4-bit artifact in OUT."""
    from uniql.cli.progress import StageProgress
    from uniql.pipeline import STAGES, CompressConfig, run_pipeline, validate_model_dir

    settings = json.loads(config_file.read_text()) if config_file else {}
    overrides = {
        "rates": parse_rates(rates), "bits": bits, "group_size": group_size, "scheme": scheme, "method": method,
        "calibration_text": calibration_text, "calibration_samples": calibration_samples,
        "calibration_length": calibration_length, "device": device, "eval_windows": eval_windows,
    }
    settings.update({key: value for key, value in overrides.items() if value is not None})
    if finetune is not None:
        settings["finetune"] = {"enabled": True} if finetune else None
    try:
        config = CompressConfig.from_dict(settings)
        validate_model_dir(model_dir, config)
        from uniql.pipeline.package_stage import source_digest

        digest = source_digest(model_dir)
        if _artifact_is_current(out_dir, digest, config, overwrite):
            from uniql.cli.tables import print_rate_table

            click.echo(f"{out_dir} already contains this artifact; nothing to do", err=True)
            print_rate_table(out_dir)
            click.echo(str(out_dir))
            return
        workdir = workdir or out_dir.with_name(out_dir.name + ".work")
        stages = STAGES if run_eval else tuple(stage for stage in STAGES if stage != "evaluate")
        progress = StageProgress()
        try:
            metrics = run_pipeline(model_dir, workdir, config, stages, progress=progress)
        finally:
            progress.close()
        _install(workdir / "artifact", out_dir)
    except UniqlError as error:
        raise click.ClickException(str(error)) from error

    if not keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = {stage: values.get("seconds") for stage, values in metrics.items()}
    logger.info("stage seconds: %s", seconds)
    from uniql.cli.tables import print_rate_table

    print_rate_table(out_dir)
    click.echo(str(out_dir))


def _artifact_is_current(out_dir: Path, digest: str, config, overwrite: bool) -> bool:
    """Return True when OUT contains an artifact of this model and config; raise if it contains another."""
    from uniql.errors import ArtifactError

    if not out_dir.exists() or not any(out_dir.iterdir()):
        return False
    manifest_path = out_dir / "manifest.json"
    if not manifest_path.is_file():
        if overwrite:
            return False
        raise ArtifactError(f"{out_dir} is not empty and contains no artifact; choose an empty or new --out directory")
    provenance = json.loads(manifest_path.read_text()).get("provenance", {})
    same = provenance.get("source_model_digest") == digest and provenance.get("pipeline_config") == config.to_dict()
    if same:
        return True
    if overwrite:
        return False
    raise ArtifactError(
        f"{out_dir} already contains a different artifact (another model or other settings); "
        "choose another --out or pass --overwrite to replace it"
    )


def _install(built: Path, out_dir: Path) -> None:
    """Move the finished artifact into place; an older artifact there is replaced only now."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(built), str(out_dir))
