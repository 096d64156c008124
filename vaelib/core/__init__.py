"""The mathematics of the VAE in plain NumPy: what a learner reads. Imports nothing else from vaelib."""
