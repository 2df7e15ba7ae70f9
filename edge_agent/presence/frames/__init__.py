"""Pure parsers for the BLE advertisement frames the presence engine understands.

One module per format family (``ibeacon``, ``altbeacon``, ``eddystone``, ``eddystone_url``,
``member``), ``parse`` to dispatch what bleak hands over, and ``beacon_filter`` to drop what
is not the store's before anything is queued. Every parser returns a frozen frame or a
``Refusal`` value; none raises on any input.
"""
