"""The box's event log and outbox: what HQ learns of every state change."""
