"""The POS API: the local HTTP interface tills call."""
