"""In-store presence (issue 10): BLE beacons and NFC taps to consenting members in zones, and
the proximity offers their presence earns.

``frames`` parses advertisements, ``rotating_id_resolver`` finds the member behind a rotating
identifier, ``tracker`` turns resolved sightings into presence events, ``visits`` groups them
into store visits, ``proximity_rules`` decides which offer (or which suppression) a presence
event earns: all pure. ``ble_port`` is the scanner's port (the drivers are in ``hardware/ble``).
"""
