/*
 * sansws._speedups: optional C accelerator for masking, building frames and
 * decoding text.
 *
 * apply_mask(data, mask) -> bytes XORs data with the 4-byte mask repeated,
 * exactly like sansws.frames.apply_mask_python, which is always available
 * and is tested against this function.
 *
 * build_frame(first, payload, mask) -> bytes writes a whole frame (header,
 * masking key, masked payload) into one new bytes object, exactly like
 * sansws.frames.build_frame_python. An ASCII str payload is copied straight
 * from the string, so a text message costs one pass over its bytes instead
 * of three (encode, mask or concatenate, join).
 *
 * decode_text(data, mask, final) -> (str, bytes) unmasks a piece of a text
 * message and decodes it from UTF-8, exactly like
 * sansws.frames.decode_text_python. ASCII, the common case, is checked, then
 * unmasked straight into the new string, which is several times faster than
 * decoding; anything else goes through CPython's own UTF-8 decoder, so that
 * validation is the same everywhere.
 *
 * Masking is the one hot loop in the protocol that pure Python cannot make
 * fast: every byte a client sends, and every byte a server receives, goes
 * through it. The loop works on 16 bytes at a time with SSE2 where the
 * compiler targets it (all x86-64), else on 8-byte words, then finishes the
 * tail byte by byte. The GIL is released for large payloads so that other
 * threads keep running while a big message is unmasked.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define SANSWS_SSE2 1
#endif

/* Below this size, releasing the GIL costs more than it gains. */
#define RELEASE_GIL_THRESHOLD 65536

static void
xor_mask(const unsigned char *in, unsigned char *out, Py_ssize_t len,
         const unsigned char mask[4])
{
    Py_ssize_t i = 0;
    uint32_t mask32;
    uint64_t mask64;

    memcpy(&mask32, mask, 4);
    mask64 = ((uint64_t)mask32 << 32) | mask32;

#ifdef SANSWS_SSE2
    {
        __m128i mask128 = _mm_set1_epi32((int)mask32);
        for (; i + 16 <= len; i += 16) {
            __m128i chunk = _mm_loadu_si128((const __m128i *)(in + i));
            _mm_storeu_si128((__m128i *)(out + i), _mm_xor_si128(chunk, mask128));
        }
    }
#endif
    for (; i + 8 <= len; i += 8) {
        uint64_t word;
        memcpy(&word, in + i, 8);
        word ^= mask64;
        memcpy(out + i, &word, 8);
    }
    /* i is a multiple of 8 here, so the mask is aligned with byte 0. */
    for (; i < len; i++) {
        out[i] = in[i] ^ mask[i & 3];
    }
}

static PyObject *
apply_mask(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, mask;
    PyObject *result;
    (void)self;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments (data, mask)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (mask.len != 4) {
        PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
        goto error;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto error;
    }
    if (data.len >= RELEASE_GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        xor_mask(data.buf, (unsigned char *)PyBytes_AS_STRING(result), data.len, mask.buf);
        Py_END_ALLOW_THREADS
    } else {
        xor_mask(data.buf, (unsigned char *)PyBytes_AS_STRING(result), data.len, mask.buf);
    }
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return result;

error:
    PyBuffer_Release(&data);
    PyBuffer_Release(&mask);
    return NULL;
}

/* Write the payload length field (RFC 6455 section 5.2) after the first
 * byte, in its shortest form; returns the header length so far. */
static Py_ssize_t
write_length(unsigned char *out, unsigned char mask_bit, Py_ssize_t len)
{
    int i;
    uint64_t ulen = (uint64_t)len;

    if (len < 126) {
        out[1] = mask_bit | (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        out[1] = mask_bit | 126;
        out[2] = (unsigned char)(ulen >> 8);
        out[3] = (unsigned char)ulen;
        return 4;
    }
    out[1] = mask_bit | 127;
    for (i = 0; i < 8; i++) {
        out[2 + i] = (unsigned char)(ulen >> (56 - 8 * i));
    }
    return 10;
}

static PyObject *
build_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    long first;
    Py_buffer payload = {0}, mask = {0};
    PyObject *encoded = NULL, *result = NULL;
    const unsigned char *src;
    unsigned char *out;
    Py_ssize_t len, header;
    int masked, have_payload = 0, have_mask = 0;
    (void)self;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "build_frame() takes exactly 3 arguments (first, payload, mask)");
        return NULL;
    }
    first = PyLong_AsLong(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (first < 0 || first > 255) {
        PyErr_SetString(PyExc_ValueError, "first must be in range(0, 256)");
        return NULL;
    }
    if (PyUnicode_Check(args[1])) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(args[1]) < 0) {
            return NULL;
        }
