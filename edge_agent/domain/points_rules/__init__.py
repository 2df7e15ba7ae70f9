"""Points rules at checkout (issue 11): margin bands, earn, burn, the offline bound, returns.

Pure: values in, values out, ``now`` passed in, money and points integers. The ledger that books
what these rules decide lives elsewhere (``edge_agent/domain/points/``).
"""
