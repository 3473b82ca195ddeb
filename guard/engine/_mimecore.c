/* A header block split into its fields (guard/engine/mimetree.py's `parse_headers`), in one pass
 * over the bytes instead of Python's loop over `str.splitlines()` (about a tenth of a real
 * newsletter's scan went to that loop).
 *
 * mimetree.py's `_parse_headers_python` stays the reference: `parse_headers` here returns exactly
 * what it returns, and tests/test_mimecore.py compares the two on samples/, eval/, the real corpus,
 * hostile blocks and generated ones. What the Python reads, byte for byte (the block is decoded as
 * ASCII with surrogateescape, so a byte >= 0x80 is a lone surrogate: never a line break, never
 * whitespace):
 * - lines as str.splitlines() cuts them: at \n, \r, \r\n (one break), \v, \f, \x1c, \x1d, \x1e; a
 *   break at the very end makes no empty line after it;
 * - a line starting with a space or a tab continues the field being read (kept whole, its leading
 *   whitespace included), if one is being read;
 * - any other line ends that field; it starts one when it has a `:` and the text before its first
 *   `:` (the name) is not empty, neither starts nor ends with whitespace (str.isspace: \t..\r,
 *   \x1c..\x1f, space) and holds no space; anything else (an mbox `From ` line, junk) is skipped;
 * - a field's value is its lines (the first from after the `:`) joined with \n, stripped of
 *   whitespace at both ends.
 * The work is linear in the block and the memory one buffer the block's size: blocks are hostile
 * input (a 200 KB Content-Type field is real).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* str.isspace() of the character a byte decodes to (ASCII, surrogateescape). */
static int
is_space(unsigned char c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == ' ';
}

/* A line break for str.splitlines() (\r\n is handled by the caller). */
static int
is_break(unsigned char c)
{
    return (c >= 0x0a && c <= 0x0d) || (c >= 0x1c && c <= 0x1e);
}

/* `text[start:end]` with `str.strip()`'s whitespace off both ends, as a str. */
static PyObject *
stripped(const char *text, Py_ssize_t start, Py_ssize_t end)
{
    while (start < end && is_space((unsigned char)text[start]))
        start++;
    while (end > start && is_space((unsigned char)text[end - 1]))
        end--;
    return PyUnicode_DecodeASCII(text + start, end - start, "surrogateescape");
}

/* The name of a field starting at `line` (its first `len` bytes), or 0 when the line starts none:
 * the length before the first `:`. */
static Py_ssize_t
field_name(const char *line, Py_ssize_t len)
{
    const char *colon = memchr(line, ':', (size_t)len);
    if (colon == NULL || colon == line)
        return 0;
    Py_ssize_t name = colon - line;
    if (is_space((unsigned char)line[0]) || is_space((unsigned char)line[name - 1]))
        return 0;
    if (memchr(line, ' ', (size_t)name) != NULL)
        return 0;
    return name;
}

/* Append (name, stripped value) to `fields`; 0, or -1 with an exception set. */
static int
emit(PyObject *fields, const char *name, Py_ssize_t name_len, const char *value,
     Py_ssize_t value_len)
{
    PyObject *key = PyUnicode_DecodeASCII(name, name_len, "surrogateescape");
    if (key == NULL)
        return -1;
    PyObject *text = stripped(value, 0, value_len);
    if (text == NULL) {
        Py_DECREF(key);
        return -1;
    }
    PyObject *pair = PyTuple_Pack(2, key, text);
    Py_DECREF(key);
    Py_DECREF(text);
    if (pair == NULL)
        return -1;
    int failed = PyList_Append(fields, pair);
    Py_DECREF(pair);
    return failed;
}

static PyObject *
parse_headers(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "parse_headers() takes bytes");
        return NULL;
    }
    const char *text = PyBytes_AS_STRING(arg);
    Py_ssize_t size = PyBytes_GET_SIZE(arg);
    /* The value being read, its lines joined with \n: never longer than the block, as each
     * joining \n replaces a break of one or two bytes. */
    char *value = PyMem_Malloc((size_t)size + 1);
    PyObject *fields = PyList_New(0);
    if (value == NULL || fields == NULL) {
        PyMem_Free(value);
        Py_XDECREF(fields);
        return PyErr_NoMemory();
    }
    const char *name = NULL; /* the field being read, NULL when none */
    Py_ssize_t name_len = 0, value_len = 0, pos = 0;
    while (pos < size) {
        Py_ssize_t end = pos;
        while (end < size && !is_break((unsigned char)text[end]))
            end++;
        const char *line = text + pos;
        Py_ssize_t len = end - pos;
        pos = end + 1;
        if (end + 1 < size && text[end] == '\r' && text[end + 1] == '\n')
            pos++;
        if (name != NULL && len > 0 && (line[0] == ' ' || line[0] == '\t')) {
            value[value_len++] = '\n';
            memcpy(value + value_len, line, (size_t)len);
            value_len += len;
            continue;
        }
        if (name != NULL) {
            if (emit(fields, name, name_len, value, value_len) < 0)
                goto fail;
            name = NULL;
        }
        Py_ssize_t found = field_name(line, len);
        if (found) {
            name = line;
            name_len = found;
            value_len = len - found - 1;
            memcpy(value, line + found + 1, (size_t)value_len);
        }
    }
    if (name != NULL && emit(fields, name, name_len, value, value_len) < 0)
        goto fail;
    PyMem_Free(value);
    PyObject *result = PyList_AsTuple(fields);
    Py_DECREF(fields);
    return result;
fail:
    PyMem_Free(value);
    Py_DECREF(fields);
    return NULL;
}

static PyMethodDef methods[] = {
    {"parse_headers", parse_headers, METH_O, "mimetree._parse_headers_python, in one pass."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_mimecore", "mimetree.py's header split in one pass (see _mimecore.c).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__mimecore(void)
{
    return PyModule_Create(&module);
}
