"""HQ's central event store and its ingest: every box's events stored once, proved complete.

Boxes publish signed batches of their event log over MQTT (``cloud_sync/contract/``);
an ingest worker (``worker.py``) hands each message to the core (``core.py``), which checks
it, applies it to the box's stream (``stream.py``) in one transaction of the event store
(``event_store.py``: SQLite or PostgreSQL behind one seam), and answers the ack the worker
publishes after the commit. What is refused is quarantined with a reason (``quarantine.py``);
presence (``presence_store.py``) keeps each box's state and health for the fleet view
(``views.py``, the ``storeside-hq`` commands in ``commands.py``).
"""
