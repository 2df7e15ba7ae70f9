"""Validating and redeeming scanned codes: durable, idempotent, per till.

Entry point: ``service.RedemptionService`` (validate, reserve, commit, void, reverse, link,
status).
"""
