"""The OCI distribution API: a client (pull, push, login) and a read-only server."""
