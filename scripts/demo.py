"""The end-to-end demo: a throw-away git repo, a milestone, a tiny model trained and scored, one close.

Everything runs through the real `milestone` command (the same one a user types), in
`demo-output/project/`, which is rebuilt on every run. Nothing leaves the machine: the model is a
tiny GPT-2 built from a config and the data ships inside the package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "demo-output"
PROJECT = OUT / "project"
BIN = Path(sys.executable).parent
MILESTONE = [str(BIN / "milestone")]
DATA = REPO / "tunix_rt" / "data"

TRAIN_YAML = """\
# A tiny GPT-2 built locally (no hub access), trained on the bundled reasoning traces.
model: {tiny: {arch: gpt2, n_layer: 2, n_embd: 128, n_head: 4}}
data: {train: data/train.jsonl, eval: data/eval.jsonl}
training: {device: cpu, batch_size: 16, max_seq_length: 128, max_steps: 600, learning_rate: 3.0e-3,
           warmup_steps: 20, logging_steps: 20}
eval: {max_new_tokens: 40}
seed: 0
"""

EVAL_YAML = """\
# Score the trained model again, as a separate run, the way a reviewer would.
model: {{model_id: {model}}}
data: {{eval: data/eval.jsonl}}
eval: {{max_new_tokens: 40}}
"""

# Hooks run without network access: pygrep and system hooks need no environment to be built.
PRE_COMMIT = """\
repos:
  - repo: local
    hooks:
      - id: no-tabs-in-python
        name: no tabs in Python files
        language: pygrep
        entry: "\\t"
        files: \\.py$
      - id: end-of-file-fixer
        name: fix end of files
        language: system
        entry: python scripts/fix_eof.py
        files: \\.(py|md|txt|yaml)$
"""

FIX_EOF = """\
import sys

changed = 0
for name in sys.argv[1:]:
    data = open(name, "rb").read()
    fixed = data.rstrip(b"\\n") + b"\\n" if data.strip() else data
    if fixed != data:
        open(name, "wb").write(fixed)
        print(f"fixed end of {name}")
        changed = 1
