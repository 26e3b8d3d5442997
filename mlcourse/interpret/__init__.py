"""Interpreting trained models: black-box perturbations (ISM, SIS) and white-box methods
(filters, gradients, CAM, integrated gradients, DeepLIFT, surrogates, class maximisation).

Import the method modules directly, e.g. ``from mlcourse.interpret import paths``.
"""
