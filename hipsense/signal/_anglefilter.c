/* The calibrated angle filter's per-sample recurrence (hipsense.signal.angles._thigh_filter),
 * compiled. Optional: without it the pure-Python filter runs, and that one is the reference.
 *
 * The same operations in the same order as the Python code, on doubles, so the result is bit
 * for bit the Python one (tests/signal/test_compiled_angle_filter.py):
 *
 *  - built with -ffp-contract=off (setup.py): no fused multiply-add, which ARM compilers use by
 *    default and which changes the last bit;
 *  - Python's `x ** 2` is libm's pow(|x|, 2.0) (float_pow), not x * x: called through a
 *    volatile pointer so the compiler cannot fold it into a multiplication; sin, cos and acos
 *    likewise (no sincos merging), math.atan2 is CPython's m_atan2 (its special cases, then
 *    libm's atan2); sqrt is correctly rounded everywhere;
 *  - Python's min(1.0, x) and max(-1.0, x) keep their first argument unless the second
 *    compares smaller (larger): NaN gives the constant, as in Python.
 *
 * Where Python would raise (a division by zero, `** 2` overflowing, sin or cos of an infinity)
 * the kernel does not try to raise the same error: it returns None, and the caller runs the
 * chunk again in Python, which raises it. The step is pure (a new state, the caller's
 * untouched), so running it again is safe.
 *
 * filter(consts, up_ref, one_g, q, t_last, w_prev, still_s, since_rezero_s, bias, t, acc, gyr,
 *        q_out, speed_out, since_out)
 *   consts     tuple of 21 floats (ThighAngleSettings._compiled_constants: the mounting's rows,
 *              then the filter settings as _thigh_filter's locals)
 *   up_ref (3 floats), one_g, q (w, x, y, z), t_last (float or None), w_prev (3 floats or None),
 *   still_s, since_rezero_s: a ThighAngleState's _Orientation; bias (3 floats): its bias
 *   t          float64 buffer (n,); acc float64 (n, 3); gyr float64 (n, 3) or None
 *   q_out      writable float64 (n, 4); speed_out, since_out writable float64 (n,) or None
 * returns (q, t_last, w_prev, still_s, since_rezero_s, bias), each the object given when the
 * chunk never assigned it (an int stays an int, as in Python), or None: run it in Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <math.h>

static double (*volatile c_pow)(double, double) = pow;
static double (*volatile c_sin)(double) = sin;
static double (*volatile c_cos)(double) = cos;
static double (*volatile c_acos)(double) = acos;
static double (*volatile c_atan2)(double, double) = atan2;

#define N_CONSTS 21

/* Python's float ** 2 (Objects/floatobject.c: float_pow with an even integral exponent).
 * Sets *bad where Python raises (OverflowError). */
static double py_sq(double x, int *bad)
{
    if (isnan(x))
        return x;
    if (isinf(x))
        return fabs(x);
    if (x == 0.0)
        return 0.0;
    errno = 0;
    double r = c_pow(fabs(x), 2.0);
    if (errno == 0) {
        if (r == HUGE_VAL || r == -HUGE_VAL)
            errno = ERANGE;
    }
    else if (errno == ERANGE && r == 0.0)
        errno = 0;
    if (errno != 0 || isinf(r))
        *bad = 1;
    return r;
}

/* math.sqrt / math.sin / math.cos (Modules/mathmodule.c: math_1): a NaN from a non-NaN or an
 * infinity from a finite argument raises. */
static double py_sqrt(double x, int *bad)
{
    double r = sqrt(x);
    if ((isnan(r) && !isnan(x)) || (isinf(r) && isfinite(x)))
        *bad = 1;
    return r;
}

static double py_sin(double x, int *bad)
{
    double r = c_sin(x);
    if ((isnan(r) && !isnan(x)) || (isinf(r) && isfinite(x)))
        *bad = 1;
    return r;
}

static double py_cos(double x, int *bad)
{
    double r = c_cos(x);
    if ((isnan(r) && !isnan(x)) || (isinf(r) && isfinite(x)))
        *bad = 1;
    return r;
}

static double py_acos(double x, int *bad)
{
    double r = c_acos(x);
    if ((isnan(r) && !isnan(x)) || (isinf(r) && isfinite(x)))
        *bad = 1;
    return r;
}

