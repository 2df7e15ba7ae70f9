"""HQ's config push: its layers in the event store, composing and signing, the CLI."""
