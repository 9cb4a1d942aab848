#!/usr/bin/env bash
# scripts/services.sh — install, start, inspect and stop the real services that
# Grey's tests run against (DESIGN.md §10). Everything listens on 127.0.0.1.
#
#   scripts/services.sh up [NAME...]      install what is missing, start, wait until it answers
#   scripts/services.sh status [NAME...]  one line per service: name, URL, up/down
#   scripts/services.sh env [NAME...]     export GREY_TEST_<NAME>_URL=... for services that are up
#   scripts/services.sh down [NAME...]    stop what this script started (by pid, verified)
#   scripts/services.sh install [NAME...] only install
#   scripts/services.sh tools             install the command-line tools tests use (wat2wasm, buildah,
#                                         chromium and axe-core for the console's browser tests)
#   scripts/services.sh list              names of all services
#   scripts/services.sh stats [NAME...]   resident memory (RSS) of each running service
#   scripts/services.sh logs NAME         tail of the service's log
#
# Runtime data (databases, logs, pid files) lives in .services/ in the repo root
# (git-ignored). Tools, jars, venvs and binaries are cached OUTSIDE the repo, in
# $GREY_SERVICES_CACHE (default /opt/grey-services, or ~/.cache/grey-services
# when /opt is not writable), so a fresh clone starts warm.
#
# The script is idempotent: `up` twice leaves one instance of each service, and
# `down` only ever signals a pid from its own pid files whose command line (and,
# where readable, environment tag GREY_SERVICE_ID) matches what it started.
# Service lists are passed around as words on purpose (names never contain
# spaces); PORT_* variables are read indirectly via ${!p}.
# shellcheck disable=SC2046,SC2034,SC2206
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${GREY_SERVICES_DATA:-$ROOT/.services}
if [[ -z ${GREY_SERVICES_CACHE:-} ]]; then
	if mkdir -p /opt/grey-services 2>/dev/null && [[ -w /opt/grey-services ]]; then
		GREY_SERVICES_CACHE=/opt/grey-services
	else
		GREY_SERVICES_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/grey-services
	fi
