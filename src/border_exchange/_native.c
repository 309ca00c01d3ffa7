/*
 * The compiled fast path of the alert contract, for the usual well-formed value only:
 *
 *   read_envelope          the current envelope layout, read into the frozen values;
 *   checked_signing_input  the signing input, with every present section's digest checked;
 *   sections_tail          the Avro bytes of a (redacted) section list and the signature;
 *   read_audit, write_audit  the current bx.AuditRecord layout, read and written;
 *   verify_batch           Ed25519 checks in batches, without the GIL (libsodium, linked here);
 *   key_hash               Kafka's murmur2 of a record key, as its default partitioner takes it;
 *   name_key_rows          the post's name-index rows of one name's tokens (domain/names.py);
 *   configure, configure_audit  the field names and vocabularies, set once from Python.
 *
 * Each is a shortcut for Python code that stays the reference: fastavro for the Avro
 * values (domain/encoding.py), domain/signing.py for the signing input, PyNaCl for the
 * signature checks and aiokafka's murmur2 for key_hash (domain/fastpath.py says which is
 * which). They never raise on bad input: whenever anything is not exactly the usual,
 * well-formed case (a malformed byte, an unexpected type, a digest that does not match)
 * they return None, and the caller runs the Python code, which gives the precise error.
 * So a value is either handled here with the same result as the Python code, or handled
 * by the Python code; tests (tests/unit/test_fastpath.py) hold the two to the same values
 * on valid and on mutated input. The module is optional: without it the Python code runs.
 *
 * Every read is bounds-checked against the buffer's length before it happens.
 *
 * It is one file of some 1,400 lines because a CPython extension is one translation unit
 * with one module table, and the readers and writers share the configured field names,
 * the bounds-checked cursor and the Avro primitives above them.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#include <openssl/evp.h>
#include <sodium.h>

/* The version of this module's interface, raised with every change of a signature. */
#define NATIVE_INTERFACE 3

/* ---- configuration, set once by configure() ---------------------------------------- */

enum { HEADER_FIELDS = 18, SECTION_FIELDS = 4, ENVELOPE_FIELDS = 3, ENUMS = 8 };

/* Field order of Header, Section and Envelope as configure() receives their names. */
enum {
    H_ORIGIN, H_ALERT_TYPE, H_ALERT_ID, H_VERSION, H_MESSAGE_ID, H_OPERATION, H_ISSUED_AT,
    H_EXPIRES_AT, H_HANDLING_CODE, H_SOURCE_RELIABILITY, H_INFORMATION_RELIABILITY,
    H_PRIORITY, H_ACTION_ON_HIT, H_WARNING_MARKERS, H_CANCEL_REASON, H_KEY_ID,
    H_SCHEMA_FINGERPRINT, H_LANGUAGE
};
enum { S_NAME, S_DIGEST, S_SALT, S_CONTENT };
enum { E_HEADER, E_SECTIONS, E_SIGNATURE };
/* Enum vocabularies, in the order configure() receives them. */
enum { V_ALERT_TYPE, V_OPERATION, V_HANDLING, V_SOURCE, V_INFORMATION, V_PRIORITY, V_ACTION,
       V_MARKER };

typedef struct {
    PyTypeObject *type;
    Py_ssize_t offsets[HEADER_FIELDS];
    int count;
} Layout;

static int configured = 0;
static Layout header_layout, section_layout, envelope_layout;
static PyObject *vocabularies[ENUMS]; /* tuples of enum members */
static PyObject *epoch;               /* datetime(1970, 1, 1, tzinfo=UTC) */
static EVP_MD *sha256;
static EVP_MD_CTX *digest_ctx;

#define DIGEST_SIZE 32
#define SALT_SIZE 16
#define FINGERPRINT_SIZE 8

static const char SIGNING_TAG[] = "border-exchange/alert/v1"; /* + NUL */
static const char SECTION_TAG[] = "border-exchange/section/v1"; /* + NUL */

/* The slot offsets of a frozen slotted dataclass, so values are set as its __init__ would
   (object.__setattr__ through the member descriptor) without the per-field calls. */
static int
layout_of(Layout *layout, PyObject *type, PyObject *names, int expected)
{
    if (!PyType_Check(type) || !PyTuple_Check(names) || PyTuple_GET_SIZE(names) != expected) {
        PyErr_SetString(PyExc_TypeError, "configure: a class and a tuple of its field names");
        return -1;
    }
    for (int i = 0; i < expected; i++) {
        PyObject *descr = PyObject_GetAttr(type, PyTuple_GET_ITEM(names, i));
        if (descr == NULL) {
            return -1;
        }
        if (!Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
            ((PyMemberDescrObject *)descr)->d_member->type != T_OBJECT_EX) {
            Py_DECREF(descr);
            PyErr_SetString(PyExc_TypeError, "configure: every field must be a slot");
            return -1;
        }
        layout->offsets[i] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
    }
    Py_INCREF(type);
    layout->type = (PyTypeObject *)type;
    layout->count = expected;
    return 0;
}

static PyObject *
configure(PyObject *self, PyObject *args)
{
    PyObject *header_type, *header_names, *section_type, *section_names, *envelope_type,
        *envelope_names, *vocab, *epoch_value;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &header_type, &header_names, &section_type,
                          &section_names, &envelope_type, &envelope_names, &vocab,
                          &epoch_value)) {
        return NULL;
    }
    if (configured) {
        Py_RETURN_NONE;
    }
    if (!PyTuple_Check(vocab) || PyTuple_GET_SIZE(vocab) != ENUMS) {
        PyErr_SetString(PyExc_TypeError, "configure: eight vocabularies");
        return NULL;
    }
    if (layout_of(&header_layout, header_type, header_names, HEADER_FIELDS) < 0 ||
        layout_of(&section_layout, section_type, section_names, SECTION_FIELDS) < 0 ||
        layout_of(&envelope_layout, envelope_type, envelope_names, ENVELOPE_FIELDS) < 0) {
        return NULL;
    }
    for (int i = 0; i < ENUMS; i++) {
        PyObject *members = PyTuple_GET_ITEM(vocab, i);
        if (!PyTuple_Check(members) || PyTuple_GET_SIZE(members) == 0) {
            PyErr_SetString(PyExc_TypeError, "configure: a vocabulary is a tuple of members");
            return NULL;
        }
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(members); j++) {
            if (!PyUnicode_Check(PyTuple_GET_ITEM(members, j))) {
                PyErr_SetString(PyExc_TypeError, "configure: members must be strings");
                return NULL;
            }
        }
        Py_INCREF(members);
        vocabularies[i] = members;
    }
    if (!PyDateTime_Check(epoch_value)) {
        PyErr_SetString(PyExc_TypeError, "configure: the epoch is a datetime");
        return NULL;
    }
    Py_INCREF(epoch_value);
    epoch = epoch_value;
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    digest_ctx = EVP_MD_CTX_new();
    if (sha256 == NULL || digest_ctx == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "configure: OpenSSL has no SHA-256");
        return NULL;
    }
    configured = 1;
    Py_RETURN_NONE;
}

/* A new instance of ``layout``'s class with its slots set to ``values`` (references
   stolen). NULL with an exception only when memory runs out. */
static PyObject *
build(const Layout *layout, PyObject **values)
{
    PyObject *obj = layout->type->tp_alloc(layout->type, 0);
    if (obj == NULL) {
        for (int i = 0; i < layout->count; i++) {
            Py_DECREF(values[i]);
        }
        return NULL;
    }
    for (int i = 0; i < layout->count; i++) {
        *(PyObject **)((char *)obj + layout->offsets[i]) = values[i];
    }
    return obj;
}

/* ---- reading ------------------------------------------------------------------------ */

typedef struct {
    const uint8_t *data;
    Py_ssize_t pos, len;
} Cursor;

/* The cursor over (data, pos) of a reader's arguments: 1 to read, 0 to decline (pos
   outside the data), -1 with an exception when called wrongly. */
