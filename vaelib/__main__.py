import sys

from .machinery.cli import main

sys.exit(main(prog="python -m vaelib"))
