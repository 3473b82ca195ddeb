/* A process-level call Python's os module lacks.
 *
 * set_pdeathsig: prctl's PR_SET_PDEATHSIG, which asks Linux to signal a worker when its parent
 *   goes (by SIGKILL too). guard/mail/supervise.py reached it through ctypes, whose import and
 *   libc look-up were ~6 M instructions of the parent's start before its first fork (a serial
 *   step, while the other core waits); supervise falls back to ctypes where this was not built,
 *   and tests/test_supervise.py checks that both set the same signal.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static PyObject *
set_pdeathsig(PyObject *self, PyObject *arg)
{
    long sig = PyLong_AsLong(arg);
    if (sig == -1 && PyErr_Occurred()) {
        return NULL;
    }
#ifdef __linux__
    if (prctl(PR_SET_PDEATHSIG, (unsigned long)sig, 0UL, 0UL, 0UL) != 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
#else
    errno = ENOSYS;
    return PyErr_SetFromErrno(PyExc_OSError);
#endif
}

static PyMethodDef methods[] = {
    {"set_pdeathsig", set_pdeathsig, METH_O,
     "set_pdeathsig(signal): prctl(PR_SET_PDEATHSIG, signal); OSError where it fails (not Linux)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "guard._process",
    "The parent-death signal of guard's worker processes (see _process.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__process(void)
{
    return PyModule_Create(&module);
}
