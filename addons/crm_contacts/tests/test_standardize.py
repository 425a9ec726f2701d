from __future__ import annotations

import pytest
from crm_contacts.regions import regions
from crm_contacts.standardize import (
    Region,
    StandardizationError,
    canonical_region,
    dedup_keys,
    email_key,
    fold_width,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_tax_id,
)
from hypothesis import assume, given
from hypothesis import strategies as st

# --- phones ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "default_region", "e164", "region", "kind"),
    [
        ("13800138000", "CN", "+8613800138000", "CN", "mobile"),
        ("138 0013 8000", "CN", "+8613800138000", "CN", "mobile"),
        ("138-0013-8000", "CN", "+8613800138000", "CN", "mobile"),
        ("+86 138 0013 8000", "CN", "+8613800138000", "CN", "mobile"),
        ("0086 138 0013 8000", "CN", "+8613800138000", "CN", "mobile"),
        ("0086 138 0013 8000", "US", "+8613800138000", "CN", "mobile"),  # 00 is not the US exit code
        ("１３８ ００１３ ８０００", "CN", "+8613800138000", "CN", "mobile"),  # full-width digits
        ("＋８６－１３８００１３８０００", "CN", "+8613800138000", "CN", "mobile"),
        ("(010) 6552 9988", "CN", "+861065529988", "CN", "fixed_line"),
        ("（０１０）６５５２９９８８", "CN", "+861065529988", "CN", "fixed_line"),
        ("021-6321 0000", "CN", "+862163210000", "CN", "fixed_line"),
        ("(650) 253-0000", "US", "+16502530000", "US", "fixed_line_or_mobile"),
        ("+1 650 253 0000", "CN", "+16502530000", "US", "fixed_line_or_mobile"),
        ("020 7946 0958", "GB", "+442079460958", "GB", "fixed_line"),
        ("07400 123456", "GB", "+447400123456", "GB", "mobile"),
        ("030 901820", "DE", "+4930901820", "DE", "fixed_line"),
        ("+49 151 23456789", "CN", "+4915123456789", "DE", "mobile"),
        ("+852 2123 4567", "CN", "+85221234567", "HK", "fixed_line"),
        ("5123 4567", "HK", "+85251234567", "HK", "mobile"),
    ],
)
def test_normalize_phone_valid(raw: str, default_region: str, e164: str, region: str, kind: str) -> None:
    phone = normalize_phone(raw, default_region)
    assert (phone.e164, phone.region, phone.kind, phone.original) == (e164, region, kind, raw)


@pytest.mark.parametrize(
    "raw", ["", "   ", "12345", "+86 138", "1380013800", "138001380001", "abc", "+999 1234 5678", "2123 4567"]
)
def test_normalize_phone_invalid_names_the_field(raw: str) -> None:
    with pytest.raises(StandardizationError) as err:
        normalize_phone(raw, field="mobile")
    assert err.value.field == "mobile"
    assert err.value.message


@given(digits=st.text("0123456789", min_size=10, max_size=10),
       prefix=st.sampled_from(["", "+86", "0086", "+86 ", "0086-", "86"]),
       sep=st.sampled_from(["", " ", "-", ".", " - "]))
def test_plain_chinese_mobiles_take_the_fast_path_to_the_same_answer(digits: str, prefix: str, sep: str) -> None:
    import phonenumbers
    from crm_contacts import standardize

    national = "1" + digits
    raw = prefix + national[:3] + sep + national[3:7] + sep + national[7:]
    general: object
    try:  # the general path alone: the library parses the text
        number = phonenumbers.parse(raw, "CN")
        valid = phonenumbers.is_valid_number(number)
        general = (phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
                   standardize._KINDS.get(phonenumbers.number_type(number), "unknown")) if valid else None
    except phonenumbers.NumberParseException:
        general = None
    try:
        phone = normalize_phone(raw, "CN")
        assert (phone.e164, phone.kind, phone.region, phone.original) == (*general, "CN", raw)  # type: ignore[misc]
    except StandardizationError:
        assert general is None


