"""The box's one SQLite file: the code cache HQ fills, its schema, stored answers, retention.

Entry point: ``code_cache.CodeCache`` (open, transactions, hot-path lookup, snapshot load).
"""
