"""For the notebooks: models with exact answers, gradient estimators, and slider views."""
