"""Printing receipt coupons: document, ESC/POS layout, durable queue, printer port, worker."""
