import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def time_slider_updates(view, name, values):
    """Move slider ``name`` through ``values``, rendering the figure to PNG after each move.

    Returns ``(wall, cpu)``: lists of seconds per update + render. The first
    render (which loads fonts) happens before timing and is not counted. CPU
    time lets a test bound the cost without counting other processes on a
    shared machine.
    """
    import io
    import time

    view.fig.savefig(io.BytesIO(), format="png")
    wall, cpu = [], []
    for value in values:
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        view.sliders[name].value = value
        view.fig.savefig(io.BytesIO(), format="png")
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    print(f"update {1e3 * view.last_update_seconds:.1f} ms; update + savefig: "
          f"best wall {1e3 * min(wall):.0f} ms, best CPU {1e3 * min(cpu):.0f} ms")
    return wall, cpu
