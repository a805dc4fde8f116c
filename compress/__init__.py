"""gs-compress: GAN Slimming (distillation + channel pruning + quantisation-aware training)."""
