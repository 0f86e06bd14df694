"""uuid-ossp, for the feeds' derived ids: uuid_generate_v5() lets PostgreSQL write a whole feed document itself.

The feeds give each road event, CIFS item or DATEX II record beyond an item's first a UUIDv5 derived from the
item's UUID (Python's uuid.uuid5, RFC 4122); uuid_generate_v5() makes exactly the same ids. The extension ships
with PostgreSQL (Debian's postgresql-15 package) and is trusted since PostgreSQL 13: the database owner may create
it without being a superuser.
"""

from django.contrib.postgres.operations import CreateExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("traffic", "0004_history")]

    operations = [CreateExtension("uuid-ossp")]
