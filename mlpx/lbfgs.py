"""L-BFGS minimization written only with array-API operations.

L-BFGS (limited-memory BFGS) minimizes a smooth function ``f(x)`` of a 1-D parameter vector
using the loss and its gradient only. Each iteration:

1. **Direction.** Quasi-Newton methods step along ``d = -H g``, where ``H`` approximates the
   inverse Hessian. L-BFGS never forms ``H``: it keeps the last ``history_size`` pairs
   ``s = x_new - x`` and ``y = g_new - g`` and applies ``H`` to ``g`` with the *two-loop
   recursion* (Nocedal & Wright, *Numerical Optimization*, Algorithm 7.4). The starting
   matrix is ``gamma * I`` with ``gamma = s.y / y.y`` from the newest pair. A pair with
   ``s.y <= eps * y.y`` (no positive curvature) is skipped, which keeps ``H`` positive
   definite, so ``d`` points downhill.
2. **Step length.** A line search picks ``alpha`` so that ``x + alpha d`` satisfies the
   strong Wolfe conditions: enough decrease ``f(x + alpha d) <= f(x) + c1 alpha g.d`` and a
   flatter slope ``|g_new.d| <= c2 |g.d|`` (Algorithms 3.5 "bracket" and 3.6 "zoom", with
   safeguarded cubic interpolation). The trial step is 1 (the quasi-Newton step is already
   scaled), except without curvature pairs (the first iteration), where, as in scipy's
   L-BFGS-B, the first trial moves a distance of 1 along ``-g``. A trial where the loss or
   gradient is not finite counts as "too long" and the search halves back toward the last
   good point. At most 20 evaluations per search; when they run out, the best point with
   enough decrease is taken even without the slope condition (the pair is then kept only
   if it has positive curvature). If no point decreases the loss, the memory is reset and
   the search retried once along ``-g``; if that fails too, the minimizer stops.
3. **Stop** (the tests of scipy's L-BFGS-B): ``max|g| <= gtol``; or the relative reduction
   ``(f_prev - f) / max(|f_prev|, |f|, 1) <= ftol``; or ``max_iter`` iterations; or
   ``max_fun`` evaluations of the loss.

The vectors stay arrays of the caller's namespace, dtype and device throughout; only the
scalars the line search reasons about (loss values and the dot products ``g.d``) are read
to the host as Python floats, a few per evaluation.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat

from mlpx._errors import MlpxTypeError, MlpxValueError

__all__ = ["STATUSES", "LbfgsResult", "default_ftol", "minimize_lbfgs"]

STATUSES = ("gtol", "ftol", "max_iter", "max_fun", "line_search", "callback")

# Strong Wolfe constants: sufficient decrease (c1) and curvature (c2), the usual
# quasi-Newton values (Nocedal & Wright, section 3.1).
_C1 = 1e-4
_C2 = 0.9
# Loss evaluations per line search (scipy's L-BFGS-B also gives up after 20).
_MAX_LINE_SEARCH_EVALS = 20
# Largest step length tried (scipy's L-BFGS-B ``stpmx``).
_MAX_STEP = 1e10
# Each zoom trial stays this fraction of the interval away from its ends, so the interval
# shrinks by at least that much per evaluation.
_ZOOM_MARGIN = 0.1
# Extrapolation while bracketing: the next trial lies in [a + 1.1 w, a + 4 w], w the last
# increase of the step (the bounds of More & Thuente's line search, used by scipy).
_EXTRAPOLATE_MIN = 1.1
_EXTRAPOLATE_MAX = 4.0
# scipy's default ftol = factr * eps(float64) with factr = 1e7 ("moderate accuracy").
_FTOL_FLOAT64 = 2.220446049250313e-09
# For other dtypes factr = 1e7 would make ftol >= 1 (float32: 1.19), i.e. stop after one
# iteration. Use a few eps of the dtype instead: a loss summed over many terms in float32
# carries a relative rounding error of a few eps (pairwise summation), so a relative decrease
# below 4 eps (4.8e-7 in float32) is at the level of that noise and further line searches
# mostly fail on it. Larger factors stop early where the loss is below 1 (the test then
# compares absolute decreases): on a small tanh network, 10 eps stopped at 280 iterations
# with a loss 25% above the 1000-iteration value, 4 eps at 350 (15% above).
_FTOL_EPS_FACTOR = 4.0

_MESSAGES = {
    "gtol": "converged: max|grad| = {gmax:.3g} <= gtol = {gtol:g}",
    "ftol": "converged: relative reduction of the loss {rel:.3g} <= ftol = {ftol:g}",
    "max_iter": "stopped: reached max_iter = {max_iter} iterations before converging; "
                "increase max_iter or loosen gtol / ftol",
    "max_fun": "stopped: reached max_fun = {max_fun} loss evaluations before converging; "
               "increase max_fun or loosen gtol / ftol",
    "line_search": "stopped: the line search found no point that decreases the loss, also "
                   "along -grad with the memory reset; the gradient may be wrong, or the "
                   "loss too noisy at this precision for a smaller gtol / ftol",
    "callback": "stopped: callback returned True",
}


@dataclass
class LbfgsResult:
    """What :func:`minimize_lbfgs` found.

    Attributes
    ----------
    x : array of shape (n,)
        The best point found (same namespace, dtype and device as ``x0``).
    fun : float
        The loss at ``x``.
    grad : array of shape (n,)
        The gradient at ``x``.
    n_iter : int
        Completed iterations (accepted steps), as scipy's ``nit``.
    n_fun : int
        Number of ``fun_and_grad`` evaluations, never more than ``max_fun``.
    converged : bool
        True when stopped by ``gtol`` or ``ftol``.
    status : str
        One of ``STATUSES``: "gtol", "ftol", "max_iter", "max_fun", "line_search",
        "callback".
    message : str
        The status in words.
    """

    x: Any
    fun: float
    grad: Any
    n_iter: int
    n_fun: int
    converged: bool
    status: str
    message: str


@dataclass
class _Trial:
    """A point ``x + alpha d`` of a line search with its loss, gradient and slope ``g.d``."""

    alpha: float
    x: Any
    f: float
    g: Any
    dphi: float

    @property
    def finite(self) -> bool:
        # g.d is NaN or infinite whenever g has a non-finite entry (inf * 0 is NaN).
        return math.isfinite(self.f) and math.isfinite(self.dphi)


# --- argument checks ----------------------------------------------------------------------

def _check_count(value, *, parameter: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise MlpxTypeError(f"{parameter}={value!r} must be an int >= 1, e.g. {parameter}=100")
    if value < 1:
        raise MlpxValueError(f"{parameter}={value!r} must be an int >= 1, e.g. {parameter}=100")
    return int(value)


def _check_tolerance(value, *, parameter: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise MlpxTypeError(f"{parameter}={value!r} must be a finite number >= 0, e.g. 1e-5")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise MlpxValueError(f"{parameter}={value!r} must be a finite number >= 0, e.g. 1e-5")
    return value


def _check_x0(x0, *, xp) -> None:
    if x0.ndim != 1 or x0.shape[0] < 1:
        raise MlpxValueError(
            f"x0 must be a non-empty 1-D array, got shape {tuple(x0.shape)}; "
            "flatten the parameters first, e.g. xp.reshape(x0, (-1,))"
        )
    if not xp.isdtype(x0.dtype, "real floating"):
        raise MlpxTypeError(
            f"x0 must have a real floating dtype (float32 or float64), got {x0.dtype}; "
            "convert it with xp.astype(x0, xp.float64)"
        )


def _namespace_of(x0):
    try:
        return array_api_compat.array_namespace(x0)
    except TypeError:
        raise MlpxTypeError(
            f"x0 must be an array of an array-API library (NumPy, CuPy, PyTorch, ...), got "
            f"{type(x0).__name__}; convert it with xp.asarray(x0, dtype=xp.float64)"
        ) from None


def default_ftol(dtype, *, xp) -> float:
    """scipy's ftol for float64, ``4 * eps`` of the dtype otherwise (see ``_FTOL_*``).

    Parameters
    ----------
    dtype : real floating dtype of ``xp``
    xp : array namespace

    Returns
    -------
    float
    """
    if dtype == xp.float64:
        return _FTOL_FLOAT64
    return _FTOL_EPS_FACTOR * float(xp.finfo(dtype).eps)


# --- evaluations --------------------------------------------------------------------------

def _dot(a, b, *, xp):
    """``sum(a * b)`` of two arrays of shape (n,), as a 0-d array (no host sync)."""
    return xp.vecdot(a, b)


def _evaluate(fun_and_grad, x, *, xp) -> tuple[float, Any]:
    """Call ``fun_and_grad`` at ``x`` of shape (n,); the loss as a float, grad of shape (n,)."""
    loss, grad = fun_and_grad(x)
    if tuple(grad.shape) != tuple(x.shape):
        raise MlpxValueError(
            f"fun_and_grad returned a gradient of shape {tuple(grad.shape)} for x of shape "
            f"{tuple(x.shape)}; it must return (loss, grad) with grad shaped like x"
        )
    if grad.dtype != x.dtype:
        grad = xp.astype(grad, x.dtype)
    return float(loss), grad


def _line_function(fun_and_grad, x, d, *, xp) -> Callable[[float], _Trial]:
    """``phi(alpha)``: the loss, gradient and slope at ``x + alpha d`` (arrays of shape (n,))."""

    def phi(alpha: float) -> _Trial:
        x_new = x + alpha * d
        f, g = _evaluate(fun_and_grad, x_new, xp=xp)
        return _Trial(alpha, x_new, f, g, float(_dot(g, d, xp=xp)))

    return phi


# --- line search (Nocedal & Wright, Algorithms 3.5 and 3.6) -------------------------------

def _cubic_minimizer(a: _Trial, b: _Trial) -> float | None:
    """Minimizer of the cubic through the values and slopes at ``a`` and ``b`` (N&W 3.59)."""
    if a.alpha == b.alpha:
        return None
    d1 = a.dphi + b.dphi - 3.0 * (a.f - b.f) / (a.alpha - b.alpha)
    d2_squared = d1 * d1 - a.dphi * b.dphi
    if not math.isfinite(d2_squared) or d2_squared < 0.0:
        return None
    d2 = math.copysign(math.sqrt(d2_squared), b.alpha - a.alpha)
    denominator = b.dphi - a.dphi + 2.0 * d2
    if denominator == 0.0:
        return None
    alpha = b.alpha - (b.alpha - a.alpha) * (b.dphi + d2 - d1) / denominator
    return alpha if math.isfinite(alpha) else None


def _zoom_trial(lo: _Trial, hi: _Trial) -> float:
    """The next trial step strictly inside the bracket between ``lo`` and ``hi``."""
    if not hi.finite:
        # A non-finite loss or gradient means "too long": halve toward the good point.
        return lo.alpha + 0.5 * (hi.alpha - lo.alpha)
    low, high = min(lo.alpha, hi.alpha), max(lo.alpha, hi.alpha)
    margin = _ZOOM_MARGIN * (high - low)
    alpha = _cubic_minimizer(lo, hi)
    if alpha is None:
        alpha = 0.5 * (low + high)
    return min(max(alpha, low + margin), high - margin)


def _extrapolation_trial(prev: _Trial, cur: _Trial) -> float:
    """The next, longer trial step while the loss still decreases along the line."""
    width = cur.alpha - prev.alpha
    low = cur.alpha + _EXTRAPOLATE_MIN * width
    high = cur.alpha + _EXTRAPOLATE_MAX * width
    alpha = _cubic_minimizer(prev, cur)
    if alpha is None or alpha <= cur.alpha:
        alpha = high
    return min(max(alpha, low), high, _MAX_STEP)


def _sufficient_decrease(trial: _Trial, start: _Trial) -> bool:
    return trial.finite and trial.f <= start.f + _C1 * trial.alpha * start.dphi


def _curvature(trial: _Trial, start: _Trial) -> bool:
    return abs(trial.dphi) <= -_C2 * start.dphi


def _zoom(phi, start: _Trial, lo: _Trial, hi: _Trial, max_evals: int,
          eps: float) -> tuple[_Trial, bool, int]:
    """Shrink the bracket [lo, hi] until a trial satisfies the strong Wolfe conditions.

    ``lo`` is always the best point with sufficient decrease seen so far. Returns the
    accepted trial (or ``lo`` on failure), whether it satisfies Wolfe, and evaluations used.
    """
    n_evals = 0
    while n_evals < max_evals:
        if abs(hi.alpha - lo.alpha) <= eps * max(lo.alpha, hi.alpha):
            break  # the bracket no longer changes x at this precision
        trial = phi(_zoom_trial(lo, hi))
        n_evals += 1
        if not _sufficient_decrease(trial, start) or trial.f >= lo.f:
            hi = trial
            continue
        if _curvature(trial, start):
            return trial, True, n_evals
        if trial.dphi * (hi.alpha - lo.alpha) >= 0.0:
            hi = lo
        lo = trial
    return lo, False, n_evals


def _wolfe_line_search(phi, start: _Trial, alpha: float, max_evals: int,
                       eps: float) -> tuple[_Trial, bool, int]:
    """Find a step along ``d`` satisfying the strong Wolfe conditions.

    Parameters
    ----------
    phi : callable
        ``phi(alpha) -> _Trial`` at ``x + alpha d``.
    start : _Trial
        The point at ``alpha = 0``; ``start.dphi = g.d < 0``.
    alpha : float
        The first trial step.
    max_evals : int
        At most this many evaluations of ``phi``.
    eps : float
        Machine epsilon of the dtype (to detect a bracket too small to matter).

    Returns
    -------
    trial : _Trial
        The accepted point: a Wolfe point, else the best point with sufficient decrease
        (``start`` itself, ``alpha = 0``, when none was found).
    wolfe : bool
        Whether ``trial`` satisfies the strong Wolfe conditions.
    n_evals : int
        Evaluations of ``phi`` used.
    """
    prev = start
    n_evals = 0
    while n_evals < max_evals:
        trial = phi(alpha)
        n_evals += 1
        if not _sufficient_decrease(trial, start) or (prev is not start and trial.f >= prev.f):
            found, wolfe, used = _zoom(phi, start, prev, trial, max_evals - n_evals, eps)
            return found, wolfe, n_evals + used
        if _curvature(trial, start):
            return trial, True, n_evals
        if trial.dphi >= 0.0:
            found, wolfe, used = _zoom(phi, start, trial, prev, max_evals - n_evals, eps)
            return found, wolfe, n_evals + used
        if trial.alpha >= _MAX_STEP:
            return trial, False, n_evals  # decreasing without end: the longest step allowed
        alpha = _extrapolation_trial(prev, trial)
        prev = trial
    return prev, False, n_evals


# --- direction (Nocedal & Wright, Algorithm 7.4) ------------------------------------------

def _two_loop(g, memory: list, gamma: float, *, xp):
    """The quasi-Newton direction ``-H g`` of shape (n,) from the stored pairs.

    Parameters
    ----------
    g : array of shape (n,)
        The gradient.
    memory : list of (s, y, rho)
        Oldest first; ``s``, ``y`` arrays of shape (n,), ``rho = 1 / s.y`` a float.
    gamma : float
        Scale of the initial inverse Hessian ``gamma * I``.
    xp : array namespace

    Returns
    -------
    array of shape (n,)
    """
    q = g
    alphas = []
    for s, y, rho in reversed(memory):
        alpha = rho * _dot(s, q, xp=xp)  # 0-d arrays: no host sync
        q = q - alpha * y
        alphas.append(alpha)
    r = gamma * q
    for (s, y, rho), alpha in zip(memory, reversed(alphas)):
        beta = rho * _dot(y, r, xp=xp)
        r = r + (alpha - beta) * s
    return -r


def _descent_direction(g, memory: list, gamma: float, *, xp) -> tuple[Any, float]:
    """The L-BFGS direction of shape (n,) and its slope ``g.d`` (< 0 unless g = 0).

    When the recursion does not give a descent direction (rounding, or a non-finite
    slope), ``memory`` is cleared and ``-g`` used instead.
    """
    if memory:
        d = _two_loop(g, memory, gamma, xp=xp)
        dphi = float(_dot(g, d, xp=xp))
        if math.isfinite(dphi) and dphi < 0.0:
            return d, dphi
        memory.clear()
    return -g, -float(_dot(g, g, xp=xp))


def _remember(memory: list, s, y, gamma: float, *, history_size: int, eps: float,
              xp) -> float:
    """Store the pair (s, y) of arrays of shape (n,) unless ``s.y <= eps y.y``; new gamma."""
    sy = float(_dot(s, y, xp=xp))
    yy = float(_dot(y, y, xp=xp))
    if not (math.isfinite(sy) and math.isfinite(yy) and sy > eps * yy):
        return gamma  # no positive curvature along s: skip, H stays positive definite
    memory.append((s, y, 1.0 / sy))
    if len(memory) > history_size:
        del memory[0]
    return sy / yy


def _first_step(dphi: float) -> float:
    """scipy's first trial along ``d = -g`` (slope ``-g.g``): a move of length 1."""
    norm = math.sqrt(-dphi)
    return min(1.0 / norm, _MAX_STEP) if norm > 0.0 else _MAX_STEP


