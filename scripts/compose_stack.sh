#!/bin/sh
# The Docker path of `make up/down/status/logs`: needs only Docker and a POSIX shell (no Python).
#
#   scripts/compose_stack.sh mode [up|down|status|logs]
#                                     print "docker" or "native" (the path `make <that>` takes);
#                                     for up, stop with the reason when Docker is installed but
#                                     its daemon does not answer
#   scripts/compose_stack.sh env      create .env from .env.example (random secrets), or add the
#                                     keys an older .env lacks; existing values are never changed
#   scripts/compose_stack.sh dotenv [FILE]
#                                     print the KEY=VALUE assignments of FILE (default .env) as
#                                     this script reads them, one a line
#   scripts/compose_stack.sh up|down|status|logs|urls
#   scripts/compose_stack.sh test-guard
#                                     before `make test` (which runs its own native stack on the same
#                                     ports): stop, in one line, while a compose stack of this project runs
#
# Settings (environment or make variables): MODE=auto|docker|native, PROFILE=dev|production,
# WORKERS=1..16, DRY_RUN=1 (print the .env and the commands `up` would run, in order; run and
# write nothing, need no engine). ENV_FILE=path overrides .env (Compose then gets --env-file).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
EXAMPLE=$ROOT/.env.example
ENV_FILE=${ENV_FILE:-$ROOT/.env}
MODE=${MODE:-auto}
PROFILE=${PROFILE:-dev}
WORKERS=${WORKERS:-1}
DRY_RUN=${DRY_RUN:-}
PLACEHOLDER=change-me

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
dry() { [ -n "$DRY_RUN" ] && [ "$DRY_RUN" != 0 ]; }

# Print a command, then run it (only print it in a dry run).
run() {
    say "+ $*"
    dry || "$@"
}

check_settings() {
    case $PROFILE in dev|production) ;; *) die "PROFILE must be dev or production, got '$PROFILE'" ;; esac
    case $WORKERS in
        ''|*[!0-9]*) die "WORKERS must be a whole number between 1 and 16, got '$WORKERS'" ;;
    esac
    if [ "$WORKERS" -lt 1 ] || [ "$WORKERS" -gt 16 ]; then
        die "WORKERS must be between 1 and 16, got '$WORKERS'"
    fi
    case $MODE in auto|docker|native) ;; *) die "MODE must be auto, docker or native, got '$MODE'" ;; esac
}

# --- which path: Docker or native ----------------------------------------------------------

daemon_unreachable() {
    say "error: the docker CLI is installed but its daemon does not answer (docker info: $1)." >&2
    say "  - Docker Desktop: start it and wait until it says it is running." >&2
    say "  - Linux: sudo systemctl start docker; if it runs, give your user access:" >&2
    say "    sudo usermod -aG docker \"\$USER\", then log in again (or use newgrp docker)." >&2
    say "  To run the stack as local processes instead: MODE=native make up" >&2
    exit 1
}

check_daemon() {
    if ! out=$(docker info 2>&1 >/dev/null); then
        daemon_unreachable "$(printf '%s' "$out" | grep -v '^ *$' | tail -n 1)"
    fi
}

mode() {
    case $MODE in
        native|docker) say "$MODE"; return ;;
    esac
    if ! command -v docker >/dev/null 2>&1; then
        say native
        return
    fi
    # `up` stops when the daemon does not answer; down/status/logs then look at native mode
    # (no compose stack can be running where no daemon answers).
    if [ "${1:-up}" != up ] && ! docker info >/dev/null 2>&1; then
        say "note: the Docker daemon does not answer; $1 acts on native mode" >&2
        say native
        return
    fi
    check_daemon
    say docker
}

# --- .env ----------------------------------------------------------------------------------

