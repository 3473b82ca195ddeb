/* guard.engine._lexwalk: the scan's walk over a Lexbor document, in C (guard/engine/lexwalk.py).
 *
 * The Python walk in guard/engine/html.py (`_scan_tree`) makes a Python object for every node of
 * the document and a dict of every element's attributes. This walk visits the same nodes in the
 * same order and hands back, in document order, only what needs Python's logic, plus the
 * finished Occurrences of the commonest case:
 *
 *   - a comment that may be one of Outlook's conditional comments: ("-comment", its text);
 *   - a plain link (`<a href>`, `<area href>` with no other attribute that can load, no style
 *     that can load or hide, no `hidden`): its Occurrence, built here (nothing in it depends on
 *     anything else than the element: links have no pixel shape);
 *   - a plain image (`<img src srcset>` with no other attribute that can load or link, no
 *     `hidden`, no style that can load or hide, inside no element that may hide it, not styled
 *     by a `<style>` rule, its src not inline, its srcset ASCII), when asked for: its
 *     Occurrences, their pixel shape asked of Python (guard/engine/layout.py's pixel_shape) once
 *     per distinct width, height and style;
 *   - any other element that has an attribute that can load or link (the names are handed in
 *     from guard/engine/loads.py's URL_ATTRS: this file holds no table of its own), a `hidden`
 *     attribute, a style holding a load needle or a hide needle (lower-case ASCII, matched
 *     ASCII case-insensitively; `name:value`: in one declaration), or that is a `<style>`:
 *     (tag, {attribute: value or None}, index of the nearest earlier record that is an ancestor
 *     and may hide what it holds, or -1, the text of a `<style>` or None, the element's id (its
 *     node's address, selectolax's mem_id) when it is one of the `marked` elements, else 0).
 *   - every `marked` element: those a document's `<style>` rules style or give a url() to (the
 *     cascade is applied in Python, guard/engine/layout.py), each also a possible hider.
 *
 * A style that holds no needle can neither load (guard.engine.css.css_urls looks for `url`,
 * `image-set`, `@import` after undoing escapes) nor hide what is inside (guard.engine.css
 * hides_subtree and visibility:visible read only the properties named by the needles, after
 * comments and escapes are undone): the thousands of styled table cells of a newsletter make
 * no record. The needles are handed in by guard/engine/lexwalk.py, which checks on a probe
 * document at import that this walk answers what the Python walk answers.
 *
 * `loads` walks the same nodes for what cleaning's check reads (loads only, see its comment).
 *
 * A second function, `candidates`, walks the same nodes for cleaning (guard/clean/nodes.py): it
 * hands back, as selectolax LexborNode objects in document order, only the nodes the rewrite in
 * guard/clean/html.py may edit, a superset of what it edits (the rewrite tests each one exactly
 * as it tested every node): a comment whose text holds `[if`, an element whose name (ASCII
 * lower-cased) is one of the raw-text names handed in, one with an attribute that can load or
 * link, one whose style holds a load needle or any byte that is not ASCII (Python decides).
 * Asked for them, it hands a plain link or image (most of a newsletter's candidates) as its
 * references instead (plain_record), read as guard/engine/loads.py's element_refs reads them.
 *
 * No Lexbor header is needed: the functions are looked up by name in selectolax's own extension
 * (which exports them), and the only layouts read are where selectolax's LexborHTMLParser keeps
 * its document pointer and where its LexborNode keeps its node and parser, checked against the
 * types' names and sizes (and a node handed in against its mem_id) before every use. Memory: the
 * walk keeps one stack entry per open element (no recursion), and a record per element it keeps.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef void node_t;
typedef void attr_t;
typedef unsigned char lxb_char_t;

static node_t *(*f_first_child)(node_t *);
static node_t *(*f_next)(node_t *);
static node_t *(*f_parent)(node_t *);
static int (*f_type)(node_t *);
static attr_t *(*f_first_attr)(node_t *);
static attr_t *(*f_next_attr)(attr_t *);
static const lxb_char_t *(*f_elem_qname)(node_t *, size_t *);
static const lxb_char_t *(*f_attr_qname)(attr_t *, size_t *);
static const lxb_char_t *(*f_attr_value)(attr_t *, size_t *);
static lxb_char_t *(*f_text_content)(node_t *, size_t *);
static void *(*f_destroy_text)(void *, lxb_char_t *);
static int ready = 0;

enum { NODE_ELEMENT = 1, NODE_COMMENT = 8 };

/* selectolax 1.0's Cython object: PyObject_HEAD, vtable, then the document pointer. */
typedef struct {
    PyObject_HEAD
    void *vtab;
    void *document;
    void *fragment_wrapper;
    int is_fragment;
    uintptr_t fragment_tag_id;
    uintptr_t fragment_namespace_id;
    PyObject *raw_html;
    PyObject *selector;
    unsigned long mutation_count;
    PyObject *cached_script_texts;
    PyObject *cached_script_srcs;
} parser_head;

/* selectolax 1.0's LexborNode: PyObject_HEAD, vtable, its node and its parser. */
typedef struct {
    PyObject_HEAD
    void *vtab;
    void *node;
    PyObject *parser;
    int is_fragment_root;
    int is_template_content;
} node_head;

/* The parser as selectolax 1.0's LexborHTMLParser holding a whole document, or NULL with an
 * exception (also when Lexbor's functions are not bound yet): the one check before a walk. */
static parser_head *whole_document(PyObject *parser) {
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "not bound");
        return NULL;
    }
    PyTypeObject *tp = Py_TYPE(parser);
    if (strcmp(tp->tp_name, "selectolax.lexbor.LexborHTMLParser") != 0 ||
        tp->tp_basicsize != (Py_ssize_t)sizeof(parser_head)) {
        PyErr_SetString(PyExc_TypeError, "not a selectolax 1.0 LexborHTMLParser");
        return NULL;
    }
    parser_head *ph = (parser_head *)parser;
    if (ph->is_fragment || ph->document == NULL) {
        PyErr_SetString(PyExc_ValueError, "not a whole parsed document");
        return NULL;
    }
    return ph;
}

/* Lexbor's parse, for cleaning's check (`loads_encoded`). */
static void *(*f_doc_create)(void);
static void *(*f_doc_destroy)(void *);
static unsigned int (*f_doc_parse)(void *, const lxb_char_t *, size_t);

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
#define SYM(var, name)                                                      \
    *(void **)(&var) = dlsym(h, name);                                      \
    if (var == NULL) {                                                      \
        PyErr_SetString(PyExc_ImportError, "selectolax lacks " name);       \
        return NULL;                                                        \
    }
    SYM(f_first_child, "lxb_dom_node_first_child_noi");
    SYM(f_next, "lxb_dom_node_next_noi");
    SYM(f_parent, "lxb_dom_node_parent_noi");
    SYM(f_type, "lxb_dom_node_type_noi");
    SYM(f_first_attr, "lxb_dom_element_first_attribute_noi");
    SYM(f_next_attr, "lxb_dom_element_next_attribute_noi");
    SYM(f_elem_qname, "lxb_dom_element_qualified_name");
    SYM(f_attr_qname, "lxb_dom_attr_qualified_name");
    SYM(f_attr_value, "lxb_dom_attr_value_noi");
    SYM(f_text_content, "lxb_dom_node_text_content");
    SYM(f_destroy_text, "lxb_dom_document_destroy_text_noi");
    SYM(f_doc_create, "lxb_html_document_create"); /* cleaning's check: loads_encoded */
    SYM(f_doc_destroy, "lxb_html_document_destroy");
    SYM(f_doc_parse, "lxb_html_document_parse");
#undef SYM
    ready = 1;
    Py_RETURN_NONE;
}

/* A byte string handed in from Python: an attribute name or a needle. */
typedef struct {
    const char *data;
    size_t len;
} bstr;

/* What one walk is told, read once from the Python tuples it is given. */
typedef struct {
    bstr *url_names; /* attributes that can load or link */
    Py_ssize_t n_url;
    bstr *load_needles; /* a style holding one may load */
    Py_ssize_t n_load;
    bstr *hide_needles; /* a style holding one may hide (or show again) what is inside; */
    Py_ssize_t n_hide;  /* `name:value`: a declaration whose name and value hold these */
    /* Indexes, for a walk that reads each attribute name and style once: url_first[b] has bit i
     * set when url_names[i] starts with byte b; needle_first[b] bit k when needles[k] starts
     * with b (either case). needles: the load needles, then the hide needles, a `name:value`
     * one by its name (the declaration is then read: pairs[k]). */
    uint64_t url_first[256];
    uint32_t needle_first[256];
    bstr needles[32];
    bstr pair_values[32];
    /* The distinct first two characters of the needles (second 0: a one-character needle), to
     * find the places of a long style where one may start sixteen at a time (read_style_text). */
    unsigned char lead_first[32], lead_second[32];
    int n_leads;
    uint32_t load_mask, hide_mask, pair_mask;
    uintptr_t *marked; /* elements (node addresses, selectolax's mem_id) a `<style>` rule styles */
    Py_ssize_t n_marked;
    PyObject *occurrence; /* guard.engine.html.Occurrence */
    PyObject *link_a, *link_area; /* "a[href]", "area[href]" */
    /* Plain images (see plain_image): "img[src]" and "img[srcset]", or NULL where every image
     * makes a record; the
     * Python function that gives the pixel shape of (width, height, style), or None for no shape
     * (the loads-only walk); its answers by those three values, a dict. */
    PyObject *img_src, *img_srcset, *image_shape, *shape_memo;
    uint64_t style_gen; /* this call's generation in the style memo (read_style), 0 for none */
} config;

static int same(const lxb_char_t *s, size_t len, const char *lit, size_t litlen) {
    return len == litlen && memcmp(s, lit, len) == 0;
}

/* Does value hold one of the needles (lower-case ASCII), ASCII case-insensitively? */
static int holds_any(const lxb_char_t *value, size_t len, const bstr *needles, Py_ssize_t n) {
    for (Py_ssize_t k = 0; k < n; k++) {
        const char *needle = needles[k].data;
        size_t nlen = needles[k].len;
        if (nlen == 0) return 1;
        if (nlen > len) continue;
        for (size_t i = 0; i + nlen <= len; i++) {
            size_t j = 0;
            while (j < nlen) {
                lxb_char_t c = value[i + j];
                if (c >= 'A' && c <= 'Z') c = (lxb_char_t)(c - 'A' + 'a');
                if (c != (lxb_char_t)needle[j]) break;
                j++;
            }
            if (j == nlen) return 1;
        }
    }
    return 0;
}

/* Does one declaration of the style (split as guard.engine.css.declarations splits: at `;`,
 * then at the first `:`) have a name holding `name` and a value holding `value`? */
static int holds_declaration(const lxb_char_t *v, size_t len, const bstr *name, const bstr *value) {
    size_t start = 0;
    while (start <= len) {
        size_t end = start;
        while (end < len && v[end] != ';') end++;
        size_t colon = start;
        while (colon < end && v[colon] != ':') colon++;
        if (colon < end && holds_any(v + start, colon - start, name, 1) &&
            holds_any(v + colon + 1, end - colon - 1, value, 1))
            return 1;
        start = end + 1;
    }
    return 0;
}

static int needle_at(const lxb_char_t *v, size_t len, const bstr *needle) {
    if (needle->len > len) return 0;
    for (size_t j = 0; j < needle->len; j++) {
        lxb_char_t c = v[j];
        if (c >= 'A' && c <= 'Z') c = (lxb_char_t)(c - 'A' + 'a');
        if (c != (lxb_char_t)needle->data[j]) return 0;
    }
    return 1;
}

/* Mail repeats a few inline styles on hundreds of elements: read_style's answers by style text,
 * for the call (walk, candidates) that read them. An entry points at the attribute's value in
 * the document being read (alive for the call, not copied) and counts only for the call whose
 * generation it holds (each call takes a new one: its needles, its document); a hash
 * collision is told apart by comparing the text. Short styles are read directly. */
enum { STYLE_MEMO = 512, STYLE_MEMO_SHORTEST = 24 };
typedef struct {
    uint64_t gen, hash;
    const lxb_char_t *text;
    size_t len;
    int load, hide;
} style_entry;
static style_entry style_memo[STYLE_MEMO];
static uint64_t style_generation;

static uint64_t style_hash(const lxb_char_t *v, size_t len) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)len, w;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, v + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    w = 0;
    memcpy(&w, v + i, len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static void read_style_text(const lxb_char_t *v, size_t len, const config *cfg, int *load, int *hide);

/* One pass over a style: may it load (*load), may it hide what is inside or show it again
 * (*hide)? See LOAD_NEEDLES and HIDE_NEEDLES in lexwalk.py. */
static void read_style(const lxb_char_t *v, size_t len, const config *cfg, int *load, int *hide) {
    if (cfg->style_gen == 0 || len < STYLE_MEMO_SHORTEST) {
        read_style_text(v, len, cfg, load, hide);
        return;
    }
    uint64_t h = style_hash(v, len);
    style_entry *e = &style_memo[h & (STYLE_MEMO - 1)];
    if (e->gen == cfg->style_gen && e->hash == h && e->len == len && memcmp(e->text, v, len) == 0) {
        *load = e->load;
        *hide = e->hide;
        return;
    }
    read_style_text(v, len, cfg, load, hide);
    *e = (style_entry){cfg->style_gen, h, v, len, *load, *hide};
}

/* The needles that start at v[i] (ASCII case-insensitively), added to found. */
static inline uint32_t needles_at(const lxb_char_t *v, size_t len, size_t i, const config *cfg,
                                  uint32_t found) {
    lxb_char_t c = v[i];
    if (c >= 'A' && c <= 'Z') c = (lxb_char_t)(c - 'A' + 'a');
    uint32_t m = cfg->needle_first[c] & ~found;
    while (m) {
        int k = __builtin_ctz(m);
        m &= m - 1;
        if (needle_at(v + i, len - i, &cfg->needles[k])) found |= (uint32_t)1 << k;
    }
    return found;
}

#ifdef __SSE2__
static inline __m128i lower16(__m128i x) { /* A-Z to a-z; signed compares: >= 0x80 is below 'A' */
    __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8('A' - 1)),
                                  _mm_cmplt_epi8(x, _mm_set1_epi8('Z' + 1)));
    return _mm_add_epi8(x, _mm_and_si128(upper, _mm_set1_epi8('a' - 'A')));
}
#endif

