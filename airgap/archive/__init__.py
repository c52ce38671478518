"""Byte containers under the transports: tar (read and write)."""
