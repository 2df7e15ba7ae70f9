"""Tests of the box's end of the link to HQ."""
