"""The registry's outward face: FHIR R4 mapping, sinks with retries, exports."""
