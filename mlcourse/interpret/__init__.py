"""Interpreting trained models: black-box perturbations (ISM, SIS) and white-box methods
(filters, gradients, CAM, integrated gradients, DeepLIFT, surrogates, class maximisation).

Every attribution method has one call shape,
``method(model, X, *, target=None, baseline=None, ..., batch_size=..., seed=...)``, and
returns a tensor shaped like ``X``. Shared pieces: :mod:`~mlcourse.interpret.scoring`
(which output is explained, how the model is run), :mod:`~mlcourse.interpret.features`
(what a feature is), :mod:`~mlcourse.interpret.engines` (the fast ISM/SIS engines, used only
with ``fast=True``) and :mod:`~mlcourse.interpret.methods` (the registry of all methods).

Import the modules directly, e.g. ``from mlcourse.interpret import paths``.
"""
