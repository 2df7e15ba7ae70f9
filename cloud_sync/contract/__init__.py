"""The wire contract between HQ and the store boxes: pure definitions both ends import.

Nothing here does I/O or imports anything beyond the standard library, so a store box can
import it without installing or importing HQ's code (HQ needs numpy; the box does not).

    snapshot_format  the store snapshot file HQ ships to a box
    event_envelope   one event (schema version 2: hash-chained), its canonical text, a decoder
                     with typed reasons
    chain            the per-box hash chain and ``verify_chain``
    topics           the MQTT topic tree ``storeside/v1/{store}/{box}/{channel}``
    batch            a signed batch of a box's events (``.../events``)
    ack              HQ's ack and resend request (``.../ack``, ``.../resend``)
    presence         the box's retained state and health (``.../state``, ``.../health``)
    hq_document      the envelope of everything HQ sends its stores, signed by HQ's key
    hq_key           HQ's next key, announced signed by the current one (key rotation)
    delta            one step of a store's ordered code cache delta stream, with its watermark
    message_codec    what the link's messages share: typed errors, the strict field check
    wire_json        canonical JSON out, strict JSON in
    asyncapi.yaml    the link as an AsyncAPI 3 document (a test keeps it equal to the code)
"""