fi
CACHE=$GREY_SERVICES_CACHE
# Loopback only. GREY_SERVICES_HOST picks another loopback address, for a
# test that runs several nodes of one kind as separate hosts (a Cassandra
# ring: drivers tell nodes apart by address).
HOST=${GREY_SERVICES_HOST:-127.0.0.1}
[[ $HOST =~ ^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "services: GREY_SERVICES_HOST=$HOST is not a 127.x.y.z loopback address" >&2; exit 2; }

KAFKA_VERSION=${GREY_KAFKA_VERSION:-4.1.1}
CASSANDRA_VERSION=${GREY_CASSANDRA_VERSION:-5.0.6}
LOG4J_VERSION=2.24.3
FERRETDB_VERSION=${GREY_FERRETDB_VERSION:-v1.24.2}
JAEGER_VERSION=${GREY_JAEGER_VERSION:-v1.76.0}
FAKEGCS_VERSION=${GREY_FAKEGCS_VERSION:-v1.56.1}
AZURITE_VERSION=${GREY_AZURITE_VERSION:-3.35.0}
# axe-core for the console's accessibility check; keep in step with
# axeVersion in console/browser_test.go, which reads $CACHE/axe-core-<v>/axe.min.js.
AXE_VERSION=4.10.3
KEYCLOAK_VERSION=${GREY_KEYCLOAK_VERSION:-26.5.6}
# Keycloak needs Java 21 or newer; the machines' default java is 17.
KEYCLOAK_JAVA_HOME=${GREY_KEYCLOAK_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
MOTO_SPEC=${GREY_MOTO_SPEC:-moto[server]==5.2.5}
TF_SPEC=${GREY_TF_SPEC:-tensorflow-cpu==2.21.0}
# KServe's Python model server (Open Inference Protocol REST), in a venv of
# its own: its pins (fastapi, numpy 2) must not move tensorflow's.
KSERVE_SPEC=${GREY_KSERVE_SPEC:-kserve==0.21.0}
PYTEST_SPEC=${GREY_PYTEST_SPEC:-pytest}

# Ports (override with GREY_<NAME>_PORT...). Non-default ports so that a
# system-wide service of the same kind never collides with ours.
PORT_postgres=${GREY_POSTGRES_PORT:-15432}
PORT_postgres2=${GREY_POSTGRES2_PORT:-15433}
PORT_postgres3=${GREY_POSTGRES3_PORT:-15434}
PORT_epmd=${GREY_EPMD_PORT:-34369}
PORT_rabbitmq=${GREY_RABBITMQ_PORT:-35672}
PORT_rabbitmq_dist=${GREY_RABBITMQ_DIST_PORT:-35673}
PORT_kafka=${GREY_KAFKA_PORT:-19092}
PORT_kafka_ctl=${GREY_KAFKA_CONTROLLER_PORT:-19093}
PORT_cassandra=${GREY_CASSANDRA_PORT:-19042}
PORT_cassandra_storage=${GREY_CASSANDRA_STORAGE_PORT:-17000}
# A node of another ring: GREY_CASSANDRA_SEEDS=127.0.0.X:PORT[,...] (storage
# ports) with its own GREY_SERVICES_DATA, address and ports makes this node join it
# (e2e's multi-node tests start rings of their own this way).
CASSANDRA_SEEDS=${GREY_CASSANDRA_SEEDS:-$HOST:$PORT_cassandra_storage}
# GREY_CASSANDRA_AUTH=none turns password authentication and role
# permissions off (those rings test routing and consistency, not logins).
CASSANDRA_AUTH=${GREY_CASSANDRA_AUTH:-password}
PORT_mongodb=${GREY_MONGODB_PORT:-27117}
PORT_mongodb_debug=${GREY_MONGODB_DEBUG_PORT:-28088}
PORT_prometheus=${GREY_PROMETHEUS_PORT:-19090}
PORT_otlp_grpc=${GREY_OTLP_GRPC_PORT:-14317}
PORT_otlp=${GREY_OTLP_HTTP_PORT:-14318}
PORT_otlp_query=${GREY_OTLP_QUERY_PORT:-26686}
PORT_otlp_query_grpc=${GREY_OTLP_QUERY_GRPC_PORT:-26685}
PORT_otlp_health=${GREY_OTLP_HEALTH_PORT:-23133}
PORT_otlp_metrics=${GREY_OTLP_METRICS_PORT:-28888}
PORT_oidc=${GREY_OIDC_PORT:-19096}
PORT_s3=${GREY_S3_PORT:-14566}
PORT_gcs=${GREY_GCS_PORT:-14443}
PORT_azblob=${GREY_AZBLOB_PORT:-11000}
PORT_keycloak=${GREY_KEYCLOAK_PORT:-18180}
PORT_keycloak_mgmt=${GREY_KEYCLOAK_MANAGEMENT_PORT:-18190}

# Public services, in start order. Internal helpers (epmd) are started as
# dependencies and not listed.
ALL_SERVICES=(postgres postgres2 postgres3 rabbitmq kafka cassandra mongodb prometheus otlp oidc keycloak s3 gcs azblob pytorch tensorflow kserve)
# Services left out of `up` with no names (none at present); see docs/TESTING.md.
DEFAULT_EXCLUDED=(${GREY_SERVICES_EXCLUDE:-})

# ---------------------------------------------------------------- helpers ---

say() { printf '%s\n' "services: $*" >&2; }
die() { say "error: $*"; exit 1; }
now() { date +%s; }

is_root() { [[ $(id -u) -eq 0 ]]; }
as_root() {
	if is_root; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
		say "need root for: $*"
		return 1
	fi
}

svc_dir() { echo "$DATA/$1"; }
pidfile() { echo "$DATA/run/$1.pid"; }
logfile() { echo "$DATA/$1/$1.log"; }

port_in_use() { # port -> 0 when something listens on HOST:port (or any address)
	local p=$1
	if command -v ss >/dev/null; then
		[[ -n $(ss -Hltn "sport = :$p" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/$HOST/$p") 2>/dev/null
	fi
}
port_owner() { # best-effort description of who holds a port
	local p=$1
	command -v ss >/dev/null || return 0
	ss -Hltnp "sport = :$p" 2>/dev/null | grep -o 'users:(.*)' | head -1
}
port_pid() { # pid of the process listening on a port ("" when unknown)
	command -v ss >/dev/null || return 0
	ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}

# reap_orphan SVC PID: stop PID when it is this service started by this
# script for a checkout that no longer exists (its .services dir is gone,
# e.g. a scratch clone deleted while its services ran), or for this one but
# without a pid file (the .services dir was deleted and made again under
# it). Called only when no pid file of ours names a live process. Anything
# else is left alone.
reap_orphan() {
	local svc=$1 pid=$2 id i
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/environ ]] || return 0
	id=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^GREY_SERVICE_ID=//p' | head -1)
	[[ -n $id && $id == */"$svc" ]] || return 0
	if [[ $id == "$DATA/$svc" ]]; then
		say "$svc: pid $pid was started for this checkout but its pid file is gone; stopping it"
	elif [[ ! -d ${id%/*} ]]; then
		say "$svc: pid $pid was started for ${id%/*}, which no longer exists; stopping it"
	else
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do
		[[ -d /proc/$pid ]] || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	sleep 0.5
}
tcp_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
http_ok() { curl -fsS -o /dev/null --max-time "${2:-3}" "$1" 2>/dev/null; }
http_any() { # any HTTP answer (even 4xx) counts
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-3}" "$1" 2>/dev/null)
	[[ -n $code && $code != 000 ]]
}

show_log_tail() { # svc [lines]
	local svc=$1 n=${2:-25} f
	for f in $(log_files "$svc"); do
		[[ -s $f ]] || continue
		say "---- last $n lines of $f ----"
		tail -n "$n" "$f" | sed 's/^/    /' >&2
	done
}
log_files() {
	local svc=$1
	echo "$(logfile "$svc")"
	case $svc in
	rabbitmq) ls "$(svc_dir rabbitmq)"/log/*.log 2>/dev/null | head -3 ;;
	esac
}

# Command line of a pid, NUL separated args joined by spaces.
pid_cmdline() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null; }

# pid_is_ours SVC PID -> 0 if PID runs the program we started for SVC.
# Checks the command line against the service's pattern and, when readable,
# the GREY_SERVICE_ID tag we put in its environment.
pid_is_ours() {
	local svc=$1 pid=$2 cmd re
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -d /proc/$pid ]] || return 1
	cmd=$(pid_cmdline "$pid")
	[[ -n $cmd ]] || return 1 # zombie or gone
	re=$(match_re "$svc")
	[[ $cmd =~ $re ]] || return 2
	if [[ -r /proc/$pid/environ ]]; then
		tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "GREY_SERVICE_ID=$DATA/$svc" || return 3
	fi
	return 0
}

# ----------------------------------------------------- service definitions ---
# Per service: url, ports, match_re (regex on the command line), probe,
# installed/install, prepare (configs, data dirs), launch command, timeout.

kind() { # process | python
	case $1 in pytorch | tensorflow | kserve) echo python ;; *) echo process ;; esac
}

deps() {
	case $1 in
	rabbitmq) echo epmd ;;
	mongodb) echo postgres ;;
	esac
}

url() {
	case $1 in
	postgres | postgres2 | postgres3) local p="PORT_$1"; echo "postgres://postgres@$HOST:${!p}/postgres?sslmode=disable" ;;
	epmd) echo "epmd://$HOST:$PORT_epmd" ;;
	rabbitmq) echo "amqp://guest:guest@$HOST:$PORT_rabbitmq/" ;;
	kafka) echo "kafka://$HOST:$PORT_kafka" ;;
	# the default superuser: the test Cassandra requires a password
	cassandra) [[ $CASSANDRA_AUTH == none ]] && echo "cassandra://$HOST:$PORT_cassandra" || echo "cassandra://cassandra:cassandra@$HOST:$PORT_cassandra" ;;
	mongodb) echo "mongodb://$HOST:$PORT_mongodb/" ;;
	prometheus) echo "http://$HOST:$PORT_prometheus" ;;
	otlp) echo "http://$HOST:$PORT_otlp" ;;
	oidc) echo "http://$HOST:$PORT_oidc" ;;
	keycloak) echo "http://$HOST:$PORT_keycloak" ;;
	s3) echo "http://$HOST:$PORT_s3" ;;
	gcs) echo "http://$HOST:$PORT_gcs" ;;
	azblob) echo "http://$HOST:$PORT_azblob/devstoreaccount1" ;;
	pytorch) echo "file://$(torch_python)" ;;
	tensorflow) echo "file://$CACHE/venv/bin/python" ;;
	kserve) echo "file://$CACHE/kserve-venv/bin/python" ;;
	esac
}

# Extra variables printed by `env` besides GREY_TEST_<NAME>_URL.
extra_env() {
	case $1 in
	otlp)
		echo "GREY_TEST_OTLP_GRPC_URL=$HOST:$PORT_otlp_grpc"
		echo "GREY_TEST_OTLP_QUERY_URL=http://$HOST:$PORT_otlp_query"
		;;
	kafka) echo "GREY_TEST_KAFKA_BIN=$CACHE/kafka-$KAFKA_VERSION/bin" ;;
	esac
}

ports() {
	case $1 in
	postgres | postgres2 | postgres3) local p="PORT_$1"; echo "${!p}" ;;
	epmd) echo "$PORT_epmd" ;;
	rabbitmq) echo "$PORT_rabbitmq $PORT_rabbitmq_dist" ;;
	kafka) echo "$PORT_kafka $PORT_kafka_ctl" ;;
	cassandra) echo "$PORT_cassandra $PORT_cassandra_storage" ;;
	mongodb) echo "$PORT_mongodb $PORT_mongodb_debug" ;;
	prometheus) echo "$PORT_prometheus" ;;
	otlp) echo "$PORT_otlp $PORT_otlp_grpc $PORT_otlp_query $PORT_otlp_query_grpc $PORT_otlp_health $PORT_otlp_metrics" ;;
	oidc) echo "$PORT_oidc" ;;
	keycloak) echo "$PORT_keycloak $PORT_keycloak_mgmt" ;;
	s3) echo "$PORT_s3" ;;
	gcs) echo "$PORT_gcs" ;;
	azblob) echo "$PORT_azblob" ;;
	esac
}

match_re() {
	case $1 in
	postgres | postgres2 | postgres3) echo "(^|/)postgres .*-D $DATA/$1/data" ;;
	epmd) echo "epmd .*-port $PORT_epmd" ;;
	rabbitmq) echo "rabbitmq-server" ;;
	kafka) echo "(^|/)java .*kafka\.Kafka $DATA/kafka/server\.properties" ;;
	cassandra) echo "(^|/)java .*-Dcassandra\.config=file://$DATA/cassandra/cassandra\.yaml .*org\.apache\.cassandra\.service\.CassandraDaemon" ;;
	mongodb) echo "ferretdb[^ ]* .*--listen-addr=$HOST:$PORT_mongodb" ;;
	prometheus) echo "prometheus .*--config\.file=$DATA/prometheus/prometheus\.yml" ;;
	otlp) echo "jaeger[^ ]* --config=$DATA/otlp/config\.yaml" ;;
	oidc) echo "oidcprovider .*-addr $HOST:$PORT_oidc" ;;
	# kc.sh runs java as its child, or execs it after a re-augmentation
	keycloak) echo "(kc\\.sh|QuarkusEntryPoint) start-dev .*--http-port=$PORT_keycloak( |$)" ;;
	s3) echo "moto_server .*-p $PORT_s3" ;;
	gcs) echo "fake-gcs-server[^ ]* .*-port $PORT_gcs" ;;
	azblob) echo "azurite-blob .*--blobPort $PORT_azblob" ;;
	esac
}

timeout_for() {
	case $1 in
	cassandra) echo "${GREY_CASSANDRA_TIMEOUT:-240}" ;;
	rabbitmq | kafka) echo 120 ;;
	keycloak) echo "${GREY_KEYCLOAK_TIMEOUT:-240}" ;;
	*) echo 60 ;;
	esac
}

probe() {
	case $1 in
	postgres | postgres2 | postgres3) local p="PORT_$1"; pg_bin pg_isready -q -h "$HOST" -p "${!p}" -t 2 ;;
	epmd) tcp_open "$PORT_epmd" ;;
	rabbitmq) tcp_open "$PORT_rabbitmq" ;;
	kafka) tcp_open "$PORT_kafka" && kafka_probe ;;
	cassandra) tcp_open "$PORT_cassandra" && cassandra_probe ;;
	mongodb) tcp_open "$PORT_mongodb" ;;
	prometheus) http_ok "http://$HOST:$PORT_prometheus/-/ready" ;;
	otlp) http_ok "http://$HOST:$PORT_otlp_query/api/services" && tcp_open "$PORT_otlp" && tcp_open "$PORT_otlp_grpc" ;;
	oidc) http_ok "http://$HOST:$PORT_oidc/.well-known/openid-configuration" ;;
	keycloak) http_ok "http://$HOST:$PORT_keycloak/realms/grey/.well-known/openid-configuration" ;;
	s3) http_any "http://$HOST:$PORT_s3/" ;;
	gcs) http_ok "http://$HOST:$PORT_gcs/storage/v1/b" ;;
	azblob) http_any "http://$HOST:$PORT_azblob/devstoreaccount1?comp=list" ;;
	pytorch | tensorflow | kserve) py_probe "$1" ;;
	esac
}

# Importing tensorflow takes seconds; remember a success for this run.
declare -A PY_OK=()
py_probe() {
	[[ -n ${PY_OK[$1]:-} ]] && return 0
	case $1 in
	pytorch) "$(torch_python)" -c 'import torch' >/dev/null 2>&1 ;;
	tensorflow) TF_CPP_MIN_LOG_LEVEL=3 "$CACHE/venv/bin/python" -c 'import tensorflow' >/dev/null 2>&1 ;;
	kserve) "$CACHE/kserve-venv/bin/python" -c 'import kserve' >/dev/null 2>&1 ;;
	esac || return 1
	PY_OK[$1]=1
}

# Kafka answers on its port before the KRaft controller has elected itself;
# wait until the broker log says it is started.
kafka_probe() { grep -q "Kafka Server started\|\[KafkaRaftServer nodeId=1\] Kafka Server started" "$(logfile kafka)" 2>/dev/null; }

# Cassandra opens its CQL port before it has created the default superuser
# a password login needs. The role is made once per data directory: the log
# of the start that made it says so, and later starts find it on disk (the
# roles table is flushed at shutdown and after a commit log replay, both
# before the CQL port opens). The marker remembers it.
cassandra_probe() {
	local d marker; d=$(svc_dir cassandra); marker=$d/superuser-created
	[[ -e $marker ]] && return 0
	# no logins, or a node joining another ring (it finds the role there,
	# not on its own disk)
	[[ $CASSANDRA_AUTH == none || $CASSANDRA_SEEDS != "$HOST:$PORT_cassandra_storage" ]] && return 0
	if grep -q "Created default superuser role" "$(logfile cassandra)" 2>/dev/null ||
		compgen -G "$d/data/system_auth/roles-*/*-Data.db" >/dev/null; then
		touch "$marker"
	else
		return 1
	fi
}

# ---------------------------------------------------------- installation ---

PG_BINDIR=""
pg_bindir() {
	if [[ -z $PG_BINDIR ]]; then
		local d
		for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
			[[ -x $d/postgres ]] && { PG_BINDIR=$d; break; }
		done
	fi
	echo "$PG_BINDIR"
}
pg_bin() { local b; b=$(pg_bindir); [[ -n $b ]] || return 1; "$b/$1" "${@:2}"; }
torch_python() { echo "${GREY_TORCH_PYTHON:-/usr/bin/python3}"; }

# apt_install PKG...: installs the missing ones. Serialised by a lock, since
# parallel install jobs may each need a package and dpkg has a single lock;
# `apt-get update` runs at most once an hour.
apt_install() {
	mkdir -p "$CACHE"
	(
		flock 8
		apt_install_locked "$@"
	) 8>"$CACHE/.apt.lock"
}
apt_install_locked() {
	local missing=() p
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	((${#missing[@]})) || return 0
	command -v apt-get >/dev/null || { say "apt-get not found; install ${missing[*]} by hand"; return 1; }
	if [[ -z $(find "$CACHE/.apt-updated" -mmin -60 2>/dev/null) ]]; then
		as_root apt-get update -qq || return 1
		touch "$CACHE/.apt-updated"
	fi
	# policy-rc.d keeps Debian from starting the system-wide rabbitmq/prometheus.
	local prc=/usr/sbin/policy-rc.d made_prc=""
	if is_root && [[ ! -e $prc ]]; then printf '#!/bin/sh\nexit 101\n' >"$prc" && chmod +x "$prc" && made_prc=1; fi
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
	local rc=$?
	[[ -n $made_prc ]] && rm -f "$prc"
	return $rc
}

apt_pkgs() { # apt packages a service needs
	case $1 in
	postgres | postgres2 | postgres3 | mongodb) echo postgresql-15 ;;
	epmd) echo erlang-base ;;
	rabbitmq) echo rabbitmq-server ;;
	kafka | cassandra | keycloak) have_cmd java && have_cmd mvn || echo "openjdk-17-jre-headless maven" ;;
	prometheus) echo prometheus ;;
	# Debian's torch links libblas.so.3, the reference BLAS (a plain loop)
	# unless an optimised one is installed: libopenblas0-pthread registers
	# itself as the higher-priority alternative for libblas.so.3 and
	# liblapack.so.3, so batched inference pays (docs/INFERENCE.md, "BLAS").
	pytorch) [[ $(torch_python) == /usr/bin/python3 ]] && echo python3-torch libopenblas0-pthread ;;
	azblob) have_cmd node && have_cmd npm || echo "nodejs npm" ;;
	esac
}
have_cmd() { command -v "$1" >/dev/null; }

mark_done() { date -u +%FT%TZ >"$1/.grey-installed"; }
is_done() { [[ -f $1/.grey-installed ]]; }
# half_installed DIR: exists but never completed; wipe it so we start clean.
reset_half_installed() {
	if [[ -d $1 ]] && ! is_done "$1"; then
		say "$1 is half-installed (no completion marker); removing it and installing again"
		rm -rf "$1"
	fi
}

installed() {
	case $1 in
	postgres | postgres2 | postgres3) [[ -n $(pg_bindir) ]] ;;
	epmd) have_cmd epmd || compgen -G '/usr/lib/erlang/erts-*/bin/epmd' >/dev/null ;;
	rabbitmq) [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] ;;
	kafka) have_cmd java && is_done "$CACHE/kafka-$KAFKA_VERSION" && [[ -x $CACHE/kafka-$KAFKA_VERSION/bin/kafka-console-consumer.sh ]] ;;
	cassandra) have_cmd java && is_done "$CACHE/cassandra-$CASSANDRA_VERSION" ;;
	mongodb) [[ -n $(pg_bindir) && -x $CACHE/bin/ferretdb-$FERRETDB_VERSION ]] ;;
	prometheus) have_cmd prometheus && have_cmd promtool ;;
	otlp) [[ -x $CACHE/bin/jaeger-$JAEGER_VERSION ]] ;;
	oidc) oidc_fresh ;;
	keycloak) [[ -x $(keycloak_java_home)/bin/java ]] && is_done "$CACHE/keycloak-$KEYCLOAK_VERSION" ;;
	s3) [[ -x $CACHE/venv/bin/moto_server ]] && is_done "$CACHE/venv" ;;
	gcs) [[ -x $CACHE/bin/fake-gcs-server-$FAKEGCS_VERSION ]] ;;
	azblob) have_cmd node && is_done "$CACHE/azurite-$AZURITE_VERSION" ;;
	pytorch) probe pytorch && { [[ $(torch_python) != /usr/bin/python3 ]] || dpkg -s libopenblas0-pthread >/dev/null 2>&1; } ;;
	tensorflow) is_done "$CACHE/venv" && [[ -x $CACHE/venv/bin/python ]] ;;
	kserve) is_done "$CACHE/kserve-venv" && [[ -x $CACHE/kserve-venv/bin/python ]] ;;
	esac
}

