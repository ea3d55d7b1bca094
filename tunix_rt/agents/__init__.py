"""AI coding agents' hooks: their payloads read into one event, tool calls recorded fast, context handed back."""
