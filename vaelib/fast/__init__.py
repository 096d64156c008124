"""Speed beside the maths: fused kernels and a flat parameter vector, each tested equal to its core twin."""
