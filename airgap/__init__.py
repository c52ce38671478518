"""airgap: carry container images across an air gap, verified and signed."""

__version__ = "0.1.0"

__all__ = ["__version__"]
