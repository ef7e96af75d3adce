"""Training a small latent diffusion model on a folder of captioned images (no Qt).

``image_folder`` reads the data, ``vae_training`` and ``ldm_training`` run the two stages (diffusers
models, ``accelerate`` for devices and DDP), ``export`` writes a diffusers pipeline folder, and
``emoji_data`` builds the emoji dataset the bundled model is trained on.
"""
