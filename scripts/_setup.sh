# Shared by scripts/run and scripts/test: a virtual environment with the pinned
# dependencies, Debian's Chromium (for the browser tests) and the JS clients' packages.

loopgate_setup_venv() {
  # $1: the requirements file to install (requirements.txt to run,
  # requirements-dev.txt, which includes it, to test).
  local file="${1:-requirements.txt}"
  local py="${PYTHON:-python3.11}"
  command -v "$py" >/dev/null 2>&1 || py=python3
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating the virtual environment (.venv)"
    "$py" -m venv .venv
  fi
  local stamp=".venv/.${file}.sha"
  local want
  want=$(cat requirements.txt "$file" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the pinned dependencies ($file)"
    .venv/bin/python -m pip install --quiet -r "$file"
    echo "$want" > "$stamp"
  fi
}

loopgate_setup_test_tools() {
  # Debian's chromium for the browser tests; redis-server for the tests that
  # flush or kill a Redis of their own (never the shared one); Node.js and npm for
  # the JS clients' journey (clients/js).
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  [ ${#missing[@]} -eq 0 ] && return
  echo "==> installing ${missing[*]} from Debian's packages"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

loopgate_setup_js() {
  # The JS clients' pinned packages (clients/js/package-lock.json): the Node.js journey
  # of the tests and the chat page's bundle. Without Node.js the JS tests fail saying so.
  local dir=clients/js
  if ! command -v npm >/dev/null 2>&1; then
    echo "==> Node.js 20+ and npm are missing: the JS client tests will fail until they are installed" >&2
    return
  fi
  local stamp="$dir/node_modules/.loopgate-lock.sha"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the JS clients' pinned packages (npm ci in $dir)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}
