# Sourced by scripts/run and scripts/test: installs what a fresh machine lacks.
# - libclang: the pg_query crate compiles the real PostgreSQL parser with bindgen.
# Uses apt-get (Debian/Ubuntu); elsewhere it says what to install.

have_libclang() {
  # libclang-cpp (shipped with other LLVM packages) is not the C library bindgen loads.
  ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9.]+)?\.so' && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' >/dev/null 2>&1 && return 0
  return 1
}

if ! have_libclang; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "installing libclang-dev (needed to build the PostgreSQL parser)..." >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
  else
    echo "libclang is missing: install your distribution's libclang development package" >&2
    exit 1
  fi
fi

# Keep build output outside the checkout so that clean clones reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coldquery-target}"
