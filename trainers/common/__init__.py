"""Training infrastructure shared by every trainer: written once, used by RotNet, DeepCluster, BiGAN, MonoGAN."""
