"""Exercises with instant feedback: the learner writes a function, the check says what is wrong.

Each notebook ends with exercises. For some of them the learner writes a function, and a check cell
right after it grades that function on several cases (edge cases and float32 among them) and prints
which case failed, what was expected and what came out, and which classic mistake the result matches,
if any. The placeholder itself is reported as "not attempted yet", and a function that still raises
``NotImplementedError`` on every case below code of its own as "not finished yet"; one that raises it
on some cases only is graded on the others, one that returns ``...`` (or ``None``) for some of its
outputs is graded on the others, and one that writes into its inputs fails, naming them. The check
cells never raise, whatever the function returns or raises (except ``KeyboardInterrupt``), so a
notebook runs top to bottom with its exercises untouched.

In a notebook::

    from vaelib.teaching import exercises
    exercises.check_kl_closed_form(kl_closed_form)

The expected values come from :mod:`vaelib.core` and :mod:`scipy`. Reference solutions are in
:mod:`vaelib.teaching.exercise_solutions`, which nothing here imports: look there only after trying.

The exercises, by notebook (one module each):

- 01 :mod:`.elbo_sign`            ``loss_from_elbo_terms``, ``monte_carlo_elbo``
- 02 :mod:`.kl_decomposition`     ``log_evidence_closed_form``, ``elbo_closed_form``
- 03 :mod:`.gaussian_likelihood`  ``gaussian_log_likelihood``, ``best_sigma``
- 04 :mod:`.reparameterisation`   ``reparam_sample``, ``log_q_of_sample``
- 05 :mod:`.gaussian_kl`          ``kl_closed_form``, ``kl_gradients``
- 06 :mod:`.backprop`             ``bernoulli_nll_and_gradient``, ``linear_backward_pass``, ``reparam_backward_pass``
- 07 :mod:`.training_on_digits`   ``iwae_estimate``
- 08 :mod:`.trade_off`            ``sigma_for_beta``

:mod:`.grading` holds the machinery (cases, the catalogue of mistakes, the grade and its report);
:mod:`.running` calls a learner's function on one case, whatever it does; :mod:`.comparison` holds the
tolerances and says how two arrays differ.
"""

from .backprop import (BERNOULLI_NLL_AND_GRADIENT, LINEAR_BACKWARD_PASS, REPARAM_BACKWARD_PASS,
                       check_bernoulli_nll_and_gradient, check_linear_backward_pass, check_reparam_backward_pass)
from .elbo_sign import LOSS_FROM_ELBO_TERMS, MONTE_CARLO_ELBO, check_loss_from_elbo_terms, check_monte_carlo_elbo
from .gaussian_kl import KL_CLOSED_FORM, KL_GRADIENTS, check_kl_closed_form, check_kl_gradients
from .gaussian_likelihood import (BEST_SIGMA, GAUSSIAN_LOG_LIKELIHOOD, check_best_sigma,
                                  check_gaussian_log_likelihood)
from .grading import CORRECT, NOT_ATTEMPTED, WRONG, Case, Exercise, Mistake, Result
from .kl_decomposition import (ELBO_CLOSED_FORM, LOG_EVIDENCE_CLOSED_FORM, check_elbo_closed_form,
                               check_log_evidence_closed_form)
from .trade_off import SIGMA_FOR_BETA, check_sigma_for_beta
from .reparameterisation import LOG_Q_OF_SAMPLE, REPARAM_SAMPLE, check_log_q_of_sample, check_reparam_sample
from .training_on_digits import IWAE_ESTIMATE, check_iwae_estimate

#: Every exercise, by the name of the function the learner writes, in notebook order.
EXERCISES = {ex.name: ex for ex in (
    LOSS_FROM_ELBO_TERMS, MONTE_CARLO_ELBO,
    LOG_EVIDENCE_CLOSED_FORM, ELBO_CLOSED_FORM,
    GAUSSIAN_LOG_LIKELIHOOD, BEST_SIGMA,
    REPARAM_SAMPLE, LOG_Q_OF_SAMPLE,
    KL_CLOSED_FORM, KL_GRADIENTS,
    BERNOULLI_NLL_AND_GRADIENT, LINEAR_BACKWARD_PASS, REPARAM_BACKWARD_PASS,
    IWAE_ESTIMATE,
    SIGMA_FOR_BETA,
)}


def exercises_for(notebook):
    """The exercises of one notebook, ``"05"`` say, in order."""
    return [ex for ex in EXERCISES.values() if ex.notebook == notebook]


def grade(name, fn):
    """Grade ``fn`` as the exercise ``name``: a :class:`~.grading.Result`, with ``.status`` and ``.report()``."""
    return EXERCISES[name].grade(fn)


def case_inputs(name, index):
    """The inputs of case ``index`` of exercise ``name``: a dict, in the order of the function's parameters.

    Call your function on them as ``fn(*inputs.values())``.
    """
    return EXERCISES[name].cases[index].copied_inputs()
