/* guard.clean._rewritecore: cleaning's rewrite, the parts of it that are loops over Lexbor's
 * tree, in C (guard/clean/html.py holds the Python reference of each).
 *
 * `serialize(node)`: the bytes Lexbor writes for a node and its subtree, the bytes selectolax's
 * `LexborNode.html` decodes (it serialises with lxb_html_serialize_tree_str, which is
 * lxb_html_serialize_tree_cb with a callback that appends each piece to a lexbor_str_t, growing
 * it through the document's memory pool). Here the same serialiser writes into a buffer that
 * doubles, and the bytes come back as they are: cleaning's check parses the output as UTF-8
 * bytes, so a newsletter's 50 KB are neither appended piece by piece in Lexbor's pool, nor
 * decoded to a str and encoded back. The rewrite (`_Document.serialised_utf8`) uses it only
 * where the bytes are valid UTF-8, i.e. where `.html` and these bytes say the same text;
 * tests/test_rewrite_core.py compares the two on samples/, eval/ and the corpus.
 *
 * No Lexbor header is needed (as guard/engine/_lexwalk.c): the serialiser is looked up by name
 * in selectolax's own extension, and the only layout read is where selectolax 1.0's LexborNode
 * keeps its node, checked against the type's name and size before every use.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

typedef unsigned int lxb_status_t;
typedef lxb_status_t (*serialize_cb_f)(const unsigned char *data, size_t len, void *ctx);

static lxb_status_t (*f_tree_cb)(void *node, serialize_cb_f cb, void *ctx);
static int ready = 0;

/* selectolax 1.0's LexborNode: PyObject_HEAD, vtable, its node and its parser. */
typedef struct {
    PyObject_HEAD
    void *vtab;
    void *node;
    PyObject *parser;
    int is_fragment_root;
    int is_template_content;
} node_head;

static PyObject *bind(PyObject *self, PyObject *args) {
    (void)self;
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL) h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        PyErr_SetString(PyExc_ImportError, "cannot open selectolax's extension");
        return NULL;
    }
    *(void **)(&f_tree_cb) = dlsym(h, "lxb_html_serialize_tree_cb");
    if (f_tree_cb == NULL) {
        PyErr_SetString(PyExc_ImportError, "selectolax lacks lxb_html_serialize_tree_cb");
        return NULL;
    }
    ready = 1;
    Py_RETURN_NONE;
}

/* The growing output: a bytes object's storage is written in place, resized as it fills (a
 * doubling, so a document of n bytes is copied at most about once more). */
typedef struct {
    PyObject *bytes; /* NULL once a resize failed (the error is set) */
    Py_ssize_t used;
} sink;

static lxb_status_t append(const unsigned char *data, size_t len, void *ctx) {
    sink *s = (sink *)ctx;
    if (s->bytes == NULL) return 1;
    Py_ssize_t size = PyBytes_GET_SIZE(s->bytes);
    if ((size_t)(size - s->used) < len) {
        Py_ssize_t want = size;
        while ((size_t)(want - s->used) < len) {
            if (want > PY_SSIZE_T_MAX / 2) {
                Py_CLEAR(s->bytes);
                PyErr_NoMemory();
                return 1;
            }
            want *= 2;
        }
        if (_PyBytes_Resize(&s->bytes, want) < 0) return 1; /* (it cleared s->bytes) */
    }
    memcpy(PyBytes_AS_STRING(s->bytes) + s->used, data, len);
    s->used += (Py_ssize_t)len;
    return 0;
}

static PyObject *serialize(PyObject *self, PyObject *node) {
    (void)self;
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "not bound");
        return NULL;
    }
    PyTypeObject *tp = Py_TYPE(node);
    if (strcmp(tp->tp_name, "selectolax.lexbor.LexborNode") != 0 ||
        tp->tp_basicsize != (Py_ssize_t)sizeof(node_head)) {
        PyErr_SetString(PyExc_TypeError, "not a selectolax 1.0 LexborNode");
        return NULL;
    }
    node_head *nh = (node_head *)node;
    if (nh->node == NULL || nh->is_fragment_root || nh->is_template_content) {
        /* (`.html` serialises those otherwise) */
        PyErr_SetString(PyExc_ValueError, "not a node of a whole document");
        return NULL;
    }
    sink s = {PyBytes_FromStringAndSize(NULL, 4096), 0};
    if (s.bytes == NULL) return NULL;
    lxb_status_t status = f_tree_cb(nh->node, append, &s);
    if (s.bytes == NULL) return NULL;
    if (status != 0) {
        Py_DECREF(s.bytes);
        PyErr_SetString(PyExc_ValueError, "Lexbor could not serialise the node");
        return NULL;
    }
    if (_PyBytes_Resize(&s.bytes, s.used) < 0) return NULL;
    return s.bytes;
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_VARARGS, "bind(path of selectolax's extension)"},
    {"serialize", serialize, METH_O,
     "serialize(LexborNode) -> bytes: what LexborNode.html decodes (see the file's comment)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "guard.clean._rewritecore", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rewritecore(void) { return PyModule_Create(&module); }
