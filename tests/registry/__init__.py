"""Tests of the registry: the FHIR R4 mapping, sinks and exports."""
