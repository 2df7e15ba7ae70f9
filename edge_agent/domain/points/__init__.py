"""The points ledger (issue 11, DOMAIN.md section 5): double-entry points, pure.

Theory of operation
-------------------
Points are a liability, so every movement of points is booked twice. A ``LedgerEvent`` is one
business fact (an earn at a till, a transfer, an expiry run...) made of ``Posting`` s, each a
credit or a debit of a whole number of points on one ``Account``; an event's postings sum to
zero or the event cannot be built (``UnbalancedEventError``). The modules, in the order a reader
meets them:

* ``accounts``: member x programme x category accounts, and the programme's own two (the
  liability it owes, where points come from and go back to; and breakage, where expired points
  go).
* ``event``: the posting, the event and the entry (a posting seen with its event), the values
  that travel and are stored; append-only, a correction is a new, reversing event.
* ``kinds``: one constructor per DOMAIN.md kind (earn, burn, transfer, conversion, merge...),
  so feature code never writes postings by hand.
* ``lots`` and ``expiry``: how points age (FIFO by the time they were credited) and what an
  expiry run at ``now`` debits.
* ``admission``: whether an event may enter a ledger: exactly once (a replay is a no-op, the
  same id with other content an error), opening entry first, and no debit a member cannot
  cover (a value naming the shortfall) unless the policy allows that kind.
* ``ledger``: the in-memory fold, answering balances now and at any past instant.
* ``errors``: the exception tree.

No module here does I/O or reads a clock: ``now`` and ``at`` are arguments. The box's and HQ's
stores persist events and call ``admission.admit`` through its ``LedgerView`` seam, so they
decide exactly as the in-memory ``Ledger`` does.
"""
