"""LDM Studio: a desktop studio for latent diffusion models."""

__version__ = "0.1.0"
APP_NAME = "LDM Studio"
APP_AUTHOR = "LDM Studio"
