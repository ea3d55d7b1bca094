"""torch-sft packing and objective: best-fit rows capped at max_seq_length give the unpacked loss and gradients; the
output layer run on target tokens only gives the full-logits loss; MFU cannot pass 100% and ignores pads."""

from __future__ import annotations

import random
from contextlib import nullcontext
from pathlib import Path

import pytest
from tunix_rt_torch_sft import data as D
from tunix_rt_torch_sft.meter import Meter, Peak

RUNS = Path(__file__).resolve().parent / "data" / "runs"


def _tiny(arch: str):
    import torch
    from transformers import AutoModelForCausalLM
    from tunix_rt_torch_sft import tiny
    from tunix_rt_torch_sft.config import TinyModel

    traces = D.load_traces(RUNS / "traces.jsonl").records
    tok = tiny.train_tokenizer([D.format_prompt(t.prompt) + D.format_completion(t.steps, t.final_answer) for t in traces],
                               400)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny.build_config(TinyModel(arch=arch, n_embd=32, n_head=2), tok, 256),
                                             attn_implementation="sdpa")
    model.config.use_cache = False
    return model, tok, D.encode(traces[:12], tok, 256, True).samples


@pytest.mark.parametrize("batch", [8, 16, 32, 200])
def test_rows_hold_every_sample_once_within_capacity_and_evenly(batch):
    rng = random.Random(batch)
    lengths = [rng.randrange(31, 180) for _ in range(batch)]  # the spread of the reasoning traces
    rows = D.pack_rows(lengths, 256)
    loads = [sum(lengths[i] for i in row) for row in rows]
    assert sorted(i for row in rows for i in row) == list(range(batch))
    assert max(loads) <= 256
    assert len(rows) <= len(D.best_fit_rows(lengths, 256)) <= 11 / 9 * -(-sum(lengths) // 256) + 1
    padding = 1 - sum(lengths) / (len(rows) * max(loads))
    assert padding < 0.1, (loads, padding)  # a batch is padded to its longest row: rows must be even


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_packed_rows_give_the_loss_and_gradients_of_the_unpacked_batch(arch):
    import torch
    from tunix_rt_torch_sft.loss import TargetLoss, batch_loss

    model, tok, samples = _tiny(arch)
    objective = TargetLoss(model)
    lengths = [len(s.input_ids) for s in samples]
    capacity = max(max(lengths), sum(lengths) // 3)  # several rows, several samples per row
    packed = D.collate(samples, "packed", tok.pad_token_id, capacity)
    assert 1 < packed["input_ids"].shape[0] < len(samples) and packed["input_ids"].shape[1] <= capacity

    def run(batch):
        model.zero_grad()
        loss, count = batch_loss(objective, batch, "cpu", nullcontext)
        loss.backward()
        return float(loss.detach()), count, torch.cat([p.grad.flatten() for p in model.parameters()])

    loss_packed, n_packed, grad_packed = run(packed)
    loss_padded, n_padded, grad_padded = run(D.collate(samples, "grouped", tok.pad_token_id))
    assert n_packed == n_padded
    assert abs(loss_packed - loss_padded) / loss_padded < 1e-5
    assert torch.allclose(grad_packed, grad_padded, atol=1e-5, rtol=1e-4)


def test_output_layer_on_targets_only_matches_full_logits():
    import torch
    import torch.nn.functional as F
    from tunix_rt_torch_sft.loss import TargetLoss, batch_loss

    model, tok, samples = _tiny("gpt2")
    batch = D.collate(samples, "grouped", tok.pad_token_id)
    with torch.no_grad():
        loss, count = batch_loss(TargetLoss(model), batch, "cpu", nullcontext)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        full = F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), batch["labels"][:, 1:].reshape(-1),
                               ignore_index=D.IGNORE, reduction="sum")
    assert count == int((batch["labels"][:, 1:] != D.IGNORE).sum())
    assert abs(float(loss) - float(full)) / float(full) < 1e-5


def test_mfu_cannot_pass_one_and_pads_do_not_count():
    meter = Meter()
    meter.add(loss_sum=10.0, targets=5, tokens=1000, slots=1600, samples=8, seconds=1.0)
    assert meter.padding_fraction() == pytest.approx(0.375)
    assert meter.tokens_per_s(1) == 1000  # real tokens only
    assert meter.mfu(fpt=1e6, peak=Peak(flops=2e9, method="test"), world_size=1) == pytest.approx(0.5)
    # A peak measured under load (below what the run achieved) caps MFU at 1 instead of reporting 150%.
    assert meter.mfu(fpt=1e6, peak=Peak(flops=0.67e9, method="test"), world_size=1) == 1.0
