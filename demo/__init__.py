"""`make demo`: the product's story, end to end, on real parts and simulated hardware.

The demo plays every role (HQ, two store boxes, their tills and a receipt printer), so like
``edge_agent/wiring.py`` it is a composition root: it may import ``cloud_sync`` and ``hardware``.
"""
