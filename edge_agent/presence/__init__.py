"""In-store presence: BLE beacons and NFC taps to consenting members in zones."""