static int
cursor_of(PyObject *const *args, Py_ssize_t nargs, int ready, const char *name, Cursor *c)
{
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "%s(data: bytes, pos: int)", name);
        return -1;
    }
    if (!ready) {
        PyErr_Format(PyExc_RuntimeError, "%s: not configured", name);
        return -1;
    }
    c->data = (const uint8_t *)PyBytes_AS_STRING(args[0]);
    c->len = PyBytes_GET_SIZE(args[0]);
    c->pos = PyLong_AsSsize_t(args[1]);
    if (c->pos == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return c->pos >= 0 && c->pos <= c->len;
}

/* A zigzag varint of any 64-bit value (the longer ones Python reads are declined). */
static int
read_long(Cursor *c, int64_t *out)
{
    uint64_t value = 0;
    for (int shift = 0; shift <= 63; shift += 7) {
        if (c->pos >= c->len) {
            return -1;
        }
        uint8_t byte = c->data[c->pos++];
        if (shift == 63 && byte > 1) {
            return -1;
        }
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (byte < 0x80) {
            *out = (int64_t)(value >> 1) ^ -(int64_t)(value & 1);
            return 0;
        }
    }
    return -1;
}

static int
read_span(Cursor *c, const uint8_t **start, Py_ssize_t *size)
{
    int64_t n;
    if (read_long(c, &n) < 0 || n < 0 || n > c->len - c->pos) {
        return -1;
    }
    *start = c->data + c->pos;
    *size = (Py_ssize_t)n;
    c->pos += (Py_ssize_t)n;
    return 0;
}

static PyObject *
read_text(Cursor *c)
{
    const uint8_t *start;
    Py_ssize_t size;
    if (read_span(c, &start, &size) < 0) {
        return NULL;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)start, size, NULL);
    if (text == NULL) {
        PyErr_Clear();
    }
    return text;
}

static PyObject *
read_raw(Cursor *c)
{
    const uint8_t *start;
    Py_ssize_t size;
    if (read_span(c, &start, &size) < 0) {
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)start, size);
}

static PyObject *
read_fixed(Cursor *c, Py_ssize_t size)
{
    if (size > c->len - c->pos) {
        return NULL;
    }
    PyObject *value = PyBytes_FromStringAndSize((const char *)c->data + c->pos, size);
    c->pos += size;
    return value;
}

static PyObject *
read_symbol(Cursor *c, int vocabulary)
{
    int64_t index;
    PyObject *members = vocabularies[vocabulary];
    if (read_long(c, &index) < 0 || index < 0 || index >= PyTuple_GET_SIZE(members)) {
        return NULL;
    }
    PyObject *member = PyTuple_GET_ITEM(members, index);
    Py_INCREF(member);
    return member;
}

/* A union of null and one branch: 0 for null, 1 for the value, -1 for anything else. */
static int
read_branch(Cursor *c)
{
    if (c->pos >= c->len) {
        return -1;
    }
    uint8_t byte = c->data[c->pos++];
    return byte == 0x00 ? 0 : byte == 0x02 ? 1 : -1;
}

#define MICROS_PER_DAY 86400000000LL

