/* The bound checks run before Lexbor parses a document (guard/engine/parse_bounds.py), in one
 * pass over the text instead of Python's splits, regex scans and loops.
 *
 * parse_bounds.py stays the reference: each function here computes exactly what its Python
 * namesake computes (`attribute_bomb` = `_attribute_bomb`, `too_deep` = `_too_deep`,
 * `most_open_formatting` = `_most_open_formatting`, `is_bounded` = `parse_is_bounded`), and
 * tests/test_parse_bounds.py compares the two on samples/, the real corpus, hostile documents and
 * generated ones. The work is linear in the text and needs no memory: these checks run on
 * hostile input.
 *
 * The three checks read only `<`, `>`, the ASCII tag names right after a `<` and, inside long
 * tags, whitespace (as str.split() sees it), so one pass reads each character once:
 * - the attribute work: the runs between two `>`; of a run longer than LONG_TAG_CHARS, its part
 *   from its last `<` when that is longer too, counted in whitespace-separated tokens, squared;
 * - the nesting depth: `<name` opens an element unless the name (lower-cased) is in NOT_NESTING,
 *   `</name` closes one (as `<(/?)([A-Za-z][A-Za-z0-9]*)` finds them);
 * - the formatting elements open at once: `<name` / `</name` with a name of letters only (as
 *   `<(/?[abcefinstuABCEFINSTU][A-Za-z]*)` finds them) in FORMATTING.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define BOUNDS_SSE2 1
#endif

/* The constants of parse_bounds.py (tests/test_parse_bounds.py reads them back). */
#define ATTRIBUTE_WORK 50000000ULL
#define LONG_TAG_CHARS 256
#define NESTING_LIMIT 4096
#define REOPENED_ELEMENTS 500000ULL

static const char *const FORMATTING[] = {"a",  "b",      "big",    "code", "em", "font", "i",
                                         "nobr", "s",    "small",  "strike", "strong", "tt",
                                         "u",  NULL};
static const char *const NOT_NESTING[] = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr", "param", "keygen", "basefont", "bgsound", "frame", "image", "p", "li",
    "dd", "dt", "option", "optgroup", "tr", "td", "th", "rb", "rp", "rt", "rtc", "tbody",
    "thead", "tfoot", "colgroup", "caption", NULL};
/* No name in either list is longer than this: a longer name is in neither. */
#define LONGEST_NAME 8

typedef struct {
    int bomb;                /* _attribute_bomb */
    int deep;                /* _too_deep: the depth went past NESTING_LIMIT */
    Py_ssize_t tags;         /* html.count("<") */
    Py_ssize_t most_open;    /* _most_open_formatting */
} Measures;

/* Each list as a set of names packed into 64 bits (a name's lower-cased bytes, zero-padded: no
 * listed name is empty or longer than 8), in a small open-addressing table built at import. */
#define SET_SLOTS 128
typedef struct {
    unsigned long long slot[SET_SLOTS]; /* 0: empty */
} NameSet;
static NameSet formatting_set, not_nesting_set;

static unsigned
slot_of(unsigned long long key)
{
    return (unsigned)((key * 0x9E3779B97F4A7C15ULL) >> 57); /* 7 bits: SET_SLOTS */
}

static void
set_build(NameSet *set, const char *const *names)
{
    memset(set, 0, sizeof(*set));
    for (; *names != NULL; names++) {
        unsigned long long key = 0;
        memcpy(&key, *names, strlen(*names));
        unsigned at = slot_of(key);
        while (set->slot[at] != 0)
            at = (at + 1) % SET_SLOTS;
        set->slot[at] = key;
    }
}

static int
set_has(const NameSet *set, unsigned long long key)
{
    for (unsigned at = slot_of(key); set->slot[at] != 0; at = (at + 1) % SET_SLOTS) {
        if (set->slot[at] == key)
            return 1;
    }
    return 0;
}

