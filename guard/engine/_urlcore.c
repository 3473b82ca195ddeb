/* Detection's per-reference work in C: the loop of guard/engine/detect.py over a message's
 * references, for the common outcomes.
 *
 * guard/engine/urlcore.py builds one Core per RuleSet from the rules' own tables (the host
 * dictionaries, the host-less shapes' literal gates, the parameter names), so the rules stay data.
 * For each reference the Core splits the URL as urls.parse_http does, finds its host's rules,
 * follows link wrappers (calling the rules' compiled regexes and unwrap.py's decoders), matches
 * tracking parameters and builds the Findings. What it does not do itself it hands back to
 * Python: a URL outside the plain shape (urls.parse_http splits it), a load some rule may be
 * about (detect._Collector.load decides it), a decoder chain (unwrap.apply_encodings).
 * The Python path stays the reference: tests/test_urlcore.py compares the two.
 *
 * Bounded work on hostile input, as in the Python code: a host's suffixes are looked up only as
 * deep as the longest wildcard suffix, unwrapping stops after MAX_UNWRAP_DEPTH wrappers, and
 * parameter names are deduplicated with a set.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

enum { K_OTHER = 0, K_LINK = 1, K_PARAM = 2 };

typedef struct {
    PyObject *rule; /* borrowed: the Core's `infos` list owns them */
    int kind;
    int has_hosts, tracking_only, has_decode;
    /* The shape regexes, or NULL: re.Pattern or the compiled rules' lazy pattern (compiled at
     * its first search, as the Python path compiles it: a start compiles none). */
    PyObject *path_re, *query_re;
    /* Their bound `search` methods, fetched at the first search (owned; NULL until then): the
     * compiled rules' lazy pattern answers every attribute look-up through its __getattr__ hook
     * (~1,000 instructions a call), once compiled as before. */
    PyObject *path_search, *query_search, *d_search;
    PyObject *d_param;                    /* Decode.param, or NULL */
    int d_source;                         /* 0 path, 1 query, 2 url */
    PyObject *d_re;                   /* Decode.regex, or NULL */
    PyObject *d_encodings, *d_json_path;
    int d_percent; /* the encodings are ("percent",): urllib.parse.unquote */
    PyObject *id, *tracker, *category, *service_id;
} RuleInfo;

/* A tuple of literal texts (one test of the shape index's gate), readable without the str API
 * and grouped by one character of each (the second of a prefix: every path starts with `/`; the
 * last of a suffix; the first of a contained text), so that a URL is compared with the few
 * texts that can match it. */
enum { T_PREFIX = 0, T_SUFFIX = 1, T_CONTAINS = 2 };
typedef struct {
    Py_ssize_t n;
    const char **text; /* NULL when some text is not ASCII: then the str API is used */
    Py_ssize_t *len;
    int how;
    Py_ssize_t start[257], *order; /* indices by key character: order[start[ch]:start[ch+1]] */
    Py_ssize_t nshort, *shorts;    /* texts too short to have the key character: always tried */
    /* For contained texts, a bit for each pair of characters a text starts with (every pair
     * after a one-character text's): most places of a path or query start none, and are passed
     * over without comparing (11 of the path texts start with `/`: each `/` of a path took 11
     * compares). NULL for the other tests. */
    unsigned char *pairs;
} Texts;

typedef struct {
    PyObject_HEAD
    PyObject *url_type, *finding_type;
    PyObject *kind_remote, *kind_link, *kind_param, *conf_known, *party_first, *party_third;
    PyObject *builtin_remote, *s_remote, *s_link, *s_param, *s_slash, *s_empty, *s_https;
    PyObject *empty_tuple, *s_target, *s_text_plain, *s_group, *s_strip, *s_nul;
    PyObject *s_question, *s_amp;
    PyObject *host_cache, *by_host, *by_suffix;
    Py_ssize_t suffix_labels, host_cache_size;
    PyObject *unwrap_cache;
    Py_ssize_t unwrap_cache_size, unwrap_cache_longest, max_unwrap_depth;
    /* ShapeIndex's items by test: (path prefix, path suffix, query prefix, query suffix, path
     * contains, query contains) lists of (texts, position, item), then `always` (position, item) */
    PyObject *shape_each;
    /* the shape index's one literal test of every URL (shapes.ShapeIndex.find) */
    PyObject *g_path_prefixes, *g_path_suffixes, *g_path_exact, *g_query_exact;
    PyObject *g_query_prefixes, *g_query_suffixes, *g_path_contains, *g_query_contains;
    int g_always;
    Texts t_path_prefixes, t_path_suffixes, t_query_prefixes, t_query_suffixes;
    Texts t_path_contains, t_query_contains;
    PyObject *exact_params, *prefix_rules; /* dict name -> rule; tuple of (prefix, rule) */
    PyObject *py_parse, *py_decode;
    PyObject *infos;
    RuleInfo *info;
    Py_ssize_t ninfo;
    PyObject **tab_keys;
    Py_ssize_t *tab_vals;
    size_t tab_mask;
} Core;

/* A split URL: urls.Url's four fields, new references. */
typedef struct {
    PyObject *raw, *host, *path, *query;
} U;

static void u_clear(U *u) {
    Py_CLEAR(u->raw);
    Py_CLEAR(u->host);
    Py_CLEAR(u->path);
    Py_CLEAR(u->query);
}

/* -- rule look-up: Rule object -> its RuleInfo (pointer-keyed open addressing) ----------------- */

static size_t ptr_hash(PyObject *p) {
    size_t h = (size_t)p;
    h ^= h >> 4;
    h *= (size_t)0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 29);
}

static RuleInfo *info_of(Core *c, PyObject *rule) {
    size_t i = ptr_hash(rule) & c->tab_mask;
    while (c->tab_keys[i] != NULL) {
        if (c->tab_keys[i] == rule) return &c->info[c->tab_vals[i]];
        i = (i + 1) & c->tab_mask;
    }
    PyErr_SetString(PyExc_KeyError, "urlcore: a rule the core was not built with");
    return NULL;
}

/* -- small string helpers (any str kind) -------------------------------------------------------- */

static int has_char_in(PyObject *s, Py_ssize_t a, Py_ssize_t b, Py_UCS4 x, Py_UCS4 y) {
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = a; i < b; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch == x || ch == y) return 1;
    }
    return 0;
}

/* `s` starts (at_end 0) or ends (1) with one of the strings of tuple `texts`. */
static int edge_any(PyObject *s, PyObject *texts, int at_end) {
    Py_ssize_t n = PyTuple_GET_SIZE(texts), len = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t r = PyUnicode_Tailmatch(s, PyTuple_GET_ITEM(texts, i), 0, len, at_end ? 1 : -1);
        if (r != 0) return (int)r; /* 1, or -1 on error */
    }
    return 0;
}

static int contains_any(PyObject *s, PyObject *texts) {
    Py_ssize_t n = PyTuple_GET_SIZE(texts), len = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t r = PyUnicode_Find(s, PyTuple_GET_ITEM(texts, i), 0, len, 1);
        if (r == -2) return -1;
        if (r >= 0) return 1;
    }
    return 0;
}

static int text_key(Texts *t, Py_ssize_t i) {
    Py_ssize_t k = t->len[i];
    if (t->how == T_PREFIX) return k >= 2 ? (unsigned char)t->text[i][1] : -1;
    if (k < 1) return -1;
    return (unsigned char)t->text[i][t->how == T_SUFFIX ? k - 1 : 0];
}

static int texts_init(Texts *t, PyObject *tuple, int how) {
    t->n = PyTuple_GET_SIZE(tuple);
    t->how = how;
    size_t m = t->n ? (size_t)t->n : 1;
    t->text = PyMem_Calloc(m, sizeof(char *));
    t->len = PyMem_Calloc(m, sizeof(Py_ssize_t));
    t->order = PyMem_Calloc(m, sizeof(Py_ssize_t));
    t->shorts = PyMem_Calloc(m, sizeof(Py_ssize_t));
    if (t->text == NULL || t->len == NULL || t->order == NULL || t->shorts == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < t->n; i++) {
        PyObject *s = PyTuple_GET_ITEM(tuple, i);
        if (!PyUnicode_Check(s)) {
            PyErr_SetString(PyExc_TypeError, "urlcore: a gate's texts must be str");
            return -1;
        }
        if (!PyUnicode_IS_ASCII(s)) {
            PyMem_Free(t->text);
            t->text = NULL;
            return 0;
        }
        t->text[i] = (const char *)PyUnicode_DATA(s);
        t->len[i] = PyUnicode_GET_LENGTH(s);
    }
    Py_ssize_t count[257] = {0};
    for (Py_ssize_t i = 0; i < t->n; i++) {
        int key = text_key(t, i);
        if (key < 0)
            t->shorts[t->nshort++] = i;
        else
            count[key + 1]++;
    }
    for (int ch = 0; ch < 256; ch++) count[ch + 1] += count[ch];
    memcpy(t->start, count, sizeof count);
    for (Py_ssize_t i = 0; i < t->n; i++) {
        int key = text_key(t, i);
        if (key >= 0) t->order[count[key]++] = i;
    }
    if (how == T_CONTAINS) {
        if ((t->pairs = PyMem_Calloc(65536 / 8, 1)) == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < t->n; i++) {
            unsigned first = t->len[i] >= 1 ? (unsigned char)t->text[i][0] : 0;
            for (unsigned second = 0; second < 256; second++) {
                if (t->len[i] >= 2 && second != (unsigned char)t->text[i][1]) continue;
                unsigned k = first << 8 | second;
                t->pairs[k >> 3] |= (unsigned char)(1u << (k & 7));
            }
        }
    }
    return 0;
}

static void texts_free(Texts *t) {
    PyMem_Free(t->pairs);
    PyMem_Free(t->text);
    PyMem_Free(t->len);
    PyMem_Free(t->order);
    PyMem_Free(t->shorts);
}

/* Text i of t at p[at:] (which has `room` characters)? */
static int text_at(Texts *t, Py_ssize_t i, const char *p, Py_ssize_t room) {
    return t->len[i] <= room && memcmp(p, t->text[i], (size_t)t->len[i]) == 0;
}

/* edge_any and contains_any over one-byte text: plain byte compares (the texts are ASCII, so a
 * byte equals a character); the same answers, the str API for any other text. */
