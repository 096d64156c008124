"""The static site's slider player: a slider view's precomputed frames as HTML, moved by ``docs/_static/player.js``.

A slider view shown in a notebook (:meth:`vaelib.teaching.views.slider_view.SliderView.show`)
stores what a page without a kernel needs in its sliders' output, under the MIME type
:data:`~vaelib.teaching.views.slider_view.FRAMES_MIME` (JupyterLab and Voila show the live
widget of the same output and ignore it)::

    {"sliders": [{"name": "beta", "label": "β", "values": ["0.5", "1", ...]}, ...],
     "start": 1,            # the frame shown first (the sliders' setting when shown)
     "settings": 8,         # how many settings the sliders can take (null: continuous)
     "dpi": 100,            # the frames' resolution
     "readout": "...",      # the numbers at the starting setting
     "frames": [{"png": "<base64>", "readout": "...", "setting": "β = 0.5",
                 "alt": "<the figure's words> Setting shown: β = 0.5."}, ...]}

Frames are in the order of the settings, the first slider varying slowest. ``values`` is
null and ``frames`` empty for a view whose sliders are continuous, or that has too many
settings, or whose frames were not computed (a notebook run in JupyterLab).

:func:`player_html` turns it into the page's player: a range input per slider, the readout
(a polite live region, so that a screen reader says the new numbers), the image, and the
data as JSON for ``player.js``, which shows the frame of the setting chosen with its own
alt text. :func:`kernel_note` says that a view without frames moves only with a running
kernel. Styles are in ``docs/_static/site.css``.

Notebooks executed before the frames were stored this way carry the player itself in the
sliders' ``text/html`` (inline script and styles): :func:`legacy_data` reads its frames back
into the same data, so that every page has one player.
"""

import base64
import hashlib
import html
import json
import re
import struct

from vaelib.teaching.views.slider_view import MAX_STATIC_FRAMES

#: The player's image when its view carries no words (the site's audit reports it as generic).
NO_WORDS = "the figure at the setting chosen above"


def setting_text(data, index):
    """The setting of frame ``index`` as a reader says it, ``"σ = 0.5, N = 10"`` (sliders' labels and shown values)."""
    parts = []
    for slider in reversed(data["sliders"]):
        index, j = divmod(index, len(slider["values"]))
        parts.append(f"{slider['label']} = {slider['values'][j]}")
    return ", ".join(reversed(parts))


def slider_indices(data, index):
    """Each slider's position at frame ``index`` (the first slider varies slowest)."""
    positions = []
    for slider in reversed(data["sliders"]):
        index, j = divmod(index, len(slider["values"]))
        positions.append(j)
    return positions[::-1]