# Directory with a completion marker, for services installed into the cache.
install_dir() {
	case $1 in
	kafka) echo "$CACHE/kafka-$KAFKA_VERSION" ;;
	cassandra) echo "$CACHE/cassandra-$CASSANDRA_VERSION" ;;
	keycloak) echo "$CACHE/keycloak-$KEYCLOAK_VERSION" ;;
	s3 | tensorflow) echo "$CACHE/venv" ;;
	kserve) echo "$CACHE/kserve-venv" ;;
	azblob) echo "$CACHE/azurite-$AZURITE_VERSION" ;;
	esac
}

# Install steps that may run in parallel with each other (no shared lock).
install() {
	local svc=$1
	case $svc in
	postgres | postgres2 | postgres3 | epmd | rabbitmq | prometheus | pytorch) apt_install $(apt_pkgs "$svc") ;;
	kafka) apt_install_java && install_kafka ;;
	cassandra) apt_install_java && install_cassandra ;;
	keycloak) apt_install_java && install_keycloak ;;
	mongodb) apt_install postgresql-15 && install_go_fork ferretdb ;;
	otlp) install_go_tool jaeger github.com/jaegertracing/jaeger "$JAEGER_VERSION" cmd/jaeger ;;
	gcs) install_go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKEGCS_VERSION" . ;;
	oidc) build_oidc ;;
	s3 | tensorflow) install_venv ;;
	kserve) install_kserve_venv ;;
	azblob) install_azurite ;;
	esac
}
apt_install_java() { have_cmd java && have_cmd mvn || apt_install openjdk-17-jre-headless maven; }