#endif
        if (PyUnicode_IS_ASCII(args[1])) {
            /* ASCII is its own UTF-8: copy from the string itself. */
            src = PyUnicode_DATA(args[1]);
            len = PyUnicode_GET_LENGTH(args[1]);
        }
        else {
            encoded = PyUnicode_AsUTF8String(args[1]);
            if (encoded == NULL) {
                return NULL;
            }
            src = (const unsigned char *)PyBytes_AS_STRING(encoded);
            len = PyBytes_GET_SIZE(encoded);
        }
    }
    else {
        if (PyObject_GetBuffer(args[1], &payload, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        have_payload = 1;
        src = payload.buf;
        len = payload.len;
    }
    masked = args[2] != Py_None;
    if (masked) {
        if (PyObject_GetBuffer(args[2], &mask, PyBUF_SIMPLE) < 0) {
            goto done;
        }
        have_mask = 1;
        if (mask.len != 4) {
            PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
            goto done;
        }
    }
    header = len < 126 ? 2 : len < 65536 ? 4 : 10;
    if (masked) {
        header += 4;
    }
    result = PyBytes_FromStringAndSize(NULL, header + len);
    if (result == NULL) {
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    out[0] = (unsigned char)first;
    header = write_length(out, masked ? 0x80 : 0, len);
    if (masked) {
        memcpy(out + header, mask.buf, 4);
        header += 4;
        if (len >= RELEASE_GIL_THRESHOLD) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(src, out + header, len, mask.buf);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(src, out + header, len, mask.buf);
        }
    }
    else if (len >= RELEASE_GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        memcpy(out + header, src, len);
        Py_END_ALLOW_THREADS
    }
    else if (len) {
        memcpy(out + header, src, len);
    }

done:
    if (have_mask) {
        PyBuffer_Release(&mask);
    }
    if (have_payload) {
        PyBuffer_Release(&payload);
    }
    Py_XDECREF(encoded);
    return result;
}

/* Whether data XORed with the mask repeated is all ASCII; reads only, and
 * stops at the first block holding a byte >= 0x80. */
static int
is_ascii_masked(const unsigned char *in, Py_ssize_t len, const unsigned char mask[4])
{
    Py_ssize_t i = 0;
    uint32_t mask32;
    uint64_t mask64, acc = 0;

    memcpy(&mask32, mask, 4);
    mask64 = ((uint64_t)mask32 << 32) | mask32;

#ifdef SANSWS_SSE2
    {
        __m128i mask128 = _mm_set1_epi32((int)mask32);
        for (; i + 64 <= len; i += 64) {
            __m128i a = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(in + i)), mask128);
            __m128i b = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(in + i + 16)), mask128);
            __m128i c = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(in + i + 32)), mask128);
            __m128i d = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(in + i + 48)), mask128);
            if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)))) {
                return 0;
            }
        }
    }
#endif
    for (; i + 8 <= len; i += 8) {
        uint64_t word;
        memcpy(&word, in + i, 8);
        acc |= word ^ mask64;
    }
    /* i is a multiple of 8 here, so the mask is aligned with byte 0. */
    for (; i < len; i++) {
        acc |= (uint64_t)(in[i] ^ mask[i & 3]);
    }
    return (acc & UINT64_C(0x8080808080808080)) == 0;
}