def _search(fun_and_grad, point: _Trial, memory: list, gamma: float, *, budget: int,
            eps: float, xp) -> tuple[_Trial, int]:
    """One line search from ``point``; on failure reset ``memory`` and retry once along -g.

    Returns the accepted trial (``point`` itself, with ``alpha = 0``, when no step
    decreased the loss) and the number of evaluations used, at most ``budget``.
    """
    d, dphi = _descent_direction(point.g, memory, gamma, xp=xp)
    n_used = 0
    while True:
        start = _Trial(0.0, point.x, point.f, point.g, dphi)
        alpha = 1.0 if memory else _first_step(dphi)
        phi = _line_function(fun_and_grad, point.x, d, xp=xp)
        max_evals = min(_MAX_LINE_SEARCH_EVALS, budget - n_used)
        trial, _, used = _wolfe_line_search(phi, start, alpha, max_evals, eps)
        n_used += used
        if trial.alpha > 0.0 or not memory or n_used >= budget:
            return trial, n_used
        memory.clear()
        d, dphi = -point.g, -float(_dot(point.g, point.g, xp=xp))


# --- the minimizer ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Options:
    max_iter: int
    max_fun: int
    gtol: float
    ftol: float
    history_size: int
    eps: float
    callback: Callable[[Any, float], Any] | None