static int
is_ascii_letter(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_formatting_start(Py_UCS4 c)
{
    /* "abcefinstu" in either case, as a bit set of the lower-cased letter (c | 0x20). */
    static const unsigned int starts = (1u << ('a' - 'a')) | (1u << ('b' - 'a')) |
                                       (1u << ('c' - 'a')) | (1u << ('e' - 'a')) |
                                       (1u << ('f' - 'a')) | (1u << ('i' - 'a')) |
                                       (1u << ('n' - 'a')) | (1u << ('s' - 'a')) |
                                       (1u << ('t' - 'a')) | (1u << ('u' - 'a'));
    return is_ascii_letter(c) && ((starts >> ((c | 0x20) - 'a')) & 1u);
}

/* The index of the next `<` or `>` from i (the only characters with c | 2 == '>'), or n. Most
 * of a newsletter lies between them (~70 characters a tag): UCS1 and UCS2 text is read a 64-bit
 * word at a time, 8 or 4 characters, and only a word holding one is read character by
 * character. A word holds one when (c | 2) ^ '>' is zero in one of its lanes (the has-a-zero-lane
 * test: exact as to whether there is one, which is all it is asked). */
#define ONES8 0x0101010101010101ULL
#define ONES16 0x0001000100010001ULL

/* Where SSE2 is (every x86-64), 16 bytes are compared at once and the first `<` or `>` among them
 * is found from the comparison's mask: a text of 48 K characters is ~700 tags, each a stop. */
#ifdef BOUNDS_SSE2
#define SSE2_NEXT_BRACKET(CHAR, LANES, CMPEQ, SET1)                                              \
    {                                                                                            \
        const __m128i two = SET1(2), close = SET1('>');                                          \
        for (; i + LANES <= n; i += LANES) {                                                     \
            __m128i v = _mm_or_si128(_mm_loadu_si128((const __m128i *)(s + i)), two);            \
            int mask = _mm_movemask_epi8(CMPEQ(v, close));                                       \
            if (mask != 0)                                                                       \
                return i + __builtin_ctz((unsigned)mask) / (int)sizeof(CHAR);                    \
        }                                                                                        \
    }
#endif

static Py_ssize_t
next_bracket_ucs1(const Py_UCS1 *s, Py_ssize_t i, Py_ssize_t n)
{
#ifdef BOUNDS_SSE2
    SSE2_NEXT_BRACKET(Py_UCS1, 16, _mm_cmpeq_epi8, _mm_set1_epi8)
#endif
    for (; i + 8 <= n; i += 8) {
        unsigned long long x;
        memcpy(&x, s + i, 8);
        x = (x | (2 * ONES8)) ^ ('>' * ONES8);
        if (((x - ONES8) & ~x & (0x80 * ONES8)) != 0)
            break;
    }
    while (i < n && (s[i] | 2) != '>')
        i++;
    return i;
}

static Py_ssize_t
next_bracket_ucs2(const Py_UCS2 *s, Py_ssize_t i, Py_ssize_t n)
{
#ifdef BOUNDS_SSE2
    SSE2_NEXT_BRACKET(Py_UCS2, 8, _mm_cmpeq_epi16, _mm_set1_epi16)
#endif
    for (; i + 4 <= n; i += 4) {
        unsigned long long x;
        memcpy(&x, s + i, 8);
        x = (x | (2 * ONES16)) ^ ('>' * ONES16);
        if (((x - ONES16) & ~x & (0x8000 * ONES16)) != 0)
            break;
    }
    while (i < n && (s[i] | 2) != '>')
        i++;
    return i;
}

static Py_ssize_t
next_bracket_ucs4(const Py_UCS4 *s, Py_ssize_t i, Py_ssize_t n)
{
#ifdef BOUNDS_SSE2
    SSE2_NEXT_BRACKET(Py_UCS4, 4, _mm_cmpeq_epi32, _mm_set1_epi32)
#endif
    while (i < n && (s[i] | 2) != '>')
        i++;
    return i;
}

/* The whitespace-separated tokens of s[from:to], as str.split() counts them. Most of a long tag
 * is a URL or base64 data: a word whose characters are all printable ASCII (0x21-0x7e: none is
 * whitespace; `has_low` and `has_high` find a lane below 0x21 or at or above 0x80, exactly) is
 * passed whole, starting a token if the character before it was whitespace. */
#define DEFINE_TOKENS(NAME, CHAR, LANES, ONES, HIGH, CMPGT)                                     \
    static unsigned long long NAME(const CHAR *s, Py_ssize_t from, Py_ssize_t to)               \
    {                                                                                            \
        unsigned long long tokens = 0;                                                           \
        int in_token = 0;                                                                        \
        Py_ssize_t k = from;                                                                     \
        while (k < to) {                                                                         \
            if (SSE2_PRINTABLE(CHAR, LANES, CMPGT, s, k, to)) {                                  \
                tokens += !in_token;                                                             \
                in_token = 1;                                                                    \
                k += 16 / (Py_ssize_t)sizeof(CHAR);                                              \
                continue;                                                                        \
            }                                                                                    \
            if (LANES > 1 && k + LANES <= to) {                                                  \
                unsigned long long x;                                                            \
                memcpy(&x, s + k, 8);                                                            \
                unsigned long long has_low = (x - 0x21 * (ONES)) & ~x & (HIGH);                  \
                unsigned long long has_high = x & ~(0x7f * (ONES));                              \
                if (!has_low && !has_high) {                                                     \
                    tokens += !in_token;                                                         \
                    in_token = 1;                                                                \
                    k += LANES;                                                                  \
                    continue;                                                                    \
                }                                                                                \
            }                                                                                    \
            int space = Py_UNICODE_ISSPACE((Py_UCS4)s[k]);                                       \
            if (!space && !in_token)                                                             \
                tokens++;                                                                        \
            in_token = !space;                                                                   \
            k++;                                                                                 \
        }                                                                                        \
        return tokens;                                                                           \
    }

/* With SSE2, 16 bytes at a time first: are they all printable ASCII (0x21-0x7e)? Compared as
 * signed lanes, a character at or above 0x80 (UCS1) or 0x8000 (UCS2) is negative, so not above
 * 0x20; one from 0x7f up is not below 0x7f (UCS4: every code point is positive). */
#ifdef BOUNDS_SSE2
#define SSE2_PRINTABLE(CHAR, LANES, CMPGT, s, k, to)                                             \
    ((k) + 16 / (Py_ssize_t)sizeof(CHAR) <= (to)                                                 \
     && _mm_movemask_epi8(_mm_and_si128(                                                         \
            CMPGT(_mm_loadu_si128((const __m128i *)((s) + (k))), SET1_##CMPGT(0x20)),           \
            CMPGT(SET1_##CMPGT(0x7f), _mm_loadu_si128((const __m128i *)((s) + (k))))))          \
            == 0xFFFF)
#define SET1__mm_cmpgt_epi8(c) _mm_set1_epi8(c)
#define SET1__mm_cmpgt_epi16(c) _mm_set1_epi16(c)
#define SET1__mm_cmpgt_epi32(c) _mm_set1_epi32(c)
#else
#define SSE2_PRINTABLE(CHAR, LANES, CMPGT, s, k, to) 0
#endif

DEFINE_TOKENS(tokens_ucs1, Py_UCS1, 8, ONES8, 0x80 * ONES8, _mm_cmpgt_epi8)
DEFINE_TOKENS(tokens_ucs2, Py_UCS2, 4, ONES16, 0x8000 * ONES16, _mm_cmpgt_epi16)
DEFINE_TOKENS(tokens_ucs4, Py_UCS4, 1, 0ULL, 0ULL, _mm_cmpgt_epi32)

/* The attribute work, told mostly without counting tokens: a run of `len` characters holds at
 * most len / 2 + 1 of them (each but the last takes a character and the whitespace after it).
 * `work` adds up the square of that bound for a run under GUESS_LONGEST characters, and the
 * square of the tokens counted for a longer one (whose bound alone would be over the budget:
 * mostly one token of base64 or a long URL, passed 16 bytes at a time). True once the sum is
 * over ATTRIBUTE_WORK: the tokens must then all be counted (the caller starts again with
 * `guess` 0). Under it, the counted work is under it too, and the answer is the one counting
 * gives: so for all of the corpus's 438 tracking messages' HTML and the bench newsletters, and
 * only the runs over GUESS_LONGEST (half of the corpus's long-tag characters) are read. */
#define GUESS_OVER (-2)
#define GUESS_LONGEST 14142 /* (14142 / 2 + 1)² > ATTRIBUTE_WORK */
#define GUESS_ADD(work, COUNT_TOKENS, s, from, to)                                               \
    do {                                                                                         \
        unsigned long long most_ = (unsigned long long)((to) - (from)) / 2 + 1;                  \
        if ((to) - (from) > GUESS_LONGEST)                                                       \
            most_ = COUNT_TOKENS(s, from, to);                                                   \
        (work) += most_ * most_;                                                                 \
    } while (0)

/* The measure's step at a bracket s[i] (i = n: the end of the text, which closes a run). */
#define MEASURE_STEP(COUNT_TOKENS)                                                               \
            Py_UCS4 c = i < n ? (Py_UCS4)s[i] : (Py_UCS4)'>';                                    \
            if (c == '>') { /* a run ends here (or at the end of the text) */                   \
                if (i - run_start > LONG_TAG_CHARS && last_lt >= run_start                       \
                    && i - last_lt > LONG_TAG_CHARS) {                                           \
                    if (guess) {                                                                 \
                        GUESS_ADD(work, COUNT_TOKENS, s, last_lt, i);                            \
                        if (work > ATTRIBUTE_WORK)                                               \
                            return GUESS_OVER;                                                   \
                        run_start = i + 1;                                                       \
                        continue;                                                                \
                    }                                                                            \
                    unsigned long long tokens = COUNT_TOKENS(s, last_lt, i);                     \
                    /* tokens <= n / 2 + 1: its square fits in 64 bits below 2**33 characters */      \
                    work += tokens * tokens;                                                     \
                    if (work > ATTRIBUTE_WORK) {                                                 \
                        m->bomb = 1;                                                             \
                        if (stop_at_bomb)                                                        \
                            return 0;                                                            \
                        work = ATTRIBUTE_WORK + 1; /* stays over budget, never wraps */          \
                    }                                                                            \
                }                                                                                \
                run_start = i + 1;                                                               \
                continue;                                                                        \
            }                                                                                    \
            if (c != '<')                                                                        \
                continue;                                                                        \
            m->tags++;                                                                           \
            last_lt = i;                                                                         \
            Py_ssize_t j = i + 1;                                                                \
            int end = 0;                                                                         \
            if (j < n && s[j] == '/') {                                                          \
                end = 1;                                                                         \
                j++;                                                                             \
            }                                                                                    \
            if (j >= n || !is_ascii_letter((Py_UCS4)s[j]))                                       \
                continue; /* neither pattern matches at this `<` */                              \
            /* The name as _TAG_TOKEN reads it (letters and digits) and as the formatting        \
             * pattern reads it (letters only), lower-cased while short enough to be listed. */  \
            Py_ssize_t k = j, letters = -1;                                                      \
            unsigned long long key = 0, letters_key = 0; /* the first 8 characters, packed */   \
            while (k < n && s[k] < 128 && (is_ascii_letter((Py_UCS4)s[k])                        \
                                           || (s[k] >= '0' && s[k] <= '9'))) {                   \
                if (letters < 0 && !is_ascii_letter((Py_UCS4)s[k])) {                            \
                    letters = k - j;                                                             \
                    letters_key = key;                                                           \
                }                                                                                \
                if (k - j < LONGEST_NAME)                                                        \
                    key |= (unsigned long long)(s[k] | 0x20) << (8 * (k - j));                   \
                k++;                                                                             \
            }                                                                                    \
            Py_ssize_t len = k - j;                                                              \
            if (letters < 0) {                                                                   \
                letters = len;                                                                   \
                letters_key = key;                                                               \
            }                                                                                    \
            /* nesting: every `<name` that opens an element that stays open */                   \
            if (end)                                                                             \
                depth = depth ? depth - 1 : 0;                                                   \
            else {                                                                               \
                if (len > LONGEST_NAME || !set_has(&not_nesting_set, key)) {                     \
                    depth++;                                                                     \
                    if (depth > NESTING_LIMIT)                                                   \
                        m->deep = 1;                                                             \
                }                                                                                \
            }                                                                                    \
            /* formatting: the letters alone */                                                  \
            if (is_formatting_start((Py_UCS4)s[j]) && letters <= LONGEST_NAME) {                 \
                if (set_has(&formatting_set, letters_key)) {                                     \
                    if (!end) {                                                                  \
                        open_now++;                                                              \
                        if (open_now > m->most_open)                                             \
                            m->most_open = open_now;                                             \
                    }                                                                            \
                    else if (open_now)                                                           \
                        open_now--;                                                              \
                }                                                                                \
            }

/* One pass of the three checks over a text of one kind (UCS1, UCS2, UCS4). `stop_at_bomb`:
 * return as soon as the attribute work is over budget (the other measures are then partial).
 * `guess`: add up what the tokens can be at most (GUESS_ADD); 0, or GUESS_OVER as soon as that
 * sum is over the budget (the caller measures again with `guess` 0). */
#define DEFINE_MEASURE(NAME, CHAR, NEXT_BRACKET, COUNT_TOKENS)                                                 \
    static int NAME(const CHAR *s, Py_ssize_t n, int stop_at_bomb, int guess, Measures *m)             \
    {                                                                                            \
        unsigned long long work = 0;                                                             \
        Py_ssize_t run_start = 0, last_lt = -1, depth = 0, open_now = 0;                         \
        for (Py_ssize_t i = 0; i <= n; i++) {                                                    \
            i = NEXT_BRACKET(s, i, n); /* to the next `<` or `>` */                              \
            MEASURE_STEP(COUNT_TOKENS)                                                           \
        }                                                                                        \
        return 0;                                                                                \
    }

#ifdef BOUNDS_SSE2
/* The brackets (`<` or `>`: c | 2 == '>') and the `<` among the 16 characters from s[b]. */
#define MASKS_UCS1(s, b, brackets, opening)                                                      \
    do {                                                                                         \
        __m128i v = _mm_loadu_si128((const __m128i *)((s) + (b)));                               \
        brackets = (unsigned)_mm_movemask_epi8(                                                  \
            _mm_cmpeq_epi8(_mm_or_si128(v, _mm_set1_epi8(2)), _mm_set1_epi8('>')));              \
        opening = brackets ? (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('<')))  \
                           : 0u;                                                                 \
    } while (0)
#define MASKS_UCS2(s, b, brackets, opening)                                                      \
    do {                                                                                         \
        __m128i v0 = _mm_loadu_si128((const __m128i *)((s) + (b)));                              \
        __m128i v1 = _mm_loadu_si128((const __m128i *)((s) + (b) + 8));                          \
        const __m128i two = _mm_set1_epi16(2), close = _mm_set1_epi16('>');                      \
        brackets = (unsigned)_mm_movemask_epi8(                                                  \
            _mm_packs_epi16(_mm_cmpeq_epi16(_mm_or_si128(v0, two), close),                       \
                            _mm_cmpeq_epi16(_mm_or_si128(v1, two), close)));                     \
        opening = 0u;                                                                            \
        if (brackets) {                                                                          \
            const __m128i open = _mm_set1_epi16('<');                                            \
            opening = (unsigned)_mm_movemask_epi8(                                               \
                _mm_packs_epi16(_mm_cmpeq_epi16(v0, open), _mm_cmpeq_epi16(v1, open)));          \
        }                                                                                        \
    } while (0)
#endif

/* The measure with SSE2 for UCS1 and UCS2 text: each `<` and `>` taken in order from the mask of
 * 16 characters compared at once (as the quick pass), then the same step; the end of the text
 * closes the last run as there (`continue` in a step goes on to the next bracket). */
#ifdef BOUNDS_SSE2
#define DEFINE_MEASURE_BLOCKS(NAME, CHAR, MASKS, COUNT_TOKENS)                                   \
    static int NAME(const CHAR *s, Py_ssize_t n, int stop_at_bomb, int guess, Measures *m)       \
    {                                                                                            \
        unsigned long long work = 0;                                                             \
        Py_ssize_t run_start = 0, last_lt = -1, depth = 0, open_now = 0, b = 0;                  \
        for (; b + 16 <= n; b += 16) {                                                           \
            unsigned brackets, opening;                                                          \
            MASKS(s, b, brackets, opening);                                                      \
            (void)opening;                                                                       \
            while (brackets) {                                                                   \
                Py_ssize_t i = b + __builtin_ctz(brackets);                                      \
                brackets &= brackets - 1;                                                        \
                MEASURE_STEP(COUNT_TOKENS)                                                       \
            }                                                                                    \
        }                                                                                        \
        for (Py_ssize_t i = b; i < n; i++) {                                                     \
            if ((s[i] | 2) != '>')                                                               \
                continue;                                                                        \
            MEASURE_STEP(COUNT_TOKENS)                                                           \
        }                                                                                        \
        do {                                                                                     \
            Py_ssize_t i = n;                                                                    \
            MEASURE_STEP(COUNT_TOKENS)                                                           \
        } while (0);                                                                             \
        return 0;                                                                                \
    }
#endif

#ifdef BOUNDS_SSE2
DEFINE_MEASURE_BLOCKS(measure_ucs1, Py_UCS1, MASKS_UCS1, tokens_ucs1)
DEFINE_MEASURE_BLOCKS(measure_ucs2, Py_UCS2, MASKS_UCS2, tokens_ucs2)
#else
DEFINE_MEASURE(measure_ucs1, Py_UCS1, next_bracket_ucs1, tokens_ucs1)
DEFINE_MEASURE(measure_ucs2, Py_UCS2, next_bracket_ucs2, tokens_ucs2)
#endif
DEFINE_MEASURE(measure_ucs4, Py_UCS4, next_bracket_ucs4, tokens_ucs4)

/* `guess`: first counting only the longest runs' tokens (see GUESS_ADD), then all of them only
 * where what they can be at most is over the budget. */
static int
measure(PyObject *html, int stop_at_bomb, int guess, Measures *m)
{
    if (!PyUnicode_Check(html)) {
        PyErr_SetString(PyExc_TypeError, "expected str");
        return -1;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(html);
    const void *data = PyUnicode_DATA(html);
    for (;; guess = 0) {
        int over;
        memset(m, 0, sizeof(*m));
        switch (PyUnicode_KIND(html)) {
        case PyUnicode_1BYTE_KIND:
            over = measure_ucs1((const Py_UCS1 *)data, n, stop_at_bomb, guess, m);
            break;
        case PyUnicode_2BYTE_KIND:
            over = measure_ucs2((const Py_UCS2 *)data, n, stop_at_bomb, guess, m);
            break;
        default:
            over = measure_ucs4((const Py_UCS4 *)data, n, stop_at_bomb, guess, m);
            break;
        }
        if (over != GUESS_OVER)
            return 0;
    }
}

/* parse_is_bounded's decision from the measures. */
static int
bounded(const Measures *m)
{
    if (m->bomb)
        return 0;
    unsigned long long tags = (unsigned long long)m->tags;
    unsigned long long most = (unsigned long long)m->most_open;
    if (tags > NESTING_LIMIT && m->deep)
        return 0;
    /* tags * tags // 8 <= REOPENED_ELEMENTS (a larger count is past it and would overflow) */
    if (tags < (1ULL << 31) && tags * tags / 8 <= REOPENED_ELEMENTS)
        return 1;
    /* most * (tags // 2) <= REOPENED_ELEMENTS, without the product */
    return most == 0 || tags / 2 <= REOPENED_ELEMENTS / most;
}

/* The case of most mail, told in a quicker pass: at most QUICK_TAGS `<` (then tags * tags / 8
 * is within REOPENED_ELEMENTS and the nesting is not counted, as `bounded` reads the measures)
 * and the attribute work within ATTRIBUTE_WORK, counted as the measure counts it. Such a text is
 * bounded; one over the work is not (1 or 0); of one with more tags, the pass says nothing (-1)
 * and the full measure decides. The measure's stops, without reading tag names (most of its work
 * per tag). */
#define QUICK_TAGS 2000
_Static_assert(QUICK_TAGS * QUICK_TAGS / 8 <= REOPENED_ELEMENTS && QUICK_TAGS <= NESTING_LIMIT,
               "QUICK_TAGS tags must be bounded whatever their nesting and formatting");
#define DEFINE_QUICK(NAME, CHAR, NEXT_BRACKET, COUNT_TOKENS)                                     \
    static int NAME(const CHAR *s, Py_ssize_t n, int guess)                                      \
    {                                                                                            \
        Py_ssize_t run_start = 0, last_lt = -1, tags = 0;                                        \
        unsigned long long work = 0;                                                             \
        for (Py_ssize_t i = 0; i <= n; i++) {                                                    \
            i = NEXT_BRACKET(s, i, n);                                                           \
            if (i < n && s[i] == '<') {                                                          \
                if (++tags > QUICK_TAGS)                                                         \
                    return -1;                                                                   \
                last_lt = i;                                                                     \
                continue;                                                                        \
            }                                                                                    \
            if (i - run_start > LONG_TAG_CHARS && last_lt >= run_start                           \
                && i - last_lt > LONG_TAG_CHARS) {                                               \
                if (guess) {                                                                     \
                    GUESS_ADD(work, COUNT_TOKENS, s, last_lt, i);                                \
                    if (work > ATTRIBUTE_WORK)                                                   \
                        return GUESS_OVER;                                                       \
                    run_start = i + 1;                                                           \
                    continue;                                                                    \
                }                                                                                \
                unsigned long long tokens = COUNT_TOKENS(s, last_lt, i);                         \
                work += tokens * tokens; /* as in the measure: no wrap below 2**33 chars */      \
                if (work > ATTRIBUTE_WORK)                                                       \
                    return 0; /* a bomb: not bounded, whatever else */                           \
            }                                                                                    \
            run_start = i + 1;                                                                   \
        }                                                                                        \
        return 1;                                                                                \
    }

/* The quick pass with SSE2 for UCS1 and UCS2 text: 16 characters compared at once, and each `<`
 * and `>` among them taken from the comparison's mask in order (a real message holds a bracket
 * every ~30 characters: searching from each one again took most of the pass). The same steps,
 * in the same order, as DEFINE_QUICK's; the end of the text closes the last run as there. */
#ifdef BOUNDS_SSE2
#define QUICK_RUN_END(i, COUNT_TOKENS)                                                           \
    do {                                                                                         \
        if ((i) - run_start > LONG_TAG_CHARS && last_lt >= run_start                             \
            && (i) - last_lt > LONG_TAG_CHARS) {                                                 \
            if (guess) {                                                                         \
                GUESS_ADD(work, COUNT_TOKENS, s, last_lt, (i));                                  \
                if (work > ATTRIBUTE_WORK)                                                       \
                    return GUESS_OVER;                                                           \
            }                                                                                    \
            else {                                                                               \
                unsigned long long tokens = COUNT_TOKENS(s, last_lt, (i));                       \
                work += tokens * tokens;                                                         \
                if (work > ATTRIBUTE_WORK)                                                       \
                    return 0;                                                                    \
            }                                                                                    \
        }                                                                                        \
        run_start = (i) + 1;                                                                     \
    } while (0)
#define DEFINE_QUICK_BLOCKS(NAME, CHAR, MASKS, COUNT_TOKENS)                                     \
    static int NAME(const CHAR *s, Py_ssize_t n, int guess)                                      \
    {                                                                                            \
        Py_ssize_t run_start = 0, last_lt = -1, tags = 0, b = 0;                                 \
        unsigned long long work = 0;                                                             \
        for (; b + 16 <= n; b += 16) {                                                           \
            unsigned brackets, opening;                                                          \
            MASKS(s, b, brackets, opening);                                                      \
            while (brackets) {                                                                   \
                int bit = __builtin_ctz(brackets);                                               \
                brackets &= brackets - 1;                                                        \
                Py_ssize_t i = b + bit;                                                          \
                if ((opening >> bit) & 1u) {                                                     \
                    if (++tags > QUICK_TAGS)                                                     \
                        return -1;                                                               \
                    last_lt = i;                                                                 \
                }                                                                                \
                else                                                                             \
                    QUICK_RUN_END(i, COUNT_TOKENS);                                              \
            }                                                                                    \
        }                                                                                        \
        for (Py_ssize_t i = b; i < n; i++) {                                                     \
            if (s[i] == '<') {                                                                   \
                if (++tags > QUICK_TAGS)                                                         \
                    return -1;                                                                   \
                last_lt = i;                                                                     \
            }                                                                                    \
            else if (s[i] == '>')                                                                \
                QUICK_RUN_END(i, COUNT_TOKENS);                                                  \
        }                                                                                        \
        QUICK_RUN_END(n, COUNT_TOKENS);                                                          \
        return 1;                                                                                \
    }
DEFINE_QUICK_BLOCKS(quick_ucs1, Py_UCS1, MASKS_UCS1, tokens_ucs1)
DEFINE_QUICK_BLOCKS(quick_ucs2, Py_UCS2, MASKS_UCS2, tokens_ucs2)
#else
DEFINE_QUICK(quick_ucs1, Py_UCS1, next_bracket_ucs1, tokens_ucs1)
DEFINE_QUICK(quick_ucs2, Py_UCS2, next_bracket_ucs2, tokens_ucs2)
#endif
DEFINE_QUICK(quick_ucs4, Py_UCS4, next_bracket_ucs4, tokens_ucs4)

static int
quick_bounded(PyObject *html, int guess)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(html);
    const void *data = PyUnicode_DATA(html);
    switch (PyUnicode_KIND(html)) {
    case PyUnicode_1BYTE_KIND:
        return quick_ucs1((const Py_UCS1 *)data, n, guess);
    case PyUnicode_2BYTE_KIND:
        return quick_ucs2((const Py_UCS2 *)data, n, guess);
    default:
        return quick_ucs4((const Py_UCS4 *)data, n, guess);
    }
}

static PyObject *
is_bounded(PyObject *self, PyObject *html)
{
    Measures m;
    if (PyUnicode_Check(html)) {
        int quick = quick_bounded(html, 1);
        if (quick == GUESS_OVER)
            quick = quick_bounded(html, 0);
        if (quick >= 0)
            return PyBool_FromLong(quick);
    }
    if (measure(html, 1, 1, &m) < 0)
        return NULL;
    return PyBool_FromLong(bounded(&m));
}

static PyObject *
attribute_bomb(PyObject *self, PyObject *html)
{
    Measures m;
    /* Every long tag's tokens counted (is_bounded guesses first): tests/test_parse_bounds.py
     * compares this count with the Python's. */
    if (measure(html, 1, 0, &m) < 0)
        return NULL;
    return PyBool_FromLong(m.bomb);
}

static PyObject *
too_deep(PyObject *self, PyObject *html)
{
    Measures m;
    if (measure(html, 0, 0, &m) < 0)
        return NULL;
    return PyBool_FromLong(m.deep);
}

static PyObject *
most_open_formatting(PyObject *self, PyObject *html)
{
    Measures m;
    if (measure(html, 0, 0, &m) < 0)
        return NULL;
    return PyLong_FromSsize_t(m.most_open);
}

static PyObject *
constants(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(KiiK)", ATTRIBUTE_WORK, LONG_TAG_CHARS, NESTING_LIMIT,
                         REOPENED_ELEMENTS);
}

static PyMethodDef methods[] = {
    {"is_bounded", is_bounded, METH_O, "parse_bounds.parse_is_bounded, in one pass."},
    {"attribute_bomb", attribute_bomb, METH_O, "parse_bounds._attribute_bomb."},
    {"too_deep", too_deep, METH_O, "parse_bounds._too_deep."},
    {"most_open_formatting", most_open_formatting, METH_O,
     "parse_bounds._most_open_formatting."},
    {"constants", constants, METH_NOARGS,
     "(_ATTRIBUTE_WORK, _LONG_TAG_CHARS, _NESTING_LIMIT, _REOPENED_ELEMENTS) as compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bounds", "parse_bounds.py's checks in one pass (see _bounds.c).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__bounds(void)
{
    set_build(&formatting_set, FORMATTING);
    set_build(&not_nesting_set, NOT_NESTING);
    return PyModule_Create(&module);
}