static void read_style_text(const lxb_char_t *v, size_t len, const config *cfg, int *load, int *hide) {
    uint32_t found = 0;
    size_t i = 0;
#ifdef __SSE2__
    /* Sixteen places at a time: only where the first two characters (lower-cased) are a
     * needle's (its first, for a one-character needle) can one start; the rest of the places
     * are passed over, as the loop below would find nothing there. */
    __m128i firsts[32], seconds[32]; /* a one-character needle's second: all ones (any) */
    int n_leads = len >= 17 ? cfg->n_leads : 0;
    for (int k = 0; k < n_leads; k++) {
        firsts[k] = _mm_set1_epi8((char)cfg->lead_first[k]);
        seconds[k] = cfg->lead_second[k] ? _mm_set1_epi8((char)cfg->lead_second[k])
                                         : _mm_set1_epi8(-1);
    }
    for (; i + 17 <= len; i += 16) {
        __m128i x = lower16(_mm_loadu_si128((const __m128i *)(v + i)));
        __m128i y = lower16(_mm_loadu_si128((const __m128i *)(v + i + 1)));
        __m128i hit = _mm_setzero_si128();
        for (int k = 0; k < n_leads; k++) {
            __m128i second = cfg->lead_second[k] ? _mm_cmpeq_epi8(y, seconds[k]) : seconds[k];
            hit = _mm_or_si128(hit, _mm_and_si128(_mm_cmpeq_epi8(x, firsts[k]), second));
        }
        for (unsigned mask = (unsigned)_mm_movemask_epi8(hit); mask; mask &= mask - 1)
            found = needles_at(v, len, i + (size_t)__builtin_ctz(mask), cfg, found);
    }
#endif
    for (; i < len; i++) found = needles_at(v, len, i, cfg, found);
    *load = (found & cfg->load_mask) != 0;
    *hide = (found & cfg->hide_mask) != 0;
    for (uint32_t m = found & cfg->pair_mask; m && !*hide; m &= m - 1) {
        int k = __builtin_ctz(m);
        *hide = holds_declaration(v, len, &cfg->needles[k], &cfg->pair_values[k]);
    }
}

/* Build the indexes of cfg (see config). -1 with an exception when there are too many needles. */
static int index_config(config *cfg) {
    memset(cfg->url_first, 0, sizeof cfg->url_first);
    memset(cfg->needle_first, 0, sizeof cfg->needle_first);
    if (cfg->n_url > 64 || cfg->n_load + cfg->n_hide > 32) {
        PyErr_SetString(PyExc_ValueError, "at most 64 attribute names and 32 needles");
        return -1;
    }
    for (Py_ssize_t i = 0; i < cfg->n_url; i++)
        if (cfg->url_names[i].len) cfg->url_first[(lxb_char_t)cfg->url_names[i].data[0]] |= (uint64_t)1 << i;
    cfg->load_mask = cfg->hide_mask = cfg->pair_mask = 0;
    for (Py_ssize_t k = 0; k < cfg->n_load + cfg->n_hide; k++) {
        int load = k < cfg->n_load;
        bstr needle = load ? cfg->load_needles[k] : cfg->hide_needles[k - cfg->n_load];
        const char *colon = load ? NULL : memchr(needle.data, ':', needle.len);
        if (colon != NULL) {
            cfg->pair_values[k].data = colon + 1;
            cfg->pair_values[k].len = needle.len - (size_t)(colon - needle.data) - 1;
            needle.len = (size_t)(colon - needle.data);
            cfg->pair_mask |= (uint32_t)1 << k;
        } else if (load) {
            cfg->load_mask |= (uint32_t)1 << k;
        } else {
            cfg->hide_mask |= (uint32_t)1 << k;
        }
        if (needle.len == 0) {
            PyErr_SetString(PyExc_ValueError, "an empty needle");
            return -1;
        }
        cfg->needles[k] = needle;
        lxb_char_t c = (lxb_char_t)needle.data[0];
        cfg->needle_first[c] |= (uint32_t)1 << k;
        if (c >= 'a' && c <= 'z') cfg->needle_first[c - 'a' + 'A'] |= (uint32_t)1 << k;
    }
    cfg->n_leads = 0;
    for (Py_ssize_t k = 0; k < cfg->n_load + cfg->n_hide; k++) {
        unsigned char first = (unsigned char)cfg->needles[k].data[0];
        unsigned char second = cfg->needles[k].len > 1 ? (unsigned char)cfg->needles[k].data[1] : 0;
        int known = 0;
        for (int j = 0; j < cfg->n_leads && !known; j++)
            known = cfg->lead_first[j] == first && cfg->lead_second[j] == second;
        if (!known) {
            cfg->lead_first[cfg->n_leads] = first;
            cfg->lead_second[cfg->n_leads++] = second;
        }
    }
    return 0;
}

/* Can a comment be an Outlook conditional one (`[if …`, read by conditional_comment_refs once
 * Python has stripped it)? Beyond the whitespace Python's str.strip() removes that is ASCII, a
 * non-ASCII character might be whitespace too: Python decides. */
static int may_be_conditional(const lxb_char_t *t, size_t len) {
    size_t i = 0;
    while (i < len && (t[i] == ' ' || (t[i] >= '\t' && t[i] <= '\r') || (t[i] >= 0x1c && t[i] <= 0x1f)))
        i++;
    if (i == len) return 0;
    if (t[i] >= 0x80) return 1;
    return i + 3 <= len && t[i] == '[' && (t[i + 1] | 0x20) == 'i' && (t[i + 2] | 0x20) == 'f';
}

static int in_names(const lxb_char_t *s, size_t len, const config *cfg) {
    if (len == 0) return 0;
    for (uint64_t m = cfg->url_first[s[0]]; m; m &= m - 1) {
        const bstr *name = &cfg->url_names[__builtin_ctzll(m)];
        if (name->len == len && memcmp(name->data, s, len) == 0) return 1;
    }
    return 0;
}

static int cmp_id(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* The ids of an iterable of ints, sorted for bsearch. */
static uintptr_t *read_ids(PyObject *iterable, Py_ssize_t *count) {
    PyObject *seq = PySequence_Fast(iterable, "marked elements are an iterable of ints");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uintptr_t *ids = PyMem_Calloc(n ? (size_t)n : 1, sizeof(uintptr_t));
    if (ids == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        size_t v = PyLong_AsSize_t(PySequence_Fast_GET_ITEM(seq, i));
        if (v == (size_t)-1 && PyErr_Occurred()) {
            Py_DECREF(seq);
            PyMem_Free(ids);
            return NULL;
        }
        ids[i] = (uintptr_t)v;
    }
    Py_DECREF(seq);
    qsort(ids, (size_t)n, sizeof(uintptr_t), cmp_id);
    *count = n;
    return ids;
}

static PyObject *decode(const lxb_char_t *data, size_t len) {
    if (data == NULL) return PyUnicode_FromStringAndSize("", 0);
    return PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)len, "replace");
}

static PyObject *text_of(void *document, node_t *node) {
    size_t len = 0;
    lxb_char_t *text = f_text_content(node, &len);
    PyObject *s = decode(text, len);
    if (text != NULL) f_destroy_text(document, text);
    return s;
}

/* Read a tuple of bytes into an array of bstr (borrowed: the tuple outlives the walk). */
static bstr *read_names(PyObject *tuple, Py_ssize_t *count) {
    if (!PyTuple_Check(tuple)) {
        PyErr_SetString(PyExc_TypeError, "names and needles are tuples of bytes");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    bstr *out = PyMem_Calloc(n ? (size_t)n : 1, sizeof(bstr));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_Check(b)) {
            PyMem_Free(out);
            PyErr_SetString(PyExc_TypeError, "names and needles are bytes");
            return NULL;
        }
        out[i].data = PyBytes_AS_STRING(b);
        out[i].len = (size_t)PyBytes_GET_SIZE(b);
    }
    *count = n;
    return out;
}

/* Read the url names, load needles and hide needles (none where hide_obj is NULL) into cfg and
 * index them: 0, or -1 with an exception (free_config frees what was read either way). */
static int read_config(config *cfg, PyObject *url_obj, PyObject *load_obj, PyObject *hide_obj) {
    cfg->url_names = read_names(url_obj, &cfg->n_url);
    if (cfg->url_names == NULL) return -1;
    cfg->load_needles = read_names(load_obj, &cfg->n_load);
    if (cfg->load_needles == NULL) return -1;
    if (hide_obj != NULL) {
        cfg->hide_needles = read_names(hide_obj, &cfg->n_hide);
        if (cfg->hide_needles == NULL) return -1;
    }
    return index_config(cfg);
}

static void free_config(config *cfg) {
    PyMem_Free(cfg->url_names);
    PyMem_Free(cfg->load_needles);
    PyMem_Free(cfg->hide_needles);
    PyMem_Free(cfg->marked);
}

/* Occurrence(url, element, False, False, None): the type is a tuple subclass without slots of
 * its own (a NamedTuple), made as tuple.__new__ makes one. */
static PyObject *link_occurrence(const config *cfg, PyObject *url, PyObject *element) {
    PyTypeObject *tp = (PyTypeObject *)cfg->occurrence;
    PyObject *occ = tp->tp_alloc(tp, 5);
    if (occ == NULL) return NULL;
    PyTuple_SET_ITEM(occ, 0, Py_NewRef(url));
    PyTuple_SET_ITEM(occ, 1, Py_NewRef(element));
    PyTuple_SET_ITEM(occ, 2, Py_NewRef(Py_False));
    PyTuple_SET_ITEM(occ, 3, Py_NewRef(Py_False));
    PyTuple_SET_ITEM(occ, 4, Py_NewRef(Py_None));
    return occ;
}

