"""Synthetic population and telecom data with known dirt, and the truth a pipeline must report."""

from gsp.tools.synth.generate import CITIZEN_DATASET, SUBSCRIBER_DATASET, Synthetic, Truth, generate

__all__ = ["CITIZEN_DATASET", "SUBSCRIBER_DATASET", "Synthetic", "Truth", "generate"]
