/*
 * unclog's native fast path for the greenlet switch callback.
 *
 * Python stable ABI only (Py_LIMITED_API 3.9). Compiled on first use by
 * unclog_recorder/_native.py with the system `cc` into a cache directory; when that
 * is impossible the pure-Python tracer (_tracer.make_tracer) is used instead.
 *
 * It defines `TS`, the per-OS-thread recording state (the same attributes as
 * _threads.PyTS, so the Python code uses either), whose instances are callable: a TS is
 * the greenlet tracer of its thread. The common cases (a switch to the hub, a switch
 * to a known greenthread) are encoded here, as make_tracer's closure encodes them;
 * everything else (a new greenthread, a stall, a pending name, a full buffer) calls
 * back into the Python functions handed to configure().
 *
 * Never raises into greenlet: an exception in a slow path is cleared and counted.
 */
#define Py_LIMITED_API 0x03090000
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>

/* Event codes of schema/trace-format.md §4.2, named as in _wire.py (a test checks that
   the two agree). */
#define EV_STRING             0x01
#define EV_FRAME              0x02
#define EV_NATIVE_FRAME       0x03
#define EV_STACK              0x04
#define EV_IMAGE              0x05
#define EV_THREAD             0x06
#define EV_GREENTHREAD_CREATE 0x07
#define EV_GREENTHREAD_EXIT   0x08
#define EV_RUNNING            0x09
#define EV_SWITCH_TO_HUB      0x10
#define EV_SWITCH_TIMER       0x11
#define EV_SWITCH_IO          0x12
#define EV_SWITCH_SPAWN       0x13
#define EV_SWITCH_EXPLICIT    0x14
#define EV_SWITCH_OTHER       0x15
#define EV_IO_WAIT_BEGIN      0x20
#define EV_IO_WAIT_END        0x21
#define EV_STALL_BEGIN        0x30
#define EV_STALL_SAMPLE       0x31
#define EV_STALL_END          0x32
#define EV_DROPPED            0x40
#define EV_END                0x7F

/* not part of the limited API before 3.12 */
#define SETREF(dst, src)                                                                                                         \
    do {                                                                                                                         \
        PyObject *_old = (PyObject *)(dst);                                                                                      \
        (dst) = (src);                                                                                                           \
        Py_XDECREF(_old);                                                                                                        \
    } while (0)

typedef struct {
    PyObject_HEAD long long ident, tid, base, last, seq, n, cur, hub_gid, slice_start, ready;
    long long flushed_at, head, stall_seen, phase_start, thr;
    int reason;
    char waiting;
    PyObject *buf, *hub, *deadlines, *pending_names, *prev;
    /* gevent.sleep deadlines, direct-mapped by greenthread id (a collision forgets
       the older deadline: that wake-up is then reported with the loop phase's reason) */
    long long *dl_gid, *dl_val;
} TS;

#define DL_SLOTS 4096

/* slow paths and shared state, set by configure() */
static PyObject *g_new_gt, *g_stall_end, *g_define_pending, *g_flush, *g_count_error;
static PyObject *g_active; /* the list _state.active */
static PyObject *s_ucg, *s_dead, *s_gr_frame;
static long long g_limit; /* flush a buffer past this many bytes */
static long long g_thr;   /* the stall threshold (ns): a new TS's `thr` */
/* greenlet.greenlet's own `dead` getter, called directly: subclasses (gevent's
   Greenlet) override `dead` with a much slower property */
static PyObject *g_dead_descr;
static descrgetfunc g_dead_get;

