"""The one compiled part: the calibrated angle filter's per-sample recurrence
(hipsense/signal/_anglefilter.c). Optional: where no C compiler or Python headers are, the
install goes on without it and hipsense.signal.angles runs its pure-Python filter (the
reference; bit-identical). Everything else is in pyproject.toml.

-ffp-contract=off: no fused multiply-add (GCC contracts a*b + c on ARM by default, which
changes the last bit against CPython's arithmetic); -fno-fast-math in case CFLAGS asks for it.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hipsense.signal._anglefilter",
            sources=["hipsense/signal/_anglefilter.c"],
            extra_compile_args=["-ffp-contract=off", "-fno-fast-math"],
            optional=True,
        )
    ]
)
