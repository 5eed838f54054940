"""Builds the actcap Python module (python/) with CMake, from the same engine library as the CLI.

Offline, with Debian's setuptools and no PyPI (Debian marks its Python externally managed, hence the venv):
    python3 -m venv --system-site-packages .venv
    .venv/bin/pip install --no-build-isolation .
ACTCAP_BUILD_DIR is the CMake build folder it uses: by default build/pip, configured for the module alone (no
tests, benchmarks or CUDA plugin); an existing build folder (ACTCAP_BUILD_DIR=build) keeps its own options and
only builds the module. ACTCAP_JOBS: parallel jobs (default 2). The installed module runs on CPU; for
device="cuda" use the build tree's module (PYTHONPATH=build/python), which finds the CUDA plugin built next to it.
"""
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    """Configures the project with ACTCAP_PYTHON=ON for this interpreter and builds only the module."""

    def build_extension(self, ext):
        build_dir = os.environ.get("ACTCAP_BUILD_DIR", os.path.join(ROOT, "build", "pip"))
        configure = ["cmake", "-S", ROOT, "-B", build_dir, "-DACTCAP_PYTHON=ON",
                     f"-DPython3_EXECUTABLE={sys.executable}"]
        if not os.path.exists(os.path.join(build_dir, "CMakeCache.txt")):
            configure += ["-DCMAKE_BUILD_TYPE=Release", "-DACTCAP_CUDA=OFF", "-DACTCAP_TESTS=OFF", "-DACTCAP_BENCH=OFF"]
            if shutil.which("ccache"):
                configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=ccache")
        subprocess.check_call(configure)
        jobs = os.environ.get("ACTCAP_JOBS", "2")
        subprocess.check_call(["cmake", "--build", build_dir, "--target", "_actcap", "-j", jobs])
        built = os.path.join(build_dir, "python", "actcap", os.path.basename(self.get_ext_filename(ext.name)))
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built, target)


setup(ext_modules=[Extension("actcap._actcap", sources=[])], cmdclass={"build_ext": CMakeBuild})
