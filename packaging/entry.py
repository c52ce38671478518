"""Entry point of the one-file binary."""

from airgap.cli import run

run()
