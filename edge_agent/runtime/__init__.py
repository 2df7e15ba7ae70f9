"""The agent's runtime: the supervisor and the tasks it runs on the one asyncio loop."""
