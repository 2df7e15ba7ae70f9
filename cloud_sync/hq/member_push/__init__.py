"""HQ pushes each proximity offer a box triggered to the member's phone or wallet.

Modules: ``push_queue`` (the queue ingest fills and each offer's delivery record),
``offer_message`` (the JSON the receiver gets, built from the stored event; pure),
``signature`` (HMAC-SHA256 with a timestamp, both ends; pure), ``retry_policy`` (what an
answer means: delivered, again later, or failed; pure), ``webhook`` (the HTTP POST, urllib),
``secret_file``, ``worker`` (claim, send, record), ``status`` (the operator's view) and
``commands`` (``storeside-hq push``). The receiver's side is ``docs/member-push-webhook.md``.
"""
