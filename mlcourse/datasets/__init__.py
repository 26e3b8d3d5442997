"""Datasets for the course: simulated and real TF binding, MNIST digits, beer reviews."""

from mlcourse.datasets.base import SeqDataset, Site

__all__ = ["SeqDataset", "Site"]