static int edge_texts(PyObject *s, Texts *t, PyObject *tuple, int at_end) {
    if (t->text == NULL || PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) return edge_any(s, tuple, at_end);
    const char *p = (const char *)PyUnicode_DATA(s);
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    int key = at_end ? (len >= 1 ? (unsigned char)p[len - 1] : -1) : (len >= 2 ? (unsigned char)p[1] : -1);
    if (key < 0) { /* too short for a key: try every text */
        for (Py_ssize_t i = 0; i < t->n; i++)
            if (t->len[i] <= len && text_at(t, i, at_end ? p + len - t->len[i] : p, t->len[i])) return 1;
        return 0;
    }
    for (Py_ssize_t j = 0; j < t->nshort; j++) {
        Py_ssize_t i = t->shorts[j];
        if (t->len[i] <= len && text_at(t, i, at_end ? p + len - t->len[i] : p, t->len[i])) return 1;
    }
    for (Py_ssize_t j = t->start[key]; j < t->start[key + 1]; j++) {
        Py_ssize_t i = t->order[j];
        if (t->len[i] <= len && text_at(t, i, at_end ? p + len - t->len[i] : p, t->len[i])) return 1;
    }
    return 0;
}

static int contains_texts(PyObject *s, Texts *t, PyObject *tuple) {
    if (t->text == NULL || PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) return contains_any(s, tuple);
    const char *p = (const char *)PyUnicode_DATA(s);
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    if (t->nshort > 0) return 1; /* an empty text is in every string */
    for (Py_ssize_t at = 0; at < len; at++) {
        if (at + 1 < len) { /* the last place has no pair: only a one-character text fits */
            unsigned k = (unsigned)(unsigned char)p[at] << 8 | (unsigned char)p[at + 1];
            if (!(t->pairs[k >> 3] & (1u << (k & 7)))) continue;
        }
        int key = (unsigned char)p[at];
        for (Py_ssize_t j = t->start[key]; j < t->start[key + 1]; j++)
            if (text_at(t, t->order[j], p + at, len - at)) return 1;
    }
    return 0;
}

static PyObject *make_tuple_of(PyObject *type, Py_ssize_t n, PyObject **items) {
    /* A NamedTuple instance without its Python __new__: what tuple.__new__(cls, items) makes. */
    PyObject *t = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, n);
    if (t == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(items[i]);
        PyTuple_SET_ITEM(t, i, items[i]);
    }
    return t;
}

/* -- splitting URLs: urls.parse_http ------------------------------------------------------------ */

static int label_char(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-';
}

static int ci_prefix(const char *p, Py_ssize_t n, const char *lit) {
    Py_ssize_t k = (Py_ssize_t)strlen(lit);
    if (n < k) return 0;
    for (Py_ssize_t i = 0; i < k; i++) {
        char ch = p[i];
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        if (ch != lit[i]) return 0;
    }
    return 1;
}

/* The general split (urls.parse_http itself): 1 split, 0 not an http(s) URL, -1 error. */
static int parse_py(Core *c, PyObject *s, U *u) {
    PyObject *url = PyObject_CallOneArg(c->py_parse, s);
    if (url == NULL) return -1;
    if (url == Py_None) {
        Py_DECREF(url);
        return 0;
    }
    if (!PyTuple_Check(url) || PyTuple_GET_SIZE(url) != 4) {
        Py_DECREF(url);
        PyErr_SetString(PyExc_TypeError, "urlcore: parse_http returned no Url");
        return -1;
    }
    u->raw = Py_NewRef(PyTuple_GET_ITEM(url, 0));
    u->host = Py_NewRef(PyTuple_GET_ITEM(url, 1));
    u->path = Py_NewRef(PyTuple_GET_ITEM(url, 2));
    u->query = Py_NewRef(PyTuple_GET_ITEM(url, 3));
    Py_DECREF(url);
    return 1;
}

/* urls.parse_http: the plain shape (urls._PLAIN: http(s), a host of [A-Za-z0-9-] labels, maybe a
 * port, then path, query, fragment) is split here; anything else goes to Python. */
static int parse_url(Core *c, PyObject *s, U *u) {
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "urlcore: a URL must be str");
        return -1;
    }
    if (!PyUnicode_IS_ASCII(s)) return parse_py(c, s, u);
    const char *p = (const char *)PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), a = 0, b = n;
    while (a < b && Py_UNICODE_ISSPACE((Py_UCS4)(unsigned char)p[a])) a++;
    while (b > a && Py_UNICODE_ISSPACE((Py_UCS4)(unsigned char)p[b - 1])) b--;
    Py_ssize_t i = a;
    int scheme = 0;
    if (ci_prefix(p + i, b - i, "https:")) {
        i += 6;
        scheme = 1;
    } else if (ci_prefix(p + i, b - i, "http:")) {
        i += 5;
        scheme = 1;
    }
    if (!(b - i >= 2 && p[i] == '/' && p[i + 1] == '/')) {
        /* No `//`: urls.unwrap_scheme and urls.split_http both need one somewhere. */
        if (memmem(p + a, (size_t)(b - a), "//", 2) == NULL) return 0;
        return parse_py(c, s, u);
    }
    Py_ssize_t j = i + 2, host0 = j;
    while (j < b && label_char((unsigned char)p[j])) j++;
    if (j == host0) return parse_py(c, s, u);
    while (j + 1 < b && p[j] == '.' && label_char((unsigned char)p[j + 1])) {
        j++;
        while (j < b && label_char((unsigned char)p[j])) j++;
    }
    Py_ssize_t host1 = j;
    if (j < b && p[j] == ':') {
        j++;
        while (j < b && p[j] >= '0' && p[j] <= '9') j++;
    }
    Py_ssize_t path0 = j;
    if (j < b && p[j] == '/')
        while (j < b && p[j] != '?' && p[j] != '#') j++;
    Py_ssize_t path1 = j, q0 = -1, q1 = -1;
    if (j < b && p[j] == '?') {
        q0 = ++j;
        while (j < b && p[j] != '#') j++;
        q1 = j;
    }
    if (!(j == b || p[j] == '#')) return parse_py(c, s, u);

    if (!scheme) {
        PyObject *text = PyUnicode_Substring(s, a, b);
        if (text == NULL) return -1;
        u->raw = PyUnicode_Concat(c->s_https, text);
        Py_DECREF(text);
    } else if (a == 0 && b == n) {
        u->raw = Py_NewRef(s);
    } else {
        u->raw = PyUnicode_Substring(s, a, b);
    }
    if (u->raw == NULL) goto fail;
    u->host = PyUnicode_New(host1 - host0, 127);
    if (u->host == NULL) goto fail;
    char *h = (char *)PyUnicode_DATA(u->host);
    for (Py_ssize_t k = host0; k < host1; k++) {
        char ch = p[k];
        h[k - host0] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    u->path = path1 > path0 ? PyUnicode_Substring(s, path0, path1) : Py_NewRef(c->s_slash);
    if (u->path == NULL) goto fail;
    u->query = q1 > q0 ? PyUnicode_Substring(s, q0, q1) : Py_NewRef(c->s_empty);
    if (u->query == NULL) goto fail;
    return 1;
fail:
    u_clear(u);
    return -1;
}

static PyObject *url_object(Core *c, U *u) {
    PyObject *items[4] = {u->raw, u->host, u->path, u->query};
    return make_tuple_of(c->url_type, 4, items);
}

static int extend(PyObject *list, PyObject *seq) {
    PyObject *fast = PySequence_Fast(seq, "urlcore: a host's rules must be a sequence");
    if (fast == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_Append(list, PySequence_Fast_GET_ITEM(fast, i)) < 0) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return 0;
}

/* -- the rules a URL may match: RuleSet.host_rules and the shape index's gate ------------------- */

static PyObject *host_rules(Core *c, PyObject *host) {
    PyObject *cached = PyDict_GetItemWithError(c->host_cache, host);
    if (cached != NULL) return Py_NewRef(cached);
    if (PyErr_Occurred()) return NULL;
    Py_ssize_t stack[16], *starts = stack, nstarts = 0, cut = PyUnicode_GET_LENGTH(host);
    PyObject *found = PyList_New(0), *suffix = NULL;
    if (found == NULL) return NULL;
    PyObject *exact = PyDict_GetItemWithError(c->by_host, host);
    if (exact == NULL && PyErr_Occurred()) goto fail;
    if (exact != NULL) {
        if (extend(found, exact) < 0) goto fail;
    }
    /* Only suffixes as long as some wildcard's can match: slicing at every dot of a hostile
     * host of 50,000 labels is quadratic. Nearest (longest) suffix first. */
    Py_ssize_t want = c->suffix_labels;
    if (want > 16 && (starts = PyMem_Malloc((size_t)want * sizeof(Py_ssize_t))) == NULL) {
        PyErr_NoMemory();
        starts = stack;
        goto fail;
    }
    while (nstarts < want) {
        Py_ssize_t dot = PyUnicode_FindChar(host, '.', 0, cut, -1);
        if (dot == -2) goto fail;
        if (dot == -1) break;
        starts[nstarts++] = dot + 1;
        cut = dot;
    }
    for (Py_ssize_t k = nstarts - 1; k >= 0; k--) {
        suffix = PyUnicode_Substring(host, starts[k], PyUnicode_GET_LENGTH(host));
        if (suffix == NULL) goto fail;
        PyObject *more = PyDict_GetItemWithError(c->by_suffix, suffix);
        Py_CLEAR(suffix);
        if (more == NULL && PyErr_Occurred()) goto fail;
        if (more != NULL) {
            if (extend(found, more) < 0) goto fail;
        }
    }
    if (starts != stack) PyMem_Free(starts);
    PyObject *result = PyList_AsTuple(found);
    Py_DECREF(found);
    if (result == NULL) return NULL;
    if (PyDict_GET_SIZE(c->host_cache) >= c->host_cache_size) PyDict_Clear(c->host_cache);
    if (PyDict_SetItem(c->host_cache, host, result) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
fail:
    if (starts != stack) PyMem_Free(starts);
    Py_XDECREF(suffix);
    Py_DECREF(found);
    return NULL;
}

/* May a host-less shape be about this path and query? (shapes.ShapeIndex.find's first test;
 * when it passes, ShapeIndex.find itself says which.) 1 yes, 0 no, -1 error. */
static int shape_gate(Core *c, PyObject *path, PyObject *query) {
    int r, q = PyUnicode_GET_LENGTH(query) > 0;
    if (c->g_always) return 1;
    if ((r = edge_texts(path, &c->t_path_prefixes, c->g_path_prefixes, 0)) != 0) return r;
    if ((r = edge_texts(path, &c->t_path_suffixes, c->g_path_suffixes, 1)) != 0) return r;
    if ((r = PyDict_Contains(c->g_path_exact, path)) != 0) return r;
    if (q && (r = PyDict_Contains(c->g_query_exact, query)) != 0) return r;
    if (q && (r = edge_texts(query, &c->t_query_prefixes, c->g_query_prefixes, 0)) != 0) return r;
    if (q && (r = edge_texts(query, &c->t_query_suffixes, c->g_query_suffixes, 1)) != 0) return r;
    if ((r = contains_texts(path, &c->t_path_contains, c->g_path_contains)) != 0) return r;
    if (q && (r = contains_texts(query, &c->t_query_contains, c->g_query_contains)) != 0) return r;
    return 0;
}

/* Does `value` pass a test of `kind` with `texts` (a small tuple: one item's alternatives)? */
static int item_test(PyObject *value, int kind, PyObject *texts) {
    return kind == T_CONTAINS ? contains_any(value, texts) : edge_any(value, texts, kind == T_SUFFIX);
}

static int add_hits(PyObject *hits, PyObject *entries) {
    /* entries: a list of (position, item) */
    Py_ssize_t n = PyList_GET_SIZE(entries);
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyList_Append(hits, PyList_GET_ITEM(entries, i)) < 0) return -1;
    return 0;
}

