"""Running the VAE: data, minibatches, the training loop, checkpoints, the command line."""
