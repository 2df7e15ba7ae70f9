"""In-store presence (issue 10): BLE beacons and NFC taps to consenting members in zones, and
the proximity offers their presence earns.

``frames`` parses advertisements, ``rotating_id_resolver`` finds the member behind a rotating
identifier, ``tracker`` turns resolved sightings into presence events, ``visits`` groups them
into store visits, ``proximity_rules`` decides which offer (or which suppression) a presence
event earns: all pure. ``ble_port`` is the scanner's port (the drivers are in ``hardware/ble``).
``nfc_port`` is the NFC reader's port (the drivers are in ``hardware/nfc``); ``ndef_message``
decodes NDEF messages, ``member_token_verify`` checks HQ-signed member tokens and
``tap_identify`` turns a tap into a member (token, or an enrolled card's salted UID digest).
"""
