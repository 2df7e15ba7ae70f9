"""HQ's points finance (issue 11): what the programme owes valued at face value times
(1 - expected breakage), the breakage forecast per cohort, the points earned and burned per
campaign and margin band, and the CSV export of entries. Reads the ledger's tables only."""
