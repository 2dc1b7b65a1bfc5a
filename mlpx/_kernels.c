/*
 * mlpx._kernels: Adam's step in one pass over memory, for the NumPy fast path.
 *
 * mlpx/_numpy_optim.py runs Adam on one flat parameter vector as nine NumPy calls, each a
 * pass over every parameter; on a 784-512-256-10 network that is a third of the time the
 * matrix products take. This loop reads each parameter, gradient and moment once and does
 * the same float operations in the same order as Adam._apply in mlpx/optim.py (the
 * reference), so its results are bitwise those of the NumPy kernel:
 *
 *     p = p * decay                                   (AdamW only: decay = 1 - lr wd)
 *     m = m * b1 + g * (1 - b1)
 *     v = v * b2 + (g * (1 - b2)) * g
 *     p = p - (m / (sqrt(v) + epsilon)) * step_size
 *
 * Bitwise equality needs each operation rounded on its own: no fused multiply-add
 * contraction (setup.py passes -ffp-contract=off; the pragma is for compilers that read it).
 * sqrt, division and the rest are correctly rounded in IEEE arithmetic, whatever the vector
 * width, so the AVX2 clone (GCC on x86-64 Linux) gives the same bits as the baseline one.
 *
 * The module is optional: setup.py builds it where a C compiler exists, and mlpx runs the
 * NumPy kernel where it does not.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MLPX_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MLPX_CLONES
#endif

/* The step's constants, already rounded to the parameters' dtype by the caller's cast. */
#define ADAM_LOOP(NAME, T, SQRT)                                                            \
    MLPX_CLONES static void NAME(T *restrict param, const T *restrict grad, T *restrict m, \
                                 T *restrict v, Py_ssize_t n, T beta1, T one_minus_beta1,  \
                                 T beta2, T one_minus_beta2, T step_size, T epsilon,       \
                                 T decay, int decayed)                                     \
    {                                                                                       \
        for (Py_ssize_t i = 0; i < n; i++) {                                                \
            T g = grad[i];                                                                  \
            T p = decayed ? param[i] * decay : param[i];                                    \
            T m_i = m[i] * beta1 + g * one_minus_beta1;                                     \
            T v_i = v[i] * beta2 + (g * one_minus_beta2) * g;                               \
            m[i] = m_i;                                                                     \
            v[i] = v_i;                                                                     \
            param[i] = p - (m_i / (SQRT(v_i) + epsilon)) * step_size;                       \
        }                                                                                   \
    }

ADAM_LOOP(adam_float32, float, sqrtf)
ADAM_LOOP(adam_float64, double, sqrt)

/* Every vector: C-contiguous, one dimension's worth of items, of the first one's dtype. */
static int
get_vector(PyObject *obj, Py_buffer *view, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Format(PyExc_TypeError,
                     "adam_step: %s must be a C-contiguous%s float32 or float64 array",
                     name, writable ? ", writable" : "");
        return -1;
    }
    return 0;
}

static char
dtype_code(const Py_buffer *view)
{
    const char *format = view->format;
    if (format != NULL && (format[0] == '<' || format[0] == '=' || format[0] == '@')) {
        format++;
    }
    if (format == NULL || format[1] != '\0') {
        return 0;
    }
    if (format[0] == 'f' && view->itemsize == 4) {
        return 'f';
    }
    if (format[0] == 'd' && view->itemsize == 8) {
        return 'd';
    }
    return 0;
}

static int
overlap(const Py_buffer *a, const Py_buffer *b)
{
    const char *a_start = a->buf, *b_start = b->buf;
    return a_start < b_start + b->len && b_start < a_start + a->len;
}

PyDoc_STRVAR(adam_step_doc,
"adam_step(param, grad, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2,\n"
"          step_size, epsilon, decay)\n"
"--\n\n"
"One Adam step in place, in one pass: m and v are updated, then param.\n\n"
"Parameters\n"
"----------\n"
"param, m, v : writable C-contiguous arrays of shape (n,), float32 or float64\n"
"grad : C-contiguous array of shape (n,), the same dtype\n"
"beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, epsilon : float\n"
"    Rounded to the arrays' dtype before use, as NumPy rounds a 0-d array of it.\n"
"decay : float or None\n"
"    AdamW's factor 1 - lr * weight_decay, applied to param first; None for Adam.\n");

static PyObject *
adam_step(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    static const char *names[] = {"param", "grad", "m", "v"};
    double scalars[7];
    Py_buffer views[4];
    int n_views = 0;
    PyObject *result = NULL;

    if (nargs != 11) {
        PyErr_Format(PyExc_TypeError, "adam_step takes 11 arguments (%zd given)", nargs);
        return NULL;
    }
    for (int i = 0; i < 6; i++) {
        scalars[i] = PyFloat_AsDouble(args[4 + i]);
        if (scalars[i] == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    int decayed = args[10] != Py_None;
    scalars[6] = decayed ? PyFloat_AsDouble(args[10]) : 1.0;
    if (scalars[6] == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    for (; n_views < 4; n_views++) {
        if (get_vector(args[n_views], &views[n_views], n_views != 1, names[n_views]) < 0) {
            goto done;
        }
    }
    char code = dtype_code(&views[0]);
    if (code == 0) {
        PyErr_SetString(PyExc_TypeError, "adam_step: param must be float32 or float64");
        goto done;
    }
    for (int i = 1; i < 4; i++) {
        if (dtype_code(&views[i]) != code || views[i].len != views[0].len) {
            PyErr_Format(PyExc_ValueError,
                         "adam_step: %s must have param's dtype and length", names[i]);
            goto done;
        }
        for (int j = 0; j < i; j++) {
            if (overlap(&views[i], &views[j])) {
                PyErr_Format(PyExc_ValueError, "adam_step: %s and %s share memory",
                             names[j], names[i]);
                goto done;
            }
        }
    }
    Py_ssize_t n = views[0].len / views[0].itemsize;
    Py_BEGIN_ALLOW_THREADS
    if (code == 'f') {
        adam_float32(views[0].buf, views[1].buf, views[2].buf, views[3].buf, n,
                     (float)scalars[0], (float)scalars[1], (float)scalars[2],
                     (float)scalars[3], (float)scalars[4], (float)scalars[5],
                     (float)scalars[6], decayed);
    }
    else {
        adam_float64(views[0].buf, views[1].buf, views[2].buf, views[3].buf, n, scalars[0],
                     scalars[1], scalars[2], scalars[3], scalars[4], scalars[5], scalars[6],
                     decayed);
    }
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    for (int i = 0; i < n_views; i++) {
        PyBuffer_Release(&views[i]);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"adam_step", (PyCFunction)(void (*)(void))adam_step, METH_FASTCALL, adam_step_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "mlpx._kernels",
    "Adam's step in one pass over memory (optional; see mlpx._numpy_optim).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    return PyModule_Create(&module_def);
}