# Maven resolves a generated pom's runtime classpath into DIR/lib.
mvn_resolve() { # dir deps-xml
	local dir=$1 deps=$2
	mkdir -p "$dir"
	cat >"$dir/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>grey.services</groupId><artifactId>runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
$deps
  </dependencies>
</project>
EOF
	(cd "$dir" && mvn -B -q -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/lib")
}

install_kafka() {
	local d=$CACHE/kafka-$KAFKA_VERSION
	reset_half_installed "$d"
	is_done "$d" && [[ -x $d/bin/kafka-console-consumer.sh ]] && return 0
	rm -f "$d/.grey-installed" # an install from before the console tools: add them
	mvn_resolve "$d" "    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>" || return 1
	ls "$d"/lib/kafka_2.13-"$KAFKA_VERSION".jar "$d"/lib/kafka-tools-"$KAFKA_VERSION".jar >/dev/null || return 1
	# The console tools of the Kafka distribution, for the docs' examples
	# and the tests that run them (the Maven jars ship no bin/ scripts).
	mkdir -p "$d/bin"
	local tool
	for tool in kafka-console-producer:org.apache.kafka.tools.ConsoleProducer kafka-console-consumer:org.apache.kafka.tools.consumer.ConsoleConsumer; do
		printf '#!/bin/sh\n# %s.sh of the Kafka %s distribution, over the Maven jars.\nexec java -Xmx256m -cp "%s/lib/*" %s "$@"\n' \
			"${tool%%:*}" "$KAFKA_VERSION" "$d" "${tool#*:}" >"$d/bin/${tool%%:*}.sh"
		chmod +x "$d/bin/${tool%%:*}.sh"
	done
	mark_done "$d"
}

install_cassandra() {
	local d=$CACHE/cassandra-$CASSANDRA_VERSION
	reset_half_installed "$d"
	is_done "$d" && return 0
	mvn_resolve "$d" "    <dependency><groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId><version>$CASSANDRA_VERSION</version></dependency>" || return 1
	ls "$d"/lib/cassandra-all-"$CASSANDRA_VERSION".jar "$d"/lib/jamm-*.jar >/dev/null || return 1
	mark_done "$d"
}

# Keycloak: the keycloak-quarkus-dist zip from Maven Central, unpacked into
# DIR/dist. Each checkout runs a hard-linked copy of it (prepare_keycloak),
# since Keycloak reads its realm imports from, and re-augments into, its own
# home directory.
install_keycloak() {
	local d=$CACHE/keycloak-$KEYCLOAK_VERSION
	reset_half_installed "$d"
	is_done "$d" && return 0
	[[ -x $(keycloak_java_home)/bin/java ]] || { say "keycloak: needs Java 21+; set GREY_KEYCLOAK_JAVA_HOME (tried $(keycloak_java_home))"; return 1; }
	mvn_resolve "$d" "    <dependency><groupId>org.keycloak</groupId><artifactId>keycloak-quarkus-dist</artifactId><version>$KEYCLOAK_VERSION</version><type>zip</type></dependency>" || return 1
	local zip=$d/lib/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip
	[[ -f $zip ]] || { say "keycloak: $zip missing after mvn"; return 1; }
	rm -rf "$d/dist.tmp" && mkdir -p "$d/dist.tmp" && unzip -q "$zip" -d "$d/dist.tmp" || return 1
	rm -rf "$d/dist" && mv "$d/dist.tmp/keycloak-$KEYCLOAK_VERSION" "$d/dist" && rm -rf "$d/dist.tmp" "$zip"
	[[ -x $d/dist/bin/kc.sh ]] || return 1
	mark_done "$d"
}
# The JDK Keycloak runs on: GREY_KEYCLOAK_JAVA_HOME, else the first JDK 21+
# found under /usr/lib/jvm.
keycloak_java_home() {
	local j
	if [[ -x $KEYCLOAK_JAVA_HOME/bin/java ]]; then echo "$KEYCLOAK_JAVA_HOME"; return; fi
	for j in /usr/lib/jvm/*; do
		[[ -x $j/bin/java && $("$j/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p') -ge 21 ]] 2>/dev/null && { echo "$j"; return; }
	done
	echo "$KEYCLOAK_JAVA_HOME"
}

# Build a Go program from the module proxy inside a small tool module
# (go get -tool), which also works for modules with replace directives in
# their own go.mod being ignored. Result: $CACHE/bin/NAME-VERSION.
install_go_tool() { # name module version subpkg
	local name=$1 mod=$2 ver=$3 sub=$4 out=$CACHE/bin/$1-$3
	[[ -x $out ]] && return 0
	have_cmd go || { say "go is not installed"; return 1; }
	local d=$CACHE/gotools/$name-$ver pkg=$mod
	[[ $sub != . ]] && pkg=$mod/$sub
	mkdir -p "$d" "$CACHE/bin"
	(cd "$d" && { [[ -f go.mod ]] || go mod init "grey.local/tool-$name" >/dev/null 2>&1; } &&
		GOFLAGS=-mod=mod go get -tool "$pkg@$ver" &&
		nice go build -trimpath -o "$out.tmp" "$pkg" && mv "$out.tmp" "$out")
}

# FerretDB's main package panics unless build/version/version.txt is filled in
# (it is generated by their release tooling and absent from the module zip),
# so build from a writable copy of the module with that file written.
install_go_fork() { # ferretdb
	local ver=$FERRETDB_VERSION out=$CACHE/bin/ferretdb-$FERRETDB_VERSION
	[[ -x $out ]] && return 0
	have_cmd go || { say "go is not installed"; return 1; }
	local src=$CACHE/src/ferretdb-$ver dir
	dir=$(GOFLAGS='' go mod download -json "github.com/FerretDB/FerretDB@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir ]] || { say "go mod download github.com/FerretDB/FerretDB@$ver failed"; return 1; }
	rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -r "$dir" "$src" && chmod -R u+w "$src" || return 1
	echo "$ver" >"$src/build/version/version.txt"
	mkdir -p "$CACHE/bin"
	(cd "$src" && GOFLAGS=-mod=mod nice go build -trimpath -o "$out.tmp" ./cmd/ferretdb && mv "$out.tmp" "$out")
}

oidc_bin() { echo "$DATA/bin/oidcprovider"; }
oidc_fresh() { # binary newer than its sources?
	local b; b=$(oidc_bin)
	[[ -x $b ]] || return 1
	[[ -z $(find "$ROOT/internal/testsvc/oidcprovider" "$ROOT/go.mod" "$ROOT/go.sum" -newer "$b" -print -quit 2>/dev/null) ]]
}
build_oidc() {
	oidc_fresh && return 0
	mkdir -p "$DATA/bin"
	(cd "$ROOT" && go build -o "$(oidc_bin).tmp" ./internal/testsvc/oidcprovider && mv "$(oidc_bin).tmp" "$(oidc_bin)")
}

# One venv for moto (S3), tensorflow-cpu and pytest.
install_venv() {
	local v=$CACHE/venv py=${GREY_PYTHON:-python3}
	[[ -d $v && ! -f $v/.grey-installed ]] && [[ ! -x $v/bin/python ]] && rm -rf "$v"
	is_done "$v" && return 0
	mkdir -p "$CACHE"
	(
		flock 9
		is_done "$v" && exit 0
		[[ -x $v/bin/python ]] || "$py" -m venv "$v" || exit 1
		"$v/bin/pip" install -q --disable-pip-version-check "$MOTO_SPEC" "$TF_SPEC" "$PYTEST_SPEC" || exit 1
		mark_done "$v"
	) 9>"$CACHE/.venv.lock"
}

# KServe's model server for the oip runtime's tests (ai/oipruntime starts it
# itself, with a model of the test's, from this venv's python).
install_kserve_venv() {
	local v=$CACHE/kserve-venv py=${GREY_PYTHON:-python3}
	[[ -d $v && ! -f $v/.grey-installed ]] && [[ ! -x $v/bin/python ]] && rm -rf "$v"
	is_done "$v" && return 0
	mkdir -p "$CACHE"
	(
		flock 9
		is_done "$v" && exit 0
		[[ -x $v/bin/python ]] || "$py" -m venv "$v" || exit 1
		"$v/bin/pip" install -q --disable-pip-version-check "$KSERVE_SPEC" || exit 1
		mark_done "$v"
	) 9>"$CACHE/.kserve-venv.lock"
}

install_azurite() {
	local d=$CACHE/azurite-$AZURITE_VERSION
	have_cmd npm || apt_install nodejs npm || return 1
	reset_half_installed "$d"
	is_done "$d" && return 0
	mkdir -p "$d"
	(cd "$d" && npm install --silent --no-audit --no-fund --prefix "$d" "azurite@$AZURITE_VERSION") || return 1
	[[ -x $d/node_modules/.bin/azurite-blob ]] || return 1
	mark_done "$d"
}

# ------------------------------------------------ configuration & launch ---

prepare() {
	local svc=$1 d
	d=$(svc_dir "$svc")
	mkdir -p "$d" "$DATA/run"
	case $svc in
	postgres | postgres2 | postgres3) prepare_postgres "$svc" ;;
	epmd) : ;;
	rabbitmq)
		mkdir -p "$d/home" "$d/mnesia" "$d/log"
		cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.1 = $HOST:$PORT_rabbitmq
loopback_users.guest = true
log.file.level = info
log.console = false
EOF
		echo '[].' >"$d/enabled_plugins"
		;;
	kafka) prepare_kafka ;;
	cassandra) prepare_cassandra ;;
	mongodb) : ;;
	prometheus)
		mkdir -p "$d/data"
		cat >"$d/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['$HOST:$PORT_prometheus']
EOF
		promtool check config "$d/prometheus.yml" >"$d/promtool.log" 2>&1 || { cat "$d/promtool.log" >&2; return 1; }
		;;
	otlp) prepare_jaeger ;;
	keycloak) prepare_keycloak ;;
	gcs) mkdir -p "$d/data" ;;
	azblob) mkdir -p "$d/data" ;;
	esac
}

# Service runs as: root -> the 'postgres' system user (PostgreSQL refuses root).
pg_user() { if is_root; then echo postgres; else id -un; fi; }
as_pg_user() {
	if is_root; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi
}

prepare_postgres() {
	local svc=$1 d
	d=$(svc_dir "$svc")
	mkdir -p "$d/sock"
	if is_root; then
		id postgres >/dev/null 2>&1 || { say "user 'postgres' is missing (install postgresql-15)"; return 1; }
		chown postgres:postgres "$d" "$d/sock"
		# the postgres user must be able to reach the data dir
		local p=$d
		# (checked as that user: root passes every -x test itself)
		while [[ $p != / ]]; do p=$(dirname "$p"); as_pg_user test -x "$p" || chmod o+x "$p"; done
	fi
	if [[ -d $d/data && ! -f $d/data/PG_VERSION ]]; then
		say "$svc: $d/data is half-initialised (no PG_VERSION); removing it and running initdb again"
		rm -rf "$d/data"
	fi
	if [[ ! -f $d/data/PG_VERSION ]]; then
		as_pg_user "$(pg_bindir)/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$d/initdb.log" 2>&1 ||
			as_pg_user "$(pg_bindir)/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --locale=C >"$d/initdb.log" 2>&1 ||
			{ say "$svc: initdb failed"; tail -n 20 "$d/initdb.log" >&2; return 1; }
	fi
	# stale postmaster.pid left by a crash: postgres itself refuses to start
	# only when that pid is alive, so nothing to do here.
	return 0
}

prepare_kafka() {
	local d; d=$(svc_dir kafka)
	mkdir -p "$d/data"
	cat >"$d/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$PORT_kafka_ctl
listeners=PLAINTEXT://$HOST:$PORT_kafka,CONTROLLER://$HOST:$PORT_kafka_ctl
advertised.listeners=PLAINTEXT://$HOST:$PORT_kafka
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=24
EOF
	cat >"$d/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
EOF
	if [[ ! -f $d/data/meta.properties ]]; then
		local cid
		cid=$(java -cp "$CACHE/kafka-$KAFKA_VERSION/lib/*" -Dlog4j2.configurationFile="$d/log4j2.properties" kafka.tools.StorageTool random-uuid 2>>"$d/format.log" | tail -1)
		[[ -n $cid ]] || { say "kafka: could not make a cluster id"; tail -n 20 "$d/format.log" >&2; return 1; }
		java -cp "$CACHE/kafka-$KAFKA_VERSION/lib/*" -Dlog4j2.configurationFile="$d/log4j2.properties" \
			kafka.tools.StorageTool format -t "$cid" -c "$d/server.properties" >>"$d/format.log" 2>&1 ||
			{ say "kafka: storage format failed"; tail -n 20 "$d/format.log" >&2; return 1; }
	fi
}

# Keycloak's home for this checkout: hard links into the cached dist (a real
# copy of lib/quarkus, which start-dev rewrites), the realm to import, and an
# in-memory database, so that every start begins from the realm file.
prepare_keycloak() {
	local d home src
	d=$(svc_dir keycloak)
	home=$d/home
	src=$CACHE/keycloak-$KEYCLOAK_VERSION/dist
	if [[ $(cat "$home/.grey-version" 2>/dev/null) != "$KEYCLOAK_VERSION" ]]; then
		rm -rf "$home"
		cp -al "$src" "$home" 2>/dev/null || { rm -rf "$home"; cp -a "$src" "$home"; } || return 1
		rm -rf "$home/lib/quarkus" && cp -a "$src/lib/quarkus" "$home/lib/quarkus" || return 1
		echo "$KEYCLOAK_VERSION" >"$home/.grey-version"
	fi
	rm -rf "$home/data"
	mkdir -p "$home/data/import"
	cp "$ROOT/scripts/keycloak/grey-realm.json" "$home/data/import/grey-realm.json"
}

prepare_cassandra() {
	local d; d=$(svc_dir cassandra)
	mkdir -p "$d/data" "$d/commitlog" "$d/saved_caches" "$d/hints" "$d/cdc_raw" "$d/triggers" "$d/logs"
	cat >"$d/cassandra.yaml" <<EOF
cluster_name: grey-test
num_tokens: 16
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories:
  - $d/data
commitlog_directory: $d/commitlog
saved_caches_directory: $d/saved_caches
hints_directory: $d/hints
cdc_raw_directory: $d/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$CASSANDRA_SEEDS"
listen_address: $HOST
rpc_address: $HOST
storage_port: $PORT_cassandra_storage
native_transport_port: $PORT_cassandra
start_native_transport: true
endpoint_snitch: SimpleSnitch
authenticator: $([[ $CASSANDRA_AUTH == none ]] && echo AllowAllAuthenticator || echo PasswordAuthenticator)
authorizer: $([[ $CASSANDRA_AUTH == none ]] && echo AllowAllAuthorizer || echo CassandraAuthorizer)
role_manager: CassandraRoleManager
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_materialized_view_writes: 8
memtable_allocation_type: heap_buffers
disk_optimization_strategy: ssd
key_cache_size: 8MiB
counter_cache_size: 4MiB
auto_snapshot: false
file_cache_size: 32MiB
networking_cache_size: 16MiB
index_summary_capacity: 8MiB
EOF
	cat >"$d/logback.xml" <<'EOF'
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.thinkaurelius.thrift" level="ERROR"/>
</configuration>
EOF
}

prepare_jaeger() {
	local d; d=$(svc_dir otlp)
	cat >"$d/config.yaml" <<EOF
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: $HOST
                port: $PORT_otlp_metrics
    logs:
      level: info

extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: $HOST:$PORT_otlp_health
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: $HOST:$PORT_otlp_query
    grpc:
      endpoint: $HOST:$PORT_otlp_query_grpc
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: $HOST:$PORT_otlp_grpc
      http:
        endpoint: $HOST:$PORT_otlp

processors:
  batch:
    timeout: 200ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
EOF
}

JAVA_BIN() { echo "${JAVA_HOME:+$JAVA_HOME/bin/}java"; }

# launch_cmd SVC: fills the array CMD with the program and its arguments.
launch_cmd() {
	local svc=$1 d
	d=$(svc_dir "$svc")
	CMD=()
	case $svc in
	postgres | postgres2 | postgres3)
		local p="PORT_$svc"
		CMD=("$(pg_bindir)/postgres" -D "$d/data" -p "${!p}" -k "$d/sock"
			-c listen_addresses="$HOST" -c max_connections=100 -c shared_buffers=32MB
			-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_prepared_transactions=20)
		is_root && CMD=(setpriv --reuid=postgres --regid=postgres --init-groups -- "${CMD[@]}")
		;;
	epmd)
		local e; e=$(command -v epmd || ls /usr/lib/erlang/erts-*/bin/epmd | head -1)
		CMD=("$e" -port "$PORT_epmd" -address "$HOST")
		;;
	rabbitmq) CMD=(/usr/lib/rabbitmq/bin/rabbitmq-server) ;;
	kafka)
		CMD=("$(JAVA_BIN)" -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
			-Dlog4j2.configurationFile="$d/log4j2.properties" -Dkafka.logs.dir="$d"
			-cp "$CACHE/kafka-$KAFKA_VERSION/lib/*" kafka.Kafka "$d/server.properties")
		;;
	cassandra)
		local lib=$CACHE/cassandra-$CASSANDRA_VERSION/lib jamm
		jamm=$(ls "$lib"/jamm-*.jar | head -1)
		CMD=("$(JAVA_BIN)" -Xms256m -Xmx512m -Xss512k -XX:MaxDirectMemorySize=256m -XX:ReservedCodeCacheSize=96m
			-XX:+UseG1GC -XX:MaxGCPauseMillis=300 -XX:+ExitOnOutOfMemoryError
			-XX:+ParallelRefProcEnabled -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$d/logs"
			-XX:+UseStringDeduplication
			-Djdk.attach.allowAttachSelf=true
			--add-exports java.base/jdk.internal.misc=ALL-UNNAMED
			--add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
			--add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
			--add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
			--add-exports java.sql/java.sql=ALL-UNNAMED
			--add-exports java.base/java.lang.ref=ALL-UNNAMED
			--add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
			--add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
			--add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
			--add-opens java.base/java.lang.module=ALL-UNNAMED
			--add-opens java.base/jdk.internal.loader=ALL-UNNAMED
			--add-opens java.base/jdk.internal.ref=ALL-UNNAMED
			--add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
			--add-opens java.base/jdk.internal.math=ALL-UNNAMED
			--add-opens java.base/jdk.internal.module=ALL-UNNAMED
			--add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
			--add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
			--add-opens java.base/sun.nio.ch=ALL-UNNAMED
			--add-opens java.base/java.io=ALL-UNNAMED
			--add-opens java.base/java.lang.reflect=ALL-UNNAMED
			--add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
			--add-opens java.base/java.lang=ALL-UNNAMED
			--add-opens java.base/java.util=ALL-UNNAMED
			-Dio.netty.tryReflectionSetAccessible=true
			-javaagent:"$jamm"
			-Dcassandra-foreground=yes
			-Dcassandra.config="file://$d/cassandra.yaml"
			-Dcassandra.storagedir="$d"
			-Dcassandra.logdir="$d/logs"
			-Dcassandra.triggers_dir="$d/triggers"
			-Dlogback.configurationFile="$d/logback.xml"
			-Dcassandra.skip_wait_for_gossip_to_settle=0
			-Dcassandra.superuser_setup_delay_ms=0
			-Dcassandra.ring_delay_ms=1000
			-cp "$lib/*" org.apache.cassandra.service.CassandraDaemon)
		;;
	mongodb)
		CMD=("$CACHE/bin/ferretdb-$FERRETDB_VERSION" --handler=postgresql
			"--postgresql-url=postgres://postgres@$HOST:$PORT_postgres/ferretdb?sslmode=disable"
			"--listen-addr=$HOST:$PORT_mongodb" "--debug-addr=$HOST:$PORT_mongodb_debug"
			"--state-dir=$d" --telemetry=disable --log-level=info)
		;;
	prometheus)
		CMD=(prometheus "--config.file=$d/prometheus.yml" "--storage.tsdb.path=$d/data"
			"--web.listen-address=$HOST:$PORT_prometheus" --storage.tsdb.retention.time=1d)
		;;
	otlp) CMD=("$CACHE/bin/jaeger-$JAEGER_VERSION" "--config=$d/config.yaml") ;;
	keycloak)
		CMD=("$d/home/bin/kc.sh" start-dev "--http-host=$HOST" "--http-port=$PORT_keycloak"
			"--http-management-port=$PORT_keycloak_mgmt" --db=dev-mem --cache=local --import-realm)
		;;
	oidc) CMD=("$(oidc_bin)" -addr "$HOST:$PORT_oidc" -issuer "http://$HOST:$PORT_oidc") ;;
	s3) CMD=("$CACHE/venv/bin/moto_server" -H "$HOST" -p "$PORT_s3") ;;
	gcs)
		CMD=("$CACHE/bin/fake-gcs-server-$FAKEGCS_VERSION" -scheme http -host "$HOST" -port "$PORT_gcs"
			-backend filesystem -filesystem-root "$d/data" -public-host "$HOST:$PORT_gcs"
			-external-url "http://$HOST:$PORT_gcs" -log-level warn)
		;;
	azblob)
		CMD=(node "$CACHE/azurite-$AZURITE_VERSION/node_modules/.bin/azurite-blob" --blobHost "$HOST"
			--blobPort "$PORT_azblob" --location "$d/data" --debug "$d/debug.log" --skipApiVersionCheck --loose)
		;;
	esac
}

