#!/usr/bin/env bash
# Installs edgevolve as a systemd service on Raspberry Pi OS, Ubuntu or JetPack (README
# "The daemon"): checks Node.js 20+, bundles the daemon (scripts/build.ts) into
# /opt/edgevolve/dist, installs production dependencies beside it, creates the `edgevolve`
# system user, writes /etc/edgevolve/config.yaml (never overwritten), installs and enables
# the unit and links /usr/local/bin/edgevolve. Run `npm ci` in the checkout first (the
# build needs the dev dependencies). Running it again upgrades in place; --uninstall removes
# the service and the application but keeps the configuration and the state (--purge too).
# The edgevolve user joins the device groups that the accelerators' nodes belong to (video,
# render) where the system has them; the unit names no supplementary group, since one the
# system lacks stops the service from starting (status 216/GROUP).
# The unit's MemoryMax= comes from service.memoryMax in /etc/edgevolve/config.yaml (read with
# the installed `edgevolve config get`, so the daemon's schema validates it) or --memory-max,
# written as a drop-in; run this again after changing it (the daemon warns at start until then).
#
#   sudo scripts/install.sh [--memory-max 1G] [--no-enable] [--dist DIR]
#   sudo scripts/install.sh --uninstall [--purge]
#   scripts/install.sh --prefix /tmp/root --dry-run     # stage into a directory, show every step
set -euo pipefail

PREFIX=/
DRY_RUN=0
UNINSTALL=0
PURGE=0
ENABLE=1
NPM=1
MEMORY_MAX=
DIST=
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# package.json "engines": >=20.18.1 <21 || >=22 (undici 7 needs 20.18.1; 21 is not an LTS line).
NODE_MIN=20.18.1

usage() {
  # The comment block at the top of this file, without its `# `.
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  cat <<'USAGE'

options:
  --prefix DIR      install under DIR instead of / (no systemctl: a staging root; the user and
                    its groups only when DIR has its own etc/passwd and etc/group, e.g. a
                    board image's root file system)
  --dry-run         print what would be done, change nothing
  --uninstall       stop and remove the service and /opt/edgevolve
  --purge           with --uninstall: also remove /etc/edgevolve and /var/lib/edgevolve
  --memory-max V    MemoryMax= for the unit (systemd syntax: 512M, 2G, 60%, infinity);
                    overrides service.memoryMax of the config
  --no-enable       install without enabling and starting the service
  --skip-npm        do not run `npm ci --omit=dev` (node_modules already in place)
  --dist DIR        install this prebuilt bundle (the output of `npm run build`) instead of building
  --source DIR      the edgevolve checkout to install (default: this script's)
USAGE
}

while (($#)); do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    --memory-max) MEMORY_MAX=${2:?--memory-max needs a value}; shift 2 ;;
    --no-enable) ENABLE=0; shift ;;
    --skip-npm) NPM=0; shift ;;
    --source) SOURCE=${2:?--source needs a directory}; shift 2 ;;
    --dist) DIST=${2:?--dist needs a directory}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

ROOT=${PREFIX%/}
APP=$ROOT/opt/edgevolve
ETC=$ROOT/etc/edgevolve
STATE=$ROOT/var/lib/edgevolve
UNIT_DIR=$ROOT/etc/systemd/system
UNIT=$UNIT_DIR/edgevolve.service
DROPIN=$UNIT_DIR/edgevolve.service.d
COMMAND=$ROOT/usr/local/bin/edgevolve
LIVE=0
[[ -z $ROOT ]] && LIVE=1
# Where the edgevolve user is created: the running system, or the account files of a staging
# root that has them (changed with the shadow tools' --prefix); other staging roots get none.
ACCOUNTS=0
ACCOUNT_TOOL_ARGS=()
if ((LIVE)); then
  ACCOUNTS=1
elif [[ -f $ROOT/etc/passwd && -f $ROOT/etc/group ]]; then
  ACCOUNTS=1
  ACCOUNT_TOOL_ARGS=(--prefix "$ROOT")
