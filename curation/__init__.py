"""Pure curation logic: concepts, matching, queries, captions, sampling, frequencies.

Nothing in this package imports pyspark; everything is testable on plain Python/pandas.
"""
