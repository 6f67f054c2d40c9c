/*
 * sansws._speedups: optional C accelerator for WebSocket masking.
 *
 * apply_mask(data, mask) -> bytes XORs data with the 4-byte mask repeated,
 * exactly like sansws.frames.apply_mask_python, which is always available
 * and is tested against this function.
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

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL,
     "apply_mask(data, mask) -> bytes\n\n"
     "XOR data with the 4-byte mask repeated (RFC 6455 section 5.3)."},
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
    "Optional C accelerator for sansws: WebSocket masking.",
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
