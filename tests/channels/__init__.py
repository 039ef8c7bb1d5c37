"""Tests of the channel adapters and their text rendering."""
