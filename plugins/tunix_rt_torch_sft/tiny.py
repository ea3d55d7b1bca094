"""A small random-init causal LM (gpt2 or llama) and a byte-level BPE tokenizer trained on the training text, for
offline runs.

The model and tokenizer are saved with `save_pretrained` under the run folder and loaded back through
the same `from_pretrained` path a hub model takes, so the demo exercises the real code path.
"""

from __future__ import annotations

from pathlib import Path

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (every byte representable, so no unknown tokens) with EOS and PAD specials."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, bos_token=EOS, pad_token=PAD)


def build_config(spec, tokenizer, max_positions: int):
    from transformers import GPT2Config, LlamaConfig

    common = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    if spec.arch == "gpt2":
        return GPT2Config(n_layer=spec.n_layer, n_embd=spec.n_embd, n_head=spec.n_head, n_positions=max_positions,
                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **common)
    return LlamaConfig(
        num_hidden_layers=spec.n_layer,
        hidden_size=spec.n_embd,
        num_attention_heads=spec.n_head,
        num_key_value_heads=spec.n_head,
        intermediate_size=4 * spec.n_embd,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        **common,
    )


def build(spec, tokenizer, max_positions: int, seed: int, folder: Path) -> Path:
    """Random init (seeded), saved with save_pretrained beside its tokenizer; returns the folder."""
    import torch
    from transformers import AutoModelForCausalLM

    from tunix_rt_torch_sft.modeling import save_pretrained

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(build_config(spec, tokenizer, max_positions))
    save_pretrained(model, tokenizer, folder)
    return folder
