"""torch-sft config bounds: every number finite and bounded, refused (exit 2) before any folder exists; a run whose
loss stops being finite fails (exit 1) with only valid JSON in its metrics."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

import pytest
from _runs_support import start_milestone
from tunix_rt_torch_sft import config as C

from tunix_rt.errors import TunixError

RUNS = Path(__file__).resolve().parent / "data" / "runs"
BASE = {"model": {"tiny": {"arch": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2}},
        "data": {"train": str(RUNS / "traces.jsonl")}}


@pytest.mark.parametrize("where,value,key", [
    (("seed",), 10**29, "seed"),  # D24: passed, then crashed in torch.manual_seed
    (("training", "learning_rate"), math.inf, "training.learning_rate"),  # D25: ran to a NaN loss
    (("training", "learning_rate"), math.nan, "training.learning_rate"),
    (("training", "weight_decay"), math.inf, "training.weight_decay"),
    (("training", "num_epochs"), math.inf, "training.num_epochs"),
    (("training", "max_grad_norm"), math.nan, "training.max_grad_norm"),
    (("training", "num_threads"), 100000, "training.num_threads"),  # D26: segfaulted
    (("training", "batch_size"), 10**12, "training.batch_size"),
    (("training", "max_seq_length"), 10**12, "training.max_seq_length"),
    (("training", "max_steps"), 10**30, "training.max_steps"),
    (("eval", "batch_size"), 10**12, "eval.batch_size"),
    (("seed",), -1, "seed"),
])
def test_unbounded_or_non_finite_numbers_are_refused_with_the_key_named(where, value, key):
    raw = json.loads(json.dumps(BASE))
    target = raw
    for part in where[:-1]:
        target = target.setdefault(part, {})
    target[where[-1]] = value
    with pytest.raises(TunixError, match=rf"'{key}'"):
        C.validate("train", raw, RUNS)


def test_more_threads_than_cores_is_refused():
    import os

    raw = {**BASE, "training": {"num_threads": (os.cpu_count() or 1) + 1}}
    with pytest.raises(TunixError, match=r"'training.num_threads'.*cores"):
        C.validate("train", raw, RUNS)


def _project_with_data(root: Path) -> None:
    start_milestone(root)
    (root / "data").mkdir()
    (root / "data" / "train.jsonl").write_bytes(
        resources.files("tunix_rt.data").joinpath("reasoning_train.jsonl").read_bytes())


def test_d24_d26_through_the_cli_exit_2_and_write_nothing(project, run_cli):
    _project_with_data(project.root)
    for extra in ("seed: 100000000000000000000000000000", "training: {learning_rate: .inf}",
                  "training: {num_threads: 100000}"):
        (project.root / "bad.yaml").write_text(
            "model: {tiny: {arch: gpt2, n_layer: 1, n_embd: 32, n_head: 2}}\ndata: {train: data/train.jsonl}\n"
            + extra + "\n", encoding="utf-8")
        result = run_cli("run", "train", "--plugin", "torch-sft", "--config", "bad.yaml")
        assert result.code == 2, (extra, result.err)
        assert len(result.err.strip().splitlines()) == 1
        assert not (project.root / "submission_runs").exists() or not any((project.root / "submission_runs").iterdir())


@pytest.mark.slow
def test_a_diverging_run_fails_with_exit_1_and_no_bare_nan(project, run_cli):
    _project_with_data(project.root)
    # SGD with momentum at the largest allowed rate and no clipping overflows within a few steps.
    (project.root / "diverge.yaml").write_text(
        "model: {tiny: {arch: gpt2, n_layer: 1, n_embd: 32, n_head: 2}}\ndata: {train: data/train.jsonl}\n"
        "training: {device: cpu, batch_size: 4, max_steps: 40, learning_rate: 10.0, optimizer: sgd, max_grad_norm: null,"
        " logging_steps: 1, batching: packed}\n", encoding="utf-8")
    result = run_cli("run", "train", "--plugin", "torch-sft", "--config", "diverge.yaml")
    assert result.code == 1, result.err
    assert "diverged" in result.err
    metrics = project.runs_dir / "m44_v1" / "metrics.jsonl"
    for line in metrics.read_text(encoding="utf-8").splitlines():
        json.loads(line, parse_constant=lambda name: pytest.fail(f"bare {name} in metrics.jsonl"))


def test_packed_rows_are_refused_where_transformers_would_let_samples_see_each_other() -> None:
    from tunix_rt.errors import TunixError
    from tunix_rt_torch_sft.modeling import safe_batching

    for batching in ("packed", "flatten"):
        with pytest.raises(TunixError, match=f"training.batching: {batching} needs transformers>=4.54 "
                                             r"\(this is 4.50.3: "):
            safe_batching(batching, True, "4.50.3")
        assert safe_batching(batching, True, "4.54.0") == batching
        assert safe_batching(batching, True, "5.24.0") == batching
    assert safe_batching("packed", False, "4.53.3") == "grouped"  # the default, not asked for: the safe one
    for batching in ("grouped", "random"):
        assert safe_batching(batching, True, "4.50.3") == batching
