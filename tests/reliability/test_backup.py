"""make backup / make restore (scripts/backup.sh): what was backed up comes back, whatever happened since.

Against our own throwaway cluster (tests/reliability/conftest.py); the restore goes into a scratch database."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import PG_BIN, REPO_ROOT, Stack, as_postgres

# django_db: so pytest-django creates the test database whose schema the throwaway cluster copies.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]

_CREATE = """
from accounts.models import Organisation
from roadworks.models import Roadwork
from tests.conftest import make_roadwork
org = Organisation.objects.create(name="Sicherungstest GmbH", kind=Organisation.Kind.UTILITY)
work = make_roadwork(org, reference="BS-BACKUP-1", title="Vor der Sicherung")
print("ID=" + str(work.pk))
"""


def script(
    stack: Stack, *args: str, database_url: str, stdin: str = "", yes: bool = True, backup_dir=None, extra_env=None
):
    env = stack.env(DATABASE_URL=database_url, **(extra_env or {}))
    env.pop("AUMAN_RESTORE_YES", None)
    if yes:
        env["AUMAN_RESTORE_YES"] = "1"
    if backup_dir is not None:
        env["AUMAN_BACKUP_DIR"] = str(backup_dir)
    return subprocess.run(
        ["scripts/backup.sh", *args], cwd=REPO_ROOT, env=env, input=stdin, capture_output=True, text=True
    )


def test_a_backup_restored_into_a_scratch_database_holds_the_data_as_it_was(stack, tmp_path):
    made = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", _CREATE],
        cwd=REPO_ROOT,
        env=stack.env(),
        check=True,
        capture_output=True,
        text=True,
    )
    work_id = next(x for x in made.stdout.splitlines() if x.startswith("ID=")).removeprefix("ID=")

    backup = script(stack, "backup", database_url=stack.postgres.url, backup_dir=tmp_path)
    assert backup.returncode == 0, backup.stderr
    dump = backup.stdout.strip().splitlines()[-1]
    assert dump.startswith(str(tmp_path / "auman-")) and dump.endswith(".dump")

    # Afterwards the work is changed, then deleted.
    with stack.postgres.connect() as conn:
        conn.execute("UPDATE roadworks_roadwork SET title = 'Nach der Sicherung' WHERE id = %s", (work_id,))
        conn.execute("DELETE FROM roadworks_roadwork WHERE id = %s", (work_id,))

    as_postgres(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(stack.postgres.port), "-U", "auman", "scratch")
    scratch = stack.postgres.url.rsplit("/", 1)[0] + "/scratch"
    # Twice: the second restore replaces what the first one created (--clean --if-exists).
    for _ in range(2):
        restored = script(stack, "restore", dump, database_url=scratch)
        assert restored.returncode == 0, restored.stderr

    import psycopg

    with psycopg.connect(host="127.0.0.1", port=stack.postgres.port, user="auman", dbname="scratch") as conn:
        title, valid = conn.execute(
            "SELECT title, ST_IsValid(geometry) FROM roadworks_roadwork WHERE id = %s", (work_id,)
        ).fetchone()
        assert (title, valid) == ("Vor der Sicherung", True)
        # The history comes back too, and is still protected.
        assert conn.execute(
            "SELECT count(*) FROM roadworks_roadworkevent WHERE pgh_obj_id = %s", (work_id,)
        ).fetchone() == (1,)
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("DELETE FROM roadworks_roadworkevent")
        conn.rollback()
        # The restored database works for the application's triggers as well.
        conn.execute("UPDATE roadworks_roadwork SET title = 'Wieder da' WHERE id = %s", (work_id,))
        assert conn.execute(
            "SELECT count(*) FROM roadworks_roadworkevent WHERE pgh_obj_id = %s", (work_id,)
        ).fetchone() == (2,)


def test_a_restore_asks_first_and_does_nothing_without_a_yes(stack, tmp_path):
    backup = script(stack, "backup", database_url=stack.postgres.url, backup_dir=tmp_path)
    dump = backup.stdout.strip().splitlines()[-1]
    refused = script(stack, "restore", dump, database_url=stack.postgres.url, stdin="no\n", yes=False)
    assert refused.returncode != 0
    assert "Type 'restore' to go on" in refused.stdout and "nothing restored" in refused.stderr


def test_a_restore_refuses_a_file_that_is_no_backup(stack, tmp_path):
    bogus = tmp_path / "auman-bogus.dump"
    bogus.write_text("not a dump")
    refused = script(stack, "restore", str(bogus), database_url=stack.postgres.url)
    assert refused.returncode != 0 and "not a pg_dump custom-format archive" in refused.stderr


def test_the_uploaded_files_are_backed_up_beside_the_dump_and_come_back_with_the_restore(stack, tmp_path):
    media = tmp_path / "media"
    (media / "attachments" / "42").mkdir(parents=True)
    plan = media / "attachments" / "42" / "Verkehrszeichenplan.pdf"
    plan.write_bytes(b"%PDF-1.4 Verkehrszeichenplan")
    backups = tmp_path / "backups"

    env_media = {"MEDIA_ROOT": str(media)}
    backup = script(stack, "backup", database_url=stack.postgres.url, backup_dir=backups, extra_env=env_media)
    assert backup.returncode == 0, backup.stderr
    *before, dump = backup.stdout.strip().splitlines()
    archive = dump.removesuffix(".dump") + ".media.tar.gz"
    assert archive in before

    plan.unlink()  # lost after the backup
    (media / "attachments" / "43").mkdir()
    (media / "attachments" / "43" / "neu.pdf").write_bytes(b"%PDF-1.4 neu")  # added after it

    as_postgres(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(stack.postgres.port), "-U", "auman", "scratch2")
    scratch = stack.postgres.url.rsplit("/", 1)[0] + "/scratch2"
    restored = script(stack, "restore", dump, database_url=scratch, extra_env=env_media)
    assert restored.returncode == 0, restored.stderr

    assert plan.read_bytes() == b"%PDF-1.4 Verkehrszeichenplan"
    assert not (media / "attachments" / "43").exists()  # the files are as they were at the backup
    assert not list(tmp_path.glob(".media-restore.*"))  # nothing left beside them
