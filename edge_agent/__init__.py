"""The store box's agent. See the README's architecture section for the packages."""
