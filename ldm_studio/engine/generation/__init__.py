"""One generation as stages, each a small module with explicit inputs and outputs.

``engine.generate.generate`` runs them in this order:

- ``conditioning``  prompt text -> per-step text embeddings (the seam for prompt syntax, LoRA, clip skip)
- ``start``         the starting latents: noise, an encoded image (img2img / inpaint) or a recorded step
- ``sampling``      the one loop: denoiser -> guidance -> scheduler step -> previews, trajectory, events
- ``denoiser``      one adapter per model family: how the network is called (the loop never names it)
- ``schedule``      the sampler's timesteps, their repairs, and the real-step arithmetic
- ``decode``        latents -> pixels (VAE), the inpainting composite
- ``record``        the metadata written beside the images
- ``outcome``       exceptions -> the ``Failed`` sentence the user reads; cancel checks inside the networks
"""
