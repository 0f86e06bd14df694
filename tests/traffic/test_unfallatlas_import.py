"""import_unfallatlas: Destatis Unfallatlas CSV files of every year's format become accidents, once."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point
from django.core import mail
from django.core.management import CommandError, call_command

from roadworks.models import RoadworkStatus
from tests.conftest import local, make_roadwork, period
from traffic.importers import unfallatlas as ua
from traffic.models import Accident, AccidentSource, TimePrecision

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
KAISERRING = (8.4750, 49.4846)  # Mannheim city centre
BERLIN_MITTE = (13.4050, 52.5200)  # far outside the service area
MANNHEIM = {"ULAND": "08", "UREGBEZ": "2", "UKREIS": "22", "UGEMEINDE": "000"}  # AGS 08222000
HEIDELBERG = {"ULAND": "08", "UREGBEZ": "2", "UKREIS": "21", "UGEMEINDE": "000"}  # AGS 08221000
LUDWIGSHAFEN = {"ULAND": "07", "UREGBEZ": "3", "UKREIS": "14", "UGEMEINDE": "000"}  # Rhineland-Palatinate

# Column sets of the years, as the files spell them (order and names differ; parsing goes by name).
HEADER_2016 = (
    "FID;OBJECTID;ULAND;UREGBEZ;UKREIS;UGEMEINDE;UJAHR;UMONAT;USTUNDE;UWOCHENTAG;UKATEGORIE;UART;UTYP1;LICHT;"
    "IstRad;IstPKW;IstFuss;IstKrad;IstSonstig;IstStrasse;LINREFX;LINREFY;XGCSWGS84;YGCSWGS84"
)
HEADER_2018 = (
    "OBJECTID_1;ULAND;UREGBEZ;UKREIS;UGEMEINDE;UJAHR;UMONAT;USTUNDE;UWOCHENTAG;UKATEGORIE;UART;UTYP1;ULICHTVERH;"
    "IstRad;IstPKW;IstFuss;IstKrad;IstGkfz;IstSonstig;STRZUSTAND;LINREFX;LINREFY;XGCSWGS84;YGCSWGS84"
)
HEADER_2019 = (
    "OBJECTID;ULAND;UREGBEZ;UKREIS;UGEMEINDE;UJAHR;UMONAT;USTUNDE;UWOCHENTAG;UKATEGORIE;UART;UTYP1;ULICHTVERH;"
    "IstRad;IstPKW;IstFuss;IstKrad;IstGkfz;IstSonstige;LINREFX;LINREFY;XGCSWGS84;YGCSWGS84;STRZUSTAND"
)
HEADER_2021 = (
    "OID_;ULAND;UREGBEZ;UKREIS;UGEMEINDE;UJAHR;UMONAT;USTUNDE;UWOCHENTAG;UKATEGORIE;UART;UTYP1;IstRad;IstPKW;"
    "IstFuss;IstKrad;IstSonstige;ULICHTVERH;IstGkfz;LINREFX;LINREFY;XGCSWGS84;YGCSWGS84;UIDENTSTLAE;"
    "IstStrassenzustand"
)
HEADER_2023 = (
    "OID_;UIDENTSTLAE;ULAND;UREGBEZ;UKREIS;UGEMEINDE;UJAHR;UMONAT;USTUNDE;UWOCHENTAG;UKATEGORIE;UART;UTYP1;"
    "ULICHTVERH;IstStrassenzustand;IstRad;IstPKW;IstFuss;IstKrad;IstGkfz;IstSonstige;LINREFX;LINREFY;XGCSWGS84;"
    "YGCSWGS84;PLST"
)
HEADER_LINREF_ONLY = (
    "UIDENTSTLAE;ULAND;UREGBEZ;UKREIS;UGEMEINDE;UJAHR;UMONAT;USTUNDE;UWOCHENTAG;UKATEGORIE;UART;UTYP1;ULICHTVERH;"
    "IstStrassenzustand;IstRad;IstPKW;IstFuss;IstKrad;IstGkfz;IstSonstige;LINREFX;LINREFY"
)
HEADER_NO_ID = (
    "ULAND;UREGBEZ;UKREIS;UGEMEINDE;UJAHR;UMONAT;USTUNDE;UWOCHENTAG;UKATEGORIE;UART;UTYP1;ULICHTVERH;"
    "IstStrassenzustand;IstRad;IstPKW;IstFuss;IstKrad;IstGkfz;IstSonstige;XGCSWGS84;YGCSWGS84"
)


def decimal_comma(value: float, places: int) -> str:
    return f"{value:.{places}f}".replace(".", ",")


def linref(lon: float, lat: float) -> tuple[float, float]:
    point = Point(lon, lat, srid=4326).transform(25832, clone=True)
    return point.x, point.y


def row(header: str, n: int, *, place=KAISERRING, region=MANNHEIM, wgs84: bool = True, **values: str) -> str:
    """One data line for `header`: accident number n, by default a slightly injured turning accident in Mannheim."""
    x, y = linref(*place)
    data = {
        "FID": str(n),
        "OBJECTID": str(n),
        "OBJECTID_1": str(n),
        "OID_": str(n),
        "UIDENTSTLAE": f"082220{n:08d}",
        **region,
        "UJAHR": "2023",
        "UMONAT": "05",
        "USTUNDE": "17",
        "UWOCHENTAG": "2",  # Monday
        "UKATEGORIE": "3",
        "UART": "5",
        "UTYP1": "2",
        "ULICHTVERH": "0",
        "LICHT": "0",
        "IstRad": "1",
        "IstPKW": "1",
        "IstFuss": "0",
        "IstKrad": "0",
        "IstGkfz": "0",
        "IstSonstig": "0",
        "IstSonstige": "0",
        "IstStrasse": "1",
        "STRZUSTAND": "1",
        "IstStrassenzustand": "1",
        "LINREFX": decimal_comma(x, 9),
        "LINREFY": decimal_comma(y, 9),
        "XGCSWGS84": decimal_comma(place[0], 12) if wgs84 else "",
        "YGCSWGS84": decimal_comma(place[1], 12) if wgs84 else "",
        "PLST": "1",
        **values,
    }
    return ";".join(data[name] for name in header.split(";"))


def write_csv(tmp_path: Path, name: str, header: str, rows: list[str], *, encoding="utf-8", bom=False) -> Path:
    text = "\r\n".join([header, *rows]) + "\r\n"
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_unfallatlas", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("header", "bom", "encoding"),
    [
        (HEADER_2016, False, "latin-1"),
        (HEADER_2018, False, "utf-8"),
        (HEADER_2019, False, "cp1252"),
        (HEADER_2021, True, "utf-8"),
        (HEADER_2023, True, "utf-8"),
    ],
    ids=["2016", "2018", "2019", "2021", "2023"],
)
def test_it_imports_the_formats_of_every_year(tmp_path, header, bom, encoding):
    path = write_csv(tmp_path, "Unfallorte.csv", header, [row(header, 1), row(header, 2)], encoding=encoding, bom=bom)

    out, err = run(str(path))

    assert "read 2, imported 2, already present 0" in out, out
    assert err == ""
    accident = Accident.objects.order_by("source_key").first()
    assert accident.source == AccidentSource.UNFALLATLAS
    assert (accident.category, accident.kind, accident.type) == (3, 5, 2)
    assert accident.light_condition == 0
    assert accident.road_condition == 1
    assert accident.involves_bicycle and accident.involves_car
    assert not (accident.involves_pedestrian or accident.involves_goods_vehicle or accident.involves_other)
    assert accident.region_code == "08222000"
    assert accident.time_precision == TimePrecision.HOUR_IN_MONTH
    assert accident.location.srid == 25832
    expected = Point(*KAISERRING, srid=4326).transform(25832, clone=True)
    assert accident.location.distance(expected) < 0.5


def test_it_keys_accidents_by_destatis_id_and_year_else_by_row_id(tmp_path):
    run(str(write_csv(tmp_path, "a.csv", HEADER_2023, [row(HEADER_2023, 7)])))
    run(str(write_csv(tmp_path, "b.csv", HEADER_2018, [row(HEADER_2018, 7, UJAHR="2018")])))

    assert set(Accident.objects.values_list("source_key", flat=True)) == {"2023:uid:08222000000007", "2018:oid:7"}


def test_it_picks_the_first_such_weekday_of_the_month_at_the_hour_as_the_time(tmp_path):
    rows = [
        row(HEADER_2023, 1, UMONAT="05", UWOCHENTAG="2", USTUNDE="17"),  # Monday: 1 May 2023 is one
        row(HEADER_2023, 2, UMONAT="05", UWOCHENTAG="1", USTUNDE="0"),  # Sunday: 7 May 2023
        row(HEADER_2023, 3, UMONAT="03", UWOCHENTAG="7", USTUNDE="2"),  # Saturday: 4 March 2023
    ]
    run(str(write_csv(tmp_path, "times.csv", HEADER_2023, rows)))

    times = dict(Accident.objects.values_list("source_key", "occurred_at"))
    assert times["2023:uid:08222000000001"] == datetime(2023, 5, 1, 17, tzinfo=BERLIN)
    assert times["2023:uid:08222000000002"] == datetime(2023, 5, 7, 0, tzinfo=BERLIN)
    assert times["2023:uid:08222000000003"] == datetime(2023, 3, 4, 2, tzinfo=BERLIN)


def test_representative_time_maps_the_unfallatlas_weekdays_sunday_first():
    # 1 = Sunday ... 7 = Saturday; October 2023 began on a Sunday.
    days = [ua.representative_time(2023, 10, weekday, 12).day for weekday in range(1, 8)]
    assert days == [1, 2, 3, 4, 5, 6, 7]


def test_it_takes_linref_coordinates_when_the_wgs84_ones_are_empty(tmp_path):
    place = (8.4800, 49.4900)
    run(str(write_csv(tmp_path, "mixed.csv", HEADER_2021, [row(HEADER_2021, 1, place=place, wgs84=False)])))

    expected = Point(*place, srid=4326).transform(25832, clone=True)
    assert Accident.objects.get().location.distance(expected) < 0.5


def test_it_reads_files_that_have_only_linref_coordinates(tmp_path):
    out, _err = run(str(write_csv(tmp_path, "linref.csv", HEADER_LINREF_ONLY, [row(HEADER_LINREF_ONLY, 1)])))

    assert "imported 1" in out
    expected = Point(*KAISERRING, srid=4326).transform(25832, clone=True)
    assert Accident.objects.get().location.distance(expected) < 0.5


def test_it_reads_cp1252_and_latin1_bytes_in_other_columns(tmp_path):
    header = HEADER_2018 + ";Bemerkung"
    rows = [row(HEADER_2018, 1) + ";Kreuzung Straße", row(HEADER_2018, 2) + ";Einmündung – Ampel"]
    out, err = run(str(write_csv(tmp_path, "umlaut.csv", header, rows, encoding="cp1252")))

    assert "imported 2" in out, err


def test_importing_the_same_file_again_adds_nothing(tmp_path):
    path = write_csv(tmp_path, "2023.csv", HEADER_2023, [row(HEADER_2023, n) for n in range(1, 6)])
    run(str(path))
    before = list(Accident.objects.order_by("id").values_list("id", "updated_at"))

    out, _err = run(str(path))

    assert "read 5, imported 0, already present 5" in out
    assert list(Accident.objects.order_by("id").values_list("id", "updated_at")) == before


def test_files_without_any_id_column_are_keyed_by_their_values_and_import_once(tmp_path):
    rows = [row(HEADER_NO_ID, 1), row(HEADER_NO_ID, 2, USTUNDE="9")]
    path = write_csv(tmp_path, "noid.csv", HEADER_NO_ID, rows)
    run(str(path))
    out, _err = run(str(path))

    assert Accident.objects.count() == 2
    assert all(key.startswith("h:") for key in Accident.objects.values_list("source_key", flat=True))
    assert "imported 0, already present 2" in out


def test_it_batches_rows_and_counts_across_batches(tmp_path):
    path = write_csv(tmp_path, "2023.csv", HEADER_2023, [row(HEADER_2023, n) for n in range(1, 8)])

    out, _err = run(str(path), "--batch-size", "3")
    again, _err = run(str(path), "--batch-size", "2")

    assert "read 7, imported 7" in out
    assert "read 7, imported 0, already present 7" in again
    assert Accident.objects.count() == 7


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["08"], {"08222000", "08221000"}),
        (["082"], {"08222000", "08221000"}),
        (["08222"], {"08222000"}),
        (["08222000"], {"08222000"}),
        (["08222000", "07314000"], {"08222000", "07314000"}),
        (["07"], {"07314000"}),
    ],
)
def test_it_keeps_only_the_regions_asked_for(tmp_path, codes, expected):
    # All three rows lie in Mannheim's area, so only the region codes decide.
    rows = [row(HEADER_2023, 1), row(HEADER_2023, 2, region=HEIDELBERG), row(HEADER_2023, 3, region=LUDWIGSHAFEN)]
    path = write_csv(tmp_path, "2023.csv", HEADER_2023, rows)

    out, _err = run(str(path), "--region", *codes)

    assert set(Accident.objects.values_list("region_code", flat=True)) == expected
    assert f"outside region {3 - len(expected)}" in out


def test_region_codes_of_a_wrong_length_stop_the_import(tmp_path):
    path = write_csv(tmp_path, "2023.csv", HEADER_2023, [row(HEADER_2023, 1)])
    with pytest.raises(CommandError) as excinfo:
        run(str(path), "--region", "0822")
    assert str(excinfo.value) == str(ua.MSG_REGION_CODE).format(code="0822")
    assert Accident.objects.count() == 0


def test_it_pads_region_parts_that_lost_their_leading_zeros(tmp_path):
    region = {"ULAND": "8", "UREGBEZ": "2", "UKREIS": "22", "UGEMEINDE": "0"}
    run(str(write_csv(tmp_path, "2019.csv", HEADER_2019, [row(HEADER_2019, 1, region=region)])), "--region", "08222")

    assert Accident.objects.get().region_code == "08222000"


def test_rows_outside_the_service_area_are_counted_and_skipped(tmp_path):
    rows = [row(HEADER_2023, 1), row(HEADER_2023, 2, place=BERLIN_MITTE)]

    out, _err = run(str(write_csv(tmp_path, "2023.csv", HEADER_2023, rows)))

    assert "imported 1, already present 0, outside region 0, outside service area 1, rejected 0" in out
    assert Accident.objects.count() == 1


def test_it_reports_rows_it_cannot_read_with_file_line_and_reason(tmp_path):
    rows = [
        row(HEADER_2023, 1),  # line 2: fine
        row(HEADER_2023, 2, UKATEGORIE="9"),  # line 3
        row(HEADER_2023, 3, wgs84=False, LINREFX="", LINREFY=""),  # line 4
        "1;2;3",  # line 5
        row(HEADER_2023, 5, USTUNDE="abends"),  # line 6
        "",  # a blank line is no row
        row(HEADER_2023, 7, IstRad="ja"),  # line 8
        row(HEADER_2023, 8, UKREIS="222"),  # line 9
        row(HEADER_2023, 9),  # line 10: fine
    ]
    path = write_csv(tmp_path, "bad.csv", HEADER_2023, rows)
    width = len(HEADER_2023.split(";"))

    out, err = run(str(path))

    assert "read 8, imported 2, already present 0, outside region 0, outside service area 0, rejected 6" in out
    assert err.splitlines() == [
        f"rejected {path}:3: " + str(ua.MSG_ROW_OUT_OF_RANGE).format(column="UKATEGORIE", value=9, low=1, high=6),
        f"rejected {path}:4: " + str(ua.MSG_ROW_NO_COORDINATES),
        f"rejected {path}:5: " + str(ua.MSG_ROW_TOO_SHORT).format(found=3, expected=width),
        f"rejected {path}:6: " + str(ua.MSG_ROW_NOT_A_NUMBER).format(column="USTUNDE", value="abends"),
        f"rejected {path}:8: " + str(ua.MSG_ROW_NOT_A_FLAG).format(column="IstRad", value="ja"),
        f"rejected {path}:9: " + str(ua.MSG_ROW_REGION_PART).format(column="UKREIS", value="222", digits=2),
    ]
    assert Accident.objects.count() == 2


def test_a_missing_file_stops_the_run_before_anything_is_imported(tmp_path):
    good = write_csv(tmp_path, "2023.csv", HEADER_2023, [row(HEADER_2023, 1)])
    missing = tmp_path / "2022.csv"

    with pytest.raises(CommandError) as excinfo:
        run(str(good), str(missing))

    assert str(excinfo.value) == str(ua.MSG_FILE_MISSING).format(path=missing)
    assert Accident.objects.count() == 0


def test_a_file_that_is_no_unfallatlas_file_stops_the_run(tmp_path):
    path = tmp_path / "roadworks.csv"
    path.write_text("id;title;start\n1;Kaiserring;2024-01-01\n")

    with pytest.raises(CommandError) as excinfo:
        run(str(path))

    assert str(excinfo.value).startswith(str(ua.MSG_FILE_COLUMNS).format(path=path, columns="ULAND")[:40])
    assert "UKATEGORIE" in str(excinfo.value)


def test_it_imports_several_files_and_sums_them_up(tmp_path):
    first = write_csv(tmp_path, "2022.csv", HEADER_2021, [row(HEADER_2021, 1, UJAHR="2022")])
    second = write_csv(tmp_path, "2023.csv", HEADER_2023, [row(HEADER_2023, 1), row(HEADER_2023, 2)])

    out, _err = run(str(first), str(second))

    assert "All files: read 3, imported 3" in out
    assert Accident.objects.count() == 3


def test_the_progress_bar_counts_up_to_100_percent_on_stderr(tmp_path):
    path = write_csv(tmp_path, "2023.csv", HEADER_2023, [row(HEADER_2023, n) for n in range(1, 30)])

    _out, err = run(str(path), "--progress")

    assert "\r2023.csv: 100%" in err
    assert err.endswith("\n")


def test_without_a_terminal_there_is_no_progress_bar(tmp_path):
    _out, err = run(str(write_csv(tmp_path, "2023.csv", HEADER_2023, [row(HEADER_2023, 1)])))
    assert "%" not in err


def test_imported_accidents_at_active_roadworks_are_flagged_without_mail(tmp_path, stadtwerke, bob):
    stadtwerke.email = "baustellen@stadtwerke.example"
    stadtwerke.save()
    works = make_roadwork(stadtwerke, status=RoadworkStatus.COMPLETED, period=period(local(2023, 4, 20), 30))
    rows = [row(HEADER_2023, 1), row(HEADER_2023, 2, UMONAT="09")]  # May: during the works; September: after

    out, _err = run(str(write_csv(tmp_path, "2023.csv", HEADER_2023, rows)))

    assert "Work-zone crashes flagged: 1." in out
    assert Accident.objects.get(source_key="2023:uid:08222000000001").work_zone_id == works.pk
    assert Accident.objects.get(source_key="2023:uid:08222000000002").work_zone_id is None
    assert mail.outbox == []
