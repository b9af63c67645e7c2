# Shared by scripts/run and scripts/test: a virtual environment with the pinned
# dependencies, and (for the browser tests) Debian's Chromium.

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
  # flush or kill a Redis of their own (never the shared one).
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return
  echo "==> installing ${missing[*]} from Debian's packages"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}
