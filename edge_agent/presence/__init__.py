"""In-store presence: NFC taps (port, NDEF, member tokens, identification)."""