/* ``epoch + timedelta(microseconds=n)``, as the Python reader computes it. */
static PyObject *
read_time(Cursor *c)
{
    int64_t micros;
    if (read_long(c, &micros) < 0) {
        return NULL;
    }
    int64_t days = micros / MICROS_PER_DAY;
    int64_t rest = micros % MICROS_PER_DAY;
    if (rest < 0) {
        rest += MICROS_PER_DAY;
        days -= 1;
    }
    if (days > 3000000 || days < -3000000) { /* far beyond datetime's years 1 to 9999 */
        return NULL;
    }
    PyObject *delta = PyDelta_FromDSU((int)days, (int)(rest / 1000000), (int)(rest % 1000000));
    if (delta == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *moment = PyNumber_Add(epoch, delta);
    Py_DECREF(delta);
    if (moment == NULL) {
        PyErr_Clear();
    }
    return moment;
}

/* The count of the next array block, skipping its byte size when given. */
static int
read_block(Cursor *c, int64_t *count)
{
    if (read_long(c, count) < 0) {
        return -1;
    }
    if (*count < 0) {
        int64_t size;
        if (read_long(c, &size) < 0 || *count == INT64_MIN) {
            return -1;
        }
        *count = -*count;
    }
    return 0;
}

static void
release(PyObject **values, int count)
{
    for (int i = 0; i < count; i++) {
        Py_XDECREF(values[i]);
    }
}

/* An optional value: null, or what ``read`` reads. */
static int
read_optional(Cursor *c, PyObject **out, PyObject *(*read)(Cursor *))
{
    int branch = read_branch(c);
    if (branch < 0) {
        return -1;
    }
    if (branch == 0) {
        *out = Py_NewRef(Py_None);
        return 0;
    }
    *out = read(c);
    return *out == NULL ? -1 : 0;
}

/* An array of ``read`` items, as a list. */
static PyObject *
read_list(Cursor *c, PyObject *(*read)(Cursor *))
{
    PyObject *items = PyList_New(0);
    int64_t count;
    if (items == NULL) {
        return NULL;
    }
    if (read_block(c, &count) < 0) {
        goto fail;
    }
    while (count) {
        if (count > c->len - c->pos) { /* every item takes a byte at least */
            goto fail;
        }
        for (int64_t i = 0; i < count; i++) {
            PyObject *item = read(c);
            if (item == NULL) {
                goto fail;
            }
            int failed = PyList_Append(items, item);
            Py_DECREF(item);
            if (failed) {
                goto fail;
            }
        }
        if (read_block(c, &count) < 0) {
            goto fail;
        }
    }
    return items;
fail:
    Py_DECREF(items);
    return NULL;
}

/* An array of ``read`` items, as a tuple. */
static PyObject *
read_tuple(Cursor *c, PyObject *(*read)(Cursor *))
{
    PyObject *items = read_list(c, read);
    if (items == NULL) {
        return NULL;
    }
    PyObject *result = PyList_AsTuple(items);
    Py_DECREF(items);
    return result;
}

static PyObject *
read_marker(Cursor *c)
{
    return read_symbol(c, V_MARKER);
}

static PyObject *
read_section(Cursor *c)
{
    PyObject *values[SECTION_FIELDS] = {NULL, NULL, NULL, NULL};
    int branch;
    if ((values[S_NAME] = read_text(c)) == NULL ||
        (values[S_DIGEST] = read_fixed(c, DIGEST_SIZE)) == NULL) {
        goto fail;
    }
    branch = read_branch(c);
    if (branch < 0) {
        goto fail;
    }
    if (branch == 0) {
        values[S_SALT] = Py_NewRef(Py_None);
    }
    else if ((values[S_SALT] = read_fixed(c, SALT_SIZE)) == NULL) {
        goto fail;
    }
    branch = read_branch(c);
    if (branch < 0) {
        goto fail;
    }
    if (branch == 0) {
        values[S_CONTENT] = Py_NewRef(Py_None);
    }
    else if ((values[S_CONTENT] = read_raw(c)) == NULL) {
        goto fail;
    }
    return build(&section_layout, values);
fail:
    release(values, SECTION_FIELDS);
    return NULL;
}

/* read_envelope(data, pos) -> (Envelope, sections_at) | None */
static PyObject *
read_envelope(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Cursor c;
    int ready = cursor_of(args, nargs, configured, "read_envelope", &c);
    if (ready <= 0) {
        return ready < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *h[HEADER_FIELDS] = {NULL};
    PyObject *e[ENVELOPE_FIELDS] = {NULL};
    int64_t version;
    Py_ssize_t sections_at;
    if ((h[H_ORIGIN] = read_text(&c)) == NULL ||
        (h[H_ALERT_TYPE] = read_symbol(&c, V_ALERT_TYPE)) == NULL ||
        (h[H_ALERT_ID] = read_text(&c)) == NULL) {
        goto fail;
    }
    if (read_long(&c, &version) < 0 || version < INT32_MIN || version > INT32_MAX ||
        (h[H_VERSION] = PyLong_FromLongLong(version)) == NULL) {
        goto fail;
    }
    if ((h[H_MESSAGE_ID] = read_text(&c)) == NULL ||
        (h[H_OPERATION] = read_symbol(&c, V_OPERATION)) == NULL ||
        (h[H_ISSUED_AT] = read_time(&c)) == NULL ||
        (h[H_EXPIRES_AT] = read_time(&c)) == NULL ||
        (h[H_HANDLING_CODE] = read_symbol(&c, V_HANDLING)) == NULL ||
        (h[H_SOURCE_RELIABILITY] = read_symbol(&c, V_SOURCE)) == NULL ||
        (h[H_INFORMATION_RELIABILITY] = read_symbol(&c, V_INFORMATION)) == NULL ||
        (h[H_PRIORITY] = read_symbol(&c, V_PRIORITY)) == NULL ||
        (h[H_ACTION_ON_HIT] = read_symbol(&c, V_ACTION)) == NULL ||
        (h[H_WARNING_MARKERS] = read_tuple(&c, read_marker)) == NULL ||
        read_optional(&c, &h[H_CANCEL_REASON], read_text) < 0 ||
        read_optional(&c, &h[H_LANGUAGE], read_text) < 0 ||
        (h[H_KEY_ID] = read_text(&c)) == NULL ||
        (h[H_SCHEMA_FINGERPRINT] = read_fixed(&c, FINGERPRINT_SIZE)) == NULL) {
        goto fail;
    }
    sections_at = c.pos;
    if ((e[E_SECTIONS] = read_tuple(&c, read_section)) == NULL ||
        (e[E_SIGNATURE] = read_raw(&c)) == NULL || c.pos != c.len) {
        goto fail;
    }
    e[E_HEADER] = build(&header_layout, h);
    if (e[E_HEADER] == NULL) {
        release(e, ENVELOPE_FIELDS);
        return NULL;
    }
    PyObject *envelope = build(&envelope_layout, e);
    if (envelope == NULL) {
        return NULL;
    }
    PyObject *at = PyLong_FromSsize_t(sections_at);
    if (at == NULL) {
        Py_DECREF(envelope);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, envelope, at);
    Py_DECREF(envelope);
    Py_DECREF(at);
    return result;
fail:
    PyErr_Clear();
    release(h, HEADER_FIELDS);
    release(e, ENVELOPE_FIELDS);
    Py_RETURN_NONE;
}

/* ---- the signing input -------------------------------------------------------------- */

typedef struct {
    uint8_t *data;
    Py_ssize_t len, cap;
} Buffer;

static int
put(Buffer *b, const void *data, Py_ssize_t size)
{
    if (b->len + size > b->cap) {
        Py_ssize_t cap = b->cap * 2 > b->len + size ? b->cap * 2 : b->len + size;
        uint8_t *grown = PyMem_Realloc(b->data, cap);
        if (grown == NULL) {
            return -1;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, size);
    b->len += size;
    return 0;
}

/* What ``b`` holds as a bytes object (NULL when out of memory); ``b`` is freed. */
static PyObject *
taken(Buffer *b)
{
    PyObject *result = PyBytes_FromStringAndSize((const char *)b->data, b->len);
    PyMem_Free(b->data);
    return result;
}

/* None, for a value the Python code is to handle: any error cleared, ``b`` freed. */
static PyObject *
declined(Buffer *b)
{
    PyErr_Clear();
    PyMem_Free(b->data);
    Py_RETURN_NONE;
}

static void
be32(uint8_t *out, uint32_t value)
{
    out[0] = value >> 24;
    out[1] = value >> 16;
    out[2] = value >> 8;
    out[3] = value;
}

static int
put_u32(Buffer *b, uint32_t value)
{
    uint8_t raw[4];
    be32(raw, value);
    return put(b, raw, 4);
}

/* 4-byte big-endian length and the bytes */
static int
put_lp(Buffer *b, const char *data, Py_ssize_t size)
{
    if (size > UINT32_MAX) {
        return -1;
    }
    return put_u32(b, (uint32_t)size) < 0 ? -1 : put(b, data, size);
}

static int
utf8_of(PyObject *text, const char **data, Py_ssize_t *size)
{
    if (!PyUnicode_Check(text)) {
        return -1;
    }
    *data = PyUnicode_AsUTF8AndSize(text, size);
    if (*data == NULL) {
        PyErr_Clear();
        return -1;
    }
    return 0;
}

static int
put_text(Buffer *b, PyObject *text)
{
    const char *data;
    Py_ssize_t size;
    return utf8_of(text, &data, &size) < 0 ? -1 : put_lp(b, data, size);
}

/* A member of ``vocabulary`` (its exact enum class), as length-prefixed UTF-8. */
static int
put_code(Buffer *b, PyObject *value, int vocabulary)
{
    if (Py_TYPE(value) != Py_TYPE(PyTuple_GET_ITEM(vocabularies[vocabulary], 0))) {
        return -1;
    }
    return put_text(b, value);
}

/* The microseconds from the epoch to an aware datetime, as ``(moment - epoch) // 1 µs``. */
static int
micros_of(PyObject *moment, int64_t *micros)
{
    PyObject *delta = PyNumber_Subtract(moment, epoch);
    if (delta == NULL) {
        PyErr_Clear();
        return -1;
    }
    *micros = ((int64_t)PyDateTime_DELTA_GET_DAYS(delta) * 86400 +
               PyDateTime_DELTA_GET_SECONDS(delta)) * 1000000 +
              PyDateTime_DELTA_GET_MICROSECONDS(delta);
    Py_DECREF(delta);
    return 0;
}

/* ``i64`` of the microseconds from the epoch to an aware datetime. */
static int
put_stamp(Buffer *b, PyObject *moment)
{
    int64_t micros;
    if (!PyDateTime_Check(moment) || micros_of(moment, &micros) < 0) {
        return -1;
    }
    uint8_t raw[8];
    be32(raw, (uint32_t)((uint64_t)micros >> 32));
    be32(raw + 4, (uint32_t)micros);
    return put(b, raw, 8);
}

static int
put_optional_text(Buffer *b, PyObject *text)
{
    if (text == Py_None) {
        return put(b, "\x00", 1);
    }
    return put(b, "\x01", 1) < 0 ? -1 : put_text(b, text);
}

#define FIELD(obj, layout, i) (*(PyObject **)((char *)(obj) + (layout).offsets[i]))

static int
put_header(Buffer *b, PyObject *header, Py_ssize_t section_count)
{
    PyObject *version = FIELD(header, header_layout, H_VERSION);
    PyObject *markers = FIELD(header, header_layout, H_WARNING_MARKERS);
    PyObject *fingerprint = FIELD(header, header_layout, H_SCHEMA_FINGERPRINT);
    if (!PyLong_CheckExact(version) || !PyTuple_Check(markers) || !PyBytes_Check(fingerprint)) {
        return -1;
    }
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(version, &overflow);
    if (overflow || number < INT32_MIN || number > INT32_MAX) {
        return -1;
    }
    if (put(b, SIGNING_TAG, sizeof SIGNING_TAG) < 0 ||
        put_text(b, FIELD(header, header_layout, H_ORIGIN)) < 0 ||
        put_code(b, FIELD(header, header_layout, H_ALERT_TYPE), V_ALERT_TYPE) < 0 ||
        put_text(b, FIELD(header, header_layout, H_ALERT_ID)) < 0 ||
        put_u32(b, (uint32_t)(int32_t)number) < 0 ||
        put_text(b, FIELD(header, header_layout, H_MESSAGE_ID)) < 0 ||
        put_code(b, FIELD(header, header_layout, H_OPERATION), V_OPERATION) < 0 ||
        put_stamp(b, FIELD(header, header_layout, H_ISSUED_AT)) < 0 ||
        put_stamp(b, FIELD(header, header_layout, H_EXPIRES_AT)) < 0 ||
        put_code(b, FIELD(header, header_layout, H_HANDLING_CODE), V_HANDLING) < 0 ||
        put_code(b, FIELD(header, header_layout, H_SOURCE_RELIABILITY), V_SOURCE) < 0 ||
        put_code(b, FIELD(header, header_layout, H_INFORMATION_RELIABILITY), V_INFORMATION) <
            0 ||
        put_code(b, FIELD(header, header_layout, H_PRIORITY), V_PRIORITY) < 0 ||
        put_code(b, FIELD(header, header_layout, H_ACTION_ON_HIT), V_ACTION) < 0 ||
        put_u32(b, (uint32_t)PyTuple_GET_SIZE(markers)) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(markers); i++) {
        if (put_code(b, PyTuple_GET_ITEM(markers, i), V_MARKER) < 0) {
            return -1;
        }
    }
    if (put_optional_text(b, FIELD(header, header_layout, H_CANCEL_REASON)) < 0 ||
        put_optional_text(b, FIELD(header, header_layout, H_LANGUAGE)) < 0 ||
        put_text(b, FIELD(header, header_layout, H_KEY_ID)) < 0 ||
        put_lp(b, PyBytes_AS_STRING(fingerprint), PyBytes_GET_SIZE(fingerprint)) < 0 ||
        section_count > UINT32_MAX || put_u32(b, (uint32_t)section_count) < 0) {
        return -1;
    }
    return 0;
}

/* SHA-256 over the section tag, the length-prefixed alert id, message id and name, and
   the length-prefixed salt and content; compared with the signed digest. */
static int
digest_matches(PyObject *alert_id, PyObject *message_id, PyObject *section)
{
    PyObject *name = FIELD(section, section_layout, S_NAME);
    PyObject *digest = FIELD(section, section_layout, S_DIGEST);
    PyObject *salt = FIELD(section, section_layout, S_SALT);
    PyObject *content = FIELD(section, section_layout, S_CONTENT);
    const char *parts[3];
    Py_ssize_t sizes[3];
    uint8_t length[4], computed[EVP_MAX_MD_SIZE];
    unsigned int computed_size = 0;
    if (!PyBytes_Check(salt) || PyBytes_GET_SIZE(salt) != SALT_SIZE ||
        !PyBytes_Check(content) || PyBytes_GET_SIZE(content) > UINT32_MAX ||
        utf8_of(alert_id, &parts[0], &sizes[0]) < 0 ||
        utf8_of(message_id, &parts[1], &sizes[1]) < 0 ||
        utf8_of(name, &parts[2], &sizes[2]) < 0 ||
        !EVP_DigestInit_ex2(digest_ctx, sha256, NULL) ||
        !EVP_DigestUpdate(digest_ctx, SECTION_TAG, sizeof SECTION_TAG)) {
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        be32(length, (uint32_t)sizes[i]);
        if (!EVP_DigestUpdate(digest_ctx, length, 4) ||
            !EVP_DigestUpdate(digest_ctx, parts[i], sizes[i])) {
            return 0;
        }
    }
    be32(length, SALT_SIZE);
    if (!EVP_DigestUpdate(digest_ctx, length, 4) ||
        !EVP_DigestUpdate(digest_ctx, PyBytes_AS_STRING(salt), SALT_SIZE)) {
        return 0;
    }
    be32(length, (uint32_t)PyBytes_GET_SIZE(content));
    if (!EVP_DigestUpdate(digest_ctx, length, 4) ||
        !EVP_DigestUpdate(digest_ctx, PyBytes_AS_STRING(content), PyBytes_GET_SIZE(content)) ||
        !EVP_DigestFinal_ex(digest_ctx, computed, &computed_size)) {
        return 0;
    }
    return computed_size == DIGEST_SIZE &&
           memcmp(computed, PyBytes_AS_STRING(digest), DIGEST_SIZE) == 0;
}

/* checked_signing_input(envelope) -> bytes | None

   The signing input of ``envelope``, when every present section matches its signed
   digest and every value has its usual type; None otherwise. */
static PyObject *
checked_signing_input(PyObject *self, PyObject *envelope)
{
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "checked_signing_input: configure() first");
        return NULL;
    }
    if (Py_TYPE(envelope) != envelope_layout.type) {
        Py_RETURN_NONE;
    }
    PyObject *header = FIELD(envelope, envelope_layout, E_HEADER);
    PyObject *sections = FIELD(envelope, envelope_layout, E_SECTIONS);
    if (Py_TYPE(header) != header_layout.type || !PyTuple_Check(sections)) {
        Py_RETURN_NONE;
    }
    PyObject *alert_id = FIELD(header, header_layout, H_ALERT_ID);
    PyObject *message_id = FIELD(header, header_layout, H_MESSAGE_ID);
    Buffer b = {PyMem_Malloc(1024), 0, 1024};
    if (b.data == NULL) {
        return PyErr_NoMemory();
    }
    if (put_header(&b, header, PyTuple_GET_SIZE(sections)) < 0) {
        goto none;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(sections); i++) {
        PyObject *section = PyTuple_GET_ITEM(sections, i);
        if (Py_TYPE(section) != section_layout.type) {
            goto none;
        }
        PyObject *digest = FIELD(section, section_layout, S_DIGEST);
        PyObject *salt = FIELD(section, section_layout, S_SALT);
        PyObject *content = FIELD(section, section_layout, S_CONTENT);
        if (!PyBytes_Check(digest) || PyBytes_GET_SIZE(digest) != DIGEST_SIZE ||
            put_text(&b, FIELD(section, section_layout, S_NAME)) < 0 ||
            put(&b, PyBytes_AS_STRING(digest), DIGEST_SIZE) < 0) {
            goto none;
        }
        if (content == Py_None) {
            if (salt != Py_None) {
                goto none;
            }
        }
        else if (!digest_matches(alert_id, message_id, section)) {
            goto none;
        }
    }
    return taken(&b);
none:
    return declined(&b);
}

/* ---- the section list re-encoded for a redacted copy -------------------------------- */

static int
put_varint(Buffer *b, int64_t value)
{
    uint64_t n = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    uint8_t raw[10];
    int size = 0;
    while (n & ~(uint64_t)0x7F) {
        raw[size++] = (uint8_t)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    raw[size++] = (uint8_t)n;
    return put(b, raw, size);
}

static int
put_avro_bytes(Buffer *b, PyObject *value)
{
    return put_varint(b, PyBytes_GET_SIZE(value)) < 0
               ? -1
               : put(b, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
}

/* sections_tail(sections, signature, keep) -> bytes | None

   The Avro bytes of the section array and the signature, with the salt and content of
   every section whose name is not in ``keep`` withheld (``keep`` None: all kept); None
   when a value is not of its usual type. */
static PyObject *
sections_tail(PyObject *self, PyObject *args)
{
    PyObject *sections, *signature, *keep;
    if (!PyArg_ParseTuple(args, "O!O!O", &PyTuple_Type, &sections, &PyBytes_Type, &signature,
                          &keep)) {
        return NULL;
    }
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "sections_tail: configure() first");
        return NULL;
    }
    Buffer b = {PyMem_Malloc(2048), 0, 2048};
    if (b.data == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t count = PyTuple_GET_SIZE(sections);
    if (count && put_varint(&b, count) < 0) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *section = PyTuple_GET_ITEM(sections, i);
        if (Py_TYPE(section) != section_layout.type) {
            goto none;
        }
        PyObject *name = FIELD(section, section_layout, S_NAME);
        PyObject *digest = FIELD(section, section_layout, S_DIGEST);
        PyObject *salt = FIELD(section, section_layout, S_SALT);
        PyObject *content = FIELD(section, section_layout, S_CONTENT);
        const char *text;
        Py_ssize_t size;
        if (utf8_of(name, &text, &size) < 0 || !PyBytes_Check(digest)) {
            goto none;
        }
        if (put_varint(&b, size) < 0 || put(&b, text, size) < 0 ||
            put(&b, PyBytes_AS_STRING(digest), PyBytes_GET_SIZE(digest)) < 0) {
            goto fail;
        }
        int kept = content != Py_None && salt != Py_None;
        if (kept && keep != Py_None) {
            kept = PySequence_Contains(keep, name);
            if (kept < 0) {
                goto none;
            }
        }
        if (!kept) {
            if (put(&b, "\x00\x00", 2) < 0) {
                goto fail;
            }
            continue;
        }
        if (!PyBytes_Check(salt) || !PyBytes_Check(content)) {
            goto none;
        }
        if (put(&b, "\x02", 1) < 0 ||
            put(&b, PyBytes_AS_STRING(salt), PyBytes_GET_SIZE(salt)) < 0 ||
            put(&b, "\x02", 1) < 0 || put_avro_bytes(&b, content) < 0) {
            goto fail;
        }
    }
    if (put(&b, "\x00", 1) < 0 || put_avro_bytes(&b, signature) < 0) {
        goto fail;
    }
    return taken(&b);
none:
    return declined(&b);
fail:
    PyMem_Free(b.data);
    return PyErr_NoMemory();
}

/* ---- audit records ------------------------------------------------------------------ */

static PyObject *audit_keys; /* interned field names, in the record's order */
static PyObject *outcome_keys;

enum {
    A_CHAIN, A_SEQ, A_PREV_HASH, A_KIND, A_RECORDED_AT, A_SOURCE_OFFSET, A_MESSAGE_ID,
    A_ALERT_ID, A_VERSION, A_ORIGIN, A_ALERT_TYPE, A_OPERATION, A_HANDLING_CODE,
    A_ACTION_ON_HIT, A_ISSUED_AT, A_EXPIRES_AT, A_SECTIONS, A_AGREEMENT_SET,
    A_AGREEMENT_LABEL, A_EARLIER_RECIPIENTS, A_OUTCOMES, A_QUARANTINE_REASON,
    A_QUARANTINE_DETAIL, A_CHECKPOINT_KEY_ID, A_CHECKPOINT_SIGNATURE, AUDIT_FIELDS
};
enum { O_PARTICIPANT, O_DELIVERED, O_SECTIONS, O_REASON, O_AGREEMENT_ID, O_BASIS,
       OUTCOME_FIELDS };

static int
read_int(Cursor *c, PyObject **out)
{
    int64_t value;
    if (read_long(c, &value) < 0) {
        return -1;
    }
    *out = PyLong_FromLongLong(value);
    return *out == NULL ? -1 : 0;
}

static PyObject *
read_long_value(Cursor *c)
{
    PyObject *value = NULL;
    return read_int(c, &value) < 0 ? NULL : value;
}

static PyObject *
read_strings(Cursor *c)
{
    return read_list(c, read_text);
}

static PyObject *
dict_of(PyObject *keys, PyObject **values, int count)
{
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        if (PyDict_SetItem(dict, PyTuple_GET_ITEM(keys, i), values[i]) < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

static PyObject *
read_outcome(Cursor *c)
{
    PyObject *v[OUTCOME_FIELDS] = {NULL};
    PyObject *result = NULL;
    if ((v[O_PARTICIPANT] = read_text(c)) == NULL || c->pos >= c->len) {
        goto done;
    }
    v[O_DELIVERED] = Py_NewRef(c->data[c->pos++] != 0 ? Py_True : Py_False);
    if ((v[O_SECTIONS] = read_strings(c)) == NULL ||
        read_optional(c, &v[O_REASON], read_text) < 0 ||
        read_optional(c, &v[O_AGREEMENT_ID], read_text) < 0 ||
        read_optional(c, &v[O_BASIS], read_text) < 0) {
        goto done;
    }
    result = dict_of(outcome_keys, v, OUTCOME_FIELDS);
done:
    release(v, OUTCOME_FIELDS);
    return result;
}

/* read_audit(data, pos) -> dict | None: an audit record of the current layout, as the
   Python reader builds it; None for anything else (read in Python). */
static PyObject *
read_audit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Cursor c;
    int ready = cursor_of(args, nargs, configured && audit_keys != NULL, "read_audit", &c);
    if (ready <= 0) {
        return ready < 0 ? NULL : Py_NewRef(Py_None);
    }
    PyObject *v[AUDIT_FIELDS] = {NULL};
    PyObject *result = NULL;
    if ((v[A_CHAIN] = read_text(&c)) == NULL || read_int(&c, &v[A_SEQ]) < 0 ||
        (v[A_PREV_HASH] = read_raw(&c)) == NULL || (v[A_KIND] = read_text(&c)) == NULL ||
        (v[A_RECORDED_AT] = read_time(&c)) == NULL ||
        read_optional(&c, &v[A_SOURCE_OFFSET], read_long_value) < 0 ||
        read_optional(&c, &v[A_MESSAGE_ID], read_text) < 0 ||
        read_optional(&c, &v[A_ALERT_ID], read_text) < 0 ||
        read_optional(&c, &v[A_VERSION], read_long_value) < 0 ||
        read_optional(&c, &v[A_ORIGIN], read_text) < 0 ||
        read_optional(&c, &v[A_ALERT_TYPE], read_text) < 0 ||
        read_optional(&c, &v[A_OPERATION], read_text) < 0 ||
        read_optional(&c, &v[A_HANDLING_CODE], read_text) < 0 ||
        read_optional(&c, &v[A_ACTION_ON_HIT], read_text) < 0 ||
        read_optional(&c, &v[A_ISSUED_AT], read_time) < 0 ||
        read_optional(&c, &v[A_EXPIRES_AT], read_time) < 0 ||
        (v[A_SECTIONS] = read_strings(&c)) == NULL ||
        read_optional(&c, &v[A_AGREEMENT_SET], read_text) < 0 ||
        read_optional(&c, &v[A_AGREEMENT_LABEL], read_text) < 0 ||
        (v[A_EARLIER_RECIPIENTS] = read_strings(&c)) == NULL ||
        (v[A_OUTCOMES] = read_list(&c, read_outcome)) == NULL ||
        read_optional(&c, &v[A_QUARANTINE_REASON], read_text) < 0 ||
        read_optional(&c, &v[A_QUARANTINE_DETAIL], read_text) < 0 ||
        read_optional(&c, &v[A_CHECKPOINT_KEY_ID], read_text) < 0 ||
        read_optional(&c, &v[A_CHECKPOINT_SIGNATURE], read_raw) < 0 || c.pos != c.len) {
        goto done;
    }
    result = dict_of(audit_keys, v, AUDIT_FIELDS);
done:
    release(v, AUDIT_FIELDS);
    if (result == NULL) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}

/* configure_audit(record_fields, outcome_fields): the dict keys, in the record's order. */
static PyObject *
configure_audit(PyObject *self, PyObject *args)
{
    PyObject *record_fields, *outcome_fields;
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &record_fields, &PyTuple_Type,
                          &outcome_fields)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(record_fields) != AUDIT_FIELDS ||
        PyTuple_GET_SIZE(outcome_fields) != OUTCOME_FIELDS) {
        PyErr_SetString(PyExc_ValueError, "configure_audit: the fields of this layout");
        return NULL;
    }
    if (audit_keys == NULL) {
        audit_keys = Py_NewRef(record_fields);
        outcome_keys = Py_NewRef(outcome_fields);
    }
    Py_RETURN_NONE;
}

