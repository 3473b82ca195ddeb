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
 * `plain(...)`: the rewrite's loop over the plain links and images of a document without a base
 * (guard/clean/html.py `_Document.rewrite` and `rewrite_plain_image`, with the cleaning
 * planner's `link_target` and the KEEP answer of its `load_action`: guard/clean/message.py),
 * from a record on until one it leaves to Python: an element's node, an image with a load the
 * planner may remove. What it records (the loads seen, the KEEP answers, the links rewritten,
 * each link's target by its href) is what the Python records, into the same dicts and sets; the
 * links to edit come back as (node, target), edited by Python as before.
 *
 * `text(...)`: the same link answers for the URLs of a plain-text part (guard/clean/message.py
 * `rewrite_text`), spliced into the text here.
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
static void *(*f_parent)(void *node);
static uintptr_t (*f_tag_id)(void *node);
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
    *(void **)(&f_parent) = dlsym(h, "lxb_dom_node_parent_noi");
    if (f_parent == NULL) {
        PyErr_SetString(PyExc_ImportError, "selectolax lacks lxb_dom_node_parent_noi");
        return NULL;
    }
    *(void **)(&f_tag_id) = dlsym(h, "lxb_dom_node_tag_id_noi");
    if (f_tag_id == NULL) {
        PyErr_SetString(PyExc_ImportError, "selectolax lacks lxb_dom_node_tag_id_noi");
        return NULL;
    }
    ready = 1;
    Py_RETURN_NONE;
}

/* The growing output: a bytes object's storage written in place through a cursor, resized as it
 * fills (a doubling, so a document of n bytes is copied at most about once more). Lexbor hands
 * the serialisation over in ~9,000 pieces a newsletter, most of a few bytes (`<`, a tag name,
 * `="`): those are copied as two overlapping words of 2 or 4 bytes, with no call and no loop
 * (a byte at a time, a piece cost ~40 instructions of which the copy was most). */
typedef struct {
    PyObject *bytes; /* NULL once a resize failed (the error is set; at and end NULL too) */
    unsigned char *at, *end;
} sink;

static int grow(sink *s, size_t len) {
    if (s->bytes == NULL) return -1;
    Py_ssize_t size = PyBytes_GET_SIZE(s->bytes);
    Py_ssize_t used = (Py_ssize_t)(s->at - (unsigned char *)PyBytes_AS_STRING(s->bytes));
    Py_ssize_t want = size;
    while ((size_t)(want - used) < len) {
        if (want > PY_SSIZE_T_MAX / 2) {
            Py_CLEAR(s->bytes);
            s->at = s->end = NULL;
            PyErr_NoMemory();
            return -1;
        }
        want *= 2;
    }
    if (_PyBytes_Resize(&s->bytes, want) < 0) { /* (it cleared s->bytes) */
        s->at = s->end = NULL;
        return -1;
    }
    s->at = (unsigned char *)PyBytes_AS_STRING(s->bytes) + used;
    s->end = (unsigned char *)PyBytes_AS_STRING(s->bytes) + want;
    return 0;
}

static lxb_status_t append(const unsigned char *data, size_t len, void *ctx) {
    sink *s = (sink *)ctx;
    if ((size_t)(s->end - s->at) < len && grow(s, len) < 0) return 1;
    unsigned char *o = s->at;
    if (len >= 4) {
        if (len <= 8) {
            uint32_t head, tail;
            memcpy(&head, data, 4);
            memcpy(&tail, data + len - 4, 4);
            memcpy(o, &head, 4);
            memcpy(o + len - 4, &tail, 4);
        } else {
            memcpy(o, data, len);
        }
    } else if (len >= 2) {
        uint16_t head, tail;
        memcpy(&head, data, 2);
        memcpy(&tail, data + len - 2, 2);
        memcpy(o, &head, 2);
        memcpy(o + len - 2, &tail, 2);
    } else if (len == 1) {
        *o = *data;
    }
    s->at = o + len;
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
    sink s = {PyBytes_FromStringAndSize(NULL, 16384), NULL, NULL};
    if (s.bytes == NULL) return NULL;
    s.at = (unsigned char *)PyBytes_AS_STRING(s.bytes);
    s.end = s.at + PyBytes_GET_SIZE(s.bytes);
    lxb_status_t status = f_tree_cb(nh->node, append, &s);
    if (s.bytes == NULL) return NULL;
    if (status != 0) {
        Py_DECREF(s.bytes);
        PyErr_SetString(PyExc_ValueError, "Lexbor could not serialise the node");
        return NULL;
    }
    Py_ssize_t used = (Py_ssize_t)(s.at - (unsigned char *)PyBytes_AS_STRING(s.bytes));
    if (_PyBytes_Resize(&s.bytes, used) < 0) return NULL;
    return s.bytes;
}

/* str.strip(s) (a new reference): the method, unless the first and last characters are
 * printable ASCII other than space (every URL of a newsletter), which Python does not strip. */
static PyObject *stripped(PyObject *s) {
    if (!PyUnicode_CheckExact(s)) return PyObject_CallMethod(s, "strip", NULL);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n > 0) {
        Py_UCS4 first = PyUnicode_READ_CHAR(s, 0), last = PyUnicode_READ_CHAR(s, n - 1);
        if (first > 0x20 && first < 0x7f && last > 0x20 && last < 0x7f) {
            Py_INCREF(s);
            return s;
        }
        return PyObject_CallMethod(s, "strip", NULL);
    }
    Py_INCREF(s);
    return s;
}