static inline long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int put_uv(unsigned char *p, unsigned long long v) {
    int n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* append len bytes to the bytearray buf; -1 on error */
static inline int append(PyObject *buf, const unsigned char *data, Py_ssize_t len) {
    Py_ssize_t old = PyByteArray_Size(buf);
    if (old < 0) return -1;
    if (PyByteArray_Resize(buf, old + len) < 0) return -1;
    memcpy(PyByteArray_AsString(buf) + old, data, (size_t)len);
    return 0;
}

/* In the tracer: appends the event, or counts the error and leaves through `out`. */
#define APPEND_OR_OUT(ev, k)                                                                                                     \
    do {                                                                                                                         \
        if (append(self->buf, (ev), (k)) < 0) {                                                                                  \
            count_error();                                                                                                       \
            goto out;                                                                                                            \
        }                                                                                                                        \
    } while (0)

static void count_error(void) {
    PyErr_Clear();
    if (g_count_error) {
        PyObject *r = PyObject_CallObject(g_count_error, NULL);
        Py_XDECREF(r);
        PyErr_Clear();
    }
}

static int TS_init(TS *self, PyObject *args, PyObject *kw) {
    long long ident = 0, tid = 0;
    if (!PyArg_ParseTuple(args, "LL", &ident, &tid)) return -1;
    long long t = now_ns();
    self->ident = ident;
    self->tid = tid;
    self->base = self->last = self->slice_start = self->ready = t;
    self->flushed_at = self->phase_start = t;
    self->seq = self->n = self->cur = self->hub_gid = self->head = self->stall_seen = 0;
    self->thr = g_thr;
    self->reason = EV_SWITCH_OTHER;
    self->waiting = 0;
    SETREF(self->buf, PyByteArray_FromStringAndSize(NULL, 0));
    Py_INCREF(Py_None);
    SETREF(self->hub, Py_None);
    SETREF(self->deadlines, PyDict_New());
    SETREF(self->pending_names, PySet_New(NULL));
    Py_INCREF(Py_None);
    SETREF(self->prev, Py_None);
    if (!self->dl_gid) {
        /* PyMem_Calloc is not in the limited API before 3.10 */
        self->dl_gid = (long long *)PyMem_Malloc(DL_SLOTS * sizeof(long long));
        self->dl_val = (long long *)PyMem_Malloc(DL_SLOTS * sizeof(long long));
        if (self->dl_gid) memset(self->dl_gid, 0, DL_SLOTS * sizeof(long long));
        if (self->dl_val) memset(self->dl_val, 0, DL_SLOTS * sizeof(long long));
    }
    if (!self->buf || !self->deadlines || !self->pending_names || !self->dl_gid || !self->dl_val) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void TS_dealloc(TS *self) {
    Py_XDECREF(self->buf);
    Py_XDECREF(self->hub);
    Py_XDECREF(self->deadlines);
    Py_XDECREF(self->pending_names);
    Py_XDECREF(self->prev);
    PyMem_Free(self->dl_gid);
    PyMem_Free(self->dl_val);
    PyTypeObject *tp = Py_TYPE(self);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(self);
    Py_DECREF(tp);
}

static PyObject *chain(TS *self, PyObject *args, PyObject *kw) {
    if (self->prev && self->prev != Py_None) return PyObject_Call(self->prev, args, kw);
    Py_RETURN_NONE;
}

/* the greenlet tracer: tracer(event, (origin, target)) */
static PyObject *TS_call(TS *self, PyObject *args, PyObject *kw) {
    if (!g_active || PyList_GetItem(g_active, 0) != Py_True) {
        PyErr_Clear();
        return chain(self, args, kw);
    }
    PyObject *pair = PyTuple_GetItem(args, 1);
    if (!pair) {
        count_error();
        return chain(self, args, kw);
    }
    PyObject *origin = PyTuple_GetItem(pair, 0);
    PyObject *target = PyTuple_GetItem(pair, 1);
    if (!origin || !target) {
        count_error();
        return chain(self, args, kw);
    }
    Py_INCREF(origin);
    Py_INCREF(target);

    long long t = now_ns();
    long long d = t - self->last;
    self->last = t;
    unsigned char ev[48];
    int k;

    if (self->cur && t - self->slice_start > self->thr) {
        PyObject *frame = PyObject_GetAttr(origin, s_gr_frame);
        if (!frame) {
            PyErr_Clear();
            frame = Py_None;
            Py_INCREF(frame);
        }
        PyObject *r = PyObject_CallFunction(g_stall_end, "OOLLO", (PyObject *)self, origin, t, d, frame);
        Py_DECREF(frame);
        if (!r) count_error();
        else Py_DECREF(r);
        d = 0;
    }

    if (target == self->hub) {
        ev[0] = EV_SWITCH_TO_HUB;
        k = 1 + put_uv(ev + 1, (unsigned long long)d);
        APPEND_OR_OUT(ev, k);
        self->cur = self->hub_gid;
    } else {
        long long gid, ready;
        int code;
        PyObject *g = PyObject_GetAttr(target, s_ucg);
        if (g) {
            gid = PyLong_AsLongLong(g);
            Py_DECREF(g);
            if (origin == self->hub) {
                code = self->reason;
                ready = self->ready;
                {
                    int slot = (int)(gid & (DL_SLOTS - 1));
                    if (self->dl_gid[slot] == gid) {
                        long long dv = self->dl_val[slot];
                        if (dv <= t) {
                            code = EV_SWITCH_TIMER;
                            ready = dv;
                        }
                        self->dl_gid[slot] = 0;
                    }
                }
            } else {
                code = EV_SWITCH_EXPLICIT;
                ready = t;
            }
        } else {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                count_error();
                goto out;
            }
            PyErr_Clear();
            PyObject *r = PyObject_CallFunction(g_new_gt, "OOL", (PyObject *)self, target, t);
            if (!r) {
                count_error();
                goto out;
            }
            long long spawned = -1;
            PyObject *o0 = PyTuple_GetItem(r, 0), *o1 = PyTuple_GetItem(r, 1);
            gid = o0 ? PyLong_AsLongLong(o0) : 0;
            if (o1 && o1 != Py_None) spawned = PyLong_AsLongLong(o1);
            Py_DECREF(r);
            if (PyErr_Occurred()) {
                count_error();
                goto out;
            }
            if (target == self->hub) {
                ev[0] = EV_SWITCH_TO_HUB;
                k = 1 + put_uv(ev + 1, (unsigned long long)d);
                APPEND_OR_OUT(ev, k);
                self->cur = gid;
                self->slice_start = t;
                self->n += 1;
                goto out;
            }
            code = EV_SWITCH_SPAWN;
            ready = spawned >= 0 ? spawned : (origin == self->hub ? self->ready : t);
        }
        long long rdt = t - ready;
        if (rdt < 0) rdt = 0;
        ev[0] = (unsigned char)code;
        k = 1;
        k += put_uv(ev + k, (unsigned long long)d);
        k += put_uv(ev + k, (unsigned long long)gid);
        k += put_uv(ev + k, (unsigned long long)rdt);
        APPEND_OR_OUT(ev, k);
        self->cur = gid;
    }
    self->slice_start = t;
    self->n += 1;

    /* the hub waits for no name, and its end (with its thread's loop) is not recorded as an
       exit: half of all switches skip this */
    if (origin != self->hub) {
        PyObject *dead = g_dead_get ? g_dead_get(g_dead_descr, origin, NULL) : PyObject_GetAttr(origin, s_dead);
        if (!dead) {
            PyErr_Clear();
        } else {
            int isdead = dead == Py_True;
            Py_DECREF(dead);
            if (isdead || PySet_Size(self->pending_names) > 0) {
                PyObject *og = PyObject_GetAttr(origin, s_ucg);
                if (!og) {
                    PyErr_Clear();
                } else {
                    if (isdead) {
                        long long ogv = PyLong_AsLongLong(og);
                        ev[0] = EV_GREENTHREAD_EXIT;
                        ev[1] = 0; /* dt 0 */
                        k = 2 + put_uv(ev + 2, (unsigned long long)ogv);
                        if (append(self->buf, ev, k) < 0) count_error();
                        self->n += 1;
                        PySet_Discard(self->pending_names, og);
                    } else if (PySet_Contains(self->pending_names, og) == 1) {
                        PyObject *r = PyObject_CallFunction(g_define_pending, "OOO", (PyObject *)self, origin, og);
                        if (!r) count_error();
                        else Py_DECREF(r);
                    }
                    Py_DECREF(og);
                    PyErr_Clear();
                }
            }
        }
    }
    if (PyByteArray_Size(self->buf) > g_limit) {
        PyObject *r = PyObject_CallFunctionObjArgs(g_flush, (PyObject *)self, NULL);
        if (!r) count_error();
        else Py_DECREF(r);
    }
out:
    Py_DECREF(origin);
    Py_DECREF(target);
    return chain(self, args, kw);
}

/* ts.timer(exp): the next switch from the hub is a timer that fell due at exp
   (hub clock seconds, CLOCK_MONOTONIC) — one cheap call per timer in fire_timers */
static PyObject *TS_timer(TS *self, PyObject *exp) {
    double e = PyFloat_AsDouble(exp);
    if (e == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        self->ready = now_ns();
    } else {
        self->ready = (long long)(e * 1e9);
    }
    self->reason = EV_SWITCH_TIMER;
    Py_RETURN_NONE;
}

static PyMethodDef TS_methods[] = {{"timer", (PyCFunction)TS_timer, METH_O, "timer(exp): a timer due at exp (s) fires"},
                                   {NULL, NULL, 0, NULL}};

#define M(name, type, field)                                                                                                     \
    { name, type, offsetof(TS, field), 0, NULL }
static PyMemberDef TS_members[] = {M("ident", T_LONGLONG, ident),
                                   M("tid", T_LONGLONG, tid),
                                   M("base", T_LONGLONG, base),
                                   M("last", T_LONGLONG, last),
                                   M("seq", T_LONGLONG, seq),
                                   M("n", T_LONGLONG, n),
                                   M("cur", T_LONGLONG, cur),
                                   M("hub_gid", T_LONGLONG, hub_gid),
                                   M("slice_start", T_LONGLONG, slice_start),
                                   M("ready", T_LONGLONG, ready),
                                   M("flushed_at", T_LONGLONG, flushed_at),
                                   M("head", T_LONGLONG, head),
                                   M("stall_seen", T_LONGLONG, stall_seen),
                                   M("phase_start", T_LONGLONG, phase_start),
                                   M("thr", T_LONGLONG, thr),
                                   M("reason", T_INT, reason),
                                   M("waiting", T_BOOL, waiting),
                                   M("buf", T_OBJECT_EX, buf),
                                   M("hub", T_OBJECT, hub),
                                   M("deadlines", T_OBJECT_EX, deadlines),
                                   M("pending_names", T_OBJECT_EX, pending_names),
                                   M("prev", T_OBJECT, prev),
                                   {NULL, 0, 0, 0, NULL}};

static PyType_Slot TS_slots[] = {{Py_tp_init, (void *)TS_init},
                                 {Py_tp_dealloc, (void *)TS_dealloc},
                                 {Py_tp_call, (void *)TS_call},
                                 {Py_tp_members, (void *)TS_members},
                                 {Py_tp_methods, (void *)TS_methods},
                                 {Py_tp_new, (void *)PyType_GenericNew},
                                 {Py_tp_doc, (void *)"Per-thread recording state; calling it is the greenlet tracer."},
                                 {0, NULL}};

static PyType_Spec TS_spec = {"_unclog_fast.TS", sizeof(TS), 0, Py_TPFLAGS_DEFAULT, TS_slots};

/* ---- gevent.sleep deadlines: the caller becomes ready again at now + seconds ---- */

static PyObject *g_ts_type;

/* set_dead_getter(greenlet.greenlet.__dict__["dead"]) */
static PyObject *set_dead_getter(PyObject *mod, PyObject *descr) {
#if PY_VERSION_HEX >= 0x030A0000
    /* PyType_GetSlot accepts static types from 3.10 on */
    descrgetfunc get = (descrgetfunc)PyType_GetSlot(Py_TYPE(descr), Py_tp_descr_get);
    if (get) {
        Py_INCREF(descr);
        SETREF(g_dead_descr, descr);
        g_dead_get = get;
        Py_RETURN_TRUE;
    }
    PyErr_Clear();
#endif
    Py_RETURN_FALSE;
}

/* This OS thread's TS (a strong reference, set by register_ts): note_deadline runs on
   every gevent.sleep, and a thread-local read is far cheaper than the thread-state
   dict lookup it replaced (docs/benchmarks.md). */
static __thread TS *tls_ts;

/* note_deadline(seconds): the running greenthread sleeps; ready again at now+seconds.
   Called first thing in gevent.sleep (compiled into its code by _hooks, else from a
   Python wrapper). Never raises. */
static PyObject *py_note_deadline(PyObject *mod, PyObject *seconds) {
    TS *t = tls_ts;
    if (!t || !t->cur || !g_active || PyList_GetItem(g_active, 0) != Py_True) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    long long add = 0;
    if (PyLong_CheckExact(seconds)) {
        /* sleep(0), the hot case: no float conversion */
        long long v = PyLong_AsLongLong(seconds);
        if (v == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        add = v > 0 ? (v > 1000000000LL ? 1000000000LL * 1000000000LL : v * 1000000000LL) : 0;
    } else {
        double secs = PyFloat_AsDouble(seconds);
        if (secs == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        if (!(secs > 0)) secs = 0; /* also NaN */
        if (secs > 1e9) secs = 1e9;
        add = (long long)(secs * 1e9);
    }
    int slot = (int)(t->cur & (DL_SLOTS - 1));
    t->dl_gid[slot] = t->cur;
    t->dl_val[slot] = now_ns() + add;
    Py_RETURN_NONE;
}

/* make ts the current OS thread's state (note_deadline finds it there) */
static PyObject *register_ts(PyObject *mod, PyObject *ts) {
    if (!g_ts_type || !PyObject_TypeCheck(ts, (PyTypeObject *)g_ts_type)) {
        PyErr_SetString(PyExc_TypeError, "register_ts() takes a TS");
        return NULL;
    }
    if (tls_ts != (TS *)ts) {
        Py_INCREF(ts);
        SETREF(tls_ts, (TS *)ts);
    }
    Py_RETURN_NONE;
}

static PyObject *configure(PyObject *mod, PyObject *args) {
    PyObject *a, *b, *c, *d, *e, *f;
    long long limit, thr;
    if (!PyArg_ParseTuple(args, "OOOOOOLL", &a, &b, &c, &d, &e, &f, &limit, &thr)) return NULL;
    Py_INCREF(a);
    SETREF(g_new_gt, a);
    Py_INCREF(b);
    SETREF(g_stall_end, b);
    Py_INCREF(c);
    SETREF(g_define_pending, c);
    Py_INCREF(d);
    SETREF(g_flush, d);
    Py_INCREF(e);
    SETREF(g_count_error, e);
    Py_INCREF(f);
    SETREF(g_active, f);
    g_limit = limit;
    g_thr = thr;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS,
     "configure(new_gt, stall_end, define_pending, flush, count_error, active, limit, threshold)"},
    {"note_deadline", py_note_deadline, METH_O, "note_deadline(seconds)"},
    {"set_dead_getter", set_dead_getter, METH_O, "use greenlet's own `dead` getter"},
    {"register_ts", register_ts, METH_O, "register_ts(ts): ts is this OS thread's state (for note_deadline)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_unclog_fast", "unclog's native switch tracer", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__unclog_fast(void) {
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    s_ucg = PyUnicode_InternFromString("_ucg");
    s_dead = PyUnicode_InternFromString("dead");
    s_gr_frame = PyUnicode_InternFromString("gr_frame");

    PyObject *tp = PyType_FromSpec(&TS_spec);
    if (!tp) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(tp);
    SETREF(g_ts_type, tp);
    if (PyModule_AddObject(m, "TS", tp) < 0) {
        Py_DECREF(tp);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