/* ---- writing audit records --------------------------------------------------------- */

/* The value of ``key`` in ``record`` (borrowed), Py_None when absent; NULL when the
   record is not a dict. */
static PyObject *
field(PyObject *record, int index)
{
    PyObject *value = PyDict_GetItemWithError(record, PyTuple_GET_ITEM(audit_keys, index));
    if (value == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return Py_None;
    }
    return value;
}

static int
put_avro_text(Buffer *b, PyObject *text)
{
    const char *data;
    Py_ssize_t size;
    if (utf8_of(text, &data, &size) < 0) {
        return -1;
    }
    return put_varint(b, size) < 0 ? -1 : put(b, data, size);
}

static int
put_avro_long(Buffer *b, PyObject *value)
{
    if (!PyLong_Check(value)) {
        return -1;
    }
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (overflow || (number == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return -1;
    }
    return put_varint(b, number);
}

static int
put_avro_time(Buffer *b, PyObject *moment)
{
    int64_t micros;
    if (!PyDateTime_CheckExact(moment) || micros_of(moment, &micros) < 0) {
        return -1;
    }
    return put_varint(b, micros);
}

static int
put_raw_bytes(Buffer *b, PyObject *value)
{
    return PyBytes_Check(value) ? put_avro_bytes(b, value) : -1;
}

/* null, or the value written by ``write`` */
static int
put_optional(Buffer *b, PyObject *value, int (*write)(Buffer *, PyObject *))
{
    if (value == Py_None) {
        return put(b, "\x00", 1);
    }
    return put(b, "\x02", 1) < 0 ? -1 : write(b, value);
}

/* A list or tuple of values, each written by ``write``, or None (an empty array). */
static int
put_array(Buffer *b, PyObject *values, int (*write)(Buffer *, PyObject *))
{
    if (values == Py_None) {
        return put(b, "\x00", 1);
    }
    if (!PyList_CheckExact(values) && !PyTuple_CheckExact(values)) {
        return -1;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(values);
    if (count && put_varint(b, count) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (write(b, PySequence_Fast_GET_ITEM(values, i)) < 0) {
            return -1;
        }
    }
    return put(b, "\x00", 1);
}

static int
put_outcome(Buffer *b, PyObject *outcome)
{
    if (!PyDict_CheckExact(outcome)) {
        return -1;
    }
    PyObject *v[OUTCOME_FIELDS];
    for (int i = 0; i < OUTCOME_FIELDS; i++) {
        v[i] = PyDict_GetItemWithError(outcome, PyTuple_GET_ITEM(outcome_keys, i));
        if (v[i] == NULL) {
            if (PyErr_Occurred() || i <= O_DELIVERED) { /* participant, delivered: required */
                return -1;
            }
            v[i] = Py_None;
        }
    }
    /* Only exact types below: nothing here may run Python code that could change the
       record while it is written. */
    if (!PyBool_Check(v[O_DELIVERED]) && !PyLong_CheckExact(v[O_DELIVERED])) {
        return -1;
    }
    int delivered = PyObject_IsTrue(v[O_DELIVERED]);
    if (delivered < 0) {
        return -1;
    }
    return put_avro_text(b, v[O_PARTICIPANT]) < 0 ||
                   put(b, delivered ? "\x01" : "\x00", 1) < 0 ||
                   put_array(b, v[O_SECTIONS], put_avro_text) < 0 ||
                   put_optional(b, v[O_REASON], put_avro_text) < 0 ||
                   put_optional(b, v[O_AGREEMENT_ID], put_avro_text) < 0 ||
                   put_optional(b, v[O_BASIS], put_avro_text) < 0
               ? -1
               : 0;
}

/* write_audit(record) -> bytes | None: the Avro body of an audit record (a dict) as the
   Python writer writes it; None when a value is not of its usual type (written in Python). */
static PyObject *
write_audit(PyObject *self, PyObject *record)
{
    if (!configured || audit_keys == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write_audit: not configured");
        return NULL;
    }
    if (!PyDict_CheckExact(record)) {
        Py_RETURN_NONE;
    }
    PyObject *v[AUDIT_FIELDS];
    for (int i = 0; i < AUDIT_FIELDS; i++) {
        if ((v[i] = field(record, i)) == NULL) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    }
    /* sections, earlier_recipients and outcomes: a missing or empty value is an empty array */
    Buffer b = {PyMem_Malloc(1024), 0, 1024};
    if (b.data == NULL) {
        return PyErr_NoMemory();
    }
    int failed =
        put_avro_text(&b, v[A_CHAIN]) < 0 || put_avro_long(&b, v[A_SEQ]) < 0 ||
        put_raw_bytes(&b, v[A_PREV_HASH]) < 0 || put_avro_text(&b, v[A_KIND]) < 0 ||
        put_avro_time(&b, v[A_RECORDED_AT]) < 0 ||
        put_optional(&b, v[A_SOURCE_OFFSET], put_avro_long) < 0 ||
        put_optional(&b, v[A_MESSAGE_ID], put_avro_text) < 0 ||
        put_optional(&b, v[A_ALERT_ID], put_avro_text) < 0 ||
        put_optional(&b, v[A_VERSION], put_avro_long) < 0 ||
        put_optional(&b, v[A_ORIGIN], put_avro_text) < 0 ||
        put_optional(&b, v[A_ALERT_TYPE], put_avro_text) < 0 ||
        put_optional(&b, v[A_OPERATION], put_avro_text) < 0 ||
        put_optional(&b, v[A_HANDLING_CODE], put_avro_text) < 0 ||
        put_optional(&b, v[A_ACTION_ON_HIT], put_avro_text) < 0 ||
        put_optional(&b, v[A_ISSUED_AT], put_avro_time) < 0 ||
        put_optional(&b, v[A_EXPIRES_AT], put_avro_time) < 0 ||
        put_array(&b, v[A_SECTIONS], put_avro_text) < 0 ||
        put_optional(&b, v[A_AGREEMENT_SET], put_avro_text) < 0 ||
        put_optional(&b, v[A_AGREEMENT_LABEL], put_avro_text) < 0 ||
        put_array(&b, v[A_EARLIER_RECIPIENTS], put_avro_text) < 0 ||
        put_array(&b, v[A_OUTCOMES], put_outcome) < 0 ||
        put_optional(&b, v[A_QUARANTINE_REASON], put_avro_text) < 0 ||
        put_optional(&b, v[A_QUARANTINE_DETAIL], put_avro_text) < 0 ||
        put_optional(&b, v[A_CHECKPOINT_KEY_ID], put_avro_text) < 0 ||
        put_optional(&b, v[A_CHECKPOINT_SIGNATURE], put_raw_bytes) < 0;
    PyObject *result = failed ? Py_NewRef(Py_None)
                              : PyBytes_FromStringAndSize((const char *)b.data, b.len);
    PyErr_Clear();
    PyMem_Free(b.data);
    return result;
}

/* ---- signature checks in batches --------------------------------------------------- */

#define SIGNATURE_SIZE 64
#define PUBLIC_KEY_SIZE 32

/* verify_batch(signed, keys) -> bytes

   ``signed`` is a tuple of signature || message, ``keys`` a tuple of 32-byte public keys;
   each is checked with libsodium's crypto_sign_open, the function PyNaCl calls. Answers
   one byte per item, 1 when the signature verifies. The checks run without the GIL, so a
   worker thread verifies while the caller goes on in Python. */
static PyObject *
verify_batch(PyObject *self, PyObject *args)
{
    PyObject *signed_items, *keys;
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &signed_items, &PyTuple_Type, &keys)) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(signed_items);
    if (PyTuple_GET_SIZE(keys) != count) {
        PyErr_SetString(PyExc_ValueError, "verify_batch: as many keys as items");
        return NULL;
    }
    Py_ssize_t longest = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(signed_items, i);
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        if (!PyBytes_Check(item) || !PyBytes_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "verify_batch: items and keys are bytes");
            return NULL;
        }
        if (PyBytes_GET_SIZE(item) > longest) {
            longest = PyBytes_GET_SIZE(item);
        }
    }
    PyObject *results = PyBytes_FromStringAndSize(NULL, count);
    unsigned char *scratch = PyMem_RawMalloc(longest + 1);
    if (results == NULL || scratch == NULL) {
        Py_XDECREF(results);
        PyMem_RawFree(scratch);
        return PyErr_NoMemory();
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(results);
    /* The tuples, and the bytes they hold, are immutable and kept alive by the caller. */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(signed_items, i);
        PyObject *key = PyTuple_GET_ITEM(keys, i);
        unsigned long long size = 0;
        out[i] = PyBytes_GET_SIZE(item) >= SIGNATURE_SIZE &&
                 PyBytes_GET_SIZE(key) == PUBLIC_KEY_SIZE &&
                 crypto_sign_open(scratch, &size, (const unsigned char *)PyBytes_AS_STRING(item),
                           (unsigned long long)PyBytes_GET_SIZE(item),
                           (const unsigned char *)PyBytes_AS_STRING(key)) == 0;
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(scratch);
    return results;
}

