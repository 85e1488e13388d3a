"""Vietnamese personal names drawn with realistic frequencies.

Family-name shares follow published surveys (Nguyễn about 38%, Trần about 11%, Lê about 9.5%);
Hoàng/Huỳnh and Vũ/Võ are one surname each in northern and southern form, so the form depends
on the region of birth. "Văn" and "Thị" are the common middle names, less so for younger people.
"""

from __future__ import annotations

import unicodedata
from random import Random

__all__ = ["fold_diacritics", "full_name"]

# surname: (share in the north, share in the centre and south), percent
_FAMILY: dict[str, tuple[float, float]] = {
    "Nguyễn": (38.4, 38.4), "Trần": (11.0, 11.0), "Lê": (9.5, 9.5), "Phạm": (7.0, 7.0),
    "Hoàng": (5.1, 1.1), "Huỳnh": (0.0, 4.0), "Phan": (4.5, 4.5), "Vũ": (3.9, 0.7), "Võ": (0.0, 3.2),
    "Đặng": (2.1, 2.1), "Bùi": (2.0, 2.0), "Đỗ": (1.4, 1.4), "Hồ": (1.3, 1.3), "Ngô": (1.3, 1.3),
    "Dương": (1.0, 1.0), "Trương": (0.8, 1.0), "Đinh": (0.8, 0.6), "Lý": (0.5, 0.5), "Lâm": (0.3, 0.6),
    "Mai": (0.5, 0.5), "Trịnh": (0.6, 0.3), "Đoàn": (0.5, 0.5), "Lương": (0.4, 0.4), "Cao": (0.4, 0.4),
    "Hà": (0.5, 0.3), "Tô": (0.3, 0.3), "Tạ": (0.3, 0.2), "Châu": (0.1, 0.4), "Lưu": (0.3, 0.3),
    "Phùng": (0.3, 0.1), "Triệu": (0.3, 0.1), "Nông": (0.3, 0.0), "Lò": (0.1, 0.0), "Thái": (0.2, 0.2),
    "Kiều": (0.1, 0.1), "Quách": (0.1, 0.2), "Đàm": (0.2, 0.1), "Vương": (0.2, 0.2), "La": (0.1, 0.1),
}

_MIDDLE = {
    "MALE": ("Đức", "Minh", "Quốc", "Hữu", "Thanh", "Công", "Quang", "Xuân", "Duy", "Hoàng", "Gia",
             "Ngọc", "Tuấn", "Trọng", "Thành", "Anh", "Bá", "Đình"),
    "FEMALE": ("Ngọc", "Thu", "Thanh", "Minh", "Phương", "Kim", "Hồng", "Thùy", "Mai", "Bảo", "Khánh",
               "Hoài", "Diệu", "Thảo", "Bích", "Quỳnh", "Lan", "Mỹ"),
}
_COMMON_MIDDLE = {"MALE": "Văn", "FEMALE": "Thị"}

_GIVEN = {
    "MALE": ("An", "Anh", "Bảo", "Bình", "Cường", "Dũng", "Đạt", "Đức", "Dương", "Hải", "Hiếu", "Hòa",
             "Hoàng", "Hùng", "Huy", "Khang", "Khoa", "Kiên", "Lâm", "Long", "Lợi", "Mạnh", "Minh", "Nam",
             "Nghĩa", "Phong", "Phúc", "Quân", "Quang", "Sơn", "Tài", "Thắng", "Thành", "Thịnh", "Toàn",
             "Trí", "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Vũ", "Hưng", "Lộc", "Thuận"),
    "FEMALE": ("Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hồng", "Hương",
               "Huyền", "Lan", "Linh", "Loan", "Mai", "My", "Nga", "Ngân", "Ngọc", "Nhung", "Oanh",
               "Phương", "Quyên", "Quỳnh", "Tâm", "Thảo", "Thủy", "Trang", "Trinh", "Tuyết", "Uyên",
               "Vân", "Vy", "Yến", "Hường", "Thơ", "Nhi"),
}

_SURNAMES = tuple(_FAMILY)
_NORTH_WEIGHTS = tuple(w for w, _ in _FAMILY.values())
_SOUTH_WEIGHTS = tuple(w for _, w in _FAMILY.values())


def full_name(rng: Random, sex: str, *, born: int, south: bool) -> str:
    """A name in legal order (family, middle, given) for a person of `sex` born in `born`."""
    family = rng.choices(_SURNAMES, _SOUTH_WEIGHTS if south else _NORTH_WEIGHTS)[0]
    common = (0.55 if born < 1975 else 0.30) + (0.10 if sex == "FEMALE" else 0.0)
    if rng.random() < common:
        middle = _COMMON_MIDDLE[sex]
        if sex == "FEMALE" and rng.random() < 0.15:  # "Nguyễn Thị Thu Hà"
            middle += " " + rng.choice(_MIDDLE[sex])
    else:
        middle = rng.choice(_MIDDLE[sex])
    given = rng.choice(_GIVEN[sex])
    while given == middle.rsplit(" ", 1)[-1]:
        given = rng.choice(_GIVEN[sex])
    return f"{family} {middle} {given}"


def fold_diacritics(text: str) -> str:
    """Strip tone and vowel marks and fold Đ/đ to D/d: "Đặng Thị Hương" -> "Dang Thi Huong"."""
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", bare.replace("Đ", "D").replace("đ", "d"))
