"""Builds the optional C kernel ``mlpx._kernels``; everything else is in pyproject.toml.

Without a C compiler the build of the kernel is skipped (``optional=True``) and mlpx runs
its NumPy kernels instead: the same numbers, slower on large networks.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# No fused multiply-add contraction: the kernel must round every operation as NumPy does.
FLAGS = {"msvc": ["/O2", "/fp:precise"]}
GCC_LIKE = ["-O3", "-ffp-contract=off", "-fno-math-errno"]


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        flags = FLAGS.get(self.compiler.compiler_type, GCC_LIKE)
        for extension in self.extensions:
            extension.extra_compile_args = flags
        super().build_extensions()


setup(
    ext_modules=[Extension("mlpx._kernels", ["mlpx/_kernels.c"], optional=True)],
    cmdclass={"build_ext": BuildExt},
)
