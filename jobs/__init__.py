"""Spark entry points: I/O, session and config. Each job module defines `JOB` (or `JOBS`)."""
