"""SQLite storage through sqlite-utils. This package owns all SQL of the studio."""