/* math.atan2: CPython's m_atan2, then math_2's checks. */
static double py_atan2(double y, double x, int *bad)
{
    double r;
    if (isnan(x) || isnan(y))
        return Py_NAN;
    if (isinf(y)) {
        if (isinf(x)) {
            if (copysign(1., x) == 1.)
                r = copysign(0.25 * Py_MATH_PI, y);
            else
                r = copysign(0.75 * Py_MATH_PI, y);
        }
        else
            r = copysign(0.5 * Py_MATH_PI, y);
        return r;
    }
    if (isinf(x) || y == 0.) {
        if (copysign(1., x) == 1.)
            return copysign(0., y);
        return copysign(Py_MATH_PI, y);
    }
    r = c_atan2(y, x);
    if (isnan(r) || isinf(r))
        *bad = 1;
    return r;
}

/* a / b, where Python raises ZeroDivisionError for b == 0 */
static inline double py_div(double a, double b, int *bad)
{
    if (b == 0.0) {
        *bad = 1;
        return 0.0;
    }
    return a / b;
}

/* Python's min(c, x) and max(c, x) for a constant first argument */
static inline double py_min(double c, double x) { return x < c ? x : c; }
static inline double py_max(double c, double x) { return x > c ? x : c; }

/* angles._q_from_to(a, b) */
static void q_from_to(double ax, double ay, double az, double bx, double by, double bz,
                      double *q, int *bad)
{
    double dot = ax * bx + ay * by + az * bz;
    if (dot < -0.999999) {
        double px, py, pz;
        if (fabs(ax) < 0.9) {
            px = 0.0; py = -az; pz = ay;
        }
        else {
            px = -ay; py = ax; pz = 0.0;
        }
        double n = py_sqrt(px * px + py * py + pz * pz, bad);
        q[0] = 0.0;
        q[1] = py_div(px, n, bad);
        q[2] = py_div(py, n, bad);
        q[3] = py_div(pz, n, bad);
        return;
    }
    double cx = ay * bz - az * by, cy = az * bx - ax * bz, cz = ax * by - ay * bx;
    /* _qnorm((1.0 + dot, cx, cy, cz)) */
    double w = 1.0 + dot;
    double n = py_sqrt(w * w + cx * cx + cy * cy + cz * cz, bad);
    q[0] = py_div(w, n, bad);
    q[1] = py_div(cx, n, bad);
    q[2] = py_div(cy, n, bad);
    q[3] = py_div(cz, n, bad);
}

typedef struct {
    Py_buffer view;
    int held;
} buf_t;

static int get_buffer(PyObject *obj, buf_t *b, Py_ssize_t n, int writable, const char *name)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0)
        return -1;
    b->held = 1;
    const char *f = b->view.format;
    if (f && (f[0] == '<' || f[0] == '=' || f[0] == '@'))
        f++;
    if (b->view.itemsize != sizeof(double) || f == NULL || strcmp(f, "d") != 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous float64 buffer", name);
        return -1;
    }
    if (n >= 0 && b->view.len != n * (Py_ssize_t)sizeof(double)) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd values, expected %zd", name,
                     b->view.len / (Py_ssize_t)sizeof(double), n);
        return -1;
    }
    return 0;
}

static void release(buf_t *b)
{
    if (b->held) {
        PyBuffer_Release(&b->view);
        b->held = 0;
    }
}

