"""NFC readers: the nfcpy driver and its simulated twin (same port, same contract)."""
