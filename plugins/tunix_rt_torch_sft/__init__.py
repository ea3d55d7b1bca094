"""torch-sft: the tunix-rt trainer plugin (SFT and scored evaluation of Hugging Face causal LMs)."""

__version__ = "0.1.0"
