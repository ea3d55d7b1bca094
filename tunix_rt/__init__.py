"""tunix-rt: milestones, a tool-calls ledger and self-recording ML runs."""

__version__ = "0.1.0"