static int read_doubles(PyObject *seq, double *out, Py_ssize_t n, const char *name)
{
    if (!PyTuple_Check(seq) || PyTuple_GET_SIZE(seq) != n) {
        PyErr_Format(PyExc_TypeError, "%s must be a tuple of %zd floats", name, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(seq, i));
        if (out[i] == -1.0 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

static PyObject *tuple3(double a, double b, double c)
{
    return Py_BuildValue("(ddd)", a, b, c);
}

static PyObject *anglefilter_filter(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 15) {
        PyErr_SetString(PyExc_TypeError, "filter() takes 15 arguments");
        return NULL;
    }
    PyObject *in_q = args[3], *in_t_last = args[4], *in_w_prev = args[5], *in_still = args[6],
             *in_since = args[7], *in_bias = args[8];
    double c[N_CONSTS], up[3], q4[4], bias[3], wp[3] = {0.0, 0.0, 0.0};
    if (read_doubles(args[0], c, N_CONSTS, "consts") < 0 || read_doubles(args[1], up, 3, "up_ref") < 0 ||
        read_doubles(in_q, q4, 4, "q") < 0 || read_doubles(in_bias, bias, 3, "bias") < 0)
        return NULL;
    double one_g = PyFloat_AsDouble(args[2]);
    if (one_g == -1.0 && PyErr_Occurred())
        return NULL;
    int have_t_last = in_t_last != Py_None, have_w_prev = in_w_prev != Py_None;
    double t_last = 0.0;
    if (have_t_last) {
        t_last = PyFloat_AsDouble(in_t_last);
        if (t_last == -1.0 && PyErr_Occurred())
            return NULL;
    }
    if (have_w_prev && read_doubles(in_w_prev, wp, 3, "w_prev") < 0)
        return NULL;
    double still_s = PyFloat_AsDouble(in_still);
    if (still_s == -1.0 && PyErr_Occurred())
        return NULL;
    double since_rezero = PyFloat_AsDouble(in_since);
    if (since_rezero == -1.0 && PyErr_Occurred())
        return NULL;

    PyObject *gyr_obj = args[11], *speed_obj = args[13], *since_obj = args[14];
    int has_gyr = gyr_obj != Py_None;
    buf_t bt = {0}, bacc = {0}, bgyr = {0}, bq = {0}, bsp = {0}, bsi = {0};
    PyObject *result = NULL;
    if (get_buffer(args[9], &bt, -1, 0, "t") < 0)
        goto done;
    Py_ssize_t n = bt.view.len / (Py_ssize_t)sizeof(double);
    if (get_buffer(args[10], &bacc, 3 * n, 0, "acc") < 0 ||
        (has_gyr && get_buffer(gyr_obj, &bgyr, 3 * n, 0, "gyr") < 0) ||
        get_buffer(args[12], &bq, 4 * n, 1, "q_out") < 0 ||
        (speed_obj != Py_None && get_buffer(speed_obj, &bsp, n, 1, "speed_out") < 0) ||
        (since_obj != Py_None && get_buffer(since_obj, &bsi, n, 1, "since_out") < 0))
        goto done;

    const double *ts = bt.view.buf, *acc = bacc.view.buf, *gyr = has_gyr ? bgyr.view.buf : NULL;
    double *q_out = bq.view.buf, *speed_out = bsp.held ? bsp.view.buf : NULL,
           *since_out = bsi.held ? bsi.view.buf : NULL;

    const double m00 = c[0], m01 = c[1], m02 = c[2], m10 = c[3], m11 = c[4], m12 = c[5], m20 = c[6],
                 m21 = c[7], m22 = c[8];
    const double r0 = up[0], r1 = up[1], r2 = up[2];
    const double max_dt = c[9], norm_tol = c[10], still_min = c[11], acc_only_tau = c[12],
                 acc_only_tol = c[13], still_rad = c[14], moving_rad = c[15], k_acc = c[16],
                 cos_rest_tol = c[17], heading_tau = c[18], bias_tau = c[19], bias_limit = c[20];
    double qw = q4[0], qx = q4[1], qy = q4[2], qz = q4[3];
    double b0 = bias[0], b1 = bias[1], b2 = bias[2];
    int q_set = 0, t_set = 0, wp_set = 0, still_set = 0, since_set = 0, bias_set = 0;
    int bad = 0;

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !bad; i++) {
        double t = ts[i];
        double ax = acc[3 * i], ay = acc[3 * i + 1], az = acc[3 * i + 2];
        double a0 = m00 * ax + m01 * ay + m02 * az;
        double a1 = m10 * ax + m11 * ay + m12 * az;
        double a2 = m20 * ax + m21 * ay + m22 * az;
        double g0 = 0.0, g1 = 0.0, g2 = 0.0, w0 = 0.0, w1 = 0.0, w2 = 0.0, sp;
        if (has_gyr) {
            g0 = gyr[3 * i]; g1 = gyr[3 * i + 1]; g2 = gyr[3 * i + 2];
            double gx = g0 - b0, gy = g1 - b1, gz = g2 - b2;
            w0 = m00 * gx + m01 * gy + m02 * gz;
            w1 = m10 * gx + m11 * gy + m12 * gz;
            w2 = m20 * gx + m21 * gy + m22 * gz;
        }
        /* -- _orientation_update -- */
        double an = py_sqrt(py_sq(a0, &bad) + py_sq(a1, &bad) + py_sq(a2, &bad), &bad);
        if (an > 1e-6) {
            a0 = a0 / an; a1 = a1 / an; a2 = a2 / an;
        }
        else {
            a0 = r0; a1 = r1; a2 = r2;
        }
        int had_t_prev = have_t_last;
        double dt = have_t_last ? t - t_last : -1.0;
        t_last = t;
        have_t_last = 1;
        t_set = 1;
        q_set = 1;
        if (dt <= 0.0 || dt > max_dt) {
            double qn[4];
            q_from_to(a0, a1, a2, r0, r1, r2, qn, &bad);
            qw = qn[0]; qx = qn[1]; qy = qn[2]; qz = qn[3];
            still_s = 0.0;
            still_set = 1;
            since_rezero = Py_HUGE_VAL;
            since_set = 1;
            if (has_gyr) {
                wp[0] = w0; wp[1] = w1; wp[2] = w2;
                have_w_prev = 1;
            }
            else
                have_w_prev = 0;
            wp_set = 1;
            sp = 0.0;
        }
        else {
            double nerr = fabs(py_div(an, one_g, &bad) - 1.0);
            int norm_ok = nerr < norm_tol;
            double tx = 2.0 * (qy * r2 - qz * r1);
            double ty = 2.0 * (qz * r0 - qx * r2);
            double tz = 2.0 * (qx * r1 - qy * r0);
            double u0 = r0 - qw * tx + (qy * tz - qz * ty);
            double u1 = r1 - qw * ty + (qz * tx - qx * tz);
            double u2 = r2 - qw * tz + (qx * ty - qy * tx);
            if (!has_gyr) {
                double k = py_min(1.0, py_div(dt, acc_only_tau, &bad));
                if (nerr > acc_only_tol)
                    k *= 0.3;
                double v0 = u0 + k * (a0 - u0), v1 = u1 + k * (a1 - u1), v2 = u2 + k * (a2 - u2);
                double nv = py_sqrt(v0 * v0 + v1 * v1 + v2 * v2, &bad);
                v0 = py_div(v0, nv, &bad); v1 = py_div(v1, nv, &bad); v2 = py_div(v2, nv, &bad);
                sp = py_div(py_acos(py_max(-1.0, py_min(1.0, v0 * u0 + v1 * u1 + v2 * u2)), &bad), dt, &bad);
                double qn[4];
                q_from_to(v0, v1, v2, r0, r1, r2, qn, &bad);
                qw = qn[0]; qx = qn[1]; qy = qn[2]; qz = qn[3];
                since_rezero = Py_HUGE_VAL;
                since_set = 1;
            }
            else {
                double p0, p1, p2;
                if (!have_w_prev) {
                    p0 = w0; p1 = w1; p2 = w2;
                }
                else {
                    p0 = wp[0]; p1 = wp[1]; p2 = wp[2];
                }
                double wx = 0.5 * (w0 + p0), wy = 0.5 * (w1 + p1), wz = 0.5 * (w2 + p2);
                wp[0] = w0; wp[1] = w1; wp[2] = w2;
                have_w_prev = 1;
                wp_set = 1;
                sp = py_sqrt(py_sq(w0, &bad) + py_sq(w1, &bad) + py_sq(w2, &bad), &bad);
                if (norm_ok && sp < moving_rad) {
                    wx += k_acc * (a1 * u2 - a2 * u1);
                    wy += k_acc * (a2 * u0 - a0 * u2);
                    wz += k_acc * (a0 * u1 - a1 * u0);
                }
                double ew, ex, ey, ez;
                double nw = py_sqrt(wx * wx + wy * wy + wz * wz, &bad);
                if (nw < 1e-12) {
                    ew = 1.0; ex = 0.5 * wx * dt; ey = 0.5 * wy * dt; ez = 0.5 * wz * dt;
                }
                else {
                    double half = 0.5 * nw * dt;
                    double s = py_div(py_sin(half, &bad), nw, &bad);
                    ew = py_cos(half, &bad); ex = wx * s; ey = wy * s; ez = wz * s;
                }
                double cw = qw * ew - qx * ex - qy * ey - qz * ez;
                double cx = qw * ex + qx * ew + qy * ez - qz * ey;
                double cy = qw * ey - qx * ez + qy * ew + qz * ex;
                double cz = qw * ez + qx * ey - qy * ex + qz * ew;
                double nq = py_sqrt(cw * cw + cx * cx + cy * cy + cz * cz, &bad);
                qw = py_div(cw, nq, &bad); qx = py_div(cx, nq, &bad);
                qy = py_div(cy, nq, &bad); qz = py_div(cz, nq, &bad);
                int still = sp < still_rad && norm_ok;
                still_s = still ? still_s + dt : 0.0;
                still_set = 1;
                since_rezero += dt;
                since_set = 1;
                if (still_s >= still_min && a0 * r0 + a1 * r1 + a2 * r2 > cos_rest_tol) {
                    double twist = 2.0 * py_atan2(qx * r0 + qy * r1 + qz * r2, qw, &bad);
                    if (twist > Py_MATH_PI)
                        twist -= 2.0 * Py_MATH_PI;
                    else if (twist < -Py_MATH_PI)
                        twist += 2.0 * Py_MATH_PI;
                    double turn = -twist * py_min(1.0, py_div(dt, heading_tau, &bad));
                    double nr = py_sqrt(r0 * r0 + r1 * r1 + r2 * r2, &bad);
                    if (nr < 1e-12) {
                        ew = 1.0; ex = 0.5 * r0 * turn; ey = 0.5 * r1 * turn; ez = 0.5 * r2 * turn;
                    }
                    else {
                        double half = 0.5 * nr * turn;
                        double s = py_div(py_sin(half, &bad), nr, &bad);
                        ew = py_cos(half, &bad); ex = r0 * s; ey = r1 * s; ez = r2 * s;
                    }
                    cw = ew * qw - ex * qx - ey * qy - ez * qz;
                    cx = ew * qx + ex * qw + ey * qz - ez * qy;
                    cy = ew * qy - ex * qz + ey * qw + ez * qx;
                    cz = ew * qz + ex * qy - ey * qx + ez * qw;
                    nq = py_sqrt(cw * cw + cx * cx + cy * cy + cz * cz, &bad);
                    qw = py_div(cw, nq, &bad); qx = py_div(cx, nq, &bad);
                    qy = py_div(cy, nq, &bad); qz = py_div(cz, nq, &bad);
                    since_rezero = 0.0;
                }
            }
        }
        /* -- _track_bias (sensor frame, on the raw reading) -- */
        if (has_gyr && had_t_prev && !(still_s < still_min || dt <= 0.0 || dt > max_dt)) {
            double k = py_div(dt, bias_tau, &bad);
            b0 = b0 + k * (g0 - b0);
            b1 = b1 + k * (g1 - b1);
            b2 = b2 + k * (g2 - b2);
            bias_set = 1;
            double nb = py_sqrt(py_sq(b0, &bad) + py_sq(b1, &bad) + py_sq(b2, &bad), &bad);
            if (!(nb <= bias_limit)) {
                b0 = py_div(b0 * bias_limit, nb, &bad);
                b1 = py_div(b1 * bias_limit, nb, &bad);
                b2 = py_div(b2 * bias_limit, nb, &bad);
            }
        }
        q_out[4 * i] = qw; q_out[4 * i + 1] = qx; q_out[4 * i + 2] = qy; q_out[4 * i + 3] = qz;
        if (speed_out)
            speed_out[i] = sp;
        if (since_out)
            since_out[i] = since_rezero;
    }
    Py_END_ALLOW_THREADS

    if (bad) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *oq = q_set ? Py_BuildValue("(dddd)", qw, qx, qy, qz) : Py_NewRef(in_q);
    PyObject *ot = t_set ? PyFloat_FromDouble(t_last) : Py_NewRef(in_t_last);
    PyObject *ow = !wp_set ? Py_NewRef(in_w_prev) : have_w_prev ? tuple3(wp[0], wp[1], wp[2]) : Py_NewRef(Py_None);
    PyObject *os = still_set ? PyFloat_FromDouble(still_s) : Py_NewRef(in_still);
    PyObject *oz = since_set ? PyFloat_FromDouble(since_rezero) : Py_NewRef(in_since);
    PyObject *ob = bias_set ? tuple3(b0, b1, b2) : Py_NewRef(in_bias);
    if (oq && ot && ow && os && oz && ob)
        result = PyTuple_Pack(6, oq, ot, ow, os, oz, ob);
    Py_XDECREF(oq); Py_XDECREF(ot); Py_XDECREF(ow); Py_XDECREF(os); Py_XDECREF(oz); Py_XDECREF(ob);
done:
    release(&bt); release(&bacc); release(&bgyr); release(&bq); release(&bsp); release(&bsi);
    return result;
}

static PyMethodDef methods[] = {
    {"filter", (PyCFunction)(void (*)(void))anglefilter_filter, METH_FASTCALL,
     "The calibrated angle filter over one chunk (see the module's source); None: run it in Python."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_anglefilter",
    "The calibrated angle filter's per-sample recurrence, compiled (hipsense.signal.angles).", -1, methods,
};

/* The calling convention's version: hipsense.signal.angles takes this module only if it matches
   (an editable install keeps an old build after a pull; a changed argument list would raise). */
#define ANGLEFILTER_ABI 1

PyMODINIT_FUNC PyInit__anglefilter(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "ABI", ANGLEFILTER_ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