/* shapes.ShapeIndex.find(path, query) after its gate: the items whose literal test the path and
 * query pass, in the order they were given. */
static PyObject *shape_find(Core *c, PyObject *path, PyObject *query) {
    PyObject *hits = PyList_New(0), *found;
    if (hits == NULL) return NULL;
    if (add_hits(hits, PyTuple_GET_ITEM(c->shape_each, 6)) < 0) goto fail;
    PyObject *exact[2] = {c->g_path_exact, c->g_query_exact}, *key[2] = {path, query};
    for (int f = 0; f < 2; f++) {
        found = PyDict_GetItemWithError(exact[f], key[f]);
        if (found == NULL && PyErr_Occurred()) goto fail;
        if (found != NULL && extend(hits, found) < 0) goto fail;
    }
    Texts *all[6] = {&c->t_path_prefixes, &c->t_path_suffixes, &c->t_query_prefixes,
                     &c->t_query_suffixes, &c->t_path_contains, &c->t_query_contains};
    PyObject *tuples[6] = {c->g_path_prefixes, c->g_path_suffixes, c->g_query_prefixes,
                           c->g_query_suffixes, c->g_path_contains, c->g_query_contains};
    static const int kinds[6] = {T_PREFIX, T_SUFFIX, T_PREFIX, T_SUFFIX, T_CONTAINS, T_CONTAINS};
    for (int t = 0; t < 6; t++) {
        PyObject *value = t == 0 || t == 1 || t == 4 ? path : query;
        PyObject *each = PyTuple_GET_ITEM(c->shape_each, t);
        if (PyList_GET_SIZE(each) == 0) continue;
        int r = kinds[t] == T_CONTAINS ? contains_texts(value, all[t], tuples[t])
                                       : edge_texts(value, all[t], tuples[t], kinds[t] == T_SUFFIX);
        if (r < 0) goto fail;
        if (!r) continue;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(each); i++) {
            PyObject *entry = PyList_GET_ITEM(each, i); /* (alternatives, position, item) */
            int hit = item_test(value, kinds[t], PyTuple_GET_ITEM(entry, 0));
            if (hit < 0) goto fail;
            if (hit) {
                PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(entry, 1), PyTuple_GET_ITEM(entry, 2));
                if (pair == NULL || PyList_Append(hits, pair) < 0) {
                    Py_XDECREF(pair);
                    goto fail;
                }
                Py_DECREF(pair);
            }
        }
    }
    /* A stable sort by position (insertion: a handful of hits). */
    Py_ssize_t n = PyList_GET_SIZE(hits);
    PyObject **items = ((PyListObject *)hits)->ob_item;
    for (Py_ssize_t i = 1; i < n; i++) {
        PyObject *x = items[i];
        if (!PyTuple_Check(x) || PyTuple_GET_SIZE(x) != 2) {
            PyErr_SetString(PyExc_TypeError, "urlcore: a shape hit of the wrong form");
            goto fail;
        }
        Py_ssize_t px = PyLong_AsSsize_t(PyTuple_GET_ITEM(x, 0)), j = i;
        if (px == -1 && PyErr_Occurred()) goto fail;
        while (j > 0) {
            Py_ssize_t pj = PyLong_AsSsize_t(PyTuple_GET_ITEM(items[j - 1], 0));
            if (pj == -1 && PyErr_Occurred()) goto fail;
            if (pj <= px) break;
            items[j] = items[j - 1];
            j--;
        }
        items[j] = x;
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++)
        PyList_SET_ITEM(out, i, Py_NewRef(PyTuple_GET_ITEM(items[i], 1)));
    Py_DECREF(hits);
    return out;
fail:
    Py_DECREF(hits);
    return NULL;
}

/* The candidates of RuleSet.candidates as two sequences (host rules, shapes); *shaped may be
 * NULL. */
static int candidates(Core *c, U *u, PyObject **by_host, PyObject **shaped) {
    *shaped = NULL;
    *by_host = host_rules(c, u->host);
    if (*by_host == NULL) return -1;
    int g = shape_gate(c, u->path, u->query);
    if (g < 0) goto fail;
    if (g && (*shaped = shape_find(c, u->path, u->query)) == NULL) goto fail;
    return 0;
fail:
    Py_CLEAR(*by_host);
    Py_CLEAR(*shaped);
    return -1;
}

static int has_candidates(PyObject *by_host, PyObject *shaped) {
    return PyTuple_GET_SIZE(by_host) > 0 || (shaped != NULL && PyList_GET_SIZE(shaped) > 0);
}

static PyObject *s_search; /* "search" */

/* pattern.search(value): a new reference (a match, or None). `bound` caches the pattern's
 * `search` (looked up at the first call, which compiles a lazy pattern as the look-up always
 * did). */
static PyObject *search(PyObject *pattern, PyObject **bound, PyObject *value) {
    if (*bound == NULL && (*bound = PyObject_GetAttr(pattern, s_search)) == NULL) return NULL;
    return PyObject_CallOneArg(*bound, value);
}

/* Rule.matches_shape: 1, 0, -1 error. */
static int matches_shape(RuleInfo *r, U *u) {
    if (r->path_re != NULL) {
        PyObject *m = search(r->path_re, &r->path_search, u->path);
        if (m == NULL) return -1;
        int none = m == Py_None;
        Py_DECREF(m);
        if (none) return 0;
    }
    if (r->query_re != NULL) {
        PyObject *m = search(r->query_re, &r->query_search, u->query);
        if (m == NULL) return -1;
        int none = m == Py_None;
        Py_DECREF(m);
        if (none) return 0;
    }
    return 1;
}

/* RuleSet.first(candidates, url, ("link",)): the deciding link rule, NULL with *err 0 for none. */
static RuleInfo *first_link(Core *c, U *u, PyObject *by_host, PyObject *shaped, int *err) {
    RuleInfo *claimed = NULL;
    Py_ssize_t nh = PyTuple_GET_SIZE(by_host), ns = shaped ? PyList_GET_SIZE(shaped) : 0;
    *err = 0;
    for (Py_ssize_t k = 0; k < nh + ns; k++) {
        PyObject *rule = k < nh ? PyTuple_GET_ITEM(by_host, k) : PyList_GET_ITEM(shaped, k - nh);
        RuleInfo *r = info_of(c, rule);
        if (r == NULL) goto fail;
        int hit = 0;
        if (r->kind == K_LINK) {
            hit = matches_shape(r, u);
            if (hit < 0) goto fail;
        }
        if (hit) {
            if (r->has_hosts || claimed == NULL) return r;
            if (r->has_decode) return r; /* a host-less wrapper shape that unwraps the target */
        } else if (claimed == NULL && r->tracking_only) {
            claimed = r;
        }
    }
    return claimed;
fail:
    *err = 1;
    return NULL;
}

static int hexval(Py_UCS4 ch) {
    if (ch >= '0' && ch <= '9') return (int)(ch - '0');
    if (ch >= 'a' && ch <= 'f') return (int)(ch - 'a' + 10);
    if (ch >= 'A' && ch <= 'F') return (int)(ch - 'A' + 10);
    return -1;
}

/* urllib.parse.unquote (plus 0) or unquote_plus (plus 1) of s[a:b], for ASCII text: `%XX` with
 * two hex digits is a byte, any other `%` stays, and the bytes are read as UTF-8 with
 * replacement characters. Other text goes to Python. New reference. */
static PyObject *py_unquote, *py_unquote_plus; /* urllib.parse's, for text beyond ASCII */

static PyObject *unquote_range(PyObject *s, Py_ssize_t a, Py_ssize_t b, int plus) {
    if (!PyUnicode_IS_ASCII(s)) {
        PyObject *part = PyUnicode_Substring(s, a, b), *out;
        if (part == NULL) return NULL;
        out = PyObject_CallOneArg(plus ? py_unquote_plus : py_unquote, part);
        Py_DECREF(part);
        return out;
    }
    if (b <= a) return PyUnicode_Substring(s, a, a);
    const char *p = (const char *)PyUnicode_DATA(s);
    char stack[512], *buf = b - a <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc((size_t)(b - a));
    if (buf == NULL) return PyErr_NoMemory();
    Py_ssize_t n = 0;
    for (Py_ssize_t i = a; i < b; i++) {
        char ch = p[i];
        int hi, lo;
        if (ch == '%' && i + 2 < b && (hi = hexval((unsigned char)p[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)p[i + 2])) >= 0) {
            buf[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            buf[n++] = plus && ch == '+' ? ' ' : ch;
        }
    }
    PyObject *out = PyUnicode_DecodeUTF8(buf, n, "replace");
    if (buf != stack) PyMem_Free(buf);
    return out;
}

/* -- reading queries: Url.param and urls.query_keys --------------------------------------------- */

static PyObject *unquote_plus_range(Core *c, PyObject *s, Py_ssize_t a, Py_ssize_t b) {
    if (!has_char_in(s, a, b, '%', '+')) return PyUnicode_Substring(s, a, b);
    return unquote_range(s, a, b, 1);
}

/* The key of the `&`-separated pair [a, b) of `query`: new reference. */
static PyObject *pair_key(Core *c, PyObject *query, Py_ssize_t a, Py_ssize_t b, Py_ssize_t *eq) {
    Py_ssize_t e = PyUnicode_FindChar(query, '=', a, b, 1);
    if (e == -2) return NULL;
    *eq = e;
    return unquote_plus_range(c, query, a, e == -1 ? b : e);
}

/* Url.param(name): new reference, Py_None when absent. */
static PyObject *url_param(Core *c, PyObject *query, PyObject *name) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(query), a = 0;
    while (a <= len) {
        Py_ssize_t amp = PyUnicode_FindChar(query, '&', a, len, 1);
        if (amp == -2) return NULL;
        Py_ssize_t b = amp == -1 ? len : amp;
        if (b > a) {
            Py_ssize_t eq;
            PyObject *key = pair_key(c, query, a, b, &eq);
            if (key == NULL) return NULL;
            int same = PyUnicode_Compare(key, name) == 0;
            Py_DECREF(key);
            if (PyErr_Occurred()) return NULL;
            if (same) {
                if (eq == -1) return Py_NewRef(c->s_empty);
                return unquote_plus_range(c, query, eq + 1, b);
            }
        }
        a = b + 1;
    }
    Py_RETURN_NONE;
}

