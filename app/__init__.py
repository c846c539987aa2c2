"""lossd: an HTTP service that evaluates Keras loss functions with Keras's exact numbers."""

__version__ = "0.1.0"
