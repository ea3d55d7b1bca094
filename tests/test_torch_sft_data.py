"""torch-sft pieces without a training run: config, data format and labels, batching, packing exactness, scoring, hub checks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tunix_rt_torch_sft import config as C
from tunix_rt_torch_sft import data as D
from tunix_rt_torch_sft import evaluate as E
from tunix_rt_torch_sft import hub

from tunix_rt.errors import TunixError
from conftest import CORPUS, NEEDS_SHARED

RUNS = Path(__file__).resolve().parent / "data" / "runs"


# --- config -------------------------------------------------------------------------------------

REAL_KEYS = {
    "model": {"model_id": "google/gemma-2b", "revision": "main"},
    "training": {"device": "cuda", "batch_size": 1, "max_seq_length": 128, "gradient_accumulation_steps": 4,
                 "num_epochs": 1, "learning_rate": 2.0e-5, "weight_decay": 0.01, "dtype": "bfloat16",
                 "optimizer": "adafactor", "save_every_steps": 100, "logging_steps": 10},
}


def test_real_project_keys_are_accepted():
    config = C.validate("train", {**REAL_KEYS, "data": {"train": str(RUNS / "traces.jsonl")}}, RUNS)
    assert config.training.optimizer == "adafactor" and config.model.revision == "main"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=NEEDS_SHARED)
def test_real_project_config_file_is_accepted():
    import yaml

    raw = yaml.safe_load((CORPUS / "submission_local_gpu.yaml").read_text(encoding="utf-8"))
    raw["data"] = {"train": str(CORPUS / "dev-reasoning-v2" / "dataset.jsonl")}
    assert C.validate("train", raw, CORPUS).training.gradient_accumulation_steps == 4


def test_every_config_field_is_documented():
    def walk(model):
        for name, field in model.model_fields.items():
            assert field.description or (field.annotation and hasattr(field.annotation, "model_fields")), name
            sub = field.annotation
            for candidate in getattr(sub, "__args__", (sub,)):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    walk(candidate)

    walk(C.SFTConfig)


def test_relative_paths_resolve_against_the_config_folder():
    config = C.validate("train", {"model": {"tiny": {"arch": "llama"}}, "data": {"train": "traces.jsonl"}}, RUNS)
    assert config.data.train == (RUNS / "traces.jsonl").resolve()


# --- data ----------------------------------------------------------------------------------------


def _tokenizer():
    from tunix_rt_torch_sft import tiny

    traces = D.load_traces(RUNS / "traces.jsonl").records
    texts = [D.format_prompt(t.prompt) + D.format_completion(t.steps, t.final_answer) for t in traces]
    return tiny.train_tokenizer(texts, 400), traces


def test_training_text_is_prompt_steps_answer_eos_with_loss_on_the_completion_only():
    tok, traces = _tokenizer()
    trace = traces[0]
    (sample,) = D.encode([trace], tok, 256, completion_only=True).samples
    prompt_len = len(tok(D.format_prompt(trace.prompt))["input_ids"])
    assert sample.labels[:prompt_len] == [D.IGNORE] * prompt_len
    assert sample.labels[prompt_len:] == sample.input_ids[prompt_len:]
    assert sample.input_ids[-1] == tok.eos_token_id
    text = tok.decode(sample.input_ids[prompt_len:-1])
    assert all(step in text for step in trace.steps) and text.endswith(f"Answer: {trace.final_answer}")
    full = D.encode([trace], tok, 256, completion_only=False).samples[0]
    assert full.labels[1:] == full.input_ids[1:]


def test_records_without_a_target_in_the_window_are_dropped_not_padded():
    tok, traces = _tokenizer()
    prompt_len = len(tok(D.format_prompt(traces[0].prompt))["input_ids"])
    encoded = D.encode(traces[:1], tok, prompt_len + 1, completion_only=True)  # only the EOS could fit... or one token
    assert len(encoded.samples) == 1  # one completion token kept
    encoded = D.encode(traces[:1], tok, prompt_len, completion_only=True)
    assert (len(encoded.samples), encoded.no_target) == (0, 1)


def test_malformed_line_is_named_or_counted(tmp_path):
    with pytest.raises(TunixError, match=r"truncated.jsonl:6: invalid reasoning trace"):
        D.load_traces(RUNS / "bad" / "truncated.jsonl")
    loaded = D.load_traces(RUNS / "bad" / "truncated.jsonl", skip_invalid=True)
    assert len(loaded.records) == 5 and len(loaded.invalid) == 1 and loaded.invalid[0].startswith("line 6")
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps({"prompt": "x", "steps": "nope", "final_answer": "1"}) + "\n", encoding="utf-8")
    with pytest.raises(TunixError, match="b.jsonl:1: .*'steps' must be a list"):
        D.load_traces(bad)


def test_eval_items_in_the_real_format():
    items = D.load_eval(RUNS / "eval.jsonl").records
    assert items[0].id.startswith("bundled-") and items[0].expected and items[0].section


def test_heldout_split_keeps_duplicate_prompts_together():
    traces = D.load_traces(RUNS / "traces.jsonl").records
    doubled = traces + traces[:10]
    train, held = D.split_heldout(doubled, 0.2, seed=3)
    assert held and not {t.prompt for t in train} & {t.prompt for t in held}
    assert len(train) + len(held) == len(doubled)


def test_grouped_batches_cover_every_sample_once_and_pad_less_than_random():
    import random

    lengths = [random.Random(i).randrange(20, 200) for i in range(400)]
    for mode in ("grouped", "random", "flatten"):
        batches = D.plan_batches(lengths, 8, mode, seed=1)
        assert sorted(i for b in batches for i in b) == list(range(400))

    def padding(batches):
        return 1 - sum(lengths[i] for b in batches for i in b) / sum(max(lengths[i] for i in b) * len(b) for b in batches)

    assert padding(D.plan_batches(lengths, 8, "grouped", 1)) < 0.05 < padding(D.plan_batches(lengths, 8, "random", 1))


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_flattened_batch_gives_the_same_loss_as_padded(arch):
    """Padding-free packing must not let samples attend to each other (use_cache=False with sdpa)."""
    import torch
    from transformers import AutoModelForCausalLM
    from tunix_rt_torch_sft import tiny
    from tunix_rt_torch_sft.config import TinyModel
    from tunix_rt_torch_sft.loss import TargetLoss, batch_loss

    tok, traces = _tokenizer()
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny.build_config(TinyModel(arch=arch, n_embd=32, n_head=2), tok, 256),
                                             attn_implementation="sdpa").eval()
    model.config.use_cache = False
    objective = TargetLoss(model)
    samples = D.encode(traces[:6], tok, 256, True).samples
    with torch.no_grad():
        padded, n_padded = batch_loss(objective, D.collate(samples, "grouped", tok.pad_token_id), "cpu", D_nullcontext)
        flat, n_flat = batch_loss(objective, D.collate(samples, "flatten", tok.pad_token_id), "cpu", D_nullcontext)
    assert n_padded == n_flat
    assert abs(float(padded) - float(flat)) / float(padded) < 1e-5


def D_nullcontext():
    from contextlib import nullcontext

    return nullcontext()


# --- scoring --------------------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [("42", "42.0"), ("1,000", "1000"), ("$31.5", "31.50"), ("Paris.", "paris"),
                                 ("  The  Answer ", "the answer"), ("-3", "-3.00"), ("NOSAER", "nosaer")])
def test_normalised_forms_compare_equal(a, b):
    assert E.normalise(a) == E.normalise(b)


@pytest.mark.parametrize("a,b", [("42", "142"), ("1,000", "100"), ("3.5", "35"), ("even", "odd")])
def test_different_answers_stay_different(a, b):
    assert E.normalise(a) != E.normalise(b)


def test_answer_extraction_and_scores():
    trace = "Step 1: Add 4 and 2\nStep 2: 4 + 2 = 6\nAnswer: 6.0"
    assert E.extract_answer(trace) == "6.0"
    assert E.extract_answer("blah\nSo the answer is 1,000.") == "1,000"
    assert E.extract_answer("first\nlast line") == "last line"
    assert E.score("6", "6.0", trace) == {"exact": False, "normalised": True, "contains": True}
    assert E.score("42", "142", "142")["contains"] is False


def test_summary_counts_and_breakdowns():
    items = D.load_eval(RUNS / "eval.jsonl").records
    scored = [{"exact": i == 0, "normalised": i < 2, "contains": i < 3} for i in range(len(items))]
    summary = E.summarise(items, scored)
    totals = summary["totals"]
    assert totals.n == len(items) and (totals.exact, totals.normalised, totals.contains) == (1, 2, 3)
    for key in ("by_section", "by_category", "by_difficulty"):
        assert sum(group.n for group in summary[key].values()) == len(items)


# --- hub ------------------------------------------------------------------------------------------


def test_unreachable_hub_fails_fast_naming_the_ways_out(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    t0 = time.monotonic()
    with pytest.raises(TunixError, match="local folder.*HF_HUB_OFFLINE=1"):
        hub.check("someorg/somemodel", None)
    assert time.monotonic() - t0 < 5


def test_offline_and_not_cached_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(TunixError, match="HF_HUB_OFFLINE is set"):
        hub.check("someorg/somemodel", None)


def test_hf_token_comes_from_the_environment_only(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)
    assert hub.token() == "hf_" + "x" * 30
    monkeypatch.delenv("HF_TOKEN")
    assert hub.token() is None