/* -- unwrapping links: RuleSet.unwrap and Decode.target ----------------------------------------- */

/* Decode.target: the decoded destination (new reference), Py_None when there is none. */
static PyObject *decode_target(Core *c, RuleInfo *r, U *u) {
    PyObject *text;
    if (r->d_param != NULL) {
        text = url_param(c, u->query, r->d_param);
    } else {
        PyObject *subject = r->d_source == 0 ? u->path : r->d_source == 1 ? u->query : u->raw;
        PyObject *m = search(r->d_re, &r->d_search, subject);
        if (m == NULL) return NULL;
        if (m == Py_None) {
            text = m;
        } else {
            text = PyObject_CallMethodOneArg(m, c->s_group, c->s_target);
            Py_DECREF(m);
        }
    }
    if (text == NULL) return NULL;
    int truth = PyObject_IsTrue(text);
    if (truth <= 0) {
        Py_DECREF(text);
        return truth < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *decoded;
    if (PyTuple_GET_SIZE(r->d_encodings) == 0) {
        decoded = text;
    } else if (r->d_percent && PyUnicode_Check(text)) {
        decoded = has_char_in(text, 0, PyUnicode_GET_LENGTH(text), '%', '%')
                      ? unquote_range(text, 0, PyUnicode_GET_LENGTH(text), 0)
                      : Py_NewRef(text);
        Py_DECREF(text);
        if (decoded == NULL) return NULL;
    } else {
        decoded = PyObject_CallFunctionObjArgs(
            c->py_decode, text, r->d_encodings, r->d_json_path, NULL);
        Py_DECREF(text);
        if (decoded == NULL) return NULL;
        if (decoded == Py_None) return decoded; /* DecodeError */
    }
    PyObject *stripped = PyObject_CallMethodNoArgs(decoded, c->s_strip);
    Py_DECREF(decoded);
    if (stripped == NULL) return NULL;
    U t = {0};
    int ok = parse_url(c, stripped, &t);
    u_clear(&t);
    if (ok <= 0) {
        Py_DECREF(stripped);
        return ok < 0 ? NULL : Py_NewRef(Py_None);
    }
    return stripped;
}

/* RuleSet.unwrap: *chain a new tuple of the wrapper rules met, *dest the innermost decoded
 * target (new reference, Py_None when there is none). The RuleSet's own cache is read and
 * filled: cleaning asks again. */
static int unwrap(Core *c, U *url, PyObject **chain, PyObject **dest) {
    PyObject *cached = PyDict_GetItemWithError(c->unwrap_cache, url->raw);
    if (cached != NULL) {
        *chain = Py_NewRef(PyTuple_GET_ITEM(cached, 0));
        *dest = Py_NewRef(PyTuple_GET_ITEM(cached, 1));
        return 0;
    }
    if (PyErr_Occurred()) return -1;
    PyObject *rules = PyList_New(0);
    if (rules == NULL) return -1;
    PyObject *destination = Py_NewRef(Py_None);
    U cur = {Py_NewRef(url->raw), Py_NewRef(url->host), Py_NewRef(url->path),
             Py_NewRef(url->query)};
    for (Py_ssize_t depth = 0; depth < c->max_unwrap_depth; depth++) {
        PyObject *by_host, *shaped;
        if (candidates(c, &cur, &by_host, &shaped) < 0) goto fail;
        int err;
        RuleInfo *r = first_link(c, &cur, by_host, shaped, &err);
        Py_DECREF(by_host);
        Py_XDECREF(shaped);
        if (err) goto fail;
        if (r == NULL) break;
        if (PyList_Append(rules, r->rule) < 0) goto fail;
        if (!r->has_decode) break;
        PyObject *target = decode_target(c, r, &cur);
        if (target == NULL) goto fail;
        if (target == Py_None) {
            Py_DECREF(target);
            break;
        }
        Py_SETREF(destination, target);
        U nxt = {0};
        int ok = parse_url(c, target, &nxt);
        if (ok < 0) goto fail;
        if (ok == 0) break;
        u_clear(&cur);
        cur = nxt;
    }
    u_clear(&cur);
    *chain = PyList_AsTuple(rules);
    Py_DECREF(rules);
    if (*chain == NULL) {
        Py_DECREF(destination);
        return -1;
    }
    *dest = destination;
    if (PyUnicode_GET_LENGTH(url->raw) <= c->unwrap_cache_longest) {
        if (PyDict_GET_SIZE(c->unwrap_cache) >= c->unwrap_cache_size)
            PyDict_Clear(c->unwrap_cache);
        PyObject *entry = PyTuple_Pack(2, *chain, destination);
        if (entry == NULL || PyDict_SetItem(c->unwrap_cache, url->raw, entry) < 0) {
            Py_XDECREF(entry);
            Py_CLEAR(*chain);
            Py_CLEAR(*dest);
            return -1;
        }
        Py_DECREF(entry);
    }
    return 0;
fail:
    u_clear(&cur);
    Py_DECREF(rules);
    Py_DECREF(destination);
    return -1;
}

/* -- findings: detect._Collector ---------------------------------------------------------------- */

typedef struct {
    PyObject *found;  /* (kind, key) -> Finding */
    PyObject *domain; /* the sender's registrable domain, "" for none */
} Out;

static int add(Out *o, PyObject *kind, PyObject *key, PyObject *finding) {
    PyObject *k = PyTuple_Pack(2, kind, key);
    if (k == NULL) return -1;
    PyObject *r = PyDict_SetDefault(o->found, k, finding);
    Py_DECREF(k);
    return r == NULL ? -1 : 0;
}

/* _Collector.party: the sender's domain is registrable, so "same registrable domain" is a
 * suffix test. Borrowed. */
static PyObject *party(Core *c, Out *o, PyObject *host) {
    Py_ssize_t dl = PyUnicode_GET_LENGTH(o->domain), hl = PyUnicode_GET_LENGTH(host);
    if (dl == 0) return c->party_third;
    if (hl == dl) return PyUnicode_Compare(host, o->domain) == 0 ? c->party_first : c->party_third;
    if (hl > dl && PyUnicode_ReadChar(host, hl - dl - 1) == '.' &&
        PyUnicode_Tailmatch(host, o->domain, hl - dl, hl, 1) == 1)
        return c->party_first;
    return c->party_third;
}

static PyObject *finding(Core *c, PyObject *kind, PyObject *rule, PyObject *tracker,
                         PyObject *category, PyObject *url, PyObject *destination,
                         PyObject *element, PyObject *params, PyObject *host, PyObject *party_) {
    PyObject *items[15] = {kind,    c->conf_known, rule,     tracker, category,
                           url,     destination,   Py_None,  Py_None, element,
                           params,  host,          party_,   Py_None, Py_None};
    return make_tuple_of(c->finding_type, 15, items);
}

/* The rule that makes query parameter `name` a tracking one (its exact name, else the first
 * prefix it starts with, as RuleSet.param_matches reads them), borrowed; NULL without one, or
 * with an exception set. */
static PyObject *param_rule(Core *c, PyObject *name) {
    PyObject *rule = PyDict_GetItemWithError(c->exact_params, name);
    if (rule != NULL || PyErr_Occurred()) return rule;
    Py_ssize_t nprefix = PyTuple_GET_SIZE(c->prefix_rules);
    for (Py_ssize_t k = 0; k < nprefix; k++) {
        PyObject *pair = PyTuple_GET_ITEM(c->prefix_rules, k);
        Py_ssize_t m = PyUnicode_Tailmatch(name, PyTuple_GET_ITEM(pair, 0), 0,
                                           PyUnicode_GET_LENGTH(name), -1);
        if (m < 0) return NULL;
        if (m) return PyTuple_GET_ITEM(pair, 1);
    }
    return NULL;
}

/* The tracking parameters among the query's names, grouped by the rule that defines them
 * (RuleSet.param_matches), each a `param` finding. */
static int params(Core *c, Out *o, U *t, PyObject *element) {
    PyObject *groups = PyDict_New(); /* rule id -> (rule, set of names), in first-seen order */
    if (groups == NULL) return -1;
    PyObject *query = t->query;
    Py_ssize_t len = PyUnicode_GET_LENGTH(query), a = 0;
    while (a <= len) {
        Py_ssize_t amp = PyUnicode_FindChar(query, '&', a, len, 1);
        if (amp == -2) goto fail;
        Py_ssize_t b = amp == -1 ? len : amp, eq;
        if (b > a) {
            PyObject *name = pair_key(c, query, a, b, &eq);
            if (name == NULL) goto fail;
            PyObject *rule = param_rule(c, name);
            if (rule == NULL && PyErr_Occurred()) {
                Py_DECREF(name);
                goto fail;
            }
            if (rule != NULL) {
                RuleInfo *r = info_of(c, rule);
                PyObject *entry = r ? PyDict_GetItemWithError(groups, r->id) : NULL;
                if (entry == NULL) {
                    PyObject *fresh = NULL;
                    if (r == NULL || PyErr_Occurred() || (fresh = PySet_New(NULL)) == NULL ||
                        (entry = PyTuple_Pack(2, rule, fresh)) == NULL ||
                        PyDict_SetItem(groups, r->id, entry) < 0) {
                        Py_XDECREF(fresh);
                        Py_XDECREF(entry);
                        Py_DECREF(name);
                        goto fail;
                    }
                    Py_DECREF(fresh);
                    Py_DECREF(entry);
                }
                if (PySet_Add(PyTuple_GET_ITEM(entry, 1), name) < 0) {
                    Py_DECREF(name);
                    goto fail;
                }
            }
            Py_DECREF(name);
        }
        a = b + 1;
    }
    Py_ssize_t pos = 0;
    PyObject *rid, *entry;
    PyObject *prt = PyDict_GET_SIZE(groups) ? party(c, o, t->host) : NULL;
    while (PyDict_Next(groups, &pos, &rid, &entry)) {
        PyObject *names = PyTuple_GET_ITEM(entry, 1);
        RuleInfo *r = info_of(c, PyTuple_GET_ITEM(entry, 0));
        if (r == NULL) goto fail;
        PyObject *sorted = PySequence_List(names);
        if (sorted == NULL) goto fail;
        if (PyList_Sort(sorted) < 0) {
            Py_DECREF(sorted);
            goto fail;
        }
        PyObject *tup = PyList_AsTuple(sorted);
        Py_DECREF(sorted);
        if (tup == NULL) goto fail;
        PyObject *head = PyUnicode_Concat(t->raw, c->s_nul);
        PyObject *key = head ? PyUnicode_Concat(head, r->service_id) : NULL;
        Py_XDECREF(head);
        PyObject *f = key ? finding(c, c->kind_param, r->id, r->tracker, r->category, t->raw,
                                    Py_None, element, tup, t->host, prt)
                          : NULL;
        Py_DECREF(tup);
        int bad = f == NULL || add(o, c->s_param, key, f) < 0;
        Py_XDECREF(key);
        Py_XDECREF(f);
        if (bad) goto fail;
    }
    Py_DECREF(groups);
    return 0;
fail:
    Py_DECREF(groups);
    return -1;
}

/* _Collector.link */
static int do_link(Core *c, Out *o, U *u, PyObject *element) {
    PyObject *chain, *dest;
    if (unwrap(c, u, &chain, &dest) < 0) return -1;
    int rc = -1;
    U t = {0};
    if (PyTuple_GET_SIZE(chain) > 0) {
        RuleInfo *r = info_of(c, PyTuple_GET_ITEM(chain, 0));
        if (r == NULL) goto done;
        PyObject *f = finding(c, c->kind_link, r->id, r->tracker, r->category, u->raw, dest,
                              element, c->empty_tuple, u->host, party(c, o, u->host));
        if (f == NULL) goto done;
        int bad = add(o, c->s_link, u->raw, f) < 0;
        Py_DECREF(f);
        if (bad) goto done;
    }
    PyObject *target = PyTuple_GET_SIZE(chain) > 0 ? dest : u->raw;
    if (target == Py_None) {
        rc = 0;
        goto done;
    }
    int same = target == u->raw;
    if (!same) {
        same = PyUnicode_Compare(target, u->raw) == 0;
        if (PyErr_Occurred()) goto done;
    }
    if (same) {
        t.raw = Py_NewRef(u->raw);
        t.host = Py_NewRef(u->host);
        t.path = Py_NewRef(u->path);
        t.query = Py_NewRef(u->query);
    } else {
        int ok = parse_url(c, target, &t);
        if (ok <= 0) {
            rc = ok;
            goto done;
        }
    }
    rc = PyUnicode_GET_LENGTH(t.query) ? params(c, o, &t, element) : 0;
done:
    u_clear(&t);
    Py_DECREF(chain);
    Py_DECREF(dest);
    return rc;
}

/* _Collector.load, for a load no rule may be about; the rest goes to `fallback(occ, url)`. */
static int do_load(Core *c, Out *o, U *u, PyObject *occ, PyObject *element, int heuristic,
                PyObject *fallback) {
    PyObject *by_host, *shaped;
    if (candidates(c, u, &by_host, &shaped) < 0) return -1;
    int any = has_candidates(by_host, shaped);
    Py_DECREF(by_host);
    Py_XDECREF(shaped);
    if (any || heuristic) {
        PyObject *url = url_object(c, u);
        if (url == NULL) return -1;
        PyObject *r = PyObject_CallFunctionObjArgs(fallback, occ, url, NULL);
        Py_DECREF(url);
        if (r == NULL) return -1;
        Py_DECREF(r);
        return 0;
    }
    PyObject *f = finding(c, c->kind_remote, c->builtin_remote, Py_None, Py_None, u->raw, Py_None,
                          element, c->empty_tuple, u->host, party(c, o, u->host));
    if (f == NULL) return -1;
    int rc = add(o, c->s_remote, u->raw, f);
    Py_DECREF(f);
    return rc;
}

/* -- the entry points --------------------------------------------------------------------------- */

static PyObject *occ_field(PyObject *occ, Py_ssize_t i, const char *name) {
    if (PyTuple_Check(occ) && PyTuple_GET_SIZE(occ) == 5) return Py_NewRef(PyTuple_GET_ITEM(occ, i));
    return PyObject_GetAttrString(occ, name);
}

/* Is `s` a `data:` URL (after the white space urls.parse_http strips, the scheme in either
 * case)? urls.parse_http answers None for every one (_PLAIN and split_http need `//` after the
 * scheme, and then an http one; no wrapping scheme starts with `d`), so the loop below passes
 * over it before it is hashed for the set of URLs seen or searched for a `//`: an inline
 * image's data: URL is hundreds of KB (~90% of the URL text of the real tracking mail).
 * Leaving it out of the set changes nothing: the sets only stop a URL from being read twice. */
static int is_data_url(PyObject *s) {
    if (!PyUnicode_Check(s)) return 0;
    int kind = PyUnicode_KIND(s);
    const void *d = PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), i = 0;
    while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, d, i))) i++;
    if (n - i < 5) return 0;
    for (int k = 0; k < 5; k++) {
        Py_UCS4 ch = PyUnicode_READ(kind, d, i + k);
        if (ch >= 'A' && ch <= 'Z') ch += 'a' - 'A';
        if (ch != (Py_UCS4)"data:"[k]) return 0;
    }
    return 1;
}

