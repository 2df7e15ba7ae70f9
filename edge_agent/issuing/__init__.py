"""Receipt coupons at checkout: decide the offer, mint the code offline, sign it, record it.

Entry point: ``service.IssueService``.
"""
