"""Pure functions: results -> escaped HTML strings and plain text. No computation here."""