/* The node of a record's LexborNode, or NULL with TypeError. */
static void *lexbor_node(PyObject *obj) {
    PyTypeObject *tp = Py_TYPE(obj);
    if (strcmp(tp->tp_name, "selectolax.lexbor.LexborNode") != 0 ||
        tp->tp_basicsize != (Py_ssize_t)sizeof(node_head) || ((node_head *)obj)->node == NULL ||
        ((node_head *)obj)->is_template_content || ((node_head *)obj)->is_fragment_root) {
        PyErr_SetString(PyExc_TypeError, "not a selectolax 1.0 LexborNode of a whole document");
        return NULL;
    }
    return ((node_head *)obj)->node;
}

typedef struct {
    PyObject *targets, *seen, *loads, *written, *load_names, *kept_loads, *decisions, *rewritten,
        *edits;
} tables;

/* `_Planner.link_target(url)` (url stripped already): the replacement or None (new reference),
 * the decision recorded in rewritten_links as there; NULL on error. */
static PyObject *link_target(const tables *t, PyObject *url) {
    PyObject *raw = url;
    Py_INCREF(raw);
    PyObject *decision = PyDict_GetItemWithError(t->decisions, raw);
    if (decision == NULL) {
        if (PyErr_Occurred()) goto fail;
        if (PyUnicode_GET_LENGTH(raw) < 2 || PyUnicode_READ_CHAR(raw, 0) != '/' ||
            PyUnicode_READ_CHAR(raw, 1) != '/') {
            Py_DECREF(raw);
            Py_RETURN_NONE;
        }
        Py_SETREF(raw, PyUnicode_FromFormat("https:%U", url));
        if (raw == NULL) return NULL;
        decision = PyDict_GetItemWithError(t->decisions, raw);
        if (decision == NULL) {
            if (PyErr_Occurred()) goto fail;
            Py_DECREF(raw);
            Py_RETURN_NONE;
        }
    }
    if (!PyTuple_Check(decision) || PyTuple_GET_SIZE(decision) < 1) {
        PyErr_SetString(PyExc_TypeError, "a decision is a _LinkDecision");
        goto fail;
    }
    PyObject *replacement = PyTuple_GET_ITEM(decision, 0);
    Py_INCREF(decision); /* (the dict may drop it when the set below replaces an equal key) */
    if (replacement != Py_None && PyDict_SetItem(t->rewritten, raw, decision) < 0) {
        Py_DECREF(decision);
        goto fail;
    }
    Py_INCREF(replacement);
    Py_DECREF(decision);
    Py_DECREF(raw);
    return replacement;
fail:
    Py_DECREF(raw);
    return NULL;
}

