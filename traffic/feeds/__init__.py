"""Standard traffic feeds: one module per format, each with a selector, a pure build(rows) -> bytes, and a view."""