static int append_steal(PyObject *list, PyObject *item) {
    if (item == NULL) return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* Python's str.isspace() on an ASCII byte (what `\s` matches there in a str pattern). */
static int ascii_space(lxb_char_t c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* The candidate URLs of an ASCII srcset, split exactly as guard/engine/loads.py's srcset_urls
 * splits (the HTML standard's way): appended to `urls` as str. A URL is a run of non-whitespace
 * after whitespace and commas; trailing commas end it, else the descriptors run to the next comma
 * outside parentheses (an unclosed one runs to the end). Linear: each byte is read once. 1 when
 * the value is not ASCII (Python's whitespace is Unicode's then: Python splits it), 0 when done,
 * -1 on error. */
static int split_srcset(const lxb_char_t *v, size_t n, PyObject *urls) {
    for (size_t i = 0; i < n; i++)
        if (v[i] >= 0x80) return 1;
    size_t pos = 0;
    while (pos < n) {
        while (pos < n && (ascii_space(v[pos]) || v[pos] == ',')) pos++;
        size_t start = pos;
        while (pos < n && !ascii_space(v[pos])) pos++;
        size_t end = pos;
        if (end > start && v[end - 1] == ',') {
            while (end > start && v[end - 1] == ',') end--;
        } else {
            while (pos < n && v[pos] != ',') {
                if (v[pos] == '(') {
                    pos++;
                    while (pos < n && v[pos] != ')') pos++;
                    if (pos < n) pos++;
                } else {
                    pos++;
                }
            }
            if (pos < n) pos++; /* the comma */
        }
        if (end > start) {
            PyObject *url = PyUnicode_FromStringAndSize((const char *)v + start, (Py_ssize_t)(end - start));
            if (append_steal(urls, url) < 0) return -1;
        }
    }
    return 0;
}

/* srcset_urls(str) -> list of str, or None for a value that is not ASCII (tests compare it with
 * guard/engine/loads.py's srcset_urls). */
static PyObject *srcset_urls(PyObject *self, PyObject *arg) {
    (void)self;
    Py_ssize_t len = 0;
    const char *v = PyUnicode_AsUTF8AndSize(arg, &len);
    if (v == NULL) return NULL;
    PyObject *urls = PyList_New(0);
    if (urls == NULL) return NULL;
    int rc = split_srcset((const lxb_char_t *)v, (size_t)len, urls);
    if (rc != 0) {
        Py_DECREF(urls);
        if (rc < 0) return NULL;
        Py_RETURN_NONE;
    }
    return urls;
}

/* An attribute value as the dict of attributes holds it: a str, or None for no value. */
static PyObject *value_or_none(const lxb_char_t *v, size_t len, int present) {
    if (!present || v == NULL) return Py_NewRef(Py_None);
    return decode(v, len);
}

/* The pixel shape of a plain image: image_shape(width, height, style), asked once per distinct
 * triple (a newsletter repeats a few sizes and styles on its images). Bounded as layout.py bounds
 * its style memo: at most 4096 entries, none with a value longer than 2048 characters (hostile
 * mail's long distinct styles are asked each time, not kept). */
static PyObject *image_shape(const config *cfg, PyObject *width, PyObject *height, PyObject *style) {
    if (cfg->image_shape == Py_None) return Py_NewRef(Py_None);
    PyObject *values[3] = {width, height, style};
    for (int i = 0; i < 3; i++)
        if (values[i] != Py_None && PyUnicode_GET_LENGTH(values[i]) > 2048)
            return PyObject_CallFunctionObjArgs(cfg->image_shape, width, height, style, NULL);
    PyObject *key = PyTuple_Pack(3, width, height, style);
    if (key == NULL) return NULL;
    PyObject *shape = PyDict_GetItemWithError(cfg->shape_memo, key);
    if (shape != NULL) {
        Py_DECREF(key);
        return Py_NewRef(shape);
    }
    if (PyErr_Occurred()) {
        Py_DECREF(key);
        return NULL;
    }
    shape = PyObject_CallFunctionObjArgs(cfg->image_shape, width, height, style, NULL);
    if (shape == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    if (PyDict_GET_SIZE(cfg->shape_memo) >= 4096) PyDict_Clear(cfg->shape_memo); /* bounded */
    int rc = PyDict_SetItem(cfg->shape_memo, key, shape);
    Py_DECREF(key);
    if (rc < 0) {
        Py_DECREF(shape);
        return NULL;
    }
    return shape;
}

/* Can a src hold a nested document (`data:`, `cid:`: html._inline_src, which strips what
 * Python's str.lstrip() strips)? Where a non-ASCII character decides, Python decides: 1. */
static int may_be_inline(const lxb_char_t *v, size_t len) {
    size_t i = 0;
    while (i < len && (v[i] == ' ' || (v[i] >= '\t' && v[i] <= '\r') || (v[i] >= 0x1c && v[i] <= 0x1f)))
        i++;
    if (len - i < 4) return 0;
    char low[4];
    for (size_t j = 0; j < 4; j++) {
        lxb_char_t c = v[i + j];
        if (c >= 0x80) return 1;
        low[j] = (char)((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    }
    return memcmp(low, "data", 4) == 0 || memcmp(low, "cid:", 4) == 0;
}

static PyObject *attr_dict(node_t *el) {
    PyObject *attrs = PyDict_New();
    if (attrs == NULL) return NULL;
    for (attr_t *a = f_first_attr(el); a != NULL; a = f_next_attr(a)) {
        size_t alen = 0, vlen = 0;
        const lxb_char_t *an = f_attr_qname(a, &alen);
        PyObject *key = decode(an, alen);
        const lxb_char_t *v = f_attr_value(a, &vlen);
        PyObject *val = v ? decode(v, vlen) : Py_NewRef(Py_None);
        if (key == NULL || val == NULL || PyDict_SetItem(attrs, key, val) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(val);
            Py_DECREF(attrs);
            return NULL;
        }
        Py_DECREF(key);
        Py_DECREF(val);
    }
    return attrs;
}

static PyObject *image_occurrence(const config *cfg, PyObject *url, PyObject *element, PyObject *shape) {
    PyTypeObject *tp = (PyTypeObject *)cfg->occurrence;
    PyObject *occ = tp->tp_alloc(tp, 5);
    if (occ == NULL) return NULL;
    PyTuple_SET_ITEM(occ, 0, Py_NewRef(url));
    PyTuple_SET_ITEM(occ, 1, Py_NewRef(element));
    PyTuple_SET_ITEM(occ, 2, Py_NewRef(Py_True));
    PyTuple_SET_ITEM(occ, 3, Py_NewRef(Py_True));
    PyTuple_SET_ITEM(occ, 4, Py_NewRef(shape));
    return occ;
}

/* A plain image: an `<img>` whose only attributes that can load or link are src and srcset (an
 * inline `data:`/`cid:` src excepted: it may nest a document; a srcset that is not ASCII too),
 * no `hidden`, no style that can load or hide, not styled by a `<style>` rule, inside no element
 * that may hide it. What loads.element_refs gives it is its src, then its srcset's candidates,
 * all images of one pixel shape, which depends on its width, height and style only
 * (layout.pixel_shape with no hidden_by): its Occurrences are finished here. 0 when it is done
 * (nothing for no src and no candidate), 1 when it needs a record after all, -1 on error. */
static int plain_image(const config *cfg, PyObject *out, const lxb_char_t *src, size_t src_len,
                       const lxb_char_t *srcset, size_t srcset_len, const lxb_char_t *width,
                       size_t width_len, int has_width, const lxb_char_t *height,
                       size_t height_len, int has_height, const lxb_char_t *style,
                       size_t style_len, int has_style) {
    if (src != NULL && src_len && may_be_inline(src, src_len)) return 1;
    PyObject *urls = PyList_New(0);
    if (urls == NULL) return -1;
    if (srcset != NULL && srcset_len) {
        int rc = split_srcset(srcset, srcset_len, urls);
        if (rc != 0) {
            Py_DECREF(urls);
            return rc;
        }
    }
    int has_src = src != NULL && src_len > 0;
    if (!has_src && PyList_GET_SIZE(urls) == 0) {
        Py_DECREF(urls);
        return 0;
    }
    PyObject *url = has_src ? decode(src, src_len) : Py_NewRef(Py_None);
    PyObject *w = value_or_none(width, width_len, has_width);
    PyObject *h = value_or_none(height, height_len, has_height);
    PyObject *st = value_or_none(style, style_len, has_style);
    PyObject *shape = NULL;
    int rc = -1;
    if (url != NULL && w != NULL && h != NULL && st != NULL) shape = image_shape(cfg, w, h, st);
    if (shape != NULL) {
        rc = 0;
        if (has_src) rc = append_steal(out, image_occurrence(cfg, url, cfg->img_src, shape));
        for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(urls); i++)
            rc = append_steal(out, image_occurrence(cfg, PyList_GET_ITEM(urls, i), cfg->img_srcset, shape));
    }
    Py_DECREF(urls);
    Py_XDECREF(url);
    Py_XDECREF(w);
    Py_XDECREF(h);
    Py_XDECREF(st);
    Py_XDECREF(shape);
    return rc;
}

/* An element record's parts, as `walk` and `loads` make them: its name, {attribute: value or
 * None}, the text of a `<style>` (else None). 0, or -1 on error with nothing held. */
static int record_parts(void *document, node_t *el, const lxb_char_t *tag, size_t tlen,
                        int is_style, PyObject **tagstr, PyObject **attrs, PyObject **css) {
    *attrs = attr_dict(el);
    if (*attrs == NULL) return -1;
    *css = is_style ? text_of(document, el) : Py_NewRef(Py_None);
    *tagstr = decode(tag, tlen);
    if (*css == NULL || *tagstr == NULL) {
        Py_XDECREF(*css);
        Py_XDECREF(*tagstr);
        Py_DECREF(*attrs);
        return -1;
    }
    return 0;
}

/* One element: append what it gives to `out`. *hider: set to 1 when it may hide its content
 * (its record's index then becomes the chain of what it holds). 0 on success, -1 on error. */
static int element(const config *cfg, void *document, node_t *el, Py_ssize_t inherited,
                   PyObject *out, int *hider) {
    size_t tlen = 0;
    const lxb_char_t *tag = f_elem_qname(el, &tlen);
    if (tag == NULL) tlen = 0;
    int is_style = tag != NULL && same(tag, tlen, "style", 5);
    int has_hidden = 0, style_load = 0, style_hide = 0, other_url = 0, any_url = 0;
    /* The link's href and xlink:href, the last of each name as a dict of attributes keeps. */
    const lxb_char_t *href = NULL, *xhref = NULL;
    size_t href_len = 0, xhref_len = 0;
    /* For a plain image: its src, width, height and style (the last of each), and whether it
     * has an attribute that can load or link other than src. */
    const lxb_char_t *src = NULL, *srcset = NULL, *width = NULL, *height = NULL, *style = NULL;
    size_t src_len = 0, srcset_len = 0, width_len = 0, height_len = 0, style_len = 0;
    int has_width = 0, has_height = 0, has_style = 0, not_src = 0;
    for (attr_t *a = f_first_attr(el); a != NULL; a = f_next_attr(a)) {
        size_t alen = 0;
        const lxb_char_t *an = f_attr_qname(a, &alen);
        if (an == NULL) continue;
        if (same(an, alen, "style", 5)) {
            size_t vlen = 0;
            const lxb_char_t *v = f_attr_value(a, &vlen);
            /* The last style wins, as in a dict: the flags are those of the last one. */
            style_load = style_hide = 0;
            if (v != NULL) read_style(v, vlen, cfg, &style_load, &style_hide);
            has_style = 1;
            style = v;
            style_len = vlen;
        } else if (same(an, alen, "hidden", 6)) {
            has_hidden = 1;
        } else if (same(an, alen, "width", 5)) {
            has_width = 1;
            width = f_attr_value(a, &width_len);
        } else if (same(an, alen, "height", 6)) {
            has_height = 1;
            height = f_attr_value(a, &height_len);
        } else if (in_names(an, alen, cfg)) {
            any_url = 1;
            if (same(an, alen, "src", 3)) {
                src = f_attr_value(a, &src_len);
            } else if (same(an, alen, "srcset", 6)) {
                srcset = f_attr_value(a, &srcset_len);
            } else {
                not_src = 1;
            }
            if (same(an, alen, "href", 4)) {
                href = f_attr_value(a, &href_len);
            } else if (same(an, alen, "xlink:href", 10)) {
                xhref = f_attr_value(a, &xhref_len);
            } else {
                other_url = 1;
            }
        }
    }
    uintptr_t id = (uintptr_t)el;
    int marked = cfg->n_marked > 0 &&
                 bsearch(&id, cfg->marked, (size_t)cfg->n_marked, sizeof(uintptr_t), cmp_id) != NULL;
    /* A `<style>` rule may hide what a marked element holds: its record starts a chain too. */
    *hider = has_hidden || style_hide || marked;
    if (!is_style && !*hider && !style_load && !other_url) {
        PyObject *kind = NULL;
        if (same(tag, tlen, "a", 1)) {
            kind = cfg->link_a;
        } else if (same(tag, tlen, "area", 4)) {
            kind = cfg->link_area;
        }
        if (kind != NULL) {
            /* `get("href") or get("xlink:href")`: an empty or valueless href gives way. */
            const lxb_char_t *v = (href != NULL && href_len) ? href : xhref;
            size_t vlen = (href != NULL && href_len) ? href_len : xhref_len;
            if (v == NULL || vlen == 0) return 0;
            PyObject *url = decode(v, vlen);
            if (url == NULL) return -1;
            int rc = append_steal(out, link_occurrence(cfg, url, kind));
            Py_DECREF(url);
            return rc;
        }
        if (!any_url) return 0;
    }
    if (cfg->img_src != NULL && !is_style && !*hider && !style_load && !not_src && inherited < 0 &&
        same(tag, tlen, "img", 3)) {
        int rc = plain_image(cfg, out, src, src_len, srcset, srcset_len, width, width_len,
                             has_width, height, height_len, has_height, style, style_len,
                             has_style);
        if (rc != 1) return rc;
    }
    PyObject *tagstr, *attrs, *css;
    if (record_parts(document, el, tag, tlen, is_style, &tagstr, &attrs, &css) < 0) return -1;
    PyObject *mem_id = PyLong_FromSize_t(marked ? (size_t)id : 0);
    if (mem_id == NULL) {
        Py_DECREF(css);
        Py_DECREF(tagstr);
        Py_DECREF(attrs);
        return -1;
    }
    return append_steal(out, Py_BuildValue("(NNnNN)", tagstr, attrs, inherited, css, mem_id));
}

/* The node after `cur`'s subtree in document order, or NULL at the end of `root`'s (the walks
 * that keep no stack of what encloses a node). */
static node_t *after_subtree(node_t *cur, node_t *root) {
    while (cur != root && f_next(cur) == NULL) cur = f_parent(cur);
    return cur == root ? NULL : f_next(cur);
}

/* A comment that may be conditional (`[if`): its ("-comment", text) record, its index in
 * `positions`; the walk and the loads-only walk read comments alike. 0, or -1 on error. */
static int comment_record(void *document, node_t *cur, PyObject *out, PyObject *positions) {
    size_t len = 0;
    lxb_char_t *data = f_text_content(cur, &len);
    int rc = 0;
    if (data != NULL && may_be_conditional(data, len)) {
        PyObject *text = decode(data, len);
        if (text == NULL) {
            rc = -1;
        } else if (append_steal(positions, PyLong_FromSsize_t(PyList_GET_SIZE(out))) < 0) {
            Py_DECREF(text);
            rc = -1;
        } else {
            rc = append_steal(out, Py_BuildValue("(sN)", "-comment", text)); /* N: text taken */
        }
    }
    if (data != NULL) f_destroy_text(document, data);
    return rc;
}

/* walk(parser, url_names, load_needles, hide_needles, occurrence, "a[href]", "area[href]",
 *      marked=None, "img[src]"=None, "img[srcset]"=None, image_shape=None, shape_memo=None)
 *      -> (records and
 *      Occurrences in document order (see the top of this file), the positions of the records in
 *      that list). With "img[src]", plain images (plain_image) come back as Occurrences. */
static PyObject *walk(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *parser, *url_obj, *load_obj, *hide_obj, *marked_obj = NULL;
    config cfg = {0};
    cfg.style_gen = ++style_generation;
    if (!PyArg_ParseTuple(args, "OOOOOUU|OUUOO!", &parser, &url_obj, &load_obj, &hide_obj,
                          &cfg.occurrence, &cfg.link_a, &cfg.link_area, &marked_obj,
                          &cfg.img_src, &cfg.img_srcset, &cfg.image_shape, &PyDict_Type,
                          &cfg.shape_memo))
        return NULL;
    if (cfg.img_src != NULL &&
        (cfg.img_srcset == NULL || cfg.shape_memo == NULL || (cfg.image_shape != Py_None && !PyCallable_Check(cfg.image_shape)))) {
        PyErr_SetString(PyExc_TypeError, "plain images need a shape function (or None) and a dict");
        return NULL;
    }
    if (!PyType_Check(cfg.occurrence) ||
        !PyType_IsSubtype((PyTypeObject *)cfg.occurrence, &PyTuple_Type) ||
        ((PyTypeObject *)cfg.occurrence)->tp_basicsize != PyTuple_Type.tp_basicsize) {
        PyErr_SetString(PyExc_TypeError, "occurrence is a NamedTuple type");
        return NULL;
    }
    parser_head *ph = whole_document(parser);
    if (ph == NULL) return NULL;
    PyObject *out = NULL, *positions = NULL;
    Py_ssize_t cap = 64, depth = 0;
    Py_ssize_t *stack = NULL;
    if (read_config(&cfg, url_obj, load_obj, hide_obj) < 0) goto fail;
    if (marked_obj != NULL && marked_obj != Py_None) {
        cfg.marked = read_ids(marked_obj, &cfg.n_marked);
        if (cfg.marked == NULL) goto fail;
    }
    out = PyList_New(0);
    positions = PyList_New(0);
    stack = PyMem_Malloc((size_t)cap * sizeof(Py_ssize_t));
    if (out == NULL || positions == NULL || stack == NULL) {
        if (stack == NULL) PyErr_NoMemory();
        goto fail;
    }

    void *document = ph->document; /* lxb_html_document_t starts with its DOM node */
    node_t *root = (node_t *)document, *cur = root;
    Py_ssize_t inherited = -1;
    for (;;) {
        Py_ssize_t mine = inherited;
        int type = f_type(cur);
        if (type == NODE_COMMENT) {
            if (comment_record(document, cur, out, positions) < 0) goto fail;
        } else if (type == NODE_ELEMENT) {
            Py_ssize_t index = PyList_GET_SIZE(out);
            int hider = 0;
            if (element(&cfg, document, cur, inherited, out, &hider) < 0) goto fail;
            if (hider) mine = index;
            if (PyList_GET_SIZE(out) > index &&
                Py_TYPE(PyList_GET_ITEM(out, index)) != (PyTypeObject *)cfg.occurrence &&
                append_steal(positions, PyLong_FromSsize_t(index)) < 0)
                goto fail;
        }
        node_t *child = f_first_child(cur);
        if (child != NULL) {
            if (depth == cap) {
                cap *= 2;
                Py_ssize_t *grown = PyMem_Realloc(stack, (size_t)cap * sizeof(Py_ssize_t));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto fail;
                }
                stack = grown;
            }
            stack[depth++] = inherited;
            inherited = mine;
            cur = child;
            continue;
        }
        while (cur != root && f_next(cur) == NULL) {
            cur = f_parent(cur);
            inherited = stack[--depth];
        }
        if (cur == root) break;
        cur = f_next(cur);
    }
    PyMem_Free(stack);
    free_config(&cfg);
    return Py_BuildValue("(NN)", out, positions);
fail:
    PyMem_Free(stack);
    free_config(&cfg);
    Py_XDECREF(out);
    Py_XDECREF(positions);
    return NULL;
}

/* The loads-only walk (guard/engine/lexwalk.py `distinct_loads`): what cleaning's check reads of
 * its output, the loads and nothing else. Beside `walk`, it makes no record of what only links
 * or hides: a link, a `hidden` element, a style without a load needle make nothing (their
 * elements load nothing: loads.element_refs gives them links only), and a plain image (as
 * plain_image: its only attributes that can load or link are src and srcset, no style that can
 * load, its src not inline, its srcset ASCII; hidden or not, which changes no URL) comes back as
 * (url, "img[src]" or "img[srcset]") pairs, each URL as written once (a later pair of the same
 * URL resolves alike and is never the first: the check keeps the first occurrence of each). */

/* May a style load (a load needle in it, see read_style)? With SSE2 the bytes that can start a
 * needle are found 16 at a time; a style attribute is read once per element of the output. */
/* The bytes that can start a load needle (either case), for style_may_load: at most 8, else
 * n = -1 and styles are read a byte at a time. */
typedef struct {
    int n;
    lxb_char_t bytes[8];
} firsts_t;

static void load_firsts(const config *cfg, firsts_t *f) {
    f->n = 0;
    for (int c = 0; c < 256; c++)
        if (cfg->needle_first[c] & cfg->load_mask) {
            if (f->n == 8) {
                f->n = -1;
                return;
            }
            f->bytes[f->n++] = (lxb_char_t)c;
        }
}

/* May a style load (a load needle in it, ASCII case-insensitively: read_style's *load)? With
 * SSE2 the bytes that can start a needle are looked for 16 at a time: ~240 styles a newsletter,
 * mostly without any, read a byte at a time took a third of the walk. */
static int style_may_load(const lxb_char_t *v, size_t len, const config *cfg, const firsts_t *f) {
    size_t i = 0;
#ifdef __SSE2__
    if (f->n >= 0) {
        __m128i want[8];
        for (int k = 0; k < f->n; k++) want[k] = _mm_set1_epi8((char)f->bytes[k]);
        for (; i + 16 <= len; i += 16) {
            __m128i chunk = _mm_loadu_si128((const __m128i *)(v + i));
            __m128i hit = _mm_setzero_si128();
            for (int k = 0; k < f->n; k++) hit = _mm_or_si128(hit, _mm_cmpeq_epi8(chunk, want[k]));
            unsigned bits = (unsigned)_mm_movemask_epi8(hit);
            while (bits) {
                size_t at = i + (size_t)__builtin_ctz(bits);
                bits &= bits - 1;
                for (uint32_t m = cfg->needle_first[v[at]] & cfg->load_mask; m; m &= m - 1)
                    if (needle_at(v + at, len - at, &cfg->needles[__builtin_ctz(m)])) return 1;
            }
        }
    }
#else
    (void)f;
#endif
    for (; i < len; i++)
        for (uint32_t m = cfg->needle_first[v[i]] & cfg->load_mask; m; m &= m - 1)
            if (needle_at(v + i, len - i, &cfg->needles[__builtin_ctz(m)])) return 1;
    return 0;
}

/* One load of a plain image: (url, element) appended unless its URL was met before (`seen`). */
static int distinct_load(PyObject *out, PyObject *seen, PyObject *url, PyObject *element) {
    int known = PySet_Contains(seen, url);
    if (known != 0) return known < 0 ? -1 : 0;
    if (PySet_Add(seen, url) < 0) return -1;
    return append_steal(out, PyTuple_Pack(2, url, element));
}

/* One element for the loads-only walk: nothing, its plain image's loads, or its record (tag,
 * {attribute: value or None}, the text of a `<style>` or None). 0, or -1 on error. */
static int loads_element(const config *cfg, const firsts_t *firsts, void *document, node_t *el,
                         PyObject *out, PyObject *positions, PyObject *seen) {
    size_t tlen = 0;
    const lxb_char_t *tag = f_elem_qname(el, &tlen);
    if (tag == NULL) tlen = 0;
    int is_style = tag != NULL && same(tag, tlen, "style", 5);
    int style_load = 0, any_url = 0, other_url = 0, not_src = 0;
    const lxb_char_t *src = NULL, *srcset = NULL;
    size_t src_len = 0, srcset_len = 0;
    for (attr_t *a = f_first_attr(el); a != NULL; a = f_next_attr(a)) {
        size_t alen = 0;
        const lxb_char_t *an = f_attr_qname(a, &alen);
        if (an == NULL) continue;
        if (same(an, alen, "style", 5)) {
            size_t vlen = 0;
            const lxb_char_t *v = f_attr_value(a, &vlen);
            style_load = v != NULL && style_may_load(v, vlen, cfg, firsts); /* the last one wins */
        } else if (in_names(an, alen, cfg)) {
            any_url = 1;
            if (same(an, alen, "src", 3)) {
                src = f_attr_value(a, &src_len);
            } else if (same(an, alen, "srcset", 6)) {
                srcset = f_attr_value(a, &srcset_len);
            } else {
                not_src = 1;
            }
            if (!same(an, alen, "href", 4) && !same(an, alen, "xlink:href", 10)) other_url = 1;
        }
    }
    if (!is_style && !style_load) {
        if (!any_url) return 0;
        if (!other_url && (same(tag, tlen, "a", 1) || same(tag, tlen, "area", 4))) return 0;
        if (!not_src && same(tag, tlen, "img", 3) &&
            !(src != NULL && src_len && may_be_inline(src, src_len))) {
            PyObject *urls = PyList_New(0);
            if (urls == NULL) return -1;
            int rc = srcset != NULL && srcset_len ? split_srcset(srcset, srcset_len, urls) : 0;
            if (rc == 0 && src != NULL && src_len) {
                PyObject *url = decode(src, src_len);
                rc = url == NULL ? -1 : distinct_load(out, seen, url, cfg->img_src);
                Py_XDECREF(url);
            }
            for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(urls); i++)
                rc = distinct_load(out, seen, PyList_GET_ITEM(urls, i), cfg->img_srcset);
            Py_DECREF(urls);
            if (rc != 1) return rc; /* 1: a srcset that is not ASCII, read in Python */
        }
    }
    PyObject *tagstr, *attrs, *css;
    if (record_parts(document, el, tag, tlen, is_style, &tagstr, &attrs, &css) < 0) return -1;
    if (append_steal(positions, PyLong_FromSsize_t(PyList_GET_SIZE(out))) < 0) {
        Py_DECREF(css);
        Py_DECREF(tagstr);
        Py_DECREF(attrs);
        return -1;
    }
    return append_steal(out, Py_BuildValue("(NNN)", tagstr, attrs, css));
}

/* `loads`' walk of a parsed document (`loads`, `loads_encoded`): (records, positions), or NULL
 * with an exception set. Reads the url names and load needles into `cfg` and frees them. */
static PyObject *walk_loads(config *cfg, PyObject *url_obj, PyObject *load_obj, void *document) {
    PyObject *out = NULL, *positions = NULL, *seen = NULL;
    firsts_t firsts;
    if (read_config(cfg, url_obj, load_obj, NULL) < 0) goto fail;
    load_firsts(cfg, &firsts);
    out = PyList_New(0);
    positions = PyList_New(0);
    seen = PySet_New(NULL);
    if (out == NULL || positions == NULL || seen == NULL) goto fail;
    node_t *root = (node_t *)document, *cur = root;
    for (;;) {
        int type = f_type(cur);
        if (type == NODE_COMMENT) {
            if (comment_record(document, cur, out, positions) < 0) goto fail;
        } else if (type == NODE_ELEMENT) {
            if (loads_element(cfg, &firsts, document, cur, out, positions, seen) < 0) goto fail;
        }
        node_t *child = f_first_child(cur);
        if (child != NULL) {
            cur = child;
            continue;
        }
        if ((cur = after_subtree(cur, root)) == NULL) break;
    }
    Py_DECREF(seen);
    free_config(cfg);
    return Py_BuildValue("(NN)", out, positions);
fail:
    Py_XDECREF(seen);
    free_config(cfg);
    Py_XDECREF(out);
    Py_XDECREF(positions);
    return NULL;
}

/* loads(parser, url_names, load_needles, "img[src]", "img[srcset]") -> (plain images' loads
 * and records in document order, the positions of the records in that list): see above. The
 * records are those of `walk` that can load: a comment that may be conditional ("-comment",
 * text), an element (tag, attributes, `<style>` text or None). */
static PyObject *loads(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *parser, *url_obj, *load_obj;
    config cfg = {0};
    if (!PyArg_ParseTuple(args, "OOOUU", &parser, &url_obj, &load_obj, &cfg.img_src,
                          &cfg.img_srcset))
        return NULL;
    parser_head *ph = whole_document(parser);
    if (ph == NULL) return NULL;
    return walk_loads(&cfg, url_obj, load_obj, ph->document);
}

/* May cleaning's rewrite edit this element (see the top of this file)? cfg holds the url names
 * and the load needles (no hide needles). *style_ok: the last style attribute it read and found
 * ASCII without a load needle (NULL for none), which plain_record then need not read again. */
static int may_edit(const config *cfg, const bstr *raw, Py_ssize_t n_raw, node_t *el,
                    attr_t **style_ok) {
    *style_ok = NULL;
    size_t len = 0;
    const lxb_char_t *name = f_elem_qname(el, &len);
    if (name != NULL) {
        for (Py_ssize_t i = 0; i < n_raw; i++)
            if (raw[i].len == len && needle_at(name, len, &raw[i])) return 1;
    }
    for (attr_t *a = f_first_attr(el); a != NULL; a = f_next_attr(a)) {
        size_t alen = 0;
        const lxb_char_t *an = f_attr_qname(a, &alen);
        if (an == NULL) continue;
        if (in_names(an, alen, cfg)) return 1;
        if (same(an, alen, "style", 5)) {
            size_t vlen = 0;
            const lxb_char_t *v = f_attr_value(a, &vlen);
            if (v == NULL) continue;
            /* Python's case folding is wider than ASCII's: such a style goes to Python. */
            for (size_t i = 0; i < vlen; i++)
                if (v[i] >= 0x80) return 1;
            int load = 0, hide = 0;
            read_style(v, vlen, cfg, &load, &hide);
            if (load) return 1;
            *style_ok = a;
        }
    }
    return 0;
}

/* A LexborNode of `parser` for `node`, made as selectolax makes one (its type's tp_new). */
static PyObject *node_object(PyTypeObject *tp, PyObject *empty, void *node, PyObject *parser) {
    PyObject *obj = tp->tp_new(tp, empty, NULL);
    if (obj == NULL) return NULL;
    node_head *nh = (node_head *)obj;
    nh->node = node;
    Py_INCREF(parser);
    Py_XSETREF(nh->parser, parser);
    nh->is_fragment_root = 0;
    nh->is_template_content = 0;
    return obj;
}

/* For cleaning's rewrite (candidates with `plain`): the references of a candidate whose every
 * reference is its link or its image, read here so that Python does not read its attributes
 * again through selectolax and guard/engine/loads.py's element_refs. `node` is the candidate's
 * LexborNode (stolen). What comes back (a new reference), as element_refs would read the
 * element:
 *   - a plain link: an `<a>` or `<area>` with one non-empty href and no other attribute that
 *     can load or link, its style (if any) ASCII and without a load needle: (node, href);
 *   - a plain image: an `<img>` whose only attributes that can load or link are src and srcset
 *     (at most one of each), its src not inline (`data:`, `cid:`: it may nest a document), its
 *     srcset ASCII (split_srcset splits it), its style as a plain link's:
 *     (node, src or None when empty or absent, [srcset candidates]);
 *   - anything else: node itself (Python reads it).
 * NULL with an exception on error. */
static PyObject *plain_record(const config *cfg, node_t *el, PyObject *node,
                              const attr_t *style_ok) {
    size_t tlen = 0;
    const lxb_char_t *tag = f_elem_qname(el, &tlen);
    if (tag == NULL) return node;
    int is_img = same(tag, tlen, "img", 3);
    if (!is_img && !same(tag, tlen, "a", 1) && !same(tag, tlen, "area", 4)) return node;
    const lxb_char_t *href = NULL, *src = NULL, *srcset = NULL;
    size_t href_len = 0, src_len = 0, srcset_len = 0;
    int n_href = 0, n_src = 0, n_srcset = 0, n_style = 0;
    for (attr_t *a = f_first_attr(el); a != NULL; a = f_next_attr(a)) {
        size_t alen = 0;
        const lxb_char_t *an = f_attr_qname(a, &alen);
        if (an == NULL) return node;
        if (same(an, alen, "style", 5)) {
            size_t vlen = 0;
            const lxb_char_t *v = f_attr_value(a, &vlen);
            if (++n_style > 1) return node;
            if (v == NULL || a == style_ok) continue; /* may_edit read this one: ASCII, no load */
            for (size_t i = 0; i < vlen; i++)
                if (v[i] >= 0x80) return node; /* Python's case folding decides (may_edit) */
            int load = 0, hide = 0;
            read_style(v, vlen, cfg, &load, &hide);
            if (load) return node;
        } else if (in_names(an, alen, cfg)) {
            if (is_img && same(an, alen, "src", 3)) {
                n_src++;
                src = f_attr_value(a, &src_len);
            } else if (is_img && same(an, alen, "srcset", 6)) {
                n_srcset++;
                srcset = f_attr_value(a, &srcset_len);
            } else if (!is_img && same(an, alen, "href", 4)) {
                n_href++;
                href = f_attr_value(a, &href_len);
            } else {
                return node;
            }
        }
    }
    if (!is_img) {
        if (n_href != 1 || href == NULL || href_len == 0) return node;
        PyObject *url = decode(href, href_len);
        if (url == NULL) {
            Py_DECREF(node);
            return NULL;
        }
        return Py_BuildValue("(NN)", node, url);
    }
    if (n_src > 1 || n_srcset > 1) return node;
    if (src != NULL && src_len && may_be_inline(src, src_len)) return node;
    PyObject *urls = PyList_New(0);
    if (urls == NULL) {
        Py_DECREF(node);
        return NULL;
    }
    if (srcset != NULL && srcset_len) {
        int rc = split_srcset(srcset, srcset_len, urls);
        if (rc != 0) {
            Py_DECREF(urls);
            if (rc == 1) return node; /* not ASCII: Python splits it */
            Py_DECREF(node);
            return NULL;
        }
    }
    PyObject *url = (src != NULL && src_len) ? decode(src, src_len) : Py_NewRef(Py_None);
    if (url == NULL) {
        Py_DECREF(urls);
        Py_DECREF(node);
        return NULL;
    }
    return Py_BuildValue("(NNN)", node, url, urls);
}

/* candidates(parser, a node of it, that node's mem_id, raw names, url names, load needles,
 *            plain=False)
 *   -> [LexborNode, ...] in document order (see the top of this file); with `plain`, a plain
 *   link or image comes as its record instead (plain_record). */
static PyObject *candidates(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *parser, *probe, *raw_obj, *url_obj, *load_obj;
    unsigned long long probe_id;
    int plain = 0;
    config cfg = {0};
    cfg.style_gen = ++style_generation;
    bstr *raw = NULL;
    Py_ssize_t n_raw = 0;
    static const bstr conditional = {"[if", 3};
    if (!PyArg_ParseTuple(args, "OOKOOO|p", &parser, &probe, &probe_id, &raw_obj, &url_obj,
                          &load_obj, &plain))
        return NULL;
    parser_head *ph = whole_document(parser);
    if (ph == NULL) return NULL;
    PyTypeObject *ntp = Py_TYPE(probe);
    if (strcmp(ntp->tp_name, "selectolax.lexbor.LexborNode") != 0 ||
        ntp->tp_basicsize != (Py_ssize_t)sizeof(node_head) || ntp->tp_new == NULL ||
        (uintptr_t)((node_head *)probe)->node != (uintptr_t)probe_id ||
        ((node_head *)probe)->parser != parser) {
        PyErr_SetString(PyExc_TypeError, "not a selectolax 1.0 LexborNode of this parser");
        return NULL;
    }
    PyObject *out = NULL, *empty = NULL;
    raw = read_names(raw_obj, &n_raw);
    if (raw == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n_raw; i++) {
        if (raw[i].len == 0) { /* would take every element without a name */
            PyErr_SetString(PyExc_TypeError, "raw names are non-empty bytes");
            goto fail;
        }
    }
    if (read_config(&cfg, url_obj, load_obj, NULL) < 0) goto fail;
    out = PyList_New(0);
    empty = PyTuple_New(0);
    if (out == NULL || empty == NULL) goto fail;

    void *document = ph->document; /* lxb_html_document_t starts with its DOM node */
    node_t *root = (node_t *)document, *cur = root;
    for (;;) {
        int type = f_type(cur), take = 0;
        attr_t *style_ok = NULL;
        if (type == NODE_COMMENT) {
            size_t len = 0;
            lxb_char_t *data = f_text_content(cur, &len);
            if (data != NULL) {
                take = holds_any(data, len, &conditional, 1);
                f_destroy_text(document, data);
            }
        } else if (type == NODE_ELEMENT) {
            take = may_edit(&cfg, raw, n_raw, cur, &style_ok);
        }
        if (take) {
            PyObject *node = node_object(ntp, empty, cur, parser);
            if (plain && node != NULL && type == NODE_ELEMENT)
                node = plain_record(&cfg, cur, node, style_ok);
            if (append_steal(out, node) < 0) goto fail;
        }
        node_t *child = f_first_child(cur);
        if (child != NULL) {
            cur = child;
            continue;
        }
        if ((cur = after_subtree(cur, root)) == NULL) break;
    }
    Py_DECREF(empty);
    PyMem_Free(raw);
    free_config(&cfg);
    return out;
fail:
    Py_XDECREF(empty);
    Py_XDECREF(out);
    PyMem_Free(raw);
    free_config(&cfg);
    return NULL;
}

/* unstripped(occurrences) -> [index]: where an occurrence's URL (item 0 of each tuple, a str)
 * starts or ends with white space, what str.strip takes off (Py_UNICODE_ISSPACE):
 * guard/engine/html.py's `unstripped`, which html.resolve_all asks when the document has no
 * base (most of them) so that it touches only those occurrences instead of reading each in
 * Python (tests/test_lexwalk.py compares the two). */
static PyObject *unstripped(PyObject *self, PyObject *occs) {
    (void)self;
    if (!PyList_Check(occs)) {
        PyErr_SetString(PyExc_TypeError, "unstripped: a list");
        return NULL;
    }
    PyObject *found = PyList_New(0);
    if (found == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(occs); i++) {
        PyObject *occ = PyList_GET_ITEM(occs, i);
        PyObject *url = PyTuple_Check(occ) && PyTuple_GET_SIZE(occ) > 0 ? PyTuple_GET_ITEM(occ, 0) : NULL;
        if (url == NULL || !PyUnicode_Check(url)) {
            PyErr_SetString(PyExc_TypeError, "unstripped: tuples whose first item is a str");
            Py_DECREF(found);
            return NULL;
        }
        Py_ssize_t n = PyUnicode_GET_LENGTH(url);
        if (n == 0) continue;
        int kind = PyUnicode_KIND(url);
        const void *data = PyUnicode_DATA(url);
        if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, 0)) &&
            !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, n - 1)))
            continue;
        PyObject *at = PyLong_FromSsize_t(i);
        if (at == NULL || PyList_Append(found, at) < 0) {
            Py_XDECREF(at);
            Py_DECREF(found);
            return NULL;
        }
        Py_DECREF(at);
    }
    return found;
}