/* A plain link (node, href): 0, or -1 on error. */
static int plain_link(const tables *t, PyObject *record) {
    PyObject *node = PyTuple_GET_ITEM(record, 0), *href = PyTuple_GET_ITEM(record, 1);
    PyObject *target = PyDict_GetItemWithError(t->targets, href);
    if (target != NULL) {
        Py_INCREF(target);
    } else {
        if (PyErr_Occurred()) return -1;
        PyObject *url = stripped(href);
        if (url == NULL) return -1;
        target = link_target(t, url);
        Py_DECREF(url);
        if (target == NULL) return -1;
        if (PyDict_SetItem(t->targets, href, target) < 0) goto fail;
    }
    if (target != Py_None) {
        int differs = PyObject_RichCompareBool(target, href, Py_NE);
        if (differs < 0) goto fail;
        if (differs) {
            PyObject *edit = PyTuple_Pack(2, node, target);
            if (edit == NULL) goto fail;
            int appended = PyList_Append(t->edits, edit);
            Py_DECREF(edit);
            if (appended < 0) goto fail;
        }
    }
    Py_DECREF(target);
    return 0;
fail:
    Py_DECREF(target);
    return -1;
}

/* One URL of a plain image: 1 when the planner answers KEEP (recorded), 0 when Python must ask
 * it, -1 on error. As `_Document.first_seen` without a base, then `_Planner.load_action`. */
static int image_url(const tables *t, PyObject *url) {
    PyObject *resolved = PyDict_GetItemWithError(t->seen, url);
    if (resolved != NULL) {
        Py_INCREF(resolved);
    } else {
        if (PyErr_Occurred()) return -1;
        resolved = stripped(url);
        if (resolved == NULL) return -1;
        if (PyDict_SetItem(t->seen, url, resolved) < 0 || PySet_Add(t->loads, resolved) < 0 ||
            PySet_Add(t->written, resolved) < 0)
            goto fail;
    }
    PyObject *name = stripped(resolved);
    if (name == NULL) goto fail;
    int named = PySet_Contains(t->load_names, name);
    Py_DECREF(name);
    if (named < 0) goto fail;
    if (named) {
        Py_DECREF(resolved);
        return 0;
    }
    if (PySet_Add(t->kept_loads, resolved) < 0) goto fail;
    Py_DECREF(resolved);
    return 1;
fail:
    Py_DECREF(resolved);
    return -1;
}

/* A plain image (node, src or None, [srcset URLs]): 1 when every load is kept, 0 when Python
 * must read it (what was recorded here it records the same again), -1 on error. */
static int plain_image(const tables *t, PyObject *record) {
    PyObject *src = PyTuple_GET_ITEM(record, 1), *srcset = PyTuple_GET_ITEM(record, 2);
    if (!PyList_CheckExact(srcset)) return 0;
    if (src != Py_None) {
        int kept = image_url(t, src);
        if (kept <= 0) return kept;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(srcset); i++) {
        int kept = image_url(t, PyList_GET_ITEM(srcset, i));
        if (kept <= 0) return kept;
    }
    return 1;
}

static PyObject *plain(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *records;
    Py_ssize_t start;
    int removed_any;
    tables t;
    if (!PyArg_ParseTuple(args, "O!npO!O!O!O!O!O!O!O!O!", &PyList_Type, &records, &start,
                          &removed_any, &PyDict_Type, &t.targets, &PyDict_Type, &t.seen,
                          &PySet_Type, &t.loads, &PySet_Type, &t.written, &PySet_Type,
                          &t.load_names, &PySet_Type, &t.kept_loads, &PyDict_Type, &t.decisions,
                          &PyDict_Type, &t.rewritten, &PyList_Type, &t.edits))
        return NULL;
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "not bound");
        return NULL;
    }
    Py_ssize_t i = start < 0 ? 0 : start;
    for (; i < PyList_GET_SIZE(records); i++) {
        PyObject *record = PyList_GET_ITEM(records, i);
        if (!PyTuple_CheckExact(record)) break;
        Py_ssize_t size = PyTuple_GET_SIZE(record);
        if (size != 2 && size != 3) break;
        void *node = lexbor_node(PyTuple_GET_ITEM(record, 0));
        if (node == NULL) { /* not a record of the candidates' walk: Python reads it */
            PyErr_Clear();
            break;
        }
        if (removed_any && f_parent(node) == NULL) continue; /* inside an element that went */
        if (size == 2) {
            if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(record, 1))) break;
            if (plain_link(&t, record) < 0) return NULL;
        } else {
            int kept = plain_image(&t, record);
            if (kept < 0) return NULL;
            if (kept == 0) break;
        }
    }
    return PyLong_FromSsize_t(i);
}

/* `rewrite_text(text, planner.link_target, urls)` (guard/clean/message.py): each URL found in
 * order from where the last one ended, swapped for its target where the planner replaces it. */
