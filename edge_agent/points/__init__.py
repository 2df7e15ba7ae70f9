"""Points at the till (issue 11): earn and burn at checkout, voids and returns, booked as
double-entry ledger events that travel to HQ as ``points.posted`` events; the balances HQ told
the box. The rules themselves are pure, in ``edge_agent/domain/points_rules``."""
