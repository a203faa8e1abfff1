"""Generated sample data for tests, benchmarks and the demo, apart from the recipes' rules:
LAION-like parquet parts (`laion`), ImageNet-Captions-like entries (`incaps`) and the
sample images with the local HTTP server that serves them (`images`)."""
