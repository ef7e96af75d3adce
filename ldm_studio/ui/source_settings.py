"""Where an image-to-image or inpainting request starts from, as a value, and how it enters a request."""

from __future__ import annotations

from dataclasses import dataclass

from ldm_studio.engine.outpaint import Outpaint
from ldm_studio.engine.request import GenerationRequest

SOURCE_EXTRAS = ("resize_mode", "mask_feather", "mask_invert")
DEFAULT_STRENGTH = 0.75


@dataclass(frozen=True)
class SourceSettings:
    """Where an image-to-image or inpainting request starts from."""

    image_path: str
    strength: float = DEFAULT_STRENGTH
    resize_mode: str = "resize"  # one of engine.images.RESIZE_MODES
    mask_path: str = ""  # greyscale PNG, white is repainted; "" for plain image to image
    feather: float = 0.0  # pixels of Gaussian blur on the mask edge, applied by the engine
    invert: bool = False  # repaint the black part instead (a request reused from the CLI)
    outpaint: Outpaint | None = None  # extend the canvas and paint the new area (engine.outpaint)

    def apply_to(
        self, request: GenerationRequest, image_size: tuple[int, int] | None = None
    ) -> GenerationRequest:
        """``image_size``: the source's own size, which an outpaint extends to give the output size."""
        extras = {key: value for key, value in request.extras.items() if key not in SOURCE_EXTRAS}
        extras["resize_mode"] = self.resize_mode
        if self.mask_path and self.feather > 0:
            extras["mask_feather"] = self.feather
        if self.mask_path and self.invert:
            extras["mask_invert"] = True
        size = {}
        if self.outpaint is not None and image_size is not None:
            size = dict(zip(("width", "height"), self.outpaint.canvas_for(image_size), strict=True))
        return request.replace(
            init_image=self.image_path,
            strength=self.strength,
            mask=self.mask_path,
            outpaint=self.outpaint,
            extras=extras,
            **size,
        )

    @classmethod
    def from_request(cls, request: GenerationRequest) -> SourceSettings | None:
        """The source of a request (e.g. one reused from the gallery), or None for text to image."""
        if not request.init_image:
            return None
        return cls(
            image_path=request.init_image,
            strength=request.strength,
            resize_mode=str(request.extras.get("resize_mode", "resize")),
            mask_path=request.mask,
            feather=float(request.extras.get("mask_feather", 0.0)),
            invert=bool(request.extras.get("mask_invert", False)),
            outpaint=request.outpaint,
        )


def without_source(request: GenerationRequest) -> GenerationRequest:
    """The request as plain text to image."""
    extras = {key: value for key, value in request.extras.items() if key not in SOURCE_EXTRAS}
    return request.replace(init_image="", strength=1.0, mask="", outpaint=None, extras=extras)
