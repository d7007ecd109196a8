"""Safety configs and their version history."""
