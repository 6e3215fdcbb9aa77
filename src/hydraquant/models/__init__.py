"""Models: learners, CV training, calibration, ensembles, registry and prediction (SPEC M1-M10).

Submodules are imported lazily by their users (the model libraries are heavy);
import what you need, e.g. ``from hydraquant.models.zoo import ModelSpec, make_learner``.
"""
