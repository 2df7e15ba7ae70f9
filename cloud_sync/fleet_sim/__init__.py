"""A simulated fleet of store boxes, for HQ's load tests and the fleet benchmark.

HQ-side tooling: each simulated box has its own Ed25519 key (registered at HQ), broker user,
gap-free sequence and hash chain, and speaks the wire contract (``cloud_sync.contract``) as
the box's outbox pump does, without any of the box's code beyond ``edge_agent.domain``.
``load_model`` (when events happen), ``sim_box`` (one box's events, window and lag),
``identities`` (keys, users, the users file), ``mqtt_fleet`` (many paho clients on one
selector), ``runner`` (parts, processes, the lag summary), ``command`` (the CLI).
"""
