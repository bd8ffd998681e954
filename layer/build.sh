#!/usr/bin/env bash
# Builds the pg_dump Lambda layer: the PostgreSQL client programs (pg_dump, pg_restore, psql) of one major version,
# compiled for Amazon Linux 2023 (the OS of Lambda's nodejs22.x runtime) with the libraries they load, and the RDS
# CA bundle for sslmode=verify-full. The layer unpacks under /opt:
#   /opt/bin/{pg_dump,pg_restore,psql}   (KB_PG_BIN_DIR=/opt/bin)
#   /opt/lib/{libpq,libssl,libcrypto,liblz4,libzstd,libz}.so.*   (found through RUNPATH $ORIGIN/../lib)
#   /opt/lib/libstdbuf.so                 (coreutils; preloaded into pg_dump for 64 KiB writes, stdout-buffer.ts)
#   /opt/certs/rds-global-bundle.pem      (KB_PG_SSL_ROOT_CERT)
#   /opt/BUILD-INFO                       (versions and checksums of what went in)
#
# Usage:  layer/build.sh [--publish] [--region eu-west-1] [--plan]
#   SERVER_VERSION=17.2 the RDS server's version (SELECT version()): its major decides the layer's major
#   PG_MAJOR=17         or the major directly; 15 to 18. Must be >= the server's major (pg_dump refuses a newer
#                       server; pg_restore reads archives of its own major and older). Default: the server's major.
#   PG_VERSION=17.2     exact release; unset = the newest release of PG_MAJOR (recorded in BUILD-INFO).
#                       Set it for a reproducible build.
#   --plan              print what would be built (major, release, packages, configure flags) and stop: no Docker,
#                       no network
#   ARCH=arm64          arm64 (the stack's default) or x86_64
#   AL2023_IMAGE=public.ecr.aws/amazonlinux/amazonlinux:2023   pin a digest (image@sha256:...) to reproduce
#
# Needs Docker (with QEMU/binfmt for an ARCH other than the host's), or run on an Amazon Linux 2023 host of the
# target architecture with --here. It downloads the PostgreSQL source from ftp.postgresql.org (checked against its
# published SHA-256) and the RDS CA bundle from truststore.pki.rds.amazonaws.com.
# Output: layer/dist/postgresql-client-<version>-al2023-<arch>.zip; with --publish, also a new version of the layer
# keycloak-backup-postgresql-<major> (aws lambda publish-layer-version) and its ARN, for param pgLayerArn.
set -euo pipefail

# The majors this layer is built and documented for (docs/aws.md, "The pg_dump layer").
SUPPORTED_MAJORS="15 16 17 18"
# Build tools. bison and flex: since PostgreSQL 17 the source tarball no longer ships the generated parser and
# scanner files (gram.c, scan.c...), so configure needs them; for 15 and 16 they are unused but harmless.
BUILD_PACKAGES="gcc make tar bzip2 gzip findutils zip which binutils perl bison flex"
# Libraries: TLS (OpenSSL 3), lz4 and zstd for pg_dump --compress, zlib.
LIBRARY_PACKAGES="openssl-devel lz4-devel libzstd-devel zlib-devel"
CONFIGURE_FLAGS="--prefix=/opt --without-readline --without-icu --with-openssl --with-lz4 --with-zstd --with-zlib"

SERVER_VERSION="${SERVER_VERSION:-}"
PG_MAJOR="${PG_MAJOR:-}"
PG_VERSION="${PG_VERSION:-}"
ARCH="${ARCH:-arm64}"
AL2023_IMAGE="${AL2023_IMAGE:-public.ecr.aws/amazonlinux/amazonlinux:2023}"
RDS_CA_URL="https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIST="$HERE/dist"

mode=docker
publish=false
region="${AWS_REGION:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --here) mode=here ;;
    --inside) mode=inside ;;
    --publish) publish=true ;;
    --plan) mode=plan ;;
    --region) region="$2"; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

case "$ARCH" in
  arm64) platform=linux/arm64; uname_arch=aarch64 ;;
  x86_64) platform=linux/amd64; uname_arch=x86_64 ;;
  *) echo "ARCH must be arm64 or x86_64" >&2; exit 2 ;;
esac

