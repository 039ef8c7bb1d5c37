"""The pure conversation engine: flow definitions, runner, parsing, scoring; no I/O, no clock."""
