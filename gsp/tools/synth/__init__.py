"""Synthetic population, telecom, electricity and insurance data with known dirt, and the truth a pipeline must report."""

from gsp.tools.synth.generate import CITIZEN_DATASET, SUBSCRIBER_DATASET, Synthetic, Truth, generate
from gsp.tools.synth.seed import Expected, Seed, SeedTruth, SourceTable, generate_seed

__all__ = ["CITIZEN_DATASET", "SUBSCRIBER_DATASET", "Expected", "Seed", "SeedTruth", "SourceTable", "Synthetic",
           "Truth", "generate", "generate_seed"]