static PyObject *
decode_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    static const unsigned char no_mask[4] = {0, 0, 0, 0};
    Py_buffer data, mask;
    const unsigned char *key = no_mask;
    const char *src;
    PyObject *text = NULL, *tail = NULL, *unmasked = NULL, *result = NULL;
    Py_ssize_t consumed;
    int final, ascii, have_mask = 0;
    (void)self;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "decode_text() takes exactly 3 arguments (data, mask, final)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (args[1] != Py_None) {
        if (PyObject_GetBuffer(args[1], &mask, PyBUF_SIMPLE) < 0) {
            goto done;
        }
        have_mask = 1;
        if (mask.len != 4) {
            PyErr_SetString(PyExc_ValueError, "mask must contain 4 bytes");
            goto done;
        }
        key = mask.buf;
    }
    final = PyObject_IsTrue(args[2]);
    if (final < 0) {
        goto done;
    }

    /* ASCII: unmask straight into a new 1-byte-per-character string. It is
     * checked first, so that other text does not allocate a string in vain
     * (a large allocation freed at once can make the C library give memory
     * back to the system, and fault it in again for the next one). */
    if (data.len >= RELEASE_GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        ascii = is_ascii_masked(data.buf, data.len, key);
        Py_END_ALLOW_THREADS
    }
    else {
        ascii = is_ascii_masked(data.buf, data.len, key);
    }
    if (ascii) {
        text = PyUnicode_New(data.len, 127);
        if (text == NULL) {
            goto done;
        }
        if (data.len >= RELEASE_GIL_THRESHOLD) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(data.buf, PyUnicode_1BYTE_DATA(text), data.len, key);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(data.buf, PyUnicode_1BYTE_DATA(text), data.len, key);
        }
        tail = PyBytes_FromStringAndSize(NULL, 0);
        goto pack;
    }

    /* Anything else: unmask, then CPython's UTF-8 decoder, which stops
     * before a character cut at the end unless this is the final piece. */
    src = data.buf;
    if (have_mask) {
        unmasked = PyBytes_FromStringAndSize(NULL, data.len);
        if (unmasked == NULL) {
            goto done;
        }
        if (data.len >= RELEASE_GIL_THRESHOLD) {
            Py_BEGIN_ALLOW_THREADS
            xor_mask(data.buf, (unsigned char *)PyBytes_AS_STRING(unmasked), data.len, key);
            Py_END_ALLOW_THREADS
        }
        else {
            xor_mask(data.buf, (unsigned char *)PyBytes_AS_STRING(unmasked), data.len, key);
        }
        src = PyBytes_AS_STRING(unmasked);
    }
    consumed = data.len;
    text = PyUnicode_DecodeUTF8Stateful(src, data.len, "strict", final ? NULL : &consumed);
    if (text == NULL) {
        goto done;
    }
    /* CPython's decoder holds back an encoded UTF-16 surrogate (ED A0-BF)
     * until its third byte arrives, although no continuation can make it
     * valid: refuse it now, not one byte late. */
    if (data.len - consumed >= 2 && (unsigned char)src[consumed] == 0xED &&
        (unsigned char)src[consumed + 1] >= 0xA0) {
        PyObject *exc = PyUnicodeDecodeError_Create("utf-8", src, data.len, consumed,
                                                    consumed + 1, "invalid continuation byte");
        if (exc != NULL) {
            PyErr_SetObject(PyExc_UnicodeDecodeError, exc);
            Py_DECREF(exc);
        }
        goto done;
    }
    tail = PyBytes_FromStringAndSize(src + consumed, data.len - consumed);

pack:
    if (tail != NULL) {
        result = PyTuple_Pack(2, text, tail);
    }

done:
    Py_XDECREF(text);
    Py_XDECREF(tail);
    Py_XDECREF(unmasked);
    if (have_mask) {
        PyBuffer_Release(&mask);
    }
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask) -> bytes\n\n"
     "XOR data with the 4-byte mask repeated (RFC 6455 section 5.3)."},
    {"build_frame", (PyCFunction)(void (*)(void))build_frame, METH_FASTCALL,
     "build_frame(first, payload, mask) -> bytes\n\n"
     "A whole frame: the first header byte, the payload length, the masking\n"
     "key if mask is not None, and the payload (UTF-8 if a str), masked."},
    {"decode_text", (PyCFunction)(void (*)(void))decode_text, METH_FASTCALL,
     "decode_text(data, mask, final) -> (str, bytes)\n\n"
     "Unmask data (unless mask is None) and decode it from UTF-8: the text,\n"
     "and the start of a character cut at the end (empty if final)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "sansws._speedups",
    "Optional C accelerator for sansws: masking, building frames, decoding text.",
    0,
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
