#!/usr/bin/env bash
# Dump and restore AUMAn's database (make backup, make restore FILE=...). See docs/operations.md.
#
#   scripts/backup.sh backup           pg_dump -Fc of DATABASE_URL into $AUMAN_BACKUP_DIR/auman-<UTC time>.dump, and
#                                      the uploaded files (MEDIA_ROOT) beside it as auman-<UTC time>.media.tar.gz
#   scripts/backup.sh restore FILE     pg_restore --clean --if-exists of FILE into DATABASE_URL (asks first), then
#                                      MEDIA_ROOT replaced by the files archive beside FILE, when there is one
#
# Without DATABASE_URL both use the project-local cluster under ./var (make run), like the other scripts.
# AUMAN_RESTORE_YES=1 skips the question (for scripts); the restore is one transaction: all or nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL_PG_PORT="${AUMAN_LOCAL_PG_PORT:-54329}"
DATABASE_URL="${DATABASE_URL:-postgis://auman@127.0.0.1:$LOCAL_PG_PORT/auman}"
BACKUP_DIR="${AUMAN_BACKUP_DIR:-$ROOT/var/backups}"
MEDIA_ROOT="${MEDIA_ROOT:-$ROOT/var/media}"

die() { echo "backup.sh: $*" >&2; exit 1; }

# libpq knows postgresql:// and postgres://; Django's postgis:// names the same server.
libpq_url() {
  case "$1" in
    postgis://*) echo "postgresql://${1#postgis://}" ;;
    postgres://* | postgresql://*) echo "$1" ;;
    *) die "DATABASE_URL must be a postgresql://, postgres:// or postgis:// URL" ;;
  esac
}

# The URL without its password, for messages.
shown() { echo "$1" | sed -E 's#//([^:/@]+):[^@]*@#//\1:***@#'; }

backup() {
  local url; url="$(libpq_url "$DATABASE_URL")"
  mkdir -p "$BACKUP_DIR"
  local file; file="$BACKUP_DIR/auman-$(date -u +%Y%m%dT%H%M%SZ).dump"
  # Written under a temporary name and renamed when complete: a failed dump never looks like a backup.
  pg_dump --format=custom --no-owner --file="$file.part" --dbname="$url" || { rm -f "$file.part"; die "pg_dump failed"; }
  mv "$file.part" "$file"
  # The attachments the database points to (roadworks' files): without them a restored register has dead links.
  if [ -d "$MEDIA_ROOT" ] && [ -n "$(ls -A "$MEDIA_ROOT")" ]; then
    local media="${file%.dump}.media.tar.gz"
    tar -C "$MEDIA_ROOT" -czf "$media.part" . || { rm -f "$media.part"; die "archiving $MEDIA_ROOT failed"; }
    mv "$media.part" "$media"
    echo "$media"
  fi
  echo "$file"  # last: scripts take the dump's name from the last line
}

# MEDIA_ROOT replaced by the archive's files: unpacked beside it first, then swapped, so a broken archive leaves
# the files as they were.
restore_media() {
  local media="$1"
  tar -tzf "$media" >/dev/null || die "$media is not a readable tar.gz archive; the files are unchanged"
  local parent; parent="$(dirname "$MEDIA_ROOT")"
  mkdir -p "$parent"
  local fresh; fresh="$(mktemp -d "$parent/.media-restore.XXXXXX")"
  tar -C "$fresh" -xzf "$media" || { rm -rf "$fresh"; die "unpacking $media failed; the files are unchanged"; }
  if [ -e "$MEDIA_ROOT" ]; then
    mv "$MEDIA_ROOT" "$fresh.old"
  fi
  mv "$fresh" "$MEDIA_ROOT"
  rm -rf "$fresh.old"
  echo "restored the files of $media into $MEDIA_ROOT"
}

restore() {
  local file="${1:-}"
  [ -n "$file" ] || die "usage: make restore FILE=var/backups/auman-....dump"
  [ -f "$file" ] || die "no such file: $file"
  pg_restore --list "$file" >/dev/null || die "$file is not a pg_dump custom-format archive"
  local url; url="$(libpq_url "$DATABASE_URL")"
  local media="${file%.dump}.media.tar.gz"
  [ "$media" != "$file" ] && [ -f "$media" ] || media=""
  if [ "${AUMAN_RESTORE_YES:-}" != "1" ]; then
    echo "This replaces everything in $(shown "$DATABASE_URL") with $file."
    [ -z "$media" ] || echo "It also replaces the files in $MEDIA_ROOT with $media."
    printf "Type 'restore' to go on: "
    read -r answer || answer=""
    [ "$answer" = "restore" ] || die "nothing restored"
  fi
  # --clean --if-exists drops what the archive holds before recreating it; --single-transaction makes a failed
  # restore leave the database as it was.
  pg_restore --clean --if-exists --no-owner --single-transaction --exit-on-error --dbname="$url" "$file" \
    || die "pg_restore failed; the database is unchanged"
  echo "restored $file into $(shown "$DATABASE_URL")"
  [ -z "$media" ] || restore_media "$media"
}

case "${1:-}" in
  backup) backup ;;
  restore) shift; restore "${1:-}" ;;
  *) die "usage: scripts/backup.sh backup | restore FILE" ;;
esac