/* One HTML part's references (html.scan_html's Occurrences), each distinct URL once per role,
 * as detect.detect_message's loop over them. */
static PyObject *Core_html(Core *c, PyObject *args) {
    PyObject *occs, *loads, *links, *found, *domain, *fallback;
    if (!PyArg_ParseTuple(args, "OO!O!O!UO:html", &occs, &PySet_Type, &loads, &PySet_Type, &links,
                          &PyDict_Type, &found, &domain, &fallback))
        return NULL;
    Out o = {found, domain};
    PyObject *it = PyObject_GetIter(occs);
    if (it == NULL) return NULL;
    PyObject *occ;
    while ((occ = PyIter_Next(it)) != NULL) {
        PyObject *url = NULL, *element = NULL, *is_load = NULL, *image = NULL, *shape = NULL;
        U u = {0};
        int rc = -1;
        if ((url = occ_field(occ, 0, "url")) == NULL) goto next;
        if ((is_load = occ_field(occ, 2, "load")) == NULL) goto next;
        int ld = PyObject_IsTrue(is_load);
        if (ld < 0) goto next;
        if (is_data_url(url)) {
            rc = 0;
            goto next;
        }
        PyObject *seen = ld ? loads : links;
        int dup = PySet_Contains(seen, url);
        if (dup != 0) {
            rc = dup < 0 ? -1 : 0;
            goto next;
        }
        if (PySet_Add(seen, url) < 0) goto next;
        int ok = parse_url(c, url, &u);
        if (ok <= 0) {
            rc = ok;
            goto next;
        }
        if ((element = occ_field(occ, 1, "element")) == NULL) goto next;
        if (ld) {
            if ((image = occ_field(occ, 3, "image")) == NULL) goto next;
            int heuristic = PyObject_IsTrue(image);
            if (heuristic > 0) {
                if ((shape = occ_field(occ, 4, "shape")) == NULL) goto next;
                heuristic = PyObject_IsTrue(shape);
            }
            if (heuristic < 0) goto next;
            rc = do_load(c, &o, &u, occ, element, heuristic, fallback);
        } else {
            rc = do_link(c, &o, &u, element);
        }
    next:
        u_clear(&u);
        Py_XDECREF(url);
        Py_XDECREF(element);
        Py_XDECREF(is_load);
        Py_XDECREF(image);
        Py_XDECREF(shape);
        Py_DECREF(occ);
        if (rc < 0) {
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* The links of a text part (detect.text_urls), as detect_message's loop over them. */
static PyObject *Core_text(Core *c, PyObject *args) {
    PyObject *urls, *links, *found, *domain;
    if (!PyArg_ParseTuple(args, "OO!O!U:text", &urls, &PySet_Type, &links, &PyDict_Type, &found,
                          &domain))
        return NULL;
    Out o = {found, domain};
    PyObject *it = PyObject_GetIter(urls), *raw;
    if (it == NULL) return NULL;
    while ((raw = PyIter_Next(it)) != NULL) {
        int rc = PySet_Contains(links, raw);
        if (rc == 0) rc = PySet_Add(links, raw);
        if (rc == 0) {
            U u = {0};
            rc = parse_url(c, raw, &u);
            if (rc > 0) rc = do_link(c, &o, &u, c->s_text_plain);
            u_clear(&u);
        } else if (rc > 0) {
            rc = 0;
        }
        Py_DECREF(raw);
        if (rc < 0) {
            Py_DECREF(it);
            return NULL;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* parse_http through the core's split (for the differential tests). */
static PyObject *Core_parse(Core *c, PyObject *s) {
    U u = {0};
    int ok = parse_url(c, s, &u);
    if (ok < 0) return NULL;
    if (ok == 0) Py_RETURN_NONE;
    PyObject *url = url_object(c, &u);
    u_clear(&u);
    return url;
}

/* The shape index's gate through the core (for the differential tests): a bool. */
static PyObject *Core_gate(Core *c, PyObject *args) {
    PyObject *path, *query;
    if (!PyArg_ParseTuple(args, "UU:gate", &path, &query)) return NULL;
    int r = shape_gate(c, path, query);
    if (r < 0) return NULL;
    return PyBool_FromLong(r);
}

/* ShapeIndex.find through the core (for the differential tests). */
static PyObject *Core_shapes(Core *c, PyObject *args) {
    PyObject *path, *query;
    if (!PyArg_ParseTuple(args, "UU:shapes", &path, &query)) return NULL;
    int r = shape_gate(c, path, query);
    if (r < 0) return NULL;
    return r ? shape_find(c, path, query) : PyList_New(0);
}

/* RuleSet.unwrap through the core (for the differential tests): (list of rules, destination). */
static PyObject *Core_unwrap(Core *c, PyObject *url) {
    if (!PyTuple_Check(url) || PyTuple_GET_SIZE(url) != 4) {
        PyErr_SetString(PyExc_TypeError, "urlcore: unwrap takes a Url");
        return NULL;
    }
    U u = {PyTuple_GET_ITEM(url, 0), PyTuple_GET_ITEM(url, 1), PyTuple_GET_ITEM(url, 2),
           PyTuple_GET_ITEM(url, 3)};
    PyObject *chain, *dest;
    if (unwrap(c, &u, &chain, &dest) < 0) return NULL;
    PyObject *list = PySequence_List(chain);
    Py_DECREF(chain);
    if (list == NULL) {
        Py_DECREF(dest);
        return NULL;
    }
    PyObject *r = PyTuple_Pack(2, list, dest);
    Py_DECREF(list);
    Py_DECREF(dest);
    return r;
}

/* The cleaning planner's step after unwrapping (guard/clean/message.py `tracking_params`, the
 * Python reference, which tests/test_urlcore.py compares with this): the tracking parameters of
 * `url`'s query grouped by rule as RuleSet.param_matches(query_keys(url.query)) groups them, and
 * drop_params(text, names) of all their names. None when the query holds none; else (the names
 * sorted, the rules' ids in first-seen order, `text` without those pairs). Self-contained: it
 * shares only the look-up tables and pair_key with detection's `params`. */
/* `text` with text[q:head] (the "?" and the query's pairs) replaced by "?" and the `kept` pairs
   joined by "&", or by nothing when no pair is left (`any` false): what both strip_params paths
   make of what they keep. */
static PyObject *rejoin(Core *c, PyObject *text, Py_ssize_t q, Py_ssize_t head, Py_ssize_t n,
                        PyObject *kept, int any) {
    PyObject *joined = NULL, *path = NULL, *tail = NULL, *parts = NULL, *out = NULL;
    if ((path = PyUnicode_Substring(text, 0, q)) != NULL &&
        (tail = PyUnicode_Substring(text, head, n)) != NULL) {
        if (any) {
            if ((joined = PyUnicode_Join(c->s_amp, kept)) != NULL)
                parts = PyTuple_Pack(4, path, c->s_question, joined, tail);
        } else {
            parts = PyTuple_Pack(2, path, tail);
        }
        if (parts != NULL) out = PyUnicode_Join(c->s_empty, parts);
    }
    Py_XDECREF(joined);
    Py_XDECREF(path);
    Py_XDECREF(tail);
    Py_XDECREF(parts);
    return out;
}

/* drop_params(text, names): `text` without the query pairs whose name is one of `names` (a
 * set), or of the `n_names` in `listed` when `names` is NULL; the query is what follows the
 * first `?` before the first `#`. A new reference, or NULL with an exception. */
static PyObject *drop_named(Core *c, PyObject *text, PyObject *names, PyObject *const *listed,
                            Py_ssize_t n_names) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), eq;
    Py_ssize_t hash = PyUnicode_FindChar(text, '#', 0, n, 1);
    if (hash == -2) return NULL;
    Py_ssize_t head = hash == -1 ? n : hash;
    Py_ssize_t q = PyUnicode_FindChar(text, '?', 0, head, 1);
    if (q == -2) return NULL;
    if (q == -1) return Py_NewRef(text);
    PyObject *kept = PyList_New(0), *out = NULL;
    if (kept == NULL) return NULL;
    int any = 0;
    for (Py_ssize_t a = q + 1; a <= head;) {
        Py_ssize_t amp = PyUnicode_FindChar(text, '&', a, head, 1);
        if (amp == -2) goto done;
        Py_ssize_t b = amp == -1 ? head : amp;
        PyObject *name = pair_key(c, text, a, b, &eq);
        if (name == NULL) goto done;
        int drop = 0;
        if (names != NULL) {
            drop = PySet_Contains(names, name);
        } else {
            for (Py_ssize_t i = 0; i < n_names && drop == 0; i++)
                drop = PyObject_RichCompareBool(listed[i], name, Py_EQ);
        }
        Py_DECREF(name);
        if (drop < 0) goto done;
        if (!drop) {
            PyObject *pair = PyUnicode_Substring(text, a, b);
            int bad = pair == NULL || PyList_Append(kept, pair) < 0;
            Py_XDECREF(pair);
            if (bad) goto done;
            any |= b > a;
        }
        a = b + 1;
    }
    out = rejoin(c, text, q, head, n, kept, any);
done:
    Py_DECREF(kept);
    return out;
}

static PyObject *strip_params_any(Core *c, PyObject *query, PyObject *text) {
    PyObject *groups = NULL, *names = NULL, *sorted = NULL, *ids = NULL;
    PyObject *out = NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(query), a = 0, eq;
    if ((groups = PyDict_New()) == NULL || (names = PySet_New(NULL)) == NULL) goto done;
    while (a <= len) {
        Py_ssize_t amp = PyUnicode_FindChar(query, '&', a, len, 1);
        if (amp == -2) goto done;
        Py_ssize_t b = amp == -1 ? len : amp;
        if (b > a) { /* query_keys skips empty pairs */
            PyObject *name = pair_key(c, query, a, b, &eq);
            if (name == NULL) goto done;
            PyObject *rule = param_rule(c, name);
            RuleInfo *r = rule != NULL && !PyErr_Occurred() ? info_of(c, rule) : NULL;
            int bad = PyErr_Occurred() != NULL;
            if (!bad && r != NULL)
                bad = PyDict_SetItem(groups, r->id, Py_None) < 0 || PySet_Add(names, name) < 0;
            Py_DECREF(name);
            if (bad) goto done;
        }
        a = b + 1;
    }
    if (PySet_GET_SIZE(names) == 0) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    /* The ids: a dict keeps the first-seen order of its keys (param_matches's `found`). */
    if ((sorted = PySequence_List(names)) == NULL || PyList_Sort(sorted) < 0 ||
        (ids = PySequence_Tuple(groups)) == NULL)
        goto done;
    PyObject *stripped = drop_named(c, text, names, NULL, 0);
    if (stripped == NULL) goto done;
    PyObject *params = PyList_AsTuple(sorted);
    if (params != NULL) out = PyTuple_Pack(3, params, ids, stripped);
    Py_XDECREF(params);
    Py_DECREF(stripped);
done:
    Py_XDECREF(groups);
    Py_XDECREF(names);
    Py_XDECREF(sorted);
    Py_XDECREF(ids);
    return out;
}

/* strip_params_any's answer for a query of at most STRIP_SMALL tracking names and rules (every
 * link of a newsletter): the names and ids kept in arrays, sorted and looked up by comparison,
 * instead of a set, a dict and the lists and tuples made of them (~2,000 instructions a link).
 * The same answer; strip_params_any where there are more (tests/test_clean_strip.py compares
 * the planner's answers with the Python reference). */
#define STRIP_SMALL 16

static PyObject *strip_params(Core *c, PyObject *query, PyObject *text) {
    PyObject *names[STRIP_SMALL], *ids[STRIP_SMALL];
    Py_ssize_t n_names = 0, n_ids = 0;
    PyObject *out = NULL;
    Py_ssize_t len = PyUnicode_GET_LENGTH(query), a = 0, eq;
    int overflow = 0;
    while (a <= len && !overflow) {
        Py_ssize_t amp = PyUnicode_FindChar(query, '&', a, len, 1);
        if (amp == -2) goto done;
        Py_ssize_t b = amp == -1 ? len : amp;
        if (b > a) { /* query_keys skips empty pairs */
            PyObject *name = pair_key(c, query, a, b, &eq);
            if (name == NULL) goto done;
            PyObject *rule = param_rule(c, name);
            RuleInfo *r = rule != NULL && !PyErr_Occurred() ? info_of(c, rule) : NULL;
            if (PyErr_Occurred()) {
                Py_DECREF(name);
                goto done;
            }
            if (r != NULL) {
                int seen = 0;
                for (Py_ssize_t i = 0; i < n_ids && !seen; i++) {
                    int same = PyObject_RichCompareBool(ids[i], r->id, Py_EQ);
                    if (same < 0) {
                        Py_DECREF(name);
                        goto done;
                    }
                    seen = same;
                }
                if (!seen) {
                    if (n_ids == STRIP_SMALL) overflow = 1;
                    else ids[n_ids++] = Py_NewRef(r->id);
                }
                seen = 0;
                for (Py_ssize_t i = 0; i < n_names && !seen; i++) {
                    int same = PyObject_RichCompareBool(names[i], name, Py_EQ);
                    if (same < 0) {
                        Py_DECREF(name);
                        goto done;
                    }
                    seen = same;
                }
                if (!seen) {
                    if (n_names == STRIP_SMALL) overflow = 1;
                    else names[n_names++] = Py_NewRef(name);
                }
            }
            Py_DECREF(name);
        }
        a = b + 1;
    }
    if (overflow) {
        out = strip_params_any(c, query, text);
        goto done;
    }
    if (n_names == 0) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    /* The names sorted as list.sort sorts str (by code point, PyUnicode_Compare's order). */
    for (Py_ssize_t i = 1; i < n_names; i++) {
        PyObject *x = names[i];
        Py_ssize_t j = i;
        while (j > 0) {
            int cmp = PyUnicode_Compare(names[j - 1], x);
            if (cmp == -1 && PyErr_Occurred()) goto done;
            if (cmp <= 0) break;
            names[j] = names[j - 1];
            j--;
        }
        names[j] = x;
    }
    PyObject *stripped = drop_named(c, text, NULL, names, n_names);
    if (stripped == NULL) goto done;
    PyObject *params = PyTuple_New(n_names), *id_tuple = PyTuple_New(n_ids);
    if (params != NULL && id_tuple != NULL) {
        for (Py_ssize_t i = 0; i < n_names; i++) PyTuple_SET_ITEM(params, i, Py_NewRef(names[i]));
        for (Py_ssize_t i = 0; i < n_ids; i++) PyTuple_SET_ITEM(id_tuple, i, Py_NewRef(ids[i]));
        out = PyTuple_Pack(3, params, id_tuple, stripped);
    }
    Py_XDECREF(params);
    Py_XDECREF(id_tuple);
    Py_DECREF(stripped);
done:
    for (Py_ssize_t i = 0; i < n_names; i++) Py_DECREF(names[i]);
    for (Py_ssize_t i = 0; i < n_ids; i++) Py_DECREF(ids[i]);
    return out;
}

static PyObject *Core_strip_params(Core *c, PyObject *args) {
    PyObject *url, *text;
    if (!PyArg_ParseTuple(args, "O!U", &PyTuple_Type, &url, &text)) return NULL;
    if (PyTuple_GET_SIZE(url) != 4 || !PyUnicode_Check(PyTuple_GET_ITEM(url, 3))) {
        PyErr_SetString(PyExc_TypeError, "urlcore: strip_params takes a Url");
        return NULL;
    }
    return strip_params(c, PyTuple_GET_ITEM(url, 3), text);
}

/* message._safe_url leaves `s` as it is: no whitespace (str.isspace, the regex's \s), quote,
 * `<`, `>` or control character. */
static int url_is_safe(PyObject *s) {
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 0x21 || ch == 0x7f || ch == '"' || ch == '\'' || ch == '<' || ch == '>' ||
            (ch >= 0x80 && Py_UNICODE_ISSPACE(ch)))
            return 0;
    }
    return 1;
}

/* decide(url, security category or None): message.decide_link's answer as a tuple of
 * _LinkDecision's fields, for the common links: none wrapped, or wrapped by rules none of which is
 * the security category (None: the policy unwraps those too) whose decoded target is not wrapped
 * again, nor needs percent-encoding; None for every other link (decide_link, the reference,
 * decides it: tests/test_clean_strip.py compares the two). */
/* `own`: `u` is the split of its own raw (urls.parse_http(u.raw) gives `u` again, as it does for
 * every raw the split makes), so an unwrapped link's target, its raw, is not split again. */
static PyObject *decide_url(Core *c, U *u_, PyObject *security, int own) {
    U u = *u_;
    PyObject *chain, *dest, *out = NULL, *found = NULL, *ids = NULL;
    if (unwrap(c, &u, &chain, &dest) < 0) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(chain);
    U t = {0};
    if (n > 0 && security != Py_None) {
        for (Py_ssize_t i = 0; i < n; i++) {
            RuleInfo *r = info_of(c, PyTuple_GET_ITEM(chain, i));
            if (r == NULL) goto done;
            int same = PyUnicode_Compare(r->category, security) == 0;
            if (PyErr_Occurred()) goto done;
            if (same) {
                out = Py_NewRef(Py_None); /* a security wrapper: Python cuts the chain */
                goto done;
            }
        }
    }
    if (n > 0 && dest == Py_None) { /* an opaque wrapper */
        out = PyTuple_Pack(6, Py_None, Py_False, c->empty_tuple, c->empty_tuple,
                            Py_True, Py_False);
        goto done;
    }
    PyObject *target = n > 0 ? dest : u.raw;
    int ok;
    if (n == 0 && own) {
        t.raw = Py_NewRef(u.raw);
        t.host = Py_NewRef(u.host);
        t.path = Py_NewRef(u.path);
        t.query = Py_NewRef(u.query);
        ok = 1;
    } else {
        ok = parse_url(c, target, &t);
    }
    if (ok < 0) goto done;
    if (ok == 0) {
        out = PyTuple_Pack(6, Py_None, Py_False, c->empty_tuple, c->empty_tuple,
                            Py_False, Py_False);
        goto done;
    }
    if (n > 0) {
        PyObject *inner, *inner_dest;
        if (unwrap(c, &t, &inner, &inner_dest) < 0) goto done;
        int wrapped = PyTuple_GET_SIZE(inner) > 0;
        Py_DECREF(inner);
        Py_DECREF(inner_dest);
        if (wrapped) {
            out = Py_NewRef(Py_None); /* wrapped again: decide_link recurses */
            goto done;
        }
    }
    if (PyUnicode_GET_LENGTH(t.query) > 0) {
        found = strip_params(c, t.query, target);
        if (found == NULL) goto done;
    }
    if (found == NULL || found == Py_None) {
        if (n == 0) {
            out = PyTuple_Pack(6, Py_None, Py_False, c->empty_tuple, c->empty_tuple,
                                Py_False, Py_False);
            goto done;
        }
        Py_XSETREF(found, PyTuple_Pack(3, c->empty_tuple, c->empty_tuple, target));
        if (found == NULL) goto done;
    }
    PyObject *stripped = PyTuple_GET_ITEM(found, 2);
    if (!url_is_safe(stripped)) {
        out = Py_NewRef(Py_None); /* _safe_url percent-encodes it */
        goto done;
    }
    if ((ids = PyTuple_New(n + PyTuple_GET_SIZE(PyTuple_GET_ITEM(found, 1)))) == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        RuleInfo *r = info_of(c, PyTuple_GET_ITEM(chain, i));
        if (r == NULL) goto done;
        PyTuple_SET_ITEM(ids, i, Py_NewRef(r->id));
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(PyTuple_GET_ITEM(found, 1)); i++)
        PyTuple_SET_ITEM(ids, n + i, Py_NewRef(PyTuple_GET_ITEM(PyTuple_GET_ITEM(found, 1), i)));
    int same = PyUnicode_Compare(stripped, u.raw) == 0;
    if (PyErr_Occurred()) goto done;
    out = PyTuple_Pack(6, same ? Py_None : stripped, n > 0 ? Py_True : Py_False,
                        PyTuple_GET_ITEM(found, 0), ids, Py_False, Py_False);
done:
    u_clear(&t);
    Py_XDECREF(found);
    Py_XDECREF(ids);
    Py_DECREF(chain);
    Py_DECREF(dest);
    return out;
}

static PyObject *Core_decide(Core *c, PyObject *args) {
    PyObject *url, *security;
    if (!PyArg_ParseTuple(args, "O!O", &PyTuple_Type, &url, &security)) return NULL;
    if (PyTuple_GET_SIZE(url) != 4) {
        PyErr_SetString(PyExc_TypeError, "urlcore: decide takes a Url");
        return NULL;
    }
    U u = {PyTuple_GET_ITEM(url, 0), PyTuple_GET_ITEM(url, 1), PyTuple_GET_ITEM(url, 2),
           PyTuple_GET_ITEM(url, 3)};
    return decide_url(c, &u, security, 0);
}

/* decide_links(raws, security category or None, decision type): the planner's decisions of a
 * message's links at once (guard/clean/message.py `_Planner`): each raw split (urls.parse_http's
 * answer: one that does not split has no decision) and decided as `decide` decides it, made a
 * `decision type` (a tuple subclass: message._LinkDecision) of the fields. Returns (a dict raw ->
 * decision, a list of the raws whose decision Python makes: where `decide` gives None). */
static PyObject *Core_decide_links(Core *c, PyObject *args) {
    PyObject *raws, *security, *type;
    if (!PyArg_ParseTuple(args, "OOO!", &raws, &security, &PyType_Type, &type)) return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "urlcore: decide_links makes tuple subclasses");
        return NULL;
    }
    PyObject *it = PyObject_GetIter(raws), *decided = PyDict_New(), *left = PyList_New(0);
    PyObject *raw, *out = NULL;
    if (it == NULL || decided == NULL || left == NULL) goto done;
    while ((raw = PyIter_Next(it)) != NULL) {
        U u = {0};
        int ok = parse_url(c, raw, &u), bad = ok < 0;
        if (ok > 0) {
            PyObject *fields = decide_url(c, &u, security, 1);
            if (fields == NULL) {
                bad = 1;
            } else if (fields == Py_None) {
                bad = PyList_Append(left, raw) < 0;
            } else {
                /* As tuple.__new__(type, fields) makes it (tuple_subtype_new). */
                Py_ssize_t k = PyTuple_GET_SIZE(fields);
                PyObject *d = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, k);
                for (Py_ssize_t j = 0; d != NULL && j < k; j++)
                    PyTuple_SET_ITEM(d, j, Py_NewRef(PyTuple_GET_ITEM(fields, j)));
                bad = d == NULL || PyDict_SetItem(decided, raw, d) < 0;
                Py_XDECREF(d);
            }
            Py_XDECREF(fields);
        }
        u_clear(&u);
        Py_DECREF(raw);
        if (bad) goto done;
    }
    if (!PyErr_Occurred()) out = PyTuple_Pack(2, decided, left);