def test_normalize_phone_rejects_non_string() -> None:
    with pytest.raises(StandardizationError, match="phone"):
        normalize_phone(None)  # type: ignore[arg-type]


# --- emails ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized", "key"),
    [
        ("john@example.com", "john@example.com", "john@example.com"),
        ("  John.Smith@Example.COM ", "John.Smith@example.com", "john.smith@example.com"),
        ("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", "john@example.com", "john@example.com"),  # full-width
        ("li.lei＠qq.com", "li.lei@qq.com", "li.lei@qq.com"),  # only the @ is full-width
        ("a+tag@Sub.Example.org", "a+tag@sub.example.org", "a+tag@sub.example.org"),
        ("用户@例子.广告", "用户@例子.广告", "用户@例子.广告"),
        ("x@MÜNCHEN.de", "x@münchen.de", "x@münchen.de"),
    ],
)
def test_normalize_email_valid(raw: str, normalized: str, key: str) -> None:
    assert normalize_email(raw) == normalized
    assert email_key(raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "plainaddress",
        "@example.com",
        "john@",
        "john@@example.com",
        "john smith@example.com",
        "john@example",
        "john@exa mple.com",
        "john..doe@example.com",
    ],
)
def test_normalize_email_invalid_names_the_field(raw: str) -> None:
    with pytest.raises(StandardizationError) as err:
        normalize_email(raw, field="work_email")
    assert err.value.field == "work_email"


# --- width and names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("ＡＢＣ１２３", "ABC123"),
        ("张三（北京）", "张三(北京)"),  # CJK ideographs stay, full-width brackets fold
        ("王\u3000小明", "王 小明"),  # ideographic space
        ("ｶﾞｲﾄﾞ", "ガイド"),  # half-width katakana with voicing marks composes
        ("東京都", "東京都"),
    ],
)
def test_fold_width(raw: str, folded: str) -> None:
    assert fold_width(raw) == folded


@given(st.text())
def test_fold_width_is_idempotent(text: str) -> None:
    once = fold_width(text)
    assert fold_width(once) == once


@given(st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1))
def test_fold_width_keeps_cjk_ideographs(text: str) -> None:
    assert fold_width(text) == text


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("  JOHN   SMITH ", "John Smith"),
        ("mary o'brien", "Mary O'Brien"),
        ("JEAN-LUC PICARD", "Jean-Luc Picard"),
        ("ronald mcdonald", "Ronald McDonald"),
        ("McDonald", "McDonald"),  # mixed case is trusted
        ("van der Berg", "van der Berg"),
        ("Leonardo DiCaprio", "Leonardo DiCaprio"),
        ("josé álvarez", "José Álvarez"),
        ("ＪＯＨＮ　ＳＭＩＴＨ", "John Smith"),  # full-width letters and ideographic space
        ("张三", "张三"),
        (" 欧阳  娜娜 ", "欧阳 娜娜"),
        ("张 SMITH", "张 Smith"),
        ("\u200bAnna\ufeff", "Anna"),  # invisible characters from copy-paste
        ("ΑΛΈΞΑΝΔΡΟΣ", "Αλέξανδρος"),  # Greek has case too
    ],
)
def test_normalize_name(raw: str, name: str) -> None:
    assert normalize_name(raw) == name


@pytest.mark.parametrize("raw", ["", "   ", "\u3000", "\u200b"])
def test_normalize_name_empty_raises(raw: str) -> None:
    with pytest.raises(StandardizationError) as err:
        normalize_name(raw, field="given_name")
    assert err.value.field == "given_name"


@given(st.text())
def test_normalize_name_is_idempotent(text: str) -> None:
    try:
        once = normalize_name(text)
    except StandardizationError:
        assume(False)
        return
    assert normalize_name(once) == once
    assert once == once.strip() and "  " not in once


