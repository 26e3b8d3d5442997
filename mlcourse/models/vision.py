"""Small models for 28x28 MNIST digits: a CNN, an MLP and a global-average-pooling CNN.

All three map images ``(N, 1, 28, 28)`` to class logits ``(N, 10)``. Every
ReLU, pool and dropout is its own module, registered once and used once, so
that hook-based attribution (guided backprop, DeepLift) sees each one.

- :func:`mnist_cnn`: two conv-ReLU-maxpool blocks and a dense head, the classic
  LeNet-style digit CNN (LeCun et al. 1998): local stroke detectors.
- :func:`mnist_mlp`: a fully connected network on the 784 raw pixels; it has
  no notion of neighbouring pixels. Lecture 05 contrasts its sufficient input
  subsets (Carter et al. 2019) with the CNN's.
- :func:`gap_cnn`: convolutions, then global average pooling and one linear
  layer, the architecture class activation maps need (Zhou et al. 2016, CAM).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from mlcourse.datasets.mnist import IMAGE_SHAPE

__all__ = ["mnist_cnn", "mnist_mlp", "gap_cnn", "DigitNet", "GapCNN"]


class DigitNet(nn.Sequential):
    """An ``nn.Sequential`` over digit images that rejects inputs of the wrong size.

    The check gives a clear ``ValueError`` (naming the shape received) instead
    of a matrix-size error deep inside a layer.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(
                f"{type(self).__name__}: expected images of shape (N, 1, 28, 28), got {tuple(x.shape)}"
            )
        return super().forward(x)


class GapCNN(DigitNet):
    """:func:`gap_cnn`'s network; ``last_conv`` and ``fc`` name the layers CAM combines."""

    @property
    def last_conv(self) -> nn.Conv2d:
        """The last convolution, whose feature maps CAM weights by ``fc``."""
        return self.conv3

    @property
    def fc(self) -> nn.Linear:
        """The linear layer after global average pooling: one weight per (class, channel)."""
        return self.linear


def mnist_cnn(channels: tuple[int, int] = (16, 32), hidden: int = 128, dropout: float = 0.25) -> DigitNet:
    """A LeNet-style CNN: ``[conv3x3 - ReLU - maxpool2] x 2 -> dense -> ReLU -> dropout -> 10 logits``.

    Parameters
    ----------
    channels : (int, int)
        Filters in the first and second convolution.
    hidden : int
        Units in the dense layer.
    dropout : float
        Dropout before the output layer.

    Returns
    -------
    DigitNet
        Images ``(N, 1, 28, 28)`` -> logits ``(N, 10)``; the first conv is ``conv1``.
    """
    c1, c2 = channels
    return DigitNet(
        OrderedDict(
            conv1=nn.Conv2d(1, c1, 3, padding=1),
            relu1=nn.ReLU(),
            pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(c1, c2, 3, padding=1),
            relu2=nn.ReLU(),
            pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            dense=nn.Linear(c2 * 7 * 7, hidden),
            relu3=nn.ReLU(),
            dropout=nn.Dropout(dropout),
            out=nn.Linear(hidden, 10),
        )
    )


def mnist_mlp(hidden: tuple[int, ...] = (256, 128), dropout: float = 0.25) -> DigitNet:
    """A multilayer perceptron on the 784 flattened pixels: ``[dense - ReLU - dropout] x k -> 10 logits``.

    Parameters
    ----------
    hidden : tuple of int
        Units in each hidden layer.
    dropout : float
        Dropout after each hidden layer.
    """
    layers = OrderedDict(flatten=nn.Flatten())
    width = 28 * 28
    for i, units in enumerate(hidden, start=1):
        layers[f"dense{i}"] = nn.Linear(width, units)
        layers[f"relu{i}"] = nn.ReLU()
        layers[f"dropout{i}"] = nn.Dropout(dropout)
        width = units
    layers["out"] = nn.Linear(width, 10)
    return DigitNet(layers)


def gap_cnn(channels: tuple[int, int, int] = (16, 32, 64)) -> GapCNN:
    """A CNN ending in global average pooling, for class activation maps (Zhou et al. 2016).

    ``conv1 - ReLU - conv2 - ReLU - maxpool2 - conv3 (last_conv) - ReLU -
    AdaptiveAvgPool2d(1) - flatten - linear (fc)``. The last feature maps are
    14x14, so a CAM is 14x14 before upsampling to the image.

    Parameters
    ----------
    channels : (int, int, int)
        Filters in the three convolutions; the last is the number of CAM channels.
    """
    c1, c2, c3 = channels
    return GapCNN(
        OrderedDict(
            conv1=nn.Conv2d(1, c1, 3, padding=1),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(c1, c2, 3, padding=1),
            relu2=nn.ReLU(),
            pool=nn.MaxPool2d(2),
            conv3=nn.Conv2d(c2, c3, 3, padding=1),
            relu3=nn.ReLU(),
            gap=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(),
            linear=nn.Linear(c3, 10),
        )
    )
