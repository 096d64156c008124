"""Serve the trade-off explorer with Voila: ``make app`` runs ``python app/serve.py --port=8866``.

Every setting of the app's server is here, so that ``make app`` and the tests start the same server;
arguments given to this script are passed on to Voila (``--port=...``, ``--no-browser``), and replace the
setting of the same name.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE / "explorer.ipynb"
#: Voila's page template for the app (``share/jupyter/voila/templates/vaelib-app``): the "lab" template
#: without its FontAwesome stylesheets from a CDN, with the app's layout and accessibility script.
TEMPLATE = "vaelib-app"

SETTINGS = [
    "--Voila.ip=127.0.0.1",
    f"--template={TEMPLATE}",
    "--theme=light",
    # The page is sent at once, then its cells run one by one in the visitor's kernel, and a widget shown by
    # one cell changes on the page while the next runs: the status panel shows the training as it happens.
    # (Without it a page shows only a spinner until every cell has run.) Voila cannot heat kernels then.
    "--VoilaConfiguration.progressive_rendering=True",
    "--VoilaConfiguration.show_tracebacks=True",
    # Kernels of closed pages: a kernel that has had no page connected and nothing to do for 10 minutes is
    # shut down (checked every minute). A page left open keeps its kernel.
    "--MappingKernelManager.cull_idle_timeout=600",
    "--MappingKernelManager.cull_interval=60",
    "--MappingKernelManager.cull_connected=False",
]


def trust(notebook):
    """Sign ``notebook`` as trusted in this user's Jupyter signature store (what ``jupyter trust`` does):
    it is the app's own notebook, and unsigned it is reported as "not trusted" whenever a page loads it."""
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(notebook, as_version=4)
    with NotebookNotary() as notary:
        if not notary.check_signature(nb):
            notary.sign(nb)


def main(argv=None):
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(HERE / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")) if p)
    trust(NOTEBOOK)
    os.chdir(HERE)  # the kernels start here and import app_views
    from voila.app import main as voila_main

    given = list(sys.argv[1:] if argv is None else argv)
    sys.argv = ["voila", str(NOTEBOOK), *overridden(SETTINGS, given), *given]
    return voila_main()


def overridden(settings, given):
    """``settings`` less those that ``given`` sets again (Voila takes a setting once)."""
    names = {arg.split("=", 1)[0] for arg in given}
    return [s for s in settings if s.split("=", 1)[0] not in names]


if __name__ == "__main__":
    sys.exit(main())
