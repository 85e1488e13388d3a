"""Tools around the platform: the demo, the synthetic data generator, benchmarks, linkage evaluation."""
