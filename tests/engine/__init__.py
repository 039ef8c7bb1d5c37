"""Tests of the pure conversation engine."""
