"""Models for the course: ``zeng`` (the nine TF-binding CNNs of Zeng et al. 2016),
``vision`` (MNIST CNN, MLP, GAP-CNN) and ``text`` (aspect-rating models).

Import the submodule you need, e.g. ``from mlcourse.models import zeng``.
"""
