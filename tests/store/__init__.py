"""Tests of the persistence layer."""