def _json_for_script(data):
    """``data`` as JSON that cannot end its ``<script>`` element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def player_html(data):
    """The player of a view with frames (see the module docstring for ``data``); self-contained HTML but for
    ``player.js`` and ``site.css``, which every page of the site loads."""
    frames, start = data["frames"], data["start"]
    payload = _json_for_script(data)
    view_id = "vaelib-view-" + hashlib.sha256(payload.encode()).hexdigest()[:12]
    rows = []
    for slider, position in zip(data["sliders"], slider_indices(data, start)):
        label, value = html.escape(slider["label"]), html.escape(slider["values"][position])
        rows.append(
            f'<label class="vaelib-static-slider"><span>{label}</span>'
            f'<input class="vaelib-static-input" type="range" min="0" max="{len(slider["values"]) - 1}" step="1" '
            f'value="{position}" data-name="{html.escape(slider["name"])}" aria-label="{label}" '
            f'aria-valuetext="{label} = {value}"><output class="vaelib-static-value">{value}</output></label>')
    frame = frames[start]
    alt = html.escape(frame.get("alt") or NO_WORDS, quote=True)
    return (
        f'<div class="vaelib-static-view" id="{view_id}" data-vaelib-frames="{len(frames)}" '
        f'data-vaelib-index="{start}">'
        f'<div class="vaelib-static-controls">{"".join(rows)}</div>'
        f'<pre class="vaelib-static-readout" aria-live="polite">{html.escape(frame["readout"])}</pre>'
        f'<img class="vaelib-static-figure" alt="{alt}" src="data:image/png;base64,{frame["png"]}">'
        f'<p class="vaelib-static-note">All {len(frames)} settings were computed in advance: move the '
        f"sliders to see each one. In a running notebook (<code>make lab</code>) the same sliders "
        f"recompute the figure.</p>"
        f'<script type="application/json" class="vaelib-static-data">{payload}</script>'
        f"</div>"
    )


def kernel_note(why, names=None, readout=None):
    """HTML saying that a figure moves only with a running kernel, and how to start one.

    Parameters
    ----------
    why : str
        Why no player was precomputed, shown in brackets.
    names : str, optional
        The sliders' labels, comma-separated.
    readout : str, optional
        The numbers at the starting setting.
    """
    sliders = f" ({html.escape(names)})" if names else ""
    numbers = f'<pre class="vaelib-static-readout">{html.escape(readout)}</pre>' if readout is not None else ""
    return (
        '<div class="vaelib-needs-kernel"><p><strong>This figure moves with a running Python kernel</strong> '
        f"({why}). To move its sliders{sliders}, start JupyterLab with <code>make lab</code> "
        "and run this notebook. The figure below shows the starting setting.</p>"
        f"{numbers}</div>"
    )


#: Why a view has no frames, when nothing else says so.
UNSAVED = "this copy of the notebook was saved without its precomputed settings"


def why_no_frames(settings):
    """Why a view of ``settings`` settings (None: continuous) has no frames."""
    if settings is None:
        return "its sliders are continuous"
    if settings > MAX_STATIC_FRAMES:
        return f"its {settings} settings are too many to store"
    return UNSAVED


def view_html(data):
    """What the site shows for a slider view: its player, or the note that it needs a kernel."""
    if data["frames"]:
        return player_html(data)
    names = ", ".join(slider["label"] for slider in data["sliders"])
    return kernel_note(why_no_frames(data.get("settings")), names, data.get("readout"))


# ---------------------------------------------------------------- notebooks executed with the player inside
_LEGACY_DATA = re.compile(r'<script type="application/json" class="vaelib-static-data">(.*?)</script>', re.S)
_LEGACY_SLIDER = re.compile(r'<label class="vaelib-static-slider"><span>(.*?)</span><input [^>]*?value="(\d+)" '
                            r'data-name="([^"]*)"')


def png_dpi(png):
    """Dots per inch in a PNG's ``pHYs`` chunk (pixels per metre), or None."""
    i = 8
    while i + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[i:i + 8])
        if kind == b"pHYs":
            per_unit, _, unit = struct.unpack(">IIB", png[i + 8:i + 17])
            return round(per_unit * 0.0254, 1) if unit == 1 else None
        if kind == b"IDAT":
            return None
        i += 12 + length
    return None


def legacy_data(text):
    """The data of a player that a notebook stored as HTML (its sliders' ``text/html``), or None if ``text``
    holds no player. Its frames have no words: the notebook kept them with the live figure
    (:func:`with_words`)."""
    match = _LEGACY_DATA.search(text or "")
    if match is None:
        return None
    stored = json.loads(match.group(1))
    sliders = [(html.unescape(label), int(position), html.unescape(name))
               for label, position, name in _LEGACY_SLIDER.findall(text)]
    if len(sliders) != len(stored["labels"]):
        raise ValueError(f"a stored player with {len(stored['labels'])} sliders names {len(sliders)}")
    data = {"sliders": [{"name": name, "label": label, "values": values}
                        for (label, _, name), values in zip(sliders, stored["labels"])],
            "settings": len(stored["frames"])}
    start = 0
    for (_, position, _), values in zip(sliders, stored["labels"]):
        start = start * len(values) + position
    frames = [{"png": png, "readout": readout, "setting": setting_text(data, k), "alt": None}
              for k, (png, readout) in enumerate(stored["frames"])]
    data.update(start=start, dpi=png_dpi(base64.b64decode(frames[0]["png"])) if frames else None,
                readout=stored["frames"][start][1], frames=frames)
    return data


def _words_at(words, first, setting):
    if not words:
        return None
    at = words.rfind(first) if first else -1
    if at < 0:
        return f"{words} Setting shown: {setting}."
    return words[:at] + setting + words[at + len(first):]


def with_words(data, words):
    """``data`` of a stored player (:func:`legacy_data`), each frame described by ``words``.

    ``words`` describe the live figure at the starting setting, which they name last ("... Setting
    shown: β = 1."); a frame's words name its own setting in that place, or add "Setting shown: ..."
    when they do not name the starting setting.
    """
    first = setting_text(data, data["start"])
    frames = [dict(frame, alt=_words_at(words, first, frame["setting"])) for frame in data["frames"]]
    return dict(data, frames=frames)
