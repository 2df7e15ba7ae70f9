"""``edge-agent``, the box's command line (``main.py``)."""