/* Kafka's murmur2 of a record key, as its default partitioner takes it (positive 31 bits).
 * aiokafka's murmur2 (aiokafka.partitioner) is the reference; the tests compare the two. */
static PyObject *
key_hash(PyObject *self, PyObject *arg)
{
    if (!PyBytes_CheckExact(arg)) {
        Py_RETURN_NONE;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t length = PyBytes_GET_SIZE(arg);
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    Py_ssize_t words = length / 4;
    for (Py_ssize_t i = 0; i < words; i++) {
        const unsigned char *w = data + 4 * i;
        uint32_t k = (uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 |
                     (uint32_t)w[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const unsigned char *tail = data + 4 * words;
    switch (length & 3) {
    case 3:
        h ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        h ^= tail[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return PyLong_FromUnsignedLong(h & 0x7fffffffu);
}

/* ---- the name index's keys (domain/names.py: token_keys, token_index_keys, join) ----
 *
 * A name's tokens arrive as names.Token values whose key and skeleton are made of ASCII
 * letters and digits (names._token makes them so); the Unicode work (folding,
 * transliteration) stays in Python. From them this computes what name_index.rows
 * inserts: per token, and per two adjacent tokens read as one, its keys, sorted. Keys
 * longer than NK_TOKEN, or any character outside [0-9a-z], and the Python code runs. */

enum { NK_TOKEN = 48, NK_CAP = 208, NK_KEYS = NK_CAP + 4 };

static PyObject *nk_key_attr, *nk_skeleton_attr, *nk_latin_attr, *nk_text_attr;

static int
nk_plain(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            return 0;
        }
    }
    return 1;
}

/* names._DOUBLED.sub(r"\1", s): every run of one character written once. */
static size_t
nk_collapse(char *s, size_t n)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out == 0 || s[out - 1] != s[i]) {
            s[out++] = s[i];
        }
    }
    s[out] = '\0';
    return out;
}

/* str.replace(from, to) of s (n characters) into out; 0 when it would not fit. */
static int
nk_replace(const char *s, size_t n, const char *from, const char *to, char *out, size_t *outn)
{
    size_t fl = strlen(from), tl = strlen(to), o = 0, i = 0;
    while (i < n) {
        if (i + fl <= n && memcmp(s + i, from, fl) == 0) {
            if (o + tl >= NK_CAP) {
                return 0;
            }
            memcpy(out + o, to, tl);
            o += tl;
            i += fl;
        } else {
            if (o + 1 >= NK_CAP) {
                return 0;
            }
            out[o++] = s[i++];
        }
    }
    out[o] = '\0';
    *outn = o;
    return 1;
}

static int
nk_letters3(const char *s, size_t n, size_t at)
{
    if (at + 3 > n) {
        return 0;
    }
    for (size_t i = at; i < at + 3; i++) {
        if (s[i] < 'a' || s[i] > 'z') {
            return 0;
        }
    }
    return 1;
}

/* Where names._ABD_PREFIX (^abd(?:e|u|ou|a|o)?l?(?=[a-z]{3})) ends in s, or 0: no match.
 * The regex's order of trial: each alternative, then none; with the l, then without. */
static size_t
nk_abd_end(const char *s, size_t n)
{
    static const char *const alternatives[] = {"e", "u", "ou", "a", "o", ""};
    if (n < 3 || memcmp(s, "abd", 3) != 0) {
        return 0;
    }
    for (size_t a = 0; a < sizeof alternatives / sizeof *alternatives; a++) {
        size_t al = strlen(alternatives[a]);
        if (3 + al > n || memcmp(s + 3, alternatives[a], al) != 0) {
            continue;
        }
        size_t p = 3 + al;
        if (p < n && s[p] == 'l' && nk_letters3(s, n, p + 1)) {
            return p + 1;
        }
        if (nk_letters3(s, n, p)) {
            return p;
        }
    }
    return 0;
}

/* names._key of s (n characters of [0-9a-z]) into out; 0 when it would not fit. */
static int
nk_key(const char *s, size_t n, char *out, size_t *outn)
{
    static const char *const alone[] = {"abd", "abdel", "abdul", "abdoul", "abdal", "abdou"};
    static const char *const digraphs[][2] = {
        {"chr", "kr"}, {"tch", "s"}, {"tsh", "s"}, {"sch", "s"}, {"sh", "s"}, {"ch", "s"},
        {"kh", "k"},   {"gh", "g"},  {"ph", "f"},  {"th", "t"},  {"dh", "d"}, {"dj", "j"},
        {"ck", "k"},   {"ou", "u"},  {"oo", "u"},  {"q", "k"},   {"c", "k"},  {"x", "ks"},
        {"y", "i"},    {"o", "u"},
    };
    char a[NK_CAP], b[NK_CAP];
    if (n >= NK_CAP) {
        return 0;
    }
    memcpy(a, s, n);
    a[n] = '\0';
    n = nk_collapse(a, n);
    int is_alone = 0;
    for (size_t i = 0; i < sizeof alone / sizeof *alone; i++) {
        is_alone |= strcmp(a, alone[i]) == 0;
    }
    if (!is_alone) {
        size_t end = nk_abd_end(a, n);
        if (end > 0) {
            memmove(a + 3, a + end, n - end + 1);
            n -= end - 3;
        }
    }
    char *from = a, *to = b;
    for (size_t i = 0; i < sizeof digraphs / sizeof *digraphs; i++) {
        if (!nk_replace(from, n, digraphs[i][0], digraphs[i][1], to, &n)) {
            return 0;
        }
        char *swap = from;
        from = to;
        to = swap;
    }
    n = nk_collapse(from, n);
    if (n > 3 && from[n - 1] == 'e' && strchr("aeiu", from[n - 2]) == NULL) {
        from[--n] = '\0';
    }
    memcpy(out, from, n + 1);
    *outn = n;
    return 1;
}

/* names._skeleton of key (n characters) into out. */
static size_t
nk_skeleton(const char *key, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = key[i] == 'p' ? 'b' : key[i] == 'v' ? 'f' : key[i];
        if (strchr("aeiouyw", c) == NULL) {
            out[o++] = c;
        }
    }
    if (o > 1 && out[o - 1] == 'h') {
        o--;
    }
    out[o] = '\0';
    return nk_collapse(out, o);
}