fi
# Device nodes the accelerators are reached through, by group: video has the Jetson GPU and
# DLA nodes (/dev/nvhost-*, /dev/nvmap, /dev/nvgpu) and the DRM card nodes; render has the
# DRM render nodes (/dev/dri/renderD*: Mali and Jetson GPUs, the Rockchip RKNPU driver, Intel
# and AMD GPUs) and, with recent systemd, /dev/accel/* (mainline NPU drivers). Only groups the
# system has: a distribution without `render` still runs the service.
DEVICE_GROUPS=(video render)

say() { printf 'install.sh: %s\n' "$*"; }
run() {
  if ((DRY_RUN)); then
    printf '+ %s\n' "$*"
  else
    "$@"
  fi
}
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# The values service.memoryMax accepts (src/config/systemd-size.ts): the flag is held to the same syntax.
MEMORY_MAX_SYNTAX='^([0-9]+(\.[0-9]+)?[KMGTPE]?|[0-9]+(\.[0-9]+)?%|infinity)$'
if [[ -n $MEMORY_MAX && ! $MEMORY_MAX =~ $MEMORY_MAX_SYNTAX ]]; then
  printf 'install.sh: --memory-max %s: not a systemd MemoryMax= value (512M, 1.5G, 60%%, infinity)\n' "$MEMORY_MAX" >&2
  exit 2
fi

describe_os() {
  local name=unknown
  if [[ -r /etc/nv_tegra_release ]]; then
    name="NVIDIA JetPack ($(head -n1 /etc/nv_tegra_release | cut -c1-40))"
  elif [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091 # a system file, read for PRETTY_NAME only
    name=$(. /etc/os-release && printf '%s' "${PRETTY_NAME:-$ID}")
  fi
  printf '%s' "$name"
}

check_node() {
  local node version major minor patch
  node=$(command -v node) || die "Node.js is not installed; install Node.js ${NODE_MIN} or later (e.g. from NodeSource or the distribution) and run this again"
  version=$("$node" -p 'process.versions.node')
  [[ $version =~ ^([0-9]+)\.([0-9]+)\.([0-9]+) ]] || die "could not read the Node.js version from $node (got '$version')"
  major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} patch=${BASH_REMATCH[3]}
  if ((major == 21)); then
    die "Node.js $version is not supported (21 is not an LTS line); install Node.js ${NODE_MIN} or later in 20.x, or 22 or later"
  fi
  ((major > 20 || (major == 20 && (minor > 18 || (minor == 18 && patch >= 1))))) || die "Node.js $version is too old; edgevolve needs ${NODE_MIN} or later"
  NODE_BIN=$(readlink -f "$node")
  say "Node.js $version at $NODE_BIN"
}

uninstall() {
  if ((LIVE)); then
    run systemctl disable --now edgevolve.service || true
  fi
  run rm -f "$UNIT"
  run rm -rf "$DROPIN" "$APP"
  # Only our link: never a command of the same name that someone else installed.
  if [[ $(readlink "$COMMAND" 2>/dev/null) == /opt/edgevolve/dist/edgevolve.mjs ]]; then run rm -f "$COMMAND"; fi
  if ((LIVE)); then run systemctl daemon-reload; fi
  if ((PURGE)); then
    run rm -rf "$ETC" "$STATE"
    # userdel also takes the user out of the device groups. It removes the user's own group
    # only under USERGROUPS_ENAB (login.defs; a staging root may have none): then groupdel does.
    if ((ACCOUNTS)) && user_exists; then run userdel "${ACCOUNT_TOOL_ARGS[@]}" edgevolve; fi
    if ((ACCOUNTS)) && group_entry edgevolve >/dev/null; then run groupdel "${ACCOUNT_TOOL_ARGS[@]}" edgevolve; fi
    say "removed edgevolve, its configuration and its state"
  else
    say "removed the service and $APP; kept $ETC and $STATE (--purge removes them)"
  fi
}