done:
    Py_XDECREF(it);
    Py_XDECREF(decided);
    Py_XDECREF(left);
    return out;
}

/* plan(findings, removed kinds, link kinds): the cleaning planner's reading of a message's
 * findings (guard/clean/message.py `_Planner.__init__`, the Python reference: tests/test_clean.py
 * compares them): (the first finding of each URL whose kind is one of `removed`, by URL; the URLs
 * of the findings whose kind is one of `links`), findings without a URL skipped. A finding is a
 * model.Finding: a tuple whose items 0 and 5 are its kind and URL. */
static PyObject *Core_plan(Core *c, PyObject *args) {
    (void)c;
    PyObject *findings, *removed, *links;
    if (!PyArg_ParseTuple(args, "OO!O!", &findings, &PyTuple_Type, &removed, &PyTuple_Type,
                          &links))
        return NULL;
    PyObject *seq = PySequence_Fast(findings, "urlcore: plan takes findings");
    if (seq == NULL) return NULL;
    PyObject *loads = PyDict_New(), *urls = PySet_New(NULL), *out = NULL;
    if (loads == NULL || urls == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = items[i];
        if (!PyTuple_Check(f) || PyTuple_GET_SIZE(f) < 6) {
            PyErr_SetString(PyExc_TypeError, "urlcore: plan takes findings");
            goto done;
        }
        PyObject *kind = PyTuple_GET_ITEM(f, 0), *url = PyTuple_GET_ITEM(f, 5);
        int some = PyObject_IsTrue(url);
        if (some < 0) goto done;
        if (!some) continue;
        int in = PySequence_Contains(removed, kind);
        if (in < 0) goto done;
        if (in) {
            if (PyDict_SetDefault(loads, url, f) == NULL) goto done;
            continue;
        }
        if ((in = PySequence_Contains(links, kind)) < 0) goto done;
        if (in && PySet_Add(urls, url) < 0) goto done;
    }
    out = PyTuple_Pack(2, loads, urls);
done:
    Py_DECREF(seq);
    Py_XDECREF(loads);
    Py_XDECREF(urls);
    return out;
}

