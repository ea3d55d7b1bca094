"""The torch-sft plugin class: the entry point `torch-sft`; light imports only (torch loads inside train/evaluate)."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any

from tunix_rt.errors import MissingDependency
from tunix_rt.plugins import Kind, Prepared, RunContext, RunResult
from tunix_rt_torch_sft import __version__
from tunix_rt_torch_sft.config import SFTConfig, validate


REQUIRED = ("torch", "transformers")  # tokenizers and safetensors come with transformers; peft is checked for LoRA


def _findable(package: str) -> bool:
    try:
        return find_spec(package) is not None
    except (ImportError, ValueError):  # a finder that refuses the name: not importable either
        return False


class TorchSFTPlugin:
    """Supervised fine-tuning and scored evaluation of a Hugging Face causal LM."""

    name = "torch-sft"
    version = __version__
    capabilities = ("train", "eval")

    def __init__(self) -> None:
        # Found, not imported (importing torch costs a second): a core-only install lists this plugin with the
        # exact `pip install` instead of failing later inside a run.
        for package in REQUIRED:
            if not _findable(package):
                raise MissingDependency(package)

    def config_schema(self) -> dict[str, Any]:
        return SFTConfig.model_json_schema()

    def validate_config(self, kind: Kind, raw: dict[str, Any], base: Path) -> SFTConfig:
        config = validate(kind, raw, base)
        if kind == "train":
            import transformers

            from tunix_rt_torch_sft.modeling import safe_batching

            training = config.training
            training.batching = safe_batching(training.batching, "batching" in training.model_fields_set,  # type: ignore[assignment]
                                              transformers.__version__)
        if config.model.model_id is not None and not Path(config.model.model_id).exists():
            from tunix_rt_torch_sft import hub

            hub.check(config.model.model_id, config.model.revision)  # fail fast, before any folder exists
        return config

    def prepare(self, kind: Kind, config: SFTConfig) -> Prepared:
        from tunix_rt_torch_sft.prepare import prepare

        return prepare(kind, config)

    def train(self, ctx: RunContext, config: SFTConfig, prepared: Prepared) -> RunResult:
        from tunix_rt_torch_sft.train import train

        return train(ctx, config, prepared)

    def evaluate(self, ctx: RunContext, config: SFTConfig, prepared: Prepared) -> RunResult:
        from tunix_rt_torch_sft.scored_eval import evaluate_only

        return evaluate_only(ctx, config, prepared)
