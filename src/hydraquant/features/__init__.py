"""Causal feature library: every feature registered by name, group, inputs and warm-up."""

from hydraquant.features.registry import (
    FeatureContext,
    FeatureSpec,
    build_features,
    feature,
    feature_sets,
    groups,
    register_set,
    registry,
    resolve,
)

__all__ = [
    "FeatureContext",
    "FeatureSpec",
    "build_features",
    "feature",
    "feature_sets",
    "groups",
    "register_set",
    "registry",
    "resolve",
]