# The KEY=VALUE assignments of a dotenv file, one a line, read as native mode reads it (python-dotenv,
# native/env.py), since this path has no Python: blank lines and # comments skipped, `export `
# dropped, spaces around `=` allowed, a value in 'single' or "double" quotes taken as written, an
# unquoted one up to a ` #` comment, trailing spaces removed; a key without `=` assigns nothing.
# tests/config/test_dotenv_readers.py feeds both the same files. Not read alike: values over several
# lines and backslash escapes in quotes (python-dotenv decodes them); .env.example uses neither.
dotenv_pairs() {
    awk '
        { line = $0; sub(/\r$/, "", line); sub(/^[ \t]+/, "", line) }
        line == "" || line ~ /^#/ { next }
        {
            sub(/^export[ \t]+/, "", line)
            if (!match(line, /^[^=# \t]+/)) next
            key = substr(line, 1, RLENGTH)
            rest = substr(line, RLENGTH + 1)
            sub(/^[ \t]+/, "", rest)
            if (substr(rest, 1, 1) != "=") next
            rest = substr(rest, 2)
            spaced = match(rest, /^[ \t]+/)
            sub(/^[ \t]+/, "", rest)
            quote = substr(rest, 1, 1)
            if (quote == "\047" || quote == "\"") {
                end = index(substr(rest, 2), quote)
                if (end == 0) next
                value = substr(rest, 2, end - 1)
                # After the closing quote only spaces and a comment may follow (else: no assignment).
                if (substr(rest, end + 2) !~ /^[ \t]*(#.*)?$/) next
            } else if (spaced && quote == "#") {
                value = ""
            } else {
                value = rest
                sub(/[ \t]+#.*$/, "", value)
                sub(/[ \t]+$/, "", value)
            }
            print key "=" value
        }' "$1"
}

random_secret() {
    # 48 hex digits: URL-safe, since secrets end up inside amqp:// and http:// URLs.
    od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

# The KEY=value lines of .env.example whose KEY the existing .env lacks (as dotenv_pairs reads
# it), placeholders replaced by random values. With no .env: all of .env.example (comments included).
env_additions() {
    [ -f "$EXAMPLE" ] || die "$EXAMPLE is missing"
    have=
    [ -f "$ENV_FILE" ] && have=$(dotenv_pairs "$ENV_FILE" | sed 's/=.*//')
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            [A-Za-z_]*=*) ;;
            *) [ -f "$ENV_FILE" ] || say "$line"; continue ;;
        esac
        key=${line%%=*}
        value=${line#*=}
        if printf '%s\n' "$have" | grep -qxF -- "$key"; then
            continue
        fi
        [ "$value" = "$PLACEHOLDER" ] && value=$(random_secret)
        say "$key=$value"
    done < "$EXAMPLE"
}

mask() {
    # Secrets are shown as their length only.
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            [A-Za-z_]*=?*) ;;
            *) say "$line"; continue ;;
        esac
        key=${line%%=*}
        value=${line#*=}
        case $key in
            *PASSWORD*|*SECRET*|*TOKEN*|*BASIC_AUTH*|SLACK_API_URL) say "$key=<secret, ${#value} characters>" ;;
            *) say "$line" ;;
        esac
    done
}

ensure_env() {
    additions=$(env_additions)
    if [ ! -f "$ENV_FILE" ]; then
        if dry; then
            say "dry run: $ENV_FILE does not exist; it would be written from .env.example with random secrets:"
            printf '%s\n' "$additions" | mask | sed 's/^/    /'
            return
        fi
        (umask 077 && printf '%s\n' "$additions" > "$ENV_FILE.tmp.$$")
        mv "$ENV_FILE.tmp.$$" "$ENV_FILE"
        say "created $ENV_FILE with random secrets (RabbitMQ user, Grafana admin, Flower, Flask); keep it private"
        return
    fi
    keys=$(printf '%s\n' "$additions" | sed -n 's/=.*//p' | tr '\n' ' ')
    if dry; then
        say "dry run: $ENV_FILE exists${keys:+; these keys would be added from .env.example: $keys}; it would be:"
        { awk '{ print }' "$ENV_FILE"; [ -z "$additions" ] || printf '%s\n' "$additions"; } | mask | sed 's/^/    /'
        return
    fi
    [ -n "$additions" ] || return 0
    # Appending keeps every existing line (and the file's mode) as it is.
    [ -z "$(tail -c 1 "$ENV_FILE")" ] || printf '\n' >> "$ENV_FILE"
    printf '# Added from .env.example by make up (missing keys; existing values unchanged):\n%s\n' \
        "$additions" >> "$ENV_FILE"
    say "added to $ENV_FILE from .env.example: $keys"
}

# The value Compose interpolates: the shell's environment first, then .env, then the default.
setting() {
    eval "v=\${$1-}"
    if [ -z "$v" ] && [ -f "$ENV_FILE" ]; then
        # The last assignment wins, as in python-dotenv and Compose.
        v=$(dotenv_pairs "$ENV_FILE" | sed -n "s/^$1=//p" | tail -n 1)
    fi
    say "${v:-$2}"
}

# --- compose -------------------------------------------------------------------------------

set_compose() {
    FILES=compose.yaml
    [ "$PROFILE" = production ] && FILES="$FILES compose.production.yaml"
    [ "${BROKER:-}" = redis ] && FILES="$FILES compose.redis.yaml"
    set -- docker compose
    [ "$ENV_FILE" = "$ROOT/.env" ] || set -- "$@" --env-file "$ENV_FILE"
    for file in $FILES; do set -- "$@" -f "$file"; done
    COMPOSE=$*
    # `down` stops every container of the project, whichever files `up` was given: the services
    # of compose.yaml, and any other (the Redis broker's) as an orphan.
    set -- docker compose
    [ "$ENV_FILE" = "$ROOT/.env" ] || set -- "$@" --env-file "$ENV_FILE"
    COMPOSE_DOWN="$* -f compose.yaml down --remove-orphans"
}

# The Compose version the files in use need: the highest of their "# Needs Docker Compose X or
# later" lines (each file states the version of the newest feature it uses).
compose_min() {
    for file in $FILES; do
        sed -n 's/^# Needs Docker Compose \([0-9][0-9.]*\) or later.*/\1/p' "$file"
    done | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1
}

check_compose_version() {
    needed=$(compose_min)
    [ -n "$needed" ] || die "compose.yaml lacks its '# Needs Docker Compose X or later' line"
    say "+ docker compose version --short"
    dry && return 0
    version=$(docker compose version --short 2>/dev/null) \
        || die "the Docker Compose plugin is missing (docker compose version failed): install Docker Compose v2 ($needed or later)"
    version=${version#v}
    lowest=$(printf '%s\n%s\n' "$needed" "$version" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)
    case $FILES in *' '*) verb=need ;; *) verb=needs ;; esac
    [ "$lowest" = "$needed" ] \
        || die "Docker Compose $version is too old: $(printf '%s' "$FILES" | sed 's/ / + /g') $verb $needed or later"
}

# `make test` starts a native stack on the ports a compose stack publishes: refuse while one runs.
test_guard() {
    command -v docker >/dev/null 2>&1 || return 0
    docker info >/dev/null 2>&1 || return 0
    project=$(sed -n 's/^name: *//p' compose.yaml | head -n 1)
    running=$(docker ps -q --filter "label=com.docker.compose.project=$project")
    [ -z "$running" ] \
        || die "the Docker stack of \`make up\` is running and holds the ports \`make test\` needs for its own native stack: run \`make down\` first"
}

urls() {
    host=$(setting BIND_ADDRESS 127.0.0.1)
    case $host in 127.0.0.1|0.0.0.0|'') host=localhost ;; esac
    workers_range=$(setting HOST_PORT_WORKER_METRICS 9191-9206)
    worker_note="replicas on free ports in $workers_range: docker compose port --index N celery_worker 9191"
    if ! dry && command -v docker >/dev/null 2>&1; then
        # The ports the engine gave each replica.
        # shellcheck disable=SC2086
        found=$(i=1; while [ "$i" -le "$WORKERS" ]; do
            p=$($COMPOSE port --index "$i" celery_worker 9191 2>/dev/null | sed 's/.*://') && [ -n "$p" ] && printf '%s ' "$p"
            i=$((i + 1)); done)
        [ -z "$found" ] || worker_note="replica ports: $found"
    fi
    say ""
    say "what                           URL"
    say "Task submitter (form + API)    http://$host:$(setting HOST_PORT_APP 8080)"
    say "Flower                         http://$host:$(setting HOST_PORT_FLOWER 5555)"
    say "Prometheus                     http://$host:$(setting HOST_PORT_PROMETHEUS 9090)"
    say "Alertmanager                   http://$host:$(setting HOST_PORT_ALERTMANAGER 9093)"
    say "Grafana                        http://$host:$(setting HOST_PORT_GRAFANA 3000)"
    say "RabbitMQ management UI         http://$host:$(setting HOST_PORT_RABBITMQ_UI 15672)"
    say "RabbitMQ metrics               http://$host:$(setting HOST_PORT_RABBITMQ_METRICS 15692)/metrics"
    say "celery-exporter metrics        http://$host:$(setting HOST_PORT_EXPORTER 9808)/metrics"
    say "Worker metrics                 http://$host:${workers_range%%-*}/metrics ($worker_note)"
    say "Credentials are in $ENV_FILE (see README). Logs: make logs; stop: make down"
}

up() {
    if dry; then
        say "dry run: MODE=docker PROFILE=$PROFILE WORKERS=$WORKERS; nothing is run or written"
    fi
    say "+ docker info"
    dry || check_daemon
    check_compose_version
    ensure_env
    # shellcheck disable=SC2086
    run $COMPOSE up -d --build --scale "celery_worker=$WORKERS" --wait
    urls
}

main() {
    command=${1:-}
    check_settings
    set_compose
    # $COMPOSE is split into words on purpose (docker compose -f ... -f ...).
    # shellcheck disable=SC2086
    case $command in
        mode) mode "${2:-up}" ;;
        env) ensure_env ;;
        dotenv) dotenv_pairs "${2:-$ENV_FILE}" ;;
        up) up ;;
        down) run $COMPOSE_DOWN ;;
        status) run $COMPOSE ps && urls ;;
        logs) run $COMPOSE logs -f ;;
        urls) urls ;;
        test-guard) test_guard ;;
        *) die "usage: $0 mode|env|dotenv|up|down|status|logs|urls|test-guard (got '$command')" ;;
    esac
}

main "$@"
