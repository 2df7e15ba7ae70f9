"""Following HQ: the code cache deltas and HQ's keys, applied to the box's cache."""
