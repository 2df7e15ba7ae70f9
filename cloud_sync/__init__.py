"""Both ends of the wire: the contract (pure, both import), the link (later), HQ (hq/).

The box imports ``cloud_sync.contract`` (and later ``cloud_sync.link``) and nothing of ``hq``.
"""