launch_env() { # extra environment for a service
	local svc=$1 d
	d=$(svc_dir "$svc")
	case $svc in
	rabbitmq)
		echo "HOME=$d/home"
		echo "RABBITMQ_HOME=/usr/lib/rabbitmq"
		echo "RABBITMQ_NODENAME=grey@localhost"
		echo "RABBITMQ_NODE_IP_ADDRESS=$HOST"
		echo "RABBITMQ_NODE_PORT=$PORT_rabbitmq"
		echo "RABBITMQ_DIST_PORT=$PORT_rabbitmq_dist"
		echo "RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf"
		echo "RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins"
		echo "RABBITMQ_MNESIA_BASE=$d/mnesia"
		echo "RABBITMQ_LOG_BASE=$d/log"
		echo "RABBITMQ_PID_FILE=$d/beam.pid"
		echo "RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf"
		echo "RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config"
		echo "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=+S 1:1 +A 4"
		echo "ERL_EPMD_PORT=$PORT_epmd"
		echo "ERL_EPMD_ADDRESS=$HOST"
		;;
	epmd) echo "ERL_EPMD_ADDRESS=$HOST" ;;
	otlp) echo "GOMAXPROCS=2" ;;
	keycloak)
		echo "JAVA_HOME=$(keycloak_java_home)"
		echo "JAVA_OPTS_KC_HEAP=-Xms64m -Xmx512m -XX:MaxMetaspaceSize=256m"
		# C1 only: a test Keycloak starts sooner on few cores and needs no peak speed
		echo "JAVA_OPTS_APPEND=-XX:TieredStopAtLevel=1"
		# the master realm's admin (development only); the grey realm has its own
		echo "KC_BOOTSTRAP_ADMIN_USERNAME=admin"
		echo "KC_BOOTSTRAP_ADMIN_PASSWORD=admin"
		;;
	esac
}

