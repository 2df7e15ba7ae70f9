"""BLE beacon scanning: the bleak driver on BlueZ and its simulated twin (one port and contract)."""
