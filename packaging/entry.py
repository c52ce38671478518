"""Entry point of the one-file binary."""

from airgap.cli.main import run

run()
