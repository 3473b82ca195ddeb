/* Two process-level calls Python's os module lacks.
 *
 * - set_pdeathsig: prctl's PR_SET_PDEATHSIG, which asks Linux to signal a worker when its parent
 *   goes (by SIGKILL too). guard/mail/supervise.py reached it through ctypes, whose import and
 *   libc look-up were ~6 M instructions of the parent's start before its first fork (a serial
 *   step, while the other core waits); supervise falls back to ctypes where this was not built,
 *   and tests/test_supervise.py checks that both set the same signal.
 * - populate_arenas: from the call on, the arenas Python's small-object allocator takes from
 *   the system (256 KB each, mmap'ed: the memory of nearly every object a start makes) come
 *   with their pages already present (MAP_POPULATE), instead of one page fault per 4 KB page at
 *   first touch. A fault costs ~3 us on the VMs guard is measured on and a populated page ~1 us:
 *   `guard clean --dry-run -q` of one message took ~1,700 page faults fewer (4,285 -> 2,584) and
 *   ~2 ms less CPU. An arena is filled before the next is taken, so at most one per process is
 *   partly unused. The allocator's free is munmap, as Python's own: arenas taken before the call
 *   are freed alike. The command-line entry (guard.cli.launch) calls it first thing; forked
 *   workers inherit it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#ifdef __linux__
#include <sys/mman.h>
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

#if defined(__linux__) && defined(MAP_POPULATE)
static void *
arena_alloc(void *ctx, size_t size)
{
    void *arena = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return arena == MAP_FAILED ? NULL : arena;
}

static void
arena_free(void *ctx, void *arena, size_t size)
{
    munmap(arena, size);
}
#endif

static PyObject *
populate_arenas(PyObject *self, PyObject *noargs)
{
#if defined(__linux__) && defined(MAP_POPULATE)
    PyObjectArenaAllocator allocator = {NULL, arena_alloc, arena_free};
    PyObject_SetArenaAllocator(&allocator);
    Py_RETURN_TRUE;
#else
    Py_RETURN_FALSE;
#endif
}

static PyObject *
arenas_populated(PyObject *self, PyObject *noargs)
{
#if defined(__linux__) && defined(MAP_POPULATE)
    PyObjectArenaAllocator allocator;
    PyObject_GetArenaAllocator(&allocator);
    return PyBool_FromLong(allocator.alloc == arena_alloc);
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"set_pdeathsig", set_pdeathsig, METH_O,
     "set_pdeathsig(signal): prctl(PR_SET_PDEATHSIG, signal); OSError where it fails (not Linux)."},
    {"populate_arenas", populate_arenas, METH_NOARGS,
     "populate_arenas(): new small-object arenas come with their pages present; False if not "
     "possible here."},
    {"arenas_populated", arenas_populated, METH_NOARGS,
     "arenas_populated(): is populate_arenas's allocator the one in use?"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "guard._process",
    "Process-level calls for guard's command line and workers (see _process.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__process(void)
{
    return PyModule_Create(&module);
}
