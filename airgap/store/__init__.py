"""The local content-addressed store: an OCI image layout with names as annotations."""

from .layout import Image, Store, Transaction, default_store_path

__all__ = ["Image", "Store", "Transaction", "default_store_path"]
