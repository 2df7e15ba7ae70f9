#!/usr/bin/env bash
# Install or upgrade the Storeside agent on a store box (Debian bookworm / Raspberry Pi OS).
#
#   sudo deploy/install.sh                      # from this checkout (PyPI for the dependencies)
#   sudo deploy/install.sh --wheel storeside-0.1.0-py3-none-any.whl --wheels ./wheelhouse
#
# What it makes, and what a second run (an upgrade) does to it:
#   user storeside (system, no login, no home), in dialout/lp/plugdev/bluetooth where they exist
#   /opt/storeside/venv          the agent and its dependencies   replaced by the new version
#   /etc/storeside/agent.toml    from config/agent.example.toml   kept: written only if absent
#   /etc/storeside/agent.example.toml                             refreshed (diff it on upgrade)
#   /var/lib/storeside           the data folder (cache, key)     kept: never emptied or chowned
#   /etc/systemd/system/storeside-agent.service                   replaced; enabled, (re)started
#
# Options (the last three let a test install into a folder as an ordinary user):
#   --wheel FILE     install this wheel instead of building one from the checkout
#   --wheels DIR     offline: dependencies from this folder only (pip --no-index --find-links)
#   --python PATH    the Python that makes the venv (default /usr/bin/python3)
#   --root DIR       install under DIR instead of / (paths inside the files stay /...)
#   --no-user        neither create the user nor chown anything (needed when not root)
#   --no-systemctl   install the unit file but do not run systemctl
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
checkout=$(dirname "$here")
root=/
wheel=
wheels=
# Debian's own Python first: one under /root or /home (pyenv) is hidden by ProtectHome=yes.
python=$(command -v /usr/bin/python3 || command -v python3.11 || command -v python3 || true)
manage_user=yes
use_systemctl=yes

die() {
    echo "install.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) wheel=$(realpath "${2:?--wheel needs a file}"); shift 2 ;;
        --wheels) wheels=$(realpath "${2:?--wheels needs a folder}"); shift 2 ;;
        --python) python=${2:?--python needs a path}; shift 2 ;;
        --root) root=${2:?--root needs a folder}; shift 2 ;;
        --no-user) manage_user=no; shift ;;
        --no-systemctl) use_systemctl=no; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

[ -n "$python" ] || die "no python3 found (apt-get install python3 python3-venv)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$python is older than Python 3.11"
if [ "$manage_user" = yes ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo), or with --no-user --root DIR to install into a folder"
fi
root=${root%/}
venv=/opt/storeside/venv
etc=/etc/storeside
data=/var/lib/storeside
unit=/etc/systemd/system/storeside-agent.service

# --- the service user ---------------------------------------------------------------------------
if [ "$manage_user" = yes ]; then
    if ! getent passwd storeside >/dev/null; then
        useradd --system --user-group --home-dir "$data" --no-create-home \
            --shell /usr/sbin/nologin --comment "Storeside agent" storeside
    fi
    # Device access without PrivateDevices (see the unit): serial printers and PN532 readers
    # (dialout), usblp printers (lp), libusb devices a udev rule gives to plugdev, BlueZ.
    for group in dialout lp plugdev bluetooth; do
        if getent group "$group" >/dev/null; then
            usermod --append --groups "$group" storeside
        fi
    done
fi
own() { # own USER:GROUP MODE PATH: set ownership only when managing the user
    if [ "$manage_user" = yes ]; then chown "$1" "$3"; fi
    chmod "$2" "$3"
}

# --- folders ------------------------------------------------------------------------------------
install -d -m 0755 "$root/opt/storeside" "$root/etc/systemd/system"
install -d "$root$etc" && own root:storeside 0750 "$root$etc"
# The data folder itself only: what is inside is the agent's, and an upgrade leaves it alone.
install -d "$root$data" && own storeside:storeside 0750 "$root$data"
# python-escpos's pickle folder (the unit's ESCPOS_CAPABILITIES_PICKLE_DIR): it must exist.
install -d "$root$data/escpos-cache" && own storeside:storeside 0750 "$root$data/escpos-cache"

# --- the venv -----------------------------------------------------------------------------------
base_prefix() { "$1" -c 'import sys; print(sys.base_prefix)'; }
if [ ! -x "$root$venv/bin/python" ]; then
    "$python" -m venv "$root$venv"
elif [ "$(base_prefix "$root$venv/bin/python")" != "$(base_prefix "$python")" ]; then
    "$python" -m venv --clear "$root$venv" # made by another Python: start it again
fi
if [ "$manage_user" = yes ] && ! runuser -u storeside -- "$root$venv/bin/python" -c ''; then
    die "the storeside user cannot run $python (under /root or /home?): use --python /usr/bin/python3"
fi
pip=("$root$venv/bin/python" -m pip --disable-pip-version-check --quiet)
offline=()
if [ -n "$wheels" ]; then
    offline=(--no-index --find-links "$wheels")
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
if [ -z "$wheel" ]; then
    # Built from a copy: setuptools writes build/ and *.egg-info into the tree it builds.
    tar -C "$checkout" --exclude=./.git --exclude=./.venv --exclude=./var --exclude=./build \
        -cf - . | tar -C "$scratch" -xf -
    "${pip[@]}" wheel --no-deps "${offline[@]}" --wheel-dir "$scratch/dist" "$scratch"
    wheel=$(ls "$scratch"/dist/storeside-*.whl)
fi
# --force-reinstall --no-deps first: the same version number rebuilt must still replace the
# installed code; then the dependencies, which pip leaves alone where they already match.
"${pip[@]}" install --force-reinstall --no-deps "${offline[@]}" "$wheel"
"${pip[@]}" install "${offline[@]}" "$wheel"

# --- config -------------------------------------------------------------------------------------
example="$checkout/config/agent.example.toml"
install -m 0644 "$example" "$root$etc/agent.example.toml"
if [ ! -e "$root$etc/agent.toml" ]; then
    install -m 0640 "$example" "$root$etc/agent.toml"
    own root:storeside 0640 "$root$etc/agent.toml"
    echo "install.sh: wrote $etc/agent.toml from the example: edit it (store, tills, printer)"
else
    echo "install.sh: kept $etc/agent.toml (the new example is $etc/agent.example.toml)"
fi
"$root$venv/bin/edge-agent" --config "$root$etc/agent.toml" config check >/dev/null ||
    die "$etc/agent.toml does not pass 'edge-agent config check' (the agent would not start)"

# --- the unit -----------------------------------------------------------------------------------
install -m 0644 "$here/storeside-agent.service" "$root$unit"
if [ "$use_systemctl" = yes ]; then
    systemctl daemon-reload
    systemctl enable storeside-agent.service
    systemctl restart storeside-agent.service
fi
version=$("$root$venv/bin/edge-agent" --version)
echo "install.sh: installed $version"