/* -- construction ------------------------------------------------------------------------------- */

#define CORE_OBJECTS(X)                                                                          \
    X(url_type) X(finding_type) X(kind_remote) X(kind_link) X(kind_param) X(conf_known)          \
    X(party_first) X(party_third) X(builtin_remote) X(host_cache) X(by_host) X(by_suffix)        \
    X(unwrap_cache) X(shape_each) X(g_path_prefixes) X(g_path_suffixes) X(g_path_exact)         \
    X(g_query_exact) X(g_query_prefixes) X(g_query_suffixes) X(g_path_contains)                  \
    X(g_query_contains) X(exact_params) X(prefix_rules) X(py_parse)           \
    X(py_decode) X(infos)

#define CORE_STRINGS(X)                                                                          \
    X(s_remote, "remote") X(s_link, "link") X(s_param, "param") X(s_slash, "/") X(s_empty, "")   \
    X(s_https, "https:") X(s_target, "target") X(s_text_plain, "text/plain") X(s_group, "group") \
    X(s_strip, "strip") X(s_question, "?") X(s_amp, "&")

static void Core_dealloc(Core *c) {
#define DROP(name) Py_XDECREF(c->name);
    CORE_OBJECTS(DROP)
#undef DROP
#define DROP_S(name, text) Py_XDECREF(c->name);
    CORE_STRINGS(DROP_S)
#undef DROP_S
    Py_XDECREF(c->empty_tuple);
    Py_XDECREF(c->s_nul);
    texts_free(&c->t_path_prefixes);
    texts_free(&c->t_path_suffixes);
    texts_free(&c->t_query_prefixes);
    texts_free(&c->t_query_suffixes);
    texts_free(&c->t_path_contains);
    texts_free(&c->t_query_contains);
    for (Py_ssize_t k = 0; c->info != NULL && k < c->ninfo; k++) {
        Py_XDECREF(c->info[k].path_search);
        Py_XDECREF(c->info[k].query_search);
        Py_XDECREF(c->info[k].d_search);
    }
    PyMem_Free(c->info);
    PyMem_Free(c->tab_keys);
    PyMem_Free(c->tab_vals);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *opt(PyObject *o) { return o == Py_None ? NULL : o; }

/* infos: a list of tuples, one per rule (urlcore.py's _info): (rule, kind, has_hosts,
 * path_re, query_re, tracking_only, decode, id, tracker, category, service_id), decode
 * None or (param, source, regex, encodings, json_path). */
static int build_infos(Core *c) {
    Py_ssize_t n = PyList_GET_SIZE(c->infos);
    c->info = PyMem_Calloc(n ? n : 1, sizeof(RuleInfo));
    size_t size = 8;
    while (size < (size_t)n * 2 + 2) size <<= 1;
    c->tab_keys = PyMem_Calloc(size, sizeof(PyObject *));
    c->tab_vals = PyMem_Calloc(size, sizeof(Py_ssize_t));
    if (c->info == NULL || c->tab_keys == NULL || c->tab_vals == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    c->tab_mask = size - 1;
    c->ninfo = n;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *t = PyList_GET_ITEM(c->infos, k), *d;
        RuleInfo *r = &c->info[k];
        if (!PyArg_ParseTuple(t, "OipOOpOOOOO", &r->rule, &r->kind, &r->has_hosts,
                              &r->path_re, &r->query_re, &r->tracking_only, &d, &r->id,
                              &r->tracker, &r->category, &r->service_id))
            return -1;
        r->path_re = opt(r->path_re);
        r->query_re = opt(r->query_re);
        r->has_decode = d != Py_None;
        if (r->has_decode) {
            if (!PyArg_ParseTuple(d, "OiOO!O", &r->d_param, &r->d_source, &r->d_re,
                                  &PyTuple_Type, &r->d_encodings, &r->d_json_path))
                return -1;
            r->d_param = opt(r->d_param);
            r->d_re = opt(r->d_re);
            r->d_percent = PyTuple_GET_SIZE(r->d_encodings) == 1 &&
                           PyUnicode_Check(PyTuple_GET_ITEM(r->d_encodings, 0)) &&
                           PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(r->d_encodings, 0),
                                                            "percent") == 0;
            if (r->d_param == NULL && r->d_re == NULL) {
                PyErr_SetString(PyExc_ValueError, "urlcore: a decode with neither param nor regex");
                return -1;
            }
        }
        size_t i = ptr_hash(r->rule) & c->tab_mask;
        while (c->tab_keys[i] != NULL && c->tab_keys[i] != r->rule) i = (i + 1) & c->tab_mask;
        if (c->tab_keys[i] == NULL) { /* the first entry of a rule wins (none repeats) */
            c->tab_keys[i] = r->rule;
            c->tab_vals[i] = k;
        }
    }
    return 0;
}

