/* The compiled rules' objects made without a Python call each (guard/engine/rules_compiled.py).

A start unpickles ~1,850 of guard's slotted dataclasses (rules, services, decodes) and lazy
patterns. Through their __init__ each cost a Python frame and one `object.__setattr__` call per
field (the frozen ones' generated code): ~70 % of the unpickling, ~22 M instructions. `rebuild`
does what rules_compiled._rebuild_py does, which stays the reference (tests/test_startup.py
compares the two): object.__new__(cls), then object.__setattr__(obj, name, value) for each pair.

Only for a class whose __new__ is object's (so object.__new__ is safe for it, and its C base is
object: object.__setattr__ is PyObject_GenericSetAttr, the checks object.__setattr__ makes
before it always pass). Anything else raises TypeError; names and values of different lengths
raise ValueError, as zip(strict=True) does in the reference.
*/
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *empty_args;

static PyObject *
rebuild(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "rebuild(cls, names, values) takes 3 arguments");
        return NULL;
    }
    PyObject *cls = args[0], *names = args[1], *values = args[2];
    if (!PyType_Check(cls) || ((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new) {
        PyErr_SetString(PyExc_TypeError, "rebuild: a class whose __new__ is object's");
        return NULL;
    }
    if (!PyTuple_Check(names) || !PyTuple_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "rebuild: names and values are tuples");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    if (PyTuple_GET_SIZE(values) != n) {
        PyErr_SetString(PyExc_ValueError, "rebuild: as many names as values");
        return NULL;
    }
    PyObject *obj = PyBaseObject_Type.tp_new((PyTypeObject *)cls, empty_args, NULL);
    if (obj == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (PyObject_GenericSetAttr(obj, name, PyTuple_GET_ITEM(values, i)) < 0) {
            Py_DECREF(obj);
            return NULL;
        }
    }
    return obj;
}

static PyMethodDef methods[] = {
    {"rebuild", (PyCFunction)(void (*)(void))rebuild, METH_FASTCALL,
     "rebuild(cls, names, values): object.__new__(cls) with each name set to its value."},
    {NULL, NULL, 0, NULL},
};

/* Named in full: the compiled rules refer to `rebuild` as guard.engine._rulesload.rebuild. */
static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "guard.engine._rulesload",
    "The compiled rules' objects made in C (see _rulesload.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__rulesload(void)
{
    empty_args = PyTuple_New(0);
    if (empty_args == NULL) {
        return NULL;
    }
    return PyModule_Create(&module);
}
