"""Proximity results from HQ's stored events: triggered, held out and suppressed per campaign
and rule, delivered to the member's phone, and check-ins per store (``report.py``; the
``storeside-hq proximity-results`` command is ``commands.py``)."""