/* holds(text, needle) -> bool: does `text` hold `needle` (lower-case ASCII bytes with at least one
 * byte that is not a letter, the anchor) ASCII case-insensitively: what the regex of
 * guard/engine/lexwalk.py's ascii_pattern answers (`<image`, `cid:`), a document-wide test made
 * before reading a document for what it rarely holds. Each anchor is found with memchr, in a
 * document of two- or four-byte characters too: memchr finds the anchor's byte wherever it stands
 * and the character holding it is then compared whole (a byte of another character, `U+3C3C` for
 * `<`, is passed over), so the search does not step through the text a character at a time (a
 * newsletter with one character above U+00FF is stored with two bytes a character: ~0.2 M
 * instructions a document by the loop). */
static int needle_from(int kind, const void *data, Py_ssize_t i, const char *needle, Py_ssize_t len) {
    for (Py_ssize_t j = 0; j < len; j++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i + j);
        if (c >= 'A' && c <= 'Z') c = c - 'A' + 'a';
        if (c != (Py_UCS4)(unsigned char)needle[j]) return 0;
    }
    return 1;
}

#ifdef __SSE2__
/* The pairs among 16 bytes at `at`: where the anchor stands and, `d` bytes on, the other character
 * (its byte with 0x20 set where it is a letter: either case). */
