"""SliderView: settings, precomputed frames, the data a page without a kernel needs, and what show() displays."""

import base64
import io

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from vaelib.teaching.views import slider_view  # noqa: E402
from vaelib.teaching.views.slider_view import (  # noqa: E402
    FRAME_DPI,
    CONTROLS_ROLE, FIGURE_ROLE, FRAME_COLOURS, FRAMES_MIME, MAX_STATIC_FRAMES, SliderView, compressed_png,
    value_slider)

X = np.linspace(0.0, 2.0 * np.pi, 100)
A_VALUES, B_VALUES = (0.5, 1.0, 2.0), (0.0, 0.25)


def expected_readout(a, b):
    # computed here, not by the view: max of a sin(x) + b on the same grid
    return f"a = {a:g}, b = {b:g}, max = {np.max(a * np.sin(X) + b):.4f}"


def two_slider_view(a=1.0, b=0.0):
    fig, ax = plt.subplots(figsize=(4, 2), dpi=50)
    (line,) = ax.plot(X, np.sin(X))
    ax.set_ylim(-2.5, 2.5)

    def update(a, b):
        line.set_ydata(a * np.sin(X) + b)
        return f"a = {a:g}, b = {b:g}, max = {np.max(line.get_ydata()):.4f}"

    return SliderView(fig, {"a": value_slider("a", A_VALUES, a), "b": value_slider("b", B_VALUES, b)}, update)


def continuous_view():
    fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
    (line,) = ax.plot(X, np.sin(X))
    return SliderView(fig, {"a": widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.1, description="a")},
                      lambda a: line.set_ydata(a * np.sin(X)) or f"a = {a:.2f}")


def int_view():
    fig, ax = plt.subplots(figsize=(3, 2), dpi=50)
    (line,) = ax.plot(X, np.sin(X))
    return SliderView(fig, {"k": widgets.IntSlider(value=4, min=2, max=8, step=2, description="k")},
                      lambda k: line.set_ydata(np.sin(k * X)) or f"k = {k}")


def rendered(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)  # at the figure's dpi, whatever savefig.dpi says
    return buffer.getvalue()


def test_settings_of_selection_sliders_first_slider_slowest():
    view = two_slider_view()
    assert view.options() == {"a": [("0.5", 0.5), ("1", 1.0), ("2", 2.0)], "b": [("0", 0.0), ("0.25", 0.25)]}
    assert view.n_settings == 6 and view.precomputable
    assert view.settings() == [{"a": a, "b": b} for a in A_VALUES for b in B_VALUES]


def test_an_int_slider_is_finite_and_a_float_slider_is_continuous():
    assert int_view().settings() == [{"k": k} for k in (2, 4, 6, 8)]
    view = continuous_view()
    assert view.options() is None and view.n_settings is None and not view.precomputable
    with pytest.raises(ValueError, match="precomputed"):
        view.frames()


def test_too_many_settings_are_not_precomputed():
    fig, _ = plt.subplots()
    many = [value_slider(name, np.arange(17)) for name in ("p", "q")]  # 289 settings
    view = SliderView(fig, dict(zip(("p", "q"), many)), lambda p, q: "")
    assert view.n_settings == 17 * 17 > MAX_STATIC_FRAMES and not view.precomputable


def test_frames_hold_every_setting_with_its_readout_and_leave_the_view_alone():
    view = two_slider_view(a=2.0, b=0.25)
    before = rendered(view.fig)
    frames = view.frames()
    assert [f.values for f in frames] == view.settings()
    assert [f.readout for f in frames] == [expected_readout(f.values["a"], f.values["b"]) for f in frames]
    assert view.values == {"a": 2.0, "b": 0.25}
    assert view.readout == expected_readout(2.0, 0.25)
    assert rendered(view.fig) == before  # artists back at the sliders' setting
    assert len({f.png for f in frames}) == len(frames)  # every setting looks different