typedef struct {
    char key[NK_CAP];
    size_t key_n;
    char skeleton[NK_CAP];
    size_t skeleton_n;
    int latin;
    int spaced; /* its text holds a space: a merged "abd" token, or two read as one */
} NkToken;

static char nk_keys[NK_KEYS][NK_CAP + 4];
static const char *nk_order[NK_KEYS];

static int
nk_compare(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* names.token_index_keys(token), sorted and without repeats, appended to rows as
 * (key, alert, number, token_no) tuples; -1 on a Python error. */
static int
nk_rows_of(const NkToken *t, PyObject *alert, PyObject *number, long token_no, PyObject *rows)
{
    char starred[NK_CAP + 1];
    size_t count = 0, n = t->key_n;
    if (n + 1 >= NK_CAP) {
        return 0; /* not reached: the callers keep keys shorter */
    }
    if (strchr("aeiu", t->key[0]) != NULL) {
        starred[0] = '*';
        memcpy(starred + 1, t->key + 1, n);
    } else {
        memcpy(starred, t->key, n + 1);
    }
    snprintf(nk_keys[count++], NK_CAP + 4, "%s:%s", t->latin ? "s" : "a", t->skeleton);
    snprintf(nk_keys[count++], NK_CAP + 4, "e:%s", starred);
    int joined = t->spaced && !(n >= 3 && memcmp(t->key, "abd", 3) == 0);
    if (!joined && n >= 5) {
        for (size_t i = 1; i < n; i++) {
            char *k = nk_keys[count++];
            k[0] = 'e';
            k[1] = ':';
            k[2] = starred[0];
            memcpy(k + 3, starred + 1, i - 1);
            memcpy(k + 3 + (i - 1), starred + i + 1, n - i);
        }
    }
    for (size_t i = 0; i < count; i++) {
        nk_order[i] = nk_keys[i];
    }
    qsort(nk_order, count, sizeof *nk_order, nk_compare);
    PyObject *token = PyLong_FromLong(token_no);
    if (token == NULL) {
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        if (i > 0 && strcmp(nk_order[i], nk_order[i - 1]) == 0) {
            continue;
        }
        PyObject *key = PyUnicode_FromString(nk_order[i]);
        PyObject *row = key == NULL ? NULL : PyTuple_Pack(4, key, alert, number, token);
        Py_XDECREF(key);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(token);
            return -1;
        }
        Py_DECREF(row);
    }
    Py_DECREF(token);
    return 0;
}