static inline __m128i pairs8(const unsigned char *at, Py_ssize_t d, __m128i anchor, __m128i fold,
                             __m128i other) {
    __m128i a = _mm_loadu_si128((const __m128i *)at), b = _mm_loadu_si128((const __m128i *)(at + d));
    return _mm_and_si128(_mm_cmpeq_epi8(a, anchor), _mm_cmpeq_epi8(_mm_or_si128(b, fold), other));
}

/* Sixteen two-byte characters at `at` as sixteen bytes, for pairs8's comparisons: ASCII as it is,
 * every other character saturated to 0x7F or 0x80 (_mm_packs_epi16 is signed), so that a pair the
 * comparison finds may be a false one (needle_from tells) but none made of ASCII is lost. */
static inline __m128i packed16(const Py_UCS2 *at) {
    return _mm_packs_epi16(_mm_loadu_si128((const __m128i *)at),
                           _mm_loadu_si128((const __m128i *)(at + 8)));
}

static inline __m128i pairs16(const Py_UCS2 *at, Py_ssize_t d, __m128i anchor, __m128i fold,
                              __m128i other) {
    __m128i a = packed16(at), b = packed16(at + d);
    return _mm_and_si128(_mm_cmpeq_epi8(a, anchor), _mm_cmpeq_epi8(_mm_or_si128(b, fold), other));
}
#endif

/* In a text of one- or two-byte characters, the anchor paired with the needle's character furthest
 * from it (its last, else its first), looked for 64 characters at a time: a newsletter holds
 * thousands of `<` (and its URLs as many `:`) where memchr stopped at each, and as many `<i` of
 * `<img`, few `<` with an `e` five characters on. Two-byte text (half of real mail) is packed to
 * bytes first: memchr stopped there at each `<` too (~0.87 instructions a byte of real mail in all,
 * ~0.55 here).
 * Each pair found is compared whole (needle_from). -1 when the needle is found, else the first
 * index of the anchor not read yet (k where nothing was): memchr reads on from there. */
#ifdef __SSE2__
#define PAIR_SCAN(PAIRS, S)                                                                       \
    for (; i <= last && i + 4 * step + reach <= n; i += 4 * step) {                               \
        __m128i m0 = PAIRS(S + i, d, a_, f_, o_), m1 = PAIRS(S + i + 16, d, a_, f_, o_);          \
        __m128i m2 = PAIRS(S + i + 32, d, a_, f_, o_), m3 = PAIRS(S + i + 48, d, a_, f_, o_);     \
        if (!_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(m0, m1), _mm_or_si128(m2, m3))))        \
            continue;                                                                             \
        __m128i m[4] = {m0, m1, m2, m3};                                                          \
        for (int q = 0; q < 4; q++)                                                               \
            for (unsigned bits = (unsigned)_mm_movemask_epi8(m[q]); bits; bits &= bits - 1) {     \
                Py_ssize_t at = i + 16 * q + __builtin_ctz(bits);                                 \
                if (at <= last && needle_from(kind, data, at - k, needle, len)) return -1;        \
            }                                                                                     \
    }                                                                                             \
    for (; i <= last && i + step + reach <= n; i += step)                                         \
        for (unsigned bits = (unsigned)_mm_movemask_epi8(PAIRS(S + i, d, a_, f_, o_)); bits;      \
             bits &= bits - 1) {                                                                  \
            Py_ssize_t at = i + __builtin_ctz(bits);                                              \
            if (at <= last && needle_from(kind, data, at - k, needle, len)) return -1;            \
        }
#endif
static Py_ssize_t pair_scan(int kind, const void *data, Py_ssize_t n, const char *needle,
                            Py_ssize_t len, Py_ssize_t k) {
#ifdef __SSE2__
    if (len < 2 || (kind != PyUnicode_1BYTE_KIND && kind != PyUnicode_2BYTE_KIND)) return k;
    Py_ssize_t d = k + 1 < len ? len - 1 - k : -k; /* where the other stands from the anchor */
    unsigned char other = (unsigned char)needle[k + d];
    unsigned char fold = (other >= 'a' && other <= 'z') ? 0x20 : 0;
    /* The anchor's possible indexes are [k, last]; a block of `step` characters at i reads
     * [i + min(d, 0), i + step + max(d, 0)). Four blocks are read before their pairs are
     * looked at (most of a document has none). */
    Py_ssize_t last = n - len + k, i = k, step = 16, reach = d > 0 ? d : 0;
    const __m128i a_ = _mm_set1_epi8((char)needle[k]), f_ = _mm_set1_epi8((char)fold),
                  o_ = _mm_set1_epi8((char)other);
    if (kind == PyUnicode_1BYTE_KIND) {
        const unsigned char *s = data;
        PAIR_SCAN(pairs8, s)
    } else {
        const Py_UCS2 *s = data;
        PAIR_SCAN(pairs16, s)
    }
    return i;
#else
    (void)kind, (void)data, (void)n, (void)needle, (void)len;
    return k;
#endif
}

static PyObject *holds(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *text;
    const char *needle;
    Py_ssize_t len, k = -1;
    if (!PyArg_ParseTuple(args, "Uy#", &text, &needle, &len)) return NULL;
    for (Py_ssize_t j = 0; j < len; j++) {
        unsigned char c = (unsigned char)needle[j];
        if (c >= 0x80 || (c >= 'A' && c <= 'Z')) k = -2;
        if (k == -1 && !(c >= 'a' && c <= 'z')) k = j;
        if (k == -2) break;
    }
    if (k < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "holds: lower-case ASCII with a byte that is not a letter");
        return NULL;
    }
    unsigned char anchor = (unsigned char)needle[k];
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (n < len) Py_RETURN_FALSE;
    /* The anchor's character stands at an index in [k, n - len + k]: its bytes in [lo, hi). */
    Py_ssize_t from = pair_scan(kind, data, n, needle, len, k);
    if (from < 0) Py_RETURN_TRUE;
    const unsigned char *start = data, *p = start + (size_t)from * kind;
    const unsigned char *end = start + (size_t)(n - len + k + 1) * kind;
    while (p < end && (p = memchr(p, anchor, (size_t)(end - p))) != NULL) {
        Py_ssize_t i = (Py_ssize_t)(p - start) / kind;
        if (PyUnicode_READ(kind, data, i) == anchor &&
            needle_from(kind, data, i - k, needle, len))
            Py_RETURN_TRUE;
        p++;
    }
    Py_RETURN_FALSE;
}