install_app() {
  [[ -f $SOURCE/scripts/build.ts ]] || die "$SOURCE is not an edgevolve checkout (no scripts/build.ts)"
  # Copy next to the old version, then swap: a failed build or copy leaves the old one intact.
  local next=$APP.new
  run rm -rf "$next"
  run mkdir -p "$next"
  if [[ -n $DIST ]]; then
    [[ -f $DIST/edgevolve.mjs ]] || die "$DIST is not a bundle (no edgevolve.mjs): build one with \`npm run build\`"
    run cp -R "$DIST" "$next/dist"
  else
    [[ -x $SOURCE/node_modules/.bin/tsx && -d $SOURCE/node_modules/esbuild ]] || die "the build needs the dev dependencies: run \`npm ci\` in $SOURCE first, or pass --dist DIR"
    # The bundle, its benchmark child and the fixture models the embedded default seeds.
    if ((DRY_RUN)); then
      printf '+ (cd %s && node_modules/.bin/tsx scripts/build.ts --outdir %s)\n' "$SOURCE" "$next/dist"
    else
      (cd "$SOURCE" && node_modules/.bin/tsx scripts/build.ts --outdir "$next/dist" >/dev/null)
    fi
  fi
  run cp -R "$SOURCE/config" "$SOURCE/systemd" "$SOURCE/package.json" "$SOURCE/package-lock.json" "$next/"
  if [[ -f $SOURCE/.npmrc ]]; then run cp "$SOURCE/.npmrc" "$next/"; fi
  if ((NPM)); then
    if ((DRY_RUN)); then
      printf '+ (cd %s && npm ci --omit=dev)\n' "$next"
    else
      (cd "$next" && npm ci --omit=dev --no-audit --no-fund)
    fi
  elif [[ -d $APP/node_modules ]]; then
    run mv "$APP/node_modules" "$next/node_modules"
  fi
  run rm -rf "$APP"
  run mv "$next" "$APP"
  # The installed command for operators; the bundle finds node_modules from its real path.
  run mkdir -p "$(dirname "$COMMAND")"
  run ln -sfn /opt/edgevolve/dist/edgevolve.mjs "$COMMAND"
  say "application in $APP, command $COMMAND"
}

user_exists() {
  if ((LIVE)); then id edgevolve >/dev/null 2>&1; else grep -q '^edgevolve:' "$ROOT/etc/passwd"; fi
}

# The group's line (name:password:gid:members); fails when the system has no such group.
group_entry() {
  if ((LIVE)); then getent group "$1"; else grep "^$1:" "$ROOT/etc/group"; fi
}

