"""In-store presence (issue 10), pure: sightings -> enter/dwell/exit -> proximity offers.

``tracker`` turns resolved sightings into presence events, ``visits`` groups them into store
visits, ``proximity_rules`` decides which offer (or which suppression) a presence event earns.
No module here does I/O: drivers feed sightings in, the integrator logs and delivers what comes
out.
"""
