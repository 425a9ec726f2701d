"""Import files: the text encoding is detected (not assumed), shown and overridable; undecodable bytes are refused
with their row; uploads past the size limit are a 413, however large."""

from __future__ import annotations

import re
from typing import Any

import pytest
from crm_contacts.tabular import decode, detect, read_table

from core.errors import ValidationError
from core.testing import csrf_of, login_client, make_user

LATIN = "Name,City\nHans Müller,Köln\nJosé Silva,São Paulo\n"


def test_a_cp1252_file_is_not_read_as_gbk() -> None:
    content = LATIN.encode("cp1252")
    assert detect(content) == "cp1252"
    assert read_table(content, "people.csv")[1] == [["Hans Müller", "Köln"], ["José Silva", "São Paulo"]]
    for encoding, text in (("gbk", "姓名,手机\n张伟,13800138000\n李娜,13900139000\n"), ("utf-8", LATIN)):
        assert read_table(text.encode(encoding), "people.csv")[1][0][0] in ("张伟", "Hans Müller")


def test_undecodable_bytes_are_refused_with_their_row() -> None:
    content = "name\nAnn\nBo\nHans Müller\n".encode("cp1252")
    with pytest.raises(ValidationError) as err:
        decode(content, "utf-8")
    assert err.value.fields["file"].startswith("row 4: bytes b'\\xfc' are not valid utf-8 text")
    with pytest.raises(ValidationError) as err:
        decode(b"name\nok\nbad \x81 byte\n", "cp1252")  # 0x81 has no character in cp1252
    assert err.value.fields["file"].startswith("row 3:")
    assert decode("\ufeffname\nAnn\n".encode(), "utf-8")[0] == "name\nAnn\n"  # a BOM is no part of the header


async def _importer(crm_client: Any, found: Any) -> Any:
    client = await crm_client("crm_contacts", "crm_contacts_probe", found=found)
    await make_user("rep", "sales_rep")
    await login_client(client, "rep")
    return client


async def test_the_detected_encoding_is_shown_and_can_be_overridden(crm_client: Any, found: Any) -> None:
    from crm_contacts.models import ImportBatch

    client = await _importer(crm_client, found)
    token = csrf_of((await client.get("/contacts/imports")).text)
    up = await client.post("/contacts/imports", data={"csrf_token": token},
                           files={"file": ("people.csv", LATIN.encode("cp1252"))})
    assert up.status_code == 303, up.text[:500]
    page = await client.get(up.headers["location"])
    assert re.search(r'class="encoding-used">cp1252<', page.text) and "Hans Müller" in page.text
    # the user knows better: read it as UTF-8, which cannot decode it: the row is named, the choice stays open
    again = await client.post(up.headers["location"] + "/encoding", data={"csrf_token": token, "encoding": "utf-8"})
    assert again.status_code == 303
    page = await client.get(up.headers["location"])
    assert "row 2: bytes" in page.text and 'name="encoding"' in page.text
    await client.post(up.headers["location"] + "/encoding", data={"csrf_token": token, "encoding": "latin-1"})
    assert "Hans Müller" in (await client.get(up.headers["location"])).text
    assert (await ImportBatch.select(ImportBatch.encoding).first())["encoding"] == "latin-1"
    refused = await client.post(up.headers["location"] + "/encoding", data={"csrf_token": token, "encoding": "rot13"})
    assert refused.status_code == 422
    # chosen at upload, it is used as is
    up = await client.post("/contacts/imports", data={"csrf_token": token, "encoding": "cp1250"},
                           files={"file": ("people.csv", LATIN.encode("cp1252"))})
    assert re.search(r'class="encoding-used">cp1250<', (await client.get(up.headers["location"])).text)


async def test_uploads_past_the_limit_are_413_and_not_stored(crm_client: Any, found: Any) -> None:
    """52 MB passes the server's body limit (64 MB) but not an import's (50 MB); 70 MB is refused before it
    is read. Neither is stored, and neither is reported as a CSRF failure."""
    from crm_contacts.models import ImportBatch

    client = await _importer(crm_client, found)
    token = csrf_of((await client.get("/contacts/imports")).text)
    line = b"Ann Lee,ann@example.com\n"
    for megabytes, message in ((52, "larger than the 50 MB an import accepts"),
                               (70, "larger than the 64 MB this server accepts")):
        content = b"name,email\n" + line * (megabytes * 1024 * 1024 // len(line))
        page = await client.post("/contacts/imports", data={"csrf_token": token},
                                 files={"file": ("big.csv", content)})
        assert page.status_code == 413 and message in page.text, (megabytes, page.text[:300])
        api = await client.post("/contacts/imports", data={"csrf_token": token}, files={"file": ("big.csv", content)},
                                headers={"Accept": "application/json"})
        assert api.status_code == 413 and api.json()["error"]["code"] == "too_large"
    assert await ImportBatch.count() == 0
