"""The store's SQLite code cache and durable, idempotent redemption (the edge side).

Entry points: ``cache.CodeCache`` (open, snapshot load, lookup, outbox) and
``redemptions.RedemptionService`` (validate, reserve, commit, void, reverse, link, status).
"""