/* Reads token (a names.Token) into t; 0 when it is not the plain case, -1 on an error. */
static int
nk_read(PyObject *token, NkToken *t)
{
    PyObject *key = PyObject_GetAttr(token, nk_key_attr);
    PyObject *skeleton = key == NULL ? NULL : PyObject_GetAttr(token, nk_skeleton_attr);
    PyObject *latin = skeleton == NULL ? NULL : PyObject_GetAttr(token, nk_latin_attr);
    PyObject *text = latin == NULL ? NULL : PyObject_GetAttr(token, nk_text_attr);
    int result = -1;
    if (text == NULL) {
        goto done;
    }
    result = 0;
    if (!PyUnicode_Check(key) || !PyUnicode_Check(skeleton) || !PyUnicode_Check(text) ||
        !PyBool_Check(latin) || !PyUnicode_IS_ASCII(key) || !PyUnicode_IS_ASCII(skeleton)) {
        goto done;
    }
    Py_ssize_t kn = PyUnicode_GET_LENGTH(key), sn = PyUnicode_GET_LENGTH(skeleton);
    const char *k = (const char *)PyUnicode_DATA(key), *sk = (const char *)PyUnicode_DATA(skeleton);
    if (kn == 0 || kn > NK_TOKEN || sn > NK_TOKEN || !nk_plain(k, (size_t)kn) ||
        !nk_plain(sk, (size_t)sn)) {
        goto done;
    }
    memcpy(t->key, k, (size_t)kn + 1);
    t->key_n = (size_t)kn;
    memcpy(t->skeleton, sk, (size_t)sn + 1);
    t->skeleton_n = (size_t)sn;
    t->latin = latin == Py_True;
    Py_ssize_t space = PyUnicode_FindChar(text, ' ', 0, PyUnicode_GET_LENGTH(text), 1);
    if (space == -2) {
        result = -1;
        goto done;
    }
    t->spaced = space >= 0;
    result = 1;
done:
    Py_XDECREF(key);
    Py_XDECREF(skeleton);
    Py_XDECREF(latin);
    Py_XDECREF(text);
    return result;
}

