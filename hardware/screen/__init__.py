"""Shelf screens: the optional local display of proximity offers."""