static PyObject *Core_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *names[] = {
#define NAME(name) #name,
        CORE_OBJECTS(NAME)
#undef NAME
        "suffix_labels", "host_cache_size", "unwrap_cache_size", "unwrap_cache_longest",
        "max_unwrap_depth", "g_always", NULL};
    Core *c = (Core *)type->tp_alloc(type, 0);
    if (c == NULL) return NULL;
    PyObject *o[27];
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OOOOOOOOUO!O!O!O!OO!O!O!O!O!O!O!O!O!O!OOO!nnnnnp:Core", names, &o[0],
            &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8], &PyDict_Type, &o[9],
            &PyDict_Type, &o[10], &PyDict_Type, &o[11], &PyDict_Type, &o[12], &o[13],
            &PyTuple_Type, &o[14], &PyTuple_Type, &o[15], &PyDict_Type, &o[16], &PyDict_Type,
            &o[17], &PyTuple_Type, &o[18], &PyTuple_Type, &o[19], &PyTuple_Type, &o[20],
            &PyTuple_Type, &o[21], &PyDict_Type, &o[22], &PyTuple_Type, &o[23], &o[24], &o[25],
            &PyList_Type, &o[26], &c->suffix_labels, &c->host_cache_size,
            &c->unwrap_cache_size, &c->unwrap_cache_longest, &c->max_unwrap_depth,
            &c->g_always)) {
        Py_DECREF(c);
        return NULL;
    }
    int k = 0;
#define SET(name) c->name = Py_NewRef(o[k++]);
    CORE_OBJECTS(SET)
#undef SET
#define MAKE_S(name, text)                                                                       \
    if ((c->name = PyUnicode_InternFromString(text)) == NULL) goto fail;
    CORE_STRINGS(MAKE_S)
#undef MAKE_S
    if (!PyType_Check(c->url_type) || !PyType_Check(c->finding_type) ||
        !PyType_IsSubtype((PyTypeObject *)c->url_type, &PyTuple_Type) ||
        !PyType_IsSubtype((PyTypeObject *)c->finding_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "urlcore: Url and Finding must be tuple types");
        goto fail;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(c->prefix_rules); i++) {
        PyObject *pair = PyTuple_GET_ITEM(c->prefix_rules, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0))) {
            PyErr_SetString(PyExc_TypeError, "urlcore: prefix_rules holds (prefix, rule) pairs");
            goto fail;
        }
    }
    if (!PyTuple_Check(c->shape_each) || PyTuple_GET_SIZE(c->shape_each) != 7) {
        PyErr_SetString(PyExc_TypeError, "urlcore: shape_each holds 7 lists");
        goto fail;
    }
    for (Py_ssize_t t = 0; t < 7; t++) {
        PyObject *each = PyTuple_GET_ITEM(c->shape_each, t);
        if (!PyList_Check(each)) {
            PyErr_SetString(PyExc_TypeError, "urlcore: shape_each holds lists");
            goto fail;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(each); i++) {
            PyObject *e = PyList_GET_ITEM(each, i);
            Py_ssize_t want = t < 6 ? 3 : 2;
            if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != want ||
                !PyLong_Check(PyTuple_GET_ITEM(e, want - 2)) ||
                (t < 6 && !PyTuple_Check(PyTuple_GET_ITEM(e, 0)))) {
                PyErr_SetString(PyExc_TypeError, "urlcore: a shape entry of the wrong form");
                goto fail;
            }
        }
    }
    if ((c->empty_tuple = PyTuple_New(0)) == NULL) goto fail;
    if ((c->s_nul = PyUnicode_FromStringAndSize("\0", 1)) == NULL) goto fail;
    if (build_infos(c) < 0) goto fail;
    if (texts_init(&c->t_path_prefixes, c->g_path_prefixes, T_PREFIX) < 0 ||
        texts_init(&c->t_path_suffixes, c->g_path_suffixes, T_SUFFIX) < 0 ||
        texts_init(&c->t_query_prefixes, c->g_query_prefixes, T_PREFIX) < 0 ||
        texts_init(&c->t_query_suffixes, c->g_query_suffixes, T_SUFFIX) < 0 ||
        texts_init(&c->t_path_contains, c->g_path_contains, T_CONTAINS) < 0 ||
        texts_init(&c->t_query_contains, c->g_query_contains, T_CONTAINS) < 0)
        goto fail;
    return (PyObject *)c;
fail:
    Py_DECREF(c);
    return NULL;
}

static PyMethodDef Core_methods[] = {
    {"html", (PyCFunction)Core_html, METH_VARARGS,
     "html(occurrences, loads, links, found, domain, fallback_load): one HTML part's references."},
    {"text", (PyCFunction)Core_text, METH_VARARGS,
     "text(urls, links, found, domain): a text part's links."},
    {"parse", (PyCFunction)Core_parse, METH_O, "parse(text): urls.parse_http through the core."},
    {"gate", (PyCFunction)Core_gate, METH_VARARGS,
     "gate(path, query): may a host-less shape be about them (ShapeIndex.find's first test)?"},
    {"shapes", (PyCFunction)Core_shapes, METH_VARARGS,
     "shapes(path, query): ShapeIndex.find through the core."},
    {"unwrap", (PyCFunction)Core_unwrap, METH_O, "unwrap(url): RuleSet.unwrap through the core."},
    {"strip_params", (PyCFunction)Core_strip_params, METH_VARARGS,
     "strip_params(url, text): the planner's tracking_params through the core."},
    {"decide", (PyCFunction)Core_decide, METH_VARARGS,
     "decide(url, security category or None): decide_link's fields, or None: Python decides."},
    {"plan", (PyCFunction)Core_plan, METH_VARARGS,
     "plan(findings, removed kinds, link kinds): (loads by URL, link URLs), as the planner's."},
    {"decide_links", (PyCFunction)Core_decide_links, METH_VARARGS,
     "decide_links(raws, security category or None, type): (raw -> decision, raws left)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "guard.engine._urlcore.Core",
    .tp_basicsize = sizeof(Core),
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A RuleSet's tables for detection's per-reference work (guard/engine/urlcore.py).",
    .tp_methods = Core_methods,
    .tp_new = Core_new,
};

/* urllib.parse.unquote(text) (UTF-8, errors "replace"): leaks.py decodes every URL of a
 * message joined, and urllib's splits and joins in Python. */
static PyObject *mod_unquote(PyObject *self, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "unquote takes a str");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (PyUnicode_FindChar(text, '%', 0, n, 1) < 0) return Py_NewRef(text);
    return unquote_range(text, 0, n, 0);
}

static PyMethodDef module_methods[] = {
    {"unquote", (PyCFunction)mod_unquote, METH_O, "urllib.parse.unquote(text), in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_urlcore",
    "Detection's per-reference work in C (guard/engine/urlcore.py).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__urlcore(void) {
    if (PyType_Ready(&CoreType) < 0) return NULL;
    if ((s_search = PyUnicode_InternFromString("search")) == NULL) return NULL;
    PyObject *parse = PyImport_ImportModule("urllib.parse");
    if (parse == NULL) return NULL;
    py_unquote = PyObject_GetAttrString(parse, "unquote");
    py_unquote_plus = PyObject_GetAttrString(parse, "unquote_plus");
    Py_DECREF(parse);
    if (py_unquote == NULL || py_unquote_plus == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Core", (PyObject *)&CoreType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
