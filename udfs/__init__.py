"""Thin Spark wrappers (pandas / Arrow UDFs) around the pure logic in `curation`."""
