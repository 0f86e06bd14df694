"""Standard traffic feeds: one module per format, each a document written by one PostgreSQL query, a fingerprint
of its rows and a view; sql.py holds what they share."""