def test_a_frame_is_an_indexed_png_of_the_figure():
    view = two_slider_view()
    frame = view.frames()[0]
    image = Image.open(io.BytesIO(frame.png))
    width, height = view.fig.get_size_inches() * FRAME_DPI
    assert frame.png[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.mode == "P" and image.size == (round(width), round(height))
    assert len(image.getcolors()) <= FRAME_COLOURS


def test_compressed_png_stays_close_to_the_full_colour_rendering():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=60)
    ax.imshow(np.linspace(0, 1, 64 * 64).reshape(64, 64), cmap="gray")  # 256 grey levels: the hard case
    ax.plot([0, 63], [0, 63], color="C1")
    full = np.asarray(Image.open(io.BytesIO(rendered(fig))).convert("RGB"), dtype=float)
    small = np.asarray(Image.open(io.BytesIO(compressed_png(fig, dpi=fig.dpi))).convert("RGB"), dtype=float)
    orange = np.array(matplotlib.colors.to_rgb("C1")) * 255
    has_orange = lambda image: np.any(np.abs(image - orange).max(axis=-1) < 30)
    assert small.shape == full.shape
    assert np.abs(small - full).mean() < 3.0  # grey levels out of 255, on average (white may come back as 254)
    assert has_orange(full) and has_orange(small)  # the thin coloured line keeps its colour
    assert len(compressed_png(fig, dpi=fig.dpi)) < len(rendered(fig))
    plt.close(fig)


def test_readout_at_gives_the_readout_of_a_setting_without_moving_the_view():
    view = two_slider_view()
    before = rendered(view.fig)
    assert view.readout_at(a=0.5, b=0.25) == expected_readout(0.5, 0.25)
    assert rendered(view.fig) == before and view.values == {"a": 1.0, "b": 0.0}


