"""HQ's fan-out: what the stores' caches must learn, as each store's ordered, signed deltas.

Modules: ``use_totals`` (the queue of stored redemptions and returns, folded into per-box use
of codes and campaigns), ``delta_log`` (each store's stream: append, read back, catch up a
box from its position), ``producer`` (one step: changes in, deltas out), ``service`` (the
MQTT side: positions in, deltas out). The contract is ``cloud_sync/contract/delta.py``.
"""
