"""c3n-bot test suite."""