# ------------------------------------------------------------- lifecycle ---

read_pid() { local f; f=$(pidfile "$1"); [[ -f $f ]] && head -1 "$f" | tr -dc '0-9'; }

# running SVC -> 0 if our pid file points at a live process we started.
running() {
	local pid; pid=$(read_pid "$1")
	[[ -n $pid ]] && pid_is_ours "$1" "$pid"
}

# Remove a pid file whose process is gone or is no longer ours, saying why.
clear_stale_pid() {
	local svc=$1 f pid rc
	f=$(pidfile "$svc")
	[[ -f $f ]] || return 0
	pid=$(read_pid "$svc")
	pid_is_ours "$svc" "$pid"
	rc=$?
	case $rc in
	0) return 0 ;;
	1) say "$svc: stale pid file $f (pid ${pid:-?} is not running); removing it" ;;
	2) say "$svc: stale pid file $f: pid $pid now runs '$(pid_cmdline "$pid" | cut -c1-120)', not $svc; leaving that process alone and removing the pid file" ;;
	3) say "$svc: stale pid file $f: pid $pid runs a similar command but was not started by this script for $DATA; leaving it alone and removing the pid file" ;;
	esac
	rm -f "$f"
}

start_one() { # launch without waiting; returns non-zero on immediate failure
	local svc=$1 d log p busy=()
	d=$(svc_dir "$svc")
	log=$(logfile "$svc")
	if [[ $(kind "$svc") == python ]]; then
		return 0
	fi
	clear_stale_pid "$svc"
	if running "$svc"; then
		say "$svc: already running (pid $(read_pid "$svc"))"
		return 0
	fi
	for p in $(ports "$svc"); do
		port_in_use "$p" && reap_orphan "$svc" "$(port_pid "$p")"
	done
	for p in $(ports "$svc"); do
		port_in_use "$p" && busy+=("$p $(port_owner "$p")")
	done
	if ((${#busy[@]})); then
		say "$svc: cannot start: port(s) already in use by a process this script did not start: ${busy[*]}"
		say "$svc: stop that process or set GREY_${svc^^}_PORT (see scripts/services.sh) and retry"
		return 1
	fi
	prepare "$svc" || { say "$svc: preparing config/data in $d failed"; return 1; }
	launch_cmd "$svc"
	[[ -x ${CMD[0]} ]] || command -v "${CMD[0]}" >/dev/null || { say "$svc: ${CMD[0]} not found (half-installed? run: $0 install $svc)"; return 1; }
	mkdir -p "$(dirname "$log")"
	# a fresh log per run (the previous one is kept as .1), so that probes
	# and error reports only see this run
	[[ -f $log ]] && mv -f "$log" "$log.1"
	echo "=== $(date -u +%FT%TZ) start: ${CMD[*]}" >"$log"
	local envs=() line
	while IFS= read -r line; do [[ -n $line ]] && envs+=("$line"); done < <(launch_env "$svc")
	(
		cd "$d" || exit 1
		exec env "GREY_SERVICE_ID=$DATA/$svc" "${envs[@]}" setsid "${CMD[@]}"
	) >>"$log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$(pidfile "$svc")"
	STARTED_AT[$svc]=$(now)
	return 0
}

declare -A STARTED_AT=()
wait_one() { # wait until SVC answers; on death or timeout show why
	local svc=$1 pid deadline t0
	if [[ $(kind "$svc") == python ]]; then
		if probe "$svc"; then return 0; fi
		say "$svc: $(url "$svc" | sed 's#file://##') cannot import ${svc/pytorch/torch}"
		return 1
	fi
	pid=$(read_pid "$svc")
	[[ -n $pid ]] || return 1
	t0=${STARTED_AT[$svc]:-$(now)}
	deadline=$(($(now) + $(timeout_for "$svc")))
	while true; do
		if probe "$svc"; then
			if ! pid_is_ours "$svc" "$pid"; then
				say "$svc: something answers on its port but our pid $pid is gone"
				show_log_tail "$svc"
				rm -f "$(pidfile "$svc")"
				return 1
			fi
			post_start "$svc" || return 1
			[[ -n ${STARTED_AT[$svc]:-} ]] && say "$svc: up at $(url "$svc") (pid $pid, $(($(now) - t0))s)"
			return 0
		fi
		if ! pid_is_ours "$svc" "$pid"; then
			local rc=""
			wait "$pid" 2>/dev/null
			rc=$?
			say "$svc: died on start (exit status $rc); see $(logfile "$svc")"
			show_log_tail "$svc" 30
			rm -f "$(pidfile "$svc")"
			return 1
		fi
		if (($(now) > deadline)); then
			say "$svc: did not answer within $(timeout_for "$svc")s; stopping it"
			show_log_tail "$svc" 30
			stop_one "$svc" >/dev/null
			return 1
		fi
		sleep 0.5
	done
}

post_start() {
	case $1 in
	postgres)
		# FerretDB keeps its data in database 'ferretdb'
		if ! pg_bin psql -h "$HOST" -p "$PORT_postgres" -U postgres -d postgres -Atqc "select 1 from pg_database where datname='ferretdb'" | grep -q 1; then
			pg_bin psql -h "$HOST" -p "$PORT_postgres" -U postgres -d postgres -qc "create database ferretdb" >/dev/null || return 1
		fi
		# FerretDB 1.x sends field names as bind parameters
		# (_jsonb->$1 @> $2): a generic plan cannot use an expression
		# index, so its connections plan every query with the values
		# (docs/ARCHIVE.md, "FerretDB indexes").
		pg_bin psql -h "$HOST" -p "$PORT_postgres" -U postgres -d postgres -qc \
			"alter database ferretdb set plan_cache_mode = force_custom_plan" >/dev/null || return 1
		;;
	esac
	return 0
}

stop_one() {
	local svc=$1 pid f sig=TERM i
	[[ $(kind "$svc") == python ]] && return 0
	f=$(pidfile "$svc")
	[[ -f $f ]] || { say "$svc: not started by this script (no pid file)"; return 0; }
	pid=$(read_pid "$svc")
	clear_stale_pid "$svc"
	[[ -f $f ]] || return 0
	case $svc in postgres*) sig=INT ;; esac # fast shutdown
	say "$svc: stopping pid $pid"
	kill -"$sig" "$pid" 2>/dev/null
	for ((i = 0; i < 120; i++)); do
		pid_is_ours "$svc" "$pid" || break
		sleep 0.25
	done
	if pid_is_ours "$svc" "$pid"; then
		say "$svc: pid $pid did not stop after 30s; sending KILL"
		kill -KILL "$pid" 2>/dev/null
		sleep 0.5
	fi
	# Children left in the session we created for it (setsid), e.g. beam under
	# the rabbitmq-server wrapper, belong to this service too.
	local left
	left=$(ps -o pid= -s "$pid" 2>/dev/null | tr -d ' ' | grep -vx "$pid")
	if [[ -n $left ]]; then
		sleep 2
		left=$(ps -o pid= -s "$pid" 2>/dev/null | tr -d ' ' | grep -vx "$pid")
		[[ -n $left ]] && { say "$svc: killing leftover processes of its session: $(echo $left)"; kill -KILL $left 2>/dev/null; }
	fi
	rm -f "$f"
}

# ------------------------------------------------------------ name lists ---

expand_names() { # NAME... -> validated list (all when empty)
	local n out=()
	if (($# == 0)); then
		for n in "${ALL_SERVICES[@]}"; do
			[[ " ${DEFAULT_EXCLUDED[*]} " == *" $n "* ]] || out+=("$n")
		done
	else
		for n in "$@"; do
			[[ " ${ALL_SERVICES[*]} " == *" $n "* ]] || die "unknown service '$n' (known: ${ALL_SERVICES[*]})"
			out+=("$n")
		done
	fi
	echo "${out[@]}"
}

with_deps() { # add dependencies before their dependants, no duplicates
	local seen=" " out=() n dep
	for n in "$@"; do
		for dep in $(deps "$n"); do
			[[ $seen == *" $dep "* ]] || { out+=("$dep"); seen+="$dep "; }
		done
		[[ $seen == *" $n "* ]] || { out+=("$n"); seen+="$n "; }
	done
	echo "${out[@]}"
}

# --------------------------------------------------------------- commands ---

cmd_install() { install_names $(with_deps $(expand_names "$@")); }

install_names() { # already expanded names, dependencies included
	local names="$*"
	mkdir -p "$DATA/install" "$CACHE"
	# Debian packages in one apt-get run, in the background alongside the
	# other installs (Go builds, Maven, pip, npm), which take longer.
	local pkgs=() n p apt_only=()
	local -A jobs=()
	local failed=0
	for n in $names; do
		installed "$n" && continue
		for p in $(apt_pkgs "$n"); do dpkg -s "$p" >/dev/null 2>&1 || pkgs+=("$p"); done
		case $n in postgres | postgres2 | postgres3 | epmd | rabbitmq | prometheus | pytorch) apt_only+=("$n") ;; esac
	done
	if ((${#pkgs[@]})); then
		say "installing Debian packages: $(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ' ')(log: $DATA/install/debian.log)"
		(
			t0=$(now)
			apt_install $(printf '%s\n' "${pkgs[@]}" | sort -u)
			rc=$?
			echo "=== install debian packages rc=$rc in $(($(now) - t0))s"
			exit $rc
		) >"$DATA/install/debian.log" 2>&1 &
		jobs[debian]=$!
	fi
	for n in $names; do
		installed "$n" && continue
		[[ " ${apt_only[*]-} " == *" $n "* ]] && continue
		local idir; idir=$(install_dir "$n")
		if [[ -n $idir && -d $idir && ! -f $idir/.grey-installed ]]; then
			say "$n: $idir is half-installed (no completion marker, e.g. an interrupted download); installing it again"
		fi
		say "installing $n (log: $DATA/install/$n.log)"
		(
			t0=$(now)
			install "$n" && installed "$n"
			rc=$?
			printf "\n=== install %s rc=%s in %ss\n" "$n" "$rc" "$(($(now) - t0))"
			exit $rc
		) >"$DATA/install/$n.log" 2>&1 &
		jobs[$n]=$!
	done
	for n in "${!jobs[@]}"; do
		if wait "${jobs[$n]}" && { [[ $n == debian ]] || installed "$n"; }; then
			say "$n: installed ($(tail -n 1 "$DATA/install/$n.log" | sed 's/^=== //'))"
		else
			say "$n: install FAILED; last lines of $DATA/install/$n.log:"
			tail -n 20 "$DATA/install/$n.log" | sed 's/^/    /' >&2
			failed=1
		fi
	done
	return $failed
}

cmd_up() {
	local t0 names n failed=() ok=()
	t0=$(now)
	names=$(with_deps $(expand_names "$@"))
	install_names $names
	# launch everything whose dependencies are up, then wait; dependants
	# (mongodb after postgres, rabbitmq after epmd) are launched once their
	# dependency answers.
	local pending=() dep ready
	for n in $names; do
		installed "$n" || { failed+=("$n"); say "$n: not installed; skipping"; continue; }
		pending+=("$n")
	done
	local -A state=() # launched | up | failed
	while ((${#pending[@]})); do
		local next=()
		for n in "${pending[@]}"; do
			ready=1
			for dep in $(deps "$n"); do
				case ${state[$dep]:-} in
				up) ;;
				failed) ready=0; state[$n]=failed; failed+=("$n"); say "$n: not started because $dep failed" ;;
				launched) wait_one "$dep" && state[$dep]=up || { state[$dep]=failed; failed+=("$dep"); }; [[ ${state[$dep]} == up ]] || { ready=0; state[$n]=failed; failed+=("$n"); say "$n: not started because $dep failed"; } ;;
				*) running "$dep" && probe "$dep" && state[$dep]=up || { ready=0; }
				esac
			done
			[[ ${state[$n]:-} == failed ]] && continue
			if ((ready)); then
				if start_one "$n"; then state[$n]=launched; else state[$n]=failed; failed+=("$n"); fi
			else
				next+=("$n")
			fi
		done
		if ((${#next[@]} == ${#pending[@]})); then
			for n in "${next[@]}"; do say "$n: dependencies not up: $(deps "$n")"; failed+=("$n"); done
			break
		fi
		pending=("${next[@]+"${next[@]}"}")
	done
	for n in $names; do
		[[ ${state[$n]:-} == launched ]] || continue
		if wait_one "$n"; then state[$n]=up; ok+=("$n"); else state[$n]=failed; failed+=("$n"); fi
	done
	for n in $names; do [[ ${state[$n]:-} == up && " ${ok[*]} " != *" $n "* ]] && ok+=("$n"); done
	say "up in $(($(now) - t0))s: ${ok[*]:-none}"
	if ((${#failed[@]})); then
		say "FAILED: $(printf '%s\n' "${failed[@]}" | sort -u | tr '\n' ' ')"
		return 1
	fi
	return 0
}

cmd_down() {
	local names n arr=()
	names=$(expand_names "$@")
	# internal dependencies go down with their dependant
	for n in $names; do
		arr=("$n" "${arr[@]+"${arr[@]}"}")
		[[ $n == rabbitmq ]] && arr=("${arr[@]}" epmd)
	done
	for n in "${arr[@]}"; do stop_one "$n"; done
}

cmd_status() {
	local n st pid
	for n in $(expand_names "$@"); do
		if [[ $(kind "$n") == python ]]; then
			probe "$n" && st=up || st=down
		elif running "$n"; then
			pid=$(read_pid "$n")
			if probe "$n"; then st="up (pid $pid)"; else st="down (pid $pid alive, not answering)"; fi
		elif [[ -f $(pidfile "$n") ]]; then
			st="down (stale pid file)"
		elif probe "$n"; then
			st="up (not started by this script)"
		else
			st=down
		fi
		printf '%-11s %-62s %s\n' "$n" "$(url "$n")" "$st"
	done
}

cmd_env() {
	local n var
	for n in $(expand_names "$@"); do
		var="GREY_TEST_${n^^}_URL"
		if probe "$n"; then
			echo "export $var='$(url "$n")'"
			local e
			while IFS= read -r e; do [[ -n $e ]] && echo "export ${e%%=*}='${e#*=}'"; done < <(extra_env "$n")
		else
			echo "# $n is down: $var not set"
		fi
	done
	echo "export GREY_SERVICES_PYTHON='$CACHE/venv/bin/python'"
}

# stats: resident memory of each running service (all processes of the
# session it was started in, e.g. beam under the rabbitmq-server wrapper).
cmd_stats() {
	local n pid kb total=0
	printf '%-11s %8s %10s\n' NAME PID RSS_MiB
	for n in $(with_deps $(expand_names "$@")); do
		[[ $(kind "$n") == python ]] && continue
		running "$n" || continue
		pid=$(read_pid "$n")
		kb=$(ps -o rss= -s "$pid" 2>/dev/null | awk '{s+=$1} END {print s+0}')
		total=$((total + kb))
		printf '%-11s %8s %10s\n' "$n" "$pid" "$(awk -v k="$kb" 'BEGIN {printf "%.1f", k/1024}')"
	done
	printf '%-11s %8s %10s\n' total - "$(awk -v k="$total" 'BEGIN {printf "%.1f", k/1024}')"
}

# install_axe: axe-core's axe.min.js in $CACHE/axe-core-<v>/ (npm pack, no
# node_modules), for the console's browser tests.
install_axe() {
	local d="$CACHE/axe-core-$AXE_VERSION"
	[[ -f $d/axe.min.js ]] && return 0
	have_cmd npm || apt_install nodejs npm || return 1
	mkdir -p "$d" &&
		(cd "$d" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null &&
			tar -xzf "axe-core-$AXE_VERSION.tgz" package/axe.min.js &&
			mv package/axe.min.js axe.min.js && rmdir package)
}

usage() {
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

main() {
	local cmd=${1:-}
	shift || true
	case $cmd in
	up) cmd_up "$@" ;;
	down | stop) cmd_down "$@" ;;
	status) cmd_status "$@" ;;
	env) cmd_env "$@" ;;
	install) cmd_install "$@" ;;
	tools)
		have_cmd wat2wasm || apt_install wabt
		have_cmd buildah || apt_install buildah
		have_cmd chromium || apt_install chromium
		install_axe
		;;
	list) echo "${ALL_SERVICES[@]}" ;;
	stats) cmd_stats "$@" ;;
	logs) [[ -n ${1:-} ]] || usage; show_log_tail "$1" "${2:-50}" ;;
	-h | --help | help | "") usage ;;
	*) say "unknown command '$cmd'"; usage ;;
	esac
}

main "$@"
