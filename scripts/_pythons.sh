# Sourced by test.sh: the Python matrix. The package declares the Pythons it supports as trove classifiers
# ("Programming Language :: Python :: 3.X", read back from the built wheel); the oldest and the newest of them get a
# fresh venv each with the wheel, found the way a CI matrix finds them, and run the in-process unit tests there.

# The oldest and the newest declared Python, "X.Y X.Y", from the installed wheel's metadata.
declared_pythons() {
    "$VENV/bin/python" - <<'EOF'
import importlib.metadata as metadata
import re

found = sorted(
    tuple(int(n) for n in m[1].split("."))
    for c in metadata.metadata("ultralytics-triplet").get_all("Classifier") or []
    if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))
)
print(" ".join(".".join(map(str, v)) for v in (found[0], found[-1])) if found else "")
EOF
}

# An interpreter for Python X.Y that runs: on PATH (python3.X), else the newest patch release under pyenv's versions
# folder (where setup-python-like tool caches and pyenv put them), else /usr/bin or /usr/local/bin. Nothing if none.
find_python() {
    local want=$1 root candidate
    root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
    for candidate in "$(command -v "python$want" 2>/dev/null)" \
            $(ls -d "$root/versions/$want".*/bin/"python$want" 2>/dev/null | sort -V -r) \
            "/usr/local/bin/python$want" "/usr/bin/python$want"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys' >/dev/null 2>&1; then
            echo "$candidate"
            return
        fi
    done
}

# Build DIR/venv with INTERPRETER and install the wheel and the unit tests' needs. With NEWEST_TORCH=1 pip's
# configured constraints are set aside for this venv (PIP_CONSTRAINT=/dev/null), so it gets the newest torch release
# the index has for that Python, whatever cap the machine's pip configuration sets.
prepare_python() {
    local interpreter=$1 dir=$2 newest_torch=$3
    "$interpreter" -m venv "$dir/venv"
    if [ "$newest_torch" = 1 ]; then export PIP_CONSTRAINT=/dev/null; fi
    # pytest runs the tests; onnx and onnxruntime let the unit tests that read exported graphs run too.
    "$dir/venv/bin/python" -m pip install -q --disable-pip-version-check "$WHEEL" "pytest>=7" onnx onnxruntime
}

# The versions a venv's interpreter runs with: "Python 3.9.18, torch 2.8.0+cu128, ultralytics 8.4.190".
versions() {
    "$1" -c 'import platform, torch, ultralytics
print(f"Python {platform.python_version()}, torch {torch.__version__}, ultralytics {ultralytics.__version__}")' | tail -n 1
}