sys.exit(changed)
"""


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


PROGRESS = re.compile(r"^step \d+/\d+ ")


def shown(stdout: str, stderr: str) -> list[str]:
    """What a step prints, for reading: a run keeps its header (model, data, plan) and its end (final loss,
    eval scores, the result block) with its per-step progress lines folded into one; other output keeps its
    last 25 lines."""
    log, result = stderr.rstrip().splitlines(), stdout.rstrip().splitlines()
    steps = [i for i, line in enumerate(log) if PROGRESS.match(line)]
    if steps:
        folded = f"... {len(steps)} progress lines (all of them are in the run's training_log.txt) ..."
        return log[:steps[0]] + [folded] + log[steps[-1] + 1:] + result
    lines = log + result
    return ([f"... {len(lines) - 25} earlier lines ..."] if len(lines) > 25 else []) + lines[-25:]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    print("$ " + " ".join(args if args[0] != MILESTONE[0] else ("milestone", *args[1:])), flush=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(args, cwd=PROJECT, env=env, text=True, capture_output=True)
    out = shown(done.stdout, done.stderr)
    if out:
        print("\n".join("  " + line for line in out), flush=True)
    if check and done.returncode != 0:
        sys.exit(f"demo step failed with exit code {done.returncode}")
    return done


def milestone(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return sh(*MILESTONE, *args, check=check)


def main() -> None:
    started = time.perf_counter()
    shutil.rmtree(OUT, ignore_errors=True)
    (PROJECT / "data").mkdir(parents=True)
    (PROJECT / "scripts").mkdir()
    shutil.copy(DATA / "reasoning_train.jsonl", PROJECT / "data" / "train.jsonl")
    shutil.copy(DATA / "reasoning_eval.jsonl", PROJECT / "data" / "eval.jsonl")
    (PROJECT / "train.yaml").write_text(TRAIN_YAML, encoding="utf-8")
    (PROJECT / ".pre-commit-config.yaml").write_text(PRE_COMMIT, encoding="utf-8")
    (PROJECT / "scripts" / "fix_eof.py").write_text(FIX_EOF, encoding="utf-8")

    step("a fresh git repository")
    sh("git", "init", "-q", "-b", "main")
    sh("git", "config", "user.name", "Demo Engineer")
    sh("git", "config", "user.email", "demo@example.com")
    milestone("init")
    sh("git", "add", "-A")
    sh("git", "commit", "-q", "-m", "Project skeleton")

    step("start a milestone: baseline, scaffolded documents, current milestone")
    milestone("start", "M01", "--title", "Tiny reasoning model on bundled data")
    plan = PROJECT / "ProjectFiles/Milestones/Phase1/M01_plan.md"
    plan.write_text(
        "# M01 Plan — Tiny reasoning model on bundled data\n\n## Objective\n\n"
        "Train a tiny GPT-2 on the bundled reasoning traces with completion-only loss, score it on the\n"
        "bundled eval set, and close the milestone with evidence that writes itself.\n",
        encoding="utf-8",
    )
    answers = PROJECT / "ProjectFiles/Milestones/Phase1/M01_answers.md"
    answers.write_text("# M01 Answers\n\n## Q1: Backend\n\n**Decision:** PyTorch on CPU.\n", encoding="utf-8")

    step("log the work as it happens")
    milestone("log", "entry", "--title", "Plan review", "--tool", "read_file", "--purpose",
              "Read the plan and lock the decisions", "--file", "ProjectFiles/Milestones/Phase1/M01_plan.md",
              "--status", "completed", "--section", "Locked Decisions=PyTorch on CPU, tiny GPT-2")
    milestone("log", "entry", "--title", "JAX install", "--tool", "run_terminal_cmd", "--purpose",
              "Try the JAX backend first")
    milestone("log", "update", "2", "--status", "failed", "--status-text", "FAILED — no accelerator wheels here",
              "--section", "Attempts=pip install jax[cuda12]: no CUDA on this machine",
              "--section", "Attempts=CPU jax: works but the trainer plugin is PyTorch",
              "--section", "Conclusion=JAX adds nothing for a CPU demo",
              "--section", "Resolution=Pivot to the torch-sft plugin")
    milestone("log", "checkpoint", "JAX dropped, pivoting to PyTorch")
    (PROJECT / "notes.md").write_text("# Notes\n\nThe tiny model learns the step templates first.", encoding="utf-8")

    step("train: the run writes its own evidence and ledger entry")
    milestone("run", "train", "--plugin", "torch-sft", "--config", "train.yaml")
    (PROJECT / "eval.yaml").write_text(EVAL_YAML.format(model="submission_runs/m01_v1/final_model"), encoding="utf-8")

    step("evaluate the saved model as its own run")
    milestone("run", "eval", "--plugin", "torch-sft", "--config", "eval.yaml")
    milestone("verify", "m01_v1")

    step("close: hooks, summary, audit, master doc, one commit")
    milestone("log", "entry", "--title", "Close-out", "--tool", "milestone close", "--purpose",
              "Render the summary and commit", "--status", "completed")
    milestone("close", "--summary", "A tiny GPT-2 trained on CPU from bundled data, scored, and closed by the tool.")
    milestone("show", "M01")
    sh("git", "log", "--oneline", "-3")
    sh("git", "status", "--short")

    summary = PROJECT / "ProjectFiles/Milestones/Phase1/M01_summary.md"
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s.")
    print(f"Summary: {summary}")
    print(f"Tool-calls log: {summary.with_name('M01_toolcalls.md')}")
    print(f"Evidence: {PROJECT / 'submission_runs' / 'm01_v1'}")


if __name__ == "__main__":
    main()
