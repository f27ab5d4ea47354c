"""Colour decorrelation: the matrix that maps independent channels to the
dataset's correlated ones, estimated from its pixel covariance.

Optimizing in decorrelated channels and mixing them with this matrix gives
every colour direction a step in proportion to how much real images vary
along it (Olah et al. 2017, "Feature Visualization", Distill).
"""

from __future__ import annotations

import logging

import numpy as np

from atlas.errors import ConfigError

logger = logging.getLogger(__name__)

# The covariance of ImageNet RGB pixels in [0, 1], from the eigenvalues and
# eigenvectors that Krizhevsky et al. (2012) published for their "PCA colour
# augmentation" (as reproduced in fb.resnet.torch's transforms). Used only
# for a 3-channel model when no dataset statistics are given.
_IMAGENET_EIGENVALUES = np.array([0.2175, 0.0188, 0.0045])
_IMAGENET_EIGENVECTORS = np.array(
    [
        [-0.5675, 0.7192, 0.4009],
        [-0.5808, -0.0045, -0.8140],
        [-0.5836, -0.6948, 0.4203],
    ]
)
IMAGENET_COVARIANCE = (
    _IMAGENET_EIGENVECTORS @ np.diag(_IMAGENET_EIGENVALUES) @ _IMAGENET_EIGENVECTORS.T
)
# Eigenvalues below this fraction of the largest count as zero: a direction
# the data never varies along (e.g. grey images stored as RGB).
RELATIVE_EIGEN_FLOOR = 1e-6


def decorrelation_matrix(covariance: np.ndarray | None, channels: int) -> np.ndarray:
    """The (C, C) colour matrix M, float32: image channels = M @ independent.

    M is the covariance's square root U sqrt(L) (from its eigenvectors U
    and eigenvalues L), scaled so that its longest column has norm 1. With
    no covariance: the ImageNet matrix for 3 channels, else the identity
    (each channel on its own).
    """
    if covariance is None:
        if channels != 3:
            return np.eye(channels, dtype=np.float32)
        logger.info("no dataset colour statistics: using ImageNet's RGB covariance")
        covariance = IMAGENET_COVARIANCE
    covariance = _checked(covariance, channels)

    values, vectors = np.linalg.eigh(covariance)
    values = np.where(values > RELATIVE_EIGEN_FLOOR * values.max(), values, 0.0)
    root = vectors * np.sqrt(values)
    longest = np.linalg.norm(root, axis=0).max()
    if not longest > 0:
        return np.eye(channels, dtype=np.float32)
    return (root / longest).astype(np.float32)


def _checked(covariance: np.ndarray, channels: int) -> np.ndarray:
    """The covariance as a symmetric (C, C) float64 array, or a ConfigError."""
    matrix = np.asarray(covariance, np.float64)
    if matrix.shape != (channels, channels) or not np.isfinite(matrix).all():
        raise ConfigError(
            f"colour covariance must be a finite ({channels}, {channels}) "
            f"matrix for a {channels}-channel model; got shape {matrix.shape}."
        )
    return (matrix + matrix.T) / 2