static PyObject *text_links(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text, *urls;
    tables t = {0};
    if (!PyArg_ParseTuple(args, "UOO!O!", &text, &urls, &PyDict_Type, &t.decisions, &PyDict_Type,
                          &t.rewritten))
        return NULL;
    PyObject *it = PyObject_GetIter(urls);
    if (it == NULL) return NULL;
    PyObject *out = NULL, *url;
    Py_ssize_t copied = 0, searched = 0, n = PyUnicode_GET_LENGTH(text);
    while ((url = PyIter_Next(it)) != NULL) {
        if (!PyUnicode_Check(url)) {
            PyErr_SetString(PyExc_TypeError, "a URL is a str");
            goto fail_url;
        }
        Py_ssize_t start = PyUnicode_Find(text, url, searched, n, 1);
        if (start == -2) goto fail_url;
        if (start == -1) {
            Py_DECREF(url);
            continue;
        }
        searched = start + PyUnicode_GET_LENGTH(url);
        PyObject *raw = stripped(url);
        if (raw == NULL) goto fail_url;
        PyObject *target = link_target(&t, raw);
        Py_DECREF(raw);
        if (target == NULL) goto fail_url;
        int swap = 0;
        if (target != Py_None) {
            swap = PyObject_RichCompareBool(target, url, Py_NE);
            if (swap < 0) {
                Py_DECREF(target);
                goto fail_url;
            }
        }
        if (swap) {
            if (out == NULL && (out = PyList_New(0)) == NULL) {
                Py_DECREF(target);
                goto fail_url;
            }
            PyObject *before = PyUnicode_Substring(text, copied, start);
            int bad = before == NULL || PyList_Append(out, before) < 0 ||
                      PyList_Append(out, target) < 0;
            Py_XDECREF(before);
            if (bad) {
                Py_DECREF(target);
                goto fail_url;
            }
            copied = searched;
        }
        Py_DECREF(target);
        Py_DECREF(url);
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) goto fail;
    if (out == NULL) {
        Py_INCREF(text);
        return text;
    }
    PyObject *rest = PyUnicode_Substring(text, copied, n);
    if (rest == NULL || PyList_Append(out, rest) < 0) {
        Py_XDECREF(rest);
        goto fail;
    }
    Py_DECREF(rest);
    PyObject *empty = PyUnicode_New(0, 0);
    if (empty == NULL) goto fail;
    PyObject *joined = PyUnicode_Join(empty, out);
    Py_DECREF(empty);
    Py_DECREF(out);
    return joined;
fail_url:
    Py_DECREF(url);
    Py_DECREF(it);
fail:
    Py_XDECREF(out);
    return NULL;
}

/* guard/clean/nodes.py `holds_base(records)` with the tag id handed in: is one of the records
 * that are nodes (not a plain link's or image's tuple) an element of that Lexbor tag id (what
 * selectolax's `tag_id` reads)? */
static PyObject *holds_tag(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *records;
    unsigned long long tag;
    if (!PyArg_ParseTuple(args, "O!K", &PyList_Type, &records, &tag)) return NULL;
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "not bound");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {
        PyObject *record = PyList_GET_ITEM(records, i);
        if (PyTuple_Check(record)) continue;
        void *node = lexbor_node(record);
        if (node == NULL) return NULL;
        if ((unsigned long long)f_tag_id(node) == tag) Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_VARARGS, "bind(path of selectolax's extension)"},
    {"serialize", serialize, METH_O,
     "serialize(LexborNode) -> bytes: what LexborNode.html decodes (see the file's comment)"},
    {"plain", plain, METH_VARARGS,
     "plain(records, start, removed_any, targets, seen, loads, written, load_names, kept_loads,"
     " decisions, rewritten_links, edits) -> the index of the first record left to Python"},
    {"text", text_links, METH_VARARGS,
     "text(text, urls, decisions, rewritten_links) -> the text with its links swapped: as"
     " message.py's rewrite_text with the planner's link_target"},
    {"holds_tag", holds_tag, METH_VARARGS,
     "holds_tag(records, Lexbor tag id) -> bool: nodes.holds_base's answer for that tag"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "guard.clean._rewritecore", NULL, -1, methods};

PyMODINIT_FUNC PyInit__rewritecore(void) { return PyModule_Create(&module); }
