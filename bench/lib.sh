# Shared by the bench/ scripts (sourced, not run).

# Builds the release binary and sets BIN. The web app in it is the normal
# build, unless CONCLAVE_ALLOW_TEST_HOOKS=1 keeps the browser tests' build.
# ensure_debian COMMAND PACKAGE...: installs the packages from Debian's
# archive when COMMAND is missing (a fresh machine has no Chromium).
ensure_debian() {
  local command=$1 sudo
  shift
  command -v "$command" > /dev/null && return
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get install -y -q "$@" > /dev/null || { $sudo apt-get update -q && $sudo apt-get install -y -q "$@" > /dev/null; }
}

build_release() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/conclave-target}"
  if [ -e web/dist/TEST-HOOKS ] && [ "${CONCLAVE_ALLOW_TEST_HOOKS:-}" != 1 ]; then
    (cd web && npm run --silent build > /dev/null)
  fi
  cargo build --release --quiet -p conclave
  BIN="$CARGO_TARGET_DIR/release/conclave"
}

# Replaces (or appends) the section `<!-- NAME:start --> … <!-- NAME:end -->`
# of docs/benchmarks.md with the text given, which carries those markers.
write_section() {
  python3 - "$1" "$2" <<'PY'
import re, sys, pathlib
name, section = sys.argv[1], sys.argv[2]
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text() if path.exists() else "# Benchmarks\n"
pattern = re.compile(r"<!-- %s:start -->.*?<!-- %s:end -->" % (name, name), re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
path.write_text(text)
PY
  echo "written to docs/benchmarks.md"
}
