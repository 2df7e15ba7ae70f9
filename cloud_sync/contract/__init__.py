"""The wire contract between HQ and the store boxes: pure definitions both ends import.

Nothing here does I/O or imports anything beyond the standard library, so a store box can
import it without installing or importing HQ's code (HQ needs numpy; the box does not).
Today: the snapshot file (``snapshot_format``) and the event envelope (``event_envelope``).
Later issues add deltas, config documents and the MQTT topic tree here.
"""