# The layer's major: PG_MAJOR if set, else the server's major; refused when outside SUPPORTED_MAJORS or older than
# the server's (exit 2: a wrong setting).
choose_major() {
  local server_major=""
  if [ -n "$SERVER_VERSION" ]; then
    server_major="${SERVER_VERSION%%.*}"
    case "$server_major" in
      ''|*[!0-9]*) echo "SERVER_VERSION $SERVER_VERSION is not a PostgreSQL version (e.g. 17.2)" >&2; exit 2 ;;
    esac
  fi
  if [ -z "$PG_MAJOR" ]; then
    [ -n "$server_major" ] || { echo "set SERVER_VERSION (the server's version, e.g. 17.2) or PG_MAJOR" >&2; exit 2; }
    PG_MAJOR="$server_major"
  fi
  case " $SUPPORTED_MAJORS " in
    *" $PG_MAJOR "*) ;;
    *) echo "PG_MAJOR $PG_MAJOR is not supported: the layer is built for PostgreSQL $SUPPORTED_MAJORS" >&2; exit 2 ;;
  esac
  if [ -n "$server_major" ] && [ "$PG_MAJOR" -lt "$server_major" ]; then
    echo "PG_MAJOR $PG_MAJOR is older than the server's major $server_major: pg_dump $PG_MAJOR refuses to dump it" >&2
    exit 2
  fi
}

resolve_version() {
  # The plan looks nothing up: an unset release stays "the newest" until a build resolves it.
  if [ "$mode" = plan ] && [ -z "$PG_VERSION" ]; then PG_VERSION="$PG_MAJOR.(newest)"; return; fi
  if [ -z "$PG_VERSION" ]; then
    PG_VERSION="$(curl -fsSL https://ftp.postgresql.org/pub/source/ \
      | grep -o "v${PG_MAJOR}\.[0-9]*/" | tr -d 'v/' | sort -V | tail -1)"
    [ -n "$PG_VERSION" ] || { echo "no release found for PostgreSQL $PG_MAJOR" >&2; exit 1; }
    echo "PG_VERSION not set: building the newest $PG_MAJOR release, $PG_VERSION" >&2
  fi
  case "$PG_VERSION" in
    "$PG_MAJOR".*) ;;
    *) echo "PG_VERSION $PG_VERSION is not a $PG_MAJOR release" >&2; exit 2 ;;
  esac
}

