"""HQ's ledger API (issue 11): a member's entries and balances read from the points ledger's
tables (schema version 6), as pure SQL over ``Tx`` (``entries``, ``balances``) and as an HTTP
app for HQ operators (``app``)."""