# --- regions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "province", "city"),
    [
        ("北京市", "北京", "北京"),
        ("北京", "北京", "北京"),
        ("广东省", "广东", None),
        ("广东", "广东", None),
        ("深圳市", "广东", "深圳"),
        ("深圳", "广东", "深圳"),
        ("广西壮族自治区", "广西", None),
        ("内蒙古自治区", "内蒙古", None),
        ("新疆维吾尔自治区", "新疆", None),
        ("香港特别行政区", "香港", "香港"),
        ("澳門", "澳门", "澳门"),
        ("广东省深圳市", "广东", "深圳"),
        ("广东省 深圳市 南山区", "广东", "深圳"),
        ("中国广东省广州市天河区", "广东", "广州"),
        ("北京市朝阳区", "北京", "北京"),
        ("上海市浦东新区", "上海", "上海"),
        ("吉林", "吉林", None),  # province and city share the name: the province wins
        ("吉林市", "吉林", "吉林"),
        ("吉林省吉林市", "吉林", "吉林"),
        ("Beijing", "北京", "北京"),
        ("Peking", "北京", "北京"),
        ("Guangdong", "广东", None),
        ("Guangdong Province", "广东", None),
        ("Shenzhen", "广东", "深圳"),
        ("Shenzhen, Guangdong, China", "广东", "深圳"),
        ("Hubei Shiyan", "湖北", "十堰"),
        ("Xi'an", "陕西", "西安"),
        ("Xī'ān", "陕西", "西安"),
        ("Inner Mongolia", "内蒙古", None),
        ("Tibet", "西藏", None),
        ("Hong Kong SAR", "香港", "香港"),
        ("Macao", "澳门", "澳门"),
        ("Suzhou, Anhui", "安徽", "宿州"),
        ("Suzhou Jiangsu", "江苏", "苏州"),
        ("ＢＥＩＪＩＮＧ", "北京", "北京"),  # full-width
        ("广东省深圳市", "广东", "深圳"),
        ("廣東省", "广东", None),  # traditional characters
        ("粤", "广东", None),  # one-character abbreviation
        ("沪", "上海", "上海"),
    ],
)
def test_canonical_region(raw: str, province: str, city: str | None) -> None:
    assert canonical_region(raw) == Region(province, city)


@pytest.mark.parametrize("raw", ["", "火星", "Atlantis", "Suzhou", "Taizhou", "深圳 北京", "Shenzhen Beijing"])
def test_canonical_region_errors_name_the_field(raw: str) -> None:
    with pytest.raises(StandardizationError) as err:
        canonical_region(raw, field="province")
    assert err.value.field == "province"


def test_region_dictionary_covers_all_provincial_divisions() -> None:
    everything = regions()
    provinces = {r.province for r in everything}
    assert len(provinces) == 34
    cities = [r for r in everything if r.city and r.city != r.province]
    assert len(cities) >= 27 + 60
    # every entry round-trips through the parser by its canonical short names
    for region in everything:
        if region.city and region.city not in ("吉林",):
            assert canonical_region(region.province + region.city) == region


# --- dedup keys ------------------------------------------------------------------------------------------


def test_dedup_keys() -> None:
    keys = dedup_keys(
        {
            "phone": "138 0013 8000",
            "phones": ["+86 138-0013-8000", "(010) 6552 9988", "not a phone"],
            "emails": ["John@Example.com", "broken@"],
            "tax_id": "９１１１ ０１０８-MA01 2345 6X",
        }
    )
    assert keys == {
        "phone:+8613800138000",
        "phone:+861065529988",
        "email:john@example.com",
        "tax:91110108MA0123456X",
    }
    assert dedup_keys({}) == set()


def test_dedup_keys_equal_for_differently_typed_duplicates() -> None:
    a = dedup_keys({"phone": "＋８６ １３８００１３８０００", "email": "ＬＩ＠ＱＱ．ＣＯＭ"})
    b = dedup_keys({"phone": "0086-138-0013-8000", "email": "li@qq.com"})
    assert a == b and len(a) == 2


def test_normalize_tax_id() -> None:
    assert normalize_tax_id(" 91-1101 08ma0123456x ") == "91110108MA0123456X"
    with pytest.raises(StandardizationError):
        normalize_tax_id("--")
