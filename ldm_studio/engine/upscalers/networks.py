"""The two upscaler networks most files out there use, written here so they need no extra package.

- ``RRDBNet``: ESRGAN and Real-ESRGAN (and the many community "4x-…" models trained with them).
  Residual-in-residual dense blocks at the input size, then nearest-neighbour ×2 stages, each
  followed by a convolution. Real-ESRGAN's ×2 and ×1 models fold the input into channels first
  (pixel unshuffle) and run the same ×4 network.
- ``SRVGGNetCompact``: Real-ESRGAN's "compact" models (realesr-general-x4v3, animevideo): a plain
  stack of convolutions with PReLU, a pixel shuffle, plus the nearest-upsampled input.

Parameter names follow the newer Real-ESRGAN files, so those load as they are; ``detection``
renames the original ESRGAN ``model.N`` keys onto them.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LEAKY_SLOPE = 0.2
RESIDUAL_SCALE = 0.2  # ESRGAN scales every residual branch down so a deep stack trains stably


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


class ResidualDenseBlock(nn.Module):
    """Five convolutions, each seeing the block input and every earlier output."""

    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.conv1 = _conv(features, growth)
        self.conv2 = _conv(features + growth, growth)
        self.conv3 = _conv(features + 2 * growth, growth)
        self.conv4 = _conv(features + 3 * growth, growth)
        self.conv5 = _conv(features + 4 * growth, features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            seen.append(_leaky(conv(torch.cat(seen, dim=1))))
        return self.conv5(torch.cat(seen, dim=1)) * RESIDUAL_SCALE + x


class RRDB(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(features, growth)
        self.rdb2 = ResidualDenseBlock(features, growth)
        self.rdb3 = ResidualDenseBlock(features, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        features: int = 64,
        growth: int = 32,
        blocks: int = 23,
        upsamples: int = 2,
        unshuffle: int = 1,
    ) -> None:
        super().__init__()
        self.unshuffle = unshuffle
        self.conv_first = _conv(in_channels * unshuffle**2, features)
        self.body = nn.Sequential(*(RRDB(features, growth) for _ in range(blocks)))
        self.conv_body = _conv(features, features)
        self.conv_ups = nn.ModuleList(_conv(features, features) for _ in range(upsamples))
        self.conv_hr = _conv(features, features)
        self.conv_last = _conv(features, out_channels)
        self.scale = 2**upsamples // unshuffle
        # pixel unshuffle needs sides that divide by its factor
        self.size_multiple = unshuffle

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        features = self.conv_first(x)
        features = features + self.conv_body(self.body(features))
        for conv in self.conv_ups:
            features = _leaky(conv(F.interpolate(features, scale_factor=2, mode="nearest")))
        return self.conv_last(_leaky(self.conv_hr(features)))


class SRVGGNetCompact(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        features: int = 64,
        convs: int = 16,
        scale: int = 4,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv(in_channels, features), nn.PReLU(features)]
        for _ in range(convs):
            layers += [_conv(features, features), nn.PReLU(features)]
        layers.append(_conv(features, out_channels * scale**2))
        self.body = nn.ModuleList(layers)
        self.scale = scale
        self.size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        # the network learns only the detail on top of a plain nearest-neighbour enlargement
        return F.pixel_shuffle(out, self.scale) + F.interpolate(x, scale_factor=self.scale, mode="nearest")