create_user() {
  if ! ((ACCOUNTS)); then
    say "staging root: not creating the edgevolve user (no etc/passwd and etc/group under it)"
    return
  fi
  if user_exists; then
    say "user edgevolve exists"
  else
    run useradd "${ACCOUNT_TOOL_ARGS[@]}" --system --user-group --home-dir /var/lib/edgevolve --shell /usr/sbin/nologin edgevolve
  fi
  local group entry
  for group in "${DEVICE_GROUPS[@]}"; do
    if ! entry=$(group_entry "$group"); then
      say "no group $group on this system: skipped"
      continue
    fi
    # Already a member: leave the account files alone (a second run changes nothing).
    if [[ ,${entry##*:}, == *,edgevolve,* ]]; then continue; fi
    run usermod "${ACCOUNT_TOOL_ARGS[@]}" -a -G "$group" edgevolve
    say "user edgevolve joined group $group"
  done
}

write_config() {
  run mkdir -p "$ETC"
  if [[ -e $ETC/config.yaml ]]; then
    say "kept the existing $ETC/config.yaml"
    return
  fi
  if ((DRY_RUN)); then
    printf '+ write %s\n' "$ETC/config.yaml"
    return
  fi
  # Written beside and renamed into place with its mode and group set: an install interrupted here
  # leaves no half-written config that the next run would keep, and the file is never world-readable.
  cat >"$ETC/config.yaml.tmp" <<'CONFIG'
# edgevolve configuration. Every key, its default and meaning: /opt/edgevolve/config/default.yaml
# Apply changes with `systemctl reload edgevolve` (SIGHUP) or, for what needs it, a restart.
stateDir: /var/lib/edgevolve
daemon:
  # Until models are configured, serve the bundled MNIST models (the embedded default).
  seedFixtures: true
  # models:
  #   - name: detector
  #     ref: registry.example.com/models/detector:1.4.0
  #     budgets: { latencyP95Ms: 40, memoryMb: 256 }
CONFIG
  chmod 0640 "$ETC/config.yaml.tmp"
  # The service runs as edgevolve: it must be able to read what it is configured with.
  if ((LIVE)); then
    chgrp edgevolve "$ETC/config.yaml.tmp"
  elif ((ACCOUNTS)); then
    # By number: the staging root's edgevolve group is not this system's.
    chgrp "$(group_entry edgevolve | cut -d: -f3)" "$ETC/config.yaml.tmp"
  fi
  mv "$ETC/config.yaml.tmp" "$ETC/config.yaml"
  say "wrote $ETC/config.yaml"
}

# The output of the command after $1 into $1 (mode 0644) through a temp file and a rename,
# only if the command succeeds: systemd never reads half a file.
write_atomically() {
  local dest=$1
  shift
  "$@" >"$dest.tmp"
  chmod 0644 "$dest.tmp"
  mv "$dest.tmp" "$dest"
}

install_unit() {
  run mkdir -p "$UNIT_DIR"
  if ((DRY_RUN)); then
    printf '+ install %s (ExecStart with %s)\n' "$UNIT" "$NODE_BIN"
  else
    write_atomically "$UNIT" sed "s#^ExecStart=/usr/bin/node #ExecStart=$NODE_BIN #" "$SOURCE/systemd/edgevolve.service"
  fi
  write_memory_dropin
  say "unit $UNIT"
}

# service.memoryMax as the installed daemon reads it: its own loader and schema, no
# EDGEVOLVE_* variables of this shell (the unit sets none that matter here).
configured_memory_max() {
  env -i PATH="$PATH" "$NODE_BIN" "$APP/dist/edgevolve.mjs" config get service.memoryMax --config "$ETC/config.yaml"
}

# MemoryMax= as a drop-in: --memory-max, else service.memoryMax, else none (the unit's own 75%).
write_memory_dropin() {
  local memory_max=$MEMORY_MAX origin=--memory-max
  if [[ -z $memory_max ]]; then
    origin="service.memoryMax in $ETC/config.yaml"
    if ((DRY_RUN)); then
      printf '+ read service.memoryMax from %s\n' "$ETC/config.yaml"
      return
    fi
    memory_max=$(configured_memory_max) || die "cannot read service.memoryMax from $ETC/config.yaml (above); fix it and run this again"
  fi
  if [[ -z $memory_max ]]; then
    # Unset now: a drop-in from an earlier run would keep the old limit.
    if [[ -e $DROPIN/memory.conf ]]; then
      run rm -f "$DROPIN/memory.conf"
      run rmdir --ignore-fail-on-non-empty "$DROPIN"
    fi
    say "MemoryMax: the unit's own (service.memoryMax unset)"
    return
  fi
  run mkdir -p "$DROPIN"
  if ((DRY_RUN)); then
    printf '+ write %s/memory.conf (MemoryMax=%s)\n' "$DROPIN" "$memory_max"
  else
    write_atomically "$DROPIN/memory.conf" printf '[Service]\nMemoryMax=%s\n' "$memory_max"
  fi
  say "MemoryMax=$memory_max ($origin)"
}

enable_service() {
  if ! ((LIVE)); then
    say "staging root: not running systemctl"
    return
  fi
  run systemctl daemon-reload
  if ((ENABLE)); then
    run systemctl enable edgevolve.service
    # restart, not start: a second run of the installer upgrades a running daemon.
    run systemctl restart edgevolve.service
    say "enabled and started; follow it with: journalctl -u edgevolve -f   status: sudo -u edgevolve edgevolve status"
  else
    say "installed, not enabled (--no-enable)"
  fi
}

if ((LIVE)) && ((!DRY_RUN)) && [[ $(id -u) -ne 0 ]]; then
  die "run as root (sudo), or stage with --prefix DIR"
fi
say "on $(describe_os)"
if ((UNINSTALL)); then
  uninstall
  exit 0
fi
check_node
install_app
create_user
write_config
install_unit
enable_service
