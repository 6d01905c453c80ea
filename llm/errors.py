"""Errors a backend raises, each with a message a person can act on."""


class LLMError(RuntimeError):
    """Any failure talking to a model."""


class BackendUnavailableError(LLMError):
    """The model server is not there (connection refused, DNS failure, timed out)."""


class ContextOverflowError(LLMError):
    """The prompt plus the requested completion does not fit the model's context window."""


class ModelNotFoundError(LLMError):
    """The model files are missing or fail verification."""
