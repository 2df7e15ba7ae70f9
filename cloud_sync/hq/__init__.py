"""HQ: the central store, minting, import/export, store keys, snapshots, ``storeside-hq``."""
