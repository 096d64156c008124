"""Interactive views for the notebooks: figures whose artists sliders update in place.

Each module here builds one view for one notebook, from pure functions that
compute the numbers it shows; :class:`vaelib.teaching.views.slider_view.SliderView` is
the one mechanism they share.
"""