def test_frames_data_holds_the_sliders_the_start_and_every_frame_with_its_words():
    view = two_slider_view(a=2.0, b=0.25)
    view.alt = lambda a, b: f"A sine curve of amplitude {a:g} raised by {b:g}."
    frames = view.frames()
    data = view.frames_data(frames)
    assert data["sliders"] == [{"name": "a", "label": "a", "values": ["0.5", "1", "2"]},
                               {"name": "b", "label": "b", "values": ["0", "0.25"]}]
    assert data["start"] == 2 * 2 + 1  # a = 2 (index 2), b = 0.25 (index 1): first slider slowest
    assert data["settings"] == 6 and data["dpi"] == FRAME_DPI and data["readout"] == expected_readout(2.0, 0.25)
    assert len(data["frames"]) == 6
    for frame, (a, b) in zip(data["frames"], [(a, b) for a in A_VALUES for b in B_VALUES]):
        assert frame["readout"] == expected_readout(a, b)
        assert frame["setting"] == f"a = {a:g}, b = {b:g}"
        # each frame's own words, naming its own setting
        assert frame["alt"] == f"A sine curve of amplitude {a:g} raised by {b:g}. Setting shown: a = {a:g}, b = {b:g}."
        assert base64.b64decode(frame["png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert [base64.b64decode(f["png"]) for f in data["frames"]] == [f.png for f in frames]
    import json

    assert json.loads(json.dumps(data)) == data  # stored in the notebook as JSON


def test_frames_without_words_say_none_and_an_int_slider_labels_its_integers():
    data = int_view().frames_data(int_view().frames())
    assert data["sliders"] == [{"name": "k", "label": "k", "values": ["2", "4", "6", "8"]}]
    assert data["start"] == 1 and [f["alt"] for f in data["frames"]] == [None] * 4


def test_frames_data_of_a_continuous_view_has_its_sliders_and_readout_and_no_frames():
    data = continuous_view().frames_data()
    assert data["sliders"] == [{"name": "a", "label": "a", "values": None}]
    assert data["start"] is None and data["settings"] is None and data["frames"] == []
    assert data["readout"] == "a = 1.00"


class FakeDisplay:
    """Stands in for IPython.display.display: records what show() publishes."""

    def __init__(self):
        self.calls, self.updates = [], []

    def __call__(self, obj, **kwargs):
        self.calls.append((obj, kwargs))
        if kwargs.get("display_id"):
            return self

    def update(self, obj, **kwargs):
        self.updates.append((obj, kwargs))


@pytest.fixture
def fake_display(monkeypatch):
    import IPython.display

    fake = FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", fake)
    return fake


def test_show_publishes_the_widget_with_its_frames_then_the_figure(fake_display):
    view = two_slider_view()
    view.show(static=True)
    (controls, c_kwargs), (figure, f_kwargs) = fake_display.calls
    assert c_kwargs["raw"] and c_kwargs["metadata"]["vaelib"] == {"role": CONTROLS_ROLE, "settings": 6, "frames": 6}
    # the live widget, the frames as data (no HTML: JupyterLab and Voila render the widget), and plain text
    assert set(controls) == {"application/vnd.jupyter.widget-view+json", FRAMES_MIME, "text/plain"}
    assert controls[FRAMES_MIME] == view.frames_data(view.frames())
    assert controls["text/plain"] == "a = 1, b = 0\n" + expected_readout(1.0, 0.0)
    assert f_kwargs["display_id"] is True and f_kwargs["metadata"]["vaelib"]["role"] == FIGURE_ROLE
    assert figure.data[:8] == b"\x89PNG\r\n\x1a\n"

    view.sliders["a"].value = 2.0  # a slider move redraws the figure output, still labelled as the figure
    (update, u_kwargs), = fake_display.updates
    assert update.data != figure.data and u_kwargs["metadata"]["vaelib"]["role"] == FIGURE_ROLE
    assert view.readout == expected_readout(2.0, 0.0)


def test_show_without_static_frames_stores_the_sliders_and_no_frames(fake_display):
    two_slider_view().show(static=False)
    controls, kwargs = fake_display.calls[0]
    assert kwargs["metadata"]["vaelib"] == {"role": CONTROLS_ROLE, "settings": 6, "frames": 0}
    assert controls[FRAMES_MIME]["frames"] == [] and controls[FRAMES_MIME]["settings"] == 6


@pytest.mark.parametrize("env, expected", [
    ({}, True),                                     # jupyter nbconvert --execute
    ({"JPY_SESSION_NAME": "01.ipynb"}, False),      # a notebook's kernel in JupyterLab
    ({"JPY_SESSION_NAME": "01.ipynb", "VAELIB_STATIC_FRAMES": "1"}, True),
    ({"VAELIB_STATIC_FRAMES": "0"}, False),
])
def test_static_frames_default(monkeypatch, env, expected):
    for name in ("JPY_SESSION_NAME", "VAELIB_STATIC_FRAMES"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert slider_view.static_frames_default() is expected


def test_show_with_an_image_widget_redraws_the_figure_inside_the_sliders_box(fake_display):
    view = two_slider_view()
    view.show(static=False, image_widget=True)
    (controls, _), = fake_display.calls  # one output: no figure output of its own
    from ipywidgets.widgets.widget import _instances  # the live widgets, by model id

    box = _instances[controls["application/vnd.jupyter.widget-view+json"]["model_id"]]
    image = box.children[-1]
    assert isinstance(image, widgets.Image) and image.value[:8] == b"\x89PNG\r\n\x1a\n"
    first = image.value
    view.sliders["b"].value = 0.25
    assert image.value != first and fake_display.updates == []
    assert view.readout == expected_readout(1.0, 0.25)


def test_the_setting_is_named_by_each_sliders_label_and_shown_value():
    view = two_slider_view(a=2.0, b=0.25)
    assert view.setting_text() == "a = 2, b = 0.25"
    view.sliders["a"].description = "β"
    assert view.setting_text({"a": 0.5, "b": 0.0}) == "β = 0.5, b = 0"
    assert int_view().setting_text() == "k = 4" and continuous_view().setting_text() == "a = 1"


def test_alt_text_is_the_views_words_and_its_setting_and_none_without_words():
    view = two_slider_view()
    assert view.alt_text() is None
    view.alt = "A sine curve, x across, a sin(x) + b up."
    assert view.alt_text() == "A sine curve, x across, a sin(x) + b up. Setting shown: a = 1, b = 0."
    view.alt = lambda a, b: f"A sine curve of amplitude {a:g}."  # words that depend on the setting
    assert view.alt_text({"a": 2.0, "b": 0.0}) == "A sine curve of amplitude 2. Setting shown: a = 2, b = 0."


def test_a_notebooks_figure_output_carries_its_alt_text_and_follows_the_slider(fake_display):
    view = two_slider_view()
    view.alt = "A sine curve."
    view.show(static=False)
    (_, f_kwargs) = fake_display.calls[1]
    assert f_kwargs["metadata"]["vaelib"] == {"role": FIGURE_ROLE, "alt": "A sine curve. Setting shown: a = 1, b = 0."}
    view.sliders["b"].value = 0.25
    (_, u_kwargs), = fake_display.updates
    assert u_kwargs["metadata"]["vaelib"]["alt"] == "A sine curve. Setting shown: a = 1, b = 0.25."


def test_the_live_widget_marks_its_readout_figure_and_figure_words_for_a_page():
    view = two_slider_view()
    view.alt = "A sine curve."
    box = view.widget(image_widget=True)
    a, b, readout, words, image = box.children
    assert "vaelib-slider-view" in box._dom_classes and (a, b) == tuple(view.sliders.values())
    assert slider_view.READOUT_CLASS in readout._dom_classes and "<pre" in readout.value
    assert slider_view.FIGURE_ALT_CLASS in words._dom_classes and slider_view.FIGURE_CLASS in image._dom_classes
    assert "A sine curve. Setting shown: a = 1, b = 0." in words.value
    view.sliders["a"].value = 0.5
    assert "Setting shown: a = 0.5, b = 0." in words.value
    assert image.tooltip is None  # a tooltip breaks an Image's view in ipywidgets 8.1 (no description)


def test_a_view_with_moving_artists_renders_what_a_full_draw_renders():
    """Blitting (only the moving artists redrawn over a kept background) gives the full drawing's picture,
    at every setting, and again after the figure was rendered at another resolution."""
    fig, ax = plt.subplots(figsize=(4, 3), dpi=60)
    ax.set(xlim=(0, 2 * np.pi), ylim=(-2.5, 2.5), xlabel="x", ylabel="y")
    (curve,) = ax.plot(X, np.sin(X), color="C0", lw=2)
    title = ax.set_title("")

    def update(a):
        curve.set_ydata(a * np.sin(X))
        title.set_text(f"a = {a:g}")
        return title.get_text()

    view = SliderView(fig, {"a": value_slider("a", (0.5, 1.0, 2.0))}, update, moving=[curve, title])

    def pixels(data):
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)

    for a in (2.0, 0.5, 1.0):
        view.sliders["a"].value = a
        blitted = pixels(view.png().data)
        full = pixels(rendered(fig))
        assert blitted.shape == full.shape
        assert np.abs(blitted - full).mean() < 0.5  # grey levels out of 255
        # the PNG says its dpi, as a full draw's does (the site measures text sizes with it)
        assert Image.open(io.BytesIO(view.png().data)).info["dpi"] == pytest.approx((60, 60), abs=0.01)
    before = pixels(view.png().data)
    compressed_png(fig)  # a render at 72 dpi in between
    view.sliders["a"].value = 2.0
    view.sliders["a"].value = 1.0
    assert np.abs(pixels(view.png().data) - before).max() == 0
