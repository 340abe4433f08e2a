"""Backbone registry: feature extractors under a hash layer (``register_backbone`` / ``create_backbone``).

The torchvision networks follow the attack papers' hashing models (docs/methods.md#backbones): the
convolutional trunk plus fc6/fc7 for AlexNet and VGG (4096-d), everything but the classifier for
ResNet. ImageNet weights are loaded only when ``pretrained=True`` is asked for (tests never
download). ``cnn`` is a small network that trains from scratch in minutes on 2 CPU cores at 56x56.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, List, Tuple

import torch
from torch import nn

from .._registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

BACKBONES = Registry("backbone")
register_backbone = BACKBONES.register


@dataclass
class Backbone:
    """A feature extractor ``features: images -> (N, out_features)`` and its input normalisation."""

    features: nn.Module
    out_features: int
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]


def list_backbones() -> List[str]:
    return BACKBONES.names()


def create_backbone(name: str, *, pretrained: bool = False, **kwargs: Any) -> Backbone:
    return BACKBONES.create(name, pretrained=pretrained, **kwargs)


class _Trunk(nn.Module):
    """``head(flatten(pool(features(x))))``: the shape shared by AlexNet, VGG and ResNet trunks."""

    def __init__(self, features: nn.Module, pool: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.features, self.pool, self.head = features, pool, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def _fc67(net: Any) -> Backbone:
    # AlexNet and VGG: drop the 1000-way classifier, keep fc6 and fc7 (4096-d) with their dropout
    head = nn.Sequential(*list(net.classifier.children())[:-1])
    return Backbone(_Trunk(net.features, net.avgpool, head), 4096, IMAGENET_MEAN, IMAGENET_STD)


def _resnet(net: Any) -> Backbone:
    # ResNet: conv1 ... layer4 and the global average pool, without the 1000-way fc
    trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    return Backbone(_Trunk(trunk, net.avgpool, nn.Identity()), net.fc.in_features, IMAGENET_MEAN, IMAGENET_STD)


def _register_torchvision(name: str, adapt: Callable[[Any], Backbone]) -> None:
    def build(*, pretrained: bool = False) -> Backbone:
        import torchvision.models

        return adapt(getattr(torchvision.models, name)(weights="DEFAULT" if pretrained else None))

    build.__name__ = name
    build.__doc__ = f"torchvision {name} trunk; ImageNet weights only with pretrained=True (downloads them)."
    register_backbone(name)(build)


for _name, _adapt in (("alexnet", _fc67), ("vgg11", _fc67), ("vgg16", _fc67), ("resnet18", _resnet), ("resnet50", _resnet)):
    _register_torchvision(_name, _adapt)


def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU blocks (three 2x max-pools), global average pooling and a 256-d fc layer.

    The fc layer ends in batch normalisation rather than ReLU: zero-mean features keep the hash
    layer well conditioned. After a ReLU every feature shares a large positive mean, so a small
    step on the hash weights moves every image's code the same way; with the pairwise objectives'
    stale buffer of training codes that common mode feeds back and collapses all codes into one
    within an epoch (measured: DPSH from scratch stuck at chance mAP). Works on inputs of at least
    8x8 pixels; about 0.3 M parameters.
    """

    def __init__(self, width: int = 32, out_features: int = 256) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _conv_block(3, w),
            nn.MaxPool2d(2),
            _conv_block(w, 2 * w),
            nn.MaxPool2d(2),
            _conv_block(2 * w, 4 * w),
            nn.MaxPool2d(2),
            _conv_block(4 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * w, out_features, bias=False),
            nn.BatchNorm1d(out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@register_backbone("cnn")
def cnn(*, pretrained: bool = False, width: int = 32) -> Backbone:
    """Small 4-block CNN trained from scratch, no pretrained weights (0.3 M parameters, 256-d features)."""
    if pretrained:
        raise ValueError("backbone 'cnn' has no pretrained weights; drop --pretrained or pick alexnet/vgg/resnet")
    return Backbone(SmallCNN(width=width), 256, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