def _max_abs(g, *, xp) -> float:
    """``max|g|`` of an array of shape (n,), NaN when g has a NaN."""
    return float(xp.max(xp.abs(g)))


def _stop_status(opts: _Options, n_iter: int, gmax: float, rel: float,
                 stop_requested: bool) -> str | None:
    """Which stopping test fires after an iteration, converged ones first; None: go on."""
    if gmax <= opts.gtol:
        return "gtol"
    if rel <= opts.ftol:
        return "ftol"
    if stop_requested:
        return "callback"
    if n_iter >= opts.max_iter:
        return "max_iter"
    return None


def _iterate(fun_and_grad, point: _Trial, gmax: float, opts: _Options, *,
             xp) -> LbfgsResult:
    """The L-BFGS iterations from ``point`` (already evaluated once) until a stop."""
    memory: list = []
    gamma = 1.0
    n_iter, n_fun, rel = 0, 1, math.nan
    status = "gtol" if gmax <= opts.gtol else None
    while status is None:
        if n_fun >= opts.max_fun:
            status = "max_fun"
            break
        trial, used = _search(fun_and_grad, point, memory, gamma,
                              budget=opts.max_fun - n_fun, eps=opts.eps, xp=xp)
        n_fun += used
        if trial.alpha == 0.0:
            status = "max_fun" if n_fun >= opts.max_fun else "line_search"
            break
        gamma = _remember(memory, trial.x - point.x, trial.g - point.g, gamma,
                          history_size=opts.history_size, eps=opts.eps, xp=xp)
        f_prev, point = point.f, trial
        n_iter += 1
        gmax = _max_abs(point.g, xp=xp)
        rel = (f_prev - point.f) / max(abs(f_prev), abs(point.f), 1.0)
        stop_requested = opts.callback is not None and bool(opts.callback(point.x, point.f))
        status = _stop_status(opts, n_iter, gmax, rel, stop_requested)
    message = _MESSAGES[status].format(gmax=gmax, gtol=opts.gtol, rel=rel, ftol=opts.ftol,
                                       max_iter=opts.max_iter, max_fun=opts.max_fun)
    return LbfgsResult(x=point.x, fun=point.f, grad=point.g, n_iter=n_iter, n_fun=n_fun,
                       converged=status in ("gtol", "ftol"), status=status, message=message)


