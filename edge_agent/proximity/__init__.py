"""Proximity offers on the box: presence decisions made real (coupons minted, events logged)."""