enum { NK_MAX_TOKENS = 16 };

/* name_key_rows(tokens, alert, number): the ``name_keys`` rows name_index.rows makes of a
 * name's tokens (a tuple of names.Token), or None: not the plain case. */
static PyObject *
name_key_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyTuple_CheckExact(args[0]) || !PyLong_CheckExact(args[1]) ||
        !PyLong_CheckExact(args[2])) {
        Py_RETURN_NONE;
    }
    PyObject *tokens = args[0];
    Py_ssize_t count = PyTuple_GET_SIZE(tokens);
    if (count > NK_MAX_TOKENS) {
        Py_RETURN_NONE;
    }
    NkToken read[NK_MAX_TOKENS];
    for (Py_ssize_t i = 0; i < count; i++) {
        int got = nk_read(PyTuple_GET_ITEM(tokens, i), &read[i]);
        if (got < 0) {
            return NULL;
        }
        if (got == 0) {
            Py_RETURN_NONE;
        }
    }
    PyObject *rows = PyList_New(0);
    if (rows == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        if (nk_rows_of(&read[i], args[1], args[2], (long)i, rows) < 0) {
            Py_DECREF(rows);
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i + 1 < count; i++) {
        /* names.join: the two keys as one key, its skeleton; latin when both are */
        NkToken joined;
        char both[NK_CAP];
        size_t n = read[i].key_n + read[i + 1].key_n;
        memcpy(both, read[i].key, read[i].key_n);
        memcpy(both + read[i].key_n, read[i + 1].key, read[i + 1].key_n + 1);
        if (!nk_key(both, n, joined.key, &joined.key_n) || joined.key_n == 0 ||
            joined.key_n + 2 >= NK_CAP) {
            Py_DECREF(rows);
            Py_RETURN_NONE;
        }
        joined.skeleton_n = nk_skeleton(joined.key, joined.key_n, joined.skeleton);
        joined.latin = read[i].latin && read[i + 1].latin;
        joined.spaced = 1;
        if (nk_rows_of(&joined, args[1], args[2], 100 + (long)i, rows) < 0) {
            Py_DECREF(rows);
            return NULL;
        }
    }
    return rows;
}

static PyMethodDef methods[] = {
    {"name_key_rows", (PyCFunction)(void (*)(void))name_key_rows, METH_FASTCALL,
     "name_key_rows(tokens, alert, number) -> list[(key, alert, number, token_no)] | None"},
    {"key_hash", key_hash, METH_O, "key_hash(key) -> int | None: murmur2(key) & 0x7fffffff"},
    {"write_audit", write_audit, METH_O, "write_audit(record) -> bytes | None"},
    {"sections_tail", sections_tail, METH_VARARGS,
     "sections_tail(sections, signature, keep) -> bytes | None"},
    {"configure_audit", configure_audit, METH_VARARGS,
     "configure_audit(record_fields, outcome_fields): set once before read_audit."},
    {"read_audit", (PyCFunction)(void (*)(void))read_audit, METH_FASTCALL,
     "read_audit(data, pos) -> dict | None"},
    {"verify_batch", verify_batch, METH_VARARGS,
     "verify_batch(signed, keys) -> bytes: 1 per verified item, without the GIL"},
    {"configure", configure, METH_VARARGS,
     "configure(header_type, header_fields, section_type, section_fields, envelope_type, "
     "envelope_fields, vocabularies, epoch): set once before use."},
    {"read_envelope", (PyCFunction)(void (*)(void))read_envelope, METH_FASTCALL,
     "read_envelope(data, pos) -> (Envelope, sections_at) | None"},
    {"checked_signing_input", checked_signing_input, METH_O,
     "checked_signing_input(envelope) -> bytes | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "border_exchange._native",
    .m_doc = "Compiled fast path: envelopes and audit records, signing input, signature checks, "
             "name-index keys.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    if (sodium_init() < 0) {
        PyErr_SetString(PyExc_ImportError, "libsodium could not be initialised");
        return NULL;
    }
    nk_key_attr = PyUnicode_InternFromString("key");
    nk_skeleton_attr = PyUnicode_InternFromString("skeleton");
    nk_latin_attr = PyUnicode_InternFromString("latin");
    nk_text_attr = PyUnicode_InternFromString("text");
    if (!nk_key_attr || !nk_skeleton_attr || !nk_latin_attr || !nk_text_attr) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    /* The interface version domain/fastpath.py checks, so that a stale build is not used. */
    if (m != NULL && PyModule_AddIntConstant(m, "INTERFACE", NATIVE_INTERFACE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