/* utf8(text) -> bytes: text.encode("utf-8", "ignore"), what selectolax does to a str before Lexbor
 * parses it (its preprocess_input): the same bytes, made faster. A newsletter is mostly ASCII
 * stored two bytes a character (one character above U+00FF makes it so); CPython's encoder takes
 * each character in turn (~11 instructions a character, ~0.4 M a real newsletter); here a run of
 * ASCII is read a 64-bit word at a time. "ignore" drops lone surrogates (U+D800-U+DFFF: a str
 * holds no pairs), as here. */
static unsigned char *put_char(unsigned char *o, Py_UCS4 c) {
    if (c < 0x80) {
        *o++ = (unsigned char)c;
    } else if (c < 0x800) {
        *o++ = (unsigned char)(0xC0 | (c >> 6));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    } else if (c >= 0xD800 && c <= 0xDFFF) {
        /* a lone surrogate: "ignore" leaves it out */
    } else if (c < 0x10000) {
        *o++ = (unsigned char)(0xE0 | (c >> 12));
        *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | (c >> 18));
        *o++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    }
    return o;
}

static PyObject *utf8(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "utf8: a str");
        return NULL;
    }
    if (PyUnicode_READY(text) < 0) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    if (PyUnicode_IS_ASCII(text)) return PyBytes_FromStringAndSize(data, n);
    /* At most 2 bytes a character of one byte, 3 of two, 4 of four. */
    Py_ssize_t per = kind == PyUnicode_1BYTE_KIND ? 2 : kind == PyUnicode_2BYTE_KIND ? 3 : 4;
    if (n > (PY_SSIZE_T_MAX - 1) / per)
        return PyUnicode_AsEncodedString(text, "utf-8", "ignore");
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * per);
    if (out == NULL) return NULL;
    unsigned char *o0 = (unsigned char *)PyBytes_AS_STRING(out), *o = o0;
    Py_ssize_t i = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *s = data;
        while (i < n) {
            uint64_t w;
#ifdef __SSE2__
            if (i + 16 <= n) { /* 16 ASCII characters are their own 16 bytes */
                __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
                if (_mm_movemask_epi8(v) == 0) {
                    _mm_storeu_si128((__m128i *)o, v);
                    o += 16;
                    i += 16;
                    continue;
                }
            }
#endif
            if (i + 8 <= n && (memcpy(&w, s + i, 8), (w & 0x8080808080808080ULL) == 0)) {
                memcpy(o, s + i, 8);
                o += 8;
                i += 8;
                continue;
            }
            o = put_char(o, s[i++]);
        }
    } else if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *s = data;
#ifdef __SSE2__
        const __m128i high = _mm_set1_epi16((short)0xFF80), zero = _mm_setzero_si128();
#endif
        while (i < n) {
            uint64_t w;
#ifdef __SSE2__
            if (i + 8 <= n) { /* 8 ASCII characters packed into their 8 bytes */
                __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
                if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(v, high), zero)) == 0xFFFF) {
                    _mm_storel_epi64((__m128i *)o, _mm_packus_epi16(v, v));
                    o += 8;
                    i += 8;
                    continue;
                }
            }
#endif
            if (i + 4 <= n && (memcpy(&w, s + i, 8), (w & 0xFF80FF80FF80FF80ULL) == 0)) {
                o[0] = (unsigned char)s[i];
                o[1] = (unsigned char)s[i + 1];
                o[2] = (unsigned char)s[i + 2];
                o[3] = (unsigned char)s[i + 3];
                o += 4;
                i += 4;
                continue;
            }
            o = put_char(o, s[i++]);
        }
    } else {
        const Py_UCS4 *s = data;
        while (i < n) {
            uint64_t w;
            if (i + 2 <= n && (memcpy(&w, s + i, 8), (w & 0xFFFFFF80FFFFFF80ULL) == 0)) {
                o[0] = (unsigned char)s[i];
                o[1] = (unsigned char)s[i + 1];
                o += 2;
                i += 2;
                continue;
            }
            o = put_char(o, s[i++]);
        }
    }
    if (_PyBytes_Resize(&out, o - o0) < 0) return NULL;
    return out;
}

/* may_hide(text) -> bool: guard.engine.css.may_hide of a stylesheet whose comments are already out
 * (css.without_comments), in one pass instead of a regex substitution, a lower-cased copy and a
 * dozen searches (~0.4 M instructions a real newsletter's sheets in Python). The same answer on
 * every text (tests/test_css.py compares the two on the corpus's sheets and generated ones):
 *   - the at-rules go as css._AT_RULES.sub("", text) takes them out: from an `@`, the run up to
 *     `{`, `}` or `;`; then `;`, or a block of up to three levels of braces closed by `}` or by
 *     the end of the text, or the end of the text; anything else (a `}` first, deeper braces, an
 *     inner block left open) leaves that `@` standing and the search goes on after it;
 *   - what is left is read lower-cased as str.lower reads it: ASCII letters, U+0130 (i and
 *     U+0307) and U+212A (k) are the only characters whose lower case holds ASCII; no other
 *     character's lower case is in a class the patterns test (white space and digits have none);
 *   - each branch of css._MAY_HIDE_BRANCHES and css._SIZES is read at each place its literal
 *     starts, `\s` and `\d` as Python's regexes read them in a str (Py_UNICODE_ISSPACE,
 *     Py_UNICODE_ISDECIMAL). None of them needs backtracking but _SMALL's `0+[a-z%]*`, whose
 *     every end is tried. */
typedef struct {
    Py_UCS4 *c;              /* the text, or NULL when it is read from c1 */
    const unsigned char *c1; /* a one-byte sheet's text (see may_hide), or NULL */
    Py_ssize_t n;
} ubuf;

/* Character j of the text (one-byte or four-byte). */
#define UB(b, j) ((b)->c1 != NULL ? (Py_UCS4)(b)->c1[(j)] : (b)->c[(j)])

/* The end of an at-rule that starts at t[i] == '@' (as _AT_RULE matches), or -1. */
static Py_ssize_t at_rule_end(int kind, const void *t, Py_ssize_t n, Py_ssize_t i) {
    Py_ssize_t j = i + 1;
    Py_UCS4 c = 0;
    while (j < n && (c = PyUnicode_READ(kind, t, j)) != '{' && c != '}' && c != ';') j++;
    if (j == n) return n;
    if (c == ';') return j + 1;
    if (c == '}') return -1;
    j++; /* the block: non-brace runs and blocks of the second level, then `}` or the end */
    for (;;) {
        if (j == n) return n;
        c = PyUnicode_READ(kind, t, j);
        if (c == '}') return j + 1;
        if (c != '{') {
            j++;
            continue;
        }
        j++; /* second level: non-brace runs and blocks of the third, closed by `}` */
        for (;;) {
            if (j == n) return -1;
            c = PyUnicode_READ(kind, t, j);
            if (c == '}') {
                j++;
                break;
            }
            if (c != '{') {
                j++;
                continue;
            }
            j++; /* third level: a non-brace run closed by `}` */
            while (j < n && (c = PyUnicode_READ(kind, t, j)) != '{' && c != '}') j++;
            if (j == n || c == '{') return -1;
            j++;
        }
    }
}

static Py_ssize_t skip_space(const ubuf *b, Py_ssize_t j) {
    while (j < b->n && Py_UNICODE_ISSPACE(UB(b, j))) j++;
    return j;
}

static int at_text(const ubuf *b, Py_ssize_t j, const char *lit) {
    for (; *lit; lit++, j++)
        if (j >= b->n || UB(b, j) != (Py_UCS4)(unsigned char)*lit) return 0;
    return 1;
}

/* `name\s*:\s*`: where the value starts after `name` at j, or -1. */
static Py_ssize_t value_at(const ubuf *b, Py_ssize_t j) {
    j = skip_space(b, j);
    if (j >= b->n || UB(b, j) != ':') return -1;
    return skip_space(b, j + 1);
}

/* `\s*(?:px|pt)?\s*(?:[!;}]|$)` from j. */
static int small_end(const ubuf *b, Py_ssize_t j) {
    j = skip_space(b, j);
    if (j + 1 < b->n && UB(b, j) == 'p' && (UB(b, j + 1) == 'x' || UB(b, j + 1) == 't'))
        j = skip_space(b, j + 2);
    return j == b->n || UB(b, j) == '!' || UB(b, j) == ';' || UB(b, j) == '}';
}

/* _SMALL after a `width` or `height` that ends at j. */
static int small_after(const ubuf *b, Py_ssize_t j) {
    Py_ssize_t r = value_at(b, j), s;
    if (r < 0 || r >= b->n) return 0;
    Py_UCS4 c = UB(b, r);
    if (c >= '0' && c <= '3') { /* [0-3](?:\.\d*)? */
        s = r + 1;
        if (s < b->n && UB(b, s) == '.') {
            s++;
            while (s < b->n && Py_UNICODE_ISDECIMAL(UB(b, s))) s++;
        }
        if (small_end(b, s)) return 1;
    }
    if (c == '.' && r + 1 < b->n && Py_UNICODE_ISDECIMAL(UB(b, r + 1))) { /* \.\d+ */
        s = r + 1;
        while (s < b->n && Py_UNICODE_ISDECIMAL(UB(b, s))) s++;
        if (small_end(b, s)) return 1;
    }
    if (c == '0') { /* 0+[a-z%]*: every end of the letters */
        s = r;
        while (s < b->n && UB(b, s) == '0') s++;
        for (;;) {
            if (small_end(b, s)) return 1;
            if (s < b->n && ((UB(b, s) >= 'a' && UB(b, s) <= 'z') || UB(b, s) == '%'))
                s++;
            else
                break;
        }
    }
    return 0;
}

static int name_char(Py_UCS4 c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '\\';
}

static int zero_value(const ubuf *b, Py_ssize_t j) { /* `\s*:\s*[0.]` */
    Py_ssize_t r = value_at(b, j);
    return r >= 0 && r < b->n && (UB(b, r) == '0' || UB(b, r) == '.');
}

static int one_of_after(const ubuf *b, Py_ssize_t j, const char *a, const char *c) {
    Py_ssize_t r = value_at(b, j);
    return r >= 0 && (at_text(b, r, a) || at_text(b, r, c));
}

static int branch_at(const ubuf *b, Py_ssize_t p) {
    switch (UB(b, p)) {
    case '\\':
        return 1;
    case 'm':
        if (at_text(b, p, "mso-hide")) return 1;
        if (at_text(b, p, "max-height") && zero_value(b, p + 10)) return 1;
        return at_text(b, p, "max-width") && zero_value(b, p + 9);
    case 'i':
        return at_text(b, p, "image-set");
    case 'd':
        if (!at_text(b, p, "display")) return 0;
        {
            Py_ssize_t r = value_at(b, p + 7);
            return r >= 0 && at_text(b, r, "none");
        }
    case 'v':
        return at_text(b, p, "visibility") && one_of_after(b, p + 10, "hidden", "collapse");
    case 'o':
        return at_text(b, p, "opacity") && zero_value(b, p + 7);
    case 'p':
        return at_text(b, p, "position") && one_of_after(b, p + 8, "absolute", "fixed");
    case 'u':
        if (!at_text(b, p, "url(")) return 0;
        {
            Py_ssize_t r = skip_space(b, p + 4);
            if (r < b->n && (UB(b, r) == '\'' || UB(b, r) == '"')) r = skip_space(b, r + 1);
            return !at_text(b, r, "data:");
        }
    case 'w':
        return at_text(b, p, "width") && (p == 0 || !name_char(UB(b, p - 1))) &&
               small_after(b, p + 5);
    case 'h':
        return at_text(b, p, "height") && (p == 0 || !name_char(UB(b, p - 1))) &&
               small_after(b, p + 6);
    default:
        return 0;
    }
}

static unsigned char starts_branch[128]; /* the first characters of the branches' literals */
/* The second character each first one needs (`\\` needs none): where the pair is another (most
 * places of a sheet: `d`, `i`, `o`, `p`... start many words) no branch can match, and branch_at
 * is not called. */
static unsigned char pair_ok[128][128];

/* Could a branch start at p (a start character followed by its pair, a backslash, or the last
 * character)? */
static inline int may_start(const ubuf *b, Py_ssize_t p) {
    Py_UCS4 c = UB(b, p), next;
    if (c >= 128 || !starts_branch[c]) return 0;
    if (c == '\\' || p + 1 == b->n) return 1;
    next = UB(b, p + 1);
    return next < 128 && pair_ok[c][next];
}

/* One run of a one-byte sheet, lower-cased as str.lower does ASCII (Latin-1 letters lower to
 * Latin-1 letters, which no branch reads: left as they are). */
static unsigned char *lower_run(unsigned char *dst, const Py_UCS1 *src, Py_ssize_t len) {
    Py_ssize_t k = 0;
#ifdef __SSE2__
    const __m128i above = _mm_set1_epi8('A' - 1), below = _mm_set1_epi8('Z' + 1);
    const __m128i gap = _mm_set1_epi8('a' - 'A');
    for (; k + 16 <= len; k += 16) { /* signed compares: bytes >= 0x80 are below 'A' */
        __m128i v = _mm_loadu_si128((const __m128i *)(src + k));
        __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, above), _mm_cmplt_epi8(v, below));
        _mm_storeu_si128((__m128i *)(dst + k), _mm_add_epi8(v, _mm_and_si128(upper, gap)));
    }
#endif
    for (; k < len; k++) {
        Py_UCS1 c = src[k];
        dst[k] = (unsigned char)(c + ((unsigned)(c - 'A') < 26u ? 'a' - 'A' : 0));
    }
    return dst + len;
}