# The build proper: on Amazon Linux 2023, writes /out/<zip>.
build_inside() {
  [ "$(uname -m)" = "$uname_arch" ] || { echo "running on $(uname -m), ARCH is $ARCH" >&2; exit 1; }
  grep -q 'Amazon Linux' /etc/os-release && grep -q 'VERSION_ID="2023"' /etc/os-release \
    || { echo "not Amazon Linux 2023" >&2; exit 1; }
  # shellcheck disable=SC2086 # word lists
  dnf install -y -q $BUILD_PACKAGES $LIBRARY_PACKAGES >/dev/null
  # libstdbuf.so is in the full coreutils; the container image has coreutils-single, which it replaces.
  [ -f /usr/libexec/coreutils/libstdbuf.so ] || dnf install -y -q --allowerasing coreutils >/dev/null
  # patchelf is not in every AL2023 repository snapshot; without it the build's own RUNPATH (/opt/lib) serves.
  dnf install -y -q patchelf >/dev/null 2>&1 || true

  local work src stage
  work="$(mktemp -d)"
  src="$work/postgresql-$PG_VERSION"
  stage="$work/layer"
  local base="https://ftp.postgresql.org/pub/source/v$PG_VERSION/postgresql-$PG_VERSION.tar.bz2"
  curl -fsSL -o "$work/src.tar.bz2" "$base"
  local expected
  expected="$(curl -fsSL "$base.sha256" | awk '{print $1}')"
  echo "$expected  $work/src.tar.bz2" | sha256sum -c - >&2
  tar -xjf "$work/src.tar.bz2" -C "$work"

  # Client programs only: TLS (OpenSSL), lz4 and zstd for pg_dump --compress, no readline or ICU to carry.
  # --prefix=/opt: the programs' RUNPATH is /opt/lib, where Lambda mounts the layer's lib/.
  # shellcheck disable=SC2086 # word list
  (cd "$src" && ./configure --quiet $CONFIGURE_FLAGS)
  make -C "$src/src/interfaces/libpq" -j"$(nproc)" -s
  make -C "$src/src/bin/pg_dump" -j"$(nproc)" -s
  make -C "$src/src/bin/psql" -j"$(nproc)" -s

  mkdir -p "$stage/bin" "$stage/lib" "$stage/certs"
  install -m 0755 "$src/src/bin/pg_dump/pg_dump" "$src/src/bin/pg_dump/pg_restore" "$src/src/bin/psql/psql" "$stage/bin/"
  cp -L "$src/src/interfaces/libpq/libpq.so.5" "$stage/lib/"
  # What `stdbuf -o` preloads: the pipeline sets pg_dump's stdout buffer to 64 KiB with it (16 times fewer writes).
  install -m 0644 /usr/libexec/coreutils/libstdbuf.so "$stage/lib/"
  # The shared libraries the programs load, other than glibc's (the runtime has those).
  for lib in $(ldd "$stage"/bin/* "$stage/lib/libpq.so.5" | awk '/=> \// {print $3}' | sort -u); do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libresolv.so*) ;;
      libpq.so*) ;;
      *) cp -L "$lib" "$stage/lib/" ;;
    esac
  done
  # Found next to the programs wherever the layer is mounted (not only /opt), without LD_LIBRARY_PATH.
  if command -v patchelf >/dev/null; then
    for file in "$stage"/bin/*; do patchelf --set-rpath '$ORIGIN/../lib' "$file"; done
    for file in "$stage"/lib/*; do patchelf --set-rpath '$ORIGIN' "$file"; done
  fi

  curl -fsSL -o "$stage/certs/rds-global-bundle.pem" "$RDS_CA_URL"
  grep -q 'BEGIN CERTIFICATE' "$stage/certs/rds-global-bundle.pem"

  # Smoke test as Lambda will run it: the layer at /opt (in the throwaway container), no library path set.
  local probe="$stage"
  if [ "$mode" = inside ]; then cp -a "$stage"/. /opt/; probe=/opt; fi
  local ld_path=""
  [ "$probe" = /opt ] || ld_path="$stage/lib"
  env -i LD_LIBRARY_PATH="$ld_path" "$probe/bin/pg_dump" --version
  env -i LD_LIBRARY_PATH="$ld_path" "$probe/bin/pg_restore" --version
  env -i LD_LIBRARY_PATH="$ld_path" LD_PRELOAD="$probe/lib/libstdbuf.so" _STDBUF_O=65536 "$probe/bin/pg_dump" --version
  if env -i LD_LIBRARY_PATH="$ld_path" ldd "$probe"/bin/* | grep -q 'not found'; then
    echo "unresolved libraries:" >&2; env -i LD_LIBRARY_PATH="$ld_path" ldd "$probe"/bin/* >&2; exit 1
  fi

  {
    echo "postgresql $PG_VERSION (source sha256 $expected)"
    echo "built on $(. /etc/os-release && echo "$PRETTY_NAME") $(uname -m), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "rds ca bundle sha256 $(sha256sum "$stage/certs/rds-global-bundle.pem" | awk '{print $1}')"
    (cd "$stage" && find bin lib -type f -exec sha256sum {} \; | sort -k2)
  } > "$stage/BUILD-INFO"

  local zip="postgresql-client-$PG_VERSION-al2023-$ARCH.zip"
  # Sorted entries and fixed times, so that the same inputs give the same zip.
  (cd "$stage" && find . -exec touch -h -d '2000-01-01 00:00:00' {} + && find . -type f | sort | zip -q -X -@ "$OUT/$zip")
  echo "$OUT/$zip"
  rm -rf "$work"
}

publish_layer() {
  local zip="$1"
  [ -n "$region" ] || { echo "--publish needs --region (or AWS_REGION)" >&2; exit 2; }
  aws lambda publish-layer-version \
    --region "$region" \
    --layer-name "keycloak-backup-postgresql-$PG_MAJOR" \
    --description "PostgreSQL $PG_VERSION client (pg_dump, pg_restore, psql) + RDS CA bundle, AL2023 $ARCH" \
    --license-info PostgreSQL \
    --compatible-runtimes nodejs22.x \
    --compatible-architectures "$ARCH" \
    --zip-file "fileb://$zip" \
    --query LayerVersionArn --output text
}

choose_major

case "$mode" in
  plan)
    resolve_version
    echo "server: ${SERVER_VERSION:-unknown}"
    echo "layer major: $PG_MAJOR"
    echo "release: $PG_VERSION"
    echo "layer name: keycloak-backup-postgresql-$PG_MAJOR"
    echo "packages: $BUILD_PACKAGES $LIBRARY_PACKAGES"
    echo "configure: $CONFIGURE_FLAGS"
    echo "zip: postgresql-client-$PG_VERSION-al2023-$ARCH.zip"
    exit 0
    ;;
  inside)
    resolve_version
    OUT=/out build_inside
    ;;
  here)
    resolve_version
    mkdir -p "$DIST"
    OUT="$DIST" build_inside
    ;;
  docker)
    command -v docker >/dev/null || { echo "needs docker, or run on Amazon Linux 2023 with --here" >&2; exit 1; }
    resolve_version
    mkdir -p "$DIST"
    docker run --rm --platform "$platform" \
      -e PG_MAJOR="$PG_MAJOR" -e PG_VERSION="$PG_VERSION" -e ARCH="$ARCH" \
      -v "$HERE/build.sh:/build.sh:ro" -v "$DIST:/out" \
      "$AL2023_IMAGE" bash /build.sh --inside
    ;;
esac

zip_file="$DIST/postgresql-client-$PG_VERSION-al2023-$ARCH.zip"
[ "$mode" = inside ] && exit 0
echo "layer: $zip_file ($(du -h "$zip_file" | cut -f1))"
if $publish; then
  arn="$(publish_layer "$zip_file")"
  echo "published: $arn"
  echo "deploy with: npx osls deploy --stage <stage> --param=\"pgLayerArn=$arn\""
fi
