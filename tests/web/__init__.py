"""Tests of the web layer through the real app."""
