"""The model registry. Importing this package registers every built-in model."""

from edgeproof.toolkit.models import lab, lab_series, transfer  # noqa: F401  (registers the builders)
from edgeproof.toolkit.models.model_table import ModelSpec, create_model, list_models, model_spec, register_model

__all__ = ["ModelSpec", "create_model", "list_models", "model_spec", "register_model"]