def minimize_lbfgs(fun_and_grad: Callable[[Any], tuple[Any, Any]], x0: Any, *,
                   max_iter: int = 200, max_fun: int = 15000, gtol: float = 1e-5,
                   ftol: float | None = None, history_size: int = 10,
                   callback: Callable[[Any, float], Any] | None = None) -> LbfgsResult:
    """Minimize a smooth function of a 1-D array with L-BFGS (see the module docstring).

    Parameters
    ----------
    fun_and_grad : callable
        ``fun_and_grad(x) -> (loss, grad)`` for ``x`` of shape (n,): the loss as a Python
        float or 0-d array, ``grad`` an array of shape (n,). It must not modify ``x``. A
        non-finite loss or gradient at a trial point makes the line search step shorter.
    x0 : array of shape (n,)
        The starting point, of a real floating dtype (float32 or float64); not modified.
        All arithmetic stays in its namespace, dtype and device.
    max_iter : int, default 200
        Stop after this many iterations (status "max_iter").
    max_fun : int, default 15000
        Never call ``fun_and_grad`` more than this many times (status "max_fun").
    gtol : float, default 1e-5
        Converged when ``max|grad| <= gtol`` (status "gtol").
    ftol : float or None, default None
        Converged when ``(f_prev - f) / max(|f_prev|, |f|, 1) <= ftol`` after an
        iteration (status "ftol"). None: scipy's 2.220446049250313e-09 for float64,
        ``4 * eps`` of the dtype otherwise (4.77e-07 for float32).
    history_size : int, default 10
        Number of (s, y) pairs kept (scipy's ``maxcor``).
    callback : callable, optional
        ``callback(x, fun)`` after each iteration, with ``x`` of shape (n,) (do not modify
        it) and the loss as a float; returning True stops (status "callback") unless the
        same iteration converged.

    Returns
    -------
    LbfgsResult
        ``x`` (shape (n,)), ``fun``, ``grad`` (shape (n,)), ``n_iter``, ``n_fun``,
        ``converged``, ``status``, ``message``.

    Raises
    ------
    MlpxTypeError
        ``x0`` not an array of a real floating dtype; ``fun_and_grad`` or ``callback`` not
        callable; a count or tolerance not a number.
    MlpxValueError
        ``x0`` not 1-D, or its loss or gradient not finite; a count < 1; a tolerance
        negative or not finite; a gradient shaped unlike ``x``.
    """
    if not callable(fun_and_grad):
        raise MlpxTypeError(
            f"fun_and_grad={fun_and_grad!r} must be a callable x -> (loss, grad)"
        )
    if callback is not None and not callable(callback):
        raise MlpxTypeError(
            f"callback={callback!r} must be None or a callable (x, fun) -> bool"
        )
    xp = _namespace_of(x0)
    _check_x0(x0, xp=xp)
    opts = _Options(
        max_iter=_check_count(max_iter, parameter="max_iter"),
        max_fun=_check_count(max_fun, parameter="max_fun"),
        gtol=_check_tolerance(gtol, parameter="gtol"),
        ftol=(default_ftol(x0.dtype, xp=xp) if ftol is None
              else _check_tolerance(ftol, parameter="ftol")),
        history_size=_check_count(history_size, parameter="history_size"),
        eps=float(xp.finfo(x0.dtype).eps),
        callback=callback,
    )
    x = xp.asarray(x0, dtype=x0.dtype, device=array_api_compat.device(x0), copy=True)
    f, g = _evaluate(fun_and_grad, x, xp=xp)
    gmax = _max_abs(g, xp=xp)
    if not (math.isfinite(f) and math.isfinite(gmax)):
        raise MlpxValueError(
            f"fun_and_grad(x0) returned a non-finite loss ({f}) or gradient (max|grad| = "
            f"{gmax}); start from a point where both are finite"
        )
    return _iterate(fun_and_grad, _Trial(0.0, x, f, g, 0.0), gmax, opts, xp=xp)