static PyObject *may_hide(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "may_hide: a str");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *t = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (!starts_branch['w']) {
        for (const char *s = "\\midvopuwh"; *s; s++) starts_branch[(unsigned char)*s] = 1;
        /* branch_at's literals: mso-hide, max-*, image-set, display, visibility, opacity,
         * position, url(, width, height */
        static const char *pairs[] = {"ms", "ma", "im", "di", "vi", "op", "po", "ur", "wi", "he"};
        for (size_t k = 0; k < sizeof pairs / sizeof *pairs; k++)
            pair_ok[(unsigned char)pairs[k][0]][(unsigned char)pairs[k][1]] = 1;
    }
    int found = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        /* Most sheets: ASCII or Latin-1 (no U+0130, U+212A), read a byte a character: the runs
         * between `@`s (memchr finds them) copied lower-cased, sixteen bytes at a time, and the
         * places where a branch may start found sixteen at a time too. */
        const Py_UCS1 *s = t;
        unsigned char *lowered = PyMem_Malloc((size_t)n + 1), *dst = lowered;
        if (lowered == NULL) return PyErr_NoMemory();
        Py_ssize_t i = 0;
        while (i < n) {
            const Py_UCS1 *at = memchr(s + i, '@', (size_t)(n - i));
            Py_ssize_t stop = at != NULL ? at - s : n;
            dst = lower_run(dst, s + i, stop - i);
            i = stop;
            if (i == n) break;
            Py_ssize_t end = at_rule_end(kind, t, n, i);
            if (end >= 0) {
                i = end;
                continue;
            }
            *dst++ = '@';
            i++;
        }
        ubuf b = {NULL, lowered, dst - lowered};
        Py_ssize_t p = 0;
#ifdef __SSE2__
        /* Sixteen places at a time: a backslash, or a branch's first two characters (the pairs
         * of may_start), compared with the bytes there and the bytes after them. */
        static const char pair_text[][2] = {{'m', 's'}, {'m', 'a'}, {'i', 'm'}, {'d', 'i'},
                                            {'v', 'i'}, {'o', 'p'}, {'p', 'o'}, {'u', 'r'},
                                            {'w', 'i'}, {'h', 'e'}};
        enum { NPAIRS = sizeof pair_text / sizeof *pair_text };
        __m128i first[NPAIRS], second[NPAIRS];
        for (int k = 0; k < NPAIRS; k++) {
            first[k] = _mm_set1_epi8(pair_text[k][0]);
            second[k] = _mm_set1_epi8(pair_text[k][1]);
        }
        const __m128i backslash = _mm_set1_epi8('\\');
        for (; p + 17 <= b.n && !found; p += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(lowered + p));
            __m128i w = _mm_loadu_si128((const __m128i *)(lowered + p + 1));
            __m128i hit = _mm_cmpeq_epi8(v, backslash);
            for (int k = 0; k < NPAIRS; k++)
                hit = _mm_or_si128(hit, _mm_and_si128(_mm_cmpeq_epi8(v, first[k]),
                                                      _mm_cmpeq_epi8(w, second[k])));
            for (unsigned mask = (unsigned)_mm_movemask_epi8(hit); mask && !found; mask &= mask - 1)
                found = branch_at(&b, p + __builtin_ctz(mask));
        }
#endif
        for (; p < b.n && !found; p++)
            if (may_start(&b, p)) found = branch_at(&b, p);
        PyMem_Free(lowered);
        return PyBool_FromLong(found);
    }
    ubuf b = {PyMem_Malloc(sizeof(Py_UCS4) * (size_t)(2 * n + 1)), NULL, 0};
    if (b.c == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n;) {
        Py_UCS4 c = PyUnicode_READ(kind, t, i);
        if (c == '@') {
            Py_ssize_t end = at_rule_end(kind, t, n, i);
            if (end >= 0) {
                i = end;
                continue;
            }
        }
        if (c >= 'A' && c <= 'Z') {
            c += 'a' - 'A';
        } else if (c == 0x212A) {
            c = 'k';
        } else if (c == 0x130) {
            b.c[b.n++] = 'i';
            c = 0x307;
        }
        b.c[b.n++] = c;
        i++;
    }
    for (Py_ssize_t p = 0; p < b.n && !found; p++)
        if (may_start(&b, p)) found = branch_at(&b, p);
    PyMem_Free(b.c);
    return PyBool_FromLong(found);
}

/* Cleaning's check (guard/clean/html.py `_Check.verify`) parses every rewrite again and reads its
 * loads. `loads_encoded` parses the output's UTF-8 bytes into one Lexbor document kept here, not
 * a selectolax parser each: Lexbor's parse of a document it parsed before cleans it first (its
 * memory, hashes and parser stay), where a new parser created a document, a parser and a
 * tokenizer and freed them all again (~120 us of a ~370 us re-parse of a real newsletter). The
 * parse is Lexbor's own, as selectolax's LexborHTMLParser(bytes) calls it (no encoding read, no
 * scripting, DOM options 0: Lexbor's defaults); the walk is `loads`'. The parse releases the
 * GIL, as selectolax's does; the kept document is marked busy (with the GIL held) from before the
 * parse to the end of the walk, and a call made meanwhile, or for a document larger than
 * CHECK_KEPT_BYTES (whose tree is not kept in memory between checks), parses into a document of
 * its own. */
static void *check_doc = NULL;
static int check_busy = 0;
#define CHECK_KEPT_BYTES ((Py_ssize_t)512 * 1024)

/* loads_encoded(UTF-8 bytes, url_names, load_needles, "img[src]", "img[srcset]") -> `loads`'
 * answer for LexborHTMLParser(those bytes), parsed as above. */
static PyObject *loads_encoded(PyObject *self, PyObject *args) {
    (void)self;
    const char *data;
    Py_ssize_t len;
    PyObject *url_obj, *load_obj;
    config cfg = {0};
    if (!PyArg_ParseTuple(args, "y#OOUU", &data, &len, &url_obj, &load_obj, &cfg.img_src,
                          &cfg.img_srcset))
        return NULL;
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "not bound");
        return NULL;
    }
    int own = check_busy || len > CHECK_KEPT_BYTES;
    void *document = own ? NULL : check_doc;
    if (document == NULL) {
        document = f_doc_create();
        if (document == NULL) return PyErr_NoMemory();
        if (!own) check_doc = document;
    }
    if (!own) check_busy = 1;
    unsigned int status;
    Py_BEGIN_ALLOW_THREADS /* as selectolax parses: the kept document is marked busy already */
    status = f_doc_parse(document, (const lxb_char_t *)data, (size_t)len);
    Py_END_ALLOW_THREADS
    PyObject *result = NULL;
    if (status != 0)
        PyErr_SetString(PyExc_ValueError, "Lexbor cannot parse the document");
    else
        result = walk_loads(&cfg, url_obj, load_obj, document);
    if (own) f_doc_destroy(document);
    else check_busy = 0;
    return result;
}

/* The check's last step (lexwalk.py `_distinct_of`, for a document without a base): each
 * (url, element) of `found` keyed by its URL stripped as str.strip() strips (Py_UNICODE_ISSPACE
 * at either end), or as written for the base itself and what a nested `data:`/`cid:` document
 * references (an element holding " > ", but for "iframe[srcdoc] > "), the first of each key
 * kept in order. A newsletter's ~70 loads, mostly plain images whose element is one of the
 * walk's own two strings (compared by identity first) and whose URL needs no strip: their
 * tuples are handed back as they are. */
static int written_key(PyObject *element) {
    if (PyUnicode_CompareWithASCIIString(element, "base[href]") == 0) return 1;
    PyObject *sep = PyUnicode_FromString(" > ");
    if (sep == NULL) return -1;
    Py_ssize_t at = PyUnicode_Find(element, sep, 0, PY_SSIZE_T_MAX, 1);
    Py_DECREF(sep);
    if (at < 0) return at == -1 ? 0 : -1;
    PyObject *head = PyUnicode_FromString("iframe[srcdoc] > ");
    if (head == NULL) return -1;
    Py_ssize_t srcdoc = PyUnicode_Tailmatch(element, head, 0, PY_SSIZE_T_MAX, -1);
    Py_DECREF(head);
    return srcdoc < 0 ? -1 : !srcdoc;
}

static PyObject *distinct_firsts(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *found, *img_src, *img_srcset;
    if (!PyArg_ParseTuple(args, "O!UU", &PyList_Type, &found, &img_src, &img_srcset)) return NULL;
    PyObject *out = PyList_New(0), *keys = PySet_New(NULL);
    if (out == NULL || keys == NULL) goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(found); i++) {
        PyObject *item = PyList_GET_ITEM(found, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(item, 1))) {
            PyErr_SetString(PyExc_TypeError, "found holds (url, element) pairs of str");
            goto fail;
        }
        PyObject *url = PyTuple_GET_ITEM(item, 0), *element = PyTuple_GET_ITEM(item, 1);
        int as_written = 0;
        if (element != img_src && element != img_srcset) {
            as_written = written_key(element);
            if (as_written < 0) goto fail;
        }
        PyObject *key = url;
        Py_INCREF(key);
        Py_ssize_t n = PyUnicode_GET_LENGTH(url);
        if (!as_written && n > 0 &&
            (Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(url, 0)) ||
             Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(url, n - 1)))) {
            Py_DECREF(key);
            key = PyObject_CallMethod(url, "strip", NULL);
            if (key == NULL) goto fail;
        }
        int known = PySet_Contains(keys, key);
        int rc = known;
        if (known == 0) {
            rc = PySet_Add(keys, key);
            if (rc == 0) {
                if (key == url && PyTuple_CheckExact(item)) {
                    Py_INCREF(item);
                    rc = append_steal(out, item);
                } else {
                    rc = append_steal(out, PyTuple_Pack(2, key, element));
                }
            }
        }
        Py_DECREF(key);
        if (rc < 0) goto fail;
    }
    Py_DECREF(keys);
    return out;
fail:
    Py_XDECREF(out);
    Py_XDECREF(keys);
    return NULL;
}

/* top_rules(sheet without its comments) -> [(prelude, declarations)]: the qualified rules at the
 * top of a stylesheet, as guard.engine.css._TOP_ITEM.finditer reads them (the matches whose
 * prelude group took part): white space (\s, Py_UNICODE_ISSPACE) is passed over, then an at-rule
 * (at_rule_end: css._AT_RULE), or `prelude{declarations}` (a prelude of no `{`, `}`, `;`
 * starting with no `@`; declarations of no brace), or a run of no `{`, `}`, `@`, or one
 * character. sre read each character of a sheet at ~50 instructions (at-rules' blocks too);
 * css.top_rules_python is the reference (tests/test_css.py compares the two). */
static PyObject *top_rules(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "top_rules: a str");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *t = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), pos = 0;
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (;;) {
        while (pos < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, t, pos))) pos++;
        if (pos >= n) break;
        Py_UCS4 c = PyUnicode_READ(kind, t, pos), d = 0;
        if (c == '@') {
            Py_ssize_t end = at_rule_end(kind, t, n, pos);
            pos = end >= 0 ? end : pos + 1; /* else `[\s\S]` takes the `@` */
            continue;
        }
        if (c == '{' || c == '}') {
            pos++;
            continue;
        }
        if (c != ';') { /* `([^{};@][^{};]*+)\{([^{}]*+)\}` */
            Py_ssize_t j = pos + 1;
            while (j < n && (d = PyUnicode_READ(kind, t, j)) != '{' && d != '}' && d != ';') j++;
            if (j < n && d == '{') {
                Py_ssize_t k = j + 1;
                while (k < n && (d = PyUnicode_READ(kind, t, k)) != '{' && d != '}') k++;
                if (k < n && d == '}') {
                    PyObject *prelude = PyUnicode_Substring(text, pos, j);
                    PyObject *body = prelude != NULL ? PyUnicode_Substring(text, j + 1, k) : NULL;
                    PyObject *pair = body != NULL ? PyTuple_Pack(2, prelude, body) : NULL;
                    Py_XDECREF(prelude);
                    Py_XDECREF(body);
                    if (pair == NULL || PyList_Append(out, pair) < 0) {
                        Py_XDECREF(pair);
                        Py_DECREF(out);
                        return NULL;
                    }
                    Py_DECREF(pair);
                    pos = k + 1;
                    continue;
                }
            }
        }
        pos++; /* `[^{}@]++`: c is none of them */
        while (pos < n && (d = PyUnicode_READ(kind, t, pos)) != '{' && d != '}' && d != '@') pos++;
    }
    return out;
}

/* -- a declaration block's reading (css.weighted_declarations) -------------------------------- */

static PyObject *ascii_str(const unsigned char *s, Py_ssize_t len) {
    PyObject *out = PyUnicode_New(len, 127);
    if (out != NULL) memcpy(PyUnicode_1BYTE_DATA(out), s, (size_t)len);
    return out;
}

/* weighted_declarations(block) -> {property: (value, !important)}, or None: the answer of
 * css.weighted_declarations_python for an ASCII block without a backslash or a comment (None
 * for any other: the caller reads it in Python). Each `;`-separated chunk with a `:` is a
 * declaration, name and value stripped (str.isspace) and lower-cased; a value ending in
 * `!\s*important` (the stripped value's end: css._IMPORTANT's only match) is important, that
 * end cut off and the rest stripped again; a later declaration wins unless the earlier one of
 * its property is important and it is not. The Python loop was ~2 us a Mailchimp rule's block,
 * read for every rule of a sheet that may hide, and for the inline styles that set `!`. */
static PyObject *weighted_declarations(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "weighted_declarations: a str");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(text)) Py_RETURN_NONE;
    const unsigned char *t = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (memchr(t, '\\', (size_t)n) != NULL) Py_RETURN_NONE;
    for (const unsigned char *p = t; (p = memchr(p, '/', (size_t)(t + n - p))) != NULL; p++)
        if (p + 1 < t + n && p[1] == '*') Py_RETURN_NONE;
    unsigned char small[512];
    unsigned char *low = n <= (Py_ssize_t)sizeof small ? small : PyMem_Malloc((size_t)n + 1);
    if (low == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = t[i];
        low[i] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
    }
    PyObject *result = PyDict_New();
    if (result == NULL) goto fail;
    Py_ssize_t start = 0;
    while (start <= n) {
        const unsigned char *semi = memchr(low + start, ';', (size_t)(n - start));
        Py_ssize_t end = semi != NULL ? semi - low : n;
        const unsigned char *colon = memchr(low + start, ':', (size_t)(end - start));
        if (colon != NULL) {
            Py_ssize_t a = start, b = colon - low, c = b + 1, d = end;
            while (a < b && ascii_space(low[a])) a++;
            while (b > a && ascii_space(low[b - 1])) b--;
            while (c < d && ascii_space(low[c])) c++;
            while (d > c && ascii_space(low[d - 1])) d--;
            int important = 0;
            if (d - c >= 10 && memcmp(low + d - 9, "important", 9) == 0) {
                Py_ssize_t k = d - 9;
                while (k > c && ascii_space(low[k - 1])) k--;
                if (k > c && low[k - 1] == '!') {
                    important = 1;
                    d = k - 1;
                    while (d > c && ascii_space(low[d - 1])) d--;
                }
            }
            PyObject *name = ascii_str(low + a, b - a);
            if (name == NULL) goto fail;
            PyObject *earlier = PyDict_GetItemWithError(result, name); /* borrowed */
            if (earlier == NULL && PyErr_Occurred()) {
                Py_DECREF(name);
                goto fail;
            }
            if (earlier == NULL || important || PyTuple_GET_ITEM(earlier, 1) != Py_True) {
                PyObject *value = ascii_str(low + c, d - c);
                PyObject *pair = value != NULL ? PyTuple_Pack(2, value, important ? Py_True : Py_False) : NULL;
                Py_XDECREF(value);
                if (pair == NULL || PyDict_SetItem(result, name, pair) < 0) {
                    Py_XDECREF(pair);
                    Py_DECREF(name);
                    goto fail;
                }
                Py_DECREF(pair);
            }
            Py_DECREF(name);
        }
        start = end + 1;
    }
    if (low != small) PyMem_Free(low);
    return result;
