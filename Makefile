# AUMAn: `make run` starts everything, `make test` runs every test. See README.md.
.PHONY: run test bootstrap stop lint lock bench messages backup restore

run:
	@scripts/dev.sh run

test:
	@scripts/dev.sh test

bootstrap:
	@scripts/dev.sh bootstrap

stop:
	@scripts/dev.sh stop

lint:
	@.venv/bin/ruff check .
	@.venv/bin/python manage.py check
	@.venv/bin/python manage.py makemigrations --check --dry-run

bench:
	@scripts/dev.sh bench

# Refresh the pinned requirements.txt from requirements.in.
lock:
	@.venv/bin/pip install -q -r requirements.in && \
	 (echo "# Pinned from requirements.in by 'make lock'. Install: .venv/bin/pip install -r requirements.txt"; \
	  .venv/bin/pip freeze --exclude pip) > requirements.txt

messages:
	@.venv/bin/python manage.py makemessages -l de -l en --ignore '.venv/*' --ignore 'var/*' --ignore 'static/*'
	@.venv/bin/python manage.py makemessages -d djangojs -l de -l en --ignore '.venv/*' --ignore 'var/*' --ignore 'static/vendor/*' --ignore 'staticfiles/*'

# A pg_dump of the database (DATABASE_URL, else the local cluster) into var/backups/; see docs/operations.md.
backup:
	@scripts/backup.sh backup

# make restore FILE=var/backups/auman-....dump (asks first; AUMAN_RESTORE_YES=1 does not).
restore:
	@scripts/backup.sh restore "$(FILE)"
