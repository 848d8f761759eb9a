"""CIFAR-10 for training and scoring supernets: loading, NB101 splits, fast batches."""
from rankbench.data.cifar10 import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CLASSES,
    CIFAR10Error,
    CIFAR10Splits,
    ImageSet,
    default_dir,
    download_cifar10,
    load_cifar10,
)
from rankbench.data.loader import BatchLoader, augment_batch, normalize

__all__ = [
    "load_cifar10", "download_cifar10", "default_dir", "CIFAR10Splits", "ImageSet", "CIFAR10Error",
    "BatchLoader", "augment_batch", "normalize", "CIFAR10_MEAN", "CIFAR10_STD", "CLASSES",
]
