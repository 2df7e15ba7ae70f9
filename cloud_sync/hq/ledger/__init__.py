"""HQ's points ledger (issue 11): the pure ledger's events, booked in the event store's
database (schema version 6), fed by the tills' ``points.posted`` events and HQ's own runs."""
