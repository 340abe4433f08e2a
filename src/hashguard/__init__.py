"""hashguard: adversarial robustness of deep-hashing image retrieval."""

__version__ = "0.1.0"