fail:
    if (low != small) PyMem_Free(low);
    Py_XDECREF(result);
    return NULL;
}

/* The texts one of which a declaration block must hold (lower-cased) for a rule of it to count
 * for a sheet: guard.engine.layout._COUNTS_IN_BLOCK, in its order. */
static const char *const COUNTS_IN_BLOCK[] = {
    "display", "visibility", "opacity", "mso-hide", "position", "left", "top", "right",
    "overflow", "width", "height", "url", "@import", "image-set", NULL};

/* block_may_count(block) -> bool: guard.engine.layout._block_may_count_python's answer (a
 * backslash, or one of COUNTS_IN_BLOCK in the lower-cased block), in one pass over the block
 * lower-cased as ASCII: of str.lower's other mappings only U+0130 (`i` and U+0307) and U+212A
 * (`k`) give ASCII, and no text of the list holds a `k` or an `i` followed by what is not a
 * letter, so what they make matches nothing there (tests/test_layout.py compares the two). */
static PyObject *block_may_count(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "block_may_count: a str");
        return NULL;
    }
    /* The texts by their first character (bit k: COUNTS_IN_BLOCK[k]), so that a character
     * starting none of them costs one look-up. */
    static unsigned short starting[128];
    static int indexed = 0;
    if (!indexed) {
        for (int k = 0; COUNTS_IN_BLOCK[k] != NULL; k++)
            starting[(unsigned char)COUNTS_IN_BLOCK[k][0]] |= (unsigned short)(1u << k);
        indexed = 1;
    }
    int kind = PyUnicode_KIND(text);
    const void *t = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, t, i);
        if (c == '\\') Py_RETURN_TRUE;
        if (c >= 'A' && c <= 'Z') c += 32;
        if (c >= 128 || starting[c] == 0) continue;
        for (unsigned mask = starting[c]; mask != 0; mask &= mask - 1) {
            const char *w = COUNTS_IN_BLOCK[__builtin_ctz(mask)];
            Py_ssize_t j = 1;
            for (; w[j] != '\0' && i + j < n; j++) {
                Py_UCS4 e = PyUnicode_READ(kind, t, i + j);
                if (e >= 'A' && e <= 'Z') e += 32;
                if (e != (Py_UCS4)(unsigned char)w[j]) break;
            }
            if (w[j] == '\0') Py_RETURN_TRUE;
        }
    }
    Py_RETURN_FALSE;
}

/* -- a rule's selector list (css.style_rules' plain selectors and their specificity) ---------- */

static int sel_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int sel_name(unsigned char c) { return sel_letter(c) || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

/* An identifier of css._IDENT without escapes or text beyond ASCII: its end, or -1. */
static Py_ssize_t sel_ident(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) {
    if (i >= n || !(sel_letter(s[i]) || s[i] == '_' || s[i] == '-')) return -1;
    for (i++; i < n && sel_name(s[i]); i++) {}
    return i;
}

/* A compound of css._COMPOUND: its end, or -1. */
static Py_ssize_t sel_compound(const unsigned char *s, Py_ssize_t i, Py_ssize_t n) {
    Py_ssize_t start = i;
    if (i < n && s[i] == '*') i++;
    else if (i < n && s[i] != '.' && s[i] != '#') {
        i = sel_ident(s, i, n);
        if (i < 0) return -1;
    }
    while (i < n && (s[i] == '.' || s[i] == '#')) {
        i = sel_ident(s, i + 1, n);
        if (i < 0) return -1;
    }
    return i > start ? i : -1;
}

/* Does s[0:n] match css._PLAIN_SELECTOR whole? Possessive there, so read straight on: a
 * compound, then `\s*>\s*` or `\s+` and a compound, again and again, to the end. */
static int sel_plain(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = sel_compound(s, 0, n);
    while (i >= 0 && i < n) {
        Py_ssize_t j = i;
        while (j < n && ascii_space(s[j])) j++;
        if (j < n && s[j] == '>') {
            for (j++; j < n && ascii_space(s[j]); j++) {}
        } else if (j == i) {
            return 0;
        }
        i = sel_compound(s, j, n);
    }
    return i == n;
}

/* plain_selectors(prelude) -> ([(selector, specificity)], whole) or None: css.style_rules'
 * reading of a rule's selector list where it is ASCII without a backslash (None for any other:
 * the caller reads it in Python): split at `,`, each selector stripped (str.isspace), the plain
 * ones (css._PLAIN_SELECTOR) in order with css.specificity's (ids, classes, types), and whether
 * every selector of the list is plain. */
static PyObject *plain_selectors(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "plain_selectors: a str");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(text)) Py_RETURN_NONE;
    const unsigned char *t = PyUnicode_1BYTE_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    if (memchr(t, '\\', (size_t)n) != NULL) Py_RETURN_NONE;
    PyObject *found = PyList_New(0);
    if (found == NULL) return NULL;
    int whole = 1;
    Py_ssize_t start = 0;
    while (start <= n) {
        const unsigned char *comma = memchr(t + start, ',', (size_t)(n - start));
        Py_ssize_t end = comma != NULL ? comma - t : n, a = start, b = end;
        start = end + 1;
        while (a < b && ascii_space(t[a])) a++;
        while (b > a && ascii_space(t[b - 1])) b--;
        if (!sel_plain(t + a, b - a)) {
            whole = 0;
            continue;
        }
        long ids = 0, classes = 0, types = 0;
        for (Py_ssize_t i = a; i < b; i++) {
            unsigned char c = t[i];
            ids += c == '#';
            classes += c == '.';
            types += sel_letter(c) && (i == a || ascii_space(t[i - 1]) || t[i - 1] == '>');
        }
        PyObject *selector = ascii_str(t + a, b - a);
        PyObject *pair = selector != NULL ? Py_BuildValue("(N(lll))", selector, ids, classes, types) : NULL;
        if (pair == NULL || PyList_Append(found, pair) < 0) {
            Py_XDECREF(pair);
            Py_DECREF(found);
            return NULL;
        }
        Py_DECREF(pair);
    }
    return Py_BuildValue("(NO)", found, whole ? Py_True : Py_False);
}

/* -- a stylesheet without its comments (css.without_comments) --------------------------------- */

/* The first "ab" in t[from:n], or -1. */
static Py_ssize_t find_pair(int kind, const void *t, Py_ssize_t n, Py_ssize_t from, Py_UCS4 a, Py_UCS4 b) {
    if (kind == PyUnicode_1BYTE_KIND) {
        const unsigned char *s = t;
        while (from + 1 < n) {
            const unsigned char *p = memchr(s + from, (int)a, (size_t)(n - 1 - from));
            if (p == NULL) return -1;
            from = p - s;
            if (s[from + 1] == b) return from;
            from++;
        }
        return -1;
    }
    for (; from + 1 < n; from++)
        if (PyUnicode_READ(kind, t, from) == a && PyUnicode_READ(kind, t, from + 1) == b) return from;
    return -1;
}

/* without_comments(text) -> text: css.without_comments_python's answer (the text itself where it
 * holds no `/ *`): each comment out, one left open running to the end but for a newline ending
 * the text (css._COMMENT's `$`). The kept pieces are copied into a str of the narrowest kind that
 * holds them, as str.join makes it. The Python loop was ~3.5 us a mail sheet, read up to
 * twice a sheet. */
#define MOST_KEPT 64
static PyObject *without_comments(PyObject *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "without_comments: a str");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *t = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t start = find_pair(kind, t, n, 0, '/', '*');
    if (start < 0) return Py_NewRef(text);
    Py_ssize_t small[2 * MOST_KEPT], *kept = small, cap = MOST_KEPT, count = 0, pos = 0, total = 0;
    PyObject *out = NULL;
    for (;;) {
        Py_ssize_t from = pos, to;
        int last = 0;
        if (start < 0) {
            to = n;
            last = 1;
        } else {
            to = start;
        }
        if (count + 2 > cap) { /* room for this piece and a trailing newline */
            Py_ssize_t *grown = PyMem_Malloc(sizeof(Py_ssize_t) * 4 * (size_t)cap);
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            memcpy(grown, kept, sizeof(Py_ssize_t) * 2 * (size_t)count);
            if (kept != small) PyMem_Free(kept);
            kept = grown;
            cap *= 2;
        }
        kept[2 * count] = from;
        kept[2 * count + 1] = to;
        count++;
        total += to - from;
        if (last) break;
        Py_ssize_t end = find_pair(kind, t, n, start + 2, '*', '/');
        if (end < 0) {
            if (n - 1 >= start + 2 && PyUnicode_READ(kind, t, n - 1) == '\n') {
                kept[2 * count] = n - 1;
                kept[2 * count + 1] = n;
                count++;
                total++;
            }
            break;
        }
        pos = end + 2;
        start = find_pair(kind, t, n, pos, '/', '*');
    }
    Py_UCS4 most = 0;
    if (PyUnicode_IS_ASCII(text)) {
        most = 127;
    } else {
        for (Py_ssize_t k = 0; k < count; k++)
            for (Py_ssize_t i = kept[2 * k]; i < kept[2 * k + 1]; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, t, i);
                if (c > most) most = c;
            }
    }
    out = PyUnicode_New(total, most);
    if (out == NULL) goto done;
    int out_kind = PyUnicode_KIND(out);
    void *o = PyUnicode_DATA(out);
    Py_ssize_t at = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        Py_ssize_t from = kept[2 * k], to = kept[2 * k + 1];
        if (kind == PyUnicode_1BYTE_KIND && out_kind == PyUnicode_1BYTE_KIND) {
            memcpy((unsigned char *)o + at, (const unsigned char *)t + from, (size_t)(to - from));
            at += to - from;
        } else {
            for (Py_ssize_t i = from; i < to; i++) PyUnicode_WRITE(out_kind, o, at++, PyUnicode_READ(kind, t, i));
        }
    }
done:
    if (kept != small) PyMem_Free(kept);
    return out;
}

static PyMethodDef methods[] = {
    {"weighted_declarations", weighted_declarations, METH_O,
     "weighted_declarations(declaration block) -> {property: (value, important)}, or None where"
     " the block is not ASCII or holds a backslash or a comment"},
    {"block_may_count", block_may_count, METH_O,
     "block_may_count(declaration block) -> bool: guard.engine.layout._block_may_count's answer"},
    {"plain_selectors", plain_selectors, METH_O,
     "plain_selectors(selector list) -> ([(plain selector, specificity)], every one plain), or"
     " None where the list is not ASCII or holds a backslash"},
    {"without_comments", without_comments, METH_O,
     "without_comments(text) -> text: guard.engine.css.without_comments_python's answer"},
    {"top_rules", top_rules, METH_O,
     "top_rules(stylesheet without its comments) -> [(prelude, declarations)]: the qualified"
     " rules of css._TOP_ITEM's reading"},
    {"unstripped", unstripped, METH_O,
     "unstripped(list of Occurrences) -> indexes of those whose URL has white space at an end"},
    {"holds", holds, METH_VARARGS,
     "holds(text, needle as lower-case ASCII bytes with a byte that is not a letter) -> bool:"
     " the needle in text, ASCII case-insensitively"},
    {"may_hide", may_hide, METH_O,
     "may_hide(stylesheet without its comments) -> bool: guard.engine.css.may_hide's answer"},
    {"utf8", utf8, METH_O,
     "utf8(str) -> bytes: str.encode('utf-8', 'ignore'), a run of ASCII a word at a time"},
    {"bind", bind, METH_VARARGS, "bind(path of selectolax's extension)"},
    {"srcset_urls", srcset_urls, METH_O, "srcset_urls(str) -> URLs, or None where not ASCII"},
    {"walk", walk, METH_VARARGS,
     "walk(parser, url names, load needles, hide needles, Occurrence, 'a[href]', 'area[href]',"
     " marked ids=None, 'img[src]'=None, 'img[srcset]'=None, image_shape=None, shape_memo=None)"
     " -> (records and"
     " Occurrences, positions of the records)"},
    {"loads", loads, METH_VARARGS,
     "loads(parser, url names, load needles, 'img[src]', 'img[srcset]') -> (plain images'"
     " distinct loads and records, positions of the records): the loads-only walk"},
    {"candidates", candidates, METH_VARARGS,
     "candidates(parser, node, node's mem_id, raw names, url names, load needles, plain=False)"
     " -> [LexborNode] in document order: the nodes cleaning's rewrite may edit (with plain:"
     " plain links and images as their records)"},
    {"loads_encoded", loads_encoded, METH_VARARGS,
     "loads_encoded(UTF-8 bytes, url names, load needles, 'img[src]', 'img[srcset]') -> loads'"
     " answer for LexborHTMLParser(bytes), parsed into one document kept for every call"},
    {"distinct_firsts", distinct_firsts, METH_VARARGS,
     "distinct_firsts([(url, element)], 'img[src]', 'img[srcset]') -> the first (url, element)"
     " of each URL stripped (as written for the base and nested documents' loads)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "guard.engine._lexwalk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__lexwalk(void) { return PyModule_Create(&module); }
